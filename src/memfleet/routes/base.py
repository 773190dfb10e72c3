"""The route interface.

A route takes a request and a reply callback: ``route.send(request, cb, token)`` eventually
calls ``cb(token, reply_bytes)`` exactly once. Callbacks rather than coroutines keep the hot
path free of a task or future per request; ``await route.route(request)`` wraps the same call
for code (and tests) that prefer to await.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

from mypy_extensions import mypyc_attr

from memfleet.backends.backend import Backend, ReplyCallback
from memfleet.protocol.requests import Kind, Request

__all__ = ["ReplyCallback", "Route", "drop", "unique_backends"]


def drop(_token: object, _reply: bytes) -> None:
    """Reply callback for copies nobody waits for (noreply, split, allasync, fills)."""


# Compiled with the rest of the hot path; plugins and tests may still subclass it in Python.
@mypyc_attr(allow_interpreted_subclasses=True)
class Route(ABC):
    """A node of the route tree."""

    __slots__ = ()

    @abstractmethod
    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        """Route ``req``; call ``cb(token, reply)`` exactly once with the client's reply."""

    def send_get(self, key: bytes, wire: bytes, cb: ReplyCallback, token: object) -> None:
        """Route a plain single-key ``get`` (``wire`` is the client's own line).

        The server's fast path calls this without building a parsed request; routes that only
        need the key and the bytes (a pool) override it to skip that work.
        """
        req = Request(Kind.GET, b"get", wire, key)
        req.keys = [key]
        req.prefix = b"get"
        self.send(req, cb, token)

    def journal_key(self, key: bytes) -> None:  # noqa: B027 - optional: no backends, no journal
        """The backends this route sends ``key`` to may hold an old value of it (a replicated
        write they missed or answered differently): journal it there, out of service until
        repaired. A route without backends of its own has nothing to journal."""

    @abstractmethod
    def backends(self) -> Iterator[Backend]:
        """Every backend this route can reach (``flush_all`` goes to all of them)."""

    async def route(self, req: Request) -> bytes:
        """Awaitable form of :meth:`send`."""
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        def done(_token: object, reply: bytes) -> None:
            if not fut.done():
                fut.set_result(reply)

        self.send(req, done, None)
        return await fut


def unique_backends(routes: Iterable[Route]) -> Iterator[Backend]:
    """Every backend of ``routes``, each once, in order."""
    seen: set[int] = set()
    for r in routes:
        for b in r.backends():
            if id(b) not in seen:
                seen.add(id(b))
                yield b

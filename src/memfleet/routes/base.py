"""The route interface.

A route takes a request and a reply callback: ``route.send(request, cb, token)`` eventually
calls ``cb(token, reply_bytes)`` exactly once. Callbacks rather than coroutines keep the hot
path free of a task or future per request; ``await route.route(request)`` wraps the same call
for code (and tests) that prefer to await.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterator

from memfleet.backend import Backend, ReplyCallback
from memfleet.protocol.requests import Request

__all__ = ["ReplyCallback", "Route"]


class Route(ABC):
    """A node of the route tree."""

    __slots__ = ()

    @abstractmethod
    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        """Route ``req``; call ``cb(token, reply)`` exactly once with the client's reply."""

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

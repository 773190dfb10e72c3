"""``null``, ``random`` and the key-prefix map."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Final

from memfleet.backends.backend import Backend, ReplyCallback
from memfleet.protocol.commands import NULL_REPLY
from memfleet.protocol.requests import Request
from memfleet.routes.base import Route, unique_backends

# What a route that stores nothing answers: a miss for reads, "not done" for writes.
_NULL_REPLY: Final = NULL_REPLY


class NullRoute(Route):
    """Stores nothing, finds nothing, answers at once."""

    __slots__ = ()

    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        """Answer a miss or "not stored"."""
        cb(token, _NULL_REPLY.get(req.cmd, b"END\r\n"))

    def backends(self) -> Iterator[Backend]:
        """None."""
        return iter(())


class RandomRoute(Route):
    """One child chosen at random per request."""

    __slots__ = ("children",)

    def __init__(self, children: list[Route]) -> None:
        self.children = children

    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        """Pick a child."""
        random.choice(self.children).send(req, cb, token)

    def journal_key(self, key: bytes) -> None:
        """Every child may hold an old value of ``key``."""
        for child in self.children:
            child.journal_key(key)

    def backends(self) -> Iterator[Backend]:
        """All children's backends."""
        return unique_backends(self.children)


class PrefixRoute(Route):
    """Routes by key prefix; the longest matching prefix wins, else ``default``."""

    __slots__ = ("default", "prefixes")

    def __init__(self, prefixes: dict[bytes, Route], default: Route) -> None:
        # Longest first, so the first match is the longest.
        self.prefixes = sorted(prefixes.items(), key=lambda kv: -len(kv[0]))
        self.default = default

    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        """Match the key's prefix."""
        key = req.key
        for prefix, route in self.prefixes:
            if key.startswith(prefix):
                route.send(req, cb, token)
                return
        self.default.send(req, cb, token)

    def journal_key(self, key: bytes) -> None:
        """The branch ``key`` goes to."""
        for prefix, route in self.prefixes:
            if key.startswith(prefix):
                route.journal_key(key)
                return
        self.default.journal_key(key)

    def backends(self) -> Iterator[Backend]:
        """All branches' backends."""
        return unique_backends([self.default, *(r for _, r in self.prefixes)])

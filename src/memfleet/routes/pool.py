"""``direct``: the key's backend in one pool."""

from __future__ import annotations

from collections.abc import Iterator

from memfleet.backend import Backend, ReplyCallback
from memfleet.pool import Pool
from memfleet.protocol.requests import Request
from memfleet.routes.base import Route


class PoolRoute(Route):
    """Sends a request to the backend its key hashes to."""

    __slots__ = ("_index", "_one", "backend_list", "pool")

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.backend_list = pool.backends
        self._index = pool.placement.index
        self._one = pool.backends[0] if len(pool.backends) == 1 else None

    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        """Forward ``req`` as it is to its key's backend."""
        one = self._one
        if one is not None:
            one.send(req.wire, cb, token)
        else:
            self.backend_list[self._index(req.key)].send(req.wire, cb, token)

    def backends(self) -> Iterator[Backend]:
        """The pool's backends."""
        return iter(self.backend_list)

    def __repr__(self) -> str:
        return f"PoolRoute({self.pool.name})"

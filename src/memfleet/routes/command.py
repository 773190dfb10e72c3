"""A per-command map: ``get`` to one route, ``set`` to another, the rest to ``default``."""

from __future__ import annotations

from collections.abc import Iterator

from memfleet.backends.backend import Backend, ReplyCallback
from memfleet.protocol.requests import Request
from memfleet.routes.base import Route, unique_backends


class CommandRoute(Route):
    """Chooses a child route by the request's command name."""

    __slots__ = ("_get", "by_command", "default")

    def __init__(self, by_command: dict[bytes, Route], default: Route) -> None:
        self.by_command = by_command
        self.default = default
        self._get = by_command.get(b"get", default)  # looked up once: most requests are gets

    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        """Route by command, falling back to ``default``."""
        self.by_command.get(req.cmd, self.default).send(req, cb, token)

    def send_get(self, key: bytes, wire: bytes, cb: ReplyCallback, token: object) -> None:
        """A plain get goes where ``get`` is routed."""
        self._get.send_get(key, wire, cb, token)

    def journal_key(self, key: bytes) -> None:
        """Any command's route may have sent ``key`` somewhere: all of them."""
        for route in {id(r): r for r in [self.default, *self.by_command.values()]}.values():
            route.journal_key(key)

    def backends(self) -> Iterator[Backend]:
        """Every backend of every child, each once."""
        return unique_backends([self.default, *self.by_command.values()])

"""What the metrics and the status page read of the running proxy: a read-only view (so that
``observe`` does not import the proxy), its top-level routes, and whether it is ready."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from memfleet.backends.backend import Backend

if TYPE_CHECKING:
    from memfleet.backends.pool import Pool
    from memfleet.config import ProxyConfig
    from memfleet.observe.stats import ProxyStats
    from memfleet.routes.base import Route


class LimitLines(Protocol):
    """Counters that render as ``STAT`` lines (``memfleet.proxy.limits.LimitCounters``)."""

    def lines(self) -> list[tuple[str, object]]: ...


class ProxyView(Protocol):
    """What the metrics read of the running proxy (``memfleet.proxy.app.Proxy`` is one): a
    read-only view, so this module does not import the proxy."""

    after_apply: Callable[[], None] | None

    @property
    def cfg(self) -> ProxyConfig: ...
    @property
    def pools(self) -> dict[str, Pool]: ...
    @property
    def root(self) -> Route: ...
    @property
    def stats(self) -> ProxyStats: ...
    @property
    def limit_counters(self) -> LimitLines: ...
    @property
    def listening(self) -> bool: ...
    @property
    def log_lines_suppressed(self) -> int: ...
    def all_backends(self) -> list[Backend]: ...
    def client_in_flight(self) -> Iterator[int]: ...


def top_level_routes(proxy: ProxyView) -> dict[str, Route]:
    """The ``routes:`` entries of the config in force, by name (``default`` included)."""
    from memfleet.routes.command import CommandRoute

    root = proxy.root
    if not isinstance(root, CommandRoute):
        return {"default": root}
    routes = {"default": root.default}
    for cmd, r in root.by_command.items():
        routes[cmd.decode(errors="replace")] = r
    return routes


def readiness(proxy: ProxyView) -> tuple[bool, str]:
    """Ready: listening, a config loaded, and every top-level route has a live path (a backend
    it can reach that is not down, or no backend at all: a null route answers by itself).

    Never "every backend up": one cache node out of service must not take every proxy out of
    its Service (a DaemonSet proxy behind ``internalTrafficPolicy: Local`` would leave the
    apps of that node with no cache at all)."""
    if not proxy.listening:
        return False, "not listening"
    dead: list[str] = []
    for name, route in top_level_routes(proxy).items():
        backends = list(route.backends())
        if backends and all(b.down for b in backends):
            dead.append(f"{name} (down: {', '.join(b.name for b in backends)})")
    if dead:
        return False, "no live path for route(s): " + "; ".join(sorted(dead))
    return True, "ready"

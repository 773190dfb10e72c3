"""The proxy's counters, and their rendering as memcached ``STAT`` lines."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from memfleet import __version__
from memfleet.backend import Backend


class ProxyStats:
    """Plain integer counters: cheap to bump on the hot path."""

    __slots__ = (
        "cmd_flush",
        "cmd_get",
        "cmd_other",
        "cmd_set",
        "curr_connections",
        "get_hits",
        "get_misses",
        "protocol_errors",
        "reloads",
        "reloads_failed",
        "started",
        "total_connections",
    )

    def __init__(self) -> None:
        self.started = time.time()
        self.reset()
        self.curr_connections = 0
        self.total_connections = 0

    def reset(self) -> None:
        """``stats reset``: zero the counters (not the gauges)."""
        self.cmd_get = 0
        self.cmd_set = 0
        self.cmd_flush = 0
        self.cmd_other = 0
        self.get_hits = 0
        self.get_misses = 0
        self.protocol_errors = 0
        self.reloads = 0
        self.reloads_failed = 0

    def general(self) -> list[tuple[str, object]]:
        """The ``stats`` lines, named as memcached names them where there is an equivalent."""
        now = time.time()
        ru = os.times()
        return [
            ("pid", os.getpid()),
            ("uptime", int(now - self.started)),
            ("time", int(now)),
            ("version", f"memfleet-{__version__}"),
            ("rusage_user", f"{ru.user:.6f}"),
            ("rusage_system", f"{ru.system:.6f}"),
            ("curr_connections", self.curr_connections),
            ("total_connections", self.total_connections),
            ("cmd_get", self.cmd_get),
            ("cmd_set", self.cmd_set),
            ("cmd_flush", self.cmd_flush),
            ("cmd_other", self.cmd_other),
            ("get_hits", self.get_hits),
            ("get_misses", self.get_misses),
            ("protocol_errors", self.protocol_errors),
            ("reloads", self.reloads),
            ("reloads_failed", self.reloads_failed),
        ]


def backend_stats(backends: Iterable[Backend]) -> list[tuple[str, object]]:
    """Per-backend lines for ``stats backends`` (``<host:port>:<counter>``)."""
    out: list[tuple[str, object]] = []
    for b in backends:
        out += [
            (f"{b.name}:state", "down" if b.down else "up"),
            (f"{b.name}:requests", b.requests),
            (f"{b.name}:errors", b.errors),
            (f"{b.name}:failed_fast", b.failed_fast),
            (f"{b.name}:marked_down", b.marked_down),
        ]
    return out


def render(lines: Iterable[tuple[str, object]]) -> bytes:
    """``STAT name value`` lines followed by ``END``."""
    return b"".join(f"STAT {k} {v}\r\n".encode() for k, v in lines) + b"END\r\n"

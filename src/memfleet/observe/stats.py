"""The proxy's counters, and their rendering as memcached ``STAT`` lines."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from memfleet import __version__
from memfleet.backends.backend import Backend


class ProxyStats:
    """Plain integer counters: cheap to bump on the hot path."""

    __slots__ = (
        "auth_refused",
        "cmd_denied",
        "cmd_flush",
        "cmd_get",
        "cmd_other",
        "cmd_set",
        "cmd_touch",
        "commands",
        "config_hash",
        "curr_connections",
        "get_hits",
        "get_misses",
        "http_closed",
        "protocol_errors",
        "reloads",
        "reloads_failed",
        "started",
        "total_connections",
    )

    def __init__(self) -> None:
        self.started = time.time()
        # memfleet.config.digest.config_hash of the config in force (set at start and reload).
        self.config_hash = ""
        self.reset()
        self.curr_connections = 0
        self.total_connections = 0

    def reset(self) -> None:
        """``stats reset``: zero the counters (not the gauges)."""
        self.cmd_get = 0
        self.cmd_set = 0
        self.cmd_flush = 0
        self.cmd_other = 0
        self.cmd_touch = 0
        self.cmd_denied = 0  # refused by the deny-list
        self.auth_refused = 0  # refused before the client authenticated
        self.get_hits = 0
        self.get_misses = 0
        self.protocol_errors = 0
        self.http_closed = 0  # HTTP request lines: the connection closed unanswered
        self.reloads = 0
        self.reloads_failed = 0
        # Keyed requests by command name (set, delete, incr, ms, md...); gets are cmd_get.
        self.commands: dict[bytes, int] = {}

    def general(self) -> list[tuple[str, object]]:
        """The ``stats`` lines, named as memcached names them where there is an equivalent."""
        now = time.time()
        ru = os.times()
        return [
            ("pid", os.getpid()),
            ("uptime", int(now - self.started)),
            ("time", int(now)),
            ("version", f"memfleet-{__version__}"),
            ("config_hash", self.config_hash),
            ("rusage_user", f"{ru.user:.6f}"),
            ("rusage_system", f"{ru.system:.6f}"),
            ("curr_connections", self.curr_connections),
            ("total_connections", self.total_connections),
            ("cmd_get", self.cmd_get),
            ("cmd_set", self.cmd_set),
            ("cmd_flush", self.cmd_flush),
            ("cmd_touch", self.cmd_touch),
            ("cmd_other", self.cmd_other),
            ("cmd_denied", self.cmd_denied),
            ("auth_refused", self.auth_refused),
            ("get_hits", self.get_hits),
            ("get_misses", self.get_misses),
            ("protocol_errors", self.protocol_errors),
            ("http_closed", self.http_closed),
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
            # Out of service for missed writes (times), keys waiting for their repair (-1: a
            # flush is due), keys copied and deleted by repairs, copies a later write beat.
            (f"{b.name}:out_of_service", b.out_of_service),
            (f"{b.name}:journaled", b.journaled),
            (f"{b.name}:repaired", b.repaired),
            (f"{b.name}:invalidated", b.invalidated),
            (f"{b.name}:repair_dropped", b.repair_dropped),
            (f"{b.name}:rejoin_flushes", b.rejoin_flushes),
            # Out of service for another worker's fence (--workers), and rejoins put off
            # because another proxy instance still repairs it (its rejoin mark).
            (f"{b.name}:peer_holds", b.peer_holds),
            (f"{b.name}:mark_waits", b.mark_waits),
            (f"{b.name}:queue_full", b.queue_full),
            (f"{b.name}:connects", b.connects),
            (f"{b.name}:reconnects", reconnects(b)),
            (f"{b.name}:in_flight", backend_in_flight(b)),
        ]
        out += [(f"{b.name}:errors_{k}", n) for k, n in sorted(b.failure_kinds.items())]
        if b.latency is not None:
            out += [
                (f"{b.name}:latency_count", b.latency.count),
                (f"{b.name}:latency_sum_us", int(b.latency.sum * 1e6)),
            ]
    return out


def reconnects(b: Backend) -> int:
    """Connects beyond the first one of each connection the backend has."""
    return max(0, b.connects - b.options.connections)


def backend_in_flight(b: Backend) -> int:
    """Requests sent or queued to ``b`` and not answered yet."""
    return b.in_flight


def command_lines(stats: ProxyStats) -> list[tuple[str, object]]:
    """``command_<name>`` per keyed command, as ``stats proxy`` reports them."""
    return [(f"command_{c.decode(errors='replace')}", n) for c, n in sorted(stats.commands.items())]


def render(lines: Iterable[tuple[str, object]]) -> bytes:
    """``STAT name value`` lines followed by ``END``."""
    return b"".join(f"STAT {k} {v}\r\n".encode() for k, v in lines) + b"END\r\n"


def proxy_extra_lines(
    stats: ProxyStats, backends: list[Backend], client_in_flight: Iterable[int]
) -> list[tuple[str, object]]:
    """What ``stats proxy`` adds to ``stats``: the counters the Prometheus metrics export
    (per-command requests, in-flight, reconnects, errors by kind), by the same names."""
    lines = command_lines(stats)
    lines.append(("in_flight", sum(max(0, n) for n in client_in_flight)))
    lines.append(("backend_in_flight", sum(b.in_flight for b in backends)))
    lines.append(("backend_requests", sum(b.requests for b in backends)))
    lines.append(("backend_errors", sum(b.errors for b in backends)))
    lines.append(("backend_failed_fast", sum(b.failed_fast for b in backends)))
    lines.append(("backend_reconnects", sum(reconnects(b) for b in backends)))
    kinds: dict[str, int] = {}
    for b in backends:
        for k, n in b.failure_kinds.items():
            kinds[k] = kinds.get(k, 0) + n
    lines += [(f"backend_failures_{k}", n) for k, n in sorted(kinds.items())]
    return lines

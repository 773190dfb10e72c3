"""Per-client limits the proxy enforces, and the once-a-second sweep that enforces the slow
ones (idle connections, requests that never finish arriving, clients that never read).

The sweep looks at plain counters the connections keep anyway (requests numbered, bytes
buffered), so enforcing the limits costs the hot path nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from memfleet.config import LimitsConfig
from memfleet.logs import LimitEvents

log = logging.getLogger("memfleet.proxy.limits")

SWEEP_INTERVAL = 1.0

TOO_MANY_CONNECTIONS = b"ERROR Too many open connections\r\n"
REQUEST_TOO_SLOW = b"CLIENT_ERROR request not received in time\r\n"


# Also the order of the ``STAT`` lines; a module constant because compiled classes do not
# expose ``__slots__``.
LIMIT_COUNTERS = (
    "budget_paused",
    "idle_closed",
    "inflight_paused",
    "memory_dropped",
    "memory_paused",
    "rejected_connections",
    "slow_closed",
    "stalled_closed",
    "too_large",
)


class LimitCounters:
    """How often each limit was hit (``stats``, metrics)."""

    def __init__(self) -> None:
        self.rejected_connections = 0
        self.inflight_paused = 0
        # A client's byte budget (max_client_bytes) spent: reading from it paused.
        self.budget_paused = 0
        # The process over max_memory: a client paused, or dropped for not reading.
        self.memory_paused = 0
        self.memory_dropped = 0
        self.stalled_closed = 0
        self.idle_closed = 0
        self.slow_closed = 0
        self.too_large = 0

    def lines(self) -> list[tuple[str, object]]:
        """``STAT`` lines."""
        return [(name, getattr(self, name)) for name in LIMIT_COUNTERS]


class SweptClient(Protocol):
    """What the sweep needs from a client connection."""

    peer: object
    sweep_next: int
    idle_for: float
    partial_for: float
    stalled_for: float

    @property
    def requests_seen(self) -> int: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def buffered(self) -> int: ...
    @property
    def write_paused(self) -> bool: ...
    def drop(self, reply: bytes) -> None: ...


class Sweeper:
    """Closes idle clients, clients stuck mid-request (slowloris) and clients that leave
    their replies unread, once per ``SWEEP_INTERVAL``."""

    def __init__(
        self,
        limits: Callable[[], LimitsConfig],
        clients: Callable[[], Iterable[SweptClient]],
        counters: LimitCounters,
        events: LimitEvents,
        every_tick: Callable[[], None] | None = None,
    ) -> None:
        self.limits = limits
        self.clients = clients
        self.counters = counters
        self.events = events
        # Also run once a sweep (the process budget: memfleet.proxy.memory).
        self.every_tick = every_tick
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Begin sweeping (on the running loop)."""
        self._handle = asyncio.get_running_loop().call_later(SWEEP_INTERVAL, self._tick)

    def stop(self) -> None:
        """Stop sweeping."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        self.sweep(SWEEP_INTERVAL)
        if self.every_tick is not None:
            self.every_tick()
        self.start()

    def sweep(self, elapsed: float) -> None:
        """Account ``elapsed`` seconds to every client and close those past a limit."""
        lim = self.limits()
        for c in list(self.clients()):
            progressed = c.requests_seen != c.sweep_next
            c.sweep_next = c.requests_seen
            if c.write_paused:
                c.stalled_for += elapsed
                if c.stalled_for >= lim.stalled_timeout:
                    self.counters.stalled_closed += 1
                    self.events.warning(
                        "stalled", "dropping client %s: replies unread for %gs",
                        c.peer, lim.stalled_timeout,
                    )  # fmt: skip
                    c.drop(b"")
                    continue
            else:
                c.stalled_for = 0.0
            if c.buffered and not progressed:
                c.partial_for += elapsed
                if c.partial_for >= lim.request_timeout:
                    self.counters.slow_closed += 1
                    self.events.warning(
                        "slow", "closing client %s: request not received whole within %gs",
                        c.peer, lim.request_timeout,
                    )  # fmt: skip
                    c.drop(REQUEST_TOO_SLOW)
                    continue
            else:
                c.partial_for = 0.0
            if lim.idle_timeout and not progressed and not c.in_flight and not c.buffered:
                c.idle_for += elapsed
                if c.idle_for >= lim.idle_timeout:
                    self.counters.idle_closed += 1
                    self.events.warning(
                        "idle", "closing client %s: idle for %gs", c.peer, lim.idle_timeout
                    )
                    c.drop(b"")
            else:
                c.idle_for = 0.0

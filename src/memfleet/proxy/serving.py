"""What every client connection reads from the running proxy, in one small compiled object.

A reload swaps its fields (route tree, pools, config, policy gate) in one go; a connection
reads them through it on each request, so it always uses the current generation. Keeping this
apart from ``memfleet.proxy.app`` (lifecycle: listen, reload, watch) lets the connection
modules import it without importing the app, and gives the compiled build native attribute
reads on the request path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from memfleet.backends.backend import Backend
from memfleet.backends.pool import Pool
from memfleet.config import ProxyConfig
from memfleet.logs import LimitEvents
from memfleet.observe.stats import ProxyStats
from memfleet.proxy.budget import SizeHints
from memfleet.proxy.gate import PolicyGate
from memfleet.proxy.limits import LimitCounters
from memfleet.proxy.memory import MemoryGuard
from memfleet.routes.base import Route
from memfleet.routes.migrate_state import DeleteJournal, MigrationCounters

log = logging.getLogger("memfleet.proxy")


class Serving:
    """The current generation of the proxy's state, shared by all its connections."""

    __slots__ = (
        "address", "binary_handler", "cfg", "clients", "events", "gate", "hints",
        "limit_counters", "memory", "migration", "migration_journal", "pools", "root", "stats",
    )  # fmt: skip

    def __init__(
        self,
        cfg: ProxyConfig,
        pools: dict[str, Pool],
        root: Route,
        gate: PolicyGate,
        events: LimitEvents,
        stats: ProxyStats,
    ) -> None:
        self.cfg = cfg
        self.pools = pools
        self.root = root
        self.gate = gate
        self.events = events
        self.stats = stats
        self.limit_counters = LimitCounters()
        # Every open client connection (``memfleet.proxy.connection.ClientConnection``).
        self.clients: set[Any] = set()
        # What reads reserve in their client's budget, learnt from what this worker saw.
        self.hints = SizeHints()
        # The process budget over all clients (max_memory).
        self.memory = MemoryGuard(self._max_memory, self._clients, self.limit_counters, events)
        # Takes over a connection whose first byte is the binary protocol's magic
        # (``memfleet.proxy.binary_connection.handle_binary``, set by the app).
        self.binary_handler: Callable[[Any, bytes], None] | None = None
        # Where clients connect (set once listening): ``stats settings`` reports it.
        self.address: tuple[str, int] = ("", 0)
        # The resize windows' counters and journal (memfleet.proxy.migration sets its own).
        self.migration = MigrationCounters()
        self.migration_journal = DeleteJournal(self.migration)

    def _max_memory(self) -> int:
        return self.cfg.limits.max_memory

    def _clients(self) -> set[Any]:
        return self.clients

    def all_backends(self) -> list[Backend]:
        """Every backend of every pool, each once."""
        seen: dict[int, Backend] = {}
        for p in self.pools.values():
            for b in p.backends:
                seen.setdefault(id(b), b)
        return list(seen.values())

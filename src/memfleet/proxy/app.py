"""The running proxy's lifecycle: build the route tree from a config, listen, reload (SIGHUP or
a change in the config's directory), close. Requests are handled by
``memfleet.proxy.connection`` (text, meta) and ``memfleet.proxy.binary_connection``; what they
read of the current config lives in ``memfleet.proxy.serving.Serving``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from memfleet import is_compiled
from memfleet.backends.backend import Backend
from memfleet.backends.peers import PEERS
from memfleet.backends.pool import Pool
from memfleet.config import ConfigError, ProxyConfig, load_config, parse_hostport
from memfleet.config.digest import config_hash
from memfleet.config.tls import server_context
from memfleet.logs import LimitEvents
from memfleet.observe.stats import ProxyStats
from memfleet.protocol.commands import deny_mask
from memfleet.proxy.auth import PasswordFile
from memfleet.proxy.binary_connection import handle_binary
from memfleet.proxy.connection import ClientConnection, protocol_error_log
from memfleet.proxy.gate import PolicyGate
from memfleet.proxy.limits import LimitCounters, Sweeper
from memfleet.proxy.migration import MigrationWindow
from memfleet.proxy.peer_link import PeerLink, join_peers, leave_peers
from memfleet.proxy.serving import Serving
from memfleet.routes.base import Route
from memfleet.routes.builder import BackendKey, build_pools, build_routes

log = logging.getLogger("memfleet.proxy")

__all__ = ["Proxy", "protocol_error_log", "tune_gc_for_serving"]


def make_gate(cfg: ProxyConfig, events: LimitEvents, stats: ProxyStats) -> PolicyGate:
    """The policy gate a config asks for (the password file is read again on every reload,
    so it can be rotated without a restart)."""
    auth = PasswordFile.from_config(cfg.auth) if cfg.auth is not None else None
    return PolicyGate(auth, deny_mask(cfg.deny_commands), events, stats)


class Proxy:
    """The running proxy: its config, route tree and connections. Reload swaps them."""

    def __init__(
        self, cfg: ProxyConfig, config_path: str | None = None, zone: str | None = None
    ) -> None:
        self.config_path = config_path
        self.zone = zone
        pools = build_pools(cfg)
        root = build_routes(cfg, pools, zone)
        self.events = LimitEvents(log)
        stats = ProxyStats()
        stats.config_hash = config_hash(cfg)
        gate = make_gate(cfg, self.events, stats)
        self.serving = Serving(cfg, pools, root, gate, self.events, stats)
        # Resize windows (memfleet.proxy.migration): old placements kept after a reload.
        self.migration = MigrationWindow(self._migration_over)
        self.serving.migration = self.migration.counters
        self.serving.migration_journal = self.migration.journal
        # Takes over a connection whose first byte is the binary protocol's magic.
        self.serving.binary_handler = handle_binary
        self._server: asyncio.AbstractServer | None = None
        self._peers: PeerLink | None = None  # with --workers: the fences all workers share
        # Observability hook: memfleet.observe.metrics gives backends a reload adds their
        # latency histogram (with --metrics only; nothing runs per request either way).
        self.after_apply: Callable[[], None] | None = None
        self.sweeper = Sweeper(
            lambda: self.serving.cfg.limits, lambda: self.serving.clients,
            self.serving.limit_counters, self.events, self._memory_tick,
        )  # fmt: skip

    def _memory_tick(self) -> None:
        self.serving.memory.sweep()

    # Read-only views of the current generation, for stats, metrics and tests.
    @property
    def cfg(self) -> ProxyConfig:
        """The config in force."""
        return self.serving.cfg

    @property
    def pools(self) -> dict[str, Pool]:
        """The pools of the config in force."""
        return self.serving.pools

    @property
    def root(self) -> Route:
        """The route tree in force."""
        return self.serving.root

    @property
    def stats(self) -> ProxyStats:
        """The proxy's counters."""
        return self.serving.stats

    @property
    def limit_counters(self) -> LimitCounters:
        """How often each client limit was hit."""
        return self.serving.limit_counters

    @property
    def clients(self) -> set[ClientConnection]:
        """The open client connections."""
        return self.serving.clients

    @property
    def gate(self) -> PolicyGate:
        """The policy gate in force."""
        return self.serving.gate

    @property
    def listening(self) -> bool:
        """True while the listener accepts clients."""
        return self._server is not None and self._server.is_serving()

    @property
    def log_lines_suppressed(self) -> int:
        """Client protocol-error log lines the rate limit dropped."""
        return protocol_error_log.suppressed_total

    def client_in_flight(self) -> Iterator[int]:
        """Requests in flight, per open client connection."""
        return (c.in_flight for c in self.serving.clients)

    def memory_held(self) -> tuple[int, int]:
        """Bytes all clients hold or have reserved now (their budgets' measure), and how
        many times memory was given back (memfleet.proxy.memory)."""
        memory = self.serving.memory
        return sum(c.held for c in self.serving.clients), memory.trims

    def migration_lines(self) -> list[tuple[str, object]]:
        """The resize windows' counters as ``STAT`` lines (``stats proxy`` shows them too)."""
        return self.migration.counters.lines(self.migration.journal.size)

    def all_backends(self) -> list[Backend]:
        """Every backend of every pool, each once."""
        return self.serving.all_backends()

    async def start(self, listen: str | None = None, reuse_port: bool = False) -> tuple[str, int]:
        """Listen for clients; return the bound address (port 0 picks a free one)."""
        host, port = parse_hostport(listen or self.cfg.listen)
        loop = asyncio.get_running_loop()
        # A worker applies the fences the others hold before it serves anyone.
        self._peers = await join_peers()
        if self._peers is not None:
            PEERS.backends = self.all_backends
            PEERS.sync()
        tls = server_context(self.cfg.tls) if self.cfg.tls is not None else None
        serving = self.serving
        serving.memory.start()  # the allocator set up before the first client
        self._server = await loop.create_server(
            lambda: ClientConnection(serving),
            host,
            port,
            backlog=1024,
            reuse_port=reuse_port,
            ssl=tls,
        )
        # uvloop hands back a list where typeshed says tuple; compiled code checks the type.
        sockets: Any = cast(Any, self._server).sockets
        sock = sockets[0].getsockname()
        self.serving.address = (str(sock[0]), int(sock[1]))
        self.sweeper.start()
        log.info(
            "memfleet proxy listening on %s:%d (hot path: %s)", sock[0], sock[1],
            "compiled" if is_compiled() else "pure Python",
        )  # fmt: skip
        return str(sock[0]), int(sock[1])

    def reload(self, path: str | None = None) -> bool:
        """Load the config again; on any error keep serving the old one and say why."""
        path = path or self.config_path
        if path is None:
            return False
        try:
            cfg = load_config(path)
            self.apply(cfg)
        except (ConfigError, ValueError) as exc:
            self.stats.reloads_failed += 1
            log.error(
                "reload refused, keeping the running config: %s", exc,
                extra={"event": "reload_refused", "config": path},
            )  # fmt: skip
            return False
        self.stats.reloads += 1
        log.info("reloaded %s", Path(path).name, extra={"event": "reload_ok", "config": path})
        return True

    def _config_fingerprint(self) -> tuple[str, int, int, int] | None:
        if self.config_path is None:
            return None
        try:
            real = os.path.realpath(self.config_path)
            st = os.stat(real)
        except OSError:
            return None
        return (real, st.st_mtime_ns, st.st_size, st.st_ino)

    async def watch_config(self, interval: float = 1.0) -> None:
        """Reload when the config changes. A Kubernetes ConfigMap update swaps a symlink in
        the file's directory, so the file's resolved path is compared, not just its mtime."""
        last = self._config_fingerprint()
        while True:
            await asyncio.sleep(interval)
            now = self._config_fingerprint()
            if now is not None and now != last:
                last = now
                self.reload()

    def apply(self, cfg: ProxyConfig) -> None:
        """Swap in a new config. Unchanged backends keep their connections; requests in
        flight finish on the backends they were sent to; the new policy applies to every
        connection at once (open ones included). A pool whose backend list changed keeps
        its old placement for ``migration_window`` (memfleet.proxy.migration)."""
        # The password file is read first: if it cannot be, nothing new has been built yet.
        gate = make_gate(cfg, self.events, self.serving.stats)
        window = self.migration
        before = [*self.all_backends(), *window.backends()]
        reuse: dict[BackendKey, Backend] = {b.key(): b for b in before}
        pools = build_pools(cfg, reuse)
        serving = self.serving
        kept_olds = window.olds
        changed = window.plan(serving.pools, pools, cfg.migration_window)
        try:
            root = build_routes(cfg, pools, self.zone, window.wrap if window.active else None)
        except Exception:
            window.olds = kept_olds  # refused: the window stays as it was
            raise
        serving.cfg, serving.pools, serving.root, serving.gate = cfg, pools, root, gate
        serving.stats.config_hash = config_hash(cfg)
        for c in list(serving.clients):
            c.policy_changed(gate)
        self._retire(before)
        window.started(changed, pools, cfg.migration_window)
        if self._peers is not None:
            PEERS.sync()  # new backends learn what the other workers fence
        if self.after_apply is not None:
            self.after_apply()

    def _retire(self, candidates: list[Backend]) -> None:
        """Close the backends of ``candidates`` that neither the config nor an open resize
        window uses any more (requests in flight on them finish)."""
        kept = {id(b) for b in [*self.all_backends(), *self.migration.backends()]}
        done: set[int] = set()
        for b in candidates:
            if id(b) not in kept and id(b) not in done:
                done.add(id(b))
                b.retire()

    def _migration_over(self, olds: list[Backend]) -> None:
        """The resize window is over: the tree without migration routes, the old-only
        backends closed."""
        serving = self.serving
        serving.root = build_routes(serving.cfg, serving.pools, self.zone)
        self._retire(olds)

    async def close(self) -> None:
        """Stop listening, close clients and backends."""
        self.sweeper.stop()
        self.migration.close()
        leave_peers(self._peers)
        self._peers = None
        if self._server is not None:
            self._server.close()
        for c in list(self.clients):
            c.close()
        for b in [*self.all_backends(), *self.migration.backends()]:
            b.close()
        if self._server is not None:
            await self._server.wait_closed()


# Young collections every this many net allocations of GC-tracked objects (CPython: 700).
GC_YOUNG_THRESHOLD = 50_000


def tune_gc_for_serving() -> None:
    """Make Python's cyclic garbage collector cheap for a proxy that is up and serving.

    Requests in flight keep thousands of small tracked objects alive at any moment (fan-out
    states, callbacks). With CPython's default threshold a young collection runs every 700
    allocations and walks all of them: 15% of the proxy's CPU in the replicated, pipelined
    benchmark. Raising the threshold makes each walk pay for many more allocations, and
    freezing what exists after start-up (modules, config, routes) keeps it out of every full
    collection. Cycles (a closed connection and its bound callbacks) are still collected."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)

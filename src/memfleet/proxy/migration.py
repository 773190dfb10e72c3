"""The resize window: which pools keep their old placements after a reload, for how long,
and what happens when the window ends (``migration_window``; the routing itself is
``memfleet.routes.migrate``).

A reload that changes a pool's placement (its backend list or seed, under the same pool name)
opens a window: the placement that served until then joins the pool's old placements (newest
first) and the window restarts (``migration_window`` seconds from this reload, for every pool
in a window). A placement equal to the new one leaves the list: rolled back to the backend
list it had, a pool reads through from the placement it is leaving, whose writes deleted the
old copies, so a rollback serves no old value. A reload that changes no placement keeps the
window as it is. When the window is over the route tree is built again without migration
routes (the hot path is the pool's own again) and the backends no config names any more are
closed; the window waits while an old-owner delete on a backend of the config is journaled
(it is retried every second until it succeeds). ``migration_window: 0`` switches at once.

The guarantees are per proxy: a proxy that has not reloaded yet still writes to the old owner
only. Each proxy reports the hash of the config it serves (``config_hash`` in ``stats``, the
``memfleet_config_info`` metric, ``/readyz``); scale in once every proxy reports the new one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from memfleet.backends.backend import Backend
from memfleet.backends.pool import Pool
from memfleet.routes.base import Route
from memfleet.routes.migrate import MigrationRoute
from memfleet.routes.migrate_state import DeleteJournal, MigrationCounters
from memfleet.routes.pool import PoolRoute

log = logging.getLogger("memfleet.proxy")

# Seconds between retries of journaled old-owner deletes (and re-checks of a window that waits
# for them).
RETRY_INTERVAL = 1.0

PlacementKey = tuple[tuple[str, ...], str | None]


def placement_of(pool: Pool) -> PlacementKey:
    """What decides where a pool puts a key: its backends' addresses in order, its seed."""
    return tuple(b.name for b in pool.backends), pool.seed


class MigrationWindow:
    """The open window (if any) of one proxy process: the old placements per pool, the
    counters, the journal of failed old-owner deletes and the timers."""

    def __init__(self, on_end: Callable[[list[Backend]], None]) -> None:
        self.counters = MigrationCounters()
        self.journal = DeleteJournal(self.counters)
        self.olds: dict[str, list[Pool]] = {}  # pool name -> old placements, newest first
        self._on_end = on_end
        self._end_timer: asyncio.TimerHandle | None = None
        self._tick_timer: asyncio.TimerHandle | None = None
        self._waiting_logged = False
        self._backends: dict[str, Backend] = {}  # by name: what the journal retries through
        self._serving: set[str] = set()  # the backends the config in force names

    @property
    def active(self) -> bool:
        """True while some pool keeps an old placement."""
        return bool(self.olds)

    def plan(self, serving: dict[str, Pool], new: dict[str, Pool], window: float) -> list[str]:
        """Work out the old placements after a reload from the pools ``serving`` to ``new``;
        return the pools whose placement this reload changed."""
        changed = [
            name
            for name, pool in new.items()
            if name in serving and placement_of(serving[name]) != placement_of(pool)
        ]
        if window <= 0:
            self.olds = {}
            return changed
        live = {b.name: b for p in new.values() for b in p.backends}
        kept = {b.name: b for chain in self.olds.values() for p in chain for b in p.backends}
        olds: dict[str, list[Pool]] = {}
        for name, pool in new.items():
            chain = list(self.olds.get(name, []))
            if name in changed:
                chain.insert(0, serving[name])
            here = placement_of(pool)
            fresh: list[Pool] = []
            seen: set[PlacementKey] = {here}
            for old in chain:
                key = placement_of(old)
                if key in seen:
                    continue  # the new placement itself (a rollback), or listed already
                seen.add(key)
                # The same nodes as now, through the live connections where the config still
                # names them (their options may have changed), else the ones kept open.
                backends = [live.get(b.name) or kept.get(b.name) or b for b in old.backends]
                fresh.append(Pool(name, backends, old.seed))
            if fresh:
                olds[name] = fresh
        self.olds = olds
        return changed

    def wrap(self, name: str, route: PoolRoute) -> Route:
        """The route the tree reaches pool ``name`` through (``memfleet.routes.builder``)."""
        chain = self.olds.get(name)
        if not chain:
            return route
        olds = [PoolRoute(p) for p in chain]
        return MigrationRoute(route, olds, self.counters, self.journal)

    def backends(self) -> list[Backend]:
        """The backends the old placements keep open."""
        seen: dict[int, Backend] = {}
        for chain in self.olds.values():
            for p in chain:
                for b in p.backends:
                    seen.setdefault(id(b), b)
        return list(seen.values())

    def started(self, changed: list[str], pools: dict[str, Pool], window: float) -> None:
        """After the reload has swapped the tree in: (re)start the window's timer, log."""
        self._serving = {b.name for p in pools.values() for b in p.backends}
        self._backends = {b.name: b for p in pools.values() for b in p.backends}
        for b in self.backends():
            self._backends.setdefault(b.name, b)
        counters = self.counters
        if not changed:
            if not self.olds and counters.active:
                self._finish("no old placement left")
            return
        sizes = ", ".join(
            f"{n} {len(self.olds[n][0].backends) if n in self.olds else '?'} -> "
            f"{len(pools[n].backends)} backends"
            for n in changed
        )
        if not self.olds:
            log.info(
                "pool(s) resized (%s) with migration_window 0: moved keys miss from now on",
                sizes, extra={"event": "migration_off", "pools": ",".join(changed)},
            )  # fmt: skip
            if counters.active:
                self._finish("migration_window is 0")
            return
        counters.active = True
        counters.windows_started += 1
        counters.ends_at = time.time() + window
        self._waiting_logged = False
        log.info(
            "migration window open for %gs: %s (moved keys read through from their old "
            "owners)", window, sizes,
            extra={"event": "migration_start", "pools": ",".join(changed), "window": window},
        )  # fmt: skip
        loop = _loop()
        if loop is None:
            return
        if self._end_timer is not None:
            self._end_timer.cancel()
        self._end_timer = loop.call_later(window, self._due)
        if self._tick_timer is None:
            self._tick_timer = loop.call_later(RETRY_INTERVAL, self._tick)

    def _tick(self) -> None:
        """Retry the journaled deletes, every second while a window is open or a delete on
        a backend of the config is journaled."""
        self._tick_timer = None
        journal = self.journal
        if journal.size:
            journal.retry(self._backends)
        if self.counters.active or self._journaled_here():
            loop = _loop()
            if loop is not None:
                self._tick_timer = loop.call_later(RETRY_INTERVAL, self._tick)

    def _journaled_here(self) -> list[str]:
        return sorted(n for n in self.journal.names() if n in self._serving)

    def _due(self) -> None:
        self._end_timer = None
        waiting = self._journaled_here()
        if waiting:
            if not self._waiting_logged:
                self._waiting_logged = True
                log.warning(
                    "migration window over, but deletes of old copies are still journaled "
                    "on %s: it stays open until they are done", ", ".join(waiting),
                    extra={"event": "migration_wait", "backends": ",".join(waiting)},
                )  # fmt: skip
            loop = _loop()
            if loop is not None:
                self._end_timer = loop.call_later(RETRY_INTERVAL, self._due)
            return
        self._finish("window over")

    def _finish(self, why: str) -> None:
        c = self.counters
        olds = self.backends()
        self.olds = {}
        c.active = False
        c.ends_at = 0.0
        c.windows_ended += 1
        if self._end_timer is not None:
            self._end_timer.cancel()
            self._end_timer = None
        log.info(
            "migration window closed (%s): %d keys moved, %d fallback hits, %d copies, %d "
            "copies dropped for a later write, %d old-owner deletes (%d failed, %d journaled "
            "now)", why, c.keys_moved, c.fallback_hits, c.copies, c.copies_dropped,
            c.old_deletes, c.old_delete_failures, self.journal.size,
            extra={"event": "migration_end", "keys_moved": c.keys_moved, "copies": c.copies},
        )  # fmt: skip
        self._on_end(olds)

    def close(self) -> None:
        """Stop the timers (the proxy is closing)."""
        for t in (self._end_timer, self._tick_timer):
            if t is not None:
                t.cancel()
        self._end_timer = self._tick_timer = None


def _loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None  # a unit test applying configs by hand: no timers

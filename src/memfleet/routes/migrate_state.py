"""What the resize windows did (counters) and the old-owner deletes they still owe (the
journal); the routing is ``memfleet.routes.migrate``."""

from __future__ import annotations

import time

from memfleet.backends.backend import Backend
from memfleet.backends.repair import key_token


class MigrationCounters:
    """What the resize windows did, for ``stats proxy`` and the metrics."""

    __slots__ = (
        "active", "copies", "copies_dropped", "ends_at", "fallback_hits", "fallbacks",
        "keys_moved", "old_delete_failures", "old_delete_retries", "old_deletes", "queued",
        "windows_ended", "windows_started",
    )  # fmt: skip

    def __init__(self) -> None:
        self.active = False
        self.ends_at = 0.0  # time.time() at which the open window is due to end
        self.windows_started = 0
        self.windows_ended = 0
        self.fallbacks = 0  # reads the new owner missed, asked of an old owner
        self.fallback_hits = 0  # of those, answered by an old owner
        self.keys_moved = 0  # keys found on an old owner (reads and read-throughs)
        self.copies = 0  # copies stored on the new owner
        self.copies_dropped = 0  # copies a later write beat (the write fence)
        self.old_deletes = 0  # deletes sent to old owners
        self.old_delete_failures = 0  # of those, failed: journaled
        self.old_delete_retries = 0  # journaled deletes sent again
        self.queued = 0  # requests that waited behind a read-through of their key

    def lines(self, journaled: int) -> list[tuple[str, object]]:
        """``STAT`` lines (``migration_<name>``)."""
        remaining = max(0.0, self.ends_at - time.time()) if self.active else 0.0
        return [
            ("migration_active", int(self.active)),
            ("migration_window_remaining", int(remaining + 0.999)),
            ("migration_windows_started", self.windows_started),
            ("migration_windows_ended", self.windows_ended),
            ("migration_fallbacks", self.fallbacks),
            ("migration_fallback_hits", self.fallback_hits),
            ("migration_keys_moved", self.keys_moved),
            ("migration_copies", self.copies),
            ("migration_copies_dropped", self.copies_dropped),
            ("migration_old_deletes", self.old_deletes),
            ("migration_old_delete_failures", self.old_delete_failures),
            ("migration_old_delete_retries", self.old_delete_retries),
            ("migration_journaled", journaled),
            ("migration_queued", self.queued),
        ]


class DeleteJournal:
    """Old-owner deletes that failed, by backend name (``host:port``): retried until they
    succeed, never forgotten. Past ``limit`` keys on one backend, that backend is to be
    flushed instead (no old value survives, the warm data goes)."""

    __slots__ = ("counters", "flush_due", "keys", "limit", "size")

    def __init__(self, counters: MigrationCounters, limit: int = 100_000) -> None:
        self.counters = counters
        self.keys: dict[str, set[bytes]] = {}
        self.flush_due: set[str] = set()
        self.limit = limit
        self.size = 0  # keys journaled plus backends due a flush: 0 is the fast check

    def add(self, name: str, key: bytes) -> None:
        """The delete of ``key`` on backend ``name`` failed."""
        if name in self.flush_due:
            return
        keys = self.keys.setdefault(name, set())
        if key in keys:
            return
        if len(keys) >= self.limit:
            self.size -= len(keys) - 1
            del self.keys[name]
            self.flush_due.add(name)
            return
        keys.add(key)
        self.size += 1

    def holds(self, name: str, key: bytes) -> bool:
        """True while ``name`` may still hold an old value of ``key``."""
        if name in self.flush_due:
            return True
        keys = self.keys.get(name)
        return keys is not None and key in keys

    def done(self, name: str, key: bytes) -> None:
        """The delete of ``key`` on ``name`` succeeded."""
        keys = self.keys.get(name)
        if keys is not None and key in keys:
            keys.discard(key)
            self.size -= 1
            if not keys:
                del self.keys[name]

    def names(self) -> set[str]:
        """Backends with something journaled."""
        return set(self.keys) | self.flush_due

    def retry(self, backends: dict[str, Backend], batch: int = 1000) -> None:
        """Send the journaled deletes again (up to ``batch`` per backend) to the backends
        that can take them; a backend due a flush is flushed."""
        for name in list(self.flush_due):
            b = backends.get(name)
            if b is not None and not b.down:
                self.counters.old_delete_retries += 1
                b.send(b"flush_all\r\n", self._flushed, name)
        for name, keys in list(self.keys.items()):
            b = backends.get(name)
            if b is None or b.down:
                continue
            for key in list(keys)[:batch]:
                self.counters.old_delete_retries += 1
                self.send_delete(b, key)

    def send_delete(self, b: Backend, key: bytes) -> None:
        """Send (again) the delete of ``key`` on ``b``; its outcome updates the journal."""
        tok, b64 = key_token(key)
        b.send(b"md " + tok + b64 + b"\r\n", self._deleted, (b.name, key))

    def _deleted(self, token: tuple[str, bytes], reply: bytes) -> None:
        if reply.startswith(b"HD") or reply.startswith(b"NF"):
            self.done(token[0], token[1])

    def _flushed(self, name: str, reply: bytes) -> None:
        if reply.startswith(b"OK") and name in self.flush_due:
            self.flush_due.discard(name)
            self.size -= 1

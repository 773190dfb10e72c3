"""Repairing a replica before it serves again (``rejoin: repair``, and ``invalidate``).

A replica that missed writes is out of service with a journal of the keys it missed
(``Backend.missed_write``). Once its probe is answered, and once every connection that was cut
from it while it hung has drained (see ``memfleet.backends.connection``: a write already in a
hung node's socket is applied when it resumes, so a repair sent before that would be undone),
each journaled key is repaired in rounds:

- ``repair``: read from a healthy replica in service (``mg <key> v f t``) and written on the
  returning one with its value, client flags and remaining TTL (``ms ... F T``; memcached reads
  a TTL over 30 days as a Unix time, so a longer one is sent as one; -1, no expiry, as 0); a key
  the healthy replica does not hold is deleted (``md``). When no replica in service can
  answer, the key is deleted instead (a miss, never a stale read).
- ``invalidate`` (or a replica with nobody to copy from): the key is deleted.

A write routed while the repair runs wins: the replica is still out of service, so the write
fails fast on it and is journaled again, and a copy read before that write is dropped (the
write fence). The replica serves again once a round ends with an empty journal. What a copy
cannot preserve: CAS values (memcached assigns its own per node), sub-second TTLs (``t`` is in
whole seconds), and a stale mark from ``md ... I`` (it is not copied).
"""

from __future__ import annotations

import base64
import time
from typing import Any, Protocol

from memfleet.backends.fence import FENCE
from memfleet.protocol.requests import Kind, Request

# memcached reads an exptime above this many seconds as a Unix time.
RELATIVE_MAX = 60 * 60 * 24 * 30
# Rounds in one go before the repair waits for the next probe (writes keep re-journaling).
MAX_ROUNDS = 50


class Source(Protocol):
    """Where a key can be read from: a sibling replica's route (a pool)."""

    def send(self, req: Request, cb: Any, token: Any) -> None:
        """Route ``req``."""

    def backend_for(self, key: bytes) -> Any:
        """The backend ``key`` is read from."""


class Target(Protocol):
    """The returning replica, as a repair needs it."""

    down: bool
    repair_sources: list[Any]

    def repair_send(self, wire: bytes, cb: Any, token: Any) -> None:
        """Send on the replica's own connection (it is still out of service)."""

    def repair_finished(self, complete: bool) -> None:
        """A round is over; ``complete`` when no key of it needs another go."""


def exptime(ttl: int, now: float) -> int | None:
    """The exptime that gives a copy ``ttl`` remaining seconds (memcached's ``t``: -1 is no
    expiry); None when the item expires now (delete it instead)."""
    if ttl < 0:
        return 0
    if ttl == 0:
        return None
    if ttl > RELATIVE_MAX:
        return int(now) + ttl
    return ttl


def key_token(key: bytes) -> tuple[bytes, bytes]:
    """The key as a meta command spells it, and the flag that says so."""
    if len(key) <= 250 and all(32 < c < 127 for c in key):
        return key, b""
    return base64.b64encode(key), b" b"


def parse_hit(reply: bytes) -> tuple[bytes, int, int] | None:
    """Value, client flags and remaining TTL of an ``mg ... v f t`` hit."""
    if not reply.startswith(b"VA "):
        return None
    eol = reply.find(b"\r\n")
    tokens = reply[:eol].split(b" ")
    size = int(tokens[1])
    flags, ttl = 0, -1
    for t in tokens[2:]:
        if t[:1] == b"f":
            flags = int(t[1:])
        elif t[:1] == b"t":
            ttl = int(t[1:])
    return reply[eol + 2 : eol + 2 + size], flags, ttl


class KeyRepair:
    """One journaled key's repair: read it from the first replica that answers, then write
    (or delete) it on the returning replica."""

    __slots__ = ("copy", "key", "round", "snap", "sources", "target")

    def __init__(self, rnd: RepairRound, key: bytes, copy: bool) -> None:
        self.round = rnd
        self.target = rnd.target
        self.key = key
        self.copy = copy
        target = rnd.target
        self.sources = [s for s in target.repair_sources if s.backend_for(key) is not target]
        self.snap = 0

    def start(self) -> None:
        """Read from the next source, or delete when there is none (left)."""
        if not self.copy or not self.sources:
            self._delete()
            return
        source = self.sources.pop(0)
        token, b = key_token(self.key)
        self.snap = FENCE.snapshot()
        wire = b"mg " + token + b + b" v f t\r\n"
        source.send(Request(Kind.KEYED, b"mg", wire, self.key), self._read, None)

    def _read(self, _token: object, reply: bytes) -> None:
        if FENCE.written_since(self.key, self.snap):
            # A write of the key was routed after this read: it wins (it failed fast on the
            # replica and is journaled again; the next round copies what it wrote).
            self.round.redo(self.key, dropped=True)
            return
        hit = parse_hit(reply)
        if hit is not None:
            value, flags, ttl = hit
            exp = exptime(ttl, time.time())
            if exp is None:
                self._delete()
                return
            token, b = key_token(self.key)
            head = b"ms %s %d F%d T%d%s\r\n" % (token, len(value), flags, exp, b)
            self.target.repair_send(head + value + b"\r\n", self._written, True)
        elif reply.startswith(b"EN"):
            self._delete()  # the healthy replica does not hold it: neither may this one
        else:
            self.start()  # that replica failed: the next one, or a delete

    def _delete(self) -> None:
        token, b = key_token(self.key)
        self.target.repair_send(b"md " + token + b + b"\r\n", self._written, False)

    def _written(self, copied: bool, reply: bytes) -> None:
        if reply.startswith(b"HD") or reply.startswith(b"NF"):
            self.round.done(copied)
        else:
            self.round.redo(self.key, dropped=False)


class RepairRound:
    """One round over the journal: every key repaired or put back for the next round."""

    __slots__ = ("copied", "deleted", "dropped", "left", "redo_keys", "target")

    def __init__(self, target: Target) -> None:
        self.target = target
        self.left = 0
        self.copied = 0
        self.deleted = 0
        self.dropped = 0
        self.redo_keys: list[bytes] = []

    def run(self, keys: list[bytes], copy: bool) -> None:
        """Repair ``keys`` (copy them, or delete them when ``copy`` is False)."""
        self.left = len(keys)
        for k in keys:
            KeyRepair(self, k, copy).start()

    def done(self, copied: bool) -> None:
        """One key repaired."""
        if copied:
            self.copied += 1
        else:
            self.deleted += 1
        self._one_less()

    def redo(self, key: bytes, dropped: bool) -> None:
        """One key must go again (a write came after its read, or the write failed)."""
        self.redo_keys.append(key)
        if dropped:
            self.dropped += 1
        self._one_less()

    def _one_less(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.target.repair_finished(not self.redo_keys)

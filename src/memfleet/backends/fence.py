"""The write fence: was a write of this key routed after a given moment?

A fill (``allfastest``'s or ``zfailover``'s ``fill_ttl`` copy) and a repair copy are writes the
proxy makes up from what it read earlier. Sent after a client's own write or delete of the same
key, such a copy would undo it: ``get k`` + ``delete k`` pipelined, with a replica that lacked
``k``, brought the deleted value back through the fill's ``add``. So every routed write bumps a
counter, and a copy is dropped when a write of its key was routed after the read it came from.

The fence is one process-wide counter and a table of the counter's value at the last write, per
slot (a key's slot is its built-in ``hash`` modulo the table size; bytes cache their hash, so a
key is hashed once however often it is asked). Two keys sharing a slot can only drop a copy that
was safe, never let an unsafe one through. A read takes a snapshot of the counter (a plain
integer read, nothing hashed); only a fill or a repair looks a key up.

With ``--workers`` that is not enough: another worker's write goes out on its own connections,
in no order with this worker's read and fill, so a fill could land after another worker's
delete and bring the key back (it did in most rounds of a get/delete race between two
workers). The workers then also share a table (``share``: a memory mapping the supervisor
hands out, one row per worker, each row written by its worker only): per slot (of a hash every
process computes alike), how many writes the worker has in flight and the clock
(``CLOCK_MONOTONIC``, one clock for every process) at its last routing or answer. The counter
becomes that clock too. A fill is dropped, or deleted again once stored, when another worker
had a write of its slot in flight or active since the read (``peers_active``): a write whose
life overlaps the read and the fill is always seen, one that ended before the read is already
on the node the read asked.
"""

from __future__ import annotations

import time
from typing import Final

import xxhash

# 65,536 slots: 512 KiB of pointers, few enough collisions that a drop is almost always real.
_SLOTS: Final = 1 << 16
_MASK: Final = _SLOTS - 1
# Bytes of one worker's row in the shared table: an in-flight count and a clock per slot.
ROW_BYTES: Final = 2 * _SLOTS * 8
# The shared table's slot: ``hash`` of bytes is salted per process, so every worker must
# compute one that is not.
_xxh3: Final = xxhash.xxh3_64_intdigest


class WriteFence:
    """The write counter and the last write's count per key slot (and, with ``--workers``,
    the table the workers share)."""

    __slots__ = ("_row", "_rows", "seq", "shared", "slots")

    def __init__(self) -> None:
        self.seq = 0
        self.slots: list[int] = [0] * _SLOTS
        # The shared table as int64s (row r: in flight at r*2*SLOTS, clocks after them); None
        # in a single-process proxy, which then never reads a clock.
        self.shared: memoryview | None = None
        self._row = 0
        self._rows = 0

    def share(self, table: memoryview, row: int, rows: int) -> None:
        """Use ``table`` (``rows`` rows of ``ROW_BYTES``, cast to int64) as this worker's
        shared fence, writing row ``row``. A predecessor that died with writes in flight left
        them counted: they are cleared, with their clock set to now, so that a fill read before
        they ended is still dropped."""
        now = time.monotonic_ns()
        base = row * 2 * _SLOTS
        for i in range(base, base + _SLOTS):
            if table[i]:
                table[i] = 0
                table[i + _SLOTS] = now
        self.seq = max(self.seq, now)
        self._row = row
        self._rows = rows
        self.shared = table

    def snapshot(self) -> int:
        """The moment a read is routed, for ``written_since``."""
        if self.shared is None:
            return self.seq
        return max(self.seq, time.monotonic_ns())

    def _tick(self) -> int:
        seq = self.seq + 1
        if self.shared is not None:
            seq = max(seq, time.monotonic_ns() + 1)
        self.seq = seq
        return seq

    def bump(self, key: bytes) -> None:
        """A write of ``key`` is being routed now (with ``--workers``, ``settled`` must follow
        when its backend answers)."""
        seq = self._tick()
        self.slots[hash(key) & _MASK] = seq
        table = self.shared
        if table is not None:
            i = self._row * 2 * _SLOTS + (_xxh3(key) & _MASK)
            table[i] += 1
            table[i + _SLOTS] = seq

    def settled(self, key: bytes) -> None:
        """A write of ``key`` that ``bump`` counted was answered (or failed)."""
        table = self.shared
        if table is not None:
            i = self._row * 2 * _SLOTS + (_xxh3(key) & _MASK)
            if table[i] > 0:
                table[i] -= 1
            table[i + _SLOTS] = self._tick()

    def peers_active(self, key: bytes, snapshot: int) -> bool:
        """True when another worker has a write of ``key``'s slot in flight, or routed or
        answered one after ``snapshot`` (always False without ``--workers``)."""
        table = self.shared
        if table is None:
            return False
        h = _xxh3(key) & _MASK
        for r in range(self._rows):
            if r != self._row:
                i = r * 2 * _SLOTS + h
                if table[i] > 0 or table[i + _SLOTS] >= snapshot:
                    return True
        return False

    def written_since(self, key: bytes, snapshot: int) -> bool:
        """True when a write of ``key`` (or of a key sharing its slot) was routed after
        ``snapshot`` (a value of ``snapshot()``), here or, with ``--workers``, in another
        worker (or is still in flight there)."""
        if self.slots[hash(key) & _MASK] > snapshot:
            return True
        return self.shared is not None and self.peers_active(key, snapshot)


# One per process: every route and backend of every config generation shares it (a reload
# must not forget a write routed just before it).
FENCE: Final = WriteFence()

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
"""

from __future__ import annotations

from typing import Final

# 65,536 slots: 512 KiB of pointers, few enough collisions that a drop is almost always real.
_SLOTS: Final = 1 << 16
_MASK: Final = _SLOTS - 1


class WriteFence:
    """The write counter and the last write's count per key slot."""

    __slots__ = ("seq", "slots")

    def __init__(self) -> None:
        self.seq = 0
        self.slots: list[int] = [0] * _SLOTS

    def bump(self, key: bytes) -> None:
        """A write of ``key`` is being routed now."""
        seq = self.seq + 1
        self.seq = seq
        self.slots[hash(key) & _MASK] = seq

    def written_since(self, key: bytes, snapshot: int) -> bool:
        """True when a write of ``key`` (or of a key sharing its slot) was routed after
        ``snapshot`` (a value of ``seq``)."""
        return self.slots[hash(key) & _MASK] > snapshot


# One per process: every route and backend of every config generation shares it (a reload
# must not forget a write routed just before it).
FENCE: Final = WriteFence()

"""The unparsed tail of a byte stream, shared by the request parser and the reply framer."""

from __future__ import annotations


class PendingBytes:
    """A partial message, kept until the reads that complete it arrive.

    When the size still missing is known (a data block), reads are collected and joined once
    enough have arrived: a large value costs one copy, not one per read.
    """

    __slots__ = ("_chunks", "_need", "size")

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self.size = 0  # bytes kept (an attribute, not only len(): read per request)
        self._need = 0

    def __len__(self) -> int:
        return self.size

    def take(self, data: bytes) -> bytes | None:
        """What is kept plus ``data``, or None while a known size is not reached yet."""
        if not self.size:
            return data
        self._chunks.append(data)
        self.size += len(data)
        if self.size < self._need:
            return None
        buf = b"".join(self._chunks)
        self.clear()
        return buf

    def keep(self, rest: bytes, need: int = 0) -> None:
        """Keep ``rest``; with ``need``, nothing is worth parsing before that many bytes."""
        self._chunks = [rest] if rest else []
        self.size = len(rest)
        self._need = need

    def clear(self) -> None:
        """Drop whatever is kept."""
        self._chunks = []
        self.size = 0
        self._need = 0

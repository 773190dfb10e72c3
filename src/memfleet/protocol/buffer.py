"""What the request parser and the reply framer share: the unparsed tail of a byte stream,
and decimal numbers, read in place or checked as memcached's strtol and strtoul check them."""

from __future__ import annotations

from typing import Final

from mypy_extensions import i64

# More digits than this are never accumulated: any 18-digit number fits in an i64.
MAX_DIGITS: Final = 18
_U64: Final = 2**64


def read_digits(buf: bytes, i: i64, n: i64) -> tuple[i64, i64]:
    """The ASCII digits of ``buf`` from ``i`` (up to ``n``): where they end, and their value,
    which is -1 if there are none or more than ``MAX_DIGITS``. Read with index primitives,
    no slice and no ``int()`` call: in the compiled build, C integers throughout."""
    first = i
    value: i64 = 0
    while i < n:
        c: i64 = buf[i]
        if c < 48 or c > 57:
            break
        if i - first < MAX_DIGITS:
            value = value * 10 + c - 48
        i += 1
    if i == first or i - first > MAX_DIGITS:
        value = -1
    return i, value


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

    def add(self, data: bytes) -> None:
        """Keep ``data`` after what is kept, unparsed (a reader that is held back)."""
        if data:
            self._chunks.append(data)
            self.size += len(data)

    def drain(self) -> bytes:
        """Everything kept, joined; nothing is kept after."""
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


def parse_int(tok: bytes) -> int | None:
    """Digits with an optional sign, as C's strtol/strtoul accept them; None otherwise."""
    n = len(tok)
    end, v = read_digits(tok, 0, n)  # the usual short unsigned number, without int()
    if end == n and v >= 0:
        return v
    if tok.isdigit():
        return int(tok)
    if len(tok) > 1 and tok[0] in b"+-" and tok[1:].isdigit():
        return int(tok)
    return None


def ok_flags(tok: bytes) -> bool:
    """memcached's ``safe_strtoul``: any unsigned 64-bit number, negatives refused."""
    v = parse_int(tok)
    return v is not None and (v == 0 or 0 < v < _U64)


def ok_exptime(tok: bytes) -> bool:
    """memcached's ``safe_strtol`` for a 32-bit signed exptime."""
    v = parse_int(tok)
    return v is not None and -(2**63) <= v < 2**63


def as_int32(v: int) -> int:
    """``v`` stored into a C ``int32_t``: its low 32 bits, signed."""
    return ((v + 2**31) % 2**32) - 2**31

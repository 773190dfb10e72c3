"""Framing of backend replies, and the reply classes routes decide on.

A backend connection is a FIFO: each request gets exactly one reply. ``ResponseFramer`` cuts
the byte stream into those replies without knowing which command each answers:

- ``VALUE <key> <flags> <bytes> [<cas>]`` blocks run until ``END`` (get family);
- ``VA <bytes> <flags>*`` is one line plus a data block (mg, ma with ``v``);
- ``STAT``, ``ITEM`` and ``PREFIX`` lines run until ``END`` (``stats`` and its groups,
  ``stats cachedump``, ``stats detail dump``: no other command's reply starts so);
- any other line is a whole reply (``STORED``, ``HD``, ``EN``, ``SERVER_ERROR ...``).

Replies are returned as the exact bytes memcached sent, so the common case forwards them
untouched.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from mypy_extensions import i64

from memfleet.protocol import errors
from memfleet.protocol.buffer import PendingBytes, read_digits


class Result(IntEnum):
    """Reply classes as memcached's proxy defines them: only END/EN is a miss."""

    HIT = 0
    MISS = 1
    OK = 2  # any other answer: STORED, NOT_FOUND, NOT_STORED, EXISTS, HD, NF, numbers...
    ERROR = 3  # SERVER_ERROR / CLIENT_ERROR / ERROR, including the proxy's backend failure


# The members again as module constants: the compiled build keeps these in C variables,
# where ``Result.HIT`` would be an attribute lookup on the enum class for every reply.
HIT: Final = Result.HIT
MISS: Final = Result.MISS
OK: Final = Result.OK
ERROR: Final = Result.ERROR


def classify(reply: bytes) -> Result:
    """The result class of one framed reply."""
    if reply.startswith(b"V"):  # VALUE / VA
        return HIT
    if reply.startswith(b"EN") and (reply == b"END\r\n" or reply[2:3] in (b"\r", b" ")):
        return MISS
    if (
        reply.startswith(b"SERVER_ERROR")
        or reply.startswith(b"CLIENT_ERROR")
        or reply.startswith(b"ERROR")
    ):
        return ERROR
    return OK


def is_error(reply: bytes) -> bool:
    """True for SERVER_ERROR/CLIENT_ERROR/ERROR replies."""
    return classify(reply) is ERROR


class FramingError(Exception):
    """The backend sent bytes that are not a memcached reply; the connection is unusable."""


class ResponseFramer:
    """Cuts a backend's byte stream into whole replies. Sans-IO."""

    __slots__ = ("_out", "_rest", "max_reply")

    def __init__(self, max_reply: int = 64 * 1024 * 1024) -> None:
        self.max_reply = max_reply
        self._rest = PendingBytes()
        self._out: list[bytes] = []

    def feed(self, data: bytes) -> list[bytes]:
        """Append ``data``; return the replies it completed, in order. The list is reused by
        the next call: read it before feeding again."""
        out = self._out
        out.clear()
        buf = self._rest.take(data)
        if buf is None:
            return out
        try:
            self._cut(buf, len(buf), out)
        except (ValueError, IndexError, OverflowError):
            raise FramingError(f"malformed backend reply: {buf[:60]!r}") from None
        return out

    def _cut(self, buf: bytes, n: i64, out: list[bytes]) -> None:
        # One pass over the buffer: it runs for every reply the proxy forwards. Fixed tokens
        # are checked byte by byte rather than by slice: in the compiled build an index is a
        # primitive while a slice is a new object, and i64 positions are plain C integers.
        start: i64 = 0
        need: i64 = 0  # when a data block is cut off: the bytes its reply needs in all
        while start < n:
            pos: i64 = start
            end: i64 = -1
            while True:
                c = buf[pos]
                if c == 86 and pos + 5 < n and buf[pos + 1] == 65:  # "VA"
                    if buf[pos + 2] == 76 and buf[pos + 5] == 32:  # "VALUE "
                        nxt = _value_end(buf, pos + 6, n)
                        if nxt < 0:
                            break
                        if nxt > n:
                            need = nxt - start
                            break
                        if buf[nxt - 2] != 13 or buf[nxt - 1] != 10:
                            raise ValueError("data block not followed by CRLF")
                        pos = nxt
                        if pos + 4 < n and _is_end(buf, pos):
                            end = pos + 5  # a one-key get's hit: no search for the END line
                            break
                        if pos == n:
                            break
                        continue
                    if buf[pos + 2] == 32:  # "VA <bytes> <flags>*": mg/ma with a value
                        eol = buf.find(b"\n", pos)
                        if eol < 0:
                            break
                        size = int(buf[pos + 3 : eol].split(b" ", 1)[0])
                        if size < 0 or size > self.max_reply:
                            raise ValueError("bad length")
                        end = eol + 3 + size
                        if end > n:
                            need = end - start
                            end = -1
                        break
                if c == 69 and pos + 4 < n and _is_end(buf, pos):
                    end = pos + 5
                    break
                if (c == 83 or c == 73 or c == 80) and _is_listing(buf, pos, n):
                    stop = buf.find(b"\r\nEND\r\n", pos)
                    if stop >= 0:
                        end = stop + 7
                    break
                # END closes a get; any other line is a whole reply (or an error ending a get).
                eol = _line_end(buf, pos, n)
                if eol >= 0:
                    end = eol + 1
                break
            if end < 0:
                break
            out.append(buf[start:end] if start or end != n else buf)
            start = end
        if start < n:
            rest = buf[start:] if start else buf
            if len(rest) > self.max_reply:
                raise FramingError("backend reply exceeds the size limit")
            self._rest.keep(rest, need)


def _is_end(buf: bytes, pos: i64) -> bool:
    """``END\\r\\n`` at ``pos`` (the caller checked that five bytes are there)."""
    return (
        buf[pos] == 69
        and buf[pos + 1] == 78
        and buf[pos + 2] == 68
        and buf[pos + 3] == 13
        and buf[pos + 4] == 10
    )


def _is_listing(buf: bytes, pos: i64, n: i64) -> bool:
    """A ``STAT ``, ``ITEM `` or ``PREFIX `` line at ``pos``: the first of a listing that
    runs until ``END`` (the caller checked the first byte is S, I or P). ``STORED`` and
    ``SERVER_ERROR`` part from ``STAT`` at the second or third byte."""
    if pos + 6 >= n:
        return False
    c = buf[pos]
    if c == 83:
        return (
            buf[pos + 1] == 84 and buf[pos + 2] == 65 and buf[pos + 3] == 84 and buf[pos + 4] == 32
        )
    if c == 73:
        return (
            buf[pos + 1] == 84 and buf[pos + 2] == 69 and buf[pos + 3] == 77 and buf[pos + 4] == 32
        )
    return buf[pos : pos + 7] == b"PREFIX "


def _line_end(buf: bytes, pos: i64, n: i64) -> i64:
    """The index of the LF ending the line at ``pos``, or -1. Short lines (the usual
    replies) are scanned: cheaper than a ``find`` call in the compiled build."""
    stop = pos + 64
    if stop > n:
        stop = n
    while pos < stop:
        if buf[pos] == 10:
            return pos
        pos += 1
    return buf.find(b"\n", pos) if pos < n else -1


def _value_end(buf: bytes, i: i64, n: i64) -> i64:
    """Where the data block of the ``VALUE`` line whose key starts at ``i`` ends (past its
    CRLF; beyond ``n`` when it is cut off), or -1 while the line itself is incomplete.

    ``VALUE <key> <flags> <bytes> [<cas>]`` is read forward: a key has no spaces, so the
    first one ends it, and the numbers are read in place (no split, no new objects)."""
    first = i
    c: i64 = 0
    while i < n:  # <key>, scanned rather than found: a bytes.find call costs more than
        c = buf[i]  # a short loop of index primitives in the compiled build
        if c == 32 or c == 10:
            break
        i += 1
    if i == n:
        return -1
    if i == first or c == 10:
        raise ValueError("bad VALUE key")
    i, flags = read_digits(buf, i + 1, n)
    if i == n:
        return -1
    if flags < 0 or buf[i] != 32:
        raise ValueError("bad VALUE flags")
    first = i + 1
    i, size = read_digits(buf, first, n)
    if i == n:
        return -1
    if size < 0 or i - first > 10:  # no value is that long
        raise ValueError("bad VALUE length")
    c = buf[i]
    if c == 32:  # <cas>: any number of digits, not needed as a value
        first = i + 1
        i, _cas = read_digits(buf, first, n)
        if i == n:
            return -1
        if i == first:
            raise ValueError("bad VALUE cas")
        c = buf[i]
    if c != 13:
        raise ValueError("VALUE line without CR")
    if i + 1 == n:
        return -1
    if buf[i + 1] != 10:
        raise ValueError("VALUE line without LF")
    return i + 4 + size


def merge_get_values(parts: list[bytes]) -> bytes:
    """The VALUE blocks of per-key replies, in order, without END: one part of a get sent on
    in chunks (``memfleet.proxy.connection``). A key whose backend failed is a miss; a part
    cannot stand for the whole get, so no part is ever an error."""
    return b"".join(p[:-5] if p.endswith(b"END\r\n") else p for p in parts if p.startswith(b"V"))


def merge_get_replies(parts: list[bytes]) -> bytes:
    """One get reply from per-key replies, in the client's key order, with a single END.

    A key whose backend failed counts as a miss, so one failed shard does not fail a
    multi-get for every other key (as mcrouter does); if every key failed, the client gets the
    first error instead of an empty answer that would hide an outage.
    """
    body: list[bytes] = []
    failed = 0
    first_error = b""
    for p in parts:
        if p.startswith(b"V"):
            body.append(p[:-5] if p.endswith(b"END\r\n") else p)
        elif p != errors.END:
            failed += 1
            if not first_error:
                first_error = p
    if failed and failed == len(parts):
        return first_error
    body.append(errors.END)
    return b"".join(body)

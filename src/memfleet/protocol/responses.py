"""Framing of backend replies, and the reply classes routes decide on.

A backend connection is a FIFO: each request gets exactly one reply. ``ResponseFramer`` cuts
the byte stream into those replies without knowing which command each answers:

- ``VALUE <key> <flags> <bytes> [<cas>]`` blocks run until ``END`` (get family);
- ``VA <bytes> <flags>*`` is one line plus a data block (mg, ma with ``v``);
- any other line is a whole reply (``STORED``, ``HD``, ``EN``, ``SERVER_ERROR ...``).

Replies are returned as the exact bytes memcached sent, so the common case forwards them
untouched.
"""

from __future__ import annotations

from enum import IntEnum

from memfleet.protocol import errors


class Result(IntEnum):
    """Reply classes as memcached's proxy defines them: only END/EN is a miss."""

    HIT = 0
    MISS = 1
    OK = 2  # any other answer: STORED, NOT_FOUND, NOT_STORED, EXISTS, HD, NF, numbers...
    ERROR = 3  # SERVER_ERROR / CLIENT_ERROR / ERROR, including the proxy's backend failure


def classify(reply: bytes) -> Result:
    """The result class of one framed reply."""
    c = reply[:1]
    if c == b"V":  # VALUE / VA
        return Result.HIT
    if reply == b"END\r\n" or (reply[:2] == b"EN" and reply[2:3] in (b"\r", b" ")):
        return Result.MISS
    if c in (b"S", b"C", b"E") and (
        reply.startswith(b"SERVER_ERROR")
        or reply.startswith(b"CLIENT_ERROR")
        or reply.startswith(b"ERROR")
    ):
        return Result.ERROR
    return Result.OK


def is_error(reply: bytes) -> bool:
    """True for SERVER_ERROR/CLIENT_ERROR/ERROR replies."""
    return classify(reply) is Result.ERROR


class FramingError(Exception):
    """The backend sent bytes that are not a memcached reply; the connection is unusable."""


class ResponseFramer:
    """Cuts a backend's byte stream into whole replies. Sans-IO."""

    __slots__ = ("_buf", "_chunks", "_have", "_need", "max_reply")

    def __init__(self, max_reply: int = 64 * 1024 * 1024) -> None:
        self.max_reply = max_reply
        self._buf = b""
        self._chunks: list[bytes] = []
        self._have = 0
        self._need = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Append ``data``; return the replies it completed, in order."""
        if self._need:
            self._chunks.append(data)
            self._have += len(data)
            if self._have < self._need:
                return []
            buf = b"".join(self._chunks)
            self._chunks = []
            self._have = self._need = 0
        elif self._buf:
            buf = self._buf + data
            self._buf = b""
        else:
            buf = data
        out: list[bytes] = []
        n = len(buf)
        start = 0
        while start < n:
            end = self._frame(buf, start, n)
            if end < 0:
                break
            out.append(buf[start:end] if start or end != n else buf)
            start = end
        if start < n:
            rest = buf[start:] if start else buf
            if len(rest) > self.max_reply:
                raise FramingError("backend reply exceeds the size limit")
            if self._need:
                self._chunks = [rest]
                self._have = len(rest)
            else:
                self._buf = rest
        return out

    def _frame(self, buf: bytes, start: int, n: int) -> int:
        """End offset of the reply starting at ``start``, or -1 if it is not complete yet."""
        pos = start
        while True:
            eol = buf.find(b"\n", pos)
            if eol < 0:
                return -1
            if buf.startswith(b"VALUE ", pos):
                size = self._size(buf[pos:eol].split(b" ")[3])
                pos = eol + 1 + size + 2
                if pos > n:
                    self._need = pos - start
                    return -1
                continue
            if buf.startswith(b"VA ", pos):
                size = self._size(buf[pos + 3 : eol].split(b" ", 1)[0])
                end = eol + 1 + size + 2
                if end > n:
                    self._need = end - start
                    return -1
                return end
            # END closes a get; any other line is a whole reply (or an error ending a get).
            return eol + 1

    @staticmethod
    def _size(tok: bytes) -> int:
        tok = tok.rstrip(b"\r")
        if not tok.isdigit():
            raise FramingError(f"bad length in backend reply: {tok[:20]!r}")
        return int(tok)


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
        if p[:1] == b"V":
            body.append(p[:-5] if p.endswith(b"END\r\n") else p)
        elif p != errors.END:
            failed += 1
            if not first_error:
                first_error = p
    if failed and failed == len(parts):
        return first_error
    body.append(errors.END)
    return b"".join(body)

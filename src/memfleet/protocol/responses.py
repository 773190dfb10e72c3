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
from memfleet.protocol.buffer import PendingBytes


class Result(IntEnum):
    """Reply classes as memcached's proxy defines them: only END/EN is a miss."""

    HIT = 0
    MISS = 1
    OK = 2  # any other answer: STORED, NOT_FOUND, NOT_STORED, EXISTS, HD, NF, numbers...
    ERROR = 3  # SERVER_ERROR / CLIENT_ERROR / ERROR, including the proxy's backend failure


def classify(reply: bytes) -> Result:
    """The result class of one framed reply."""
    if reply.startswith(b"V"):  # VALUE / VA
        return Result.HIT
    if reply.startswith(b"EN") and (reply == b"END\r\n" or reply[2:3] in (b"\r", b" ")):
        return Result.MISS
    if (
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

    __slots__ = ("_rest", "max_reply")

    def __init__(self, max_reply: int = 64 * 1024 * 1024) -> None:
        self.max_reply = max_reply
        self._rest = PendingBytes()

    def feed(self, data: bytes) -> list[bytes]:
        """Append ``data``; return the replies it completed, in order."""
        buf = self._rest.take(data)
        if buf is None:
            return []
        out: list[bytes] = []
        n = len(buf)
        try:
            self._cut(buf, n, out)
        except (ValueError, IndexError):
            raise FramingError(f"malformed backend reply: {buf[:60]!r}") from None
        return out

    def _cut(self, buf: bytes, n: int, out: list[bytes]) -> None:
        # One pass over the buffer, inlined: it runs for every reply the proxy forwards.
        start = 0
        need = 0  # when a data block is cut off: the bytes its reply needs in all
        find = buf.find
        while start < n:
            pos = start
            end = -1
            while True:
                eol = find(b"\n", pos)
                if eol < 0:
                    break
                if buf[pos] != 86:  # not "V": END, or any one-line reply (the common case)
                    end = eol + 1
                    break
                # Slices compared rather than startswith(prefix, pos): the compiled build has a
                # primitive for these, while a positional startswith is a full method call.
                if buf[pos : pos + 6] == b"VALUE ":
                    # VALUE <key> <flags> <bytes> [<cas>]: the numbers are read in place from
                    # the end of the line (no split into new objects, no search calls). Which
                    # one is <bytes> depends on whether a <cas> follows it, i.e. whether a space
                    # separates key and flags before the second-last number.
                    i = eol - 2
                    if buf[i + 1] != 13:
                        raise ValueError("VALUE line without CR")
                    last = prev = 0
                    for nth in (0, 1):  # the last number, then the one before it
                        value = 0
                        scale = 1
                        c = buf[i]
                        while 48 <= c <= 57:
                            value += (c - 48) * scale
                            scale *= 10
                            i -= 1
                            c = buf[i]
                        if c != 32 or scale == 1:
                            raise ValueError("bad VALUE line")
                        if nth == 0:
                            last = value
                            i -= 1
                        else:
                            prev = value
                    if i <= pos + 6:
                        raise ValueError("bad VALUE line")
                    size = prev if 32 in buf[pos + 6 : i] else last
                    pos = eol + 3 + size
                    if pos > n:
                        need = pos - start
                        break
                    if buf[pos : pos + 5] == b"END\r\n":
                        end = pos + 5  # a one-key get's hit: no search for the END line
                        break
                    continue
                if buf[pos : pos + 3] == b"VA ":
                    size = int(buf[pos + 3 : eol].split(b" ", 1)[0])
                    if size < 0:
                        raise ValueError("negative length")
                    end = eol + 3 + size
                    if end > n:
                        need = end - start
                        end = -1
                    break
                # END closes a get; any other line is a whole reply (or an error ending a get).
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

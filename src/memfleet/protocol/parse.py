"""The client request parser: text and meta framing (``memfleet.protocol.text_framing``) plus
the fast paths for the most common requests, so a request's bytes enter the codec once and come
out as what a route takes.

``RequestParser.feed_into(data, sink)`` is what a connection calls with each read: a plain
``get <key>\\r\\n`` comes out as ``sink.plain_get(key, line)`` (the client's own bytes, no
request object), everything else as ``sink.request(req)``.
"""

from __future__ import annotations

from memfleet.protocol.buffer import read_digits
from memfleet.protocol.requests import Kind, Request
from memfleet.protocol.text_framing import (
    _INT32_MAX,
    DEFAULT_MAX_ITEM_SIZE,
    DEFAULT_MAX_LINE_LENGTH,
    MAX_KEY_LENGTH,
    PARTIAL_LINE_LIMIT,
    TextFramer,
)

__all__ = [
    "DEFAULT_MAX_ITEM_SIZE",
    "DEFAULT_MAX_LINE_LENGTH",
    "MAX_KEY_LENGTH",
    "PARTIAL_LINE_LIMIT",
    "RequestParser",
]


class RequestSink:
    """Where ``RequestParser.feed_into`` hands requests: a plain get as its key and line, any
    other request as a ``Request``. A compiled base class rather than two callables, so that
    the parser's call is a native method call: with callables (a generic Python call per get)
    the sharded 16-deep pipelined cell measured +7.5% CPU per request against the code before
    the pipeline rework, with this class +1.9% (benchmarks/RESULTS.md, 2026-12-01)."""

    __slots__ = ()

    def plain_get(self, key: bytes, line: bytes) -> None:
        """A plain ``get <key>\\r\\n``: ``line`` is the client's own bytes."""
        raise NotImplementedError

    def request(self, req: Request) -> None:
        """Any other request, parsed."""
        raise NotImplementedError


class RequestParser(TextFramer):
    """Turns a client's byte stream into requests, with the fast paths. Sans-IO."""

    __slots__ = ()

    def can_bypass(self) -> bool:
        """True when nothing is buffered and no policy needs every request parsed, so a read
        may take the fast paths; the connection then counts as having spoken text."""
        if self._rest.size or self._swallow or self._skip_line or self._closed or not self.fast:
            return False
        self._fresh = False
        return True

    def feed_into(self, data: bytes, sink: RequestSink) -> None:
        """Parse ``data`` and hand each request on as it is framed: a plain single-key
        ``get <key>\r\n`` as ``sink.plain_get(key, line)`` (the client's own bytes, ready for a
        route's ``send_get``, with no request object), anything else as ``sink.request(req)``.

        The plain-get and plain-set fast paths are the most common requests there are; they
        are taken only while ``fast`` (nothing buffered, no policy). Measured on the sharded
        benchmark, skipping the general parse and the request object for them saved
        0.8-1.6 µs per request.

        Once the sink sets ``held`` (the client's budget is spent), parsing stops after the
        request just handed over; the rest of ``data``, and anything fed after it, is kept
        unparsed until ``resume``."""
        if self.held:
            # Kept as it came; resume() feeds it back through the whole path (the rest of a
            # refused value included, which is skipped then).
            self._rest.add(data)
            return
        if data.startswith(b"get ") and self.can_bypass():
            n = len(data)
            if data.endswith(b"\r\n") and 6 < n <= 256:
                key = data[4:-2]
                # Bytes membership by int: with a bytes argument CPython first tries it as an
                # int and builds (then drops) a TypeError, which costs more than the search.
                if 32 not in key and 10 not in key:  # no space, no newline
                    sink.plain_get(key, data)
                    return
            # Pipelined requests: plain gets take the fast path, anything else (a set...) is
            # parsed on its own, and the gets after it go fast again.
            pos = self._plain_gets(data, 0, sink)
            while pos < n and not self.held:
                reqs, pos = self.feed_one(data, pos)
                for req in reqs:
                    sink.request(req)
                if pos < n and not self.held:
                    pos = self._plain_gets(data, pos, sink)
            if pos < n:
                self._rest.keep(data[pos:])  # held: it waits for resume()
            return
        if data.startswith(b"set ") and self.can_bypass():
            plain = self.plain_set(data)  # one plain set: no general parse
            if plain is not None:
                sink.request(plain)
                return
        out: list[Request] = []
        buf = self._start(data, out)
        for req in out:
            sink.request(req)  # a binary first byte: the connection changes hands
        if buf is None:
            return
        # One request at a time, so that parsing can stop where the sink says so.
        pos = 0
        n = len(buf)
        while pos < n:
            out = []
            self._pending = out
            pos = self._parse(buf, out, pos, True)
            self.parsed += len(out)
            for req in out:
                sink.request(req)
            if self.held:
                if pos < n:
                    self._rest.keep(buf[pos:])
                return

    def resume(self, sink: RequestSink) -> None:
        """The budget has room again: parse what was kept while held."""
        self.held = False
        if self._rest.size:
            self.feed_into(self._rest.drain(), sink)

    def _plain_gets(self, data: bytes, pos: int, sink: RequestSink) -> int:
        """``get <key>\r\n`` lines from ``pos`` on, each handed to ``sink.plain_get`` as the
        client's own bytes; returns where the first request that needs the parser starts (or
        the first one not handed over once ``held``)."""
        n = len(data)
        # A slice compared, not startswith(prefix, pos): a primitive in the compiled build.
        while data[pos : pos + 4] == b"get ":
            eol = data.find(b"\n", pos)
            # Anything unusual (no CR, a second key, a key too long or empty) is the parser's.
            if eol < 0 or data[eol - 1] != 13 or not 6 <= eol - pos <= 255:
                break
            key = data[pos + 4 : eol - 1]
            if 32 in key:  # a second key: the parser's (an int operand: see feed_into)
                break
            sink.plain_get(key, data if pos == 0 and eol == n - 1 else data[pos : eol + 1])
            pos = eol + 1
            if self.held:
                break
        return pos

    def plain_set(self, buf: bytes) -> Request | None:
        """The request if ``buf`` is exactly one plain ``set <key> <flags> <exptime>
        <bytes>\\r\\n<data>\\r\\n`` (unsigned numbers, single spaces, no ``noreply``), the
        most common write, read with index primitives and sent as the client's own bytes;
        otherwise None, and ``feed`` must take ``buf``. Call it only after ``can_bypass()``.
        The request equals what ``feed`` would produce, except that ``args`` stays empty
        (no route reads a storage command's arguments)."""
        n = len(buf)
        i = 4  # after "set "
        while i < n:  # the key: up to its space
            c = buf[i]
            if c == 32 or c == 13 or c == 10:
                break
            i += 1
        if i == 4 or i >= n or buf[i] != 32 or i - 4 > MAX_KEY_LENGTH:
            return None
        key_end = i
        i, flags = read_digits(buf, i + 1, n)
        if flags < 0 or i >= n or buf[i] != 32:
            return None
        i, exptime = read_digits(buf, i + 1, n)
        if exptime < 0 or i >= n or buf[i] != 32:
            return None
        i, vlen = read_digits(buf, i + 1, n)
        if vlen < 0 or i + 1 >= n or buf[i] != 13 or buf[i + 1] != 10:
            return None
        if (
            vlen > self.max_item_size
            or vlen > _INT32_MAX - 2
            or i + 4 + vlen != n
            or buf[n - 2] != 13
            or buf[n - 1] != 10
        ):
            return None
        self.parsed += 1
        return Request(Kind.KEYED, b"set", buf, buf[4:key_end])

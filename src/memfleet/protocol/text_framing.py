"""Incremental, bounded framing of client requests (memcached text and meta protocol).

``TextFramer.feed(data)`` takes whatever bytes a read produced and returns the requests
completed by them; a request may span many reads and a read may hold many requests. It never
raises on garbage: a malformed request becomes a ``Kind.LOCAL`` request carrying the reply
memcached 1.6 would send (the connection lives on), or ``Kind.CLOSE`` where memcached itself
would drop the connection. Memory is bounded by the longest allowed line plus the largest
allowed item.

What the parser validates is exactly what the proxy needs to frame and route a request (the
key, the data length, ``noreply``/``q``); every other argument is forwarded and the backend
answers it, which keeps the replies identical to memcached's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from memfleet.protocol import errors
from memfleet.protocol.buffer import PendingBytes, as_int32, ok_exptime, ok_flags, parse_int
from memfleet.protocol.commands import SET, TEXT, Family, looks_like_http, meta_effects
from memfleet.protocol.requests import Kind, Reply, Request, routing_key

MAX_KEY_LENGTH = 250
DEFAULT_MAX_ITEM_SIZE = 1024 * 1024
DEFAULT_MAX_LINE_LENGTH = 64 * 1024
# memcached drops a connection when a read ends inside a line of over 2048 bytes that is not
# a get, without a word...
PARTIAL_LINE_LIMIT = 2048
# ...and its read buffer is 16 KiB, so such a line longer than that never completes in one
# read: it always closes (measured on 1.6.18: a 5,000-byte gat line sent at once is
# answered, a 19,568-byte one closes the connection).
LINE_LIMIT = 16 * 1024

_NOREPLY = b"noreply"
_CRLF = b"\r\n"
_INT32_MAX = 2**31 - 1


def _local(wire: bytes, reply: Reply = Reply.NORMAL) -> Request:
    return Request(Kind.LOCAL, b"", wire, reply=reply)


class TextFramer:
    """Turns a client's byte stream into ``Request`` objects. Sans-IO: no sockets here.

    ``memfleet.protocol.parse.RequestParser`` adds the fast paths for plain gets and sets."""

    __slots__ = (
        "_closed",
        "_fresh",
        "_pending",
        "_rest",
        "_skip_line",
        "_streaming",
        "_swallow",
        "fast",
        "held",
        "max_item_size",
        "max_line_length",
        "parsed",
    )

    def __init__(
        self,
        max_item_size: int = DEFAULT_MAX_ITEM_SIZE,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
    ) -> None:
        self.max_item_size = max_item_size
        self.max_line_length = max(max_line_length, PARTIAL_LINE_LIMIT)
        self._rest = PendingBytes()  # an incomplete request, until it completes
        self._swallow = 0
        self._streaming = False  # the rest of a get line handed over in parts is awaited
        self._skip_line = False  # dropping the rest of a line after its error
        self._fresh = True
        self._closed = False
        self.parsed = 0  # requests produced so far (the limits sweep watches it move)
        # False while a policy (authentication, a deny-list) must see every request as a
        # parsed ``Request``: the fast paths below hand plain gets over as bare bytes.
        self.fast = True
        # Set by the connection when the client's byte budget is spent: parsing stops after
        # the request being handed over, and what follows waits, unparsed, until ``resume``.
        self.held = False
        self._pending: list[Request] = []

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete request (what this connection costs in memory)."""
        return self._rest.size

    def feed(self, data: bytes) -> list[Request]:
        """Parse ``data`` (appended to what came before); return the completed requests."""
        out: list[Request] = []
        buf = self._start(data, out)
        if buf is None:
            return out
        # Handlers append to ``_pending`` (the list being returned) to keep their signature small.
        self._pending = out
        self._parse(buf, out, 0, False)
        self.parsed += len(out)
        return out

    def _start(self, data: bytes, out: list[Request]) -> bytes | None:
        """What every read goes through first: the rest of a refused value is skipped, a
        binary first byte is handed over (as a ``Kind.BINARY`` request in ``out``), and what
        was kept is joined. Returns the bytes to parse from a request's start, or None."""
        if self._closed or not data:
            return None
        if self._swallow:
            if len(data) <= self._swallow:
                self._swallow -= len(data)
                return None
            data = data[self._swallow :]
            self._swallow = 0
        if self._skip_line:
            nl = data.find(b"\n")
            if nl < 0:
                return None
            self._skip_line = False
            data = data[nl + 1 :]
            if not data:
                return None
        if self._fresh:
            self._fresh = False
            if data[0] == 0x80:
                # Not ours to parse: the server hands the connection to the binary codec
                # (or refuses it) with the bytes read so far.
                self._closed = True
                out.append(Request(Kind.BINARY, b"", data))
                return None
        return self._rest.take(data)

    def feed_one(self, buf: bytes, pos: int) -> tuple[list[Request], int]:
        """Parse only the request starting at ``buf[pos]``, for the server's fast path, which
        walks a read itself and hands over one request it does not handle (a ``set`` among
        pipelined gets). Call it only after ``can_bypass()`` (nothing is buffered). Returns
        the requests produced (normally one) and where the next request starts; if this one
        is incomplete, the rest is kept exactly as ``feed`` keeps it and ``len(buf)`` comes
        back."""
        out: list[Request] = []
        self._pending = out
        nxt = self._parse(buf, out, pos, True)
        self.parsed += len(out)
        return out, nxt

    # -- framing -------------------------------------------------------------------------

    def _parse(self, buf: bytes, out: list[Request], pos: int, one: bool) -> int:
        """Parse from ``pos`` (only one request if ``one``); return where parsing stopped,
        ``len(buf)`` when the rest was kept, swallowed or the connection is closing."""
        n = len(buf)
        handlers = _HANDLERS
        while pos < n:
            eol = buf.find(b"\n", pos)
            if eol < 0:
                self._partial_line(buf, pos, out)
                return n
            if eol - pos > LINE_LIMIT and not self._is_get(buf, pos):
                # memcached closes without a word (a get line may be of any length).
                self._close(out, b"")
                return n
            end = eol - 1 if eol > pos and buf[eol - 1] == 13 else eol
            tokens = buf[pos:end].split(b" ")
            if b"" in tokens:
                tokens = [t for t in tokens if t]
                if not tokens:
                    out.append(_local(errors.ERROR))
                    pos = eol + 1
                    if one:
                        return pos
                    continue
            handler = handlers.get(tokens[0])
            if handler is None:
                if looks_like_http(tokens):
                    self._closed = True  # memcached reads nothing after it either
                    self._rest.clear()
                    out.append(Request(Kind.HTTP, b"", b""))
                    return n
                out.append(_local(errors.ERROR))
                pos = eol + 1
                if one:
                    return pos
                continue
            # A handler returns where the next request starts; -1 means "wait for more".
            if handler is _STORE:
                nxt = self._store(tokens, buf, pos, eol + 1)  # direct: a compiled native call
            else:
                nxt = handler(self, tokens, buf, pos, eol + 1)
            if nxt < 0:
                return n
            if nxt > n:
                # A value too large to store is swallowed as it arrives.
                self._swallow = nxt - n
                return n
            pos = nxt
            if self._closed:
                return n
            if one:
                return pos
        return pos

    @staticmethod
    def _is_get(buf: bytes, pos: int) -> bool:
        """A get/gets line: the one kind memcached lets grow past 2048 bytes (many keys)."""
        head = buf[pos : pos + 128].lstrip(b" ")
        return head.startswith(b"get ") or head.startswith(b"gets ")

    def _partial_line(self, buf: bytes, pos: int, out: list[Request]) -> None:
        rest = len(buf) - pos
        if rest > PARTIAL_LINE_LIMIT:
            if not self._is_get(buf, pos):
                # memcached's rule, read for read: a read that ends inside a line over 2048
                # bytes that is not a get closes the connection, without a word.
                self._close(out, b"")
                return
            if rest > self.max_line_length:
                self._stream_get(buf, pos, out)
                return
        self._rest.keep(buf[pos:] if pos else buf)

    def _stream_get(self, buf: bytes, pos: int, out: list[Request]) -> None:
        """A get line longer than ``max_line_length`` and not complete yet: hand over its
        complete keys now (a request with ``more``), keep only its last, partial, key. A get
        line of any length costs the proxy ``max_line_length``, not its length; its replies
        are paced by the client's budget. A key over 250 bytes ends the line with memcached's
        error (the values of the keys before it are already on their way: see README)."""
        cut = buf.rfind(b" ", pos)
        tokens = [t for t in buf[pos:cut].split(b" ") if t]
        partial = buf[cut + 1 :]
        keys = tokens[1:]
        if len(partial) > MAX_KEY_LENGTH or any(len(k) > MAX_KEY_LENGTH for k in keys):
            self._streaming = False
            self._skip_line = True  # the rest of the line is dropped as it arrives
            self._rest.clear()
            out.append(_local(errors.BAD_FORMAT))
            return
        self._streaming = True
        if keys:
            req = Request(Kind.GET, tokens[0], b"", keys[0], args=keys)
            req.keys = keys
            req.prefix = tokens[0]
            req.more = True
            out.append(req)
        self._rest.keep(tokens[0] + b" " + partial)

    def _close(self, out: list[Request], reply: bytes) -> None:
        self._closed = True
        self._rest.clear()
        out.append(Request(Kind.CLOSE, b"", reply))

    def _wait(self, buf: bytes, start: int, total: int) -> int:
        """Keep ``buf[start:]`` until ``total`` bytes from ``start`` have arrived."""
        self._rest.keep(buf[start:], total)
        return -1

    # -- text commands -------------------------------------------------------------------

    def _get(self, tokens: list[bytes], buf: bytes, start: int, nxt: int) -> int:
        streamed = self._streaming  # the last part of a get line handed over in parts
        self._streaming = False
        if len(tokens) < 2 and not streamed:
            self._pending.append(_local(errors.ERROR))
            return nxt
        keys = tokens[1:]
        for k in keys:
            if len(k) > MAX_KEY_LENGTH:
                self._pending.append(_local(errors.BAD_FORMAT))
                return nxt
        if not keys:  # the line's keys all went in its earlier parts: only END is left
            req = Request(Kind.GET, tokens[0], buf[start:nxt], b"", args=keys)
            req.prefix = tokens[0]
            self._pending.append(req)
            return nxt
        req = Request(Kind.GET, tokens[0], buf[start:nxt], keys[0], args=keys)
        req.keys = keys
        req.prefix = tokens[0]
        self._pending.append(req)
        return nxt

    def _gat(self, tokens: list[bytes], buf: bytes, start: int, nxt: int) -> int:
        if len(tokens) < 2:
            self._pending.append(_local(errors.ERROR))
            return nxt
        if not ok_exptime(tokens[1]):
            self._pending.append(_local(errors.BAD_EXPTIME))
            return nxt
        keys = tokens[2:]
        if not keys:
            self._pending.append(_local(errors.END))
            return nxt
        for k in keys:
            if len(k) > MAX_KEY_LENGTH:
                self._pending.append(_local(errors.BAD_FORMAT))
                return nxt
        req = Request(Kind.GET, tokens[0], buf[start:nxt], keys[0], args=tokens[1:])
        req.keys = keys
        req.prefix = tokens[0] + b" " + tokens[1]
        self._pending.append(req)
        return nxt

    def _store(self, tokens: list[bytes], buf: bytes, start: int, nxt: int) -> int:
        cas = tokens[0] == b"cas"
        base = 6 if cas else 5
        ntok = len(tokens)
        if ntok != base and ntok != base + 1:
            self._pending.append(_local(errors.ERROR))
            return nxt
        noreply = ntok == base + 1 and tokens[-1] == _NOREPLY
        mode = Reply.NOREPLY if noreply else Reply.NORMAL
        key = tokens[1]
        # memcached reads the length with strtol into a 32-bit int: the low 32 bits of any
        # number a long holds (`set k 0 0 4294967297` stores one byte, as there).
        vlen = parse_int(tokens[4])
        if vlen is not None:
            vlen = as_int32(vlen) if -(2**63) <= vlen < 2**63 else None
        if (
            len(key) > MAX_KEY_LENGTH
            or not ok_flags(tokens[2])
            or not ok_exptime(tokens[3])
            or vlen is None
            or (cas and parse_int(tokens[5]) is None)
            or vlen < 0
            or vlen > _INT32_MAX - 2
        ):
            self._pending.append(_local(errors.BAD_FORMAT, mode))
            return nxt
        end = nxt + vlen + 2
        if vlen > self.max_item_size:
            self._pending.append(_local(errors.TOO_LARGE, mode))
            if tokens[0] == b"set":
                # memcached unlinks the old value when a set fails for size, so that a reader
                # never sees the value the client meant to replace.
                unlink = Request(
                    Kind.KEYED, b"delete", b"delete " + key + _CRLF, key, Reply.NOREPLY
                )
                unlink.effects = SET  # the set's doing: denying set stops it too
                self._pending.append(unlink)
            return end
        if end > len(buf):
            return self._wait(buf, start, end - start)
        if buf[end - 2 : end] != _CRLF:
            self._pending.append(_local(errors.BAD_CHUNK, mode))
            return end
        if noreply:
            wire = b" ".join(tokens[:-1]) + _CRLF + buf[nxt:end]
        else:
            wire = buf[start:end]
        self._pending.append(Request(Kind.KEYED, tokens[0], wire, key, mode, tokens[1:]))
        return end

    def _keyed(self, tokens: list[bytes], buf: bytes, start: int, nxt: int) -> int:
        # incr/decr/touch: exactly 3 or 4 tokens, like memcached.
        ntok = len(tokens)
        if ntok != 3 and ntok != 4:
            self._pending.append(_local(errors.ERROR))
            return nxt
        self._single_key(tokens, buf, start, nxt, ntok == 4 and tokens[3] == _NOREPLY)
        return nxt

    def _delete(self, tokens: list[bytes], buf: bytes, start: int, nxt: int) -> int:
        ntok = len(tokens)
        if ntok < 2 or ntok > 4:
            self._pending.append(_local(errors.ERROR))
            return nxt
        self._single_key(tokens, buf, start, nxt, ntok > 2 and tokens[-1] == _NOREPLY)
        return nxt

    def _single_key(
        self, tokens: list[bytes], buf: bytes, start: int, nxt: int, noreply: bool
    ) -> None:
        mode = Reply.NOREPLY if noreply else Reply.NORMAL
        key = tokens[1]
        if len(key) > MAX_KEY_LENGTH:
            self._pending.append(_local(errors.BAD_FORMAT, mode))
            return
        wire = b" ".join(tokens[:-1]) + _CRLF if noreply else buf[start:nxt]
        self._pending.append(Request(Kind.KEYED, tokens[0], wire, key, mode, tokens[1:]))

    def _flush(self, tokens: list[bytes], buf: bytes, start: int, nxt: int) -> int:
        ntok = len(tokens)
        if ntok > 3:
            self._pending.append(_local(errors.ERROR))
            return nxt
        noreply = ntok > 1 and tokens[-1] == _NOREPLY
        wire = b" ".join(tokens[:-1]) + _CRLF if noreply else buf[start:nxt]
        mode = Reply.NOREPLY if noreply else Reply.NORMAL
        self._pending.append(Request(Kind.FLUSH, tokens[0], wire, b"", mode, tokens[1:]))
        return nxt

    def _version(self, tokens: list[bytes], buf: bytes, start: int, nxt: int) -> int:
        self._pending.append(Request(Kind.VERSION, tokens[0], b""))
        return nxt

    def _verbosity(self, tokens: list[bytes], buf: bytes, start: int, nxt: int) -> int:
        ntok = len(tokens)
        if ntok != 2 and ntok != 3:
            self._pending.append(_local(errors.ERROR))
            return nxt
        mode = Reply.NOREPLY if tokens[-1] == _NOREPLY else Reply.NORMAL
        if not ok_flags(tokens[1]):
            self._pending.append(_local(errors.BAD_FORMAT, mode))
            return nxt
        self._pending.append(Request(Kind.VERBOSITY, tokens[0], b"", b"", mode, tokens[1:]))
        return nxt

    def _stats(self, tokens: list[bytes], buf: bytes, start: int, nxt: int) -> int:
        self._pending.append(Request(Kind.STATS, tokens[0], b"", args=tokens[1:]))
        return nxt

    def _cache_memlimit(self, tokens: list[bytes], buf: bytes, start: int, nxt: int) -> int:
        ntok = len(tokens)
        if ntok != 2 and ntok != 3:
            self._pending.append(_local(errors.ERROR))
            return nxt
        if tokens[-1] == _NOREPLY:
            if ntok == 2:  # nothing left to send: memcached's ERROR, hidden by noreply
                return nxt
            wire = tokens[0] + b" " + tokens[1] + _CRLF  # nodes always reply
            mode = Reply.NOREPLY
        else:
            wire = buf[start:nxt]
            mode = Reply.NORMAL
        self._pending.append(Request(Kind.STATS, tokens[0], wire, b"", mode, tokens[1:]))
        return nxt

    def _quit(self, tokens: list[bytes], buf: bytes, start: int, nxt: int) -> int:
        self._closed = True
        self._pending.append(Request(Kind.QUIT, tokens[0], b""))
        return nxt

    # -- meta commands -------------------------------------------------------------------

    def _mn(self, tokens: list[bytes], buf: bytes, start: int, nxt: int) -> int:
        self._pending.append(_local(errors.MN))
        return nxt

    def _meta_flags(
        self, tokens: list[bytes], buf: bytes, start: int, nxt: int
    ) -> tuple[bytes, Reply, bytes]:
        """The routing key, the reply mode and the command line for the backend (``q`` off)."""
        flags = tokens[2:]
        key = routing_key(tokens[1], b"b" in flags)
        if b"q" in flags:
            line = b" ".join([t for t in tokens if t != b"q"]) + _CRLF
            return key, Reply.QUIET, line
        return key, Reply.NORMAL, buf[start:nxt]

    def _meta(self, tokens: list[bytes], buf: bytes, start: int, nxt: int) -> int:
        if len(tokens) < 2:
            self._pending.append(_local(errors.ERROR))
            return nxt
        if len(tokens[1]) > MAX_KEY_LENGTH:
            self._pending.append(_local(errors.BAD_FORMAT))
            return nxt
        key, mode, wire = self._meta_flags(tokens, buf, start, nxt)
        self._pending.append(Request(Kind.KEYED, tokens[0], wire, key, mode, tokens[1:]))
        return nxt

    def _meta_set(self, tokens: list[bytes], buf: bytes, start: int, nxt: int) -> int:
        if len(tokens) < 2:
            self._pending.append(_local(errors.ERROR))
            return nxt
        vlen = parse_int(tokens[2]) if len(tokens) > 2 else None
        if len(tokens[1]) > MAX_KEY_LENGTH or vlen is None or vlen < 0 or vlen > _INT32_MAX - 2:
            # memcached has not read the length yet, so it does not swallow the data line.
            self._pending.append(_local(errors.BAD_FORMAT))
            return nxt
        end = nxt + vlen + 2
        if vlen > self.max_item_size:
            self._pending.append(_local(errors.TOO_LARGE))
            b64 = b"b" in tokens[3:]
            key = routing_key(tokens[1], b64)
            md = b"md " + tokens[1] + (b" b" if b64 else b"") + _CRLF
            unlink = Request(Kind.KEYED, b"md", md, key, Reply.NOREPLY)
            unlink.effects = meta_effects(b"ms", tokens[2:])  # the set's doing, as above
            self._pending.append(unlink)
            return end
        if end > len(buf):
            return self._wait(buf, start, end - start)
        if buf[end - 2 : end] != _CRLF:
            self._pending.append(_local(errors.BAD_CHUNK))
            return end
        key, mode, line = self._meta_flags(tokens, buf, start, nxt)
        wire = buf[start:end] if mode is Reply.NORMAL else line + buf[nxt:end]
        self._pending.append(Request(Kind.KEYED, tokens[0], wire, key, mode, tokens[1:]))
        return end


# Command name -> handler, shared by every parser (one table, not one per connection), built
# from the command table: a command added there without a way to frame it fails at import.
_Handler = Callable[[TextFramer, list[bytes], bytes, int, int], int]
_BY_FAMILY: dict[Family, _Handler] = {
    Family.GET: TextFramer._get,
    Family.STORE: TextFramer._store,
    Family.KEYED: TextFramer._keyed,
    Family.META: TextFramer._meta,
    Family.META_SET: TextFramer._meta_set,
    Family.FLUSH: TextFramer._flush,
}
_BY_NAME: dict[bytes, _Handler] = {
    b"gat": TextFramer._gat,  # the exptime comes before the keys
    b"gats": TextFramer._gat,
    b"delete": TextFramer._delete,  # takes a legacy time argument
    b"mn": TextFramer._mn,
    b"version": TextFramer._version,
    b"verbosity": TextFramer._verbosity,
    b"stats": TextFramer._stats,
    b"cache_memlimit": TextFramer._cache_memlimit,
    b"quit": TextFramer._quit,
}
_HANDLERS: dict[bytes, _Handler] = {
    name: _BY_NAME[name] if name in _BY_NAME else _BY_FAMILY[cmd.family]
    for name, cmd in TEXT.items()
}
_STORE: Final = _HANDLERS[b"set"]  # the storage commands' handler, called directly in _parse

"""memcached's binary protocol: the sans-IO request parser.

``BinaryParser.feed(data)`` takes whatever bytes a read produced and returns the
``BinaryRequest`` objects they completed. It frames requests exactly as memcached 1.6 does: the
24-byte header, then the extras and the key; a value (set/add/replace/append/prepend, SASL
auth) only for the commands that carry one. It never raises on garbage: a malformed request
becomes the error response memcached sends (``Invalid arguments`` or ``Unknown command``) and
the connection closes where memcached's would. Memory is bounded by the largest header + extras
+ key (24 + 255 + 250 bytes) plus the largest allowed value; a larger value is answered
``Too large`` and skipped as it arrives, never buffered.
"""

from __future__ import annotations

from memfleet.protocol.binary.packets import (
    _GETS,
    _HEADER,
    _STORES,
    _VALUED,
    DEFAULT_MAX_ITEM_SIZE,
    HEADER_SIZE,
    MAX_KEY_LENGTH,
    QUIET_OF,
    REQUEST_MAGIC,
    Action,
    BinaryRequest,
    Op,
    Status,
    error,
    response,
)
from memfleet.protocol.binary.translate import _ttl, _u32, translate, unlink_request
from memfleet.protocol.commands import binary_effects
from memfleet.protocol.requests import Kind, Request

# -- the parser ----------------------------------------------------------------------------


def _shape_ok(op: int, extlen: int, keylen: int, bodylen: int) -> bool:
    """memcached's per-command checks of the header lengths (``dispatch_bin_command``)."""
    if op in (Op.VERSION, Op.NOOP, Op.QUIT, Op.SASL_LIST_MECHS):
        return extlen == 0 and keylen == 0 and bodylen == 0
    if op == Op.FLUSH:
        return keylen == 0 and bodylen == extlen and extlen in (0, 4)
    if op in (Op.SET, Op.ADD, Op.REPLACE):
        return extlen == 8 and keylen != 0 and bodylen >= keylen + 8
    if op in (Op.GET, Op.GETK):
        return extlen == 0 and bodylen == keylen and keylen > 0
    if op == Op.DELETE:
        return keylen > 0 and extlen == 0 and bodylen == keylen
    if op in (Op.INCREMENT, Op.DECREMENT):
        return keylen > 0 and extlen == 20 and bodylen == keylen + extlen
    if op in (Op.APPEND, Op.PREPEND):
        return keylen > 0 and extlen == 0
    if op == Op.STAT:
        return extlen == 0
    if op in (Op.SASL_AUTH, Op.SASL_STEP):
        return extlen == 0 and keylen != 0
    if op in (Op.TOUCH, Op.GAT, Op.GATK):
        return extlen == 4 and keylen != 0
    if op == Op.VERBOSITY:
        return extlen == 4 and keylen == 0 and bodylen == 4
    return True


_KNOWN = frozenset(int(o) for o in Op)


class BinaryParser:
    """Turns a binary client's byte stream into ``BinaryRequest`` objects. Sans-IO."""

    __slots__ = ("_buf", "_closed", "_need", "_swallow", "max_item_size")

    def __init__(self, max_item_size: int = DEFAULT_MAX_ITEM_SIZE) -> None:
        self.max_item_size = max_item_size
        self._buf = bytearray()
        self._need = HEADER_SIZE  # bytes the next request needs before it can be parsed
        self._swallow = 0  # bytes of a refused value still to skip
        self._closed = False

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete request (what this connection costs in memory)."""
        return len(self._buf)

    @property
    def closed(self) -> bool:
        """True once the connection must close (quit, or a protocol violation)."""
        return self._closed

    def feed(self, data: bytes) -> list[BinaryRequest]:
        """Parse ``data`` (appended to what came before); return the completed requests."""
        if self._closed or not data:
            return []
        if self._swallow:
            if len(data) <= self._swallow:
                self._swallow -= len(data)
                return []
            data = data[self._swallow :]
            self._swallow = 0
        buf = self._buf
        buf += data
        if len(buf) < self._need:
            return []
        out: list[BinaryRequest] = []
        pos = 0
        n = len(buf)
        while not self._closed:
            end = self._one(buf, pos, n, out)
            if end < 0:
                break
            if end > n:
                # A refused value: skip the rest of it as it arrives.
                self._swallow = end - n
                self._need = HEADER_SIZE
                pos = n
                break
            pos = end
        if self._closed:
            self._buf = bytearray()
        else:
            del buf[:pos]
        return out

    def _close(self, out: list[BinaryRequest], opcode: int, reply: bytes) -> None:
        self._closed = True
        out.append(BinaryRequest(Action.CLOSE, opcode, response=reply))

    def _one(self, buf: bytearray, pos: int, n: int, out: list[BinaryRequest]) -> int:
        """Parse the request at ``pos``; return where the next one starts (past ``n`` when a
        refused value must be skipped), or -1 to wait for more bytes."""
        if n - pos < HEADER_SIZE:
            self._need = HEADER_SIZE
            return -1
        fields: tuple[int, ...] = _HEADER.unpack_from(buf, pos)
        magic, op, keylen, extlen, _dt, _vb, bodylen, opaque, cas = fields
        if magic != REQUEST_MAGIC:
            # memcached drops the connection without a word.
            self._close(out, op, b"")
            return -1
        if keylen + extlen > bodylen:
            self._close(out, op, error(op, Status.UNKNOWN_COMMAND, opaque))
            return -1
        if keylen > MAX_KEY_LENGTH:
            self._close(out, op, error(op, Status.EINVAL, opaque))
            return -1
        base = QUIET_OF.get(op, op)
        start = pos + HEADER_SIZE
        kstart = start + extlen
        end = kstart + keylen
        vlen = bodylen - extlen - keylen
        valued = base in _VALUED
        if base not in _KNOWN:
            # memcached skips the body (after the header, extras and key) and goes on.
            if end > n:
                self._need = end - pos
                return -1
            reply = error(op, Status.UNKNOWN_COMMAND, opaque)
            b = BinaryRequest(Action.LOCAL, op, opaque, response=reply)
            b.request = Request(Kind.LOCAL, b"", reply)
            out.append(b)
            self._need = HEADER_SIZE
            return end + vlen
        if not _shape_ok(base, extlen, keylen, bodylen):
            self._close(out, op, error(op, Status.EINVAL, opaque))
            return -1
        if valued and vlen > self.max_item_size:
            if end > n:
                self._need = end - pos
                return -1
            key = bytes(buf[kstart:end])
            b = BinaryRequest(Action.LOCAL, op, opaque, cas, key, base=base)
            if base == Op.SASL_AUTH or base == Op.SASL_STEP:
                b.response = error(op, Status.AUTH_ERROR, opaque)
            else:
                b.response = error(op, Status.E2BIG, opaque)
                if base == Op.SET:
                    unlink = unlink_request(key)
                    if unlink is not None:
                        # The unlink is the set's doing: a deny-list that stops the set
                        # stops it too.
                        unlink.effects = binary_effects(base, cas)
                        b.side.append(unlink)
            b.request = Request(Kind.LOCAL, b"", b.response)
            out.append(b)
            self._need = HEADER_SIZE
            return end + vlen
        total = end + vlen if valued else end
        if total > n:
            self._need = total - pos
            return -1
        self._need = HEADER_SIZE
        b = BinaryRequest(
            Action.ROUTE,
            op,
            opaque,
            cas,
            bytes(buf[kstart:end]),
            bytes(buf[start:kstart]),
            bytes(buf[end:total]) if valued else b"",
            base,
            base != op,
        )
        self._classify(b)
        if b.action is Action.QUIT:
            self._closed = True
        out.append(b)
        return total

    @staticmethod
    def _classify(b: BinaryRequest) -> None:
        """Set ``b.action`` and the internal request every gated action carries (the policy
        gate reads its effects; the connection executes it as it executes a text request)."""
        op = b.base
        if op in _GETS or op in _STORES or op in (Op.DELETE, Op.INCREMENT, Op.DECREMENT):
            translate(b)
        elif op == Op.FLUSH:
            delay = _ttl(_u32(b.extras)) if b.extras else 0
            wire = b"flush_all %d\r\n" % delay if delay else b"flush_all\r\n"
            b.action = Action.FLUSH
            b.request = Request(Kind.FLUSH, b"flush_all", wire)
        elif op == Op.NOOP:
            b.action = Action.NOOP
            b.response = response(b.opcode, Status.OK, b.opaque)
            b.request = Request(Kind.LOCAL, b"mn", b.response)
        elif op == Op.VERSION:
            b.action = Action.VERSION
            b.request = Request(Kind.VERSION, b"version", b"")
        elif op == Op.STAT:
            b.action = Action.STAT
            b.request = Request(Kind.STATS, b"stats", b"", args=b.key.split() if b.key else [])
        elif op == Op.VERBOSITY:
            b.action = Action.VERBOSITY
            b.request = Request(Kind.VERBOSITY, b"verbosity", b"", args=[b"%d" % _u32(b.extras)])
        elif op == Op.SASL_LIST_MECHS:
            b.action = Action.SASL_LIST
        elif op == Op.SASL_AUTH or op == Op.SASL_STEP:
            b.action = Action.SASL_AUTH
        else:  # QUIT, QUITQ
            b.action = Action.QUIT
            b.response = b"" if b.quiet else response(b.opcode, Status.OK, b.opaque)

"""memcached's binary protocol on the client side: a sans-IO request parser, the translation
of each binary request into the internal ``Request`` model (a meta or text ``wire`` for the
backends), and the translation of each backend reply back into the binary response memcached
would send.

``BinaryParser.feed(data)`` takes whatever bytes a read produced and returns the
``BinaryRequest`` objects they completed. It frames requests exactly as memcached 1.6 does: the
24-byte header, then the extras and the key; a value (set/add/replace/append/prepend, SASL
auth) only for the commands that carry one. It never raises on garbage: a malformed request
becomes the error response memcached sends (``Invalid arguments`` or ``Unknown command``) and
the connection closes where memcached's would. Memory is bounded by the largest header + extras
+ key (24 + 255 + 250 bytes) plus the largest allowed value; a larger value is answered
``Too large`` and skipped as it arrives, never buffered.

Backends are spoken to in meta (``mg``/``ms``/``md``/``ma``) and ``flush_all``; meta's base64
keys (``b``) carry binary keys holding bytes the text protocols cannot (spaces, control bytes).
The translations, checked against memcached 1.6.18:

========================  ============================================================
binary                    backend request
========================  ============================================================
Get(Q), GetK(Q)           ``mg <key> v f c``
GAT(Q), GATK(Q)           ``mg <key> v f c T<exp>``
Touch                     ``mg <key> f c T<exp>``
Set/Add/Replace(Q)        ``ms <key> <len> F<flags> T<exp> c`` + ``ME``/``MR``; with a CAS,
                          ``C<cas>`` in set mode (memcached turns all three into a CAS)
Append/Prepend(Q)         ``ms <key> <len> c MA``/``MP`` [``C<cas>``]
Delete(Q)                 ``md <key>`` [``C<cas>``]
Incr/Decr(Q)              ``ma <key> N<exp> J<initial> D<delta> [MD] v c`` [``C<cas>``];
                          expiration 0xffffffff means "no auto-create", so no ``N``/``J``
Flush(Q)                  ``flush_all [<exp>]`` to every backend
========================  ============================================================
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass, field
from enum import IntEnum

from memfleet.protocol.requests import Kind, Reply, Request

REQUEST_MAGIC = 0x80
RESPONSE_MAGIC = 0x81
HEADER_SIZE = 24
MAX_KEY_LENGTH = 250
DEFAULT_MAX_ITEM_SIZE = 1024 * 1024
# Incr/decr with this expiration fail on a miss instead of creating the item.
NO_AUTO_CREATE = 0xFFFFFFFF

_HEADER = struct.Struct(">BBHBBHIIQ")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_SET_EXTRAS = struct.Struct(">II")
_INCR_EXTRAS = struct.Struct(">QQI")


class Op(IntEnum):
    """Binary protocol opcodes (memcached's ``protocol_binary.h``)."""

    GET = 0x00
    SET = 0x01
    ADD = 0x02
    REPLACE = 0x03
    DELETE = 0x04
    INCREMENT = 0x05
    DECREMENT = 0x06
    QUIT = 0x07
    FLUSH = 0x08
    GETQ = 0x09
    NOOP = 0x0A
    VERSION = 0x0B
    GETK = 0x0C
    GETKQ = 0x0D
    APPEND = 0x0E
    PREPEND = 0x0F
    STAT = 0x10
    SETQ = 0x11
    ADDQ = 0x12
    REPLACEQ = 0x13
    DELETEQ = 0x14
    INCREMENTQ = 0x15
    DECREMENTQ = 0x16
    QUITQ = 0x17
    FLUSHQ = 0x18
    APPENDQ = 0x19
    PREPENDQ = 0x1A
    VERBOSITY = 0x1B
    TOUCH = 0x1C
    GAT = 0x1D
    GATQ = 0x1E
    SASL_LIST_MECHS = 0x20
    SASL_AUTH = 0x21
    SASL_STEP = 0x22
    GATK = 0x23
    GATKQ = 0x24


class Status(IntEnum):
    """Response status codes."""

    OK = 0x00
    KEY_ENOENT = 0x01
    KEY_EEXISTS = 0x02
    E2BIG = 0x03
    EINVAL = 0x04
    NOT_STORED = 0x05
    DELTA_BADVAL = 0x06
    AUTH_ERROR = 0x20
    AUTH_CONTINUE = 0x21
    UNKNOWN_COMMAND = 0x81
    ENOMEM = 0x82
    EINTERNAL = 0x84
    EBUSY = 0x85
    ETMPFAIL = 0x86


# The body memcached writes with each error status (``write_bin_error``).
STATUS_TEXT: dict[int, bytes] = {
    Status.KEY_ENOENT: b"Not found",
    Status.KEY_EEXISTS: b"Data exists for key.",
    Status.E2BIG: b"Too large.",
    Status.EINVAL: b"Invalid arguments",
    Status.NOT_STORED: b"Not stored.",
    Status.DELTA_BADVAL: b"Non-numeric server-side value for incr or decr",
    Status.AUTH_ERROR: b"Auth failure.",
    Status.UNKNOWN_COMMAND: b"Unknown command",
    Status.ENOMEM: b"Out of memory",
    Status.ETMPFAIL: b"backend failure",
}

# Quiet opcode -> the command it is a quiet form of.
QUIET_OF: dict[int, int] = {
    Op.GETQ: Op.GET,
    Op.GETKQ: Op.GETK,
    Op.SETQ: Op.SET,
    Op.ADDQ: Op.ADD,
    Op.REPLACEQ: Op.REPLACE,
    Op.DELETEQ: Op.DELETE,
    Op.INCREMENTQ: Op.INCREMENT,
    Op.DECREMENTQ: Op.DECREMENT,
    Op.QUITQ: Op.QUIT,
    Op.FLUSHQ: Op.FLUSH,
    Op.APPENDQ: Op.APPEND,
    Op.PREPENDQ: Op.PREPEND,
    Op.GATQ: Op.GAT,
    Op.GATKQ: Op.GATK,
}

_GETS = frozenset({Op.GET, Op.GETK, Op.GAT, Op.GATK, Op.TOUCH})
_WITH_KEY = frozenset({Op.GETK, Op.GATK})
_STORES = frozenset({Op.SET, Op.ADD, Op.REPLACE, Op.APPEND, Op.PREPEND})
# Commands whose value follows the key (the rest end at the key, as memcached frames them).
_VALUED = frozenset({Op.SET, Op.ADD, Op.REPLACE, Op.APPEND, Op.PREPEND, Op.SASL_AUTH, Op.SASL_STEP})


class Action(IntEnum):
    """What the connection does with a parsed binary request."""

    ROUTE = 1  # ``request`` goes through the route tree; its reply is translated back
    FLUSH = 2  # ``request`` (flush_all) goes to every backend
    LOCAL = 3  # answered by the proxy: ``response`` (may be empty: a quiet success)
    NOOP = 4
    VERSION = 5
    STAT = 6  # ``key`` is the stats group
    VERBOSITY = 7
    SASL_LIST = 8
    SASL_AUTH = 9  # ``key`` is the mechanism, ``value`` the client's data
    QUIT = 10  # ``response`` then close
    CLOSE = 11  # protocol violation: ``response`` (may be empty) then close


@dataclass(slots=True)
class BinaryRequest:
    """One binary request: its header fields, and what the proxy does with it.

    ``opcode`` is the opcode as sent (a quiet one included), ``base`` the command it is a form
    of, ``request`` the internal request for the backends (``ROUTE``/``FLUSH``), ``response``
    the proxy's own answer (``LOCAL``/``QUIT``/``CLOSE``).
    """

    action: Action
    opcode: int
    opaque: int = 0
    cas: int = 0
    key: bytes = b""
    extras: bytes = b""
    value: bytes = b""
    base: int = -1
    quiet: bool = False
    request: Request | None = None
    response: bytes = b""
    # Extra requests sent without waiting for their reply (a failed set unlinks the old value).
    side: list[Request] = field(default_factory=list)


def response(
    opcode: int,
    status: int = Status.OK,
    opaque: int = 0,
    cas: int = 0,
    key: bytes = b"",
    extras: bytes = b"",
    value: bytes = b"",
) -> bytes:
    """One binary response packet."""
    header = _HEADER.pack(
        RESPONSE_MAGIC,
        opcode,
        len(key),
        len(extras),
        0,
        status,
        len(extras) + len(key) + len(value),
        opaque,
        cas,
    )
    return header + extras + key + value


def error(opcode: int, status: int, opaque: int, text: bytes | None = None) -> bytes:
    """An error response with memcached's text for ``status`` (CAS 0, as memcached sends)."""
    return response(
        opcode, status, opaque, value=STATUS_TEXT.get(status, b"") if text is None else text
    )


# -- keys ----------------------------------------------------------------------------------

_UNSAFE = bytes(range(0x21)) + b"\x7f"
# memcached reads a meta TTL as a signed 32-bit number; the binary protocol's is unsigned. A
# TTL past 2**31 - 1 is an absolute time after January 2038 either way, so it is clamped there
# rather than wrapped into a negative (already expired) one.
_TTL_MAX = 2**31 - 1


def meta_key(key: bytes) -> tuple[bytes, bytes] | None:
    """The key as a meta token and the flag it needs: as is, or base64 with `` b`` when it
    holds bytes the text protocols cannot carry (space, control bytes). None when the base64
    form is longer than memcached accepts (250 bytes: raw keys over 186 bytes that need it)."""
    if key.translate(None, _UNSAFE) != key:
        token = binascii.b2a_base64(key, newline=False)
        if len(token) > MAX_KEY_LENGTH:
            return None
        return token, b" b"
    return key, b""


def _ttl(exptime: int) -> int:
    return exptime if exptime <= _TTL_MAX else _TTL_MAX


# -- request translation -------------------------------------------------------------------


def _u32(data: bytes) -> int:
    return int(_U32.unpack_from(data)[0])


def translate(b: BinaryRequest) -> None:
    """Fill ``b.request`` with the internal request for a routed command (or, for a key the
    meta protocol cannot carry, ``b.action``/``b.response`` with an ``Invalid arguments``)."""
    op = b.base
    key = b.key
    mk = meta_key(key)
    if mk is None:
        b.action = Action.LOCAL
        b.response = error(b.opcode, Status.EINVAL, b.opaque)
        return
    token, b64 = mk
    mode = Reply.QUIET if b.quiet else Reply.NORMAL
    if op in _GETS:
        if op == Op.TOUCH:
            wire = b"mg %s f c T%d%s\r\n" % (token, _ttl(_u32(b.extras)), b64)
        elif op == Op.GAT or op == Op.GATK:
            wire = b"mg %s v f c T%d%s\r\n" % (token, _ttl(_u32(b.extras)), b64)
        else:
            wire = b"mg %s v f c%s\r\n" % (token, b64)
        b.request = Request(Kind.GET, b"mg", wire, key, mode)
        b.request.keys = [key]
        return
    if op in _STORES:
        value = b.value
        if op == Op.APPEND or op == Op.PREPEND:
            line = b"ms %s %d c %s" % (token, len(value), b"MA" if op == Op.APPEND else b"MP")
            if b.cas:
                line += b" C%d" % b.cas
        else:
            flags, exptime = _SET_EXTRAS.unpack_from(b.extras)
            line = b"ms %s %d F%d T%d c" % (token, len(value), flags, _ttl(exptime))
            if b.cas:
                # memcached turns a set, add or replace carrying a CAS into a plain CAS.
                line += b" C%d" % b.cas
            elif op == Op.ADD:
                line += b" ME"
            elif op == Op.REPLACE:
                line += b" MR"
        wire = line + b64 + b"\r\n" + value + b"\r\n"
        b.request = Request(Kind.KEYED, b"ms", wire, key, mode)
        return
    if op == Op.DELETE:
        cas = b" C%d" % b.cas if b.cas else b""
        b.request = Request(Kind.KEYED, b"md", b"md %s%s%s\r\n" % (token, cas, b64), key, mode)
        return
    # Increment / decrement.
    delta, initial, exptime = _INCR_EXTRAS.unpack_from(b.extras)
    parts = [b"ma", token]
    if exptime != NO_AUTO_CREATE:
        parts += [b"N%d" % _ttl(exptime), b"J%d" % initial]
    parts.append(b"D%d" % delta)
    if op == Op.DECREMENT:
        parts.append(b"MD")
    parts += [b"v", b"c"]
    if b.cas:
        parts.append(b"C%d" % b.cas)
    b.request = Request(Kind.KEYED, b"ma", b" ".join(parts) + b64 + b"\r\n", key, mode)


def unlink_request(key: bytes) -> Request | None:
    """An ``md`` nobody waits for: a set that failed for size unlinks the old value, as
    memcached does, so a reader never sees the value the client meant to replace."""
    mk = meta_key(key)
    if mk is None:
        return None
    return Request(Kind.KEYED, b"md", b"md %s%s\r\n" % mk, key, Reply.NOREPLY)


# -- reply translation ---------------------------------------------------------------------


def _meta_flags(line: bytes) -> tuple[int, int]:
    """The ``f`` (client flags) and ``c`` (CAS) return flags of a meta reply line."""
    flags = cas = 0
    for tok in line.split(b" ")[1:]:
        c = tok[:1]
        if c == b"f" and tok[1:].isdigit():
            flags = int(tok[1:])
        elif c == b"c" and tok[1:].isdigit():
            cas = int(tok[1:])
    return flags, cas


def _error_status(reply: bytes) -> tuple[int, bytes | None]:
    """The binary status (and body, None for memcached's own text) of an error reply."""
    if reply.startswith(b"SERVER_ERROR"):
        if reply.startswith(b"SERVER_ERROR backend failure"):
            return Status.ETMPFAIL, None
        if b"too large" in reply:
            return Status.E2BIG, None
        if b"out of memory" in reply.lower():
            return Status.ENOMEM, None
        return Status.EINTERNAL, reply[13:].rstrip(b"\r\n")
    if reply.startswith(b"CLIENT_ERROR"):
        if b"non-numeric" in reply:
            return Status.DELTA_BADVAL, None
        return Status.EINVAL, None
    return Status.UNKNOWN_COMMAND, None


# Reply code of a write that did not happen -> binary status, by command.
_NOT_DONE: dict[bytes, int] = {
    b"NF": Status.KEY_ENOENT,
    b"NOT_FOUND": Status.KEY_ENOENT,
    b"EX": Status.KEY_EEXISTS,
    b"EXISTS": Status.KEY_EEXISTS,
}


def translate_reply(b: BinaryRequest, reply: bytes) -> bytes:
    """The binary response memcached would send for ``b``, given the backend's ``reply``
    (meta, or text from a route that answers by itself). Empty when a quiet command's reply is
    suppressed: a get-family miss, or any other command's success."""
    op = b.base
    opcode = b.opcode
    opaque = b.opaque
    eol = reply.find(b"\r\n")
    line = reply[:eol] if eol >= 0 else reply
    code = line.split(b" ", 1)[0]
    status: int = Status.OK
    text: bytes | None = None
    if code in (b"SERVER_ERROR", b"CLIENT_ERROR", b"ERROR"):
        status, text = _error_status(reply)
        if b.quiet and op in _GETS and status == Status.ETMPFAIL:
            # A quiet get's failed shard reads as a miss, as a key of a text multi-get does,
            # so one failed node does not fail a whole GetKQ batch.
            return b""
        return error(opcode, status, opaque, text)
    if op in _GETS:
        if code == b"VA" or code == b"HD":
            flags, cas = _meta_flags(line)
            value = b""
            if code == b"VA" and op != Op.TOUCH:
                size = line.split(b" ", 2)[1] if b" " in line else b""
                if not size.isdigit() or eol < 0:
                    return error(opcode, Status.EINTERNAL, opaque, line)
                value = reply[eol + 2 : eol + 2 + int(size)]
            key = b.key if op in _WITH_KEY else b""
            return response(opcode, Status.OK, opaque, cas, key, _U32.pack(flags), value)
        if code in (b"EN", b"END", b"NF"):
            if b.quiet:
                return b""
            if op in _WITH_KEY:
                return response(opcode, Status.KEY_ENOENT, opaque, key=b.key)
            return error(opcode, Status.KEY_ENOENT, opaque)
        return error(opcode, Status.EINTERNAL, opaque, line)
    if op == Op.INCREMENT or op == Op.DECREMENT:
        if code == b"VA":
            _, cas = _meta_flags(line)
            digits = reply[eol + 2 : reply.find(b"\r\n", eol + 2)]
            if digits.isdigit():
                if b.quiet:
                    return b""
                return response(opcode, Status.OK, opaque, cas, value=_U64.pack(int(digits)))
        elif line.isdigit():  # a text incr reply
            if b.quiet:
                return b""
            return response(opcode, Status.OK, opaque, value=_U64.pack(int(line)))
        status = _NOT_DONE.get(code, Status.NOT_STORED if code == b"NS" else Status.EINTERNAL)
        return error(opcode, status, opaque, line if status == Status.EINTERNAL else None)
    if code in (b"HD", b"OK", b"STORED", b"DELETED", b"TOUCHED"):
        if b.quiet:
            return b""
        _, cas = _meta_flags(line)
        return response(opcode, Status.OK, opaque, cas)
    if code in (b"NS", b"NOT_STORED"):
        # memcached: an add that finds the key "exists", a replace that does not "not found".
        if op == Op.ADD and not b.cas:
            status = Status.KEY_EEXISTS
        elif op == Op.REPLACE and not b.cas:
            status = Status.KEY_ENOENT
        else:
            status = Status.NOT_STORED
        return error(opcode, status, opaque)
    if code in _NOT_DONE:
        return error(opcode, _NOT_DONE[code], opaque)
    return error(opcode, Status.EINTERNAL, opaque, line)


def stats_response(opaque: int, stats: bytes, opcode: int = Op.STAT) -> bytes:
    """Text ``STAT name value`` lines (ending ``END``) as binary stat packets: one per stat,
    then the empty packet memcached ends them with. ``RESET`` is just the end packet;
    anything else (``ERROR``) is "not found"."""
    if not (stats.startswith(b"STAT ") or stats == b"END\r\n" or stats == b"RESET\r\n"):
        return error(opcode, Status.KEY_ENOENT, opaque)
    out: list[bytes] = []
    for line in stats.split(b"\r\n"):
        if line.startswith(b"STAT "):
            _, name, value = [*line.split(b" ", 2), b""][:3]
            out.append(response(opcode, Status.OK, opaque, key=name, value=value))
    out.append(response(opcode, Status.OK, opaque))
    return b"".join(out)


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
            out.append(
                BinaryRequest(
                    Action.LOCAL,
                    op,
                    opaque,
                    response=error(op, Status.UNKNOWN_COMMAND, opaque),
                )
            )
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
                        b.side.append(unlink)
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
        elif op == Op.VERSION:
            b.action = Action.VERSION
        elif op == Op.STAT:
            b.action = Action.STAT
        elif op == Op.VERBOSITY:
            b.action = Action.VERBOSITY
        elif op == Op.SASL_LIST_MECHS:
            b.action = Action.SASL_LIST
        elif op == Op.SASL_AUTH or op == Op.SASL_STEP:
            b.action = Action.SASL_AUTH
        else:  # QUIT, QUITQ
            b.action = Action.QUIT
            b.response = b"" if b.quiet else response(b.opcode, Status.OK, b.opaque)

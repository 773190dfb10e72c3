"""memcached's binary protocol, translated: each binary request into the internal ``Request``
(a meta or text ``wire`` for the backends), and each backend reply back into the binary
response memcached would send.

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

from memfleet.protocol import commands
from memfleet.protocol.binary.packets import (
    _GETS,
    _INCR_EXTRAS,
    _SET_EXTRAS,
    _STORES,
    _U32,
    _U64,
    _WITH_KEY,
    MAX_KEY_LENGTH,
    NO_AUTO_CREATE,
    Action,
    BinaryRequest,
    Op,
    Status,
    error,
    response,
)
from memfleet.protocol.requests import Kind, Reply, Request

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
    # Backends always reply and the proxy decides what a quiet opcode shows
    # (``translate_reply``), so the internal request asks for every reply.
    mode = Reply.NORMAL
    if op in _GETS:
        if op == Op.TOUCH:
            wire = b"mg %s f c T%d%s\r\n" % (token, _ttl(_u32(b.extras)), b64)
        elif op == Op.GAT or op == Op.GATK:
            wire = b"mg %s v f c T%d%s\r\n" % (token, _ttl(_u32(b.extras)), b64)
        else:
            wire = b"mg %s v f c%s\r\n" % (token, b64)
        b.request = Request(Kind.GET, b"mg", wire, key, mode)
        b.request.keys = [key]
        b.request.effects = commands.binary_effects(b.opcode, b.cas)
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
        b.request.effects = commands.binary_effects(b.opcode, b.cas)
        return
    if op == Op.DELETE:
        cas = b" C%d" % b.cas if b.cas else b""
        b.request = Request(Kind.KEYED, b"md", b"md %s%s%s\r\n" % (token, cas, b64), key, mode)
        b.request.effects = commands.binary_effects(b.opcode, b.cas)
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
    b.request.effects = commands.binary_effects(b.opcode, b.cas, exptime)


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
    then the empty packet memcached ends them with. ``RESET`` and ``OK`` (``detail on``) are
    just the end packet; ``detail dump``'s ``PREFIX`` lines are one ``detailed`` stat
    holding them, as memcached sends it; anything else (``ERROR``) is "not found"."""
    end = response(opcode, Status.OK, opaque)
    if stats == b"RESET\r\n" or stats == b"OK\r\n":
        return end
    if stats.startswith(b"PREFIX "):
        return response(opcode, Status.OK, opaque, key=b"detailed", value=stats) + end
    if not (stats.startswith(b"STAT ") or stats == b"END\r\n"):
        return error(opcode, Status.KEY_ENOENT, opaque)
    out: list[bytes] = []
    for line in stats.split(b"\r\n"):
        if line.startswith(b"STAT "):
            _, name, value = [*line.split(b" ", 2), b""][:3]
            out.append(response(opcode, Status.OK, opaque, key=name, value=value))
    out.append(response(opcode, Status.OK, opaque))
    return b"".join(out)

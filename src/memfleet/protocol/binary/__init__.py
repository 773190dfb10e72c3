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

from memfleet.protocol.binary.packets import (
    DEFAULT_MAX_ITEM_SIZE,
    HEADER_SIZE,
    MAX_KEY_LENGTH,
    NO_AUTO_CREATE,
    QUIET_OF,
    REQUEST_MAGIC,
    RESPONSE_MAGIC,
    STATUS_TEXT,
    Action,
    BinaryRequest,
    Op,
    Status,
    error,
    response,
)
from memfleet.protocol.binary.parse import BinaryParser
from memfleet.protocol.binary.translate import (
    meta_key,
    stats_response,
    translate,
    translate_reply,
    unlink_request,
)

__all__ = [
    "DEFAULT_MAX_ITEM_SIZE", "HEADER_SIZE", "MAX_KEY_LENGTH", "NO_AUTO_CREATE", "QUIET_OF",
    "REQUEST_MAGIC", "RESPONSE_MAGIC", "STATUS_TEXT", "Action", "BinaryParser", "BinaryRequest",
    "Op", "Status", "error", "meta_key", "response", "stats_response", "translate",
    "translate_reply", "unlink_request",
]  # fmt: skip

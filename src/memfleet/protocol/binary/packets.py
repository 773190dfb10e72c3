"""memcached's binary protocol: its constants, the request record the parser produces, and
the response packets the proxy writes (memcached's own error texts)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from memfleet.protocol.commands import BINARY, NO_AUTO_CREATE, QUIET_OF, Op
from memfleet.protocol.requests import Request

__all__ = [
    "DEFAULT_MAX_ITEM_SIZE", "HEADER_SIZE", "MAX_KEY_LENGTH", "NO_AUTO_CREATE", "QUIET_OF",
    "REQUEST_MAGIC", "RESPONSE_MAGIC", "STATUS_TEXT", "Action", "BinaryRequest", "Op", "Status",
    "error", "response",
]  # fmt: skip

REQUEST_MAGIC = 0x80
RESPONSE_MAGIC = 0x81
HEADER_SIZE = 24
MAX_KEY_LENGTH = 250
DEFAULT_MAX_ITEM_SIZE = 1024 * 1024

_HEADER = struct.Struct(">BBHBBHIIQ")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_SET_EXTRAS = struct.Struct(">II")
_INCR_EXTRAS = struct.Struct(">QQI")


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
    NOT_SUPPORTED = 0x83
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
    Status.NOT_SUPPORTED: b"Not supported",
    Status.ETMPFAIL: b"backend failure",
}

# From the command table: the opcodes sent as ``mg`` (reads and touch) and as ``ms`` (stores).
_GETS = frozenset(c.base for c in BINARY.values() if c.sends == b"mg")
_WITH_KEY = frozenset({Op.GETK, Op.GATK})
_STORES = frozenset(c.base for c in BINARY.values() if c.sends == b"ms")
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

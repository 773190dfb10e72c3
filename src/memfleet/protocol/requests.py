"""The request model the parser produces and the routes consume.

One small slotted object per request. ``wire`` is exactly what a backend is sent: the client's
own bytes where possible, rewritten only to drop ``noreply``/``q`` (backends always reply, so
the proxy's FIFO matching never gets out of step; the proxy drops what the client did not ask
for).
"""

from __future__ import annotations

import binascii
from enum import IntEnum

from memfleet.protocol.commands import QUIET_HIDES, effects_of


class Kind(IntEnum):
    """What the server does with a request."""

    GET = 1  # get/gets/gat/gats: one or more keys, split and merged by the proxy
    KEYED = 2  # one key, one backend, the reply passed back (storage, delete, incr, meta...)
    FLUSH = 3  # flush_all: every backend the route reaches
    LOCAL = 4  # answered by the proxy itself: ``wire`` holds the reply (errors included)
    VERSION = 5
    VERBOSITY = 6  # sent to every node (memfleet.proxy.admin), as STATS
    STATS = 7  # stats and its groups, cache_memlimit: the proxy's and the nodes' answers
    QUIT = 8
    CLOSE = 9  # protocol violation: write ``wire`` (may be empty), then close the connection
    BINARY = 10  # the connection speaks the binary protocol; ``wire`` holds its first bytes
    HTTP = 11  # an HTTP request line: memcached closes the connection without a reply


class Reply(IntEnum):
    """Which replies the client asked for."""

    NORMAL = 0
    NOREPLY = 1  # text ``noreply``: drop whatever comes back
    QUIET = 2  # meta ``q``: drop the command's success/miss code, pass anything else


class Request:
    """One parsed client request.

    ``cmd`` is the command name as sent (``b"get"``, ``b"ms"``...), ``key`` the routing key
    (base64-decoded for meta ``b`` keys), ``keys`` every key of a get-family request, ``wire``
    the bytes for the backend (or the local reply for ``Kind.LOCAL``/``Kind.CLOSE``), ``args``
    the command line's tokens after the command name.
    """

    __slots__ = (
        "args", "cmd", "effects", "key", "keys", "kind", "more", "prefix", "reply", "wire",
    )  # fmt: skip

    def __init__(
        self,
        kind: Kind,
        cmd: bytes,
        wire: bytes,
        key: bytes = b"",
        reply: Reply = Reply.NORMAL,
        args: list[bytes] | None = None,
    ) -> None:
        self.kind = kind
        self.cmd = cmd
        self.wire = wire
        self.key = key
        self.reply = reply
        self.args: list[bytes] = args if args is not None else []
        self.keys: list[bytes] = []
        # For get-family requests: the command line up to the keys (``b"gat 30"``), used to
        # build one request per key.
        self.prefix = b""
        # A get line longer than a read is handed over in parts as its keys arrive: every
        # part but the last has ``more`` (its reply carries no END).
        self.more = False
        # What the request does (``memfleet.protocol.commands`` effect bits); -1 until asked:
        # the policy gate computes it from ``cmd`` and ``args`` only when a deny-list is set.
        # Requests the proxy makes up (a binary translation, an unlink) set it themselves.
        self.effects = -1

    def effect_mask(self) -> int:
        """The request's effects (computed once, from the command table)."""
        e = self.effects
        if e < 0:
            e = self.effects = effects_of(self.cmd, self.args)
        return e

    def __repr__(self) -> str:
        return (
            f"Request({self.kind.name}, {self.cmd!r}, key={self.key!r}, "
            f"reply={self.reply.name}, wire={self.wire[:60]!r})"
        )


def hidden_by_quiet(cmd: bytes, reply: bytes) -> bool:
    """True when a meta command sent with ``q`` must not show this reply to the client."""
    code = QUIET_HIDES.get(cmd)
    return code is not None and reply[:2] == code and reply[2:3] in (b" ", b"\r", b"\n")


def routing_key(tok: bytes, b64: bool) -> bytes:
    """The key a meta request names; base64 keys are decoded so every protocol agrees."""
    if not b64:
        return tok
    try:
        return binascii.a2b_base64(tok, strict_mode=True)
    except (binascii.Error, ValueError):
        return tok  # the backend rejects it with memcached's own error

"""Binary-protocol client connections.

A client whose first byte is the binary magic (0x80) is handed over by
``ClientConnection.dispatch`` to :func:`handle_binary`, which swaps a
``BinaryClientConnection`` in as the transport's protocol. That connection parses with the
sans-IO :class:`~memfleet.protocol.binary.BinaryParser`, sends each request through the same
route tree as text and meta requests (translated to meta), and translates each reply back into
the binary response memcached would send. Replies are written in request order by the
inherited sequence-numbered ``deliver``; a quiet command whose reply is suppressed simply
delivers nothing in its slot, so an error or a Noop behind it still comes out in order.

SASL: ``SASL list mechs`` answers ``PLAIN``. Without client authentication configured (no
``proxy.auth``) any ``SASL auth`` succeeds, so clients configured with credentials keep
working ("auth not required"). With a ``proxy.auth`` (an :class:`Authenticator`), PLAIN
credentials are checked and, as in memcached built with SASL, every command but SASL and
Version is refused with "auth failure" (and the connection closed) until the client has
authenticated.
"""

from __future__ import annotations

from typing import Protocol

from memfleet import __version__
from memfleet.protocol import errors
from memfleet.protocol.binary import (
    Action,
    BinaryParser,
    BinaryRequest,
    Op,
    Status,
    error,
    response,
    stats_response,
    translate_reply,
)
from memfleet.proxy.app import ClientConnection, Proxy
from memfleet.routes.base import drop

_VERSION = f"memfleet-{__version__}".encode()
_MECHANISMS = b"PLAIN"
_AUTHENTICATED = b"Authenticated"
# Reads that count as gets in the proxy's stats (touch is a write, as in memcached).
_GET_OPS = frozenset({Op.GET, Op.GETK, Op.GAT, Op.GATK})


class Authenticator(Protocol):
    """Client authentication, as a future ``proxy.auth`` provides it."""

    def check(self, user: bytes, password: bytes) -> bool:
        """True when ``password`` is right for ``user``."""
        ...


def plain_credentials(data: bytes) -> tuple[bytes, bytes] | None:
    """``(user, password)`` from a SASL PLAIN message (``authzid NUL user NUL password``)."""
    parts = data.split(b"\0")
    if len(parts) != 3:
        return None
    return parts[1], parts[2]


class _FlushGather:
    """Collects every backend's reply to a flush and answers once all are in."""

    __slots__ = ("conn", "remaining", "reply", "req", "seq")

    def __init__(self, conn: BinaryClientConnection, seq: int, req: BinaryRequest, n: int):
        self.conn = conn
        self.seq = seq
        self.req = req
        self.remaining = n
        self.reply = errors.OK

    def part(self, _index: int, reply: bytes) -> None:
        # The first error is the answer, like the text flush_all.
        if reply != errors.OK and self.reply == errors.OK:
            self.reply = reply
        self.remaining -= 1
        if not self.remaining:
            self.conn.deliver(self.seq, translate_reply(self.req, self.reply))


class BinaryClientConnection(ClientConnection):
    """One binary-protocol client: parse, route, translate back, write in order."""

    def __init__(self, proxy: Proxy) -> None:
        super().__init__(proxy)
        self.binary_parser = BinaryParser(proxy.cfg.max_item_size)
        self.authenticated = False

    def adopt(self, old: ClientConnection) -> None:
        """Take over ``old``'s transport. The connection is already counted in the proxy's
        stats, so only the membership of ``proxy.clients`` changes hands; this object's
        ``connection_lost`` uncounts it once, at the end."""
        transport = old.transport
        if transport is None:
            return
        self.transport = transport
        self._writer, old._writer = old._writer, None
        self.peer = old.peer
        self.proxy.clients.discard(old)
        self.proxy.clients.add(self)
        old.transport = None
        # The stats count follows the transport (see ClientConnection.connection_lost).
        self._registered, old._registered = old._registered, False
        transport.set_protocol(self)

    def data_received(self, data: bytes) -> None:
        for req in self.binary_parser.feed(data):
            self.handle(req)

    # -- dispatch ------------------------------------------------------------------------

    def handle(self, b: BinaryRequest) -> None:
        """Send one binary request on its way; its reply slot keeps the client's order."""
        action = b.action
        auth = self._auth()
        if (
            auth is not None
            and not self.authenticated
            and action not in (Action.SASL_LIST, Action.SASL_AUTH, Action.VERSION)
        ):
            self._close_with(error(b.opcode, Status.AUTH_ERROR, b.opaque))
            return
        stats = self.stats
        if action is Action.ROUTE:
            req = b.request
            assert req is not None
            if b.base in _GET_OPS:
                stats.cmd_get += 1
            elif req.cmd == b"ms":
                stats.cmd_set += 1
            else:
                stats.cmd_other += 1
            seq = self._next
            self._next = seq + 1
            self.proxy.root.send(req, self._routed, (seq, b))
        elif action is Action.LOCAL:
            for side in b.side:
                self.proxy.root.send(side, drop, None)
            self._local(b.response)
        elif action is Action.NOOP:
            self._local(b.response)
        elif action is Action.FLUSH:
            self._flush_all_binary(b)
        elif action is Action.VERSION:
            self._local(response(b.opcode, Status.OK, b.opaque, value=_VERSION))
        elif action is Action.STAT:
            args = b.key.split() if b.key else []
            self._local(stats_response(b.opaque, self._stats(args), b.opcode))
        elif action is Action.VERBOSITY:
            # As the text ``verbosity``: the proxy has no log level to set per client.
            self._local(response(b.opcode, Status.OK, b.opaque))
        elif action is Action.SASL_LIST:
            self._local(response(b.opcode, Status.OK, b.opaque, value=_MECHANISMS))
        elif action is Action.SASL_AUTH:
            self._local(self._sasl_auth(b, auth))
        elif action is Action.QUIT:
            self._close_with(b.response, protocol_error=False)
        else:  # CLOSE
            self._close_with(b.response)

    def _auth(self) -> Authenticator | None:
        # The hardening issue adds ``Proxy.auth``; until then there is none.
        auth: Authenticator | None = getattr(self.proxy, "auth", None)
        return auth

    def _sasl_auth(self, b: BinaryRequest, auth: Authenticator | None) -> bytes:
        if auth is None:
            # No client authentication configured: whatever a client sends is accepted, so
            # a client configured with credentials works as against an open server.
            self.authenticated = True
            return response(b.opcode, Status.OK, b.opaque, value=_AUTHENTICATED)
        creds = plain_credentials(b.value) if b.key == _MECHANISMS else None
        if creds is not None and b.base == Op.SASL_AUTH and auth.check(*creds):
            self.authenticated = True
            return response(b.opcode, Status.OK, b.opaque, value=_AUTHENTICATED)
        self.authenticated = False
        return error(b.opcode, Status.AUTH_ERROR, b.opaque)

    def _flush_all_binary(self, b: BinaryRequest) -> None:
        req = b.request
        assert req is not None
        self.stats.cmd_flush += 1
        backends = list(self.proxy.root.backends())
        seq = self._next
        self._next = seq + 1
        if not backends:
            self.deliver(seq, translate_reply(b, errors.OK))
            return
        gather = _FlushGather(self, seq, b, len(backends))
        for i, backend in enumerate(backends):
            backend.send(req.wire, gather.part, i)

    def _close_with(self, reply: bytes, protocol_error: bool = True) -> None:
        """Write ``reply`` after every earlier reply, then close (quit, or a violation)."""
        if protocol_error:
            self.stats.protocol_errors += 1
        seq = self._next
        self._next = seq + 1
        self._close_at = seq
        self.deliver(seq, reply)

    # -- replies -------------------------------------------------------------------------

    def _routed(self, token: tuple[int, BinaryRequest], reply: bytes) -> None:
        seq, b = token
        if b.base in _GET_OPS:
            if reply[:1] == b"V":
                self.stats.get_hits += 1
            else:
                self.stats.get_misses += 1
        self.deliver(seq, translate_reply(b, reply))


def handle_binary(conn: ClientConnection, first: bytes) -> None:
    """``Proxy.binary_handler``: the connection speaks the binary protocol from now on."""
    new = BinaryClientConnection(conn.proxy)
    new.adopt(conn)
    if new.transport is not None:
        new.data_received(first)

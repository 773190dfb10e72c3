"""Binary-protocol client connections.

A client whose first byte is the binary magic (0x80) is handed over by
``ClientConnection._execute`` to :func:`handle_binary`, which swaps a
``BinaryClientConnection`` in as the transport's protocol. That connection parses with the
sans-IO :class:`~memfleet.protocol.binary.BinaryParser`; every binary request carries the same
internal ``Request`` a text or meta request would (a meta translation, ``flush_all``,
``stats``...), which goes through the inherited ``dispatch``: the one policy gate, the same
counters, the same flush fan-out and stats. Only the reply differs: each slot's text reply is
translated back into the binary response memcached would send. A quiet command whose reply is
suppressed delivers nothing in its slot, so an error or a Noop behind it still comes out in
order.

SASL: ``SASL list mechs`` answers ``PLAIN``. Without client authentication configured any
``SASL auth`` succeeds (clients configured with credentials keep working, "auth not
required") but does not count as a login: if a reload turns authentication on, the connection
is refused like a new one. With ``auth`` configured, PLAIN credentials are checked by the gate
and, as in memcached built with SASL, every command but SASL and Version is refused with "auth
failure" (and the connection closed) until the client has authenticated.
"""

from __future__ import annotations

from typing import Final

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
from memfleet.protocol.requests import Kind, Reply, Request
from memfleet.proxy.connection import ClientConnection
from memfleet.proxy.gate import DENIED
from memfleet.proxy.serving import Serving

_MECHANISMS: Final = b"PLAIN"
_AUTHENTICATED: Final = b"Authenticated"
_DENIED_TEXT: Final = b"command not allowed by the proxy"


def plain_credentials(data: bytes) -> tuple[bytes, bytes] | None:
    """``(user, password)`` from a SASL PLAIN message (``authzid NUL user NUL password``)."""
    parts = data.split(b"\0")
    if len(parts) != 3:
        return None
    return parts[1], parts[2]


def encode(b: BinaryRequest, reply: bytes) -> bytes:
    """The binary response for ``b``, given the text reply its slot got."""
    action = b.action
    if action is Action.ROUTE or action is Action.FLUSH:
        return translate_reply(b, reply)
    if action is Action.STAT:
        return stats_response(b.opaque, reply, b.opcode)
    if action is Action.VERSION:
        version = reply[8:].rstrip(b"\r\n")  # after "VERSION "
        return response(b.opcode, Status.OK, b.opaque, value=version)
    if action is Action.VERBOSITY:
        if reply.startswith(b"OK"):
            return response(b.opcode, Status.OK, b.opaque)
        return translate_reply(b, reply)  # a node failed it: its error, as for any command
    return reply  # LOCAL, NOOP: the parser's packet


class BinaryClientConnection(ClientConnection):
    """One binary-protocol client: parse, pass the gate, route, translate back, in order."""

    def __init__(self, serving: Serving) -> None:
        super().__init__(serving)
        self.binary_parser = BinaryParser(serving.cfg.max_item_size)
        # The binary request of each reply slot still to be translated.
        self._origin: dict[int, BinaryRequest] = {}
        self._current: BinaryRequest | None = None
        # Requests parsed but not handed over while the budget is spent (at most one read's
        # worth: reading is paused meanwhile); None when not held.
        self._backlog: list[BinaryRequest] | None = None

    def adopt(self, old: ClientConnection) -> None:
        """Take over ``old``'s transport. The connection is already counted in the proxy's
        stats, so only the membership of ``serving.clients`` changes hands; this object's
        ``connection_lost`` uncounts it once, at the end."""
        transport = old.transport
        if transport is None:
            return
        self.transport = transport
        self._flow.transport, old._flow.transport = transport, None
        self._writer, old._writer = old._writer, None
        self.peer = old.peer
        self.user = old.user
        self.serving.clients.discard(old)
        self.serving.clients.add(self)
        old.transport = None
        # The stats count follows the transport (see ClientConnection.connection_lost).
        self._registered, old._registered = old._registered, False
        transport.set_protocol(self)

    @property
    def buffered(self) -> int:
        """Bytes of a request not yet complete."""
        return self.binary_parser.buffered

    def data_received(self, data: bytes) -> None:
        reqs = self.binary_parser.feed(data)
        if self._backlog is not None:
            self._backlog.extend(reqs)  # held: they wait their turn
            return
        self._handle_all(reqs, 0)
        if self._next - self._head > self._max_inflight:
            self._too_many_in_flight()

    def _handle_all(self, reqs: list[BinaryRequest], start: int) -> None:
        """Hand ``reqs[start:]`` over in order; stop where the budget is spent."""
        for i in range(start, len(reqs)):
            self.handle(reqs[i])
            if self._backlog is not None:
                self._backlog = reqs[i + 1 :]
                return

    def _hold_requests(self) -> None:
        if self._backlog is None:
            self._backlog = []

    def _continue(self) -> None:
        backlog = self._backlog
        self._backlog = None
        if backlog:
            self._handle_all(backlog, 0)

    def _requests_held(self) -> bool:
        return self._backlog is not None

    def handle(self, b: BinaryRequest) -> None:
        """One binary request: SASL and connection control here, everything else through
        the gate as its internal request."""
        action = b.action
        if action is Action.SASL_LIST:
            self._local(response(b.opcode, Status.OK, b.opaque, value=_MECHANISMS))
            return
        if action is Action.SASL_AUTH:
            self._local(self._sasl_auth(b))
            return
        if action is Action.QUIT or action is Action.CLOSE:
            if action is Action.CLOSE:
                self.stats.protocol_errors += 1
            self._close_after(b.response)
            return
        req = b.request
        if req is None:  # every other action carries one (BinaryParser._classify)
            return
        self._current = b
        try:
            for side in b.side:
                self.dispatch(side)
            self.dispatch(req)
        finally:
            self._current = None

    def _authenticated(self, req: Request) -> bool:
        # memcached answers a binary Version before SASL, as it answers SASL itself.
        return self.user is not None or req.kind is Kind.VERSION

    def _take_slot(self) -> int:
        seq = super()._take_slot()
        b = self._current
        if b is not None:
            self._origin[seq] = b
        return seq

    def _refuse(self, req: Request, reason: int) -> None:
        b = self._current
        if b is None or req.reply is not Reply.NORMAL:
            return  # a side request nobody waits for
        self._current = None  # the packet below is final: no translation
        if reason == DENIED:
            self._local(error(b.opcode, Status.NOT_SUPPORTED, b.opaque, _DENIED_TEXT))
        else:
            self._close_after(error(b.opcode, Status.AUTH_ERROR, b.opaque))

    def _sasl_auth(self, b: BinaryRequest) -> bytes:
        gate = self.serving.gate
        if gate.auth is None:
            # No client authentication configured: whatever a client sends is accepted, so
            # a client configured with credentials works as against an open server.
            return response(b.opcode, Status.OK, b.opaque, value=_AUTHENTICATED)
        creds = plain_credentials(b.value) if b.key == _MECHANISMS else None
        if creds is not None and b.base == Op.SASL_AUTH and gate.login(*creds, self.peer):
            self.user = creds[0]
            return response(b.opcode, Status.OK, b.opaque, value=_AUTHENTICATED)
        self.user = None
        return error(b.opcode, Status.AUTH_ERROR, b.opaque)

    # -- replies -------------------------------------------------------------------------

    def _deliver_get(self, seq: int, reply: bytes) -> None:
        if reply[:1] == b"V":
            self.stats.get_hits += 1
        else:
            self.stats.get_misses += 1
        self.deliver(seq, reply)

    def deliver(self, seq: int, reply: bytes) -> None:
        """Translate slot ``seq``'s text reply into its binary packet, then write in order."""
        b = self._origin.pop(seq, None)
        if b is not None:
            reply = encode(b, reply)
        super().deliver(seq, reply)


def handle_binary(conn: ClientConnection, first: bytes) -> None:
    """``Serving.binary_handler``: the connection speaks the binary protocol from now on."""
    new = BinaryClientConnection(conn.serving)
    new.adopt(conn)
    if new.transport is not None:
        new.data_received(first)

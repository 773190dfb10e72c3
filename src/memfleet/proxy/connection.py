"""A client connection: bytes to the codec, requests through the policy gate to the route
tree, replies back in order. Thin on purpose: framing lives in ``memfleet.protocol``, policy in
``memfleet.proxy.gate``, proxy-answered commands in ``memfleet.proxy.answers``.

Each connection numbers its requests; replies may complete out of order (different backends)
and are written strictly in request order. A reply is written at once when nothing earlier is
outstanding and nothing later is in flight; otherwise replies are gathered and written once per
event-loop turn.

The binary protocol (``memfleet.proxy.binary_connection``) subclasses this class: the same
``Request``s through the same ``dispatch``; each slot's text reply is translated back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final, cast

from memfleet.logs import RateLimitedLog, peer_text
from memfleet.protocol import errors
from memfleet.protocol.commands import COUNTER
from memfleet.protocol.parse import RequestSink
from memfleet.protocol.requests import Kind, Reply, Request, hidden_by_quiet
from memfleet.protocol.responses import merge_get_replies, merge_get_values
from memfleet.proxy import admin, answers
from memfleet.proxy.budget import HINT_MIN, learn
from memfleet.proxy.client_flow import ClientFlow
from memfleet.proxy.gate import ADMITTED, DENIED, PolicyGate
from memfleet.proxy.limits import TOO_MANY_CONNECTIONS
from memfleet.proxy.serving import Serving
from memfleet.sockio import SocketWriter

log = logging.getLogger("memfleet.proxy")

# One line per client protocol error, with the peer; a flood is summarised, not echoed.
protocol_error_log = RateLimitedLog(log, "client_protocol_error")
_CRLF: Final = b"\r\n"
# Keys of one get sent on at once: at the floor estimate one chunk is a whole budget.
GET_CHUNK: Final = 64


def _drop(_token: object, _reply: bytes) -> None:
    """Reply callback for noreply requests: the client asked for nothing."""


_DROP: Final = _drop


class ClientConnection(ClientFlow):
    """One client: parse, pass the gate, dispatch to the route tree, write replies in order."""

    __slots__ = (
        "_close_at", "_deliver_cb", "_flush_handle", "_get_cb", "_get_parts", "_get_rest",
        "_out", "_ready", "_registered", "idle_for", "partial_for", "stalled_for", "stats",
        "sweep_next", "user",
    )  # fmt: skip

    def __init__(self, serving: Serving) -> None:
        super().__init__(serving, _CLOSED_SINK)
        self._sink = _Sink(self)
        self.stats = serving.stats
        # Bound once, instead of a new bound method for every request.
        self._get_cb: Callable[[int, bytes], None] = self._deliver_get
        self._deliver_cb: Callable[[int, bytes], None] = self.deliver
        # The user this connection authenticated as (None: not authenticated).
        self.user: bytes | None = None
        self._ready: dict[int, bytes] = {}
        self._out: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None
        self._close_at = -1  # write up to this reply, then close
        self._registered = False
        # The rest of a long get, waiting for the budget: the request and its next key.
        self._get_rest: tuple[Request, int] | None = None
        self._get_parts = False  # between the parts of a get line longer than a read
        self.policy_changed(serving.gate)
        # Kept for the limits sweep (memfleet.proxy.limits.Sweeper).
        self.sweep_next = 0
        self.idle_for = 0.0
        self.partial_for = 0.0
        self.stalled_for = 0.0

    # -- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence a cast, not a check.
        t = cast(asyncio.Transport, transport)
        self.peer = transport.get_extra_info("peername")
        serving = self.serving
        limits = serving.cfg.limits
        if self.stats.curr_connections >= limits.max_connections:
            # memcached's own answer; everyone already connected keeps being served.
            serving.limit_counters.rejected_connections += 1
            serving.events.warning(
                "maxconns", "refused client %s: %d connections open (max_connections)",
                self.peer, self.stats.curr_connections,
            )  # fmt: skip
            t.write(TOO_MANY_CONNECTIONS)
            t.close()
            return
        self.transport = t
        self._flow.transport = t
        self._writer = SocketWriter(t)
        self._registered = True
        # Unwritten replies count against the budget; the transport holds them to it too.
        t.set_write_buffer_limits(high=limits.max_client_bytes)
        serving.clients.add(self)
        self.stats.curr_connections += 1
        self.stats.total_connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        # Break the cycles through bound methods now: with the GC's raised threshold an idle
        # proxy would otherwise hold closed connections until the next collection.
        if self._writer is not None:
            self._writer.stop()  # the socket is closed after this returns
            self._writer = None
        self._get_cb = self._deliver_cb = self._noreply_cb = _drop
        self._sink = _CLOSED_SINK
        self._flow_closed()
        self._ready.clear()
        self._out = []
        if self.transport is not None and self._registered:
            self.transport = None
            self._registered = False
            self.serving.clients.discard(self)
            self.stats.curr_connections -= 1
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None

    def data_received(self, data: bytes) -> None:
        self.parser.feed_into(data, self._sink)
        if self._next - self._head > self._max_inflight:
            self._too_many_in_flight()

    # -- the policy gate -----------------------------------------------------------------

    def policy_changed(self, gate: PolicyGate) -> None:
        """A new policy (at start, or a reload): take the fast paths only where the gate has
        nothing to check, and hang up a user the new password file no longer has."""
        self.parser.fast = not gate.active
        user = self.user
        if user is not None and not gate.knows(user):
            log.info(
                "closing client %s: its user is no longer in the password file", self.peer,
                extra={"event": "client_closed", "peer": peer_text(self.peer)},
            )  # fmt: skip
            self.user = None
            self.close()

    def _refuse(self, req: Request, reason: int) -> None:
        """Answer a request the gate refused, in this protocol's words."""
        if reason == DENIED:
            if req.reply is not Reply.NOREPLY:
                self._local(errors.DENIED)
            return
        self._unauthenticated(req)

    def _unauthenticated(self, req: Request) -> None:
        if req.kind is Kind.CLOSE or req.kind is Kind.BINARY:
            self._execute(req)  # the connection closes or changes protocol
            return
        reply, user = self.serving.gate.ascii_login(req, self.peer)
        if user is not None:
            self.user = user
        self._local(reply)

    def dispatch(self, req: Request) -> None:
        """Pass one request through the gate and send it on its way; its reply slot keeps
        the client's order."""
        gate = self.serving.gate
        if gate.active:
            reason = gate.check(req, self._authenticated(req), self.peer)
            if reason != ADMITTED:
                self._refuse(req, reason)
                return
        self._execute(req)

    def _authenticated(self, req: Request) -> bool:
        """Whether ``req`` may pass as from an authenticated client."""
        return self.user is not None

    # -- execution (after the gate) ------------------------------------------------------

    def _take_slot(self) -> int:
        """The sequence number of a new reply slot."""
        seq = self._next
        self._next = seq + 1
        return seq

    def _execute(self, req: Request) -> None:
        kind = req.kind
        stats = self.stats
        serving = self.serving
        if kind is Kind.KEYED:
            cmd = req.cmd
            counter = COUNTER.get(cmd, "cmd_other")
            if counter == "cmd_set":
                stats.cmd_set += 1
            elif counter == "cmd_touch":
                stats.cmd_touch += 1
            else:
                stats.cmd_other += 1
            stats.commands[cmd] = stats.commands.get(cmd, 0) + 1
            mode = req.reply
            size = len(req.wire)
            if size >= HINT_MIN:
                self._hints.note(req.key, size)  # a large value stored (or a large request)
            if mode is Reply.NOREPLY:
                self._send_noreply(req, size, _DROP)
                return
            seq = self._take_slot()
            self._reserve_keyed(seq, size, req.key)
            if mode is Reply.NORMAL:
                serving.root.send(req, self._deliver_cb, seq)
            else:
                serving.root.send(req, self._deliver_quiet, (seq, req.cmd))
            if (self._next - self._head) * self._est + self._extra > self._budget:
                self._spent()
        elif kind is Kind.GET:
            self._get(req)
        elif kind is Kind.LOCAL:
            wire = req.wire
            if wire[:1] in (b"E", b"C"):
                stats.protocol_errors += 1
                protocol_error_log.emit(self.peer, wire)
            elif wire is errors.TOO_LARGE:
                serving.limit_counters.too_large += 1
                serving.events.warning(
                    "item_size", "client %s sent a value over max_item_size (%d bytes)",
                    self.peer, serving.cfg.max_item_size,
                )  # fmt: skip
            if req.reply is not Reply.NOREPLY:
                self._local(wire)
        elif kind is Kind.FLUSH:
            if req.reply is Reply.NOREPLY:
                answers.flush_all(serving, req.wire, _DROP, None)
            else:
                answers.flush_all(serving, req.wire, self._deliver_cb, self._take_slot())
        elif kind is Kind.VERSION:
            self._local(answers.VERSION)
        elif kind is Kind.STATS or kind is Kind.VERBOSITY:
            # Answered from the proxy's counters and the nodes' (memfleet.proxy.admin).
            if req.reply is Reply.NOREPLY:
                admin.answer(serving, req, _DROP, None)
            else:
                admin.answer(serving, req, self._deliver_cb, self._take_slot())
        elif kind is Kind.HTTP:
            # memcached's rule: an HTTP request line is hung up on, without a reply.
            stats.http_closed += 1
            self._close_after(b"")
        elif kind is Kind.BINARY:
            handler = serving.binary_handler
            if handler is not None:
                handler(self, req.wire)
                return
            data = req.wire
            refusal = errors.binary_refusal(data[1] if len(data) > 1 else 0, data[12:16])
            self._execute(Request(Kind.CLOSE, b"", refusal))
        else:  # QUIT, CLOSE
            if kind is Kind.CLOSE:
                stats.protocol_errors += 1
                log.info(
                    "closing client %s: protocol violation", self.peer,
                    extra={"event": "client_closed", "peer": peer_text(self.peer)},
                )  # fmt: skip
            self._close_after(req.wire)

    def _close_after(self, reply: bytes) -> None:
        """Write ``reply`` after every earlier reply, then close."""
        seq = self._take_slot()
        self._close_at = seq
        self.deliver(seq, reply)

    def _local(self, reply: bytes) -> None:
        self.deliver(self._take_slot(), reply)

    def _get(self, req: Request) -> None:
        keys = req.keys
        n = len(keys)
        self.stats.cmd_get += n
        if n != 1 or req.more or self._get_parts:
            self._get_from(req, 0)
            return
        seq = self._take_slot()
        if self._hints.sizes:
            self._hint(seq, keys[0])
        self.serving.root.send(req, self._get_cb, seq)
        if (self._next - self._head) * self._est + self._extra > self._budget:
            self._spent()

    def _get_from(self, req: Request, start: int) -> None:
        """A get of many keys (or one part of a get line longer than a read), sent on
        GET_CHUNK keys at a time, each chunk in its own reply slot (only the last ends with
        END): the budget is checked after each chunk, and once spent the rest waits for
        ``_continue``, so a get of any length costs the proxy its budget, not its length."""
        keys = req.keys
        n = len(keys)
        root = self.serving.root
        prefix = req.prefix + b" "
        while True:
            end = min(n, start + GET_CHUNK)
            last = end == n
            seq = self._take_slot()
            count = end - start
            if count > 1:
                self._reserve(seq, (count - 1) * self._est)
            if not count:  # a streamed line's last part held no key: its END
                self._get_parts = req.more
                self.deliver(seq, b"" if req.more else errors.END)
                return
            if req.more:
                self._get_parts = True  # a line handed over in parts: its last part ends it
                merge = self._merge_get_values
            elif not last:
                merge = self._merge_get_values
            elif start or self._get_parts:
                self._get_parts = False
                merge = self._merge_get_end
            else:
                # The whole get in one chunk: if every key failed, the client gets the error.
                merge = self._merge_get
            gather = answers.Gather(self._deliver_cb, seq, count, merge)
            for i in range(start, end):
                key = keys[i]
                if self._hints.sizes:
                    self._hint(seq, key)
                sub = Request(Kind.GET, req.cmd, prefix + key + _CRLF, key)
                sub.keys = [key]
                sub.prefix = req.prefix
                root.send(sub, gather.part, i - start)
            if last:
                break
            start = end
            if (self._next - self._head) * self._est + self._extra > self._budget:
                self._get_rest = (req, start)
                self._spent()
                return
        if (self._next - self._head) * self._est + self._extra > self._budget:
            self._spent()

    def _continue(self) -> None:
        rest = self._get_rest
        if rest is not None:
            self._get_rest = None
            self._get_from(rest[0], rest[1])
            if self._get_rest is not None:
                return  # spent again
        self.parser.resume(self._sink)

    def _requests_held(self) -> bool:
        return self._get_rest is not None or self.parser.held

    def _merge_get_end(self, parts: list[bytes]) -> bytes:
        return self._merge_get_values(parts) + errors.END

    def _merge_get_values(self, parts: list[bytes]) -> bytes:
        self._count_get(parts)
        return merge_get_values(parts)

    def _merge_get(self, parts: list[bytes]) -> bytes:
        self._count_get(parts)
        return merge_get_replies(parts)

    def _count_get(self, parts: list[bytes]) -> None:
        est = self._est
        for p in parts:
            if p.startswith(b"V"):
                self.stats.get_hits += 1
            else:
                self.stats.get_misses += 1
            size = len(p)
            if size >= HINT_MIN:
                self._hints.note_reply(p)
            est = learn(est, size, self._floor)
        self._est = est

    # -- replies -------------------------------------------------------------------------

    def _deliver_get(self, seq: int, reply: bytes) -> None:
        if reply.startswith(b"V"):
            self.stats.get_hits += 1
        else:
            self.stats.get_misses += 1
        # The budget's estimate learns from every get reply (memfleet.proxy.budget.learn,
        # inlined: two comparisons per reply while replies stay small).
        size = len(reply)
        est = self._est
        if size > est:
            self._est = size
        elif est > self._floor:
            self._est = learn(est, size, self._floor)
        if size >= HINT_MIN:
            self._hints.note_reply(reply)
        if seq == self._head and seq + 1 == self._next and not self._out and self._close_at < 0:
            # The only request in flight: its reply goes out now (nothing to order it with).
            self._head = seq + 1
            if self._extra:
                self._release(seq)
            writer = self._writer
            if writer is not None:
                writer.send(reply)
            if self._flow.reasons:
                self._paused_reply(size)
            return
        self.deliver(seq, reply)

    def _deliver_quiet(self, token: tuple[int, bytes], reply: bytes) -> None:
        seq, cmd = token
        self.deliver(seq, b"" if hidden_by_quiet(cmd, reply) else reply)

    def deliver(self, seq: int, reply: bytes) -> None:
        """The reply for request ``seq``; written once every earlier reply has been."""
        if self._extra:
            self._release(seq)
        if seq != self._head:
            self._ready[seq] = reply
            self._ready_bytes += len(reply)
            if self._ready_bytes > self._budget:
                self._spent()  # replies held behind a slow one: read no more for now
            return
        head = seq + 1
        ready = self._ready
        if ready and head in ready:
            parts = [reply]
            while head in ready:
                part = ready.pop(head)
                self._ready_bytes -= len(part)
                parts.append(part)
                head += 1
            reply = b"".join(parts)
        closing = self._close_at >= 0 and head > self._close_at
        self._head = head
        transport = self.transport
        if transport is None or (self._close_at >= 0 and transport.is_closing()):
            return
        if head == self._next and not self._out and not closing:
            # Nothing else in flight: write now rather than wait for the end of the turn.
            writer = self._writer
            if reply and writer is not None:
                writer.send(reply)
            if self._flow.reasons:
                self._paused_reply(len(reply))
            return
        if reply:
            self._out.append(reply)
            self._out_bytes += len(reply)
        if closing:
            self._flush()
            self.close()
        elif self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        writer = self._writer
        if self._out and writer is not None:
            out = self._out
            self._out = []
            n = self._out_bytes
            self._out_bytes = 0
            writer.send(out[0] if len(out) == 1 else b"".join(out))
            if self._flow.reasons:
                self._paused_reply(n)

    def close(self) -> None:
        """Close the client connection: at proxy shutdown, once the reply it was to close
        after (``quit``, a protocol error) is written, or when its user is removed."""
        if self._writer is not None:
            self._writer.stop()  # replies still coming are dropped, as the transport does
        if self.transport is not None:
            self.transport.close()


class _Sink(RequestSink):
    """What the codec hands a connection's requests to (see ``RequestSink``)."""

    __slots__ = ("conn",)

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn

    def plain_get(self, key: bytes, line: bytes) -> None:
        """The codec's fast path: a plain get, only while the gate has nothing to check. The
        reply slot is taken before sending: a down backend answers synchronously."""
        c = self.conn
        c.stats.cmd_get += 1
        seq = c._next
        c._next = seq + 1
        if c._hints.sizes:  # empty unless this worker has seen large values
            c._hint(seq, key)
        c.serving.root.send_get(key, line, c._get_cb, seq)
        # The budget: every request in flight counts for the estimate (one multiply here).
        if (c._next - c._head) * c._est + c._extra > c._budget:
            c._spent()

    def request(self, req: Request) -> None:
        """Any other request: through the gate."""
        self.conn.dispatch(req)


class _ClosedSink(RequestSink):
    """What a closed connection's codec hands requests to: nothing happens."""

    __slots__ = ()

    def plain_get(self, key: bytes, line: bytes) -> None:
        """Dropped."""

    def request(self, req: Request) -> None:
        """Dropped."""


_CLOSED_SINK: Final = _ClosedSink()

"""A backend connection: one pipelined TCP connection to a memcached server.

Requests from every client are queued on a connection and written in one batch per event-loop
turn; replies come back in order and are matched against a FIFO of ``(callback, token)``
pairs, so a request costs two list appends and no task or future. Every timeout, reset or
refusal fails the requests in flight with ``SERVER_ERROR backend failure`` and is reported to
the backend (``Endpoint.record_failure``), whose health rules live in
``memfleet.backends.backend``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from time import perf_counter
from typing import Any, Final, cast

from memfleet.backends.endpoint import Endpoint
from memfleet.backends.failure import Failure, FailureKind
from memfleet.logs import LimitEvents
from memfleet.protocol import errors
from memfleet.protocol.responses import FramingError, ResponseFramer
from memfleet.sockio import SocketWriter

log = logging.getLogger("memfleet.backends")

ReplyCallback = Callable[[Any, bytes], None]

_FAILURE: Final = errors.BACKEND_FAILURE
_QUEUE_FULL = b"SERVER_ERROR backend queue full\r\n"
_limit_events = LimitEvents(log)


# Slots a drained connection keeps for reuse (two lists of this many pointers).
_KEPT_SLOTS: Final = 1024


def _answered(_token: Any, _reply: bytes) -> None:
    """What a FIFO slot holds once its request is answered (never called)."""


# Final: a C variable in the compiled build, where a module function used as a value is
# otherwise looked up in the module's dict every time.
_ANSWERED: Final[ReplyCallback] = _answered


class _Link(asyncio.Protocol):
    """One TCP connection attempt; forwards events to its owner while it is current (and to
    its drain once it was cut for a timeout)."""

    __slots__ = ("drain", "owner", "transport", "writer")

    def __init__(self, owner: BackendConnection) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.writer: SocketWriter | None = None
        self.drain: Drain | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence a cast, not a check.
        self.transport = cast(asyncio.Transport, transport)
        self.writer = SocketWriter(self.transport)

    def data_received(self, data: bytes) -> None:
        if self.owner._link is self:
            self.owner._on_data(data)
        elif self.drain is not None:
            self.drain.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.writer is not None:
            self.writer.stop()  # the socket is closed after this returns
            self.writer = None
        if self.owner._link is self:
            detail = "connection closed by backend" if exc is None else str(exc)
            self.owner._fail(Failure(FailureKind.CLOSED, detail))
        elif self.drain is not None:
            self.drain.finish()


# Cut connections kept draining per backend: the first holds what a hung node may still
# apply; the rest are probes (a version each) and may be dropped.
_MAX_DRAINS: Final = 16


class Drain:
    """A connection cut for a timeout, kept open until the node has answered what was
    written on it (or closes it).

    A hung node (SIGSTOP, a stalled host) applies what is in its socket when it resumes, even
    after the proxy reset the connection (measured: a set sent to a SIGSTOPped memcached, the
    connection then reset, is applied on SIGCONT). A repair of that node must land after
    those writes, so it waits until every drain of the backend is over
    (``memfleet.backends.backend``)."""

    __slots__ = ("backend", "framer", "left", "link")

    def __init__(self, link: _Link, framer: ResponseFramer, written: int, backend: Endpoint):
        self.link = link
        self.framer = framer
        self.left = written
        self.backend = backend
        link.drain = self
        backend.drains.append(self)

    def feed(self, data: bytes) -> None:
        """Replies to requests failed already: counted, not delivered."""
        try:
            self.left -= len(self.framer.feed(data))
        except FramingError:
            self.abort()
            return
        if self.left <= 0:
            self.finish()

    def finish(self) -> None:
        """Nothing more can be applied from this connection: close it."""
        link = self.link
        link.drain = None
        if self in self.backend.drains:
            self.backend.drains.remove(self)
        if link.transport is not None:
            link.transport.close()

    def abort(self) -> None:
        """Give up waiting: reset the connection."""
        if self.link.transport is not None:
            self.link.transport.abort()
        self.finish()


class _FlushTurn:
    """The backend connections with bytes queued this event-loop turn, written together at
    its end: one callback per turn for all of them instead of one per connection."""

    __slots__ = ("_handle", "_run", "dirty", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.dirty: list[BackendConnection] = []
        self._handle: asyncio.Handle | None = None
        self._run = self.run  # bound once: scheduled every turn

    def add(self, conn: BackendConnection) -> None:
        """Write ``conn``'s queue at the end of this turn."""
        self.dirty.append(conn)
        if self._handle is None:
            self._handle = self.loop.call_soon(self._run)

    def run(self) -> None:
        """Flush every connection queued this turn."""
        self._handle = None
        dirty = self.dirty
        for conn in dirty:
            conn._flush()
        dirty.clear()


_turn: _FlushTurn | None = None


def _flush_turn(loop: asyncio.AbstractEventLoop) -> _FlushTurn:
    # One per event loop; a process serves from one loop, so the last one made is kept.
    global _turn
    turn = _turn
    if turn is None or turn.loop is not loop:
        turn = _turn = _FlushTurn(loop)
    return turn


class BackendConnection:
    """A pipelined connection to one backend, reconnected on demand after a failure."""

    __slots__ = (
        "_cbs",
        "_clock",
        "_connecting",
        "_draining",
        "_end",
        "_flush_queued",
        "_framer",
        "_last_activity",
        "_link",
        "_loop",
        "_marks",
        "_out",
        "_timer",
        "_tokens",
        "_turn",
        "_waiting",
        "backend",
    )

    def __init__(self, backend: Endpoint) -> None:
        self.backend = backend
        self._loop = asyncio.get_running_loop()
        self._clock = self._loop.time  # bound once: read on every backend read
        self._turn = _flush_turn(self._loop)
        # The FIFO of requests awaiting a reply: callbacks and tokens side by side, waiting in
        # slots ``_waiting`` to ``_end``. Two plain lists rather than a deque of pairs: no
        # tuple per request, and list indexing is a primitive in the compiled build. Slots
        # are overwritten rather than appended and cleared: a list emptied and refilled every
        # loop turn would free and regrow its array every time.
        self._cbs: list[ReplyCallback] = []
        self._tokens: list[Any] = []
        self._waiting = 0
        self._end = 0
        self._out: list[bytes] = []
        self._link: _Link | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._flush_queued = False  # in this turn's _FlushTurn
        self._timer: asyncio.TimerHandle | None = None
        self._framer = ResponseFramer()
        self._last_activity = 0.0
        self._draining = False
        # Metrics only (None without --metrics): [requests left, flush time] per written batch.
        self._marks: deque[list[float]] | None = deque() if backend.latency is not None else None

    @property
    def in_flight(self) -> int:
        """Requests sent or queued and not yet answered."""
        return self._end - self._waiting

    def _take_pending(self) -> list[tuple[ReplyCallback, Any]]:
        """Empty the FIFO, returning what it held (to be failed)."""
        w, end = self._waiting, self._end
        pending = list(zip(self._cbs[w:end], self._tokens[w:end], strict=True))
        self._cbs = []
        self._tokens = []
        self._waiting = self._end = 0
        return pending

    def send(self, wire: bytes, cb: ReplyCallback, token: Any) -> None:
        """Queue one request; ``cb(token, reply)`` is called with its reply or a failure."""
        end = self._end
        queued = end - self._waiting
        if queued >= self.backend.max_queue:
            # A backend that cannot keep up must not make the proxy's memory grow: the
            # excess fails at once (an error result, so failover routes move on).
            self.backend.queue_full += 1
            _limit_events.warning(
                "backend_queue", "backend %s: %d requests queued (max_backend_queue); "
                "failing the excess", self.backend.name, queued,
            )  # fmt: skip
            cb(token, _QUEUE_FULL)
            return
        if not queued:
            self._last_activity = self._clock()
            if self._timer is None:
                self._timer = self._loop.call_later(
                    self.backend.options.read_timeout, self._check_timeout
                )
        cbs = self._cbs
        if end < len(cbs):
            cbs[end] = cb
            self._tokens[end] = token
        else:
            cbs.append(cb)
            self._tokens.append(token)
        self._end = end + 1
        self._out.append(wire)
        link = self._link
        if link is not None and link.writer is not None:  # the same test as _flush's
            if not self._flush_queued:
                self._flush_queued = True
                self._turn.add(self)
        elif self._connecting is None:
            self._connecting = self._loop.create_task(self._connect())

    def _flush(self) -> None:
        self._flush_queued = False
        link = self._link
        if not self._out or link is None or link.writer is None:
            return
        out = self._out
        link.writer.send(out[0] if len(out) == 1 else b"".join(out))
        if self._marks is not None:
            # perf_counter, not loop.time(): uvloop's clock ticks in whole milliseconds.
            self._marks.append([len(out), perf_counter()])
        out.clear()  # reused: the transport has copied or kept the bytes, not the list

    async def _connect(self) -> None:
        b = self.backend
        link = _Link(self)
        tls = b.options.tls
        try:
            if tls is None:
                connecting = self._loop.create_connection(lambda: link, b.host, b.port)
            else:
                connecting = self._loop.create_connection(
                    lambda: link,
                    b.host,
                    b.port,
                    ssl=b.tls_context(),
                    server_hostname=(tls.server_name or b.host) if tls.verify else "",
                )
            await asyncio.wait_for(connecting, b.options.connect_timeout)
        except (TimeoutError, OSError) as exc:
            self._connecting = None
            self._fail(Failure(FailureKind.CONNECT, f"connect failed: {exc or 'timeout'}"))
            return
        finally:
            self._connecting = None
        self._link = link
        self._framer = ResponseFramer()
        self._last_activity = self._loop.time()
        b.connects += 1
        self._flush()

    def _on_data(self, data: bytes) -> None:
        try:
            replies = self._framer.feed(data)
        except FramingError as exc:
            self._fail(Failure(FailureKind.PROTOCOL, str(exc)))
            return
        if not replies:
            self._last_activity = self._clock()
            return
        cbs = self._cbs
        tokens = self._tokens
        w = self._waiting
        if len(replies) > self._end - w:
            self._fail(Failure(FailureKind.PROTOCOL, "backend sent more replies than requests"))
            return
        self._last_activity = self._clock()
        self.backend.failures = 0
        if self._marks is not None:
            self._observe(len(replies))
        for reply in replies:
            cb = cbs[w]
            token = tokens[w]
            # The slot lets go of them now: a client or fan-out state is not kept alive by a
            # slot waiting to be reused.
            cbs[w] = _ANSWERED
            tokens[w] = None
            w += 1
            self._waiting = w  # before the call: a callback may send more on this connection
            cb(token, reply)
            if self._cbs is not cbs:
                return  # the callback failed or closed this connection: the rest was answered
        end = self._end
        if w == end:
            self._waiting = self._end = 0  # drained: the slots are reused from the start
            if len(cbs) > _KEPT_SLOTS:
                del cbs[_KEPT_SLOTS:]  # a past burst does not keep its memory
                del tokens[_KEPT_SLOTS:]
        elif w > 4096 and w * 2 > end:
            # A connection that never drains (steady pipelining) still gets compacted.
            del cbs[:w]
            del tokens[:w]
            self._end = end - w
            self._waiting = 0
        if self._draining and not self.in_flight:
            self.close()

    def _observe(self, n: int) -> None:
        """Metrics: ``n`` replies arrived now; each is as old as the batch it was written in
        (one clock read per backend read, none per request)."""
        marks = self._marks
        latency = self.backend.latency
        if marks is None or latency is None:
            return
        now = perf_counter()
        while n and marks:
            mark = marks[0]
            take = min(n, int(mark[0]))
            latency.observe(now - mark[1], take)
            n -= take
            mark[0] -= take
            if mark[0] <= 0:
                marks.popleft()

    def _check_timeout(self) -> None:
        self._timer = None
        if not self.in_flight:
            return
        timeout = self.backend.options.read_timeout
        if self._connecting is not None:
            # The connect has its own timeout; look again once it had its chance.
            self._timer = self._loop.call_later(timeout, self._check_timeout)
            return
        idle = self._loop.time() - self._last_activity
        if idle >= timeout:
            self._fail(Failure(FailureKind.TIMEOUT, f"no reply within {timeout:g}s"))
        else:
            self._timer = self._loop.call_later(timeout - idle, self._check_timeout)

    def _fail(self, failure: Failure) -> None:
        """Drop the connection and answer everything in flight with a backend failure."""
        link = self._link
        self._link = None
        written = self._end - self._waiting - len(self._out)
        if link is not None and link.transport is not None:
            if (
                failure.kind is FailureKind.TIMEOUT
                and written > 0
                and len(self.backend.drains) < _MAX_DRAINS
            ):
                Drain(link, self._framer, written, self.backend)
                self._framer = ResponseFramer()
            else:
                link.transport.abort()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._out = []
        if self._marks is not None:
            self._marks.clear()
        pending = self._take_pending()
        self.backend.record_failure(failure, len(pending))
        for cb, token in pending:
            cb(token, _FAILURE)

    def drain(self) -> None:
        """Close once the requests in flight are answered (a backend a reload removed)."""
        if not self.in_flight:
            self.close()
            return
        self._draining = True
        # A backend that never answers must not keep its connection forever.
        self._loop.call_later(self.backend.options.read_timeout * 2, self.close)

    def close(self) -> None:
        """Close for good (shutdown); anything still in flight fails."""
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        if self.in_flight or self._link is not None:
            link = self._link
            self._link = None
            if link is not None and link.transport is not None:
                link.transport.close()
            pending = self._take_pending()
            if self._marks is not None:
                self._marks.clear()
            for cb, token in pending:
                cb(token, _FAILURE)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

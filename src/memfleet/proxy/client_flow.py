"""A client connection's reading side: when the proxy reads from a client, and what the
client may hold meanwhile.

``ClientFlow`` is the base of ``memfleet.proxy.connection.ClientConnection``: it keeps the
client's byte budget (``max_client_bytes``: what each request reserves, see
``memfleet.proxy.budget``), its count of requests in flight (``max_inflight``), and the
process budget's hooks (``memfleet.proxy.memory``), and turns them into pausing and resuming
reads (``memfleet.proxy.flow``). The connection itself frames, dispatches and orders replies;
it calls in here after forwarding a request and after writing a reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from memfleet.backends.connection import ReplyCallback
from memfleet.protocol.parse import RequestParser, RequestSink
from memfleet.protocol.requests import Request
from memfleet.proxy.budget import FLOOR_SHARE
from memfleet.proxy.flow import BUDGET, INFLIGHT, MEMORY, WRITE, ReadFlow
from memfleet.proxy.serving import Serving
from memfleet.sockio import SocketWriter


class ClientFlow(asyncio.Protocol):
    """What a client may cost the proxy, and whether it is read from now."""

    # Slotted: a proxy holds thousands of idle connections.
    __slots__ = (
        "_budget", "_drain_watch", "_est", "_extra", "_extra_by", "_floor", "_flow", "_head",
        "_hints", "_loop", "_max_inflight", "_next", "_noreply_cb", "_out_bytes",
        "_ready_bytes", "_resume_handle", "_sink", "_writer", "parser", "peer", "serving",
        "transport",
    )  # fmt: skip

    def __init__(self, serving: Serving, sink: RequestSink) -> None:
        self.serving = serving
        cfg = serving.cfg
        limits = cfg.limits
        self.parser = RequestParser(cfg.max_item_size, cfg.max_line_length)
        self._sink = sink
        self.transport: asyncio.Transport | None = None
        # Every reply goes through it (straight to the socket when it can: memfleet.sockio).
        self._writer: SocketWriter | None = None
        self.peer: Any = None
        self._loop = asyncio.get_running_loop()
        self._next = 0  # sequence number of the next request that expects a reply
        self._head = 0  # sequence number of the next reply to write
        self._ready_bytes = 0  # replies waiting for an earlier one to be written
        self._out_bytes = 0  # replies gathered for this turn's write
        self._max_inflight = limits.max_inflight
        self._flow = ReadFlow()
        self._resume_handle: asyncio.Handle | None = None
        self._drain_watch = False  # the transport's mark lowered to hear when it drains
        # The byte budget (memfleet.proxy.budget): each request in flight counts for _est
        # bytes, and _extra holds what some count beyond it (_extra_by: by reply slot).
        self._budget = limits.max_client_bytes
        self._floor = self._budget // FLOOR_SHARE
        self._est = self._floor
        self._extra = 0
        self._extra_by: dict[int, int] = {}
        self._hints = serving.hints
        self._noreply_cb: Callable[[int, bytes], None] = self._noreply_done

    def _flow_closed(self) -> None:
        """The connection is gone: nothing is reserved or resumed any more."""
        self._flow.transport = None
        self._extra_by.clear()
        if self._resume_handle is not None:
            self._resume_handle.cancel()
            self._resume_handle = None

    def pause_writing(self) -> None:
        # The client is not reading its replies: stop reading its requests until it does
        # (the sweep drops it if that lasts past stalled_timeout).
        self._flow.pause(WRITE)

    def resume_writing(self) -> None:
        if self._drain_watch:
            self._drain_watch = False
            if self.transport is not None:
                self.transport.set_write_buffer_limits(high=self._budget)
        self._flow.resume(WRITE)
        if self._flow.reasons & BUDGET:
            self._budget_check()

    # -- limits (memfleet.proxy.limits) ----------------------------------------------------

    @property
    def requests_seen(self) -> int:
        """Grows with every request read (noreply ones too): the sweep's sign of progress."""
        return self._next + self.parser.parsed

    @property
    def in_flight(self) -> int:
        """Requests whose replies are not written yet."""
        return self._next - self._head

    @property
    def buffered(self) -> int:
        """Bytes of a request not yet complete."""
        return self.parser.buffered

    @property
    def write_paused(self) -> bool:
        """The client has left a budget's worth of replies unread."""
        return bool(self._flow.reasons & WRITE)

    @property
    def held(self) -> int:
        """What this client holds of the proxy's memory now, or has reserved: its budget's
        measure (memfleet.proxy.budget). Replies waiting behind an earlier one count twice
        (their bytes and their slot's estimate): a conservative sum, cheap to keep."""
        held = (
            (self._next - self._head) * self._est
            + self._extra
            + self._ready_bytes
            + self._out_bytes
            + self.buffered
        )
        w = self._writer
        t = self.transport
        if w is not None and w.fd < 0 and t is not None:
            held += t.get_write_buffer_size()  # only when the socket did not take it all
        return held

    def drop(self, reply: bytes) -> None:
        """Close because of a limit: write ``reply`` if it can go, then hang up."""
        t = self.transport
        if t is None:
            return
        if self._writer is not None:
            self._writer.stop()  # closing: the transport writes what is left, then nothing
        if self._flow.reasons & WRITE:
            t.abort()  # it does not read: nothing more can be written
            return
        if reply:
            t.write(reply)
        t.close()

    def _too_many_in_flight(self) -> None:
        # A client pipelining faster than its replies come back: stop reading from it until
        # half of them are written. Every protocol checks this after each read.
        if not self._flow.pause(INFLIGHT):
            return
        self.serving.limit_counters.inflight_paused += 1
        self.serving.events.warning(
            "inflight", "client %s has %d requests in flight (max_inflight): reading paused",
            self.peer, self._next - self._head,
        )  # fmt: skip

    def _paused_reply(self, n: int) -> None:
        """A reply of ``n`` bytes left its slot while reading is paused: resume what no longer
        holds, and tell the process budget about bytes a non-reading client is sent."""
        reasons = self._flow.reasons
        if reasons & INFLIGHT and self._next - self._head <= self._max_inflight // 2:
            self._flow.resume(INFLIGHT)
        if reasons & BUDGET:
            self._budget_check()
        if reasons & WRITE:
            self.serving.memory.unsent(n)

    # -- the byte budget (memfleet.proxy.budget) -------------------------------------------

    def _reserve(self, seq: int, n: int) -> None:
        """Slot ``seq`` counts ``n`` bytes beyond the estimate every slot counts for."""
        self._extra += n
        by = self._extra_by
        by[seq] = by.get(seq, 0) + n

    def _release(self, seq: int) -> None:
        n = self._extra_by.pop(seq, 0)
        if n:
            self._extra -= n

    def _noreply_done(self, n: int, _reply: bytes) -> None:
        """A large noreply request was answered (its bytes have left the proxy)."""
        self._extra -= n
        if self._flow.reasons & BUDGET:
            self._budget_check()

    def _send_noreply(self, req: Request, size: int, drop: ReplyCallback) -> None:
        """Forward a noreply request: a large one counts its bytes until the backend has
        answered it (backends always do: the proxy strips ``noreply``)."""
        if size > self._floor:
            self._extra += size
            self.serving.root.send(req, self._noreply_cb, size)
        else:
            self.serving.root.send(req, drop, None)
        if self._extra > self._budget:
            self._spent()

    def _reserve_keyed(self, seq: int, size: int, key: bytes) -> None:
        """Slot ``seq`` is a keyed request of ``size`` bytes: a large one counts its bytes,
        a read of a key known to be large (``mg``, ``gat``...) that value's size."""
        if size > self._est:
            self._reserve(seq, size - self._est)
        elif self._hints.sizes:
            self._hint(seq, key)

    def _hint(self, seq: int, key: bytes) -> None:
        """A read of ``key``, whose value this worker has seen large: reserve its size."""
        size = self._hints.sizes.get(key, 0)
        if size > self._est:
            self._reserve(seq, size - self._est)

    def _spent(self) -> None:
        """The budget is spent: stop after the request being handed over; read on once the
        client has read enough (``_budget_check``). A single request larger than the whole
        budget has gone through: it is always the last before the pause, never refused."""
        self._hold_requests()
        if self._flow.pause(BUDGET):
            self.serving.limit_counters.budget_paused += 1
            self.serving.events.warning(
                "budget", "client %s holds %d bytes (max_client_bytes): reading paused",
                self.peer, self.held,
            )  # fmt: skip

    def _hold_requests(self) -> None:
        """Hand no more requests over until ``_continue`` (each protocol's codec)."""
        self.parser.held = True

    def _continue(self) -> None:
        """Hand over the requests read while held."""
        self.parser.resume(self._sink)

    def _budget_check(self) -> None:
        if self._resume_handle is not None:
            return
        if self.held <= self._budget >> 1:
            # Not from inside a reply callback: resuming dispatches requests, whose
            # replies may come back at once (a down backend) into this very call.
            self._resume_handle = self._loop.call_soon(self._budget_resume)
            return
        w = self._writer
        t = self.transport
        if not self._drain_watch and w is not None and w.fd < 0 and t is not None:
            # What is left is mostly written but unsent, and the transport says nothing as
            # it drains below its high-water mark: a mark of 0 makes it call resume_writing
            # once it is empty, and the check runs again then.
            self._drain_watch = True
            t.set_write_buffer_limits(high=0)

    def _budget_resume(self) -> None:
        self._resume_handle = None
        if self.transport is None:
            return
        self._continue()
        if not self._requests_held():
            self._flow.resume(BUDGET)

    def _requests_held(self) -> bool:
        return self.parser.held

    def memory_pause(self) -> None:
        """The process is over max_memory and this client holds much of it."""
        self._flow.pause(MEMORY)

    def memory_resume(self) -> None:
        """The process is back under max_memory."""
        self._flow.resume(MEMORY)

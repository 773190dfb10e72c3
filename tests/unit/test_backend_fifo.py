"""The backend connection's FIFO of pending replies, without a network (a fake transport)."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from memfleet.backends.backend import Backend
from memfleet.backends.connection import _KEPT_SLOTS, BackendConnection, _Link
from memfleet.backends.failure import Failure, FailureKind
from memfleet.config import BackendOptions


class FakeTransport:
    """Collects what the connection writes."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default  # no socket: the connection writes through write()

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


def connected() -> tuple[BackendConnection, FakeTransport]:
    conn = BackendConnection(Backend("127.0.0.1", 1, BackendOptions()))
    link = _Link(conn)
    transport = FakeTransport()
    link.connection_made(transport)  # type: ignore[arg-type]
    conn._link = link
    return conn, transport


def test_replies_reach_their_callbacks_in_order_and_a_busy_queue_is_compacted() -> None:
    async def run() -> tuple[list[tuple[int, bytes]], int, int, int]:
        conn, transport = connected()
        got: list[tuple[int, bytes]] = []

        def cb(token: Any, reply: bytes) -> None:
            got.append((token, reply))

        # Steady pipelining: 100 requests always in flight, replies 50 at a time, so the
        # queue never empties and only compaction keeps its lists from growing.
        total, answered, longest = 20_000, 0, 0
        for i in range(total):
            conn.send(b"get k%d\r\n" % i, cb, i)
            if i >= 100 and i % 50 == 0:
                conn._on_data(
                    b"".join(
                        b"VALUE k%d 0 1\r\nx\r\nEND\r\n" % j for j in range(answered, answered + 50)
                    )
                )
                answered += 50
                longest = max(longest, len(conn._cbs))
        await asyncio.sleep(0)  # the flush runs once per loop turn
        sent = b"".join(transport.written).count(b"get ")
        return got, conn.in_flight, longest, sent

    got, in_flight, longest, sent = asyncio.run(run())
    assert sent == 20_000
    assert [t for t, _ in got] == list(range(len(got)))
    assert got[123][1] == b"VALUE k123 0 1\r\nx\r\nEND\r\n"
    assert in_flight == 20_000 - len(got)
    assert longest < 10_000, longest  # without compaction it would reach ~20,000


def test_a_failure_answers_only_what_is_still_pending() -> None:
    async def run() -> list[tuple[int, bytes]]:
        conn, _ = connected()
        got: list[tuple[int, bytes]] = []
        for i in range(5):
            conn.send(b"get k\r\n", lambda t, r: got.append((t, r)), i)
        conn._on_data(b"END\r\nEND\r\n")
        conn._fail(Failure(FailureKind.OTHER, "test"))
        return got

    got = asyncio.run(run())
    assert [t for t, _ in got] == [0, 1, 2, 3, 4]
    assert [r for _, r in got[:2]] == [b"END\r\n"] * 2
    assert all(r.startswith(b"SERVER_ERROR") for _, r in got[2:])


def test_answered_slots_let_go_are_reused_and_a_burst_is_trimmed() -> None:
    class Token:
        pass

    async def run() -> tuple[bool, list[tuple[int, bytes]], list[int], int, int]:
        conn, _ = connected()
        token = Token()
        gone = weakref.ref(token)
        conn.send(b"get a\r\n", lambda t, r: None, token)
        del token
        conn._on_data(b"END\r\n")
        released = gone() is None  # the answered slot does not keep its token alive

        got: list[tuple[int, bytes]] = []

        def resend(t: int, r: bytes) -> None:
            # Sends on the same connection while its replies are being handed out.
            got.append((t, r))
            if t == 0:
                conn.send(b"get c\r\n", resend, 2)

        slots = []
        for _ in range(2):  # the second round reuses the first one's slots
            conn.send(b"get a\r\n", resend, 0)
            conn.send(b"get b\r\n", resend, 1)
            conn._on_data(b"END\r\nEND\r\n")
            conn._on_data(b"VALUE c 0 1\r\nx\r\nEND\r\n")
            slots.append(len(conn._cbs))

        for i in range(5000):
            conn.send(b"get k\r\n", lambda t, r: None, i)
        conn._on_data(b"END\r\n" * 5000)
        return released, got, slots, len(conn._cbs), conn.in_flight

    released, got, slots, after_burst, in_flight = asyncio.run(run())
    assert released
    assert got == 2 * [(0, b"END\r\n"), (1, b"END\r\n"), (2, b"VALUE c 0 1\r\nx\r\nEND\r\n")]
    assert slots == [3, 3]
    assert after_burst == _KEPT_SLOTS
    assert in_flight == 0


def test_a_connection_cut_for_a_timeout_drains_instead_of_being_reset() -> None:
    """A hung node applies what is in its socket when it resumes, so the link is kept until
    it has answered what was written on it; the backend's repair waits for that."""

    async def run() -> None:
        conn, transport = connected()
        aborted: list[bool] = []
        transport.abort = lambda: aborted.append(True)  # type: ignore[method-assign]
        link = conn._link
        assert link is not None
        got: list[bytes] = []
        for i in range(3):
            conn.send(b"set k%d 0 0 1\r\nv\r\n" % i, lambda _t, r: got.append(r), None)
        conn._flush()
        conn.send(b"get late\r\n", lambda _t, r: got.append(r), None)  # queued, never written
        conn._fail(Failure(FailureKind.TIMEOUT, "no reply"))
        assert got == [b"SERVER_ERROR backend failure\r\n"] * 4  # the client hears at once
        assert aborted == []  # ...but the link is not reset
        backend = conn.backend
        assert len(backend.drains) == 1
        assert not backend._drained()  # type: ignore[attr-defined]
        link.data_received(b"STORED\r\nSTORED\r\n")
        assert len(backend.drains) == 1
        link.data_received(b"STORED\r\n")  # all three written requests answered
        assert backend.drains == [] and backend._drained()  # type: ignore[attr-defined]
        assert got == [b"SERVER_ERROR backend failure\r\n"] * 4  # late replies go nowhere

    asyncio.run(run())

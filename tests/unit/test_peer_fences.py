"""The fences ``--workers`` share: the supervisor's hub (over real socket pairs, workers played
by the test) and a worker's ``PeerFences`` (held replies, what the supervisor's messages do to
backends)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from memfleet.backends.peers import PeerFences
from memfleet.proxy.peer_hub import PeerHub


class FakeWorker:
    """One worker's end of its channel, read line by line with a bounded wait."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.settimeout(5)
        self.buf = b""

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\n")

    def line(self) -> str:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, "the hub closed the channel"
            self.buf += chunk
        out, self.buf = self.buf.split(b"\n", 1)
        return out.decode()

    def nothing(self) -> bool:
        self.sock.settimeout(0.2)
        try:
            return not self.buf and not self.sock.recv(4096, socket.MSG_PEEK)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(5)

    def serve(self) -> list[str]:
        """Say it is about to serve; return what came before the hub's H."""
        self.send("S")
        got = []
        while (line := self.line()) != "H":
            got.append(line)
        return got


@pytest.fixture
def hub() -> Iterator[PeerHub]:
    h = PeerHub()
    h.start()
    yield h
    h.stop()


def test_a_fence_is_confirmed_once_every_serving_worker_applied_it(hub: PeerHub) -> None:
    w0, w1 = FakeWorker(hub.new_worker(0)), FakeWorker(hub.new_worker(1))
    assert w0.serve() == [] and w1.serve() == []
    w0.send("F 10.0.0.1:11211")
    assert w0.line() == "X 1 10.0.0.1:11211"  # the fencer is told too
    assert w1.line() == "X 1 10.0.0.1:11211"
    w0.send("a 1")
    assert w0.nothing()  # not confirmed: worker 1 has not applied it yet
    w1.send("a 1")
    assert w0.line() == "f 10.0.0.1:11211"
    # A second fencer of the same backend: everyone has it out already, confirmed at once.
    w1.send("F 10.0.0.1:11211")
    assert w1.line() == "f 10.0.0.1:11211"
    w0.send("R 10.0.0.1:11211")
    assert w1.nothing()  # worker 1 still fences it
    w1.send("R 10.0.0.1:11211")
    assert w0.line() == "U 10.0.0.1:11211"
    assert w1.line() == "U 10.0.0.1:11211"
    assert hub.fenced() == {}


def test_a_starting_worker_gets_the_state_first_and_is_not_waited_for(hub: PeerHub) -> None:
    w0 = FakeWorker(hub.new_worker(0))
    w0.serve()
    w0.send("F b:1")
    assert w0.line() == "X 1 b:1"
    w0.send("a 1")
    assert w0.line() == "f b:1"
    w1 = FakeWorker(hub.new_worker(1))  # still starting: never waited for
    w0.send("F c:2")
    assert w0.line() == "X 2 c:2"
    w0.send("a 2")
    assert w0.line() == "f c:2"
    # Everything fenced so far comes before the H that lets it serve.
    assert w1.serve() == ["X 1 b:1", "X 2 c:2"]


def test_a_dead_workers_fences_stay_with_its_slot_for_its_successor(hub: PeerHub) -> None:
    w0, w1 = FakeWorker(hub.new_worker(0)), FakeWorker(hub.new_worker(1))
    w0.serve()
    w1.serve()
    w0.send("F b:1")
    w0.line()
    w1.line()
    w1.send("a 1")
    w0.send("a 1")
    assert w0.line() == "f b:1"
    w0.sock.close()  # worker 0 dies fencing b:1
    assert w1.nothing()  # no U: its keys are not repaired
    successor = FakeWorker(hub.new_worker(0))
    assert successor.serve() == ["X 1 b:1", "I b:1"]
    assert hub.fenced() == {"b:1": {0}}
    successor.send("R b:1")  # it flushed the backend
    assert w1.line() == "U b:1"


def test_a_fence_waiting_for_a_worker_that_dies_is_confirmed(hub: PeerHub) -> None:
    w0, w1 = FakeWorker(hub.new_worker(0)), FakeWorker(hub.new_worker(1))
    w0.serve()
    w1.serve()
    w0.send("F b:1")
    w0.line()
    w0.send("a 1")
    w1.sock.close()  # it will never acknowledge
    assert w0.line() == "f b:1"


class _Backend:
    def __init__(self, name: str) -> None:
        self.name = name
        self.journals = True
        self.events: list[str] = []

    def peer_fenced(self) -> None:
        self.events.append("fenced")

    def peer_released(self) -> None:
        self.events.append("released")

    def inherit_flush(self) -> None:
        self.events.append("flush")


class _Link:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, line: bytes) -> None:
        self.sent.append(line)


def test_replies_of_journaled_writes_wait_for_the_confirmation() -> None:
    async def run() -> None:
        peers = PeerFences()
        peers.link = _Link()
        got: list[tuple[object, bytes]] = []

        def answer(token: object, reply: bytes) -> None:
            got.append((token, reply))

        assert not peers.hold(answer, 1, b"STORED\r\n")  # nothing pending: answer now
        peers.fence("b:1")
        peers.fence("b:1")  # a second backend object of the same name: one message
        assert peers.link.sent == [b"F b:1\n"]
        assert peers.hold(answer, 2, b"STORED\r\n")
        assert got == []
        peers.confirmed("b:1")
        assert got == [(2, b"STORED\r\n")]
        peers.release("b:1")
        assert peers.link.sent == [b"F b:1\n"]  # the other object still holds it
        peers.release("b:1")
        assert peers.link.sent[-1] == b"R b:1\n"

    asyncio.run(run())


def test_held_replies_go_out_when_the_supervisor_does_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("memfleet.backends.peers.HOLD_LIMIT", 0.05)

    async def run() -> None:
        peers = PeerFences()
        peers.link = _Link()
        got: list[bytes] = []
        peers.fence("b:1")
        assert peers.hold(lambda _t, r: got.append(r), None, b"STORED\r\n")
        await asyncio.sleep(0.2)
        assert got == [b"STORED\r\n"] and peers.given_up == 1

    asyncio.run(run())


def test_the_supervisors_messages_reach_backends_of_that_name() -> None:
    peers = PeerFences()
    a, other = _Backend("b:1"), _Backend("c:2")
    peers.backends = lambda: [a, other]
    peers.fenced_by_peers("b:1")
    peers.released_by_peers("b:1")
    peers.inherit("b:1")
    assert a.events == ["fenced", "released", "flush"]
    assert other.events == []


def test_a_backend_is_out_of_service_while_any_worker_fences_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from memfleet.backends.backend import Backend
    from memfleet.backends.peers import PEERS
    from memfleet.config import BackendOptions

    async def run() -> None:
        link = _Link()
        monkeypatch.setattr(PEERS, "link", link)
        b = Backend("127.0.0.1", 1, BackendOptions(rejoin="repair"))
        monkeypatch.setattr(PEERS, "backends", lambda: [b])
        # Another worker's fence: out of service here, though this worker saw nothing.
        PEERS.fenced_by_peers(b.name)
        assert b.down and b.out_of_service == 1
        PEERS.released_by_peers(b.name)
        assert not b.down
        # This worker's own missed write fences it for all, once.
        b.missed_write(b"k1")
        b.missed_write(b"k2")
        assert b.down and link.sent == [b"F 127.0.0.1:1\n"]
        PEERS.confirmed(b.name)
        b.close()

    try:
        asyncio.run(run())
    finally:
        PEERS.mine.clear()
        PEERS.fenced.clear()

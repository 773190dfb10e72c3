"""The migration route's logic over scripted backends whose replies the test releases one by
one: the orders a real network only shows by chance (a write routed between a copy's read and
its write, an old owner that fails a delete)."""

from __future__ import annotations

from typing import Any

from memfleet.backends.backend import Backend, ReplyCallback
from memfleet.backends.hashing import Placement
from memfleet.backends.pool import Pool
from memfleet.config import BackendOptions
from memfleet.protocol.parse import RequestParser
from memfleet.protocol.requests import Request
from memfleet.routes.migrate import MigrationRoute
from memfleet.routes.migrate_state import DeleteJournal, MigrationCounters
from memfleet.routes.pool import PoolRoute


class Held(Backend):
    """Keeps what it is sent; the test answers each request in order."""

    def __init__(self, name: str) -> None:
        super().__init__(name, 1, BackendOptions())
        self.queue: list[tuple[bytes, ReplyCallback, Any]] = []

    def send(self, wire: bytes, cb: ReplyCallback, token: Any) -> None:
        self.queue.append((wire, cb, token))

    def sent(self) -> list[bytes]:
        return [w for w, _, _ in self.queue]

    def answer(self, reply: bytes) -> bytes:
        wire, cb, token = self.queue.pop(0)
        cb(token, reply)
        return wire


def req(data: bytes) -> Request:
    [r] = RequestParser().feed(data)
    return r


class Setup:
    """Three nodes grown to four; ``key`` moved from ``old`` to ``new``."""

    def __init__(self) -> None:
        self.nodes = [Held(f"n{i}") for i in range(4)]
        self.counters = MigrationCounters()
        self.journal = DeleteJournal(self.counters)
        self.route = MigrationRoute(
            PoolRoute(Pool("p", list(self.nodes))),
            [PoolRoute(Pool("p", self.nodes[:3]))],
            self.counters,
            self.journal,
        )
        self.key = next(
            f"k{i}".encode() for i in range(1000) if Placement(4).index(f"k{i}".encode()) == 3
        )
        self.new = self.nodes[3]
        self.old = self.nodes[Placement(3).index(self.key)]
        self.replies: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.route.send(req(data), self._reply, None)

    def _reply(self, _token: object, reply: bytes) -> None:
        self.replies.append(reply)


def test_a_read_through_copies_with_flags_and_ttl_only_where_nothing_is() -> None:
    s = Setup()
    k = s.key.decode()
    s.send(f"get {k}\r\n".encode())
    assert s.new.answer(b"END\r\n") == f"get {k}\r\n".encode()
    assert s.old.answer(f"VALUE {k} 5 2\r\nv1\r\nEND\r\n".encode()) == f"get {k}\r\n".encode()
    assert s.replies == [f"VALUE {k} 5 2\r\nv1\r\nEND\r\n".encode()]
    assert s.old.answer(b"VA 2 f5 t100\r\nv1\r\n") == f"mg {k} v f t\r\n".encode()
    assert s.new.sent() == [f"ms {k} 2 F5 T100 ME\r\nv1\r\n".encode()]
    s.new.answer(b"HD\r\n")
    assert (s.counters.fallback_hits, s.counters.keys_moved, s.counters.copies) == (1, 1, 1)


def test_a_write_routed_between_the_copys_read_and_write_wins() -> None:
    s = Setup()
    k = s.key.decode()
    s.send(f"get {k}\r\n".encode())
    s.new.answer(b"END\r\n")
    s.old.answer(f"VALUE {k} 0 2\r\nv1\r\nEND\r\n".encode())
    # The copy's read is on its way when the client deletes the key.
    s.send(f"delete {k}\r\n".encode())
    assert s.new.sent() == [f"delete {k}\r\n".encode()]
    assert s.old.sent() == [f"mg {k} v f t\r\n".encode(), f"md {k}\r\n".encode()]
    s.old.answer(b"VA 2 f0 t-1\r\nv1\r\n")
    assert s.new.sent() == [f"delete {k}\r\n".encode()]  # no copy brings the value back
    assert s.counters.copies_dropped == 1


def test_a_delete_says_deleted_when_only_the_old_owner_held_the_key() -> None:
    s = Setup()
    k = s.key.decode()
    s.send(f"delete {k}\r\n".encode())
    s.send(f"md {k} O9\r\n".encode())
    s.new.answer(b"NOT_FOUND\r\n")
    assert s.replies == []  # waits for the old owner
    s.old.answer(b"HD\r\n")
    s.new.answer(b"NF O9\r\n")
    s.old.answer(b"NF\r\n")
    assert s.replies == [b"DELETED\r\n", b"NF O9\r\n"]


def test_a_failed_old_delete_is_journaled_and_that_node_is_no_source_until_done() -> None:
    s = Setup()
    k = s.key.decode()
    s.send(f"set {k} 0 0 2\r\nv2\r\n".encode())
    s.new.answer(b"STORED\r\n")
    s.old.answer(b"SERVER_ERROR backend failure\r\n")
    assert s.journal.holds(s.old.name, s.key) and s.counters.old_delete_failures == 1
    s.send(f"get {k}\r\n".encode())
    s.new.answer(b"END\r\n")
    assert s.old.sent() == [] and s.replies[-1] == b"END\r\n"  # never read the old value
    s.journal.retry({s.old.name: s.old})
    assert s.old.answer(b"HD\r\n") == f"md {k}\r\n".encode()
    assert not s.journal.holds(s.old.name, s.key) and s.journal.size == 0


def test_later_requests_of_a_key_wait_for_its_read_through() -> None:
    s = Setup()
    k = s.key.decode()
    s.send(f"incr {k} 1\r\n".encode())
    s.send(f"set {k} 0 0 1\r\n9\r\n".encode())
    assert s.new.sent() == [] and s.counters.queued == 1  # the set waits behind the incr
    s.old.answer(b"VA 1 f0 t-1\r\n5\r\n")
    assert s.new.answer(b"HD\r\n").startswith(f"ms {k} 1".encode())
    assert s.new.sent() == [f"incr {k} 1\r\n".encode(), f"set {k} 0 0 1\r\n9\r\n".encode()]


def test_an_old_placement_with_another_seed_is_hashed_with_its_own() -> None:
    nodes = [Held(f"n{i}") for i in range(3)]
    counters = MigrationCounters()
    route = MigrationRoute(
        PoolRoute(Pool("p", list(nodes))),
        [PoolRoute(Pool("p", list(nodes), "old-seed"))],
        counters,
        DeleteJournal(counters),
    )
    keys = [f"k{i}".encode() for i in range(200)]
    moved = [k for k in keys if Placement(3).index(k) != Placement(3, "old-seed").index(k)]
    assert moved and len(moved) < len(keys)
    for k in keys:
        route.send(req(b"get " + k + b"\r\n"), lambda _t, _r: None, None)
        new = nodes[Placement(3).index(k)]
        new.answer(b"END\r\n")
        old = nodes[Placement(3, "old-seed").index(k)]
        if k in moved:
            assert old.answer(b"END\r\n") == b"get " + k + b"\r\n"  # asked the old owner
        assert all(not n.queue for n in nodes)
    assert counters.fallbacks == len(moved)

"""The write fence --workers share: another worker's write stops or undoes a fill.

Two workers are simulated in one process: the process's ``FENCE`` writes row 0 of a shared
table, a second ``WriteFence`` (the "other worker") row 1; the replicas are scripted routes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memfleet.backends.backend import Backend, ReplyCallback
from memfleet.backends.fence import FENCE, ROW_BYTES, WriteFence
from memfleet.protocol.parse import RequestParser
from memfleet.protocol.requests import Request
from memfleet.routes import AllFastest, Route

HIT = b"VALUE k 7 1\r\nv\r\nEND\r\n"


class Replica(Route):
    """Answers by command: a hit or a miss for gets, STORED for adds (held until
    ``release_adds``), DELETED for deletes."""

    def __init__(self, has_k: bool) -> None:
        self.has_k = has_k
        self.seen: list[bytes] = []
        self.adds: list[tuple[ReplyCallback, object]] = []

    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        self.seen.append(req.wire)
        if req.cmd == b"add":
            self.adds.append((cb, token))
        elif req.cmd == b"delete":
            cb(token, b"DELETED\r\n")
        else:
            cb(token, HIT if self.has_k else b"END\r\n")

    def release_adds(self) -> None:
        for cb, token in self.adds:
            cb(token, b"STORED\r\n")
        self.adds = []

    def journal_key(self, key: bytes) -> None:
        pass

    def backends(self) -> Iterator[Backend]:
        return iter(())


def get_k(route: Route) -> list[bytes]:
    got: list[bytes] = []
    [req] = RequestParser().feed(b"get k\r\n")
    route.send(req, lambda _t, r: got.append(r), None)
    return got


@pytest.fixture
def other() -> Iterator[WriteFence]:
    """The other worker's fence, sharing a table with this process's FENCE."""
    table = memoryview(bytearray(2 * ROW_BYTES)).cast("q")
    FENCE.share(table, 0, 2)
    peer = WriteFence()
    peer.share(table, 1, 2)
    try:
        yield peer
    finally:
        FENCE.shared = None


def test_a_write_in_flight_in_another_worker_stops_the_fill(other: WriteFence) -> None:
    # The other worker routed `delete k` just before this read and its replicas have not all
    # answered: this read may have overtaken it on one replica, so its hit must not be copied.
    other.bump(b"k")
    lacking, holding = Replica(has_k=False), Replica(has_k=True)
    route = AllFastest([lacking, holding], miss=True, fill_ttl=60, ack_wait=0)
    assert get_k(route) == [HIT]
    assert lacking.seen == [b"get k\r\n"]
    other.settled(b"k")  # its delete is answered: a read routed from now on may fill again
    assert get_k(route) == [HIT]
    assert lacking.seen[-1] == b"add k 7 60 1\r\nv\r\n"


def test_a_fill_stored_while_another_worker_wrote_the_key_is_deleted_again(
    other: WriteFence,
) -> None:
    lacking, holding = Replica(has_k=False), Replica(has_k=True)
    route = AllFastest([lacking, holding], miss=True, fill_ttl=60, ack_wait=0)
    assert get_k(route) == [HIT]
    assert lacking.seen[-1].startswith(b"add k ")
    # Before the add is answered, the other worker deletes k on its own connections: its
    # delete may have reached this replica first, and the add then brought k back.
    other.bump(b"k")
    other.settled(b"k")
    lacking.release_adds()
    assert lacking.seen[-1] == b"delete k\r\n"


def test_a_fill_with_no_write_anywhere_stays(other: WriteFence) -> None:
    lacking, holding = Replica(has_k=False), Replica(has_k=True)
    route = AllFastest([lacking, holding], miss=True, fill_ttl=60, ack_wait=0)
    other.bump(b"other-key")
    get_k(route)
    lacking.release_adds()
    assert lacking.seen == [b"get k\r\n", b"add k 7 60 1\r\nv\r\n"]


def test_a_successor_clears_the_writes_its_dead_predecessor_left_in_flight() -> None:
    table = memoryview(bytearray(2 * ROW_BYTES)).cast("q")
    dead = WriteFence()
    dead.share(table, 1, 2)
    dead.bump(b"k")  # never answered: the worker died
    reader = WriteFence()
    reader.share(table, 0, 2)
    before = reader.snapshot()
    assert reader.written_since(b"k", before)
    successor = WriteFence()
    successor.share(table, 1, 2)
    # A read from before the successor started may still overlap the dead worker's write...
    assert reader.written_since(b"k", before)
    # ...one routed after it does not: the slot is not fenced forever.
    assert not reader.written_since(b"k", reader.snapshot())

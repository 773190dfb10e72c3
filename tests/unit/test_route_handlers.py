"""Route handler semantics over scripted children (no network)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from memfleet.backends.backend import Backend, ReplyCallback
from memfleet.config import ConfigError, parse_config
from memfleet.protocol.parse import RequestParser
from memfleet.protocol.requests import Request
from memfleet.routes import (
    AllAsync,
    AllFastest,
    AllSync,
    Failover,
    NullRoute,
    PrefixRoute,
    Route,
    Split,
    TTLRoute,
    ZFailover,
)
from memfleet.routes.modify import capped

HIT = b"VALUE k 7 1\r\nv\r\nEND\r\n"
MISS = b"END\r\n"
FAIL = b"SERVER_ERROR backend failure\r\n"


class Scripted(Route):
    """Answers with a fixed reply, at once or when ``release()`` is called."""

    def __init__(self, reply: bytes, deferred: bool = False) -> None:
        self.reply = reply
        self.deferred = deferred
        self.seen: list[bytes] = []
        self.waiting: list[tuple[ReplyCallback, object]] = []
        self.journaled: list[bytes] = []

    def journal_key(self, key: bytes) -> None:
        self.journaled.append(key)

    def send(self, req: Request, cb: ReplyCallback, token: object) -> None:
        self.seen.append(req.wire)
        if self.deferred:
            self.waiting.append((cb, token))
        else:
            cb(token, self.reply)

    def release(self) -> None:
        for cb, token in self.waiting:
            cb(token, self.reply)
        self.waiting = []

    def backends(self) -> Iterator[Backend]:
        return iter(())


def req(data: bytes) -> Request:
    [r] = RequestParser().feed(data)
    return r


def answer(route: Route, data: bytes) -> list[bytes]:
    got: list[bytes] = []
    route.send(req(data), lambda _t, r: got.append(r), None)
    return got


def test_allfastest_first_non_error_wins() -> None:
    slow, fail, fast = Scripted(HIT, deferred=True), Scripted(FAIL), Scripted(MISS)
    assert answer(AllFastest([slow, fail, fast]), b"get k\r\n") == [MISS]
    assert answer(AllFastest([fail, fail]), b"get k\r\n") == [FAIL]


def test_allfastest_miss_waits_for_a_hit_and_fills_the_replica_that_missed() -> None:
    miss, slow_hit = Scripted(MISS), Scripted(HIT, deferred=True)
    route = AllFastest([miss, slow_hit], miss=True, fill_ttl=60)
    got = answer(route, b"get k\r\n")
    assert got == []  # the miss alone does not answer
    slow_hit.release()
    assert got == [HIT]
    assert miss.seen[-1] == b"add k 7 60 1\r\nv\r\n"  # copied back with the fill TTL
    both_miss = AllFastest([Scripted(MISS), Scripted(FAIL)], miss=True)
    assert answer(both_miss, b"get k\r\n") == [MISS]  # a miss is an answer; errors are not


def test_allsync_ack_all_waits_for_all_first_error_in_list_order_wins() -> None:
    a, b = Scripted(b"STORED\r\n", deferred=True), Scripted(b"NOT_STORED\r\n")
    got = answer(AllSync([a, b], ack="all"), b"set k 0 0 1\r\nv\r\n")
    assert got == []
    a.release()
    assert got == [b"NOT_STORED\r\n"]  # NOT_STORED is an answer, the last child's
    err1, err2 = Scripted(b"SERVER_ERROR one\r\n"), Scripted(b"SERVER_ERROR two\r\n")
    strict = AllSync([Scripted(b"STORED\r\n"), err2, err1], ack="all")
    assert answer(strict, b"delete k\r\n") == [b"SERVER_ERROR two\r\n"]
    assert err1.journaled == err2.journaled == []  # the strict policy journals nothing itself


def test_allsync_ack_available_succeeds_on_the_replicas_in_service_and_journals_the_rest() -> None:
    ok, failed = Scripted(b"STORED\r\n"), Scripted(FAIL)
    assert answer(AllSync([failed, ok]), b"set k 0 0 1\r\nv\r\n") == [b"STORED\r\n"]
    assert failed.journaled == [b"k"] and ok.journaled == []
    # Divergent answers: the first success in list order is the reply; whoever holds
    # something else is journaled. A replica that does not hold the key is not stale.
    kept, stored = Scripted(b"NOT_STORED\r\n"), Scripted(b"STORED\r\n")
    assert answer(AllSync([kept, stored]), b"add k 0 0 1\r\nv\r\n") == [b"STORED\r\n"]
    assert kept.journaled == [b"k"] and stored.journaled == []
    lacking, deleted = Scripted(b"NOT_FOUND\r\n"), Scripted(b"DELETED\r\n")
    assert answer(AllSync([lacking, deleted]), b"delete k\r\n") == [b"DELETED\r\n"]
    assert lacking.journaled == []
    five, six = Scripted(b"5\r\n"), Scripted(b"6\r\n")
    assert answer(AllSync([five, six]), b"incr k 1\r\n") == [b"5\r\n"]
    assert six.journaled == [b"k"] and five.journaled == []
    oom = Scripted(b"SERVER_ERROR out of memory storing object\r\n")
    assert answer(AllSync([oom, ok]), b"set k 0 0 1\r\nv\r\n") == [b"STORED\r\n"]
    assert oom.journaled == [b"k"]
    # Meta CAS values differ per node: not a divergence.
    c1, c2 = Scripted(b"HD c11\r\n"), Scripted(b"HD c99\r\n")
    assert answer(AllSync([c1, c2]), b"ms k 1 c\r\nv\r\n") == [b"HD c11\r\n"]
    assert c1.journaled == c2.journaled == []
    # Nobody took it: still an error (the first in list order).
    both = AllSync([Scripted(b"SERVER_ERROR one\r\n"), Scripted(FAIL)])
    assert answer(both, b"set k 0 0 1\r\nv\r\n") == [b"SERVER_ERROR one\r\n"]


def test_allsync_answers_after_ack_wait_and_journals_the_replica_that_did_not_answer() -> None:
    async def run() -> None:
        fast, hung = Scripted(b"STORED\r\n"), Scripted(b"STORED\r\n", deferred=True)
        route = AllSync([hung, fast], ack_wait=0.02)
        got = answer(route, b"set k 0 0 1\r\nv\r\n")
        assert got == []  # the other replica has its ack_wait to answer
        await asyncio.sleep(0.1)
        assert got == [b"STORED\r\n"]
        assert hung.journaled == [b"k"] and fast.journaled == []
        hung.release()  # its late reply changes nothing
        assert got == [b"STORED\r\n"]
        strict = AllSync([Scripted(b"STORED\r\n", deferred=True), fast], ack="all")
        assert answer(strict, b"set k 0 0 1\r\nv\r\n") == []
        await asyncio.sleep(0.1)
        assert strict._deadlines is None  # ack: all waits for every reply

    asyncio.run(run())


def test_allfastest_miss_waits_at_most_ack_wait() -> None:
    async def run() -> None:
        miss, hung = Scripted(MISS), Scripted(HIT, deferred=True)
        got = answer(AllFastest([miss, hung], miss=True, ack_wait=0.02), b"get k\r\n")
        assert got == []
        await asyncio.sleep(0.1)
        assert got == [MISS]
        hung.release()
        assert got == [MISS]

    asyncio.run(run())


def test_allasync_answers_at_once_and_still_writes_everywhere() -> None:
    a, b = Scripted(b"X", deferred=True), Scripted(b"Y", deferred=True)
    assert answer(AllAsync([a, b]), b"set k 0 0 1\r\nv\r\n") == [b"STORED\r\n"]
    assert answer(AllAsync([a, b]), b"ms k 1\r\nv\r\n") == [b"HD\r\n"]
    assert len(a.seen) == len(b.seen) == 2


def test_failover_on_error_and_on_miss_when_asked() -> None:
    assert answer(Failover([Scripted(FAIL), Scripted(HIT)]), b"get k\r\n") == [HIT]
    assert answer(Failover([Scripted(MISS), Scripted(HIT)]), b"get k\r\n") == [MISS]
    assert answer(Failover([Scripted(MISS), Scripted(HIT)], miss=True), b"get k\r\n") == [HIT]
    third = Scripted(HIT)
    assert answer(
        Failover([Scripted(FAIL), Scripted(FAIL), third], failover_count=2), b"get k\r\n"
    ) == [FAIL]
    assert third.seen == []
    assert answer(Failover([Scripted(MISS), Scripted(FAIL)], miss=True), b"get k\r\n") == [MISS]


def test_zfailover_local_first_then_other_zones() -> None:
    local, remote = Scripted(HIT), Scripted(HIT)
    route = ZFailover({"a": local, "b": remote}, "a", miss=True)
    assert answer(route, b"get k\r\n") == [HIT]
    assert remote.seen == []  # a local hit never leaves the zone
    local.reply = MISS
    assert answer(route, b"get k\r\n") == [HIT]
    assert len(remote.seen) == 1
    filled = ZFailover({"a": local, "b": remote}, "a", miss=True, fill_ttl=5)
    answer(filled, b"get k\r\n")
    assert local.seen[-1] == b"add k 7 5 1\r\nv\r\n"
    no_miss = ZFailover({"a": Scripted(MISS), "b": Scripted(HIT)}, "a", miss=False)
    assert answer(no_miss, b"get k\r\n") == [MISS]
    everyone_fails = ZFailover({"a": Scripted(FAIL), "b": Scripted(MISS)}, "a", miss=True)
    assert answer(everyone_fails, b"get k\r\n") == [MISS]


@pytest.mark.parametrize(
    ("given", "cap", "stored"),
    [(0, 10, 10), (5, 10, 5), (50, 10, 10), (-1, 10, -1), (2_000_000_000, 10, 10)],
)
def test_ttl_cap(given: int, cap: int, stored: int) -> None:
    assert capped(given, cap) == stored


def test_ttl_route_rewrites_text_and_meta_storage_only() -> None:
    child = Scripted(b"STORED\r\n")
    route = TTLRoute(10, child)
    answer(route, b"set k 3 0 2\r\nhi\r\n")
    answer(route, b"cas k 3 100 2 55 noreply\r\nhi\r\n")
    answer(route, b"ms k 2 T500 F3\r\nhi\r\n")
    answer(route, b"ms k 2\r\nhi\r\n")
    answer(route, b"get k\r\n")
    assert child.seen == [
        b"set k 3 10 2\r\nhi\r\n",
        b"cas k 3 10 2 55\r\nhi\r\n",
        b"ms k 2 T10 F3\r\nhi\r\n",
        b"ms k 2 T10\r\nhi\r\n",
        b"get k\r\n",
    ]


def test_split_null_prefix() -> None:
    a, b = Scripted(b"A"), Scripted(b"B", deferred=True)
    assert answer(Split(a, b), b"get k\r\n") == [b"A"]
    assert b.seen == [b"get k\r\n"]
    assert answer(NullRoute(), b"get k\r\n") == [b"END\r\n"]
    assert answer(NullRoute(), b"set k 0 0 1\r\nv\r\n") == [b"NOT_STORED\r\n"]
    sess, sess_long, other = Scripted(b"S"), Scripted(b"L"), Scripted(b"O")
    route = PrefixRoute({b"sess/": sess, b"sess/admin/": sess_long}, other)
    assert answer(route, b"get sess/1\r\n") == [b"S"]
    assert answer(route, b"get sess/admin/1\r\n") == [b"L"]
    assert answer(route, b"get user/1\r\n") == [b"O"]


def test_awaitable_route() -> None:
    assert asyncio.run(Scripted(HIT).route(req(b"get k\r\n"))) == HIT


POOLS = {"a": {"backends": ["127.0.0.1:1"]}, "b": {"backends": ["127.0.0.1:2"]}}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"routes": {"default": {"allsync": {"children": ["a", "zz"]}}}},
         "routes.default.allsync.children[1]: unknown pool or route 'zz'"),
        ({"routes": {"default": {"frobnicate": {}}}}, "unknown route handler 'frobnicate'"),
        ({"routes": {"get": "a"}}, "routes: a 'default' route is required"),
        ({"routes": {"default": "x"},
          "named_routes": {"x": "y", "y": {"failover": {"children": ["x"]}}}},
         "route cycle"),
        ({"local_zone": "c",
          "routes": {"default": {"zfailover": {"children": {"a": "a", "b": "b"}}}}},
         "local_zone: 'c' is not a zone"),
        ({"routes": {"default": {"ttl": {"ttl": 0, "child": "a"}}}}, "ttl.ttl: must be a positive"),
        ({"routes": {"default": {"allfastest": {"children": ["a"], "mis": True}}}},
         "allfastest.mis: unknown option"),
        ({"routes": {"default": {"failover": {"children": "a"}}}},
         "failover.children: must be a list"),
        ({"routes": {"default": {"allsync": {"children": []}}}}, "needs at least one child"),
        ({"routes": {"default": {"ttl": {"child": "a"}}}}, "ttl.ttl: is required"),
    ],
)  # fmt: skip
def test_route_config_mistakes_are_one_line(extra: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({"pools": POOLS, **extra}, "proxy.yaml")
    assert message in str(exc.value)
    assert str(exc.value).startswith("proxy.yaml: ")
    assert "\n" not in str(exc.value)


def test_a_fill_is_dropped_when_the_key_was_written_after_the_read() -> None:
    from memfleet.backends.fence import FENCE

    miss, slow_hit = Scripted(MISS), Scripted(HIT, deferred=True)
    route = AllFastest([miss, slow_hit], miss=True, fill_ttl=60)
    got = answer(route, b"get k\r\n")
    FENCE.bump(b"k")  # e.g. a pipelined delete k, routed before the hit came back
    slow_hit.release()
    assert got == [HIT]
    assert miss.seen == [b"get k\r\n"]  # no add: it would bring the deleted value back
    answer(route, b"get k\r\n")
    slow_hit.release()
    assert miss.seen[-1] == b"add k 7 60 1\r\nv\r\n"  # with no write since, it is filled
    local, remote = Scripted(MISS), Scripted(HIT, deferred=True)
    zone = ZFailover({"a": local, "b": remote}, "a", miss=True, fill_ttl=5)
    answer(zone, b"get k\r\n")
    FENCE.bump(b"k")
    remote.release()
    assert local.seen == [b"get k\r\n"]

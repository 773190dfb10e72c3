"""Route logic over fake backends (no network): which backend gets which request."""

from __future__ import annotations

import asyncio
from typing import Any

from memfleet.backends.backend import Backend, ReplyCallback
from memfleet.backends.hashing import Placement
from memfleet.backends.pool import Pool
from memfleet.config import BackendOptions, ProxyConfig
from memfleet.protocol.parse import RequestParser
from memfleet.routes import CommandRoute, PoolRoute, build_routes
from memfleet.routes.builder import build_pools


class FakeBackend(Backend):
    """Records what it is sent and answers with its own name."""

    def __init__(self, name: str) -> None:
        super().__init__(name, 1, BackendOptions())
        self.seen: list[bytes] = []

    def send(self, wire: bytes, cb: ReplyCallback, token: Any) -> None:
        self.seen.append(wire)
        cb(token, self.host.encode())


def req(data: bytes) -> Any:
    [r] = RequestParser().feed(data)
    return r


def test_pool_route_follows_placement() -> None:
    backends = [FakeBackend(f"b{i}") for i in range(5)]
    route = PoolRoute(Pool("main", list(backends), "replica_0"))
    placement = Placement(5, "replica_0")
    for i in range(100):
        key = f"key_{i}".encode()
        reply = asyncio.run(route.route(req(b"get " + key + b"\r\n")))
        assert reply == f"b{placement.index(key)}".encode()
    assert sum(len(b.seen) for b in backends) == 100
    assert all(b.seen for b in backends)


def test_command_route_and_backends() -> None:
    a, b = FakeBackend("a"), FakeBackend("b")
    route = CommandRoute({b"get": PoolRoute(Pool("x", [a]))}, PoolRoute(Pool("y", [b])))
    assert asyncio.run(route.route(req(b"get k\r\n"))) == b"a"
    assert asyncio.run(route.route(req(b"set k 0 0 1\r\nv\r\n"))) == b"b"
    assert [x.host for x in route.backends()] == ["b", "a"]


def test_builder_shares_backends_and_reuses_them() -> None:
    cfg = ProxyConfig.model_validate(
        {
            "pools": {
                "p1": {"backends": ["127.0.0.1:1", "127.0.0.1:2"]},
                "p2": {"backends": ["127.0.0.1:2"]},
                "p3": {"backends": ["127.0.0.1:2"], "read_timeout": 5},
            },
            "routes": {"default": "p1", "get": "p2"},
        }
    )
    pools = build_pools(cfg)
    assert pools["p1"].backends[1] is pools["p2"].backends[0]
    assert pools["p3"].backends[0] is not pools["p2"].backends[0]  # other options
    again = build_pools(cfg, {b.key(): b for p in pools.values() for b in p.backends})
    assert again["p1"].backends[0] is pools["p1"].backends[0]
    root = build_routes(cfg, pools)
    assert isinstance(root, CommandRoute)


def test_allfastest_over_aligned_replicas_hashes_once_and_reuses_its_state() -> None:
    from memfleet.routes.fanout import AllFastest

    replicas = [[FakeBackend(f"r{r}s{s}") for s in range(3)] for r in range(2)]
    pools = [PoolRoute(Pool(f"replica_{r}", list(bs))) for r, bs in enumerate(replicas)]
    route = AllFastest(list(pools), miss=True)
    assert route._aligned is not None  # same size, same (default) seed
    placement = Placement(3)
    got: list[bytes] = []
    for i in range(60):
        key = f"k{i}".encode()
        route.send_get(key, b"get " + key + b"\r\n", lambda _t, r: got.append(r), None)
        shard = placement.index(key)
        # Both replicas' backends at the key's index saw it, and the first answer won.
        assert replicas[0][shard].seen[-1] == replicas[1][shard].seen[-1] == b"get %s\r\n" % key
        assert got[-1] == f"r0s{shard}".encode()
    assert len(got) == 60
    # Every reply arrived synchronously, so one state served all 60 gets.
    assert len(route._free) == 1


def test_allfastest_over_differently_seeded_pools_places_each_by_its_own_seed() -> None:
    from memfleet.routes.fanout import AllFastest

    a = [FakeBackend(f"a{s}") for s in range(3)]
    b = [FakeBackend(f"b{s}") for s in range(3)]
    route = AllFastest([PoolRoute(Pool("x", a, "seed_a")), PoolRoute(Pool("y", b, "seed_b"))])
    assert route._aligned is None
    for i in range(60):
        key = f"k{i}".encode()
        route.send_get(key, b"get " + key + b"\r\n", lambda _t, _r: None, None)
        assert a[Placement(3, "seed_a").index(key)].seen[-1] == b"get %s\r\n" % key
        assert b[Placement(3, "seed_b").index(key)].seen[-1] == b"get %s\r\n" % key


class HeldBackend(Backend):
    """Keeps each request's callback until the test answers it, in any order."""

    def __init__(self, name: str) -> None:
        super().__init__(name, 1, BackendOptions())
        self.held: list[tuple[bytes, ReplyCallback, Any]] = []

    def send(self, wire: bytes, cb: ReplyCallback, token: Any) -> None:
        self.held.append((wire, cb, token))


def test_allsync_ack_all_over_aligned_replicas_answers_each_request_once_with_its_replies() -> None:
    from memfleet.routes.allsync import AllSync

    replicas = [[HeldBackend(f"r{r}s{s}") for s in range(3)] for r in range(2)]
    pools = [PoolRoute(Pool(f"replica_{r}", list(bs))) for r, bs in enumerate(replicas)]
    route = AllSync(list(pools), ack="all")
    assert route._aligned is not None
    placement = Placement(3)
    got: dict[int, list[bytes]] = {}
    request_of: dict[bytes, int] = {}
    for i in range(30):
        key = f"k{i}".encode()
        wire = b"set %s 0 0 1\r\nv\r\n" % key
        request_of[wire] = i
        route.send(req(wire), lambda t, r: got.setdefault(t, []).append(r), i)
        shard = placement.index(key)
        assert replicas[0][shard].held[-1][0] == replicas[1][shard].held[-1][0] == wire
    assert not got  # nothing is answered before every replica has
    # Replica 1 answers everything first; then replica 0, in reverse order, failing the
    # requests whose number is a multiple of 3.
    for backend in replicas[1]:
        for _wire, cb, token in backend.held:
            cb(token, b"STORED\r\n")
    assert not got
    for wire, cb, token in reversed([h for b in replicas[0] for h in b.held]):
        cb(token, b"SERVER_ERROR boom\r\n" if request_of[wire] % 3 == 0 else b"NS\r\n")
    assert sorted(got) == list(range(30))
    for i, replies in got.items():
        # The first error in child order wins; otherwise the last child's reply.
        assert replies == [b"SERVER_ERROR boom\r\n" if i % 3 == 0 else b"STORED\r\n"], i
    # Every state came back for reuse; a reused one answers only its new request.
    assert len(route._free) == 30
    late: list[bytes] = []
    route.send(req(b"set z 0 0 1\r\nv\r\n"), lambda _t, r: late.append(r), None)
    assert len(route._free) == 29
    shard = placement.index(b"z")
    for backend in (replicas[0][shard], replicas[1][shard]):
        _wire, cb, token = backend.held[-1]
        cb(token, b"STORED\r\n")
    assert late == [b"STORED\r\n"]
    assert all(len(r) == 1 for r in got.values())

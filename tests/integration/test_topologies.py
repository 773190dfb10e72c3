"""Each topology preset on real memcached nodes keeps its promise (DESIGN.md, Topologies)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from pymemcache.client.base import Client
from tests.helpers import Conn, Memcached, ProxyProcess, wait_until

from memfleet.backends.hashing import Placement
from memfleet.topology.presets import Topology

pytestmark = pytest.mark.integration

FAST = {"read_timeout": 0.5, "connect_timeout": 0.5, "failure_limit": 2, "retry_timeout": 0.3}
FAILURE = b"SERVER_ERROR backend failure\r\n"


@dataclass
class Fleet:
    topo: Topology
    nodes: dict[str, Memcached]
    proxy: ProxyProcess

    def client(self) -> Client:
        return Client(("127.0.0.1", self.proxy.port), timeout=10, connect_timeout=5)

    def direct(self, name: str) -> Client:
        return Client(("127.0.0.1", self.nodes[name].port), timeout=5, connect_timeout=5)

    def node_items(self, name: str) -> int:
        c = self.direct(name)
        try:
            return int(c.stats()[b"curr_items"])
        finally:
            c.close()


FleetFactory = Callable[..., Fleet]


@pytest.fixture
def fleet(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> FleetFactory:
    def make(topo: Topology, **pool_options: object) -> Fleet:
        nodes = {n.name: memcached_factory() for n in topo.nodes()}
        cfg = topo.proxy_config(
            lambda n: nodes[n.name].address, pool_options={**FAST, **pool_options}
        )
        return Fleet(topo, nodes, proxy_factory(cfg))

    return make


def test_sharded_spreads_keys_by_the_hash_rule(fleet: FleetFactory) -> None:
    f = fleet(Topology("sharded", shards=3))
    c = f.client()
    keys = [f"s:{i}" for i in range(3000)]
    c.set_many({k: b"x" * 100 for k in keys}, noreply=False)
    placement = Placement(3)
    want = [sum(placement.index(k.encode()) == s for k in keys) for s in range(3)]
    got = [f.node_items(f"memcached-{s}") for s in range(3)]
    assert got == want  # each node holds exactly its share: memory is pooled
    assert sum(got) == len(keys)
    assert c.get_many(keys[:500]) == {k: b"x" * 100 for k in keys[:500]}
    c.close()


def test_replicated_every_node_every_key_and_a_killed_node_loses_nothing(
    fleet: FleetFactory,
) -> None:
    f = fleet(Topology("replicated", replicas=3))
    c = f.client()
    keys = [f"r:{i}" for i in range(500)]
    c.set_many({k: k.encode() for k in keys}, noreply=False)
    for name in f.nodes:
        assert f.node_items(name) == len(keys)
    f.nodes["memcached-1"].kill()
    errors = 0
    for k in keys:
        try:
            assert c.get(k) == k.encode()
        except AssertionError:
            raise
        except Exception:
            errors += 1
    assert errors == 0
    assert c.get_many(keys) == {k: k.encode() for k in keys}
    c.close()


def test_replicated_sharded_aligned_and_a_node_group_loss(fleet: FleetFactory) -> None:
    topo = Topology("replicated-sharded", shards=3, replicas=2, placement="aligned")
    f = fleet(topo)
    c = f.client()
    keys = [f"rs:{i}" for i in range(1500)]
    c.set_many({k: b"v" for k in keys}, noreply=False)
    placement = Placement(3)  # aligned: one seed for every replica pool
    for k in keys[:300]:
        s = placement.index(k.encode())
        for r in range(2):
            d = f.direct(f"memcached-{r}-{s}")
            assert d.get(k) == b"v", (k, r, s)
            d.close()
    # One "node group": a node of each replica, different shards (like one Kubernetes node
    # holding memcached-0-0 and memcached-1-1). Aligned placement keeps every key alive.
    f.nodes["memcached-0-0"].kill()
    f.nodes["memcached-1-1"].kill()
    assert c.get_many(keys) == {k: b"v" for k in keys}
    c.close()


def test_replicated_sharded_independent_seeds_differ(fleet: FleetFactory) -> None:
    topo = Topology("replicated-sharded", shards=3, replicas=2, placement="independent")
    f = fleet(topo)
    c = f.client()
    keys = [f"ind:{i}" for i in range(300)]
    c.set_many({k: b"v" for k in keys}, noreply=False)
    p0, p1 = Placement(3, "replica_0"), Placement(3, "replica_1")
    differ = [k for k in keys if p0.index(k.encode()) != p1.index(k.encode())]
    assert differ
    for k in differ[:20]:
        for r, p in ((0, p0), (1, p1)):
            d = f.direct(f"memcached-{r}-{p.index(k.encode())}")
            assert d.get(k) == b"v"
            d.close()
    c.close()


def test_sigstop_one_replica_reads_keep_answering(fleet: FleetFactory) -> None:
    f = fleet(Topology("replicated", replicas=2))
    conn = Conn(f.proxy.port)
    for i in range(20):
        assert conn.request(f"set h{i} 0 0 1\r\nv\r\n".encode()) == b"STORED\r\n"
    f.nodes["memcached-0"].stop_signal()
    try:
        for i in range(20):
            assert (
                conn.request(f"get h{i}\r\n".encode()) == f"VALUE h{i} 0 1\r\nv\r\nEND\r\n".encode()
            )
    finally:
        f.nodes["memcached-0"].cont_signal()
    conn.close()


def test_local_failover(fleet: FleetFactory) -> None:
    topo = Topology("local-failover", shards=2, local_ttl_max=2)
    f = fleet(topo)
    conn = Conn(f.proxy.port)
    local = Conn(f.nodes["memcached-local"].port)
    placement = Placement(2)
    shard = placement.index(b"lf")
    cluster = Conn(f.nodes[f"memcached-{shard}"].port)

    # Writes reach both tiers, the local one with a TTL of at most local_ttl_max.
    assert conn.request(b"set lf 0 0 1\r\na\r\n") == b"STORED\r\n"
    assert local.request(b"mg lf v t\r\n").startswith(b"VA 1 t")
    ttl = int(local.request(b"mg lf t\r\n").split(b" t")[1].split()[0])
    assert 0 < ttl <= 2
    assert cluster.request(b"get lf\r\n") == b"VALUE lf 0 1\r\na\r\nEND\r\n"

    # Reads hit the local node first: a value only the local node has is what we read.
    # (Written directly, so with the TTL the proxy would have given it.)
    assert local.request(b"set lf 0 2 1\r\nL\r\n") == b"STORED\r\n"
    assert conn.request(b"get lf\r\n") == b"VALUE lf 0 1\r\nL\r\nEND\r\n"

    # Bounded staleness: another writer changes the cluster; the local copy is stale for at
    # most local_ttl_max, then the read is served (and refilled) from the cluster.
    assert cluster.request(b"set lf 0 0 1\r\nC\r\n") == b"STORED\r\n"
    fresh = b"VALUE lf 0 1\r\nC\r\nEND\r\n"
    assert wait_until(lambda: conn.request(b"get lf\r\n") == fresh, seconds=10)

    # A local miss is served by the cluster and copied into the local tier.
    owner = Conn(f.nodes[f"memcached-{placement.index(b'oc')}"].port)
    assert owner.request(b"set oc 0 0 1\r\nz\r\n") == b"STORED\r\n"
    owner.close()
    assert conn.request(b"get oc\r\n") == b"VALUE oc 0 1\r\nz\r\nEND\r\n"
    assert wait_until(lambda: local.request(b"get oc\r\n") == b"VALUE oc 0 1\r\nz\r\nEND\r\n")
    for c in (conn, local, cluster):
        c.close()


def test_gutter_takes_over_with_capped_ttl_and_hands_back(fleet: FleetFactory) -> None:
    topo = Topology("gutter", shards=2, gutter_ttl=30)
    f = fleet(topo)
    conn = Conn(f.proxy.port)
    gutter = Conn(f.nodes["memcached-gutter-0"].port)
    placement = Placement(2)
    key = next(f"g{i}" for i in range(100) if placement.index(f"g{i}".encode()) == 1)
    kb = key.encode()
    assert conn.request(b"set %s 0 0 4\r\nmain\r\n" % kb) == b"STORED\r\n"
    assert gutter.request(b"get %s\r\n" % kb) == b"END\r\n"

    f.nodes["memcached-1"].kill()
    assert conn.request(b"set %s 0 0 6\r\ngutter\r\n" % kb) == b"STORED\r\n"
    assert conn.request(b"get %s\r\n" % kb) == b"VALUE %s 0 6\r\ngutter\r\nEND\r\n" % kb
    ttl = int(gutter.request(b"mg %s t\r\n" % kb).split(b" t")[1].split()[0])
    assert 0 < ttl <= 30  # stored forever by the client, capped by the gutter route

    f.nodes["memcached-1"].start()
    back = b"VALUE %s 0 4\r\nmain\r\nEND\r\n" % kb
    up = f"STAT {f.nodes['memcached-1'].address}:state up".encode()
    assert wait_until(lambda: up in conn.request(b"stats backends\r\n"))
    # The restarted node is empty; now that it is back, writes land on it and reads use it.
    assert conn.request(b"set %s 0 0 4\r\nmain\r\n" % kb) == b"STORED\r\n"
    assert conn.request(b"get %s\r\n" % kb) == back
    main_node = Conn(f.nodes["memcached-1"].port)
    assert main_node.request(b"get %s\r\n" % kb) == back
    conn.close()
    gutter.close()
    main_node.close()


@pytest.mark.parametrize(
    "name", ["sharded", "replicated", "local-failover", "replicated-sharded", "gutter"]
)
def test_multiget_quiet_and_noreply_through_every_preset(fleet: FleetFactory, name: str) -> None:
    f = fleet(Topology(name, shards=2, replicas=2))
    conn = Conn(f.proxy.port)
    keys = [f"q{i}" for i in range(12)]
    noreply_sets = b"".join(f"set {k} 0 0 2 noreply\r\n{k[-2:]:>2}\r\n".encode() for k in keys)
    quiet_ms = b"ms extra 3 q\r\nabc\r\n"
    assert conn.request(noreply_sets + quiet_ms) == b""
    multi = conn.request(("get nope " + " ".join(keys) + " extra\r\n").encode())
    want = b"".join(f"VALUE {k} 0 2\r\n{k[-2:]:>2}\r\nEND\r\n".encode()[:-5] for k in keys)
    assert multi == want + b"VALUE extra 0 3\r\nabc\r\nEND\r\n"
    # Quiet gets: misses vanish, hits stay, in order; noreply deletes leave no trace.
    quiet = conn.request(b"mg nope v q\r\nmg q1 v q k\r\nmg nope2 v q\r\ndelete q2 noreply\r\n")
    assert quiet == b"VA 2 kq1\r\nq1\r\n"
    assert conn.request(b"get q2\r\n") == b"END\r\n"
    conn.close()

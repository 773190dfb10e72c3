"""pymemcache through the proxy over 3 real backends; every key sits where the rule says."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pymemcache.client.base import Client
from tests.helpers import Memcached, ProxyProcess, pool_config

from memfleet.backends.hashing import Placement

pytestmark = pytest.mark.integration


def test_pymemcache_operations_and_placement(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> None:
    nodes = [memcached_factory() for _ in range(3)]
    proxy = proxy_factory(pool_config(*(n.address for n in nodes)))
    client = Client(("127.0.0.1", proxy.port), timeout=5, connect_timeout=5)
    direct = [Client(("127.0.0.1", n.port), timeout=5) for n in nodes]
    placement = Placement(3)

    keys = [f"user:{i}" for i in range(300)]
    for k in keys:
        assert client.set(k, k.upper().encode(), noreply=False)
    assert client.get_many(keys) == {k: k.upper().encode() for k in keys}

    for k in keys:
        owner = placement.index(k.encode())
        for i, d in enumerate(direct):
            held = d.get(k)
            assert (held is not None) == (i == owner), (k, i, owner)
    counts = [sum(placement.index(k.encode()) == i for k in keys) for i in range(3)]
    assert min(counts) > 50  # the keys really are spread over all three nodes

    assert client.incr("counter", 1) is None
    client.set("counter", b"41")
    assert client.incr("counter", 1) == 42
    assert client.decr("counter", 2) == 40

    value, cas = client.gets("user:1")
    assert value == b"USER:1"
    assert client.cas("user:1", b"new", cas) is True
    assert client.cas("user:1", b"newer", cas) is False
    assert client.get("user:1") == b"new"

    assert client.touch("user:2", 100, noreply=False) is True
    assert client.touch("missing", 100, noreply=False) is False
    assert client.delete("user:3", noreply=False) is True
    assert client.delete("user:3", noreply=False) is False
    assert client.get("user:3") is None

    # noreply writes (pymemcache's default) are applied and do not disturb later replies.
    for i in range(100):
        client.set(f"nr:{i}", b"x")
    assert len(client.get_many([f"nr:{i}" for i in range(100)])) == 100

    client.flush_all(noreply=False)
    assert all(d.get("user:4") is None for d in direct)
    client.close()
    for d in direct:
        d.close()


def test_seeded_pool_places_like_the_official_proxy(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> None:
    nodes = [memcached_factory() for _ in range(4)]
    proxy = proxy_factory(pool_config(*(n.address for n in nodes), seed="replica_1"))
    client = Client(("127.0.0.1", proxy.port), timeout=5)
    placement = Placement(4, "replica_1")
    unseeded = Placement(4)
    keys = [f"k{i}" for i in range(200)]
    for k in keys:
        client.set(k, b"v", noreply=False)
    differs = 0
    for k in keys:
        owner = placement.index(k.encode())
        differs += owner != unseeded.index(k.encode())
        d = Client(("127.0.0.1", nodes[owner].port), timeout=5)
        assert d.get(k) == b"v"
        d.close()
    assert differs > 0  # the seed changes placement, so this test can tell them apart
    client.close()

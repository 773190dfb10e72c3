"""Fills never undo a later write: ``get k`` pipelined with ``delete k`` (or ``set k``) while one
replica lacks ``k``, 1,000 rounds against real memcached. The hit from the other replica is
copied back (``fill_ttl``) only when no write of ``k`` was routed after the get."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess

pytestmark = pytest.mark.integration

ROUNDS = 1_000


def _proxy(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> tuple[Memcached, Memcached, ProxyProcess]:
    a, b = memcached_factory(), memcached_factory()
    replicas = ["replica_0", "replica_1"]
    cfg = {
        "pools": {"replica_0": {"backends": [a.address]}, "replica_1": {"backends": [b.address]}},
        "routes": {
            "get": {"allfastest": {"children": replicas, "miss": True, "fill_ttl": 300}},
            "default": {"allsync": {"children": replicas}},
        },
    }
    return a, b, proxy_factory(cfg)


def _value(key: bytes, value: bytes) -> bytes:
    return b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (key, len(value), value)


def test_pipelined_get_and_delete_never_resurrects_the_key(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    _a, b, proxy = _proxy(memcached_factory, proxy_factory)
    conn, lagging = Conn(proxy.port), Conn(b.port)
    resurrected = 0
    for i in range(ROUNDS):
        key, value = b"fence:%d" % (i % 50), b"v%d" % i
        assert conn.request(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value)) == b"STORED\r\n"
        lagging.request(b"delete %s\r\n" % key)  # this replica lacks the key (evicted)
        got = conn.request(b"get %s\r\ndelete %s\r\n" % (key, key))
        assert got == _value(key, value) + b"DELETED\r\n"  # a replica that lacks it agrees
        after = conn.request(b"get %s\r\n" % key)
        if after != b"END\r\n" or lagging.request(b"get %s\r\n" % key) != b"END\r\n":
            resurrected += 1
    assert resurrected == 0
    conn.close()
    lagging.close()


def test_pipelined_get_and_set_never_rolls_back(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    _a, b, proxy = _proxy(memcached_factory, proxy_factory)
    conn, lagging = Conn(proxy.port), Conn(b.port)
    older = 0
    for i in range(ROUNDS):
        key, old, new = b"fence:%d" % (i % 50), b"old%d" % i, b"new%d" % i
        assert conn.request(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(old), old)) == b"STORED\r\n"
        lagging.request(b"delete %s\r\n" % key)
        got = conn.request(
            b"get %s\r\nset %s 0 0 %d\r\n%s\r\n" % (key, key, len(new), new)
            + b"get %s\r\ntouch %s 100\r\n" % (key, key)
        )
        assert got.startswith(_value(key, old) + b"STORED\r\n"), got
        for reader in (conn, lagging, conn):
            if reader.request(b"get %s\r\n" % key) != _value(key, new):
                older += 1
    assert older == 0
    conn.close()
    lagging.close()

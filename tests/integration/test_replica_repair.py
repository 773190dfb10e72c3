"""Replicated writes with a replica out: no client error, no stale read, and the replica
repaired (copied, not just invalidated) before it serves again, after anything it still had
in its socket. Real memcached, SIGSTOP as the outage."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess, wait_until

pytestmark = pytest.mark.integration

FAST = {"read_timeout": 0.5, "connect_timeout": 0.5, "failure_limit": 2, "retry_timeout": 0.3}
FAILURE = b"SERVER_ERROR backend failure\r\n"


def _two_replicas(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
    get: dict[str, object] | None = None,
    default: dict[str, object] | None = None,
    **pool: object,
) -> tuple[Memcached, Memcached, ProxyProcess]:
    a, b = memcached_factory(), memcached_factory()
    kids = ["replica_0", "replica_1"]
    cfg = {
        "pools": {
            "replica_0": {"backends": [a.address], **FAST, **pool},
            "replica_1": {"backends": [b.address], **FAST, **pool},
        },
        "routes": {
            "get": {"allfastest": {"children": kids, **(get or {"miss": True})}},
            "default": {"allsync": {"children": kids, **(default or {})}},
        },
    }
    return a, b, proxy_factory(cfg)


def _state(conn: Conn, node: Memcached) -> bytes:
    stats = conn.request(b"stats backends\r\n")
    line = [
        x for x in stats.split(b"\r\n") if x.startswith(b"STAT %s:state " % node.address.encode())
    ]
    return line[0].rsplit(b" ", 1)[1] if line else b""


def _ttl(mg_reply: bytes) -> int:
    line = mg_reply.split(b"\r\n", 1)[0]
    return int(next(t for t in line.split(b" ") if t.startswith(b"t"))[1:])


def _stat(conn: Conn, node: Memcached, name: str) -> int:
    stats = conn.request(b"stats backends\r\n")
    prefix = f"STAT {node.address}:{name} ".encode()
    return int(next(x for x in stats.split(b"\r\n") if x.startswith(prefix)).split()[-1])


def test_writes_succeed_with_a_replica_down_and_fail_with_ack_all(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    a, _b, proxy = _two_replicas(memcached_factory, proxy_factory)
    conn = Conn(proxy.port)
    a.kill()
    for i in range(50):
        assert conn.request(b"set w%d 0 0 1\r\nv\r\n" % i) == b"STORED\r\n"
        assert conn.request(b"get w%d\r\n" % i) == b"VALUE w%d 0 1\r\nv\r\nEND\r\n" % i
    conn.close()
    a2, _b2, strict = _two_replicas(memcached_factory, proxy_factory, default={"ack": "all"})
    conn = Conn(strict.port)
    a2.kill()
    assert conn.request(b"set w 0 0 1\r\nv\r\n") == FAILURE  # the strict policy keeps it
    conn.close()


def test_a_returning_replica_is_repaired_with_flags_and_ttl(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    a, b, proxy = _two_replicas(memcached_factory, proxy_factory)
    conn = Conn(proxy.port)
    keys = [b"rp%d" % i for i in range(60)]
    for k in keys:
        assert conn.request(b"set %s 5 0 3\r\nold\r\n" % k) == b"STORED\r\n"
    changed, deleted, untouched = keys[:20], keys[20:40], keys[40:]
    a.stop_signal()
    assert conn.request(b"set %s 0 0 3\r\nnew\r\n" % changed[0]) == b"STORED\r\n"  # ack_wait
    assert wait_until(lambda: _state(conn, a) == b"down")
    far = int(time.time()) + 40 * 24 * 3600  # over 30 days: an absolute time
    for i, k in enumerate(changed):
        ttl = (0, 1000, far)[i % 3]
        assert conn.request(b"set %s 7 %d 3\r\nnew\r\n" % (k, ttl)) == b"STORED\r\n"
    for k in deleted:
        assert conn.request(b"delete %s\r\n" % k) == b"DELETED\r\n"
    for k in changed:
        assert conn.request(b"get %s\r\n" % k) == b"VALUE %s 7 3\r\nnew\r\nEND\r\n" % k
    a.cont_signal()
    assert wait_until(lambda: _state(conn, a) == b"up")
    direct, healthy = Conn(a.port), Conn(b.port)
    for i, k in enumerate(changed):
        got = direct.request(b"mg %s v f t\r\n" % k)
        want = healthy.request(b"mg %s v f t\r\n" % k)
        assert got.startswith(b"VA 3 f7 ") and got.endswith(b"\r\nnew\r\n"), got
        ttl, want_ttl = _ttl(got), _ttl(want)
        if i % 3 == 0:
            assert ttl == want_ttl == -1, (k, got)  # no expiry stays no expiry
        else:
            assert want_ttl > 900 and abs(ttl - want_ttl) <= 2, (k, got, want)
    for k in deleted:
        assert direct.request(b"get %s\r\n" % k) == b"END\r\n"
    for k in untouched:  # warm data kept
        assert direct.request(b"get %s\r\n" % k) == b"VALUE %s 5 3\r\nold\r\nEND\r\n" % k
    assert _stat(conn, a, "repaired") == len(changed)
    assert _stat(conn, a, "invalidated") == len(deleted)
    assert _stat(conn, a, "journaled") == 0
    for c in (conn, direct, healthy):
        c.close()


def test_the_repair_lands_after_what_the_hung_node_still_had_in_its_socket(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    # A probe is in flight when the node resumes (long read timeout, short retry), so the
    # repair starts at once, while memcached still works through the old socket.
    a, _b, proxy = _two_replicas(
        memcached_factory, proxy_factory, read_timeout=2.0, retry_timeout=0.1
    )
    conn = Conn(proxy.port)
    keys = [b"s%d" % i for i in range(400)]
    a.stop_signal()
    # Sent while replica 0 hangs, so they sit in its socket and are applied when it resumes:
    # thousands of reads first, so that memcached is still working through them when the
    # repair arrives on a new connection, then writes of the keys the repair will copy.
    conn.send(b"get f\r\n" * 5000 + b"".join(b"set %s 0 0 1\r\nb\r\n" % k for k in keys))
    conn.request(b"", timeout=10)
    assert wait_until(lambda: _state(conn, a) == b"down")
    for k in keys:
        conn.send(b"set %s 0 0 5\r\nnewer\r\n" % k)
    conn.request(b"")
    time.sleep(2.5)  # the hung connection times out (read_timeout) and is cut
    a.cont_signal()
    assert wait_until(lambda: _state(conn, a) == b"up", 15)
    direct = Conn(a.port)
    older = [
        k
        for k in keys
        if direct.request(b"get %s\r\n" % k) != b"VALUE %s 0 5\r\nnewer\r\nEND\r\n" % k
    ]
    assert older == []
    direct.close()
    conn.close()


def test_the_seed_config_serves_no_stale_read_and_keeps_its_hit_rate(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    # The reference design's set_all config: two one-node pools, reads from the fastest
    # (a miss is an answer), writes everywhere, and no rejoin option at all.
    a, _b, proxy = _two_replicas(memcached_factory, proxy_factory, get={"miss": False})
    conn = Conn(proxy.port)
    keys = [b"seed%d" % i for i in range(300)]
    for k in keys:
        assert conn.request(b"set %s 0 0 3\r\nold\r\n" % k) == b"STORED\r\n"
    changed, deleted, warm = keys[:100], keys[100:200], keys[200:]
    a.stop_signal()
    for k in changed:
        assert conn.request(b"set %s 0 0 3\r\nnew\r\n" % k) == b"STORED\r\n"
    for k in deleted:
        assert conn.request(b"delete %s\r\n" % k) == b"DELETED\r\n"
    a.cont_signal()
    stale = misses = errors = reads = 0
    stop = time.monotonic() + 3.0
    while time.monotonic() < stop and reads < 30_000:
        for k in keys[::7]:
            got = conn.request(b"get %s\r\n" % k)
            reads += 1
            if got.startswith(b"SERVER_ERROR"):
                errors += 1
            elif k in deleted:
                stale += got != b"END\r\n"
            elif k in changed:
                stale += b"old" in got
                misses += got == b"END\r\n"
            else:
                misses += got == b"END\r\n"
    assert (stale, misses, errors) == (0, 0, 0)
    assert reads > 500
    direct = Conn(a.port)
    for k in warm:
        assert direct.request(b"get %s\r\n" % k) == b"VALUE %s 0 3\r\nold\r\nEND\r\n" % k
    direct.close()
    conn.close()

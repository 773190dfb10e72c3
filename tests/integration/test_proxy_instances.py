"""Two proxy instances over the same nodes (what a DaemonSet runs): they share no journal, so
a replica one of them journaled writes for must not be served by the other before it is
repaired. The rejoin mark (a counter on the healthy replica) makes the other wait. Real
memcached; the replica comes back warm, so an unrepaired one answers the old value."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess, read_values, wait_until
from tests.integration.test_worker_fences import Restartable

pytestmark = pytest.mark.integration

KEYS = [b"pi%d" % i for i in range(40)]
FAST = {"read_timeout": 0.5, "connect_timeout": 0.5, "failure_limit": 2}


def _config(a: str, b: str, retry: float) -> dict[str, object]:
    kids = ["replica_0", "replica_1"]
    return {
        "pools": {
            "replica_0": {"backends": [a], **FAST, "retry_timeout": retry},
            "replica_1": {"backends": [b], **FAST, "retry_timeout": retry},
        },
        "routes": {
            "get": {"allfastest": {"children": kids, "miss": True}},
            "default": {"allsync": {"children": kids}},
        },
    }


def test_a_proxy_does_not_serve_a_replica_another_proxy_still_repairs(
    tmp_path: Path,
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    a = Restartable(tmp_path / "a.mem")
    b = memcached_factory()
    try:
        # The writer's proxy probes slowly: it repairs the replica seconds after the reader's
        # proxy has seen it answer again.
        writer_proxy = proxy_factory(_config(a.address, b.address, retry=2.0))
        reader_proxy = proxy_factory(_config(a.address, b.address, retry=0.2))
        writer, reader = Conn(writer_proxy.port), Conn(reader_proxy.port)
        for k in KEYS:
            assert writer.request(b"set %s 0 0 3\r\nold\r\n" % k) == b"STORED\r\n"
        assert read_values(reader, KEYS) == [b"old"] * len(KEYS)
        a.graceful_stop()
        assert read_values(reader, KEYS) == [b"old"] * len(KEYS)  # the reader's proxy sees it fail
        for k in KEYS:
            assert writer.request(b"set %s 0 0 3\r\nnew\r\n" % k) == b"STORED\r\n"
        healthy = Conn(b.port)
        assert healthy.request(b"mg memfleet:rejoin:%s v\r\n" % a.address.encode()) == (
            b"VA 1\r\n1\r\n"
        )  # one proxy process has keys to repair there
        a.start()  # warm: "old" everywhere until the writer's proxy repairs it
        direct = Conn(a.port)
        old_reads = 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            old_reads += read_values(reader, KEYS).count(b"old")
            last = KEYS[-1]
            if direct.request(b"get %s\r\n" % last) == b"VALUE %s 0 3\r\nnew\r\nEND\r\n" % last:
                break  # repaired by the writer's proxy
        assert old_reads == 0, f"the other proxy read {old_reads} old values"
        assert healthy.request(b"mg memfleet:rejoin:%s v\r\n" % a.address.encode()) == (
            b"VA 1\r\n0\r\n"
        )
        stats = reader.request(b"stats backends\r\n")
        assert b"STAT %s:mark_waits 0\r\n" % a.address.encode() not in stats  # it waited
        assert wait_until(lambda: read_values(reader, KEYS) == [b"new"] * len(KEYS))
        for c in (writer, reader, healthy, direct):
            c.close()
    finally:
        a.stop()

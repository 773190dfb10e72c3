"""``--workers N``: N processes share the port, a dead worker is replaced, reloads reach
every worker, and the metrics endpoint sums them."""

from __future__ import annotations

import os
import signal
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.helpers import (
    Conn,
    Memcached,
    ProxyProcess,
    free_port,
    pool_config,
    wait_port,
    wait_until,
)

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _metric_total(port: int, line_start: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
    return -1.0


def test_workers_share_the_port_and_sum_their_metrics(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    a, b = memcached_factory(), memcached_factory()
    mport = free_port()
    proxy = proxy_factory(
        pool_config(a.address),
        ("--watch-interval", "0", "--workers", "2", "--metrics", f"127.0.0.1:{mport}"),
    )
    wait_port(mport)
    assert wait_until(lambda: len(_children(proxy.proc.pid)) == 2)
    workers = _children(proxy.proc.pid)

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{mport}/readyz", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    assert wait_until(ready)  # every worker listens
    conns: list[Conn] = []
    served: set[bytes] = set()
    while len(conns) < 200 and (len(conns) < 40 or len(served) < 2):
        c = Conn(proxy.port)  # the kernel spreads connections over the workers
        assert c.request(b"set w%d 0 0 1\r\nv\r\n" % len(conns)) == b"STORED\r\n"
        served.add(c.request(b"stats\r\n").split(b"STAT pid ")[1].split(b"\r\n")[0])
        conns.append(c)
    assert served == {str(w).encode() for w in workers}
    assert _metric_total(mport, 'memfleet_requests_total{command="set"') == len(conns)

    # A reload reaches every worker: all of them now write to b.
    proxy.write_config(pool_config(b.address))
    proxy.reload()
    direct_b = Conn(b.port)
    for i, c in enumerate(conns):
        assert wait_until(lambda c=c, i=i: c.request(b"set r%d 0 0 1\r\nv\r\n" % i) == b"STORED\r\n"
                     and direct_b.request(b"get r%d\r\n" % i).startswith(b"VALUE"))  # fmt: skip

    # A worker that dies is replaced; the port keeps answering meanwhile.
    os.kill(workers[0], signal.SIGKILL)
    assert wait_until(lambda: len(set(_children(proxy.proc.pid)) - {workers[0]}) == 2)
    fresh = Conn(proxy.port)
    assert fresh.request(b"get w1\r\n").startswith((b"VALUE", b"END"))
    for c in [*conns, fresh, direct_b]:
        c.close()
    proxy.stop()
    assert proxy.proc.returncode == 0
    assert all(not Path(f"/proc/{w}").exists() for w in _children(proxy.proc.pid))

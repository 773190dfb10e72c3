"""Each limit, driven past: the reply, the log line, the counter, and other clients unharmed."""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.request
from collections.abc import Callable

import pytest
from tests.helpers import (
    Conn,
    Memcached,
    ProxyProcess,
    free_port,
    pool_config,
    proxy_stat,
    wait_until,
)

pytestmark = pytest.mark.integration

FAST = {"read_timeout": 5.0, "failure_limit": 100}


def _proxy(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
    extra_args: tuple[str, ...] = (),
    **limits: object,
) -> tuple[Memcached, ProxyProcess]:
    node = memcached_factory()
    cfg = pool_config(node.address, **FAST)
    cfg["limits"] = limits
    return node, proxy_factory(cfg, extra_args)


def _healthy(port: int) -> bool:
    c = Conn(port)
    try:
        return c.request(b"set ok 0 0 1\r\n1\r\nget ok\r\n") == (
            b"STORED\r\nVALUE ok 0 1\r\n1\r\nEND\r\n"
        )
    finally:
        c.close()


def test_max_connections(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    mport = free_port()
    _, proxy = _proxy(
        memcached_factory,
        proxy_factory,
        ("--watch-interval", "0", "--metrics", f"127.0.0.1:{mport}"),
        max_connections=3,
    )
    held = [Conn(proxy.port) for _ in range(3)]
    for c in held:
        assert c.request(b"version\r\n").startswith(b"VERSION")
    extra = Conn(proxy.port)
    assert extra.read_all_until_closed() == b"ERROR Too many open connections\r\n"
    extra.close()
    for c in held:
        assert c.request(b"get nope\r\n") == b"END\r\n"  # the others are still served
    held[0].close()
    assert wait_until(lambda: _healthy(proxy.port))  # a freed slot is usable again
    for c in held[1:]:
        c.close()
    assert wait_until(lambda: proxy_stat(proxy.port, "rejected_connections") >= 1)
    assert "refused client" in proxy.log()
    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as resp:
        metrics = resp.read().decode()
    assert 'memfleet_limit_hits_total{limit="rejected_connections"} 1.0' in metrics


def test_too_many_in_flight_pauses_reading_and_loses_nothing(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    node, proxy = _proxy(memcached_factory, proxy_factory, max_inflight=10)
    c = Conn(proxy.port)
    assert c.request(b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
    node.stop_signal()  # replies stop coming: the client's requests pile up in flight
    try:
        c.send(b"get k\r\n" * 200)
        time.sleep(0.5)
    finally:
        node.cont_signal()
    want = b"VALUE k 0 1\r\nv\r\nEND\r\n"
    c.send(b"mn\r\n")
    got = c.read_until(b"MN\r\n", timeout=15)
    assert got == want * 200 + b"MN\r\n"
    assert proxy_stat(proxy.port, "inflight_paused") >= 1
    assert "reading paused" in proxy.log()
    assert _healthy(proxy.port)
    c.close()


def test_backend_queue_cap_fails_the_excess_fast(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    node, proxy = _proxy(memcached_factory, proxy_factory, max_backend_queue=5)
    c = Conn(proxy.port)
    node.stop_signal()
    try:
        c.send(b"".join(b"get k%d\r\n" % i for i in range(20)))
        # The 15 over the cap are answered at once, while the first 5 still wait.
        time.sleep(0.5)
        c.sock.settimeout(0.5)
        early = b""
        try:
            while True:
                chunk = c.sock.recv(65536)
                if not chunk:
                    break
                early += chunk
        except TimeoutError:
            pass
    finally:
        node.cont_signal()
    assert early == b""  # replies stay in order: nothing before the first 5 are answered
    c.send(b"mn\r\n")
    got = c.read_until(b"MN\r\n", timeout=15)
    assert got == b"END\r\n" * 5 + b"SERVER_ERROR backend queue full\r\n" * 15 + b"MN\r\n"
    assert "max_backend_queue" in proxy.log()
    assert b"queue_full 15" in c.request(b"stats backends\r\n")
    assert _healthy(proxy.port)
    c.close()


def test_max_item_size(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    node = memcached_factory()
    cfg = pool_config(node.address)
    cfg["max_item_size"] = 4096
    proxy = proxy_factory(cfg)
    other = Conn(proxy.port)
    c = Conn(proxy.port)
    big = b"x" * 5000
    assert c.request(b"set big 0 0 5000\r\n" + big + b"\r\n") == (
        b"SERVER_ERROR object too large for cache\r\n"
    )
    assert c.request(b"set ok 0 0 4000\r\n" + big[:4000] + b"\r\n") == b"STORED\r\n"
    assert other.request(b"get ok\r\n")[:17] == b"VALUE ok 0 4000\r\n"
    assert "over max_item_size" in proxy.log()
    assert proxy_stat(proxy.port, "too_large") == 1
    c.close()
    other.close()


def test_client_that_never_reads_is_paused_then_dropped(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    _, proxy = _proxy(
        memcached_factory, proxy_factory, max_pending_bytes=65536, stalled_timeout=1.0
    )
    setup = Conn(proxy.port)
    big = b"x" * 500_000
    assert setup.request(b"set big 0 0 %d\r\n" % len(big) + big + b"\r\n") == b"STORED\r\n"
    rss_before = proxy.rss_kb()
    greedy = socket.create_connection(("127.0.0.1", proxy.port))
    greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        for _ in range(200):  # 100 MB of replies asked for; never read
            greedy.sendall(b"get big\r\n")
    except OSError:
        pass  # the proxy stopped reading, then hung up: what we want
    assert wait_until(lambda: proxy_stat(proxy.port, "stalled_closed") >= 1, seconds=15)
    assert "replies unread" in proxy.log()
    assert setup.request(b"get big\r\n")[:20] == b"VALUE big 0 500000\r\n"
    assert proxy.rss_kb() - rss_before < 60 * 1024  # not 100 MB of queued replies
    greedy.close()
    setup.close()


def test_slowloris_request_is_cut_off(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    _, proxy = _proxy(memcached_factory, proxy_factory, request_timeout=1.0)
    slow = Conn(proxy.port)
    slow.send(b"set k 0 0 100\r\nonly-the-start")
    other = Conn(proxy.port)
    assert other.request(b"get k\r\n") == b"END\r\n"
    reply = slow.read_all_until_closed(timeout=10)
    assert reply == b"CLIENT_ERROR request not received in time\r\n"
    assert "not received whole" in proxy.log()
    assert proxy_stat(proxy.port, "slow_closed") == 1
    assert other.request(b"get k\r\n") == b"END\r\n"
    slow.close()
    other.close()


def test_idle_timeout(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    _, proxy = _proxy(memcached_factory, proxy_factory, idle_timeout=1.0)
    idle = Conn(proxy.port)
    busy = Conn(proxy.port)
    deadline = time.monotonic() + 10
    closed = False
    while time.monotonic() < deadline and not closed:
        assert busy.request(b"get k\r\n") == b"END\r\n"  # keeps working, keeps its connection
        idle.sock.settimeout(0.2)
        with contextlib.suppress(TimeoutError):
            closed = idle.sock.recv(10) == b""
    assert closed
    assert busy.request(b"get k\r\n") == b"END\r\n"
    assert proxy_stat(proxy.port, "idle_closed") == 1
    assert "idle for" in proxy.log()
    busy.close()


def test_limits_are_validated(tmp_path: object) -> None:
    from memfleet.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"limits\.max_connections"):
        parse_config({**pool_config("127.0.0.1:1"), "limits": {"max_connections": 0}}, "p.yaml")
    with pytest.raises(ConfigError, match=r"limits\.frobs: unknown field"):
        parse_config({**pool_config("127.0.0.1:1"), "limits": {"frobs": 1}}, "p.yaml")

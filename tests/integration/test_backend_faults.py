"""Backends that die (SIGKILL) or hang (SIGSTOP) while clients run: their keys fail with
``SERVER_ERROR backend failure``, every other key keeps working, and the backend serves again
once it is back, with no proxy restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess, pool_config

from memfleet.backends.hashing import Placement

pytestmark = pytest.mark.integration

FAILURE = b"SERVER_ERROR backend failure\r\n"
OPTIONS = {"read_timeout": 0.5, "connect_timeout": 0.5, "failure_limit": 2, "retry_timeout": 0.3}


def _keys_by_node(n_nodes: int, count: int = 60) -> dict[int, list[str]]:
    placement = Placement(n_nodes)
    out: dict[int, list[str]] = {i: [] for i in range(n_nodes)}
    for i in range(count):
        k = f"fault:{i}"
        out[placement.index(k.encode())].append(k)
    return out


class _Background:
    """A client that keeps reading keys of healthy nodes, bounded in time and count."""

    def __init__(self, port: int, keys: list[str]) -> None:
        self.port = port
        self.keys = keys
        self.stop = threading.Event()
        self.ok = 0
        self.bad: list[bytes] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn = Conn(self.port)
        deadline = time.monotonic() + 60
        for i in range(1_000_000):
            if self.stop.is_set() or time.monotonic() > deadline:
                break
            k = self.keys[i % len(self.keys)]
            reply = conn.request(f"get {k}\r\n".encode())
            if reply == f"VALUE {k} 0 1\r\nv\r\nEND\r\n".encode():
                self.ok += 1
            else:
                self.bad.append(reply)
        conn.close()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(10)


def _wait_for(conn: Conn, data: bytes, want: bytes, seconds: float = 15) -> bytes:
    """Repeat a request until it gives ``want`` (bounded); return the last reply."""
    deadline = time.monotonic() + seconds
    reply = b""
    while time.monotonic() < deadline:
        reply = conn.request(data)
        if reply == want:
            return reply
        time.sleep(0.05)
    return reply


def _setup(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> tuple[list[Memcached], ProxyProcess, dict[int, list[str]], Conn]:
    nodes = [memcached_factory() for _ in range(3)]
    proxy = proxy_factory(pool_config(*(n.address for n in nodes), **OPTIONS))
    keys = _keys_by_node(3)
    conn = Conn(proxy.port)
    for ks in keys.values():
        for k in ks:
            assert conn.request(f"set {k} 0 0 1\r\nv\r\n".encode()) == b"STORED\r\n"
    return nodes, proxy, keys, conn


def test_killed_backend_fails_its_keys_only_and_comes_back(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> None:
    nodes, proxy, keys, conn = _setup(memcached_factory, proxy_factory)
    background = _Background(proxy.port, keys[0] + keys[2])
    time.sleep(0.2)
    nodes[1].kill()
    victim = keys[1][0]
    for _ in range(5):  # while failing, and once marked down (fail fast)
        assert conn.request(f"get {victim}\r\n".encode()) == FAILURE
        assert conn.request(f"set {victim} 0 0 1\r\nx\r\n".encode()) == FAILURE
    # A multi-get over all nodes still returns every key of the live nodes.
    multi = [keys[0][0], victim, keys[2][0]]
    reply = conn.request(("get " + " ".join(multi) + "\r\n").encode())
    assert reply == (
        f"VALUE {keys[0][0]} 0 1\r\nv\r\nVALUE {keys[2][0]} 0 1\r\nv\r\nEND\r\n".encode()
    )
    stats = conn.request(b"stats backends\r\n").decode()
    assert f"STAT {nodes[1].address}:state down" in stats

    nodes[1].start()  # same port: the proxy reconnects on its own
    want = b"STORED\r\n"
    assert _wait_for(conn, f"set {victim} 0 0 1\r\nw\r\n".encode(), want) == want
    assert (
        conn.request(f"get {victim}\r\n".encode()) == f"VALUE {victim} 0 1\r\nw\r\nEND\r\n".encode()
    )
    background.finish()
    assert background.bad == []
    assert background.ok > 10
    assert "marked down" in proxy.log() and "back up" in proxy.log()
    conn.close()


def test_hung_backend_times_out_and_recovers_after_sigcont(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> None:
    nodes, proxy, keys, conn = _setup(memcached_factory, proxy_factory)
    background = _Background(proxy.port, keys[0] + keys[1])
    time.sleep(0.2)
    nodes[2].stop_signal()
    victim = keys[2][0]
    for _ in range(4):
        assert conn.request(f"get {victim}\r\n".encode(), timeout=10) == FAILURE
    healthy = keys[0][0]
    assert (
        conn.request(f"get {healthy}\r\n".encode())
        == f"VALUE {healthy} 0 1\r\nv\r\nEND\r\n".encode()
    )
    nodes[2].cont_signal()
    want = f"VALUE {victim} 0 1\r\nv\r\nEND\r\n".encode()
    assert _wait_for(conn, f"get {victim}\r\n".encode(), want) == want
    background.finish()
    assert background.bad == []
    assert background.ok > 10
    conn.close()

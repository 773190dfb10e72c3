"""Replica rejoin without stale reads (and with its warm data kept), and live reload under
load: SIGHUP and a ConfigMap-style symlink swap in the config's directory."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from tests.helpers import Conn, Memcached, ProxyProcess, pool_config, wait_until

from memfleet.topology.presets import Topology

pytestmark = pytest.mark.integration

FAST = {"read_timeout": 0.5, "connect_timeout": 0.5, "failure_limit": 2, "retry_timeout": 0.3}


def _replicated(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
    **options: object,
) -> tuple[list[Memcached], ProxyProcess]:
    topo = Topology("replicated", replicas=2)
    nodes = {n.name: memcached_factory() for n in topo.nodes()}
    cfg = topo.proxy_config(lambda n: nodes[n.name].address, pool_options={**FAST, **options})
    return [nodes["memcached-0"], nodes["memcached-1"]], proxy_factory(cfg)


def _value(key: str, value: str) -> bytes:
    return f"VALUE {key} 0 {len(value)}\r\n{value}\r\nEND\r\n".encode()


def _outage_then_rejoin(
    nodes: list[Memcached], proxy: ProxyProcess, conn: Conn
) -> tuple[list[str], list[str], list[str]]:
    """Stop replica 0, overwrite/delete keys through the proxy, bring it back."""
    keys = [f"rj{i}" for i in range(60)]
    for k in keys:
        assert conn.request(f"set {k} 0 0 3\r\nold\r\n".encode()) == b"STORED\r\n"
    changed, deleted, untouched = keys[:20], keys[20:40], keys[40:]
    nodes[0].stop_signal()
    # Let the proxy find the hang and mark replica 0 down first: the writes below then never
    # reach it (a write already in a hung node's socket may still be applied when it
    # resumes, which would hide a missing invalidation from this test).
    down = f"STAT {nodes[0].address}:state down".encode()
    assert wait_until(
        lambda: (
            conn.request(b"get probe\r\n") is not None
            and down in conn.request(b"stats backends\r\n")
        )
    )
    seen: list[bytes] = []
    for k in changed:
        conn.send(f"set {k} 0 0 3\r\nnew\r\n".encode())
    for k in deleted:
        conn.send(f"delete {k}\r\n".encode())
    for k in changed + deleted:
        # Replica 0 missed these; reads must never show its old values, before or after.
        seen.append(conn.request(f"get {k}\r\n".encode()))
    nodes[0].cont_signal()
    up = f"STAT {nodes[0].address}:state up".encode()
    assert wait_until(lambda: up in conn.request(b"stats backends\r\n"))
    for reply in seen:
        assert b"old" not in reply
    return changed, deleted, untouched


def test_rejoin_invalidates_exactly_what_was_missed(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    nodes, proxy = _replicated(memcached_factory, proxy_factory, rejoin="invalidate")
    conn = Conn(proxy.port)
    changed, deleted, untouched = _outage_then_rejoin(nodes, proxy, conn)
    replica0 = Conn(nodes[0].port)
    for k in changed:
        assert conn.request(f"get {k}\r\n".encode()) == _value(k, "new")
    for k in deleted:
        assert conn.request(f"get {k}\r\n".encode()) == b"END\r\n"
        assert replica0.request(f"get {k}\r\n".encode()) == b"END\r\n"
    # Untouched keys are still in the returning replica's warm memory.
    for k in untouched:
        assert replica0.request(f"get {k}\r\n".encode()) == _value(k, "old")
    # The changed keys were invalidated there, then refilled from the other replica by reads.
    assert replica0.request(b"stats\r\n") and wait_until(
        lambda: replica0.request(f"get {changed[0]}\r\n".encode()) == _value(changed[0], "new")
    )
    assert "rejoined" in proxy.log()
    conn.close()
    replica0.close()


def test_journal_overflow_falls_back_to_flush(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    nodes, proxy = _replicated(memcached_factory, proxy_factory, journal_limit=5)
    conn = Conn(proxy.port)
    changed, deleted, untouched = _outage_then_rejoin(nodes, proxy, conn)
    for k in changed:
        assert conn.request(f"get {k}\r\n".encode()) == _value(k, "new")
    for k in deleted:
        assert conn.request(f"get {k}\r\n".encode()) == b"END\r\n"
    replica0 = Conn(nodes[0].port)
    assert replica0.request(f"get {untouched[0]}\r\n".encode()) == b"END\r\n"  # flushed
    log = proxy.log()
    assert "journal over its limit" in log and "flushed before rejoining" in log
    conn.close()
    replica0.close()


class _Load:
    """gets and sets on one connection in a thread, bounded in time and count."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.errors: list[bytes] = []
        self.ops = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn = Conn(self.port)
        deadline = time.monotonic() + 120
        i = 0
        while not self.stop.is_set() and time.monotonic() < deadline and i < 1_000_000:
            k = f"load{i % 50}"
            r1 = conn.request(f"set {k} 0 0 2\r\nok\r\n".encode())
            r2 = conn.request(f"get {k}\r\n".encode())
            # A reload may move the key to another node between the two requests: a miss
            # is then right; an error or a dropped connection never is.
            if r1 != b"STORED\r\n" or r2 not in (_value(k, "ok"), b"END\r\n"):
                self.errors += [r1, r2]
            self.ops += 2
            i += 1
        conn.close()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(10)


def test_reload_under_load_20_times_with_5_bad_configs(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    a, b = memcached_factory(), memcached_factory()
    proxy = proxy_factory(pool_config(a.address))
    load = _Load(proxy.port)
    for i in range(20):
        if i % 4 == 3:
            proxy.config_path.write_text(
                "pools: {main: {backends: [nope]}}\nroutes: {default: main}\n"
            )
        else:
            proxy.write_config(
                pool_config(a.address, b.address) if i % 2 else pool_config(a.address)
            )
        proxy.reload()
        time.sleep(0.1)
    proxy.write_config(pool_config(b.address))
    proxy.reload()
    direct_b = Conn(b.port)
    assert wait_until(lambda: direct_b.request(b"get load0\r\n") == _value("load0", "ok"), 10)
    load.finish()
    assert load.errors == []
    assert load.ops > 100
    log = proxy.log()
    assert log.count("reload refused") == 5
    direct_b.close()


def test_configmap_symlink_swap_is_picked_up(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
    tmp_path: Path,
) -> None:
    a, b = memcached_factory(), memcached_factory()
    # The layout kubelet gives a ConfigMap volume: proxy.yaml -> ..data/proxy.yaml, and
    # ..data -> ..<timestamp>, swapped atomically on update.
    cm = tmp_path / "configmap"
    cm.mkdir()
    v1 = cm / "..v1"
    v1.mkdir()
    (v1 / "proxy.yaml").write_text(yaml.safe_dump(pool_config(a.address)))
    os.symlink("..v1", cm / "..data")
    os.symlink("..data/proxy.yaml", cm / "proxy.yaml")
    proxy = proxy_factory(cm / "proxy.yaml", ("--watch-interval", "0.1"))
    conn = Conn(proxy.port)
    assert conn.request(b"set cm 0 0 1\r\n1\r\n") == b"STORED\r\n"
    v2 = cm / "..v2"
    v2.mkdir()
    (v2 / "proxy.yaml").write_text(yaml.safe_dump(pool_config(b.address)))
    os.symlink("..v2", cm / "..data.tmp")
    os.replace(cm / "..data.tmp", cm / "..data")
    assert wait_until(lambda: b"STAT reloads 1\r\n" in conn.request(b"stats\r\n"))
    # The resize window reads the key through from its old node...
    assert conn.request(b"get cm\r\n") == _value("cm", "1")
    assert conn.request(b"set cm 0 0 1\r\n2\r\n") == b"STORED\r\n"
    assert Conn(b.port).request(b"get cm\r\n") == _value("cm", "2")
    # ... and a write deletes the old node's copy.
    assert Conn(a.port).request(b"get cm\r\n") == b"END\r\n"
    conn.close()

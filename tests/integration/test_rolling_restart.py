"""A rolling restart of a restartable replica while the other replica serves (the Kubernetes
day-2 path, on this machine): the node stops gracefully (SIGTERM through `memfleet node`),
writes and deletes made meanwhile are repaired on it when it is back, and the rest of its
cache comes back warm — so no read ever sees an old or deleted value."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.helpers import Conn, ProxyProcess, free_port
from tests.integration.fleet_helpers import Cmd, wait_for

from memfleet.topology.presets import Topology

pytestmark = pytest.mark.integration

OPTIONS = {"read_timeout": 0.5, "connect_timeout": 0.5, "failure_limit": 2, "retry_timeout": 0.3}


def _node(tmp: Path, name: str, port: int) -> Cmd:
    return Cmd(
        ["node", "--port", str(port), "--listen", "127.0.0.1", "--memory", "64",
         "--memory-file", str(tmp / f"{name}.mem"), "--restartable"],
        tmp / f"{name}.log",
    )  # fmt: skip


def _answers(port: int) -> bool:
    try:
        c = Conn(port, timeout=1)
    except OSError:
        return False
    try:
        return c.request(b"version\r\n").startswith(b"VERSION")
    except OSError:
        return False
    finally:
        c.close()


def _value(key: str, value: str) -> bytes:
    return f"VALUE {key} 0 {len(value)}\r\n{value}\r\nEND\r\n".encode()


def test_restartable_replica_rolls_without_stale_reads(
    proxy_factory: Callable[..., ProxyProcess], tmp_path: Path
) -> None:
    topo = Topology("replicated", replicas=2)
    ports = {n.name: free_port() for n in topo.nodes()}
    nodes = {name: _node(tmp_path, name, port) for name, port in ports.items()}
    try:
        for name, cmd in nodes.items():
            wait_for(lambda p=ports[name]: _answers(p), f"{name} ready", cmd)
        cfg = topo.proxy_config(lambda n: f"127.0.0.1:{ports[n.name]}", pool_options=OPTIONS)
        proxy = proxy_factory(cfg)
        conn = Conn(proxy.port)
        keys = [f"roll:{i}" for i in range(90)]
        for k in keys:
            assert conn.request(f"set {k} 0 0 3\r\nold\r\n".encode()) == b"STORED\r\n"
        changed, deleted, untouched = keys[:30], keys[30:60], keys[60:]

        rolling = "memcached-0"
        nodes[rolling].signal(signal.SIGTERM)  # graceful: the state file is written
        assert nodes[rolling].wait(60) == 0
        for k in changed:  # the other replica takes them; the rolling one is journaled
            conn.request(f"set {k} 0 0 3\r\nnew\r\n".encode())
        for k in deleted:
            conn.request(f"delete {k}\r\n".encode())
        for k in changed:
            assert conn.request(f"get {k}\r\n".encode()) == _value(k, "new")
        for k in untouched:
            assert conn.request(f"get {k}\r\n".encode()) == _value(k, "old")

        nodes[rolling].stop()
        nodes[rolling] = _node(tmp_path, rolling, ports[rolling])
        # The supervisor says "ready (warm restart ...)" once memcached answers it.
        wait_for(lambda: "warm restart" in nodes[rolling].log(), "warm restart", nodes[rolling])
        assert _answers(ports[rolling])
        up = f"STAT 127.0.0.1:{ports[rolling]}:state up".encode()
        wait_for(lambda: up in conn.request(b"stats backends\r\n"), "the replica back in service")

        direct = Conn(ports[rolling])
        for k in untouched:  # warm: still in its memory after the restart
            assert direct.request(f"get {k}\r\n".encode()) == _value(k, "old")
        for k in changed:  # what it missed was repaired: copied from the other replica
            assert direct.request(f"get {k}\r\n".encode()) == _value(k, "new")
        for k in deleted:  # ...or deleted, where the other replica does not hold it
            assert direct.request(f"get {k}\r\n".encode()) == b"END\r\n"
        for k in changed:
            assert conn.request(f"get {k}\r\n".encode()) == _value(k, "new")
        for k in deleted:
            assert conn.request(f"get {k}\r\n".encode()) == b"END\r\n"
        time.sleep(0.2)
        assert "rejoined" in proxy.log()
        direct.close()
        conn.close()
    finally:
        for cmd in nodes.values():
            cmd.stop()

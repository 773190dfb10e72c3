"""`memfleet up` / `memfleet status`: a whole fleet of real memcached nodes plus the proxy."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.integration.fleet_helpers import (
    Cmd,
    client,
    curr_items,
    get_keys,
    memcached_on_port,
    pid_alive,
    set_keys,
)

from memfleet.backends.hashing import Placement

pytestmark = pytest.mark.integration

StartUp = Callable[..., tuple[Cmd, dict[str, Any]]]


def test_up_defaults_serve_10000_keys_and_stop_cleanly(start_up: StartUp) -> None:
    up, state = start_up()
    nodes = state["nodes"]
    assert [n["name"] for n in nodes] == [f"memcached-{r}-{s}" for r in (0, 1) for s in (0, 1, 2)]
    assert all(n["host"] == "127.0.0.1" and n["failure_host"] is None for n in nodes)
    proxy_port = state["proxy"]["port"]
    assert f"telnet 127.0.0.1 {proxy_port}" in up.log()

    c = client(proxy_port)
    items = set_keys(c, 10_000)
    assert get_keys(c, list(items)) == items
    c.close()

    # Aligned replicas: every replica holds every key, on the shard the hash rule names.
    placement = Placement(3)
    per_shard = [0, 0, 0]
    for k in items:
        per_shard[placement.index(k.encode())] += 1
    for n in nodes:
        assert curr_items(n["port"]) == per_shard[n["shard"]], n["name"]
    assert min(per_shard) > 2500

    status = subprocess.run(
        [sys.executable, "-m", "memfleet", "status", "--state-file", str(up.state_path),
         "--json"], capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert status.returncode == 0, status.stdout
    assert json.loads(status.stdout)["proxy"]["address"] == f"127.0.0.1:{proxy_port}"

    up.signal(signal.SIGINT)  # Ctrl-C
    assert up.wait(60) == 0
    for pid in [n["pid"] for n in nodes] + [state["proxy"]["pid"]]:
        assert not pid_alive(pid), pid
    for n in nodes:
        assert memcached_on_port(n["port"]) == [], n["name"]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy_port), timeout=1).close()
    assert up.state_path is not None and not up.state_path.exists()


def test_up_restartable_comes_back_warm(tmp_path: Path, start_up: StartUp) -> None:
    data = tmp_path / "data"
    args = ("--persistence", "restartable", "--data-dir", str(data))
    up, state = start_up(*args)
    c = client(state["proxy"]["port"])
    items = set_keys(c, 10_000)
    c.close()
    up.signal(signal.SIGTERM)
    assert up.wait(60) == 0
    assert len(list(data.glob("memcached-*.mem.meta"))) == 6

    up, state = start_up(*args)
    c = client(state["proxy"]["port"])
    assert get_keys(c, list(items)) == items
    c.close()
    assert all(n["memory_file"] for n in state["nodes"])


def test_up_falls_back_when_the_port_is_taken(start_up: StartUp) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up, state = start_up("--topology", "sharded", "--shards", "1", port=str(port))
        assert f"port {port} is in use" in up.log()
        assert state["proxy"]["port"] != port
        c = client(state["proxy"]["port"])
        assert c.set("k", b"v", noreply=False) and c.get("k") == b"v"


def test_status_without_a_fleet(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "memfleet", "status", "--state-file", str(tmp_path / "x.json")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 2 and "no such state file" in r.stdout and "Traceback" not in r.stderr
    # No flags at all: the default fleet, which is not running (exit 2, not a usage error).
    r = subprocess.run([sys.executable, "-m", "memfleet", "status"], capture_output=True,
                       text=True, timeout=30)  # fmt: skip
    assert r.returncode == 2 and "no fleet named 'default' is running" in r.stdout, r


def test_up_local_failover_starts_the_local_tier_too(start_up: StartUp) -> None:
    _, state = start_up("--topology", "local-failover", "--shards", "2", "--memory", "16")
    zones = {n["name"]: n["zone"] for n in state["nodes"]}
    assert zones == {"memcached-local": "local", "memcached-0": "cluster", "memcached-1": "cluster"}
    c = client(state["proxy"]["port"])
    assert c.set("k", b"v", noreply=False) and c.get("k") == b"v"
    local = next(n for n in state["nodes"] if n["name"] == "memcached-local")
    assert curr_items(local["port"]) == 1  # written through the local tier as well


def test_up_from_a_proxy_config_file(tmp_path: Path, start_up: StartUp) -> None:
    cfg = tmp_path / "proxy.yaml"
    cfg.write_text(
        "pools:\n  main: {backends: ['cache-a:11211', 'cache-b:11211']}\nroutes: {default: main}\n"
    )
    _, state = start_up("--config", str(cfg), "--memory", "16")
    assert [n["name"] for n in state["nodes"]] == ["memcached-0", "memcached-1"]
    c = client(state["proxy"]["port"])
    items = set_keys(c, 200)
    assert get_keys(c, list(items)) == items
    assert sum(curr_items(n["port"]) for n in state["nodes"]) == 200

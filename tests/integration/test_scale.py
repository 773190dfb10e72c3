"""`memfleet scale` on a real `memfleet up` fleet: the safe order (new nodes answering before
the config names them; removed nodes stopped only after the migration window), the keys
still readable through the proxy, and clear refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from tests.integration.conftest import StartUp
from tests.integration.fleet_helpers import (
    client,
    get_keys,
    pid_alive,
    read_state,
    set_keys,
    wait_for,
)

KEYS = 1000


def scale(state_file: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memfleet", "scale", "--state-file", str(state_file), *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def backends(state: dict[str, Any]) -> dict[str, list[str]]:
    cfg = yaml.safe_load((Path(state["data_dir"]) / "proxy.yaml").read_text())
    return {name: pool["backends"] for name, pool in cfg["pools"].items()}


def node(state: dict[str, Any], name: str) -> dict[str, Any]:
    (n,) = [n for n in state["nodes"] if n["name"] == name]
    return n


def all_readable(port: int, items: dict[str, bytes]) -> int:
    c = client(port)
    try:
        got = get_keys(c, list(items))
    finally:
        c.close()
    return sum(1 for k, v in items.items() if got.get(k) == v)


def test_scale_out_then_in_keeps_every_key_readable(start_up: StartUp) -> None:
    up, state = start_up("--topology", "sharded", "--shards", "3", "--metrics", "off",
                         "--migration-window", "8")  # fmt: skip
    assert up.state_path is not None
    port = state["proxy"]["port"]
    c = client(port)
    items = set_keys(c, KEYS)
    c.close()

    out = scale(up.state_path, "--shards", "4")
    assert out.returncode == 0, out.stderr + out.stdout
    # The new node answered before the config named it, and only then did the proxy reload.
    steps = out.stderr
    assert steps.index("memcached-3 starting") < steps.index("new nodes answer: memcached-3")
    assert steps.index("new nodes answer") < steps.index("proxy config rewritten")
    after = read_state(up.state_path)
    assert [n["name"] for n in after["nodes"]] == [f"memcached-{s}" for s in range(4)]
    new = node(after, "memcached-3")
    assert backends(after)["main"][-1] == f"{new['host']}:{new['port']}"
    assert all_readable(port, items) == KEYS  # the moved quarter read through, not missed

    out = scale(up.state_path, "--shards", "3")
    assert out.returncode == 0, out.stderr + out.stdout
    mid = read_state(up.state_path)
    # The config first: the proxy no longer names memcached-3, which still runs (retiring).
    assert len(backends(mid)["main"]) == 3
    assert [r["name"] for r in mid["retiring"]] == ["memcached-3"]
    assert pid_alive(new["pid"])
    assert all_readable(port, items) == KEYS  # its keys read through from it
    status = subprocess.run(
        [sys.executable, "-m", "memfleet", "status", "--state-file", str(up.state_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "retiring: memcached-3" in status.stdout and "sharded, 3 shards" in status.stdout

    def retired() -> bool:
        return not read_state(up.state_path)["retiring"] and not pid_alive(new["pid"])

    wait_for(retired, "memcached-3 stopped after the window", up, timeout=90)
    assert all_readable(port, items) == KEYS  # what was read in the window was copied over
    assert "memcached-3 stopped (retired" in up.log()


def test_replicated_sharded_resizes_every_replica_together(start_up: StartUp) -> None:
    up, state = start_up("--topology", "replicated-sharded", "--shards", "2", "--metrics", "off")
    assert up.state_path is not None
    port = state["proxy"]["port"]
    c = client(port)
    items = set_keys(c, KEYS)
    c.close()
    out = scale(up.state_path, "--shards", "3")
    assert out.returncode == 0, out.stderr + out.stdout
    after = read_state(up.state_path)
    pools = backends(after)
    assert {name: len(b) for name, b in pools.items()} == {"replica_0": 3, "replica_1": 3}
    for r in (0, 1):
        n = node(after, f"memcached-{r}-2")
        assert pools[f"replica_{r}"][2] == f"{n['host']}:{n['port']}"
    assert all_readable(port, items) == KEYS


def test_a_scale_in_within_the_window_is_taken_back(start_up: StartUp) -> None:
    """4 → 3 → 4 inside the window: the retiring node is the one that comes back (its keys
    with it), not a new, empty one; and `memfleet down` stops a retiring node."""
    up, state = start_up("--topology", "sharded", "--shards", "4", "--metrics", "off")
    assert up.state_path is not None
    port = state["proxy"]["port"]
    c = client(port)
    items = set_keys(c, KEYS)
    c.close()
    pid = node(state, "memcached-3")["pid"]
    assert scale(up.state_path, "--shards", "3").returncode == 0
    back = scale(up.state_path, "--shards", "4")
    assert back.returncode == 0, back.stderr
    assert "memcached-3 taken back" in back.stderr
    after = read_state(up.state_path)
    assert node(after, "memcached-3")["pid"] == pid and not after["retiring"]
    assert all_readable(port, items) == KEYS

    assert scale(up.state_path, "--shards", "2").returncode == 0
    retiring = read_state(up.state_path)["retiring"]
    assert sorted(r["name"] for r in retiring) == ["memcached-2", "memcached-3"]
    down = subprocess.run(
        [sys.executable, "-m", "memfleet", "down", "--state-file", str(up.state_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert down.returncode == 0, down.stderr
    assert not any(pid_alive(r["pid"]) for r in retiring)


def test_refusals_are_one_clear_line(start_up: StartUp, tmp_path: Path) -> None:
    up, _ = start_up("--topology", "replicated", "--metrics", "off")
    assert up.state_path is not None
    r = scale(up.state_path, "--shards", "3")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "no shards to scale" in r.stderr
    assert "Traceback" not in r.stderr

    r = subprocess.run(
        [sys.executable, "-m", "memfleet", "scale", "--shards", "4", "--name", "nosuch"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and "no fleet named 'nosuch' is running" in r.stderr

    r = scale(up.state_path, "--shards", "0")
    assert r.returncode == 2 and "--shards" in r.stderr


def test_a_config_file_fleet_is_not_scaled(start_up: StartUp, tmp_path: Path) -> None:
    cfg = tmp_path / "proxy.yaml"
    cfg.write_text(
        "pools:\n  main:\n    backends: [a:1, b:1]\nroutes:\n  default: main\n", encoding="utf-8"
    )
    up, state = start_up("--config", str(cfg), "--metrics", "off")
    assert up.state_path is not None
    r = scale(up.state_path, "--shards", "3")
    assert r.returncode == 2 and "--config FILE" in r.stderr
    assert len(read_state(up.state_path)["nodes"]) == len(state["nodes"]) == 2

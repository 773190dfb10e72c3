"""`memfleet up --hosts 3`: nodes in network namespaces as failure units, and `memfleet fault`.

Needs root and network namespaces; skipped with the reason otherwise. All addresses live in a
private /24 inside namespaces the fleet creates; the test talks to the proxy on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from tests.integration.fleet_helpers import Cmd, client, get_keys, read_state, set_keys, wait_for

pytestmark = pytest.mark.integration

StartUp = Callable[..., tuple[Cmd, dict[str, Any]]]
KEYS = 3000


def _netns_usable() -> str | None:
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root"
    name = f"mfprobe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


_WHY = _netns_usable()
needs_netns = pytest.mark.skipif(_WHY is not None, reason=_WHY or "")


def _drill(start_up: StartUp, placement: str) -> tuple[int, dict[str, Any]]:
    """Write KEYS keys, kill host-1, read them back: how many are lost."""
    up, state = start_up("--hosts", "3", "--placement", placement)
    assert {n["failure_host"] for n in state["nodes"]} == {"host-0", "host-1", "host-2"}
    assert state["proxy"]["host"] == "127.0.0.1"
    c = client(state["proxy"]["port"])
    items = set_keys(c, KEYS)
    assert up.state_path is not None
    r = subprocess.run(
        [sys.executable, "-m", "memfleet", "fault", "--state-file", str(up.state_path),
         "kill-host", "host-1"], capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 0 and "host-1: killed" in r.stdout, r.stderr
    got = get_keys(c, list(items))
    assert all(got[k] == items[k] for k in got)
    return KEYS - len(got), state


@needs_netns
def test_aligned_placement_loses_no_key_when_a_host_dies(start_up: StartUp) -> None:
    lost, state = _drill(start_up, "aligned")
    for shard in range(3):  # the rule: no two replicas of one shard on one host
        hosts = [n["failure_host"] for n in state["nodes"] if n["shard"] == shard]
        assert len(set(hosts)) == len(hosts)
    assert lost == 0


@needs_netns
def test_heal_restarts_a_killed_host_and_cut_host_isolates(start_up: StartUp) -> None:
    up, state = start_up("--hosts", "2", "--topology", "sharded", "--shards", "2")
    state_path = up.state_path
    assert state_path is not None
    fault = [sys.executable, "-m", "memfleet", "fault", "--state-file", str(state_path)]
    on_host0 = [n for n in state["nodes"] if n["failure_host"] == "host-0"]
    c = client(state["proxy"]["port"])
    assert c.set("k", b"v", noreply=False)

    r = subprocess.run([*fault, "kill-host", "host-0"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*fault, "heal-host", "host-0"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "back on the network" in r.stdout

    def restarted() -> bool:
        now = {n["name"]: n["pid"] for n in read_state(state_path)["nodes"]}
        return all(now[n["name"]] != n["pid"] for n in on_host0) and "restarting" in up.log()

    wait_for(restarted, "restarted nodes", up, timeout=30)
    r = subprocess.run([*fault, "cut-host", "host-1"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "cut off" in r.stdout
    r = subprocess.run([*fault, "kill-host", "host-9"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "no host 'host-9'" in r.stderr


@needs_netns
def test_independent_placement_reports_keys_that_lost_both_copies(start_up: StartUp) -> None:
    lost, _ = _drill(start_up, "independent")
    print(f"independent placement, host-1 killed: {lost} of {KEYS} keys lost both copies")
    assert lost > 0


def test_hosts_without_root_says_so_and_runs_without(start_up: StartUp) -> None:
    if os.geteuid() == 0:
        pytest.skip("runs as root: --hosts works here (the drills above cover it)")
    up, state = start_up("--hosts", "3", "--topology", "sharded", "--shards", "1")
    assert "need root" in up.log() and "running without simulated hosts" in up.log()
    assert state["nodes"][0]["failure_host"] is None

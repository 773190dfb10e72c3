"""`memfleet up` supervises like a StatefulSet; `memfleet status` and `memfleet down` find a
fleet by its name: real memcached nodes, real signals, the commands as a user runs them."""

from __future__ import annotations

import json
import os
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
    memcached_on_port,
    pid_alive,
    read_state,
    wait_for,
)

from memfleet.tools.drill.faults import memcached_pid

pytestmark = pytest.mark.integration

StartUp = Callable[..., tuple[Cmd, dict[str, Any]]]
SMALL = ("--topology", "sharded", "--shards", "2", "--memory", "16")


def memfleet(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "memfleet", *args], capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def status(*args: str) -> tuple[int, dict[str, Any]]:
    r = memfleet("status", "--json", *args)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, json.loads(r.stdout)


def node(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (n,) = [n for n in doc["nodes"] if n["name"] == name]
    return n


def test_a_killed_node_is_restarted_serves_and_status_follows(start_up: StartUp) -> None:
    up, state = start_up(*SMALL)
    victim = state["nodes"][0]
    code, doc = status()  # the default name: no --state-file needed
    assert code == 0, doc
    assert doc["problems"] == [] and node(doc, victim["name"])["health"] == "up"

    # memcached dies while its supervisor is held: nothing can restart it yet, so the status
    # is read while the node is certainly down.
    supervisor = victim["pid"]
    mc = memcached_pid(supervisor)
    assert mc != supervisor
    os.kill(supervisor, signal.SIGSTOP)
    try:
        os.kill(mc, signal.SIGKILL)
        wait_for(lambda: not pid_alive(mc), "memcached gone", up, timeout=10)
        code, doc = status()
        assert code == 1, doc
        assert node(doc, victim["name"])["health"] == "down"
        assert f"{victim['name']} down" in doc["problems"]
    finally:
        os.kill(supervisor, signal.SIGCONT)

    # The supervisor reports the death and exits; `up` restarts the node within seconds.
    wait_for(lambda: "restarted (restart 1)" in up.log(), "restart", up, timeout=15)
    assert f"{victim['name']} exited with status 137 (SIGKILL)" in up.log()

    def healthy() -> bool:
        return status()[0] == 0

    wait_for(healthy, "status 0 after the restart", up, timeout=15)
    code, doc = status()
    assert node(doc, victim["name"])["restarts"] == 1
    assert memcached_on_port(victim["port"]), "the node is back on its own port"
    c = client(state["proxy"]["port"])
    for i in range(50):  # keys on both shards, the restarted one included
        assert c.set(f"k{i}", b"v", noreply=False)
        assert c.get(f"k{i}") == b"v"
    c.close()
    direct = client(victim["port"])
    assert int(direct.stats()[b"curr_items"]) > 0
    direct.close()

    # The same death of the supervisor itself reads the same: 137 (SIGKILL), not -9.
    pid = read_state(up.state_path)["nodes"][1]["pid"] if up.state_path else 0
    os.kill(pid, signal.SIGKILL)
    name1 = state["nodes"][1]["name"]
    wait_for(lambda: f"{name1} exited with" in up.log(), "second exit", up, timeout=10)
    assert f"{name1} exited with status 137 (SIGKILL)" in up.log()


def test_restart_never_leaves_a_dead_node_down(start_up: StartUp) -> None:
    up, state = start_up(*SMALL, "--restart", "never")
    victim = state["nodes"][1]
    os.kill(victim["pid"], signal.SIGKILL)
    wait_for(lambda: "not restarted (--restart never" in up.log(), "exit seen", up, timeout=10)
    code, doc = status()
    assert code == 1 and node(doc, victim["name"])["process"] == "exited"
    assert memcached_on_port(victim["port"]) == []
    assert "restarted (restart" not in up.log()


def test_the_proxy_is_restarted_on_its_port(start_up: StartUp) -> None:
    up, state = start_up(*SMALL)
    port = state["proxy"]["port"]
    os.kill(state["proxy"]["pid"], signal.SIGKILL)
    wait_for(lambda: "the proxy restarted" in up.log(), "proxy restart", up, timeout=15)

    def serves() -> bool:
        c = client(port)
        try:
            return bool(c.set("k", b"v", noreply=False)) and c.get("k") == b"v"
        except OSError:
            return False
        finally:
            c.close()

    wait_for(serves, "the proxy serving again", up, timeout=15)
    assert "the proxy exited with status 137 (SIGKILL)" in up.log()


def test_down_stops_everything_up_started_and_nothing_else(tmp_path: Path) -> None:
    # A memcached that is not the fleet's, on a port of its own.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        other_port = s.getsockname()[1]
    root = ["-u", "root"] if os.geteuid() == 0 else []
    other = subprocess.Popen(["memcached", "-p", str(other_port), "-l", "127.0.0.1", "-m", "8",
                              *root], start_new_session=True)  # fmt: skip
    up = Cmd(["up", *SMALL, "--port", "0", "--name", "drilldown"], tmp_path / "up.log")
    try:
        wait_for(lambda: "memfleet up: ready" in up.log(), "ready", up, timeout=60)
        code, doc = status("--name", "drilldown")
        assert code == 0, doc
        state_file = Path(doc["state_file"])
        state = read_state(state_file)
        pids = [n["pid"] for n in state["nodes"]] + [state["proxy"]["pid"]]
        assert memfleet("down").returncode == 2  # the default fleet: not running

        r = memfleet("down", "--name", "drilldown")
        assert r.returncode == 0, r.stderr
        assert "stopped" in r.stdout
        assert up.wait(10) == 0
        for pid in [*pids, up.proc.pid]:
            assert not pid_alive(pid), pid
        for n in state["nodes"]:
            assert memcached_on_port(n["port"]) == []
        assert not state_file.exists()
        assert other.poll() is None and memcached_on_port(other_port) == [other.pid]
        assert status("--name", "drilldown")[0] == 2
        r = memfleet("down", "--name", "drilldown")
        assert r.returncode == 2 and "is running" in r.stderr  # "no fleet named ... is running"
    finally:
        up.stop()
        other.kill()
        other.wait(5)


def test_a_fleet_name_is_taken_while_it_runs(start_up: StartUp, tmp_path: Path) -> None:
    start_up(*SMALL, "--name", "one")
    second = memfleet("up", *SMALL, "--port", "0", "--name", "one", timeout=60)
    assert second.returncode == 2
    assert "a fleet named 'one' is already running" in second.stderr
    assert "memfleet down --name one" in second.stderr
    assert status("--name", "one")[0] == 0
    assert status()[0] == 2  # `default` is another fleet
    # --watch refreshes (bounded here by --count): one JSON document per refresh.
    r = memfleet("status", "--name", "one", "--watch", "--count", "2", "--interval", "0.5",
                 "--json")  # fmt: skip
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 0 and len(docs) == 2
    assert all(d["exit_code"] == 0 and len(d["nodes"]) == 2 for d in docs)
    assert docs[1]["taken"] > docs[0]["taken"]


def test_a_busy_metrics_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = memfleet("up", *SMALL, "--port", "0", "--metrics", f"127.0.0.1:{port}")
        assert r.returncode == 2
        assert (
            f"--metrics 127.0.0.1:{port}: cannot serve the metrics there: the port is in use"
            in (r.stderr)
        )
        # The proxy itself names the metrics port too, not the memcache port.
        cfg = tmp_path / "p.yaml"
        cfg.write_text("pools: {main: {backends: ['127.0.0.1:1']}}\nroutes: {default: main}\n")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            free = s.getsockname()[1]
        r = memfleet("proxy", "--config", str(cfg), "--listen", f"127.0.0.1:{free}", "--metrics",
                     f"127.0.0.1:{port}", "--log-level", "error")  # fmt: skip
        assert r.returncode == 1, r.stderr
        assert f"--metrics 127.0.0.1:{port}: cannot listen: Address already in use" in r.stderr

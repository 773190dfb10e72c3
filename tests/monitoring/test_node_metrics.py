"""``memfleet node --metrics``: one poller, memcached's stats under memcached_exporter's names,
the node's pool/replica/shard labels, /healthz and /readyz; against a real memcached."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from memfleet.fleet.node.exporter import NodeCollector, NodeLabels, NodeMetricsServer, parse_listen
from memfleet.fleet.node.messages import NodeError
from memfleet.fleet.node.stats_poller import Snapshot, StatsPoller, parse_stats
from tests.helpers import free_port
from tests.integration.fleet_helpers import Cmd, client, memcached_on_port, wait_for

STATS = {
    "pid": "42", "uptime": "12", "version": "1.6.18", "curr_items": "3", "total_items": "5",
    "bytes": "300", "limit_maxbytes": "67108864", "curr_connections": "2",
    "total_connections": "9", "evictions": "7", "get_hits": "10", "get_misses": "4",
    "cmd_set": "6", "cas_hits": "1", "cas_misses": "0", "cas_badval": "1", "cmd_flush": "0",
    "rusage_user": "0.123456",
}  # fmt: skip


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) → value, from an exposition."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    """The one sample named ``name`` whose labels include ``labels``."""
    found = [
        v for (n, lbls), v in samples(text).items()
        if n == name and labels.items() <= dict(lbls).items()
    ]  # fmt: skip
    assert len(found) <= 1, found
    return found[0] if found else None


def _exposition(poller: StatsPoller, labels: NodeLabels) -> str:
    server = NodeMetricsServer(poller, labels, alive=lambda: True)
    status, _, body = server.respond("/metrics")
    assert status == 200
    return body.decode()


def test_stats_become_memcached_exporter_metrics_with_the_node_labels() -> None:
    poller = StatsPoller("127.0.0.1", 1)
    poller.last = poller.last_ok = Snapshot(time.time(), dict(STATS))
    labels = NodeLabels(pool="replica_{replica}", replica="1", shard="2")
    text = _exposition(poller, labels)
    lbl = {"pool": "replica_1", "replica": "1", "shard": "2"}
    assert value(text, "memfleet_node_up", **lbl) == 1
    assert value(text, "memcached_current_items", **lbl) == 3
    assert value(text, "memcached_current_bytes", **lbl) == 300
    assert value(text, "memcached_limit_bytes", **lbl) == 64 * 1024 * 1024
    assert value(text, "memcached_items_evicted_total", **lbl) == 7
    assert value(text, "memcached_current_connections", **lbl) == 2
    assert value(text, "memcached_uptime_seconds", **lbl) == 12
    assert value(text, "memcached_commands_total", command="get", status="hit") == 10
    assert value(text, "memcached_commands_total", command="get", status="miss") == 4
    # cmd_set counts cas requests too; the exporter's convention takes them out.
    assert value(text, "memcached_commands_total", command="set", status="hit") == 4
    assert value(text, "memfleet_node_info", version="0.1.0", memcached_version="1.6.18") == 1
    # Every sample carries the node's labels.
    for (_name, lbls), _v in samples(text).items():
        assert lbl.items() <= dict(lbls).items()


def test_a_node_that_does_not_answer_is_down_and_shows_no_stale_figures() -> None:
    poller = StatsPoller("127.0.0.1", 1)
    poller.last_ok = Snapshot(time.time() - 30, dict(STATS))
    poller.last = Snapshot(time.time(), error="connection refused")
    poller.polls, poller.failures = 5, 1
    text = _exposition(poller, NodeLabels())
    assert value(text, "memfleet_node_up") == 0
    assert value(text, "memcached_up") == 0
    assert value(text, "memcached_current_items") is None
    assert value(text, "memfleet_node_stats_polls_total", result="failed") == 1
    assert 29 < (value(text, "memfleet_node_stats_age_seconds") or 0) < 60
    server = NodeMetricsServer(poller, NodeLabels(), alive=lambda: True)
    status, _, body = server.respond("/readyz")
    assert status == 503 and b"connection refused" in body
    assert server.respond("/healthz")[0] == 200
    assert (
        NodeMetricsServer(poller, NodeLabels(), alive=lambda: False).respond("/healthz")[0] == 503
    )


def test_labels_that_were_not_given_are_left_out() -> None:
    assert NodeLabels().items() == []
    assert NodeLabels(pool="main", shard="0").items() == [("pool", "main"), ("shard", "0")]


def test_parse_stats_and_listen() -> None:
    assert parse_stats(b"STAT pid 1\r\nSTAT version 1.6.18\r\nEND\r\n") == {
        "pid": "1", "version": "1.6.18",
    }  # fmt: skip
    assert parse_listen("0.0.0.0:9151") == ("0.0.0.0", 9151)
    assert parse_listen("[::1]:9151") == ("::1", 9151)
    for bad in ("9151", "host:", "host:port", ":9151", "h:70000"):
        with pytest.raises(NodeError):
            parse_listen(bad)


def test_the_collector_reads_the_poller_not_memcached() -> None:
    # A scrape never talks to memcached: nothing listens on port 1, and a scrape still answers.
    poller = StatsPoller("127.0.0.1", 1)
    NodeCollector(poller, NodeLabels())  # builds without polling
    assert poller.polls == 0
    assert "memfleet_node_up 0.0" in _exposition(poller, NodeLabels())
    assert poller.polls == 0


def test_the_exporter_keeps_the_node_entry_point_light() -> None:
    code = (
        "import sys; import memfleet.fleet.node.exporter, memfleet.fleet.node.supervisor;"
        "print(' '.join(m for m in sys.modules if m.split('.')[0] in ('memfleet', 'pydantic')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy = {"proxy", "observe", "routes", "backends", "config", "protocol", "cli", "kube"}
    bad = [
        m for m in out.stdout.split()
        if m == "pydantic" or (m.count(".") >= 1 and m.split(".")[1] in heavy)
    ]  # fmt: skip
    assert not bad, bad


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:  # not listening yet
        return 0, ""


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Callable[..., tuple[Cmd, int, int]]]:
    started: list[Cmd] = []

    def start(*args: str) -> tuple[Cmd, int, int]:
        port, metrics = free_port(), free_port()
        cmd = Cmd(
            ["node", "--port", str(port), "--metrics", f"127.0.0.1:{metrics}",
             "--metrics-interval", "0.2", *args, "--", "-t", "1"],
            tmp_path / f"node-{port}.log",
        )  # fmt: skip
        started.append(cmd)
        return cmd, port, metrics

    yield start
    for cmd in started:
        cmd.stop()


@pytest.mark.integration
def test_a_real_node_exports_its_stats(
    node: Callable[..., tuple[Cmd, int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The labels as Kubernetes gives them: environment variables (the downward API).
    monkeypatch.setenv("MEMFLEET_REPLICA", "1")
    monkeypatch.setenv("MEMFLEET_SHARD", "2")
    cmd, port, metrics = node("--pool", "replica_{replica}")
    wait_for(lambda: _get(metrics, "/readyz")[0] == 200, "/readyz 200", cmd, timeout=30)
    assert _get(metrics, "/healthz") == (200, "ok\n")
    c = client(port)
    try:
        assert c.set_many({f"k{i}": b"v" for i in range(25)}, noreply=False) == []
        assert c.get("k1") == b"v" and c.get("missing") is None
    finally:
        c.close()
    lbl = {"pool": "replica_1", "replica": "1", "shard": "2"}

    def polled_after_the_requests() -> bool:
        # The poller runs on its own clock: wait for a poll taken after the last request.
        text = _get(metrics, "/metrics")[1]
        return (
            value(text, "memcached_current_items", **lbl) == 25
            and value(text, "memcached_commands_total", command="get", status="miss", **lbl) == 1
        )

    wait_for(polled_after_the_requests, "the requests in the node's metrics", cmd, timeout=10)
    text = _get(metrics, "/metrics")[1]
    assert value(text, "memfleet_node_up", **lbl) == 1
    assert value(text, "memcached_limit_bytes", **lbl) == 64 * 1024 * 1024
    assert value(text, "memcached_commands_total", command="get", status="hit", **lbl) == 1
    assert (value(text, "memcached_uptime_seconds", **lbl) or -1) >= 0
    assert "metrics on http://127.0.0.1:" in cmd.log()


@pytest.mark.integration
def test_a_taken_metrics_port_fails_the_start(
    node: Callable[..., tuple[Cmd, int, int]], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = free_port()
        cmd = Cmd(
            ["node", "--port", str(port), "--metrics", f"127.0.0.1:{taken.getsockname()[1]}"],
            tmp_path / "taken.log",
        )
        try:
            assert cmd.wait(30) == 2
        finally:
            cmd.stop()
    assert "--metrics 127.0.0.1:" in cmd.log() and "starting:" not in cmd.log()


@pytest.mark.integration
def test_a_hung_memcached_is_down_in_the_metrics_while_its_process_runs(
    node: Callable[..., tuple[Cmd, int, int]],
) -> None:
    # What a TCP probe cannot see: the kernel still accepts connections for a stopped process.
    cmd, port, metrics = node("--pool", "main")
    wait_for(lambda: _get(metrics, "/readyz")[0] == 200, "/readyz 200", cmd, timeout=30)
    [pid] = memcached_on_port(port)
    os.kill(pid, signal.SIGSTOP)
    try:

        def down() -> bool:
            return value(_get(metrics, "/metrics")[1], "memfleet_node_up", pool="main") == 0

        wait_for(down, "memfleet_node_up 0 for a stopped memcached", cmd, timeout=15)
        assert _get(metrics, "/readyz")[0] == 503
        assert _get(metrics, "/healthz")[0] == 200  # the process is there: not a restart case
        assert value(_get(metrics, "/metrics")[1], "memcached_current_items") is None
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: _get(metrics, "/readyz")[0] == 200, "/readyz 200 again", cmd, timeout=15)

"""A real Prometheus (Debian's ``prometheus``) on loopback scraping a real proxy over real
``memfleet node`` processes, with memfleet's own alert rules (``for:`` shortened through the
renderer): a node killed with SIGKILL raises MemfleetNodeDown, once; back, the alert clears.
And every metric the rules and the dashboard read exists on a running proxy's or node's
``/metrics``."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from pymemcache.client.base import Client

from memfleet.kube.alert_rules import NODE_JOB, PROXY_JOB, RuleOptions
from memfleet.kube.monitoring import write_rules
from tests.helpers import ProxyProcess, free_port, pool_config
from tests.integration.fleet_helpers import Cmd, wait_for
from tests.monitoring.tools import binary, used_metric_names

pytestmark = pytest.mark.integration

ALERT_WAIT = 30.0  # seconds; scrape and evaluation run every second


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    """Status and body of a GET on 127.0.0.1 (errors as their status)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def sample_names(text: str) -> set[str]:
    """Every sample name of an exposition (``x_total``, ``x_bucket``...)."""
    return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}


@dataclass
class Node:
    """One ``memfleet node --metrics`` process and its two ports."""

    shard: int
    log_dir: Path
    port: int = field(default_factory=free_port)
    metrics: int = field(default_factory=free_port)
    cmd: Cmd | None = None
    starts: int = 0

    def start(self) -> None:
        if self.cmd is not None:
            self.cmd.stop()  # the killed one: reaped, its log closed
        self.starts += 1
        self.cmd = Cmd(
            ["node", "--port", str(self.port), "--metrics", f"127.0.0.1:{self.metrics}",
             "--metrics-interval", "0.5", "--pool", "main", "--shard", str(self.shard),
             "--", "-t", "1"],
            self.log_dir / f"node-{self.shard}-{self.starts}.log",
        )  # fmt: skip
        wait_for(lambda: http_get(self.metrics, "/readyz")[0] == 200, "node ready", self.cmd, 30)

    def kill(self) -> None:
        """SIGKILL the supervisor and its memcached (its process group)."""
        assert self.cmd is not None
        self.cmd.kill_group()

    def stop(self) -> None:
        if self.cmd is not None:
            self.cmd.stop()


class Prometheus:
    """``prometheus`` on 127.0.0.1, a free port and a temporary storage directory."""

    def __init__(self, workdir: Path, rules: Path, nodes: list[Node], proxy_metrics: int) -> None:
        self.port = free_port()
        config = {
            "global": {
                "scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s",
            },
            "rule_files": [str(rules)],
            "scrape_configs": [
                {"job_name": NODE_JOB,
                 "static_configs": [{"targets": [f"127.0.0.1:{n.metrics}" for n in nodes]}]},
                {"job_name": PROXY_JOB,
                 "static_configs": [{"targets": [f"127.0.0.1:{proxy_metrics}"]}]},
            ],
        }  # fmt: skip
        cfg = workdir / "prometheus.yml"
        cfg.write_text(yaml.safe_dump(config))
        self.log_path = workdir / "prometheus.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [binary("prometheus"), f"--config.file={cfg}",
             f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        status, body = http_get(self.port, f"/api/v1/{path}{query}")
        if status != 200:
            return None
        return json.loads(body)["data"]

    def wait(self, check: Any, what: str, timeout: float = ALERT_WAIT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited ({self.proc.returncode}):\n{self.log()}")
            if check():
                return
            time.sleep(0.25)
        raise AssertionError(f"no {what} after {timeout}s; alerts: {self.alerts()}\n{self.log()}")

    def targets_up(self) -> bool:
        data = self.api("targets")
        active = data["activeTargets"] if data else []
        return bool(active) and all(t["health"] == "up" for t in active)

    def alerts(self, name: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        data = self.api("alerts")
        found = data["alerts"] if data else []
        return [
            a for a in found
            if (name is None or a["labels"]["alertname"] == name)
            and (state is None or a["state"] == state)
        ]  # fmt: skip

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@dataclass
class Fleet:
    nodes: list[Node]
    proxy: ProxyProcess
    proxy_metrics: int


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Two real nodes under their supervisors and a proxy over them, with metrics."""
    workdir = tmp_path_factory.mktemp("fleet")
    nodes = [Node(shard, workdir) for shard in range(2)]
    proxy: ProxyProcess | None = None
    try:
        for n in nodes:
            n.start()
        metrics = free_port()
        config = pool_config(*(f"127.0.0.1:{n.port}" for n in nodes), retry_timeout=0.5)
        proxy = ProxyProcess(
            config, workdir, ("--watch-interval", "0", "--metrics", f"127.0.0.1:{metrics}")
        )
        c = Client(("127.0.0.1", proxy.port), timeout=5)
        c.set_many({f"k{i}": b"v" for i in range(50)}, noreply=False)
        c.get_many([f"k{i}" for i in range(60)])
        c.close()
        yield Fleet(nodes, proxy, metrics)
    finally:
        if proxy is not None:
            proxy.stop()
        for n in nodes:
            n.stop()


def test_every_metric_of_the_rules_and_the_dashboard_is_exported(fleet: Fleet) -> None:
    status, proxy_text = http_get(fleet.proxy_metrics, "/metrics")
    assert status == 200
    status, node_text = http_get(fleet.nodes[0].metrics, "/metrics")
    assert status == 200
    exported = sample_names(proxy_text) | sample_names(node_text)
    used = used_metric_names()
    assert len(used) > 20  # the extraction found the rules' and the dashboard's metrics
    missing = sorted(used - exported)
    assert not missing, f"used by the rules or the dashboard, exported by nobody: {missing}"


def test_node_down_fires_once_in_a_real_prometheus_and_clears(fleet: Fleet, tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules", RuleOptions(for_override="1s"))
    prom = Prometheus(tmp_path, rules, fleet.nodes, fleet.proxy_metrics)
    try:
        prom.wait(prom.targets_up, "every target up")
        prom.wait(
            lambda: (
                len((prom.api("query", query="memfleet_node_up == 1") or {}).get("result", [])) == 2
            ),
            "memfleet_node_up == 1 for both nodes",
        )
        assert prom.alerts("MemfleetNodeDown") == []

        victim = fleet.nodes[1]
        victim.kill()
        prom.wait(lambda: prom.alerts("MemfleetNodeDown", "firing"), "MemfleetNodeDown firing")
        firing = prom.alerts("MemfleetNodeDown", "firing")
        assert len(firing) == 1, firing  # one alert for one node
        assert firing[0]["labels"]["instance"] == f"127.0.0.1:{victim.metrics}"
        assert firing[0]["labels"]["severity"] == "warning"

        victim.start()
        prom.wait(lambda: prom.alerts("MemfleetNodeDown") == [], "MemfleetNodeDown cleared")
    finally:
        prom.stop()

"""``memfleet render --monitoring``: metrics Services that list every node and every proxy,
ServiceMonitors that find them, node pods that label their metrics with the pool and shard the
proxy config gives them, the rules, the dashboard for Grafana's sidecar, and metrics ports open
to the monitoring namespace only."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from memfleet.fleet.node.exporter import NodeLabels
from memfleet.kube import RenderOptions, render
from memfleet.kube.configmap import proxy_config
from memfleet.kube.monitoring import DASHBOARD_FILE, GRAFANA_SIDECAR_LABEL, RULES_FILE
from memfleet.kube.node_metrics import NODE_METRICS_PORT
from memfleet.kube.options import PROXY_MODES
from memfleet.kube.proxy import METRICS_PORT
from memfleet.topology.presets import TOPOLOGIES, Topology
from tests.kube.k8s import matches, pod_spec, pods

Obj = dict[str, Any]


def _opts(topology: str = "replicated-sharded", proxy: str | None = None) -> RenderOptions:
    return RenderOptions(
        topology=Topology(topology),
        proxy="daemonset" if proxy == "daemonset" else "sidecar" if proxy else None,
        monitoring=True,
    )


VARIANTS = [_opts(t, m) for t, m in itertools.product(TOPOLOGIES, PROXY_MODES)]
VARIANTS += [
    RenderOptions(topology=Topology("replicated-sharded"), persistence=p, monitoring=True)
    for p in ("memory-file", "restartable")
]
VARIANTS.append(RenderOptions(topology=Topology("sharded"), dev=True, monitoring=True))
IDS = [
    f"{o.topology.name}-{o.proxy_mode}-{o.persistence}{'-dev' if o.dev else ''}" for o in VARIANTS
]


def _by_kind(docs: list[Obj], kind: str) -> list[Obj]:
    return [d for d in docs if d["kind"] == kind]


def _named(docs: list[Obj], kind: str, name: str) -> Obj:
    [doc] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def test_monitoring_is_added_only_when_asked_for() -> None:
    plain = render(RenderOptions()).documents()
    assert not [d for d in plain if d["apiVersion"].startswith("monitoring.coreos.com")]
    assert "monitoring.yaml" not in render(RenderOptions()).files
    docs = render(_opts()).files["monitoring.yaml"]
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        ["Service", "Service", "ServiceMonitor", "ServiceMonitor", "PrometheusRule", "ConfigMap",
         "NetworkPolicy", "NetworkPolicy"]
    )  # fmt: skip


@pytest.mark.parametrize("opts", VARIANTS, ids=IDS)
def test_metrics_services_list_every_node_and_every_proxy(opts: RenderOptions) -> None:
    docs = render(opts).documents()
    node_svc = _named(docs, "Service", "memfleet-node-metrics")
    proxy_svc = _named(docs, "Service", "memfleet-proxy-metrics")
    assert node_svc["spec"]["publishNotReadyAddresses"] is True  # a down node is scraped too
    assert node_svc["spec"]["ports"][0]["port"] == NODE_METRICS_PORT
    assert proxy_svc["spec"]["ports"][0]["port"] == METRICS_PORT
    sel = {"matchLabels": node_svc["spec"]["selector"]}
    proxy_sel = {"matchLabels": proxy_svc["spec"]["selector"]}
    node_pods = 0
    for sts in _by_kind(docs, "StatefulSet"):
        [container] = pod_spec(sts)["containers"]
        assert "--metrics" in container["args"]
        assert {"name": "metrics", "containerPort": NODE_METRICS_PORT, "protocol": "TCP"} in (
            container["ports"]
        )
        for _name, lbls in pods(sts):
            assert matches(sel, lbls) and not matches(proxy_sel, lbls)
            node_pods += 1
    assert node_pods == len([n for n in opts.topology.nodes() if n.role != "local"])
    runs_proxy = _by_kind(docs, "DaemonSet") + _by_kind(docs, "Deployment")
    assert runs_proxy
    for workload in runs_proxy:
        lbls = workload["spec"]["template"]["metadata"]["labels"]
        assert matches(proxy_sel, lbls) and not matches(sel, lbls)


def test_service_monitors_select_their_services() -> None:
    docs = render(_opts()).documents()
    for name in ("memfleet-node-metrics", "memfleet-proxy-metrics"):
        sm = _named(docs, "ServiceMonitor", name)
        svc = _named(docs, "Service", name)
        assert matches(sm["spec"]["selector"], svc["metadata"]["labels"])
        assert sm["spec"]["namespaceSelector"] == {"matchNames": [svc["metadata"]["namespace"]]}
        [endpoint] = sm["spec"]["endpoints"]
        assert endpoint["port"] == svc["spec"]["ports"][0]["name"]
        assert endpoint["path"] == "/metrics"


def _env_value(entry: Obj, pod_labels: dict[str, str]) -> str:
    if "value" in entry:
        return str(entry["value"])
    path = entry["valueFrom"]["fieldRef"]["fieldPath"]
    key = path.removeprefix("metadata.labels['").removesuffix("']")
    return pod_labels.get(key, "")  # the downward API gives "" for a missing label


@pytest.mark.parametrize("opts", VARIANTS, ids=IDS)
def test_each_node_labels_its_metrics_with_its_pool_and_shard(opts: RenderOptions) -> None:
    cfg = proxy_config(opts)
    docs = render(opts).documents()
    for sts in _by_kind(docs, "StatefulSet"):
        [container] = pod_spec(sts)["containers"]
        env = {e["name"]: e for e in container.get("env", []) if e["name"].startswith("MEMFLEET_")}
        for pod, lbls in pods(sts):
            values = {k: _env_value(e, lbls) for k, e in env.items()}
            labels = dict(
                NodeLabels(
                    values.get("MEMFLEET_POOL", ""),
                    values.get("MEMFLEET_REPLICA", ""),
                    values.get("MEMFLEET_SHARD", ""),
                ).items()
            )
            # The pool the proxy config puts this pod's address in.
            [pool] = [
                name for name, p in cfg["pools"].items()
                if any(b.startswith(f"{pod}.") for b in p["backends"])
            ]  # fmt: skip
            assert labels["pool"] == pool, (pod, labels)
            node = next(n for n in opts.topology.nodes() if n.name == pod)
            assert labels["shard"] == str(node.shard), (pod, labels)
            if opts.topology.replica_count > 1:
                assert labels["replica"] == str(node.replica), (pod, labels)


def test_metrics_ports_are_open_to_the_monitoring_namespace_only() -> None:
    for opts in (_opts(proxy="daemonset"), _opts(proxy="sidecar")):
        docs = render(opts).documents()
        policies = _by_kind(docs, "NetworkPolicy")
        targets = [(d, NODE_METRICS_PORT) for d in _by_kind(docs, "StatefulSet")] + [
            (d, METRICS_PORT) for d in _by_kind(docs, "DaemonSet")
        ]
        for workload, port in targets:
            lbls = workload["spec"]["template"]["metadata"]["labels"]
            rules = [
                rule
                for p in policies
                if matches(p["spec"]["podSelector"], lbls)
                for rule in p["spec"].get("ingress", [])
                if any(pt.get("port") == port for pt in rule.get("ports", []))
                or "ports" not in rule
            ]
            assert rules, (workload["metadata"]["name"], port)
            for rule in rules:
                assert rule.get("from") == [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                        }
                    }
                ], (workload["metadata"]["name"], rule)


def test_the_dashboard_is_a_configmap_for_grafanas_sidecar() -> None:
    cm = _named(render(_opts()).documents(), "ConfigMap", "memfleet-dashboard")
    assert cm["metadata"]["labels"][GRAFANA_SIDECAR_LABEL] == "1"
    [(name, text)] = cm["data"].items()
    assert name.endswith(".json")
    board = json.loads(text)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for p in board["panels"]:
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}" and p["targets"]


def test_core_objects_validate_strictly() -> None:
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    from kubernetes_validate.utils import latest_version

    for opts in (_opts(proxy="daemonset"), _opts("replicated", "sidecar")):
        for doc in render(opts).documents():
            if doc["apiVersion"].startswith("monitoring.coreos.com"):
                continue  # custom resources: no schema offline (their shape is tested above)
            for version in ("1.29", latest_version()):
                kv.validate(doc, version, strict=True)


def test_render_writes_the_plain_files_and_the_base_builds(tmp_path: Path) -> None:
    out = tmp_path / "base"
    r = subprocess.run(
        [sys.executable, "-m", "memfleet", "render", "--monitoring", "--out", str(out)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert "monitoring.yaml" in kustomization["resources"]
    # Plain files for a Prometheus and a Grafana set up by hand: not kustomize resources.
    assert yaml.safe_load((out / RULES_FILE).read_text())["groups"]
    assert json.loads((out / DASHBOARD_FILE).read_text())["uid"] == "memfleet"
    assert RULES_FILE not in kustomization["resources"]
    assert "--monitoring" in (out / "monitoring.yaml").read_text().splitlines()[0]
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with kustomize 5) is not installed")
    built = subprocess.run(
        [kubectl, "kustomize", str(out)], capture_output=True, text=True, timeout=60
    )
    assert built.returncode == 0, built.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(built.stdout) if d}
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds

"""Issue 19's defaults: a node-local proxy Service and a DaemonSet that keeps every node served,
cheap probes, dev clusters, and READMEs that say what each choice costs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from memfleet.kube import RenderOptions, render
from memfleet.kube.cache import STARTUP_SECONDS
from memfleet.kube.readme import readme
from memfleet.topology.presets import TOPOLOGIES, Topology
from tests.kube.k8s import all_containers, pod_spec
from tests.kube.variants import variant_id, variants

Obj = dict[str, Any]
VARIANTS = pytest.mark.parametrize("opts", variants(), ids=variant_id)


def _kind(docs: list[Obj], kind: str) -> list[Obj]:
    return [d for d in docs if d["kind"] == kind]


def _port(container: Obj, name: str) -> int:
    (port,) = [p["containerPort"] for p in container.get("ports", []) if p["name"] == name]
    return int(port)


# -- the proxy DaemonSet and its Service -----------------------------------------------------


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_daemonset_rolls_without_leaving_a_node_unserved(topology: str) -> None:
    docs = render(RenderOptions(topology=Topology(topology), proxy="daemonset")).documents()
    (ds,) = _kind(docs, "DaemonSet")
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    # Every NoSchedule/NoExecute taint: the proxy runs wherever an app may run.
    tolerations = pod_spec(ds)["tolerations"]
    assert {"operator": "Exists", "effect": "NoSchedule"} in tolerations
    assert {"operator": "Exists", "effect": "NoExecute"} in tolerations
    # The old proxy leaves the Service before it stops listening.
    (proxy,) = [c for c in all_containers(ds) if c["name"] == "proxy"]
    assert proxy["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    # maxSurge needs two proxies on one node at once: no host ports.
    for c in all_containers(ds):
        assert all("hostPort" not in p for p in c.get("ports", []))
    (svc,) = [s for s in _kind(docs, "Service") if s["metadata"]["name"] == "memfleet-proxy"]
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["internalTrafficPolicy"] == "Local"
    assert "externalTrafficPolicy" not in svc["spec"]
    assert "loadBalancerSourceRanges" not in svc["spec"]


def test_load_balancer_is_the_seeds_with_source_ranges() -> None:
    opts = RenderOptions(
        topology=Topology("sharded"),
        service_type="LoadBalancer",
        lb_source_ranges=("10.0.0.0/8",),
    )
    (svc,) = [s for s in render(opts).documents() if s["kind"] == "Service" and "type" in s["spec"]]
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["externalTrafficPolicy"] == "Local"
    assert svc["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"]
    text = readme(opts)
    assert "Warning: a load balancer" in text and "`10.0.0.0/8`" in text


# -- probes ----------------------------------------------------------------------------------


@VARIANTS
def test_probes_are_cheap(opts: RenderOptions) -> None:
    docs = render(opts).documents()
    assert '"exec"' not in json.dumps(docs), "no probe may fork a process in the pod"
    for sts in _kind(docs, "StatefulSet"):
        (node,) = pod_spec(sts)["containers"]
        assert _port(node, "memcache") == 11211
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert node[probe]["tcpSocket"] == {"port": "memcache"}, probe
        startup = node["startupProbe"]
        # The existing timing: a large warm restart (restartable) gets 30 minutes.
        budget = startup["periodSeconds"] * startup["failureThreshold"]
        assert budget == STARTUP_SECONDS[opts.persistence]
    for w in _kind(docs, "DaemonSet") + _kind(docs, "Deployment"):
        (proxy,) = [c for c in all_containers(w) if c["name"] == "proxy"]
        args = proxy["args"]
        metrics = _port(proxy, "metrics")
        assert args[args.index("--metrics") + 1] == f"0.0.0.0:{metrics}"
        ready = "/readyz" if w["kind"] == "DaemonSet" else "/healthz"
        expect = {
            "startupProbe": "/healthz",
            "readinessProbe": ready,
            "livenessProbe": "/healthz",
        }
        for probe, path in expect.items():
            assert proxy[probe]["httpGet"] == {"path": path, "port": "metrics"}, probe
        for c in all_containers(w):
            if c["name"] == "local-cache":
                # Loopback only: the kubelet could not reach it, and it must not listen wider.
                assert c["args"][c["args"].index("--listen") + 1] == "127.0.0.1"
                assert not any(k.endswith("Probe") for k in c)


@VARIANTS
def test_probes_get_through_the_network_policies(opts: RenderOptions) -> None:
    # Kubelet probes come from the pod's own node, which NetworkPolicy always allows; the
    # proxy's metrics port is open to in-cluster scrapers as well.
    docs = render(opts).documents()
    for np in _kind(docs, "NetworkPolicy"):
        if np["metadata"]["name"] == "memfleet-proxy-ingress":
            ports = {p["port"] for rule in np["spec"]["ingress"] for p in rule["ports"]}
            assert {11211, 9150} <= ports


# -- dev clusters ----------------------------------------------------------------------------


def _required_terms(docs: list[Obj]) -> list[Obj]:
    out = []
    for sts in _kind(docs, "StatefulSet"):
        spec = pod_spec(sts)
        anti = spec.get("affinity", {}).get("podAntiAffinity", {})
        out += anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])
        out += [
            c
            for c in spec.get("topologySpreadConstraints", [])
            if c["whenUnsatisfiable"] == "DoNotSchedule"
        ]
    return out


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_dev_fits_one_node(topology: str) -> None:
    prod = render(RenderOptions(topology=Topology(topology))).documents()
    dev_opts = RenderOptions(topology=Topology(topology), dev=True)
    dev = render(dev_opts).documents()
    assert _required_terms(prod), "production keeps copies apart for real"
    assert _required_terms(dev) == []
    # The production rules become preferences of full weight, not nothing.
    for sts in _kind(dev, "StatefulSet"):
        anti = pod_spec(sts)["affinity"]["podAntiAffinity"]
        (pref,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        assert pref["weight"] == 100
    assert _kind(dev, "PodDisruptionBudget") == []
    assert _kind(prod, "PodDisruptionBudget")
    for d in _kind(dev, "Deployment"):
        assert d["spec"]["replicas"] == 1
    text = readme(dev_opts)
    assert "**dev** base" in text and "never use it in production" in text
    prod_text = readme(RenderOptions(topology=Topology(topology)))
    assert "`Pending` on\npurpose" in prod_text or "`Pending` on purpose" in prod_text
    assert "--dev" in prod_text


# -- the rendered READMEs --------------------------------------------------------------------


def test_readme_states_the_node_local_caveat() -> None:
    text = readme(RenderOptions(topology=Topology("sharded")))
    assert "internalTrafficPolicy: Local" in text
    assert "connections to the Service fail" in text
    assert "maxSurge: 1" in text
    sidecar = readme(RenderOptions(topology=Topology("replicated")))
    assert "internalTrafficPolicy" not in sidecar


def test_readme_says_why_pmem_keeps_a_root_init_container() -> None:
    text = readme(RenderOptions(topology=Topology("sharded"), persistence="memory-file", pmem=True))
    assert "`baseline`" in text and "fsGroupPolicy: File" in text
    for persistence in ("none", "memory-file", "restartable"):
        text = readme(RenderOptions(topology=Topology("sharded"), persistence=persistence))
        assert "meets the `restricted` Pod Security" in text
    text = readme(RenderOptions(topology=Topology("sharded"), persistence="restartable"))
    assert "default storage class" in text

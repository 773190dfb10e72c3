"""PodDisruptionBudgets and NetworkPolicies."""

from __future__ import annotations

from memfleet.kube.cache import CACHE_NAME, CacheSet
from memfleet.kube.common import (
    PART_OF,
    POD_INDEX_LABEL,
    PROXY_LABEL,
    REPLICA_LABEL,
    Obj,
    labels,
    metadata,
    selector,
)
from memfleet.kube.options import PORT, RenderOptions
from memfleet.kube.proxy import METRICS_PORT, PROXY_NAME, proxy_labels


def _pdb(name: str, opts: RenderOptions, match: Obj, component: str) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(name, opts.namespace, labels(CACHE_NAME, component, instance=name)),
        "spec": {"maxUnavailable": 1, "selector": match},
    }


def disruption_budgets(sets: list[CacheSet], opts: RenderOptions) -> list[Obj]:
    """One budget per pod (the eviction API refuses pods matched by two budgets).

    replicated-sharded: a budget per shard across the replicas, so a drain never takes two
    copies of one shard at once while different shards may go in parallel. Otherwise a budget
    per StatefulSet: one node of the pool at a time.

    None with --dev: on a one-node cluster an evicted pod cannot come back until the drain is
    over (its node is cordoned), so any budget, even ``maxUnavailable: 1``, blocks the drain
    after the first eviction.
    """
    if opts.dev:
        return []
    if opts.topology.name == "replicated-sharded":
        out = []
        for shard in range(opts.topology.shards):
            match: Obj = {
                "matchLabels": {
                    "app.kubernetes.io/name": CACHE_NAME,
                    "app.kubernetes.io/component": "cache",
                    "app.kubernetes.io/part-of": PART_OF,
                    POD_INDEX_LABEL: str(shard),
                },
                "matchExpressions": [{"key": REPLICA_LABEL, "operator": "Exists"}],
            }
            out.append(_pdb(f"{CACHE_NAME}-shard-{shard}", opts, match, "cache"))
        return out
    return [_pdb(cs.name, opts, {"matchLabels": selector(cs.labels())}, cs.role) for cs in sets]


def network_policies(opts: RenderOptions) -> list[Obj]:
    """Cache pods take connections only from pods that run a proxy, on 11211 only; the proxy
    DaemonSet takes memcached and metrics traffic from anywhere (its clients are the apps,
    and outside clients with --service-type LoadBalancer, which loadBalancerSourceRanges
    limits) and nothing else.

    Kubelet probes are not affected: traffic from a pod's own node is always allowed,
    whatever the policies say (the NetworkPolicy API guarantees it)."""
    tcp = [{"protocol": "TCP", "port": PORT}]
    cache = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(
            f"{CACHE_NAME}-from-proxies", opts.namespace, labels(CACHE_NAME, "cache")
        ),
        "spec": {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": CACHE_NAME,
                    "app.kubernetes.io/part-of": PART_OF,
                }
            },
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {PROXY_LABEL: "true"}}}], "ports": tcp}
            ],
        },
    }
    out: list[Obj] = [cache]
    if opts.proxy_mode == "daemonset":
        lbls = proxy_labels()
        # With --monitoring the metrics port is opened to the monitoring namespace only
        # (memfleet.kube.monitoring), not to everyone.
        metrics = [] if opts.monitoring else [{"protocol": "TCP", "port": METRICS_PORT}]
        out.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": metadata(f"{PROXY_NAME}-ingress", opts.namespace, lbls),
                "spec": {
                    "podSelector": {"matchLabels": selector(lbls)},
                    "policyTypes": ["Ingress"],
                    # Clients on 11211, Prometheus on the metrics port.
                    "ingress": [{"ports": [*tcp, *metrics]}],
                },
            }
        )
    return out

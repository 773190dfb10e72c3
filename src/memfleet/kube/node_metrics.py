"""The cache nodes' own metrics endpoint (``memfleet node --metrics``) in the manifests: its
port, its argument, and the pool/replica/shard labels each pod gives its metrics.

A StatefulSet's pod template is the same for every pod, so a label that differs per pod (the
shard of a sharded set, the replica of ``replicated``'s one set) comes from the pod's ordinal,
``apps.kubernetes.io/pod-index``, through the downward API; labels that are the same for the
whole set are written out.
"""

from __future__ import annotations

from memfleet.kube.common import POD_INDEX_LABEL, Obj
from memfleet.kube.configmap import statefulset_of
from memfleet.kube.options import RenderOptions

# memfleet proxy serves on 9150 (the port memcached_exporter also defaults to); the node's
# own endpoint takes the next one, so both can share a pod (local-failover's local tier).
NODE_METRICS_PORT = 9151
NODE_METRICS_PORT_NAME = "metrics"


def node_metrics_args() -> list[str]:
    """``memfleet node`` arguments that serve the node's metrics on every interface."""
    return ["--metrics", f"0.0.0.0:{NODE_METRICS_PORT}"]


def _ordinal(pod: str) -> int:
    return int(pod.rsplit("-", 1)[1])


def _from_pod_index() -> Obj:
    return {"fieldRef": {"fieldPath": f"metadata.labels['{POD_INDEX_LABEL}']"}}


def node_label_env(statefulset: str, opts: RenderOptions) -> list[Obj]:
    """``MEMFLEET_POOL`` / ``MEMFLEET_REPLICA`` / ``MEMFLEET_SHARD`` for the pods of one cache
    StatefulSet, each a literal when the whole set shares it, else the pod's ordinal."""
    nodes = [
        n for n in opts.topology.nodes() if n.role != "local" and statefulset_of(n) == statefulset
    ]
    if not nodes:
        return []
    env: list[Obj] = []
    pools = {n.pool for n in nodes}
    if len(pools) == 1:
        env.append({"name": "MEMFLEET_POOL", "value": pools.pop()})
    elif all(n.pool == f"replica_{n.replica}" for n in nodes):
        env.append({"name": "MEMFLEET_POOL", "value": "replica_{replica}"})
    fields = [("MEMFLEET_SHARD", [n.shard for n in nodes])]
    if opts.topology.replica_count > 1:
        fields.insert(0, ("MEMFLEET_REPLICA", [n.replica for n in nodes]))
    for name, values in fields:
        if len(set(values)) == 1:
            env.append({"name": name, "value": str(values[0])})
        elif all(v == _ordinal(n.name) for v, n in zip(values, nodes, strict=True)):
            env.append({"name": name, "valueFrom": _from_pod_index()})
    return env


def node_metrics_port() -> Obj:
    """The container port of the node's metrics endpoint."""
    return {"name": NODE_METRICS_PORT_NAME, "containerPort": NODE_METRICS_PORT, "protocol": "TCP"}

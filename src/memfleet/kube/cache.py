"""Cache StatefulSets and their headless Services.

Membership is the StatefulSet: pod ``<set>-<ordinal>`` under Service ``<set>-headless`` has a
stable DNS name, and the ordinal is the shard. No other membership protocol is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from memfleet.kube.common import (
    HOSTNAME_KEY,
    POD_INDEX_LABEL,
    REPLICA_LABEL,
    ZONE_KEY,
    Obj,
    container_security_context,
    cpu_request,
    labels,
    metadata,
    node_probes,
    pod_security_context,
    selector,
    tmp_volume,
)
from memfleet.kube.configmap import statefulset_of
from memfleet.kube.node_metrics import node_label_env, node_metrics_args, node_metrics_port
from memfleet.kube.options import PORT, RenderOptions
from memfleet.kube.sizing import cache_memory, grace_seconds, stop_timeout_seconds
from memfleet.kube.storage import (
    claim_template,
    data_mount,
    data_volume,
    memory_file_args,
    prepare_container,
)

CACHE_NAME = "memcached"
# How long a node may take to start before the kubelet restarts it. A warm restart maps the
# memory file and rebuilds the hash table from it, which takes a while on a large cache.
STARTUP_SECONDS = {"none": 120, "memory-file": 300, "restartable": 1800}


@dataclass(frozen=True)
class CacheSet:
    """One cache StatefulSet: its name, pod count and role in the topology."""

    name: str
    pods: int
    role: Literal["cache", "gutter"]
    replica: int | None  # set for the per-replica StatefulSets of replicated-sharded

    @property
    def service(self) -> str:
        """The headless Service that gives the pods their DNS names."""
        return f"{self.name}-headless"

    def pod_names(self) -> list[str]:
        """The pods the StatefulSet creates, in ordinal order."""
        return [f"{self.name}-{i}" for i in range(self.pods)]

    def labels(self) -> dict[str, str]:
        """Pod and object labels."""
        extra = {REPLICA_LABEL: str(self.replica)} if self.replica is not None else None
        return labels(CACHE_NAME, self.role, instance=self.name, extra=extra)


def cache_sets(opts: RenderOptions) -> list[CacheSet]:
    """The topology's cache StatefulSets, in the order of its nodes."""
    topo = opts.topology
    counts: dict[str, int] = {}
    roles: dict[str, Literal["cache", "gutter"]] = {}
    replicas: dict[str, int | None] = {}
    for node in topo.nodes():
        if node.role == "local":
            continue  # a sidecar of the proxy's pod, not a StatefulSet
        sts = statefulset_of(node)
        counts[sts] = counts.get(sts, 0) + 1
        roles[sts] = node.role
        replicas[sts] = node.replica if topo.name == "replicated-sharded" else None
    return [CacheSet(n, counts[n], roles[n], replicas[n]) for n in counts]


def headless_service(cs: CacheSet, opts: RenderOptions) -> Obj:
    """The headless Service. It publishes not-ready pods too: the proxy does its own health
    checks, and a name that vanished while a node restarts would fail DNS, not just connect."""
    lbls = cs.labels()
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(cs.service, opts.namespace, lbls),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": selector(lbls),
            "ports": [
                {"name": "memcache", "port": PORT, "targetPort": "memcache", "protocol": "TCP"}
            ],
        },
    }


def _cache_pod_selector() -> dict[str, str]:
    return {
        "app.kubernetes.io/name": CACHE_NAME,
        "app.kubernetes.io/component": "cache",
        "app.kubernetes.io/part-of": "memfleet",
    }


def _anti_affinity(term: Obj, hard: bool) -> Obj:
    """A pod anti-affinity of one term: required, or (soft) preferred with full weight."""
    if hard:
        return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": term}
            ]
        }
    }


def _spread(lbls: dict[str, str], key: str, hard: bool) -> Obj:
    return {
        "maxSkew": 1,
        "topologyKey": key,
        "whenUnsatisfiable": "DoNotSchedule" if hard else "ScheduleAnyway",
        "labelSelector": {"matchLabels": selector(lbls)},
        # Tainted nodes (control plane) would otherwise count as empty domains and block
        # scheduling under DoNotSchedule.
        "nodeTaintsPolicy": "Honor",
    }


def placement(cs: CacheSet, opts: RenderOptions) -> Obj:
    """affinity and topologySpreadConstraints of a cache set's pods.

    In production the rules that keep copies (and shards) apart are required: a pod that
    cannot be placed stays Pending rather than sharing a node with the copy it protects.
    ``--dev`` makes every rule a preference, so a one-node cluster runs the whole topology.
    """
    topo = opts.topology
    lbls = cs.labels()
    key = ZONE_KEY if opts.zone_spread else HOSTNAME_KEY
    hard = not opts.dev
    out: Obj = {}
    if cs.role == "gutter":
        # Soft: a gutter on the node of the main pod it stands in for still helps elsewhere.
        term = {"labelSelector": {"matchLabels": _cache_pod_selector()}, "topologyKey": key}
        out["affinity"] = _anti_affinity(term, hard=False)
        return out
    if topo.name == "replicated-sharded" and cs.replica is not None:
        spread = [_spread(lbls, HOSTNAME_KEY, hard=hard)]
        if opts.zone_spread:
            spread.append(_spread(lbls, ZONE_KEY, hard=False))
        out["topologySpreadConstraints"] = spread
        if topo.placement == "aligned":
            # Shard s of this replica repels shard s of every other replica: the selector
            # picks other replicas' cache pods and matchLabelKeys narrows it to this pod's
            # own ordinal. Where the API server lacks matchLabelKeys (1.29/1.30 without the
            # MatchLabelKeysInPodAffinity gate) the field is dropped and the rule repels all
            # other replicas' pods: stricter, never weaker.
            term = {
                "labelSelector": {
                    "matchLabels": _cache_pod_selector(),
                    "matchExpressions": [
                        {"key": REPLICA_LABEL, "operator": "Exists"},
                        {"key": REPLICA_LABEL, "operator": "NotIn", "values": [str(cs.replica)]},
                    ],
                },
                "matchLabelKeys": [POD_INDEX_LABEL],
                "topologyKey": key,
            }
            out["affinity"] = _anti_affinity(term, hard)
        return out
    # One set holds the whole pool (sharded, replicated, the cluster tier, gutter's main):
    # at most one of its pods per node (per zone for replicated copies with --zone-spread).
    copies = topo.name == "replicated"
    anti_key = ZONE_KEY if copies and opts.zone_spread else HOSTNAME_KEY
    term = {"labelSelector": {"matchLabels": selector(lbls)}, "topologyKey": anti_key}
    out["affinity"] = _anti_affinity(term, hard)
    if opts.zone_spread and not copies:
        out["topologySpreadConstraints"] = [_spread(lbls, ZONE_KEY, hard=False)]
    return out


def cache_args(
    memory_mb: int,
    port: int = PORT,
    listen: str = "0.0.0.0",
    memory_file: list[str] | None = None,
    restartable: bool = False,
) -> list[str]:
    """Arguments of ``memfleet node``: ``memory_file`` (from
    :func:`memfleet.kube.storage.memory_file_args`) places the cache in a memory file and
    says how it is sized; without it the cache is ``--memory`` MB of plain memory."""
    args = ["node", "--listen", listen, "--port", str(port)]
    args += memory_file if memory_file is not None else ["--memory", str(memory_mb)]
    if restartable:
        args += ["--restartable", "--stop-timeout", str(stop_timeout_seconds(memory_mb))]
    return args


def cache_container(opts: RenderOptions, env: list[Obj] | None = None) -> Obj:
    """The memcached container, run by the ``memfleet node`` supervisor, which also serves
    the node's metrics (labelled through ``env``: :func:`node_label_env`)."""
    mem = cache_memory(opts.memory_mb)
    _, tmp_mount = tmp_volume()
    mounts = [tmp_mount]
    if opts.persistent:
        mounts.append(data_mount())
    args = cache_args(
        opts.memory_mb,
        memory_file=memory_file_args(opts) if opts.persistent else None,
        restartable=opts.persistence == "restartable",
    )
    return {
        "name": "memcached",
        "image": opts.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["memfleet"],
        "args": [*args, *node_metrics_args()],
        **({"env": env} if env else {}),
        "ports": [
            {"name": "memcache", "containerPort": PORT, "protocol": "TCP"},
            node_metrics_port(),
        ],
        # No CPU limit: CFS throttling shows up as tail latency on a cache.
        "resources": {
            "requests": {"cpu": cpu_request(opts, "250m"), "memory": mem.request},
            "limits": {"memory": mem.limit},
        },
        **node_probes(STARTUP_SECONDS[opts.persistence]),
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    }


def statefulset(cs: CacheSet, opts: RenderOptions) -> Obj:
    """The cache StatefulSet."""
    lbls = cs.labels()
    tmp, _ = tmp_volume()
    volumes: list[Obj] = [tmp]
    data = data_volume(opts)
    if data is not None:
        volumes.append(data)
    pod: Obj = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "terminationGracePeriodSeconds": (
            grace_seconds(opts.memory_mb) if opts.persistence == "restartable" else 30
        ),
        **placement(cs, opts),
    }
    prepare = prepare_container(opts)
    if prepare is not None:
        pod["initContainers"] = [prepare]
    pod["containers"] = [cache_container(opts, node_label_env(cs.name, opts))]
    pod["volumes"] = volumes
    spec: Obj = {
        "serviceName": cs.service,
        "replicas": cs.pods,
        # Shards do not depend on each other: start them all at once. Updates still roll one
        # pod at a time, each waiting for the previous one to be ready.
        "podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "RollingUpdate"},
        "minReadySeconds": 10,
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector(lbls)},
        "template": {"metadata": {"labels": lbls}, "spec": pod},
    }
    claim = claim_template(opts, lbls)
    if claim is not None:
        spec["volumeClaimTemplates"] = [claim]
        # A cache's volume has no value without its pod: delete it with the set or the shard.
        spec["persistentVolumeClaimRetentionPolicy"] = {
            "whenDeleted": "Delete",
            "whenScaled": "Delete",
        }
    meta = metadata(cs.name, opts.namespace, lbls)
    meta["annotations"] = {"memfleet.io/shard-label": POD_INDEX_LABEL}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta, "spec": spec}

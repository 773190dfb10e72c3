"""Cache StatefulSets and their headless Services.

Membership is the StatefulSet: pod ``<set>-<ordinal>`` under Service ``<set>-headless`` has a
stable DNS name, and the ordinal is the shard. No other membership protocol is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from memfleet.kube.common import (
    DATA_DIR,
    HOSTNAME_KEY,
    MEMORY_FILE,
    POD_INDEX_LABEL,
    REPLICA_LABEL,
    ZONE_KEY,
    Obj,
    container_security_context,
    labels,
    metadata,
    pod_security_context,
    probes,
    root_prepare_security_context,
    selector,
    tmp_volume,
)
from memfleet.kube.configmap import statefulset_of
from memfleet.kube.options import PORT, RenderOptions
from memfleet.kube.sizing import (
    cache_memory,
    grace_seconds,
    stop_timeout_seconds,
    volume_size_mi,
)

CACHE_NAME = "memcached"
PREPARE_ARGS = (
    *("node", "prepare", "--memory-file", MEMORY_FILE),
    *("--size-from-volume", "--owner", "memcache"),
)
# prepare keeps a valid state file only where the next start is meant to be warm.
PREPARE_STATE = {"memory-file": "--not-restartable", "restartable": "--restartable"}
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
    """affinity and topologySpreadConstraints of a cache set's pods."""
    topo = opts.topology
    lbls = cs.labels()
    key = ZONE_KEY if opts.zone_spread else HOSTNAME_KEY
    out: Obj = {}
    if cs.role == "gutter":
        # Soft: a gutter on the node of the main pod it stands in for still helps elsewhere.
        term = {"labelSelector": {"matchLabels": _cache_pod_selector()}, "topologyKey": key}
        out["affinity"] = {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "podAffinityTerm": term}
                ]
            }
        }
        return out
    if topo.name == "replicated-sharded" and cs.replica is not None:
        spread = [_spread(lbls, HOSTNAME_KEY, hard=True)]
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
            out["affinity"] = {
                "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
            }
        return out
    # One set holds the whole pool (sharded, replicated, the cluster tier, gutter's main):
    # at most one of its pods per node (per zone for replicated copies with --zone-spread).
    copies = topo.name == "replicated"
    anti_key = ZONE_KEY if copies and opts.zone_spread else HOSTNAME_KEY
    term = {"labelSelector": {"matchLabels": selector(lbls)}, "topologyKey": anti_key}
    out["affinity"] = {
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    }
    if opts.zone_spread and not copies:
        out["topologySpreadConstraints"] = [_spread(lbls, ZONE_KEY, hard=False)]
    return out


def cache_args(
    memory_mb: int,
    persistence: str = "none",
    port: int = PORT,
    listen: str = "0.0.0.0",
) -> list[str]:
    """Arguments of ``memfleet node``. With a memory file the volume is the one source of the
    cache size (``--size-from-volume``), so an overlay that resizes the volume resizes the
    cache, as in the PMEM-CSI memcached example."""
    args = ["node", "--listen", listen, "--port", str(port)]
    if persistence != "none":
        args += ["--memory-file", MEMORY_FILE, "--size-from-volume"]
    else:
        args += ["--memory", str(memory_mb)]
    if persistence == "restartable":
        args += ["--restartable", "--stop-timeout", str(stop_timeout_seconds(memory_mb))]
    return args


def prepare_container(opts: RenderOptions) -> Obj:
    """Init container: size, preallocate and check the memory file, owned by memcache."""
    return {
        "name": "prepare",
        "image": opts.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["memfleet"],
        "args": [*PREPARE_ARGS, PREPARE_STATE[opts.persistence]],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": root_prepare_security_context(),
        "volumeMounts": [{"name": "data", "mountPath": DATA_DIR}],
    }


def cache_container(opts: RenderOptions) -> Obj:
    """The memcached container, run by the ``memfleet node`` supervisor."""
    mem = cache_memory(opts.memory_mb)
    _, tmp_mount = tmp_volume()
    mounts = [tmp_mount]
    if opts.persistent:
        mounts.append({"name": "data", "mountPath": DATA_DIR})
    return {
        "name": "memcached",
        "image": opts.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["memfleet"],
        "args": cache_args(opts.memory_mb, opts.persistence),
        "ports": [{"name": "memcache", "containerPort": PORT, "protocol": "TCP"}],
        # No CPU limit: CFS throttling shows up as tail latency on a cache.
        "resources": {
            "requests": {"cpu": "250m", "memory": mem.request},
            "limits": {"memory": mem.limit},
        },
        **probes(PORT, STARTUP_SECONDS[opts.persistence]),
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    }


def _data_size(opts: RenderOptions) -> str:
    return f"{opts.volume_size_mi or volume_size_mi(opts.memory_mb)}Mi"


def statefulset(cs: CacheSet, opts: RenderOptions) -> Obj:
    """The cache StatefulSet."""
    lbls = cs.labels()
    tmp, _ = tmp_volume()
    volumes: list[Obj] = [tmp]
    if opts.persistence == "memory-file":
        volumes.append(
            {
                "name": "data",
                "csi": {"driver": opts.csi_driver, "volumeAttributes": {"size": _data_size(opts)}},
            }
        )
    pod: Obj = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "terminationGracePeriodSeconds": (
            grace_seconds(opts.memory_mb) if opts.persistence == "restartable" else 30
        ),
        **placement(cs, opts),
    }
    if opts.persistent:
        pod["initContainers"] = [prepare_container(opts)]
    pod["containers"] = [cache_container(opts)]
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
    if opts.persistence == "restartable":
        claim: Obj = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": _data_size(opts)}},
        }
        if opts.storage_class:
            claim["storageClassName"] = opts.storage_class
        spec["volumeClaimTemplates"] = [
            {"metadata": {"name": "data", "labels": lbls}, "spec": claim}
        ]
        # A cache's volume has no value without its pod: delete it with the set or the shard.
        spec["persistentVolumeClaimRetentionPolicy"] = {
            "whenDeleted": "Delete",
            "whenScaled": "Delete",
        }
    meta = metadata(cs.name, opts.namespace, lbls)
    meta["annotations"] = {"memfleet.io/shard-label": POD_INDEX_LABEL}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta, "spec": spec}

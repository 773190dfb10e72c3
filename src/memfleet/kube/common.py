"""Pieces every object shares: labels, metadata, security contexts, probes, resources."""

from __future__ import annotations

from typing import Any

from memfleet.kube.options import RenderOptions

Obj = dict[str, Any]

# The image's `memcache` user (see the Dockerfile); fixed so that runAsUser, fsGroup and the
# files on a persistent volume agree across image versions.
UID = 11211
PART_OF = "memfleet"
REPLICA_LABEL = "memfleet.io/replica"
SHARD_LABEL = "memfleet.io/shard"
# Set on every pod that runs a proxy (the DaemonSet, or an app with the proxy sidecar): the
# cache pods' NetworkPolicy admits exactly these pods.
PROXY_LABEL = "memfleet.io/proxy"
# A StatefulSet's template is the same for all its pods, so a per-pod shard label cannot come
# from it; the StatefulSet controller labels each pod with its ordinal (beta and on by default
# since Kubernetes 1.28, GA in 1.32), and the ordinal is the shard.
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
HOSTNAME_KEY = "kubernetes.io/hostname"
ZONE_KEY = "topology.kubernetes.io/zone"
CONFIG_DIR = "/etc/memfleet"
CONFIG_FILE = f"{CONFIG_DIR}/proxy.yaml"
CONFIGMAP_NAME = "memfleet-proxy"
DATA_DIR = "/data"
MEMORY_FILE = f"{DATA_DIR}/memory-file"


def labels(
    name: str,
    component: str,
    instance: str | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The recommended app.kubernetes.io labels plus memfleet's own (values are strings)."""
    out = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance or name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "memfleet",
    }
    out.update(extra or {})
    return out


def selector(lbls: dict[str, str]) -> dict[str, str]:
    """The immutable subset of labels a workload selects its pods by."""
    keys = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component")
    return {k: lbls[k] for k in keys}


def metadata(name: str, namespace: str, lbls: dict[str, str] | None = None) -> Obj:
    """ObjectMeta with a name, namespace and labels."""
    meta: Obj = {"name": name, "namespace": namespace}
    if lbls:
        meta["labels"] = dict(lbls)
    return meta


def pod_security_context() -> Obj:
    """Pod-level: never root, the image's memcache UID, volumes group-owned by it."""
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "fsGroup": UID,
        # Only chown a large persistent volume when its root is wrong, not on every start.
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> Obj:
    """Container-level: read-only root, no capabilities, no privilege escalation."""
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def root_prepare_security_context() -> Obj:
    """For ``memfleet node prepare`` only: a CSI volume's root belongs to root and fsGroup is
    not honoured by every driver, so the file is created and handed to memcache as root, with
    just the capabilities chown and preallocation need."""
    return {
        "runAsNonRoot": False,
        "runAsUser": 0,
        "runAsGroup": 0,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"], "add": ["CHOWN", "DAC_OVERRIDE", "FOWNER"]},
    }


def node_probes(startup_seconds: int, port: str = "memcache") -> Obj:
    """startup/readiness/liveness of a memcached node: a TCP connect to its named port.

    Cheap (no process is forked in the pod) and enough for what the kubelet decides: memcached
    opens its port only once it has started, a warm restart included (it maps the memory
    file and rebuilds the hash table first), so the startup probe bounds a start and
    ``startup_seconds`` is how long one may take. Liveness and readiness only begin once it
    passed, so a slow warm restart is never killed. A connect cannot tell a hung (stopped)
    memcached from a healthy one; the proxies' own health checks (``version`` every
    ``retry_timeout``) take such a node out of service, which is what matters for traffic.
    """
    check: Obj = {"tcpSocket": {"port": port}, "timeoutSeconds": 2}
    return {
        "startupProbe": {
            **check,
            "periodSeconds": 5,
            "failureThreshold": max(1, startup_seconds // 5),
        },
        "readinessProbe": {**check, "periodSeconds": 10, "failureThreshold": 2},
        "livenessProbe": {**check, "periodSeconds": 20, "failureThreshold": 3},
    }


def cpu_request(opts: RenderOptions, production: str) -> str:
    """A container's CPU request: ``production``, or a token 25m with --dev, so that a whole
    topology fits a laptop's one-node cluster next to the control plane."""
    return "25m" if opts.dev else production


def tmp_volume() -> tuple[Obj, Obj]:
    """A small writable /tmp (the root file system is read-only): volume and mount."""
    return (
        {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
        {"name": "tmp", "mountPath": "/tmp"},
    )

"""The operator's notes of a rendered README: how clients reach the proxy (and what
``internalTrafficPolicy: Local`` costs), where the cache lives, which Pod Security level the
pods meet and why, and where the base is meant to run (``--dev`` or production)."""

from __future__ import annotations

from memfleet.kube.kustomize import images_entry
from memfleet.kube.options import RenderOptions
from memfleet.kube.render import pod_security_level

PY_VERSION_CHECK = (
    "python3 -c \"import socket; s = socket.create_connection(('127.0.0.1', 11211)); "
    "s.sendall(b'version\\r\\n'); print(s.recv(64))\""
)


def proxy_notes(opts: RenderOptions) -> tuple[str, str]:
    """The README's paragraph on the proxy, and the commands that reach it once applied."""
    ns = opts.namespace
    if opts.proxy_mode == "sidecar":
        text = (
            "The proxy runs as a native sidecar (an init container with `restartPolicy: "
            "Always`) of the example Deployment `memfleet-app`, listening on the pod's "
            "127.0.0.1:11211. Replace its `app` container with your application and keep the "
            'label `memfleet.io/proxy: "true"` (the cache pods\' NetworkPolicy admits only '
            "such pods). The sidecar's readiness is `/healthz` (the proxy serves), never the "
            "cache's health: a degraded cache must not take your app out of its Service."
        )
        connect = f"kubectl -n {ns} exec deploy/memfleet-app -c app -- {PY_VERSION_CHECK}"
        return text, connect
    address = f"memfleet-proxy.{ns}.svc.cluster.local:11211"
    text = (
        "The proxy runs as a DaemonSet (`memfleet-proxy`, one per node) behind the "
        f"`{opts.service_type}` Service `memfleet-proxy`: apps in the cluster point their "
        f"memcached client at `{address}`.\n\n"
        "**Node-local traffic.** The Service has `internalTrafficPolicy: Local`: a client "
        "always reaches the proxy on its own node (no second network hop). The price: on a "
        "node without a *ready* proxy, connections to the Service fail; kube-proxy does not "
        "send them to another node. So the DaemonSet rolls with `maxSurge: 1, "
        "maxUnavailable: 0` (the new proxy is ready before the old one stops), tolerates "
        "every `NoSchedule` and `NoExecute` taint (it runs wherever apps may run; narrow its "
        "`tolerations` in an overlay if some nodes never run apps), and is ready "
        "(`/readyz`) while it can serve, not only while every cache node is up. If a node "
        "cannot fit a proxy pod, apps on that node cannot reach the cache: give the proxy a "
        "`priorityClassName` in an overlay where nodes run full."
    )
    connect = (
        f"kubectl -n {ns} port-forward daemonset/memfleet-proxy 11211:11211 & sleep 2\n"
        f"{PY_VERSION_CHECK}"
    )
    if opts.service_type == "LoadBalancer":
        ranges = ", ".join(f"`{r}`" for r in opts.lb_source_ranges)
        text += (
            "\n\n**Warning: a load balancer.** This base was rendered with `--service-type "
            "LoadBalancer`: on most clouds that is an address reachable from outside the "
            "cluster, in front of a cache that has no authentication unless the proxy config "
            f"sets `auth:`. Only {ranges} may connect (`loadBalancerSourceRanges`, enforced "
            "by the cloud's load balancer or by kube-proxy); keep those ranges as narrow as "
            "your clients, and prefer the default ClusterIP Service for in-cluster apps. "
            "`externalTrafficPolicy: Local` keeps each outside connection on the node it "
            "reached."
        )
        connect += (
            f"\nkubectl -n {ns} get service memfleet-proxy   # EXTERNAL-IP:11211, from {ranges}"
        )
    return text, connect


def persistence_notes(opts: RenderOptions) -> str:
    """Where the cache lives and what survives a restart."""
    if opts.persistence == "none":
        return "The cache is in memory only: a restarted pod starts cold."
    if opts.persistence == "memory-file" and opts.pmem:
        return (
            "The cache lives in a memory file on a CSI inline volume "
            f"(`{opts.inline_csi_driver}`, PMEM-CSI's layout), prepared by an init container; "
            "the node sizes its cache from the volume. It is lost with the pod."
        )
    if opts.persistence == "memory-file":
        return (
            "The cache lives in a memory file on an in-memory `emptyDir` (tmpfs, `sizeLimit` "
            "from the sizing rule). Its pages count against the pod's memory limit, which "
            "the sizing rule covers; it is lost with the pod. Render with `--pmem` for "
            "PMEM-CSI's inline volume instead."
        )
    storage = opts.claim_storage_class
    where = (
        f"storage class `{storage}`"
        if storage
        else "the cluster's default storage class (no `storageClassName`)"
    )
    sizing = (
        f"the node is told `--memory {opts.memory_mb}` (a provisioner that rounds the claim up "
        "does not grow the cache past its memory limit) and the claim leaves room for the "
        "file system's own blocks"
    )
    return (
        f"The cache lives in a memory file on a PersistentVolumeClaim on {where}; {sizing}. "
        "A graceful stop writes memcached's state file and the next start on the same claim "
        "is warm. The claims are deleted with the StatefulSet."
    )


def security_notes(opts: RenderOptions) -> str:
    """The Pod Security level the namespace enforces and why."""
    if pod_security_level(opts) == "restricted":
        return (
            "Every pod, init containers included, meets the `restricted` Pod Security "
            "Standard, and the namespace enforces it: non-root (UID 11211), no privilege "
            "escalation, all capabilities dropped, seccomp `RuntimeDefault`, read-only root "
            "file systems, only emptyDir/ConfigMap/claim volumes. Volumes are handed to the "
            "memcache group by the kubelet (`fsGroup`, `fsGroupChangePolicy: "
            "OnRootMismatch`), never by a root `chown`."
        )
    return (
        "The namespace enforces `baseline` (and warns about `restricted`): the init "
        "container `prepare` runs as root with only CHOWN, DAC_OVERRIDE and FOWNER to hand "
        "the memory file to memcache. A CSI inline volume gets `fsGroup` only when its "
        "driver declares `fsGroupPolicy: File`, which PMEM-CSI does not promise, so the "
        "volume's root may belong to root. Everything else in the pod runs as memcache with "
        "every capability dropped. Without `--pmem` the memory file lives in an emptyDir "
        "and the whole namespace meets `restricted`."
    )


def placement_notes(opts: RenderOptions) -> str:
    """Where this base is meant to run: production (hard rules) or a dev cluster."""
    if opts.dev:
        return (
            "This is a **dev** base (`--dev`), for kind, minikube or any one-node cluster: "
            "the anti-affinity and spread rules are preferences, so every pod fits on one "
            "node; CPU requests are token (25m); there are no PodDisruptionBudgets (on one "
            "node any budget blocks a drain after the first eviction); the example app has "
            "one replica. Copies of a shard may share a node here, so a node failure can "
            "lose keys the topology promises to keep: never use it in production."
        )
    return (
        "This is a **production** base: copies of a shard (or the shards of one pool) must "
        "land on different nodes, and PodDisruptionBudgets let a drain take one at a time. "
        "On a cluster with too few nodes the pods that cannot be placed stay `Pending` on "
        "purpose rather than sharing a node with the copy they protect. For kind, minikube "
        "or another one-node cluster, render with `--dev`."
    )


def image_notes(opts: RenderOptions) -> str:
    """How to point the base at another image."""
    entry = images_entry(opts.image)
    return (
        f"Every container runs `{opts.image}`, one setting: the `images:` entry of "
        f"`kustomization.yaml` (name `{entry['name']}`). Point it at your registry with "
        f"`kustomize edit set image {entry['name']}=REGISTRY/memfleet:TAG` in this directory, "
        "an `images:` entry in an overlay, or `memfleet render --image`. Build it from the "
        'repository\'s Dockerfile (the top-level README, "Deploy to Kubernetes").'
    )

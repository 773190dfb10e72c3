"""The proxy: a DaemonSet behind a node-local ClusterIP Service, or a native sidecar of an app.

A pod that runs a proxy carries ``memfleet.io/proxy: "true"``; the cache pods' NetworkPolicy
admits exactly those pods.

The DaemonSet's Service has ``internalTrafficPolicy: Local``: an app reaches the proxy on its
own node (no second hop). kube-proxy then drops traffic on a node whose proxy is not ready
rather than sending it elsewhere, so the DaemonSet surges a new pod before it stops the old
one, tolerates every taint the apps might tolerate, and is ready as long as it can serve
(``/readyz``), not only when every cache node is up.
"""

from __future__ import annotations

from memfleet.kube.cache import cache_args
from memfleet.kube.common import (
    CONFIG_DIR,
    CONFIG_FILE,
    CONFIGMAP_NAME,
    PROXY_LABEL,
    Obj,
    container_security_context,
    cpu_request,
    labels,
    metadata,
    pod_security_context,
    selector,
    tmp_volume,
)
from memfleet.kube.configmap import proxy_listen
from memfleet.kube.options import LOCAL_PORT, PORT, RenderOptions
from memfleet.kube.sizing import PROXY_MEMORY_LIMIT_MIB, cache_memory

PROXY_NAME = "memfleet-proxy"
APP_NAME = "memfleet-app"
# The zone name of the local tier in local-failover's zfailover route.
LOCAL_ZONE = "local"
# Prometheus metrics, /healthz and /readyz of the proxy (`memfleet proxy --metrics`).
METRICS_PORT = 9150
METRICS_PATH = "/metrics"
# Taints the DaemonSet tolerates: all of them, as node-level agents (kube-proxy, node-local
# DNS) do, because an app pod on a tainted node it tolerates still needs its node's proxy.
# Restrict them in an overlay if some nodes never run apps.
PROXY_TOLERATIONS: tuple[Obj, ...] = (
    {"operator": "Exists", "effect": "NoSchedule"},
    {"operator": "Exists", "effect": "NoExecute"},
)


# A stopping DaemonSet proxy keeps serving this long after SIGTERM is due, so that kube-proxy
# has taken it out of the Service (the surged new proxy on the node is already ready) before
# it closes its listener. A `sleep` hook needs no binary in the image (beta and on by
# default since Kubernetes 1.30; 1.29 without the gate drops the field: no delay, no harm).
PRESTOP_SECONDS = 5


def proxy_probes(sidecar: bool) -> Obj:
    """The proxy's probes, HTTP on its metrics port (no process forked in the pod).

    Startup and liveness ask ``/healthz`` (the process serves). Readiness asks ``/readyz``
    for the DaemonSet: ready means the proxy can serve, so kube-proxy sends its node's apps
    to it. A sidecar's readiness is its pod's: an app must stay in its own Service while the
    cache is degraded (a cache is optional; misses go to the database), so a sidecar's
    readiness asks ``/healthz`` too.
    """
    health: Obj = {"httpGet": {"path": "/healthz", "port": "metrics"}, "timeoutSeconds": 2}
    ready: Obj = {
        "httpGet": {"path": "/healthz" if sidecar else "/readyz", "port": "metrics"},
        "timeoutSeconds": 2,
    }
    return {
        # 60 s to load the config and listen; a native sidecar's startup probe also holds
        # back the app container until the proxy is up.
        "startupProbe": {**health, "periodSeconds": 2, "failureThreshold": 30},
        "readinessProbe": {**ready, "periodSeconds": 5, "failureThreshold": 2},
        "livenessProbe": {**health, "periodSeconds": 10, "failureThreshold": 3},
    }


def scrape_annotations() -> dict[str, str]:
    """The annotations Prometheus' common pod discovery config keys on."""
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(METRICS_PORT),
        "prometheus.io/path": METRICS_PATH,
    }


def proxy_labels() -> dict[str, str]:
    """Labels of the proxy DaemonSet's pods."""
    return labels(PROXY_NAME, "proxy", extra={PROXY_LABEL: "true"})


def app_labels() -> dict[str, str]:
    """Labels of the example app's pods (they run the proxy as a sidecar)."""
    return labels(APP_NAME, "app", extra={PROXY_LABEL: "true"})


def proxy_container(opts: RenderOptions, sidecar: bool) -> Obj:
    """The ``memfleet proxy`` container; with ``sidecar`` a native sidecar (an init
    container that keeps running: it starts before the app and stops after it)."""
    _, tmp_mount = tmp_volume()
    c: Obj = {
        "name": "proxy",
        "image": opts.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["memfleet"],
        # --listen stays last: tools (and tests) read the listen address from there.
        "args": [
            *("proxy", "--config", CONFIG_FILE),
            *("--metrics", f"0.0.0.0:{METRICS_PORT}"),
            *("--listen", proxy_listen(opts)),
        ],
    }
    if sidecar:
        c["restartPolicy"] = "Always"
    else:
        c["lifecycle"] = {"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}}
    if opts.topology.name == "local-failover":
        # The pod's own zone is the local tier: reads try the local sidecar cache first.
        c["env"] = [{"name": "MEMFLEET_ZONE", "value": LOCAL_ZONE}]
    metrics_port = {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}
    if not sidecar:
        c["ports"] = [{"name": "memcache", "containerPort": PORT, "protocol": "TCP"}, metrics_port]
    else:
        c["ports"] = [metrics_port]
    c.update(
        {
            "resources": {
                "requests": {"cpu": cpu_request(opts, "100m"), "memory": "64Mi"},
                # The proxy config's limits.max_memory is derived from it (kube.sizing).
                "limits": {"memory": f"{PROXY_MEMORY_LIMIT_MIB}Mi"},
            },
            **proxy_probes(sidecar),
            "securityContext": container_security_context(),
            # The whole directory, never subPath: a ConfigMap update swaps the directory's
            # symlink, which the proxy watches and reloads; a subPath mount never changes.
            "volumeMounts": [
                {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                tmp_mount,
            ],
        }
    )
    return c


def local_cache_container(opts: RenderOptions, sidecar: bool) -> Obj:
    """local-failover's local tier: a small memcached on the pod's loopback.

    No probes: the kubelet probes the pod's IP and cannot reach a loopback-only listener,
    and listening on the pod's IP would open an unauthenticated cache to the cluster. The
    supervisor exits when its memcached does (the kubelet restarts the container), and the
    proxy's health checks send reads to the cluster tier while the local tier is out."""
    mem = cache_memory(opts.local_memory_mb)
    _, tmp_mount = tmp_volume()
    c: Obj = {
        "name": "local-cache",
        "image": opts.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["memfleet"],
        "args": cache_args(opts.local_memory_mb, port=LOCAL_PORT, listen="127.0.0.1"),
    }
    if sidecar:
        c["restartPolicy"] = "Always"
    c.update(
        {
            "resources": {
                "requests": {"cpu": cpu_request(opts, "50m"), "memory": mem.request},
                "limits": {"memory": mem.limit},
            },
            "securityContext": container_security_context(),
            "volumeMounts": [tmp_mount],
        }
    )
    return c


def _pod_spec(opts: RenderOptions) -> Obj:
    tmp, _ = tmp_volume()
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "volumes": [{"name": "config", "configMap": {"name": CONFIGMAP_NAME}}, tmp],
    }


def daemonset(opts: RenderOptions) -> Obj:
    """One proxy per node, reached through the node-local Service."""
    lbls = proxy_labels()
    containers = [proxy_container(opts, sidecar=False)]
    if opts.topology.name == "local-failover":
        containers.insert(0, local_cache_container(opts, sidecar=False))
    pod = {**_pod_spec(opts), "tolerations": [dict(t) for t in PROXY_TOLERATIONS]}
    pod["containers"] = containers
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": metadata(PROXY_NAME, opts.namespace, lbls),
        "spec": {
            "selector": {"matchLabels": selector(lbls)},
            # The new pod is ready on the node before the old one stops: with
            # internalTrafficPolicy Local a node never lacks a ready proxy during a rollout.
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": lbls, "annotations": scrape_annotations()},
                "spec": pod,
            },
        },
    }


def service(opts: RenderOptions) -> Obj:
    """The Service on 11211 in front of the proxy DaemonSet: ClusterIP by default, the
    seed's LoadBalancer with ``--service-type LoadBalancer`` (source ranges required)."""
    lbls = proxy_labels()
    spec: Obj = {"type": opts.service_type}
    if opts.service_type == "LoadBalancer":
        # Every node runs a proxy: keep an outside client's connection on the node it
        # reached (no second hop, client address preserved); nodes whose proxy is not ready
        # fail the load balancer's health check and get no traffic.
        spec["externalTrafficPolicy"] = "Local"
        spec["loadBalancerSourceRanges"] = list(opts.lb_source_ranges)
    # In-cluster clients reach the proxy on their own node.
    spec["internalTrafficPolicy"] = "Local"
    spec["selector"] = selector(lbls)
    spec["ports"] = [
        {"name": "memcache", "port": PORT, "targetPort": "memcache", "protocol": "TCP"}
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(PROXY_NAME, opts.namespace, lbls),
        "spec": spec,
    }


def app_deployment(opts: RenderOptions) -> Obj:
    """An example app with the proxy as a native sidecar on 127.0.0.1:11211 (and, for
    local-failover, the local cache as a second sidecar). Replace the ``app`` container."""
    lbls = app_labels()
    init = [proxy_container(opts, sidecar=True)]
    if opts.topology.name == "local-failover":
        init.insert(0, local_cache_container(opts, sidecar=True))
    _, tmp_mount = tmp_volume()
    app: Obj = {
        "name": "app",
        "image": opts.image,
        "imagePullPolicy": "IfNotPresent",
        # A stand-in for the application: it would talk memcached to 127.0.0.1:11211.
        "command": ["sleep", "infinity"],
        "env": [{"name": "MEMCACHED_SERVERS", "value": f"127.0.0.1:{PORT}"}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": container_security_context(),
        "volumeMounts": [tmp_mount],
    }
    pod = {**_pod_spec(opts), "initContainers": init, "containers": [app]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(APP_NAME, opts.namespace, lbls),
        "spec": {
            "replicas": opts.replicas_of_app,
            "selector": {"matchLabels": selector(lbls)},
            "template": {
                "metadata": {"labels": lbls, "annotations": scrape_annotations()},
                "spec": pod,
            },
        },
    }

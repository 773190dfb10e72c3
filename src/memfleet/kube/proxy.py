"""The proxy: a DaemonSet behind a LoadBalancer Service, or a native sidecar of an app.

A pod that runs a proxy carries ``memfleet.io/proxy: "true"``; the cache pods' NetworkPolicy
admits exactly those pods.
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
    labels,
    metadata,
    pod_security_context,
    probes,
    selector,
    tmp_volume,
)
from memfleet.kube.configmap import proxy_listen
from memfleet.kube.options import LOCAL_PORT, PORT, RenderOptions
from memfleet.kube.sizing import cache_memory

PROXY_NAME = "memfleet-proxy"
APP_NAME = "memfleet-app"
# The zone name of the local tier in local-failover's zfailover route.
LOCAL_ZONE = "local"
# Prometheus metrics, /healthz and /readyz of the proxy (`memfleet proxy --metrics`).
METRICS_PORT = 9150
METRICS_PATH = "/metrics"


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
                "requests": {"cpu": "100m", "memory": "64Mi"},
                "limits": {"memory": "256Mi"},
            },
            **probes(PORT, 60),
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
    """local-failover's local tier: a small memcached on the pod's loopback."""
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
                "requests": {"cpu": "50m", "memory": mem.request},
                "limits": {"memory": mem.limit},
            },
            **probes(LOCAL_PORT, 60),
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
    """One proxy per node, reached through the LoadBalancer Service."""
    lbls = proxy_labels()
    containers = [proxy_container(opts, sidecar=False)]
    if opts.topology.name == "local-failover":
        containers.insert(0, local_cache_container(opts, sidecar=False))
    pod = {**_pod_spec(opts), "containers": containers}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": metadata(PROXY_NAME, opts.namespace, lbls),
        "spec": {
            "selector": {"matchLabels": selector(lbls)},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": lbls, "annotations": scrape_annotations()},
                "spec": pod,
            },
        },
    }


def load_balancer(opts: RenderOptions) -> Obj:
    """The LoadBalancer Service on 11211 in front of the proxy DaemonSet."""
    lbls = proxy_labels()
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(PROXY_NAME, opts.namespace, lbls),
        "spec": {
            "type": "LoadBalancer",
            # Every node runs a proxy: keep the client's connection on the node it reached
            # (no second hop, client address preserved); nodes whose proxy is not ready fail
            # the load balancer's health check and get no traffic.
            "externalTrafficPolicy": "Local",
            "selector": selector(lbls),
            "ports": [
                {"name": "memcache", "port": PORT, "targetPort": "memcache", "protocol": "TCP"}
            ],
        },
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
            "replicas": opts.app_replicas,
            "selector": {"matchLabels": selector(lbls)},
            "template": {
                "metadata": {"labels": lbls, "annotations": scrape_annotations()},
                "spec": pod,
            },
        },
    }

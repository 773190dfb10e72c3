"""``memfleet render --proxy memcached``: memcached's own (C) proxy in front of the same
cache pods, configured by the routelib file memfleet renders.

The official memcached image is built without the proxy, so the image is the user's
(``--proxy-image``). The ConfigMap holds the rendered ``config.lua`` and ``routelib.lua``
(the library itself, from ``--routelib FILE``; without it a stand-in that stops the proxy
at start with a message saying where to get the library). Everything else of the DaemonSet
(surge rollout, tolerations, security context, the NetworkPolicy label) is memfleet's own
proxy DaemonSet's. memcached's proxy reloads on SIGHUP only: a ConfigMap update needs a
rollout (``kubectl rollout restart daemonset/memfleet-proxy``).
"""

from __future__ import annotations

from memfleet.config.routelib.render import render_routelib
from memfleet.kube import proxy
from memfleet.kube.common import CONFIG_DIR, CONFIGMAP_NAME, Obj, labels, metadata
from memfleet.kube.configmap import proxy_config
from memfleet.kube.options import PORT, RenderOptions

CONFIG_LUA = "config.lua"
ROUTELIB_LUA = "routelib.lua"
ROUTELIB_SOURCE = "https://github.com/memcached/memcached-proxylibs (lib/routelib/routelib.lua)"
# The proxy's own cache (memcached -m): unused by routelib's routes, kept small.
OWN_CACHE_MB = 16
STAND_IN = (
    "-- Stand-in: replace this key with routelib.lua from\n"
    f"-- {ROUTELIB_SOURCE}\n"
    "-- (render again with --routelib FILE, or patch the ConfigMap in an overlay).\n"
    'error("memfleet: routelib.lua is missing from the ConfigMap: render with --routelib FILE")\n'
)


def memcached_args() -> list[str]:
    """memcached's proxy flags: routelib as the proxy config, the rendered file its argument."""
    return [
        "-o", f"proxy_config={CONFIG_DIR}/{ROUTELIB_LUA},proxy_arg={CONFIG_DIR}/{CONFIG_LUA}",
        "-l", "0.0.0.0", "-p", str(PORT), "-U", "0", "-m", str(OWN_CACHE_MB),
    ]  # fmt: skip


def config_lua(opts: RenderOptions) -> str:
    """The rendered routelib config over the cache pods' DNS names."""
    header = [
        f"memcached proxy (routelib) config for memfleet's {opts.topology.name} topology "
        f"(namespace {opts.namespace}).",
        "memfleet: not run on memcached's C proxy by memfleet's tests: checked against "
        "routelib's documented names.",
    ]
    return render_routelib(proxy_config(opts), header)


def configmap(opts: RenderOptions) -> Obj:
    """The ConfigMap: the rendered config and routelib, mounted as a directory."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(CONFIGMAP_NAME, opts.namespace, labels(CONFIGMAP_NAME, "proxy")),
        "data": {CONFIG_LUA: config_lua(opts), ROUTELIB_LUA: opts.routelib or STAND_IN},
    }


def daemonset(opts: RenderOptions) -> Obj:
    """memfleet's proxy DaemonSet with memcached's proxy as its proxy container."""
    ds = proxy.daemonset(opts)
    template = ds["spec"]["template"]
    template["metadata"].pop("annotations", None)  # no Prometheus endpoint of ours
    for c in template["spec"]["containers"]:
        if c["name"] != "proxy":
            continue
        c["image"] = opts.proxy_image
        c["command"] = ["memcached"]
        c["args"] = memcached_args()
        c.pop("env", None)
        c["ports"] = [{"name": "memcache", "containerPort": PORT, "protocol": "TCP"}]
        tcp: Obj = {"tcpSocket": {"port": "memcache"}, "timeoutSeconds": 2}
        c["startupProbe"] = {**tcp, "periodSeconds": 2, "failureThreshold": 30}
        c["readinessProbe"] = {**tcp, "periodSeconds": 5, "failureThreshold": 2}
        c["livenessProbe"] = {**tcp, "periodSeconds": 10, "failureThreshold": 3}
    return ds

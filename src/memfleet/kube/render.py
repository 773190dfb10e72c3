"""All objects of one topology, grouped into the files of a kustomize base."""

from __future__ import annotations

from dataclasses import dataclass, field

from memfleet.kube import cache, configmap, memcached_proxy, monitoring, policy, proxy
from memfleet.kube.common import Obj, labels
from memfleet.kube.options import RenderOptions


@dataclass
class Bundle:
    """A rendered topology: file name → documents, in apply order."""

    options: RenderOptions
    files: dict[str, list[Obj]] = field(default_factory=dict)

    def documents(self) -> list[Obj]:
        """Every document of every file."""
        return [doc for docs in self.files.values() for doc in docs]

    def statefulsets(self) -> list[Obj]:
        """The cache StatefulSets."""
        return [d for d in self.documents() if d["kind"] == "StatefulSet"]


def pod_security_level(opts: RenderOptions) -> str:
    """The strictest Pod Security Standard every pod of the bundle meets: ``restricted``,
    except the --pmem memory-file layout, whose init container runs as root to hand the CSI
    inline volume to memcache (``baseline`` allows that, ``restricted`` does not)."""
    return "baseline" if opts.root_init else "restricted"


def namespace(opts: RenderOptions) -> Obj:
    """The Namespace, with Pod Security admission enforcing :func:`pod_security_level` and
    warning about anything short of ``restricted``."""
    level = pod_security_level(opts)
    lbls = labels("memfleet", "namespace")
    lbls.update(
        {
            "pod-security.kubernetes.io/enforce": level,
            "pod-security.kubernetes.io/warn": "restricted",
        }
    )
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": opts.namespace, "labels": lbls},
    }


def render(opts: RenderOptions) -> Bundle:
    """Render a topology into a :class:`Bundle`."""
    b = Bundle(opts)
    b.files["namespace.yaml"] = [namespace(opts)]
    memcached = opts.proxy_server == "memcached"
    config = memcached_proxy.configmap(opts) if memcached else configmap.configmap(opts)
    b.files["proxy-config.yaml"] = [config]
    sets = cache.cache_sets(opts)
    for cs in sets:
        b.files[f"{cs.name}.yaml"] = [cache.headless_service(cs, opts), cache.statefulset(cs, opts)]
    if memcached:
        b.files["proxy.yaml"] = [memcached_proxy.daemonset(opts), proxy.service(opts)]
    elif opts.proxy_mode == "daemonset":
        b.files["proxy.yaml"] = [proxy.daemonset(opts), proxy.service(opts)]
    else:
        b.files["app.yaml"] = [proxy.app_deployment(opts)]
    budgets = policy.disruption_budgets(sets, opts)
    if budgets:
        b.files["pdb.yaml"] = budgets
    b.files["networkpolicy.yaml"] = policy.network_policies(opts)
    if opts.monitoring:
        b.files["monitoring.yaml"] = monitoring.monitoring_objects(opts)
    return b

"""All objects of one topology, grouped into the files of a kustomize base."""

from __future__ import annotations

from dataclasses import dataclass, field

from memfleet.kube import cache, configmap, policy, proxy
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


def namespace(opts: RenderOptions) -> Obj:
    """The Namespace, with Pod Security admission at the strictest level the pods meet: the
    memory-file init container runs as root (it hands the volume to memcache), which
    ``restricted`` forbids and ``baseline`` allows."""
    level = "baseline" if opts.persistent else "restricted"
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
    b.files["proxy-config.yaml"] = [configmap.configmap(opts)]
    sets = cache.cache_sets(opts)
    for cs in sets:
        b.files[f"{cs.name}.yaml"] = [cache.headless_service(cs, opts), cache.statefulset(cs, opts)]
    if opts.proxy_mode == "daemonset":
        b.files["proxy.yaml"] = [proxy.daemonset(opts), proxy.load_balancer(opts)]
    else:
        b.files["app.yaml"] = [proxy.app_deployment(opts)]
    b.files["pdb.yaml"] = policy.disruption_budgets(sets, opts)
    b.files["networkpolicy.yaml"] = policy.network_policies(opts)
    return b

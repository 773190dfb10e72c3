"""Kubernetes manifests for memfleet topologies (``memfleet render``).

One module per concern: :mod:`.options` (what to render), :mod:`.sizing` (memory, volume and
grace-period rules), :mod:`.common` (labels, security contexts, probes), :mod:`.cache` (cache
StatefulSets and headless Services), :mod:`.proxy` (the proxy as a DaemonSet or a native
sidecar), :mod:`.configmap` (the proxy config), :mod:`.policy` (PodDisruptionBudgets and
NetworkPolicies), :mod:`.render` (all of it for one topology) and :mod:`.kustomize` (writes a
kustomize base). :mod:`.regen` rewrites the committed ``deploy/`` tree. No module here
defines a command: ``memfleet render`` is :mod:`memfleet.cli.render`.
"""

from __future__ import annotations

from memfleet.kube.options import RenderOptions
from memfleet.kube.render import Bundle, render

__all__ = ["Bundle", "RenderOptions", "render"]

"""Kubernetes manifests for memfleet topologies (``memfleet render``).

One module per concern: :mod:`.options` (what to render), :mod:`.sizing` (memory, volume and
grace-period rules), :mod:`.common` (labels, security contexts, node probes),
:mod:`.storage` (where the memory file lives: emptyDir, claim or PMEM-CSI), :mod:`.cache`
(cache StatefulSets and headless Services), :mod:`.proxy` (the proxy as a DaemonSet behind its
Service, or a native sidecar), :mod:`.configmap` (the proxy config), :mod:`.policy`
(PodDisruptionBudgets and NetworkPolicies), :mod:`.render` (all of it for one topology),
:mod:`.kustomize` (writes a kustomize base with its ``images:`` entry), :mod:`.readme` and
:mod:`.notes` (the base's README); :mod:`.node_metrics` (the nodes' metrics port and labels)
and, for ``--monitoring``, :mod:`.monitoring` (ServiceMonitors, PrometheusRule, dashboard
ConfigMap, NetworkPolicies) with :mod:`.alert_rules` and :mod:`.dashboard`. :mod:`.regen`
rewrites the committed ``deploy/`` tree. No module here defines a command: ``memfleet
render`` is :mod:`memfleet.cli.render`.
"""

from __future__ import annotations

from memfleet.kube.options import RenderOptions
from memfleet.kube.render import Bundle, render

__all__ = ["Bundle", "RenderOptions", "render"]

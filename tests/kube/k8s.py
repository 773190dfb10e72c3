"""Small offline emulations of what the API server and the scheduler do with our objects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Obj = dict[str, Any]


def matches(selector: Obj, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) against a pod's labels."""
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions", []):
        key, op, values = e["key"], e["operator"], e.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def term_selector(term: Obj, own_labels: dict[str, str]) -> Obj:
    """A pod (anti-)affinity term's effective selector: matchLabelKeys adds ``key In
    (the incoming pod's value)`` to the labelSelector, as the API server does."""
    sel = {
        "matchLabels": dict(term["labelSelector"].get("matchLabels", {})),
        "matchExpressions": list(term["labelSelector"].get("matchExpressions", [])),
    }
    for key in term.get("matchLabelKeys", []):
        if key in own_labels:
            sel["matchExpressions"].append(
                {"key": key, "operator": "In", "values": [own_labels[key]]}
            )
    return sel


def pods(statefulset: Obj) -> Iterator[tuple[str, dict[str, str]]]:
    """The pods a StatefulSet creates: name and labels, including the controller's
    ``statefulset.kubernetes.io/pod-name`` and ``apps.kubernetes.io/pod-index``."""
    name = statefulset["metadata"]["name"]
    for i in range(statefulset["spec"]["replicas"]):
        lbls = dict(statefulset["spec"]["template"]["metadata"]["labels"])
        lbls["statefulset.kubernetes.io/pod-name"] = f"{name}-{i}"
        lbls["apps.kubernetes.io/pod-index"] = str(i)
        yield f"{name}-{i}", lbls


def pod_spec(workload: Obj) -> Obj:
    """The pod template's spec of a workload."""
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def all_containers(workload: Obj) -> list[Obj]:
    """Init containers and containers."""
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def mebibytes(quantity: str) -> float:
    """'300Mi' / '1Gi' → MiB."""
    if quantity.endswith("Mi"):
        return float(quantity[:-2])
    if quantity.endswith("Gi"):
        return float(quantity[:-2]) * 1024
    raise ValueError(quantity)

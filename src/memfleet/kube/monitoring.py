"""``memfleet render --monitoring``: what a cluster running the prometheus-operator and
Grafana's dashboard sidecar (kube-prometheus-stack, for one) needs to watch a fleet.

- two headless metrics Services, ``memfleet-node-metrics`` (every cache pod, port 9151) and
  ``memfleet-proxy-metrics`` (every pod running a proxy, port 9150), and a ServiceMonitor for
  each: each node is scraped once, from its own supervisor, however many proxies there are;
- a PrometheusRule with the alerts of :mod:`memfleet.kube.alert_rules`;
- the Grafana dashboard of :mod:`memfleet.kube.dashboard` as a ConfigMap labelled
  ``grafana_dashboard: "1"`` (the sidecar's default label);
- NetworkPolicies that let only the monitoring namespace reach the metrics ports.

The rules and the dashboard are also written as plain files (:func:`plain_files`) for a
Prometheus and a Grafana that are not run by the operator.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from memfleet.kube.alert_rules import NODE_JOB, PROXY_JOB, RuleOptions, rule_groups
from memfleet.kube.cache import CACHE_NAME
from memfleet.kube.common import PART_OF, PROXY_LABEL, Obj, labels, metadata, selector
from memfleet.kube.dashboard import dashboard_json
from memfleet.kube.node_metrics import NODE_METRICS_PORT
from memfleet.kube.options import RenderOptions
from memfleet.kube.proxy import METRICS_PATH, METRICS_PORT, proxy_labels

SCRAPE_INTERVAL = "30s"
RULES_FILE = "prometheus-rules.yml"
DASHBOARD_FILE = "grafana-dashboard.json"
DASHBOARD_CONFIGMAP = "memfleet-dashboard"
# The label Grafana's dashboard sidecar looks for (its chart's default `sidecar.dashboards.label`).
GRAFANA_SIDECAR_LABEL = "grafana_dashboard"
# Set on every namespace by the API server (Kubernetes 1.21+): a namespace selector by name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _node_pods() -> dict[str, str]:
    """Every cache pod, main and gutter (not the local tier, which has no metrics port)."""
    return {"app.kubernetes.io/name": CACHE_NAME, "app.kubernetes.io/part-of": PART_OF}


def _proxy_pods() -> dict[str, str]:
    """Every pod that runs a proxy: the DaemonSet's, or an app's with the proxy sidecar."""
    return {PROXY_LABEL: "true", "app.kubernetes.io/part-of": PART_OF}


def metrics_service(name: str, pods: dict[str, str], port: int, opts: RenderOptions) -> Obj:
    """A headless Service listing every pod's metrics endpoint. Not-ready pods are listed too:
    a node that is down must still be scraped, to say so."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, opts.namespace, labels(name, "metrics")),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": pods,
            "ports": [{"name": "metrics", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


def service_monitor(name: str, opts: RenderOptions) -> Obj:
    """A ServiceMonitor for one metrics Service (the job label becomes the Service's name)."""
    lbls = labels(name, "metrics")
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(name, opts.namespace, lbls),
        "spec": {
            "selector": {"matchLabels": selector(lbls)},
            "namespaceSelector": {"matchNames": [opts.namespace]},
            "endpoints": [
                {
                    "port": "metrics",
                    "path": METRICS_PATH,
                    "interval": SCRAPE_INTERVAL,
                    "scrapeTimeout": "10s",
                }
            ],
        },
    }


def prometheus_rule(opts: RenderOptions, rules: RuleOptions | None = None) -> Obj:
    """The alert rules as a PrometheusRule."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata("memfleet", opts.namespace, labels("memfleet", "alert-rules")),
        "spec": {"groups": rule_groups(rules)},
    }


def dashboard_configmap(opts: RenderOptions) -> Obj:
    """The dashboard as a ConfigMap Grafana's sidecar loads."""
    lbls = labels(DASHBOARD_CONFIGMAP, "dashboard", extra={GRAFANA_SIDECAR_LABEL: "1"})
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(DASHBOARD_CONFIGMAP, opts.namespace, lbls),
        "data": {"memfleet.json": dashboard_json()},
    }


def _from_monitoring(
    name: str, pods: dict[str, str], port: int, opts: RenderOptions, ns: str
) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name, opts.namespace, labels(name, "metrics")),
        "spec": {
            "podSelector": {"matchLabels": pods},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: ns}}}],
                    "ports": [{"protocol": "TCP", "port": port}],
                }
            ],
        },
    }


def network_policies(opts: RenderOptions) -> list[Obj]:
    """The metrics ports, open to the monitoring namespace only.

    Policies add up: the cache pods already take 11211 from the proxies only, and the proxy
    DaemonSet takes 11211 from anywhere (with ``--monitoring`` its own policy no longer opens
    9150). An app with the proxy sidecar is left unselected: a policy selecting the app's pods
    would close the app's own ports; police them with the app's policies.
    """
    out = [
        _from_monitoring(
            f"{CACHE_NAME}-metrics-from-monitoring",
            _node_pods(),
            NODE_METRICS_PORT,
            opts,
            opts.monitoring_namespace,
        )
    ]
    if opts.proxy_mode == "daemonset":
        out.append(
            _from_monitoring(
                "memfleet-proxy-metrics-from-monitoring",
                selector(proxy_labels()),
                METRICS_PORT,
                opts,
                opts.monitoring_namespace,
            )
        )
    return out


def monitoring_objects(opts: RenderOptions) -> list[Obj]:
    """Every object ``--monitoring`` adds, in apply order."""
    return [
        metrics_service(NODE_JOB, _node_pods(), NODE_METRICS_PORT, opts),
        metrics_service(PROXY_JOB, _proxy_pods(), METRICS_PORT, opts),
        service_monitor(NODE_JOB, opts),
        service_monitor(PROXY_JOB, opts),
        prometheus_rule(opts),
        dashboard_configmap(opts),
        *network_policies(opts),
    ]


class _RulesDumper(yaml.SafeDumper):
    """Multi-line expressions as literal blocks, as people write rules files by hand."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_RulesDumper.add_representer(str, _str)


def rules_yaml(rules: RuleOptions | None = None) -> str:
    """The alert rules as a Prometheus rules file (``rule_files:``, ``promtool check rules``)."""
    doc = {"groups": rule_groups(rules)}
    return yaml.dump(doc, Dumper=_RulesDumper, sort_keys=False, width=100, allow_unicode=True)


def write_rules(directory: Path, rules: RuleOptions | None = None) -> Path:
    """Write the rules file into ``directory``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RULES_FILE
    path.write_text(rules_yaml(rules), encoding="utf-8")
    return path


def plain_files() -> dict[str, str]:
    """The rules file and the dashboard JSON, for a Prometheus and a Grafana set up by hand.
    (Not kustomize resources: the base's kustomization does not list them.)"""
    return {RULES_FILE: rules_yaml(), DASHBOARD_FILE: dashboard_json()}

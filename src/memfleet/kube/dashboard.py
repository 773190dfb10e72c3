"""memfleet's Grafana dashboard (JSON model): the proxies' view (traffic, hit ratio, errors,
limits, backend state and latency) above the nodes' own figures (memory, items, evictions,
connections, restarts).

Every query sums or takes the max over the proxies, as the alert rules do, and filters on a
``namespace`` variable (``.*`` by default, which also matches series without the label, as a
plain Prometheus outside Kubernetes scrapes them).
"""

from __future__ import annotations

import json
from typing import Any

Obj = dict[str, Any]

DASHBOARD_UID = "memfleet"
NS = '{namespace=~"$namespace"}'
RATE = "$__rate_interval"
WIDTH = 12  # two panels per row of Grafana's 24 columns
HEIGHT = 8


def _sel(extra: str = "") -> str:
    """A label matcher with the namespace filter and ``extra`` matchers."""
    return f'{{namespace=~"$namespace"{", " + extra if extra else ""}}}'


def _panel(title: str, unit: str, *targets: tuple[str, str], kind: str = "timeseries") -> Obj:
    return {
        "type": kind,
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def _row(title: str) -> Obj:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def proxy_panels() -> list[Obj]:
    """The proxies' view, summed over every proxy."""
    hits = f"sum(rate(memfleet_get_hits_total{NS}[{RATE}]))"
    misses = f"sum(rate(memfleet_get_misses_total{NS}[{RATE}]))"
    latency = f"rate(memfleet_backend_latency_seconds_bucket{NS}[{RATE}])"
    invalidated = f"increase(memfleet_backend_rejoin_invalidated_total{NS}[{RATE}])"
    flushed = f"increase(memfleet_backend_rejoin_flushes_total{NS}[{RATE}])"
    return [
        _row("Proxies"),
        _panel(
            "Requests by command",
            "reqps",
            (f"sum by (command) (rate(memfleet_requests_total{NS}[{RATE}]))", "{{command}}"),
        ),
        _panel("Get hit ratio", "percentunit", (f"{hits} / ({hits} + {misses})", "hit ratio")),
        _panel(
            "Errors by kind",
            "ops",
            (f"sum by (kind) (rate(memfleet_errors_total{NS}[{RATE}]))", "{{kind}}"),
        ),
        _panel(
            "Limits hit",
            "short",
            (f"sum by (limit) (increase(memfleet_limit_hits_total{NS}[{RATE}]))", "{{limit}}"),
        ),
        _panel(
            "Backends up (seen by any proxy)",
            "short",
            (f"max by (pool, backend) (memfleet_backend_up{NS})", "{{pool}} {{backend}}"),
        ),
        _panel(
            "Backend reply latency p99",
            "s",
            (f"histogram_quantile(0.99, sum by (le, backend) ({latency}))", "{{backend}}"),
        ),
        _panel(
            "Client connections and requests in flight",
            "short",
            (f"sum(memfleet_client_connections{NS})", "connections"),
            (f"sum(memfleet_in_flight{NS})", "in flight"),
        ),
        _panel(
            "Rejoins: keys invalidated, flushes",
            "short",
            (f"sum by (backend) ({invalidated})", "invalidated {{backend}}"),
            (f"sum by (backend) ({flushed})", "flushed {{backend}}"),
        ),
    ]


def node_panels() -> list[Obj]:
    """The nodes' own figures (``memfleet node --metrics``)."""
    node = "{{pool}} {{shard}} {{instance}}"
    get_hits = _sel('command="get", status="hit"')
    gets = _sel('command="get"')
    return [
        _row("Nodes"),
        _panel(
            "Nodes up",
            "short",
            (f"sum(memfleet_node_up{NS})", "up"),
            (f"count(memfleet_node_up{NS})", "nodes"),
        ),
        _panel(
            "Memory used / limit",
            "percentunit",
            (f"memcached_current_bytes{NS} / memcached_limit_bytes{NS}", node),
        ),
        _panel(
            "Items by pool",
            "short",
            (f"sum by (pool) (memcached_current_items{NS})", "{{pool}}"),
        ),
        _panel(
            "Evictions by pool",
            "ops",
            (f"sum by (pool) (rate(memcached_items_evicted_total{NS}[{RATE}]))", "{{pool}}"),
        ),
        _panel(
            "Node get hit ratio by pool",
            "percentunit",
            (
                f"sum by (pool) (rate(memcached_commands_total{get_hits}[{RATE}])) / "
                f"sum by (pool) (rate(memcached_commands_total{gets}[{RATE}]))",
                "{{pool}}",
            ),
        ),
        _panel("Connections per node", "short", (f"memcached_current_connections{NS}", node)),
        _panel("Uptime (a drop is a restart)", "s", (f"memcached_uptime_seconds{NS}", node)),
    ]


def _layout(panels: list[Obj]) -> list[Obj]:
    """Grid positions: a row takes the full width, other panels two per line."""
    y, x = 0, 0
    for i, p in enumerate(panels):
        p["id"] = i + 1
        if p["type"] == "row":
            if x:
                y, x = y + HEIGHT, 0
            p["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
            y += 1
            continue
        p["gridPos"] = {"h": HEIGHT, "w": WIDTH, "x": x, "y": y}
        x += WIDTH
        if x >= 24:
            y, x = y + HEIGHT, 0
    return panels


def dashboard() -> Obj:
    """The dashboard's JSON model (import it, or let Grafana's sidecar load the ConfigMap)."""
    return {
        "uid": DASHBOARD_UID,
        "title": "memfleet",
        "tags": ["memfleet", "memcached"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                },
                {
                    "name": "namespace",
                    "label": "Namespace",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(memfleet_info, namespace)",
                    "includeAll": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                    "refresh": 2,
                },
            ]
        },
        "panels": _layout([*proxy_panels(), *node_panels()]),
    }


def dashboard_json() -> str:
    """The dashboard as JSON text."""
    return json.dumps(dashboard(), indent=2) + "\n"

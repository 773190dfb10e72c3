"""memfleet's Prometheus alert rules, as data: rendered into a PrometheusRule for the
prometheus-operator and into a plain rules file for any other Prometheus.

Every alert is aggregated (``max by``/``sum by``) over the proxies, so a fleet with a proxy per
Kubernetes node raises one alert per node, pool or backend, not one per proxy. The only
per-instance alerts are about the scrape targets themselves (a node or a proxy that cannot be
scraped). Thresholds and ``for:`` durations are parameters (:class:`RuleOptions`), so tests can
shorten them without editing the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

# The scrape jobs' names. The ServiceMonitors keep the prometheus-operator's default (the job is
# the Service's name), so the metrics Services carry these names.
NODE_JOB = "memfleet-node-metrics"
PROXY_JOB = "memfleet-proxy-metrics"


@dataclass(frozen=True)
class RuleOptions:
    """What the rules compare against."""

    node_job: str = NODE_JOB
    proxy_job: str = PROXY_JOB
    # Every alert's ``for:`` when set (e.g. "1s" in tests); None keeps each alert's own.
    for_override: str | None = None
    # Hit ratio below this share of its value an hour earlier is "dropping".
    hit_ratio_drop: float = 0.75
    # Fewer gets per second than this (over all proxies) are not judged for hit rate.
    min_gets_per_second: float = 1.0
    # Evictions per second per pool that count, and the rise over an hour earlier that alerts.
    min_evictions_per_second: float = 1.0
    eviction_rise: float = 2.0
    # Share of backend requests failing that is worth an alert.
    backend_error_ratio: float = 0.05


def _alert(
    o: RuleOptions, name: str, expr: str, duration: str, severity: str, summary: str, text: str
) -> Obj:
    rule: Obj = {"alert": name, "expr": expr}
    duration = o.for_override if o.for_override is not None else duration
    if duration not in ("", "0s", "0m"):
        rule["for"] = duration
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "description": text}
    return rule


def _ratio(hits: str, misses: str, by: str, offset: str = "") -> str:
    window = f"[10m]{' offset ' + offset if offset else ''}"
    h = f"sum by ({by}) (rate({hits}{window}))"
    m = f"sum by ({by}) (rate({misses}{window}))"
    return f"(\n  {h}\n  /\n  ({h} + {m})\n)"


def node_rules(o: RuleOptions) -> list[Obj]:
    """Alerts about the cache nodes, from their own metrics (``memfleet node --metrics``)."""
    evictions = "sum by (namespace, pool) (rate(memcached_items_evicted_total[10m]))"
    earlier = "sum by (namespace, pool) (rate(memcached_items_evicted_total[10m] offset 1h))"
    return [
        _alert(
            o,
            "MemfleetNodeDown",
            f'up{{job="{o.node_job}"}} == 0 or memfleet_node_up == 0',
            "1m",
            "warning",
            "memcached node {{ $labels.instance }} is down",
            "The node's metrics cannot be scraped, or its memcached does not answer stats. "
            "Its keys are served by the other replicas, or fail until it is back.",
        ),
        _alert(
            o,
            "MemfleetEvictionsRising",
            # No history an hour ago (a new fleet) counts as no evictions then.
            f"{evictions} > {o.min_evictions_per_second:g}\nand\n{evictions}\n  > "
            f"{o.eviction_rise:g} * ({earlier} or {evictions} * 0)",
            "15m",
            "warning",
            "pool {{ $labels.pool }} evicts {{ $value | humanize }} items/s",
            "memcached is evicting valid items to make room, and more than an hour ago: the "
            "cache is too small for its working set. Add memory (--memory) or shards.",
        ),
    ]


def proxy_rules(o: RuleOptions) -> list[Obj]:
    """Alerts from the proxies' view, aggregated over every proxy."""
    hits, misses = "memfleet_get_hits_total", "memfleet_get_misses_total"
    now = _ratio(hits, misses, "namespace")
    before = _ratio(hits, misses, "namespace", offset="1h")
    gets = f"(sum by (namespace) (rate({hits}[10m])) + sum by (namespace) (rate({misses}[10m])))"
    errors = "sum by (namespace, pool) (rate(memfleet_backend_errors_total[5m]))"
    requests = "sum by (namespace, pool) (rate(memfleet_backend_requests_total[5m]))"
    return [
        _alert(
            o,
            "MemfleetBackendUnreachable",
            "max by (namespace, pool, backend) (memfleet_backend_up) == 0",
            "2m",
            "warning",
            "every proxy has marked backend {{ $labels.backend }} down",
            "No proxy can use backend {{ $labels.backend }} of pool {{ $labels.pool }}: "
            "its requests fail fast (or go to the other replicas) until a probe succeeds.",
        ),
        _alert(
            o,
            "MemfleetPoolDown",
            "max by (namespace, pool) (memfleet_backend_up) == 0",
            "1m",
            "critical",
            "every backend of pool {{ $labels.pool }} is down",
            "No proxy has a live backend in pool {{ $labels.pool }}: requests routed only to "
            "it fail.",
        ),
        _alert(
            o,
            "MemfleetRejoinJournalOverflow",
            "sum by (namespace, pool, backend) "
            "(increase(memfleet_backend_rejoin_flushes_total[15m])) > 0",
            "",
            "warning",
            "backend {{ $labels.backend }} was flushed before it rejoined",
            "A returning replica missed more writes than its rejoin journal holds "
            "(journal_limit), so it was flushed instead of repaired key by key, and starts "
            "cold. (Pools with rejoin: flush do this on every rejoin.)",
        ),
        _alert(
            o,
            "MemfleetHitRateDropping",
            f"{now}\n< {o.hit_ratio_drop:g} * {before}\nand\n{gets} > {o.min_gets_per_second:g}",
            "15m",
            "warning",
            "get hit ratio fell to {{ $value | humanizePercentage }}",
            f"The proxies' get hit ratio is below {o.hit_ratio_drop:.0%} of what it was an "
            "hour ago: nodes restarted cold, keys moved (a resize), or the cache evicts.",
        ),
        _alert(
            o,
            "MemfleetProxyBackendErrors",
            f"{errors}\n/\n{requests}\n> {o.backend_error_ratio:g}",
            "5m",
            "warning",
            "{{ $value | humanizePercentage }} of backend requests in pool {{ $labels.pool }} fail",
            "Backend requests fail (timeouts, resets, refused connections, or fail-fast while "
            "a backend is down). See memfleet_backend_failures_total by kind.",
        ),
        _alert(
            o,
            "MemfleetProxyLimitHit",
            # idle_closed is the idle_timeout doing its job, not a limit refusing work.
            "sum by (namespace, limit) "
            '(increase(memfleet_limit_hits_total{limit!="idle_closed"}[5m])) > 0',
            "",
            "warning",
            "proxy limit {{ $labels.limit }} was hit",
            "A client or backend limit of the proxy refused or dropped work in the last 5 "
            "minutes (limits: in the proxy config; the log names the client).",
        ),
        _alert(
            o,
            "MemfleetProxyReloadRefused",
            'sum by (namespace) (increase(memfleet_reloads_total{result="refused"}[15m])) > 0',
            "",
            "warning",
            "a proxy refused a new config",
            "A proxy config change was refused in the last 15 minutes; the proxy keeps serving "
            "the old config. Its log names the file, the field and the reason.",
        ),
        _alert(
            o,
            "MemfleetProxyDown",
            f'up{{job="{o.proxy_job}"}} == 0',
            "2m",
            "warning",
            "proxy {{ $labels.instance }} cannot be scraped",
            "The proxy's metrics endpoint does not answer: the proxy is down or overloaded, "
            "and the clients that use it have no cache.",
        ),
    ]


def rule_groups(o: RuleOptions | None = None) -> list[Obj]:
    """The rule groups, as a PrometheusRule's ``spec.groups`` and a rules file take them."""
    o = o or RuleOptions()
    return [
        {"name": "memfleet-nodes", "rules": node_rules(o)},
        {"name": "memfleet-proxies", "rules": proxy_rules(o)},
    ]

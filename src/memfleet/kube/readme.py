"""The README of a rendered base: what the topology trades and how to apply it."""

from __future__ import annotations

from memfleet.kube.cache import STARTUP_SECONDS, cache_sets
from memfleet.kube.notes import (
    image_notes,
    persistence_notes,
    placement_notes,
    proxy_notes,
    security_notes,
)
from memfleet.kube.options import RenderOptions, command_line
from memfleet.kube.sizing import cache_memory

_WHAT = {
    "sharded": "One pool over {shards} memcached pods; each key lives on exactly one of them "
    "(jump hash), so their memory adds up.",
    "replicated": "{replicas} memcached pods that each hold every key: writes go to all of "
    "them and wait, reads take the fastest non-error answer.",
    "local-failover": "Each app pod runs a small ({local} MB) local cache and the proxy as "
    "sidecars, in front of a sharded cluster pool of {shards} pods. Reads try the local tier "
    "first (its zone is `local`), then the cluster; writes go to both.",
    "replicated-sharded": "{replicas} replicas × {shards} shards: one StatefulSet per replica "
    "(`memcached-<r>`), pods `memcached-<r>-<s>`. Writes go to every replica, reads take the "
    "fastest answer. With `aligned` placement shard s of different replicas never shares a "
    "{domain}, so losing one {domain} loses at most one copy of any key.",
    "gutter": "A sharded main pool of {shards} pods plus a one-pod gutter StatefulSet. When a "
    "main pod errors, its keys are read from and written to the gutter, with TTLs capped at "
    "{gutter_ttl} s so nothing stale outlives the outage.",
}

_TRADES = {
    "sharded": (
        "losing a pod loses its 1/{shards} of the keys until it is back (misses go to the "
        "database); no copy of anything",
        "best per byte: every key is stored once",
        "one hop to one pod",
        "{shards} × {request} requested",
    ),
    "replicated": (
        "any {replicas_less} pods may fail without losing a key",
        "limited to what one pod holds: adding pods adds copies, not capacity",
        "reads from the fastest pod; writes wait for the slowest",
        "{replicas} × {request} requested for the capacity of one",
    ),
    "local-failover": (
        "the cluster pool as in `sharded`; the local tier hides short cluster outages for "
        "keys the pod has read recently",
        "the cluster pool's; the local tier adds a hot set per pod (TTL capped at {local_ttl} "
        "s, so staleness is bounded)",
        "a local hit never leaves the pod",
        "{shards} × {request} for the cluster plus one {local} MB local cache per app pod",
    ),
    "replicated-sharded": (
        "any one pod or node{zone_or} can fail without losing a key; the proxy invalidates what "
        "a returning replica missed",
        "the capacity of one replica ({shards} pods); a replica back from an outage fills "
        "from the others on read",
        "reads from the fastest replica; writes wait for all replicas",
        "{replicas} × {shards} × {request} requested",
    ),
    "gutter": (
        "a failed main pod's keys are served (briefly) from the gutter instead of all "
        "falling through to the database",
        "as `sharded`; the gutter holds only short-lived copies",
        "one hop; a failed main pod costs one extra hop to the gutter",
        "{shards} × {request} plus {gutter_pods} gutter pod(s)",
    ),
}


def memcached_proxy_notes(opts: RenderOptions) -> str:
    """What differs where memcached's own proxy serves (``--proxy memcached``)."""
    if opts.proxy_server != "memcached":
        return ""
    return f"""

**memcached's proxy.** The DaemonSet runs `memcached` from `{opts.proxy_image}` (an image
built with `--enable-proxy`; the official one has none) with the ConfigMap's `config.lua`
(rendered by memfleet, routelib names only) and `routelib.lua` (memcached-proxylibs'
`lib/routelib/routelib.lua`: render with `--routelib FILE`, else a stand-in stops the proxy
with that message). Its probes are TCP connects to 11211 and it has no metrics port. It
reloads on SIGHUP only: after a ConfigMap change, `kubectl -n {opts.namespace} rollout restart
daemonset/memfleet-proxy`. The comments in `config.lua` say what it does not do that memfleet's
proxy does (write acknowledgement policy, rejoin repair, fills)."""


def readme(opts: RenderOptions) -> str:
    """README.md text for a rendered base."""
    t = opts.topology
    mem = cache_memory(opts.memory_mb)
    fields = {
        "shards": t.shards,
        "replicas": t.replicas,
        "replicas_less": t.replicas - 1,
        "local": opts.local_memory_mb,
        "gutter_ttl": t.gutter_ttl,
        "local_ttl": t.local_ttl_max,
        "domain": "zone" if opts.zone_spread else "node",
        "zone_or": " (or zone)" if opts.zone_spread else "",
        "request": mem.request,
        "gutter_pods": t.gutter_shards,
    }
    availability, hit_rate, latency, memory = (s.format(**fields) for s in _TRADES[t.name])
    sets = ", ".join(f"`{cs.name}` ({cs.pods} pods)" for cs in cache_sets(opts))
    proxy, connect = proxy_notes(opts)
    persistence = persistence_notes(opts)
    return f"""# {t.name}

{_WHAT[t.name].format(**fields)}

Cache StatefulSets: {sets}; {opts.memory_mb} MB of cache per pod, memory request/limit
{mem.request}/{mem.limit} (see `docs/kubernetes.md` for the rule). {persistence}

{proxy}

{placement_notes(opts)}

## What it trades

| | |
|---|---|
| availability | {availability} |
| hit rate | {hit_rate} |
| latency | {latency} |
| memory cost | {memory} |

## Apply

```sh
kubectl apply -k .            # namespace `{opts.namespace}`, image `{opts.image}`
kubectl -n {opts.namespace} wait --for=condition=Ready pod \\
    -l app.kubernetes.io/part-of=memfleet --timeout=10m
{connect}
```

{image_notes(opts)} The proxy config is the ConfigMap `memfleet-proxy`; the proxies reload it
when it changes.{memcached_proxy_notes(opts)}

## Security

{security_notes(opts)}

Probes are cheap: a TCP connect to memcached's port for the nodes (memcached opens it only
once a start, a warm restart included, is complete; the startup probe allows
{STARTUP_SECONDS[opts.persistence] // 60} minutes), HTTP `/healthz` and `/readyz` on the
proxy's metrics port 9150. The NetworkPolicies do not block them: traffic from a pod's own
node, where the kubelet probes from, is always allowed.

## Re-render

Generated by `python -m memfleet.kube.regen` (all of `deploy/`); this base alone:

```sh
{command_line(opts)} --out DIR
```
"""

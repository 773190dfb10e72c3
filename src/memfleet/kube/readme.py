"""The README of a rendered base: what the topology trades and how to apply it."""

from __future__ import annotations

from memfleet.kube.cache import cache_sets
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
    if opts.proxy_mode == "daemonset":
        proxy = (
            "The proxy runs as a DaemonSet (`memfleet-proxy`, one per node) behind a "
            "`LoadBalancer` Service on port 11211: point any memcached client at the "
            "Service's address."
        )
        connect = f"kubectl -n {opts.namespace} get service memfleet-proxy   # EXTERNAL-IP:11211"
    else:
        proxy = (
            "The proxy runs as a native sidecar (an init container with `restartPolicy: "
            "Always`) of the example Deployment `memfleet-app`, listening on the pod's "
            "127.0.0.1:11211. Replace its `app` container with your application and keep the "
            'label `memfleet.io/proxy: "true"` (the cache pods\' NetworkPolicy admits only '
            "such pods)."
        )
        connect = (
            f"kubectl -n {opts.namespace} exec deploy/memfleet-app -c app -- "
            "python3 -c \"import socket; s = socket.create_connection(('127.0.0.1', 11211)); "
            "s.sendall(b'version\\r\\n'); print(s.recv(64))\""
        )
    persistence = {
        "none": "The cache is in memory only: a restarted pod starts cold.",
        "memory-file": "The cache lives in a memory file on a CSI inline volume "
        f"(`{opts.csi_driver}`), prepared by an init container; it is lost with the pod.",
        "restartable": "The cache lives in a memory file on a PersistentVolumeClaim "
        f"(storage class `{opts.storage_class}`); a graceful stop writes memcached's state "
        "file and the next start is warm. The claims are deleted with the StatefulSet.",
    }[opts.persistence]
    return f"""# {t.name}

{_WHAT[t.name].format(**fields)}

Cache StatefulSets: {sets}; {opts.memory_mb} MB of cache per pod, memory request/limit
{mem.request}/{mem.limit} (see `docs/kubernetes.md` for the rule). {persistence}

{proxy}

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

Change the image with an overlay (`images:` in a kustomization) or re-render. The proxy
config is the ConfigMap `memfleet-proxy`; the proxies reload it when it changes.

## Re-render

Generated by `python -m memfleet.kube.regen` (all of `deploy/`); this base alone:

```sh
{command_line(opts)} --out DIR
```
"""

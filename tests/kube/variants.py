"""The render matrix the Kubernetes tests run over."""

from __future__ import annotations

import itertools
import json
from functools import cache
from typing import Any

from memfleet.kube import RenderOptions, render
from memfleet.kube.options import PERSISTENCE_MODES, PROXY_MODES
from memfleet.topology.presets import TOPOLOGIES, Topology

Obj = dict[str, Any]


def variant_id(opts: RenderOptions) -> str:
    """A short test id."""
    t = opts.topology
    extra = "-zone" if opts.zone_spread else ""
    extra += "-independent" if t.placement == "independent" else ""
    extra += "-pmem" if opts.pmem else ""
    extra += "-dev" if opts.dev else ""
    extra += "-lb" if opts.service_type == "LoadBalancer" else ""
    extra += f"-{opts.memory_mb}mb" if opts.memory_mb != 256 else ""
    extra += "-memcached-proxy" if opts.proxy_server == "memcached" else ""
    return f"{t.name}-{opts.persistence}-{opts.proxy_mode}{extra}"


@cache
def variants() -> tuple[RenderOptions, ...]:
    """Every topology × persistence × proxy mode, plus zone spread, independent placement,
    the PMEM-CSI layouts, dev clusters and the LoadBalancer Service."""
    out = [
        RenderOptions(topology=Topology(t), persistence=p, proxy=m)
        for t, p, m in itertools.product(TOPOLOGIES, PERSISTENCE_MODES, PROXY_MODES)
    ]
    out += [
        RenderOptions(topology=Topology(t), zone_spread=True, persistence="restartable")
        for t in TOPOLOGIES
    ]
    out.append(RenderOptions(topology=Topology("replicated-sharded", placement="independent")))
    out.append(
        RenderOptions(topology=Topology("replicated-sharded", shards=5, replicas=3), memory_mb=1024)
    )
    out += [
        RenderOptions(topology=Topology(t), persistence=p, pmem=True)
        for t, p in itertools.product(TOPOLOGIES, ("memory-file", "restartable"))
    ]
    out += [
        RenderOptions(topology=Topology(t), dev=True, proxy=m)
        for t, m in itertools.product(TOPOLOGIES, PROXY_MODES)
    ]
    out.append(RenderOptions(topology=Topology("sharded"), persistence="memory-file", memory_mb=16))
    out += [
        RenderOptions(
            topology=Topology(t),
            proxy="daemonset",
            service_type="LoadBalancer",
            lb_source_ranges=("10.0.0.0/8", "192.168.1.0/24"),
        )
        for t in TOPOLOGIES
    ]
    return tuple(out)


@cache
def memcached_proxy_variants() -> tuple[RenderOptions, ...]:
    """Every topology with memcached's own proxy as the DaemonSet (``memfleet render --proxy
    memcached``): validated and checked for pod security like the rest, but not by the tests
    of memfleet's proxy container (its flags, probes and config file)."""
    return tuple(
        RenderOptions(
            topology=Topology(t),
            proxy="daemonset",
            proxy_server="memcached",
            proxy_image="registry.example/memcached-proxy:1.6.29",
        )
        for t in TOPOLOGIES
    )


@cache
def unique_documents() -> tuple[Obj, ...]:
    """Every distinct document over all variants (many are shared, e.g. ConfigMaps)."""
    seen: dict[str, Obj] = {}
    for opts in variants() + memcached_proxy_variants():
        for doc in render(opts).documents():
            seen.setdefault(json.dumps(doc, sort_keys=True), doc)
    return tuple(seen.values())

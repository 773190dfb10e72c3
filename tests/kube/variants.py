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
    return f"{t.name}-{opts.persistence}-{opts.proxy_mode}{extra}"


@cache
def variants() -> tuple[RenderOptions, ...]:
    """Every topology × persistence × proxy mode, plus zone spread and independent placement."""
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
    return tuple(out)


@cache
def unique_documents() -> tuple[Obj, ...]:
    """Every distinct document over all variants (many are shared, e.g. ConfigMaps)."""
    seen: dict[str, Obj] = {}
    for opts in variants():
        for doc in render(opts).documents():
            seen.setdefault(json.dumps(doc, sort_keys=True), doc)
    return tuple(seen.values())

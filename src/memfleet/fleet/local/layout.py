"""What a local fleet runs: the nodes of a topology preset or of a proxy config file, and how
their addresses become the proxy config that ``up`` writes."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from memfleet.config import ConfigError, load_config
from memfleet.fleet.local.messages import FleetError
from memfleet.topology.presets import NodeSpec, Topology


@dataclass
class Layout:
    """The nodes to start and how to turn their addresses into the proxy config."""

    title: str
    specs: list[NodeSpec]
    proxy_config: Callable[[Callable[[NodeSpec], str], str], dict[str, Any]]
    zones: dict[str, str] = field(default_factory=dict)
    topology: Topology | None = None


def topology_layout(topo: Topology) -> Layout:
    """A preset topology: its nodes, its proxy config."""
    zones: dict[str, str] = {}
    if topo.name == "local-failover":
        # The zones of the zfailover route: the local tier and the cluster tier.
        zones = {n.name: ("local" if n.role == "local" else "cluster") for n in topo.nodes()}
    if topo.name in ("replicated", "replicated-sharded"):
        sizes = f"{topo.replicas} replicas × {topo.shards} shards, placement {topo.placement}"
        if topo.name == "replicated":
            sizes = f"{topo.replicas} replicas"
    else:
        sizes = f"{topo.shards} shards"
    return Layout(
        title=f"{topo.name}, {sizes}",
        specs=topo.nodes(),
        proxy_config=lambda address, listen: topo.proxy_config(address, listen=listen),
        zones=zones,
        topology=topo,
    )


def config_layout(path: Path) -> Layout:
    """A proxy config file: every distinct backend becomes a local node (the file's own
    addresses are only names here); the proxy gets the same pools and routes."""
    try:
        load_config(path)  # the whole file is validated, with the proxy's own messages
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except ConfigError as exc:
        raise FleetError(str(exc)) from None
    pools: dict[str, Any] = data["pools"]
    specs: list[NodeSpec] = []
    by_address: dict[str, NodeSpec] = {}
    single = len(pools) == 1
    for r, (pool_name, pool) in enumerate(pools.items()):
        for s, address in enumerate(pool["backends"]):
            if address in by_address:
                continue
            name = f"memcached-{s}" if single else f"memcached-{r}-{s}"
            spec = NodeSpec(name, pool_name, "cache", r, s)
            by_address[address] = spec
            specs.append(spec)

    def proxy_config(address: Callable[[NodeSpec], str], listen: str) -> dict[str, Any]:
        cfg = dict(data)
        cfg["listen"] = listen
        cfg["pools"] = {
            name: {**pool, "backends": [address(by_address[b]) for b in pool["backends"]]}
            for name, pool in pools.items()
        }
        return cfg

    return Layout(title=f"{path} ({len(specs)} nodes)", specs=specs, proxy_config=proxy_config)


def write_proxy_config(
    layout: Layout,
    address: Callable[[NodeSpec], str],
    listen: str,
    path: Path,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the proxy config for nodes at ``address(spec)``, listening on ``listen`` (with
    the top-level settings ``extra`` on top). Atomically: the proxy watches the file and
    must never read half of it."""
    cfg = {**layout.proxy_config(address, listen), **(extra or {})}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(cfg, sort_keys=False))
    os.replace(tmp, path)
    return path

"""The five topology presets: which cache nodes a topology has, and the proxy config over them.

One description serves every place a topology is run: ``memfleet config`` prints the proxy
config, ``memfleet up`` starts the nodes on this machine, ``memfleet render`` writes them as
Kubernetes objects. Node names follow the Kubernetes pods: ``memcached-<r>-<s>`` for replica
``r``, shard ``s`` (``memcached-<s>`` where a topology has a single replica).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

TOPOLOGIES = ("sharded", "replicated", "local-failover", "replicated-sharded", "gutter")
DEFAULT_TOPOLOGY = "replicated-sharded"
Placement = Literal["aligned", "independent"]

# Reads answered by the fastest replica; every other command goes to all replicas and waits.
READ_COMMANDS = ("get", "gets", "mg")
# Replicated writes: acknowledged by the replicas in service; one that misses a write is
# journaled and out of service until repaired, so one replica down is no client error.
ACK = {"ack": "available"}


@dataclass(frozen=True)
class NodeSpec:
    """One cache node of a topology."""

    name: str  # memcached-<r>-<s>, memcached-<s>, memcached-local, memcached-gutter-<s>
    pool: str  # the proxy pool it belongs to
    role: Literal["cache", "local", "gutter"]
    replica: int
    shard: int


@dataclass(frozen=True)
class Topology:
    """A topology preset with its sizes."""

    name: str
    shards: int = 3
    replicas: int = 2
    placement: Placement = "aligned"
    gutter_shards: int = 1
    gutter_ttl: int = 10
    local_ttl_max: int = 5
    fill_ttl: int = 300

    def __post_init__(self) -> None:
        if self.name not in TOPOLOGIES:
            raise ValueError(
                f"unknown topology {self.name!r} (choose from {', '.join(TOPOLOGIES)})"
            )
        if self.shards < 1 or self.replicas < 1 or self.gutter_shards < 1:
            raise ValueError("shards, replicas and gutter shards must be at least 1")
        if self.gutter_ttl < 1 or self.local_ttl_max < 1:
            raise ValueError("TTL caps must be at least 1 second")

    @property
    def replica_count(self) -> int:
        """How many copies of a key the topology keeps in its cluster tier."""
        return self.replicas if self.name in ("replicated", "replicated-sharded") else 1

    def nodes(self) -> list[NodeSpec]:
        """Every cache node, in a stable order."""
        n = self.name
        if n == "sharded":
            return [NodeSpec(f"memcached-{s}", "main", "cache", 0, s) for s in range(self.shards)]
        if n == "replicated":
            return [
                NodeSpec(f"memcached-{r}", f"replica_{r}", "cache", r, 0)
                for r in range(self.replicas)
            ]
        if n == "replicated-sharded":
            return [
                NodeSpec(f"memcached-{r}-{s}", f"replica_{r}", "cache", r, s)
                for r in range(self.replicas)
                for s in range(self.shards)
            ]
        if n == "local-failover":
            cluster = [
                NodeSpec(f"memcached-{s}", "cluster", "cache", 0, s) for s in range(self.shards)
            ]
            return [NodeSpec("memcached-local", "local", "local", 0, 0), *cluster]
        main = [NodeSpec(f"memcached-{s}", "main", "cache", 0, s) for s in range(self.shards)]
        gutter = [
            NodeSpec(f"memcached-gutter-{s}", "gutter", "gutter", 0, s)
            for s in range(self.gutter_shards)
        ]
        return main + gutter

    def pool_seed(self, pool: str) -> str | None:
        """The pool's hash seed: shared (none) for aligned replicas, per replica otherwise."""
        if self.name == "replicated-sharded" and self.placement == "independent":
            return pool
        return None

    def proxy_config(
        self,
        address: Callable[[NodeSpec], str],
        listen: str = "127.0.0.1:11211",
        pool_options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The proxy config (as YAML-ready data) with ``address(node)`` as each backend."""
        pools: dict[str, dict[str, Any]] = {}
        for node in self.nodes():
            pool = pools.setdefault(node.pool, {"backends": [], **(pool_options or {})})
            pool["backends"].append(address(node))
        for name, pool in pools.items():
            seed = self.pool_seed(name)
            if seed is not None:
                pool["seed"] = seed
            # Written out although it is what an unset rejoin means under these routes: the
            # printed config says how each pool comes back from an outage.
            if self.replica_count > 1 or (self.name == "local-failover"):
                pool.setdefault("rejoin", "repair")
            elif self.name == "gutter" and name == "main":
                pool.setdefault("rejoin", "invalidate")
        cfg: dict[str, Any] = {"listen": listen, "pools": pools, "routes": self._routes()}
        if self.name == "local-failover":
            cfg["local_zone"] = "local"
        return cfg

    def _routes(self) -> dict[str, Any]:
        n = self.name
        if n == "sharded":
            return {"default": "main"}
        if n in ("replicated", "replicated-sharded"):
            replicas = [f"replica_{r}" for r in range(self.replicas)]
            if len(replicas) == 1:
                return {"default": replicas[0]}
            # A miss waits for a hit elsewhere (a replica back from an outage may be cold) and
            # the hit is copied back to the replica that missed it.
            read = {"allfastest": {"children": replicas, "miss": True, "fill_ttl": self.fill_ttl}}
            routes: dict[str, Any] = {c: copy.deepcopy(read) for c in READ_COMMANDS}
            routes["default"] = {"allsync": {"children": replicas, **ACK}}
            return routes
        if n == "local-failover":
            local = {"ttl": {"ttl": self.local_ttl_max, "child": "local"}}
            read = {
                "zfailover": {
                    "children": {"local": local, "cluster": "cluster"},
                    "miss": True,
                    "fill_ttl": self.local_ttl_max,
                }
            }
            routes = {c: copy.deepcopy(read) for c in READ_COMMANDS}
            routes["default"] = {"allsync": {"children": [copy.deepcopy(local), "cluster"], **ACK}}
            return routes
        # gutter: the main pool; the gutter only when the main node errors, with a short TTL.
        gutter_write = {"ttl": {"ttl": self.gutter_ttl, "child": "gutter"}}
        return {
            "get": {"failover": {"children": ["main", "gutter"]}},
            "gets": {"failover": {"children": ["main", "gutter"]}},
            "mg": {"failover": {"children": ["main", "gutter"]}},
            "default": {"failover": {"children": ["main", gutter_write]}},
        }


def template_address(template: str) -> Callable[[NodeSpec], str]:
    """Backend addresses from a template such as
    ``{name}.{statefulset}-headless.cache.svc.cluster.local:11211``.

    Fields: ``name``, ``pool``, ``role``, ``replica``, ``shard`` and ``statefulset`` (the
    node name without its last ``-<shard>``).
    """

    def address(node: NodeSpec) -> str:
        statefulset = node.name.rsplit("-", 1)[0] if node.name[-1].isdigit() else node.name
        return template.format(
            name=node.name,
            pool=node.pool,
            role=node.role,
            replica=node.replica,
            shard=node.shard,
            statefulset=statefulset,
        )

    return address

"""What ``memfleet scale --shards N`` changes in a running fleet: the topology it becomes, the
nodes it adds and the nodes it retires. Pure: both the ``scale`` command (to refuse a bad
request before it reaches ``up``) and ``up`` (which does the change) use it.

Only a topology preset has shards to change: a fleet started with ``--config FILE`` and the
``replicated`` topology (every replica pool is one node) are refused. In ``replicated-sharded``
every replica pool gets (or loses) the same shards, so the shards stay aligned; in
``local-failover`` the cluster tier is resized and in ``gutter`` the main pool (the local node
and the gutter pool keep their sizes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memfleet.fleet.local.messages import FleetError
from memfleet.topology.presets import NodeSpec, Topology

MAX_SHARDS = 256


@dataclass
class ScalePlan:
    """One resize: the topology after it, and the nodes it adds and retires."""

    before: Topology
    after: Topology
    add: list[NodeSpec] = field(default_factory=list)
    retire: list[NodeSpec] = field(default_factory=list)

    @property
    def direction(self) -> str:
        """``out``, ``in`` or ``none``."""
        if self.after.shards > self.before.shards:
            return "out"
        return "in" if self.after.shards < self.before.shards else "none"


def topology_record(topo: Topology) -> dict[str, Any]:
    """The topology as the state file keeps it, for ``scale`` and a later ``up`` to rebuild."""
    return {
        "name": topo.name,
        "shards": topo.shards,
        "replicas": topo.replicas,
        "placement": topo.placement,
        "gutter_shards": topo.gutter_shards,
    }


def topology_from_record(record: object) -> Topology | None:
    """The topology a state file names (None: the fleet runs a config file)."""
    if not isinstance(record, dict):
        return None
    try:
        return Topology(
            str(record["name"]),
            shards=int(record["shards"]),
            replicas=int(record["replicas"]),
            placement="independent" if record.get("placement") == "independent" else "aligned",
            gutter_shards=int(record.get("gutter_shards", 1)),
        )
    except (KeyError, TypeError, ValueError):
        return None


def plan_scale(current: Topology | None, shards: int, fleet: str) -> ScalePlan:
    """The plan to take fleet ``fleet`` (running ``current``) to ``shards`` shards per pool;
    FleetError (one line, what to do instead) when it cannot be scaled that way."""
    if current is None:
        raise FleetError(
            f"fleet {fleet!r} was started with --config FILE: only a topology preset "
            "(memfleet up --topology) can be scaled; edit the file's backends instead"
        )
    if current.name == "replicated":
        raise FleetError(
            f"fleet {fleet!r} is replicated: every replica pool is one node, there are no "
            "shards to scale (the sharded and replicated-sharded topologies have them)"
        )
    if not 1 <= shards <= MAX_SHARDS:
        raise FleetError(f"--shards {shards}: a pool has 1 to {MAX_SHARDS} shards")
    after = Topology(
        current.name,
        shards=shards,
        replicas=current.replicas,
        placement=current.placement,
        gutter_shards=current.gutter_shards,
        gutter_ttl=current.gutter_ttl,
        local_ttl_max=current.local_ttl_max,
        fill_ttl=current.fill_ttl,
    )
    old = {n.name: n for n in current.nodes()}
    new = {n.name: n for n in after.nodes()}
    return ScalePlan(
        before=current,
        after=after,
        add=[n for name, n in new.items() if name not in old],
        retire=[n for name, n in old.items() if name not in new],
    )

"""What `memfleet scale` changes (the plan, pure) and how the resize drill sums a run up."""

from __future__ import annotations

import pytest

from memfleet.fleet.local.messages import FleetError
from memfleet.fleet.local.scale_plan import plan_scale, topology_from_record, topology_record
from memfleet.tools.drill.options import DrillOptions
from memfleet.tools.drill.scale import auto_window, scale_sizes, scale_summary
from memfleet.topology.presets import NodeSpec, Topology


def names(specs: list[NodeSpec]) -> list[str]:
    return [s.name for s in specs]


def test_sharded_out_adds_the_next_shard_and_in_retires_it() -> None:
    out = plan_scale(Topology("sharded", shards=3), 4, "f")
    assert out.direction == "out" and names(out.add) == ["memcached-3"] and not out.retire
    back = plan_scale(Topology("sharded", shards=4), 2, "f")
    assert back.direction == "in" and not back.add
    assert names(back.retire) == ["memcached-2", "memcached-3"]
    assert plan_scale(Topology("sharded", shards=3), 3, "f").direction == "none"


def test_replicated_sharded_resizes_every_replica_pool_alike() -> None:
    plan = plan_scale(Topology("replicated-sharded", shards=3, replicas=2), 4, "f")
    assert names(plan.add) == ["memcached-0-3", "memcached-1-3"]
    assert {s.pool for s in plan.add} == {"replica_0", "replica_1"}
    assert plan.after.placement == "aligned" and plan.after.replicas == 2


@pytest.mark.parametrize(
    ("topology", "untouched"),
    [("gutter", "memcached-gutter-0"), ("local-failover", "memcached-local")],
)
def test_only_the_cluster_tier_is_resized(topology: str, untouched: str) -> None:
    plan = plan_scale(Topology(topology, shards=3), 4, "f")
    assert names(plan.add) == ["memcached-3"]
    assert untouched in names(plan.after.nodes()) and untouched not in names(plan.retire)


def test_refusals_say_what_to_do_instead() -> None:
    with pytest.raises(FleetError, match="--config FILE"):
        plan_scale(None, 4, "f")
    with pytest.raises(FleetError, match="no shards to scale"):
        plan_scale(Topology("replicated", replicas=3), 4, "f")
    with pytest.raises(FleetError, match="1 to 256 shards"):
        plan_scale(Topology("sharded"), 0, "f")


def test_the_state_files_topology_record_round_trips() -> None:
    topo = Topology("replicated-sharded", shards=5, replicas=3, placement="independent")
    assert topology_from_record(topology_record(topo)) == topo
    assert topology_from_record(None) is None
    assert topology_from_record({"name": "sharded"}) is None


def test_drill_sizes_and_window() -> None:
    opts = DrillOptions(topologies=["sharded"], fault="scale-out", duration=30.0)
    assert scale_sizes(opts) == (3, 4) and auto_window(opts) == 9.0
    opts = DrillOptions(topologies=["sharded"], fault="scale-in", shards=5, migration_window=2)
    assert scale_sizes(opts) == (6, 5) and auto_window(opts) == 2


def test_scale_summary_counts_from_the_second_the_resize_began() -> None:
    series = [
        {"t": 0, "hit_rate": 1.0, "misses": 0},
        {"t": 1, "hit_rate": 0.99, "misses": 2},
        {"t": 2, "hit_rate": 0.75, "misses": 50},  # the resize began at 2.4 s
        {"t": 3, "hit_rate": 0.995, "misses": 1},
        {"t": 4, "hit_rate": None, "misses": 0},
    ]
    s = scale_summary(series, 2.4, {"migration_fallback_hits": 7})
    assert s["misses_before_change"] == 2 and s["misses_after_change"] == 51
    assert s["min_hit_rate_after_change"] == 0.75 and s["seconds_below_99pct"] == 1
    assert s["proxy_migration"] == {"migration_fallback_hits": 7}

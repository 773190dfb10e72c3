"""The resize window's plan, on a proxy applying configs by hand (no network, no timers):
which pools get a migration route, what the old placements are after a second reload, that
replicas resized together stay aligned, and what stats and metrics report."""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest

from memfleet.config import ProxyConfig
from memfleet.config.digest import config_hash
from memfleet.observe.metrics import registry_for
from memfleet.proxy.app import Proxy
from memfleet.routes.allsync import AllSync
from memfleet.routes.command import CommandRoute
from memfleet.routes.fanout import AllFastest
from memfleet.routes.migrate import MigrationRoute
from memfleet.routes.pool import PoolRoute
from memfleet.topology.presets import Topology


def _config(shards: int, window: float = 600) -> ProxyConfig:
    topo = Topology("replicated-sharded", shards=shards, replicas=2)
    data: dict[str, Any] = topo.proxy_config(
        lambda n: f"127.0.0.1:{20000 + 10 * n.replica + n.shard}"
    )
    data["migration_window"] = window
    return ProxyConfig.model_validate(data)


def _routes(proxy: Proxy) -> tuple[AllSync, AllFastest]:
    root = proxy.root
    assert isinstance(root, CommandRoute)
    writes, reads = root.default, root.by_command[b"get"]
    assert isinstance(writes, AllSync) and isinstance(reads, AllFastest)
    return writes, reads


def _sizes(proxy: Proxy, pool: str) -> list[int]:
    return [len(p.backends) for p in proxy.migration.olds.get(pool, [])]


def test_replicas_resized_together_keep_aligned_placement() -> None:
    proxy = Proxy(_config(3))
    writes, reads = _routes(proxy)
    assert writes._aligned is not None and reads._aligned is not None
    proxy.apply(_config(4))
    writes, reads = _routes(proxy)
    for route in (writes, reads):
        kids = route.children
        assert all(type(c) is MigrationRoute for c in kids)
        assert {c.placement_key() for c in kids} == {(0, 4)}  # both replicas alike
        assert route._aligned is None  # every request through the migration routes
    # Repairs of one replica still read from the other (through its migration route).
    first = writes.children[0]
    assert isinstance(first, MigrationRoute)
    assert first.new.backend_list[0].repair_sources == [writes.children[1]]
    proxy.migration._finish("test")
    writes, reads = _routes(proxy)
    for route in (writes, reads):
        assert all(type(c) is PoolRoute for c in route.children)
        assert route._aligned is not None and route._aligned[0].placement_key() == (0, 4)
    assert not proxy.migration.active


def test_a_second_reload_keeps_the_old_placements_newest_first() -> None:
    proxy = Proxy(_config(3))
    proxy.apply(_config(4))
    assert _sizes(proxy, "replica_0") == [3]
    proxy.apply(_config(5))
    assert _sizes(proxy, "replica_0") == [4, 3]
    # Back to 4: the placement it returns to is no old one any more.
    proxy.apply(_config(4))
    assert _sizes(proxy, "replica_0") == [5, 3]
    # A reload that changes no placement keeps the window as it is.
    started = proxy.migration.counters.windows_started
    proxy.apply(_config(4))
    assert _sizes(proxy, "replica_0") == [5, 3]
    assert proxy.migration.counters.windows_started == started
    # migration_window 0: every old placement goes at once, the pools are plain again.
    proxy.apply(_config(3, window=0))
    writes, _ = _routes(proxy)
    assert not proxy.migration.active and writes._aligned is not None


def test_window_zero_switches_at_once() -> None:
    proxy = Proxy(_config(3, window=0))
    proxy.apply(_config(4, window=0))
    writes, _ = _routes(proxy)
    assert all(type(c) is PoolRoute for c in writes.children)
    assert not proxy.migration.active


def test_stats_and_metrics_report_the_config_hash_and_the_window() -> None:
    proxy = Proxy(_config(3))
    assert proxy.stats.config_hash == config_hash(_config(3))
    proxy.apply(_config(4))
    lines = dict(proxy.stats.general())
    assert lines["config_hash"] == config_hash(_config(4)) != config_hash(_config(3))
    assert dict(proxy.migration_lines())["migration_active"] == 1
    text = generate_latest(registry_for(proxy)).decode()
    assert f'memfleet_config_info{{hash="{config_hash(_config(4))}"}} 1.0' in text
    assert "memfleet_migration_active 1.0" in text
    assert "memfleet_migration_keys_moved_total 0.0" in text
    proxy.migration._finish("test")
    text = generate_latest(registry_for(proxy)).decode()
    assert "memfleet_migration_active 0.0" in text
    assert "memfleet_migration_windows_ended_total 1.0" in text

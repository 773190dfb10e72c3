"""`memfleet drill --fault scale-in --baseline`, briefly: a real fleet resized by `memfleet
scale` under load, with the migration window and without it, and the figures reported."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

KEYS = 1000


@pytest.fixture(scope="module")
def scale_in_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """One short scale-in drill (4 → 3 shards) on `sharded`, window on and off (the drill
    stops every fleet it starts; the timeout bounds it). The window outlasts the run: every
    read after the change, the final check's included, falls within it."""
    out = tmp_path_factory.mktemp("drill-scale")
    r = subprocess.run(
        [sys.executable, "-m", "memfleet", "drill", "--topology", "sharded", "--fault",
         "scale-in", "--baseline", "--duration", "6", "--keys", str(KEYS), "--rate", "800",
         "--migration-window", "60", "--out", str(out)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr + r.stdout
    doc: dict[str, Any] = json.loads((out / "drill-scale-in.json").read_text())
    assert (out / "drill-scale-in.png").stat().st_size > 0
    return doc, r.stdout


def _run(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (t,) = [t for t in doc["topologies"] if t["topology"] == name]
    return t


def test_the_window_keeps_every_read_a_hit(scale_in_report: tuple[dict[str, Any], str]) -> None:
    t = _run(scale_in_report[0], "sharded")
    s = t["summary"]
    assert (s["shards_before"], s["shards_after"]) == (4, 3) and s["migration_window"] > 0
    assert s["errors"] == 0 and s["stale_reads"] == 0 and s["stale_checked_reads"] > 0
    assert s["misses_before_change"] == 0  # warmed: every miss after the change is the move's
    assert s["misses_after_change"] == 0 and s["min_hit_rate_after_change"] == 1.0
    # The proxy read the moved keys through from the node being removed, and copied them.
    migration = s["proxy_migration"]
    assert migration["migration_fallback_hits"] > 0
    # A copy can still be on its way when the counters are read.
    assert 0 < migration["migration_copies"] <= migration["migration_fallback_hits"]
    assert migration["migration_active"] == 1  # still open when the run ended
    assert s["keys_lost"] == 0  # the final read of every warmed key, through the window
    assert t["fault_start"] < t["fault_end"]
    assert all("hit_rate" in p and "misses" in p for p in t["per_second"])


def test_without_the_window_the_move_is_a_miss_storm(
    scale_in_report: tuple[dict[str, Any], str],
) -> None:
    doc, stdout = scale_in_report
    on, off = _run(doc, "sharded")["summary"], _run(doc, "sharded, window off")["summary"]
    assert off["migration_window"] == 0
    assert off["misses_after_change"] > 0 and off["seconds_below_99pct"] > 0
    assert off["min_hit_rate_after_change"] < on["min_hit_rate_after_change"]
    assert off["proxy_migration"]["migration_fallbacks"] == 0
    assert off["keys_lost"] > on["keys_lost"]
    # The text report has the resize table with both runs.
    table = stdout.split("resize (scale-in)", 1)[1]
    assert "lowest hit rate" in table and "sharded, window off" in table

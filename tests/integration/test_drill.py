"""`memfleet drill` end to end: real fleets from `memfleet up`, a real SIGKILL, keys counted."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from memfleet.backends.hashing import Placement
from memfleet.tools.drill.options import WARM_PREFIX

KEYS = 1500


@pytest.fixture(scope="module")
def drill_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """One short kill-node drill over `replicated` and `sharded` (the drill stops every
    fleet it starts, whatever happens; the timeout bounds it)."""
    out = tmp_path_factory.mktemp("drill")
    r = subprocess.run(
        [sys.executable, "-m", "memfleet", "drill", "--compare", "--topology", "replicated",
         "--topology", "sharded", "--fault", "kill-node", "--duration", "6",
         "--keys", str(KEYS), "--rate", "1500", "--out", str(out)],
        capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr + r.stdout
    assert "summary" in r.stdout and "keys lost" in r.stdout
    doc: dict[str, Any] = json.loads((out / "drill-kill-node.json").read_text())
    return doc, out


def _topology(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (t,) = [t for t in doc["topologies"] if t["topology"] == name]
    return t


def test_replicated_kill_node_loses_nothing(drill_report: tuple[dict[str, Any], Path]) -> None:
    t = _topology(drill_report[0], "replicated")
    s = t["summary"]
    assert t["victim"] == "memcached-0"
    assert s["keys_written"] == KEYS
    assert s["read_errors"] == 0
    assert s["errors"] == 0  # writes too: acknowledged by the replica in service
    assert s["keys_lost"] == 0
    assert s["stale_reads"] == 0 and s["stale_checked_reads"] > 100
    assert s["requests"] > 0 and t["fault_start"] < t["fault_end"]


def test_sharded_kill_node_loses_exactly_the_shard(
    drill_report: tuple[dict[str, Any], Path],
) -> None:
    t = _topology(drill_report[0], "sharded")
    s = t["summary"]
    assert t["victim"] == "memcached-0"
    # The keys the drill wrote that live on shard 0 (memfleet's placement, 3 shards).
    placement = Placement(3, None)
    on_victim = sum(1 for i in range(KEYS) if placement.index(f"{WARM_PREFIX}{i}".encode()) == 0)
    assert 0 < on_victim < KEYS
    assert s["keys_written"] == KEYS
    assert s["keys_missing"] == on_victim and s["keys_lost"] == on_victim
    # While the node was down its keys' reads failed; afterwards they miss.
    assert s["read_errors"] > 0
    assert s["hit_rate_after"] is not None and s["hit_rate_after"] < 1.0
    fault = [p for p in t["per_second"] if t["fault_start"] <= p["t"] < t["fault_end"] - 1]
    assert any(p["get_errors"] > 0 for p in fault)


def test_drill_plot_is_a_png_with_four_panels(
    drill_report: tuple[dict[str, Any], Path],
) -> None:
    png = drill_report[1] / "drill-kill-node.png"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert 400 <= width <= 1200 and 500 <= height <= 1400
    assert 10_000 < len(data) < 200_000
    # The panels and lines the figure holds, from its PNG text chunks.
    chunks: dict[str, str] = {}
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"tEXt":
            k, _, v = data[pos + 8 : pos + 8 + length].partition(b"\0")
            chunks[k.decode()] = v.decode("latin-1")
        pos += 12 + length
    desc = chunks["Description"]
    for panel in ("throughput (ops/s)", "hit rate", "error rate", "p99 latency (ms)"):
        assert panel in desc
    assert "replicated" in desc and "sharded" in desc
    assert chunks["Title"] == "memfleet drill: kill-node"

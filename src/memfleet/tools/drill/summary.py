"""What a topology's drill measured: its per-second points and the summary row (errors, keys
lost, time to recover, whether the data recovered, hit rates before and after)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memfleet.tools.bench.sample import Sample


@dataclass
class TopologyResult:
    """One topology's drill: the per-second series, the fault window, the summary."""

    topology: str
    victim: str = ""
    series: list[dict[str, Any]] = field(default_factory=list)
    fault_start: float = 0.0
    fault_end: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None


def series_point(s: Sample) -> dict[str, Any]:
    """One second of the bench run as the drill reports and plots it."""
    m = s.summary(1.0)
    return {
        "t": s.second,
        "ops_per_sec": m["ops_per_sec"],
        # The client's view: a get that failed is as useless as a miss.
        "hit_rate": round(s.hits / s.gets, 4) if s.gets else None,
        "misses": s.misses,
        "error_rate": m["error_rate"],
        "errors": m["errors"],
        "get_errors": m["get_errors"],
        "set_errors": m["set_errors"],
        "p99_ms": None if m["p99_us"] is None else round(m["p99_us"] / 1000, 3),
    }


def summarize(series: list[dict[str, Any]], fault_start: float, fault_end: float,
              verify: dict[str, int], total: Sample) -> dict[str, Any]:  # fmt: skip
    """The summary row of one topology."""
    before = [p for p in series if p["t"] + 1 <= fault_start and p["ops_per_sec"] > 0]
    base_ops = sum(p["ops_per_sec"] for p in before) / len(before) if before else 0.0
    base_hits = [p["hit_rate"] for p in before if p["hit_rate"] is not None]
    # Recovered: from this second on, no errors and at least 80% of the throughput before.
    recovered_at: float | None = None
    for i, p in enumerate(series):
        if p["t"] + 1 <= fault_start:
            continue
        rest = series[i:]
        if all(q["errors"] == 0 and q["ops_per_sec"] >= 0.8 * base_ops for q in rest[:-1]):
            recovered_at = float(p["t"])
            break
    after = [p for p in series if recovered_at is not None and p["t"] >= max(recovered_at,
             fault_end) and p["hit_rate"] is not None]  # fmt: skip
    return {
        "requests": total.ops,
        "errors": total.errors,
        "read_errors": total.get_errors,
        "write_errors": total.set_errors,
        "keys_written": sum(verify.values()),
        "keys_lost": verify["missing"] + verify["wrong"] + verify["unreadable"],
        "keys_missing": verify["missing"],
        "keys_wrong": verify["wrong"],
        "keys_unreadable": verify["unreadable"],
        # Service and data recover apart: errors can stop while keys stay lost.
        "data_recovered": verify["missing"] + verify["wrong"] + verify["unreadable"] == 0,
        "hit_rate_before": round(sum(base_hits) / len(base_hits), 4) if base_hits else None,
        "time_to_recover_s": (
            None if recovered_at is None else round(max(0.0, recovered_at - fault_start), 1)
        ),
        "hit_rate_after": (
            round(sum(p["hit_rate"] for p in after) / len(after), 4) if after else None
        ),
    }

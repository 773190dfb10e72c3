"""A finished bench run and how it is shown: the JSON document ``--json`` prints, and the
human-readable summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memfleet.tools.bench.sample import Sample
from memfleet.tools.bench.workload import BenchConfig


@dataclass
class BenchResult:
    """A finished run: the per-second series and the total."""

    config: BenchConfig
    seconds: float
    series: list[Sample]
    total: Sample
    failures: list[str]

    def report(self) -> dict[str, Any]:
        """The JSON document ``--json`` prints."""
        cfg = self.config
        return {
            "target": f"{cfg.host}:{cfg.port}",
            "connections": cfg.connections,
            "pipeline": cfg.pipeline,
            "ratio": f"{cfg.ratio[0]}:{cfg.ratio[1]}",
            "keys": cfg.keys,
            "value_size": cfg.value_size,
            "processes": cfg.processes,
            "seconds": round(self.seconds, 3),
            **self.total.summary(self.seconds),
            "per_second": [{"second": s.second, **s.summary(1.0)} for s in self.series],
            "worker_failures": self.failures,
        }


def format_text(result: BenchResult) -> str:
    """The human-readable summary."""
    r = result.report()

    def us(v: float | None) -> str:
        return "-" if v is None else f"{v:,.0f} µs"

    hit = "-" if r["hit_rate"] is None else f"{r['hit_rate'] * 100:.2f}%"
    return "\n".join([
        f"target {r['target']}: {r['connections']} connections × pipeline {r['pipeline']}, "
        f"ratio {r['ratio']}, {r['keys']} keys of {r['value_size']} B, "
        f"{r['processes']} process(es), {r['seconds']:g}s",
        f"  ops/s     {r['ops_per_sec']:,.0f}  ({r['ops']:,} requests: {r['gets']:,} gets, "
        f"{r['sets']:,} sets)",
        f"  hit rate  {hit}  ({r['hits']:,} hits, {r['misses']:,} misses)",
        f"  errors    {r['errors']:,}  (gets {r['get_errors']:,}, sets {r['set_errors']:,})",
        f"  latency   p50 {us(r['p50_us'])}  p90 {us(r['p90_us'])}  p99 {us(r['p99_us'])}  "
        f"p99.9 {us(r['p999_us'])}",
    ] + [f"  worker failed: {f}" for f in r["worker_failures"]])  # fmt: skip

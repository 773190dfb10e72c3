"""The counts of one second of a run (or of the whole run, once merged) and their summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memfleet.tools.bench.latency import percentile


@dataclass
class Sample:
    """Counts for one second of the run (or for the whole run, once merged)."""

    second: int = 0
    gets: int = 0
    hits: int = 0
    misses: int = 0
    get_errors: int = 0
    sets: int = 0
    set_errors: int = 0
    hist: dict[int, int] = field(default_factory=dict)

    @property
    def ops(self) -> int:
        """Requests answered (errors included)."""
        return self.gets + self.sets

    @property
    def errors(self) -> int:
        """Requests that got an error or no answer."""
        return self.get_errors + self.set_errors

    def add(self, other: Sample) -> None:
        """Merge ``other`` into this one."""
        self.gets += other.gets
        self.hits += other.hits
        self.misses += other.misses
        self.get_errors += other.get_errors
        self.sets += other.sets
        self.set_errors += other.set_errors
        for b, n in other.hist.items():
            self.hist[b] = self.hist.get(b, 0) + n

    def summary(self, seconds: float) -> dict[str, Any]:
        """The numbers a report shows (latencies in microseconds)."""

        def us(q: float) -> float | None:
            v = percentile(self.hist, q)
            return None if v is None else round(v * 1e6, 1)

        answered = self.hits + self.misses
        return {
            "ops": self.ops,
            "ops_per_sec": round(self.ops / seconds, 1) if seconds > 0 else 0.0,
            "gets": self.gets,
            "sets": self.sets,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": round(self.hits / answered, 4) if answered else None,
            "errors": self.errors,
            "get_errors": self.get_errors,
            "set_errors": self.set_errors,
            "error_rate": round(self.errors / self.ops, 4) if self.ops else 0.0,
            "p50_us": us(50),
            "p90_us": us(90),
            "p99_us": us(99),
            "p999_us": us(99.9),
        }

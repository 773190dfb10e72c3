"""Live progress of a bench run on a terminal (rich), one line with the last second's numbers."""

from __future__ import annotations

from typing import Any

from memfleet.tools.bench.sample import Sample


class Progress:
    """Live progress on a terminal: one line per second with the last second's numbers."""

    def __init__(self, duration: float, enabled: bool) -> None:
        self.duration = duration
        self.enabled = enabled
        self._live: Any = None
        self._seconds: dict[int, Sample] = {}

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.live import Live

            self._live = Live("starting...", console=Console(stderr=True), refresh_per_second=4)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def sample(self, s: Sample) -> None:
        """A worker's sample arrived: show the newest complete second."""
        slot = self._seconds.setdefault(s.second, Sample(second=s.second))
        slot.add(s)
        if self._live is None:
            return
        done = sorted(self._seconds)
        last = self._seconds[done[-2]] if len(done) > 1 else slot
        m = last.summary(1.0)
        hit = "-" if m["hit_rate"] is None else f"{m['hit_rate'] * 100:.1f}%"
        p99 = "-" if m["p99_us"] is None else f"{m['p99_us']:,.0f} µs"
        self._live.update(
            f"[bold]{min(s.second + 1, int(self.duration))}/{self.duration:g}s[/]  "
            f"{m['ops_per_sec']:,.0f} ops/s  hit {hit}  errors {m['errors']}  p99 {p99}"
        )

"""Per-backend reply latency, as a histogram of plain ints the metrics read at scrape time."""

from __future__ import annotations

from bisect import bisect_left


class LatencyHistogram:
    """Fixed-bucket latency histogram of plain ints (read by the metrics collector).

    ``observe`` is called once per backend read with the number of replies it carried, so
    its cost does not grow with pipelining.
    """

    __slots__ = ("bounds", "count", "counts", "sum")

    # Seconds; loopback memcached answers in tens of µs, a hung node in read_timeout.
    BOUNDS = (
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
        0.1, 0.25, 0.5, 1.0, 2.5,
    )  # fmt: skip

    def __init__(self) -> None:
        self.bounds = self.BOUNDS
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float, n: int = 1) -> None:
        """Record ``n`` observations of ``seconds``."""
        self.counts[bisect_left(self.bounds, seconds)] += n
        self.sum += seconds * n
        self.count += n

"""The latency histogram: log buckets of 2% width, so memory stays bounded however long the
run, and the percentiles read from it."""

from __future__ import annotations

import math

# Log buckets: bucket i holds latencies in [GROWTH**i, GROWTH**(i+1)) microseconds.
GROWTH = 1.02
_LOG_GROWTH = math.log(GROWTH)
MAX_BUCKET = int(math.log(60e6) / _LOG_GROWTH)  # one minute; anything slower is clamped


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a latency."""
    us = seconds * 1e6
    if us < 1.0:
        return 0
    return min(MAX_BUCKET, int(math.log(us) / _LOG_GROWTH))


def bucket_value(b: int) -> float:
    """A latency (seconds) representing bucket ``b`` (its geometric middle)."""
    return float(GROWTH ** (b + 0.5) / 1e6)


def percentile(hist: dict[int, int], q: float) -> float | None:
    """The ``q``-th percentile (0..100) of a bucket histogram, in seconds; None if empty."""
    total = sum(hist.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q / 100.0 * total))
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= rank:
            return bucket_value(b)
    return bucket_value(max(hist))

"""Merging the workers' metrics (``memfleet proxy --workers N``): sums where a sum means
something, not for 0/1 gauges."""

from __future__ import annotations

from memfleet.proxy.workers import merge_metrics

WORKER = """\
# HELP memfleet_backend_up Backend reachable
# TYPE memfleet_backend_up gauge
memfleet_backend_up{{backend="a"}} {up}
# HELP memfleet_requests Client requests
# TYPE memfleet_requests counter
memfleet_requests_total{{command="get"}} {n}
# HELP memfleet_info memfleet version
# TYPE memfleet_info gauge
memfleet_info{{version="0.1.0"}} 1.0
"""


def test_counters_add_up_and_up_gauges_do_not() -> None:
    merged = merge_metrics([WORKER.format(up=1.0, n=5.0), WORKER.format(up=0.0, n=7.0)])
    assert 'memfleet_requests_total{command="get"} 12.0' in merged
    assert 'memfleet_backend_up{backend="a"} 1.0' in merged  # one worker reaches it
    both = merge_metrics([WORKER.format(up=1.0, n=1.0), WORKER.format(up=1.0, n=1.0)])
    assert 'memfleet_backend_up{backend="a"} 1.0' in both  # not 2.0
    assert 'memfleet_info{version="0.1.0"} 1.0' in merged
    down = merge_metrics([WORKER.format(up=0.0, n=1.0), WORKER.format(up=0.0, n=1.0)])
    assert 'memfleet_backend_up{backend="a"} 0.0' in down

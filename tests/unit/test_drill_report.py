"""The drill's picture and summary, from made-up results: one legend, lines that stay apart
when their values are equal, an error-rate axis where 1% shows, and service recovery told
apart from data recovery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memfleet.tools.drill.report import data_recovered, service_recovered, summary_table
from memfleet.tools.drill.summary import TopologyResult

plot = pytest.importorskip("memfleet.tools.drill.plot")


def point(t: int, ops: float, errors: float, hit: float | None = 1.0) -> dict[str, Any]:
    return {
        "t": t,
        "ops_per_sec": ops,
        "hit_rate": hit,
        "error_rate": errors,
        "errors": int(errors * ops),
        "get_errors": 0,
        "set_errors": 0,
        "p99_ms": 1.0,
    }


def result(name: str, errors: float, lost: int = 0, ttr: float | None = 3.0) -> TopologyResult:
    series = [point(t, 0.0 if 3 <= t < 6 else 1000.0, errors if 3 <= t < 6 else 0.0)
              for t in range(10)]  # fmt: skip
    summary = {"errors": int(errors * 3000), "read_errors": 0, "write_errors": 0,
               "keys_lost": lost, "keys_written": 5000, "time_to_recover_s": ttr,
               "hit_rate_before": 1.0, "hit_rate_after": 1.0}  # fmt: skip
    return TopologyResult(name, "memcached-0", series, 3.0, 6.0, summary)


def test_one_legend_and_equal_lines_stay_apart() -> None:
    # Two topologies that both stall to 0 ops/s with the same 2.5% errors.
    fig = plot.figure([result("sharded", 0.025), result("gutter", 0.025)], "hang-node")
    axes = fig.axes
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in axes)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["sharded", "gutter", "hang-node (fault window)"]
    a, b = axes[0].get_lines()
    assert a.get_marker() != b.get_marker() and a.get_linestyle() != b.get_linestyle()
    assert list(a.get_xdata()) != list(b.get_xdata())  # a small offset in time
    assert list(a.get_ydata()) == list(b.get_ydata())  # ...never in the values


def test_an_error_rate_of_one_percent_shows() -> None:
    fig = plot.figure([result("sharded", 0.025)], "kill-node")
    ax = fig.axes[2]
    assert "error rate (%)" in ax.get_ylabel()
    fig.canvas.draw()
    y0, y1, y100 = (ax.transData.transform((0, v))[1] for v in (0, 1, 100))
    # On a 0-1 scale 1% is 1% of the panel's height; here it is a good part of it.
    assert (y1 - y0) > 0.15 * (y100 - y0)
    assert max(ax.get_lines()[0].get_ydata()) == pytest.approx(2.5)


def test_the_png_says_what_it_shows(tmp_path: Path) -> None:
    png = plot.plot([result("sharded", 0.025)], "kill-node", tmp_path / "d.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and b"legend: one, for the figure" in data


def test_service_recovery_is_not_data_recovery() -> None:
    gutter = result("gutter", 0.0, lost=1668, ttr=0.0)
    gutter.summary["errors"] = 0
    assert service_recovered(gutter.summary) == "no outage"
    assert data_recovered(gutter.summary) == "no: 1,668 of 5,000 keys lost, 33.4%"
    replicated = result("replicated", 0.1, lost=0, ttr=10.0)
    assert service_recovered(replicated.summary) == "after 10 s"
    assert data_recovered(replicated.summary).startswith("yes")
    never = result("sharded", 0.3, lost=1668, ttr=None)
    assert service_recovered(never.summary) == "not recovered"
    table = summary_table([gutter, replicated])
    header = table.splitlines()[0]
    assert "service recovered" in header and "data recovered" in header
    assert "time to recover" not in header
    row = next(line for line in table.splitlines() if line.startswith("gutter"))
    assert "yes" not in row and "1,668 of 5,000 keys lost" in row

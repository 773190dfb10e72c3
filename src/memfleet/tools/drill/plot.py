"""The drill's plot: one panel per metric, one line per topology, the fault window shaded.

Made to be read, not only drawn: one legend for the whole figure (above the panels); each
topology has its own colour, marker and dash, and its points sit a hair apart on the time
axis, so topologies with equal values (all at 0 errors, all stalled at 0 ops/s) stay visible
instead of hiding each other; the error rate is in percent on a scale that is linear up to
1% and logarithmic above, so 1-3% errors show as clearly as 100%.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from memfleet.tools.drill.options import DrillError
from memfleet.tools.drill.summary import TopologyResult

METRICS = (
    ("ops_per_sec", "throughput (ops/s)"),
    ("hit_rate", "hit rate"),
    ("error_rate", "error rate"),
    ("p99_ms", "p99 latency (ms)"),
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
DASHES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1, 1, 1, 1, 1)))
SPREAD = 0.12  # seconds between the points of neighbouring topologies


def style(i: int, n: int) -> dict[str, Any]:
    """Marker, dash and time offset of the ``i``-th of ``n`` topologies."""
    return {
        "marker": MARKERS[i % len(MARKERS)],
        "linestyle": DASHES[i % len(DASHES)],
        "offset": (i - (n - 1) / 2) * SPREAD,
    }


def series(r: TopologyResult, key: str, offset: float) -> tuple[list[float], list[float]]:
    """The points of one line: at the middle of each second (plus ``offset``); the error rate
    in percent, the hit rate as a fraction."""
    xs, ys = [], []
    for p in r.series:
        v = p.get(key)
        if v is None:
            continue
        xs.append(p["t"] + 0.5 + offset)
        ys.append(v * 100 if key == "error_rate" else v)
    return xs, ys


def plot(results: list[TopologyResult], fault: str, path: Path) -> Path:
    """Draw the figure into ``path`` (PNG)."""
    import matplotlib.pyplot as plt

    fig = figure(results, fault)
    path.parent.mkdir(parents=True, exist_ok=True)
    # What the figure shows, also as PNG text chunks: tools (and tests) can check the panels.
    ran = [r for r in results if not r.skipped]
    meta = {
        "Title": f"memfleet drill: {fault}",
        "Description": "panels: " + "; ".join(label for _, label in METRICS)
        + " | topologies: " + ", ".join(r.topology for r in ran)
        + " | legend: one, for the figure | error rate: percent, symlog (linear below 1%)",
    }  # fmt: skip
    fig.savefig(path, dpi=72, metadata=meta)
    plt.close(fig)
    return path


def figure(results: list[TopologyResult], fault: str) -> Any:
    """One panel per metric, one line per topology, the fault window shaded, one legend."""
    try:
        import matplotlib
    except ImportError:
        raise DrillError("the plot needs matplotlib: pip install 'memfleet[drill]'") from None
    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, FuncFormatter

    ran = [r for r in results if not r.skipped]
    fig, axes = plt.subplots(len(METRICS), 1, figsize=(8, 10), sharex=True)
    handles: list[Any] = []
    for ax, (key, label) in zip(axes, METRICS, strict=True):
        for i, r in enumerate(ran):
            st = style(i, len(ran))
            xs, ys = series(r, key, st["offset"])
            (line,) = ax.plot(xs, ys, marker=st["marker"], linestyle=st["linestyle"],
                              markersize=4, linewidth=1.4, alpha=0.9, label=r.topology,
                              zorder=3 + len(ran) - i)  # fmt: skip
            if ax is axes[0]:
                handles.append(line)
        if ran:
            ax.axvspan(ran[0].fault_start, ran[0].fault_end, color="red", alpha=0.12, zorder=1)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if key == "hit_rate":
            ax.set_ylim(-0.05, 1.05)
        elif key == "error_rate":
            # Linear from 0 to 1 %, logarithmic above: 2.5 % is as plain as 100 %.
            ax.set_yscale("symlog", linthresh=1.0, linscale=1.0)
            ax.set_ylim(-0.1, 110)
            ax.yaxis.set_major_locator(FixedLocator([0, 0.5, 1, 3, 10, 30, 100]))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}%"))
            ax.set_ylabel("error rate (%)")
        else:
            ax.set_ylim(bottom=0)
    axes[-1].set_xlabel("seconds into the run")
    if ran:
        handles.append(Patch(color="red", alpha=0.12, label=f"{fault} (fault window)"))
    fig.legend(handles=handles, loc="upper center", ncol=min(3, max(1, len(handles))),
               fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.965))  # fmt: skip
    fig.suptitle(f"memfleet drill: {fault}", y=0.995)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def results_from_report(doc: dict[str, Any]) -> list[TopologyResult]:
    """The results a JSON report (``drill-<fault>.json``) holds, to plot it again."""
    return [
        TopologyResult(
            topology=t["topology"],
            victim=t.get("victim", ""),
            series=t.get("per_second", []),
            fault_start=t.get("fault_start", 0.0),
            fault_end=t.get("fault_end", 0.0),
            summary=t.get("summary", {}),
            skipped=t.get("skipped"),
        )
        for t in doc["topologies"]
    ]


def main(argv: list[str]) -> int:
    """``python -m memfleet.tools.drill.plot drill-<fault>.json ...``: draw each report's plot
    again (beside it, as ``.png``) from the numbers it holds, without running the drill."""
    import argparse
    import json

    parser = argparse.ArgumentParser(
        prog="python -m memfleet.tools.drill.plot",
        description="Draw each drill report's plot again, beside it, from its numbers.",
    )
    parser.add_argument("reports", nargs="+", metavar="drill-FAULT.json")
    args = parser.parse_args(argv)
    for name in args.reports:
        source = Path(name)
        try:
            doc = json.loads(source.read_text())
            results = results_from_report(doc)
            fault = doc["fault"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"{name}: not a drill report ({exc})", file=sys.stderr)
            return 2
        print(plot(results, fault, source.with_suffix(".png")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

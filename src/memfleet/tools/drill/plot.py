"""The drill's plot: one panel per metric, one line per topology, the fault window shaded."""

from __future__ import annotations

from pathlib import Path

from memfleet.tools.drill.options import DrillError
from memfleet.tools.drill.summary import TopologyResult

METRICS = (
    ("ops_per_sec", "throughput (ops/s)"),
    ("hit_rate", "hit rate"),
    ("error_rate", "error rate"),
    ("p99_ms", "p99 latency (ms)"),
)


def plot(results: list[TopologyResult], fault: str, path: Path) -> Path:
    """One panel per metric, one line per topology, the fault window shaded."""
    try:
        import matplotlib
    except ImportError:
        raise DrillError("the plot needs matplotlib: pip install 'memfleet[drill]'") from None
    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    ran = [r for r in results if not r.skipped]
    fig, axes = plt.subplots(len(METRICS), 1, figsize=(8, 9), sharex=True)
    for ax, (key, label) in zip(axes, METRICS, strict=True):
        for r in ran:
            xs = [p["t"] + 0.5 for p in r.series if p[key] is not None]
            ys = [p[key] for p in r.series if p[key] is not None]
            ax.plot(xs, ys, marker=".", linewidth=1.5, label=r.topology)
        if ran:
            ax.axvspan(ran[0].fault_start, ran[0].fault_end, color="red", alpha=0.12,
                       label=f"{fault} (fault window)")  # fmt: skip
        ax.set_ylabel(label)
        ax.set_title(label, fontsize=10, loc="left")
        ax.grid(True, alpha=0.3)
        if key in ("hit_rate", "error_rate"):
            ax.set_ylim(-0.05, 1.05)
        else:
            ax.set_ylim(bottom=0)
    axes[-1].set_xlabel("seconds into the run")
    axes[0].legend(fontsize=8, ncol=3, loc="lower left")
    fig.suptitle(f"memfleet drill: {fault}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    # What the figure shows, also as PNG text chunks: tools (and tests) can check the panels.
    meta = {
        "Title": f"memfleet drill: {fault}",
        "Description": "panels: " + "; ".join(label for _, label in METRICS)
        + " | topologies: " + ", ".join(r.topology for r in ran),
    }  # fmt: skip
    fig.savefig(path, dpi=72, metadata=meta)
    plt.close(fig)
    return path

"""``memfleet drill`` with the drill's own proxy: ``--workers N`` processes per instance and
``--proxies M`` instances over the same nodes (a DaemonSet's proxies share no journal). Prints
the docs/drills.md table of the run (every number is in the JSON report it writes).

    python benchmarks/drill_proxies.py --fault hang-node --workers 2 --out docs/drills/workers2
    python benchmarks/drill_proxies.py --fault restart-node --proxies 2 --topology replicated

(`memfleet drill` itself runs ``memfleet up``'s proxy: one worker, one instance.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from memfleet.tools.drill.options import FAULTS, DrillError, DrillOptions
from memfleet.tools.drill.runner import run_drill
from memfleet.tools.drill.summary import TopologyResult

REPLICATED = ["replicated", "local-failover", "replicated-sharded"]


def row(r: TopologyResult) -> str:
    """One topology's line of the docs table."""
    if r.skipped:
        return f"| `{r.topology}` | skipped: {r.skipped} |"
    s: dict[str, Any] = r.summary
    before = [p["ops_per_sec"] for p in r.series if p["t"] + 1 <= r.fault_start]
    during = [p["ops_per_sec"] for p in r.series[:-1] if p["t"] + 1 > r.fault_start]
    base = statistics.median(before) if before else 0.0
    worst = f"{min(during) / base * 100:.0f}%" if base and during else "-"
    p99 = max((p["p99_ms"] or 0.0) for p in r.series)
    ttr = s["time_to_recover_s"]
    after = s["hit_rate_after"]
    cells = [
        f"`{r.topology}`", r.victim, f"{s['requests']:,}", f"{s['errors']:,}",
        f"{s['read_errors']:,}", f"{s['write_errors']:,}",
        f"{s['stale_reads']:,} ({s['stale_checked_reads']:,})",
        f"{s['keys_lost']:,} / {s['keys_written']:,}",
        "not recovered" if ttr is None else f"{ttr:g} s",
        "-" if after is None else f"{after * 100:.1f}%", worst, f"{p99:.1f}",
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| topology | node | requests | errors | read errors | write errors | stale reads (checked) "
    "| keys lost | service recovered (s) | hit rate after | worst second / median before "
    "| max p99 ms |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def main() -> int:
    """Run the drill; print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fault", choices=FAULTS, default="kill-node")
    ap.add_argument("--topology", action="append", help="repeatable; default: the replicated ones")
    ap.add_argument("--workers", type=int, default=2, help="worker processes per proxy instance")
    ap.add_argument("--proxies", type=int, default=1, help="proxy instances over the nodes")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not 1 <= args.workers <= 64 or not 1 <= args.proxies <= 8:
        ap.error("--workers must be 1..64 and --proxies 1..8")
    opts = DrillOptions(
        topologies=args.topology or REPLICATED, fault=args.fault, duration=args.duration,
        workers=args.workers, proxies=args.proxies, out=args.out,
        log=lambda m: print(f"drill: {m}", file=sys.stderr),
    )  # fmt: skip
    try:
        results, json_path, png = run_drill(opts)
    except (DrillError, OSError) as exc:
        print(f"drill_proxies: {exc}", file=sys.stderr)
        return 1
    print(f"{args.fault}, {args.workers} worker(s) x {args.proxies} proxy instance(s)\n")
    print(HEADER)
    for r in results:
        print(row(r))
    for r in results:
        for example in r.summary.get("stale_examples", []) if not r.skipped else []:
            print(f"  {r.topology}: {example}")
    print(f"\nreport: {json_path}\nplot:   {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

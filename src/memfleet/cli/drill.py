"""``memfleet drill``: the fault drill's command; the drill is :mod:`memfleet.tools.drill`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from memfleet.manpage import ManCommand
from memfleet.tools.bench.workload import BenchError, parse_ratio
from memfleet.tools.drill.options import FAULTS, SCALE_FAULTS, DrillError, DrillOptions
from memfleet.tools.drill.report import per_second_table, scale_table, summary_table
from memfleet.tools.drill.runner import run_drill
from memfleet.topology.presets import DEFAULT_TOPOLOGY, TOPOLOGIES


@click.command(
    "drill", cls=ManCommand,
    examples=(
        ("memfleet drill", "kill-node on replicated-sharded: 20 s of load, the fault at 6 s, "
         "the heal at 12 s; a report per second, a summary and a plot."),
        ("memfleet drill --compare --fault kill-node --duration 20 --out drills/",
         "All five topologies side by side (docs/drills.md is this run)."),
        ("memfleet drill --topology gutter --fault hang-node --json", "One topology, its "
         "memcached frozen (SIGSTOP) instead of killed; the JSON report on stdout."),
        ("memfleet drill --topology sharded --fault scale-out --baseline --duration 30",
         "3 → 4 shards by memfleet scale under load, with the migration window and again "
         "with it off (docs/drills.md has this run)."),
    ),
    exit_codes=((0, "the drill ran (whatever it found)"),
                (1, "it could not run: a fleet did not start, warming failed"),
                (2, "a bad option")),
    epilog="Faults: kill-node (SIGKILL the node's memcached; healed by restarting it), "
    "hang-node (SIGSTOP, then SIGCONT), restart-node (a graceful restart of a restartable "
    "node), kill-host and cut-host (a simulated host killed or cut off: Linux, root). Each "
    "fleet runs under `memfleet up --restart never`, so nothing but the drill's heal "
    "brings a node back. scale-out and scale-in resize the fleet with `memfleet scale` "
    "(--shards → --shards + 1, and back) at 30%; the proxy's migration window lasts until "
    "60% unless --migration-window, and a scale-in's removed node stops when it ends. "
    "'service recovered' is when errors stopped and throughput came back; "
    "'data' says whether the keys written before the fault are still readable.",
)  # fmt: skip
@click.option("--topology", "topologies", multiple=True, type=click.Choice(TOPOLOGIES),
              help=f"Topology to drill (repeatable).  [default: {DEFAULT_TOPOLOGY}; all five "
              "with --compare]")  # fmt: skip
@click.option("--fault", type=click.Choice(FAULTS), default="kill-node", show_default=True,
              help="What breaks (see below).")  # fmt: skip
@click.option("--duration", type=click.FloatRange(4, 600), default=20.0, show_default=True,
              help="Seconds of load; the fault comes at 30%, the heal at 60%.")  # fmt: skip
@click.option("--compare", is_flag=True,
              help="Drill several topologies side by side (all five unless "
              "--topology).")  # fmt: skip
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for the JSON report and the PNG plot.  [default: "
              "./drill-YYYYMMDD-HHMMSS]")  # fmt: skip
@click.option("--keys", type=click.IntRange(10, 1_000_000), default=5_000, show_default=True,
              help="Keys warmed before the fault and read back after it.")  # fmt: skip
@click.option("--rate", type=click.FloatRange(0), default=3_000.0, show_default=True,
              help="Requests per second of the workload (0: as fast as possible).")  # fmt: skip
@click.option("--connections", type=click.IntRange(1, 1000), default=4, show_default=True,
              help="Client connections of the workload.")  # fmt: skip
@click.option("--ratio", default="9:1", show_default=True, help="GET:SET of the workload.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes of each proxy (memfleet proxy --workers): they share the "
              "replicas' journal and fences.")  # fmt: skip
@click.option("--proxies", type=click.IntRange(1, 8), default=1, show_default=True,
              help="Proxy instances over the same nodes, the load spread over them (a "
              "DaemonSet's proxies: they share no journal).")  # fmt: skip
@click.option("--shards", type=click.IntRange(1, 64), default=3, show_default=True,
              help="scale-out: from this many shards to one more; scale-in: from one more "
              "to this many.")  # fmt: skip
@click.option("--migration-window", type=click.FloatRange(0, 3600), default=None,
              help="scale-out/scale-in: the proxy's migration_window, seconds.  [default: "
              "from the change to 60% of the run]")  # fmt: skip
@click.option("--baseline", is_flag=True,
              help="scale-out/scale-in: drill each topology again with the window off "
              "(migration_window: 0, a plain reload), side by side.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report.")
def drill_cmd(
    topologies: tuple[str, ...],
    fault: str,
    duration: float,
    compare: bool,
    out: Path | None,
    keys: int,
    rate: float,
    connections: int,
    ratio: str,
    workers: int,
    proxies: int,
    shards: int,
    migration_window: float | None,
    baseline: bool,
    as_json: bool,
) -> None:
    """Fault drill: bring a topology up, load it, break it, heal it, then report and plot
    what the clients saw."""
    chosen = list(topologies) or (list(TOPOLOGIES) if compare else [DEFAULT_TOPOLOGY])
    try:
        mix = parse_ratio(ratio)
    except BenchError as exc:
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(2)
    try:
        opts = DrillOptions(
            topologies=chosen, fault=fault, duration=duration, keys=keys, rate=rate,
            connections=connections, ratio=mix, out=out, workers=workers, proxies=proxies,
            log=lambda m: click.echo(f"memfleet drill: {m}", err=True), shards=shards,
            migration_window=migration_window, baseline=baseline,
        )  # fmt: skip
        results, json_path, png = run_drill(opts)
    except (DrillError, BenchError, OSError) as exc:
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json_path.read_text(), nl=False)
        return
    for r in results:
        if r.skipped:
            click.echo(f"\n{r.topology}: skipped: {r.skipped}")
            continue
        click.echo(f"\n{r.topology}: {fault} on {r.victim}, "
                   f"fault {r.fault_start:.1f}s → {r.fault_end:.1f}s")  # fmt: skip
        click.echo(per_second_table(r))
    click.echo(f"\nsummary ({fault}, {duration:g}s, {keys:,} warmed keys)")
    click.echo(summary_table(results))
    if fault in SCALE_FAULTS:
        click.echo(f"\nresize ({fault})")
        click.echo(scale_table(results))
    click.echo(f"\nreport: {json_path}\nplot:   {png}")

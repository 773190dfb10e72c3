"""Running a drill: one topology at a time (up, warm, load with the fault injected and
healed, verify, stop), then the JSON report and the plot."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from memfleet.tools.bench.preload import preload
from memfleet.tools.bench.runner import run
from memfleet.tools.bench.workload import BenchConfig
from memfleet.tools.drill.faults import Injector, choose_victim
from memfleet.tools.drill.fleet_process import FleetProcess
from memfleet.tools.drill.options import (
    HOST_FAULTS,
    SCALE_FAULTS,
    WARM_PREFIX,
    WRITE_PREFIX,
    DrillError,
    DrillOptions,
)
from memfleet.tools.drill.plot import plot
from memfleet.tools.drill.proxies import DrillProxies
from memfleet.tools.drill.report import report_document
from memfleet.tools.drill.scale import (
    ScaleInjector,
    auto_window,
    proxy_migration_stats,
    scale_report_line,
    scale_sizes,
    scale_summary,
)
from memfleet.tools.drill.stale import StaleChecker
from memfleet.tools.drill.summary import TopologyResult, series_point, summarize
from memfleet.tools.drill.verify import verify_when_settled


def drill_topology(
    topology: str,
    opts: DrillOptions,
    workdir: Path,
    window: float | None = None,
    label: str | None = None,
) -> TopologyResult:
    """Run the whole drill on one topology (a resize drill with the proxy's migration window
    ``window``; ``label`` names the run in the report)."""
    say = opts.log or (lambda _m: None)
    result = TopologyResult(label or topology)
    scale = opts.fault in SCALE_FAULTS
    if scale and topology == "replicated":
        result.skipped = "the replicated topology has no shards to resize"
        say(f"{topology}: skipped: {result.skipped}")
        return result
    before, after = scale_sizes(opts)
    window = auto_window(opts) if window is None else window
    if opts.fault in HOST_FAULTS:
        from memfleet.fleet.hosts import hosts_unavailable

        why = hosts_unavailable()
        if why is not None:
            result.skipped = f"{opts.fault} needs simulated hosts: {why}"
            say(f"{topology}: skipped: {result.skipped}")
            return result
    if (opts.workers > 1 or opts.proxies > 1) and opts.fault in HOST_FAULTS:
        raise DrillError(f"{opts.fault} runs the proxy on the simulated network: only with "
                         "memfleet up's own proxy (one worker, one instance)")  # fmt: skip
    fleet = FleetProcess(topology, workdir, opts.fault, opts.hosts,
                         shards=before if scale else None,
                         migration_window=window if scale else None,
                         tag="" if label is None else "-" + label.rsplit(" ", 1)[-1])  # fmt: skip
    proxies: DrillProxies | None = None
    try:
        state = fleet.wait_ready()
        host, port = state["proxy"]["host"], int(state["proxy"]["port"])
        write_port = port
        if opts.workers > 1 or opts.proxies > 1:
            proxies = DrillProxies(state, workdir, opts.workers, opts.proxies)
            proxies.wait_ready()
            host, port, write_port = "127.0.0.1", proxies.ports[-1], proxies.ports[0]
        victim = choose_victim(state)
        result.victim = victim["name"] + (f" on {victim['failure_host']}"
                                          if opts.fault in HOST_FAULTS else "")  # fmt: skip
        if scale:
            result.victim = f"{before} → {after} shards, migration window {window:g}s"
        cfg = BenchConfig(
            host=host, port=port, connections=opts.connections, pipeline=opts.pipeline,
            ratio=opts.ratio, keys=opts.keys, value_size=opts.value_size,
            duration=opts.duration, processes=1, key_prefix=WARM_PREFIX,
            set_prefix=WRITE_PREFIX, rate=opts.rate, timeout=3.0,
            # A resize drill reads every warmed key, not a hot set of them: what the move
            # costs is counted over all of them.
            batches=max(512, 4 * opts.keys) if scale else 512,
        )  # fmt: skip
        stored = preload(cfg)
        if stored != opts.keys:
            raise DrillError(f"{topology}: warming stored {stored} of {opts.keys} keys")
        say(
            f"{result.topology}: warmed {stored} keys; {opts.fault} on {result.victim} at "
            f"{opts.duration * opts.fault_at:g}s, healed at {opts.duration * opts.heal_at:g}s"
        )
        start_delay = 0.5
        t0 = time.time() + start_delay
        t_fault = t0 + opts.duration * opts.fault_at
        injector: Injector | ScaleInjector
        if scale:
            injector = ScaleInjector(fleet, after, t_fault, window, opts.fault == "scale-in")
        else:
            injector = Injector(fleet, opts.fault, victim, t_fault,
                                t0 + opts.duration * opts.heal_at)  # fmt: skip
        injector.start()
        checker = StaleChecker(host, write_port, opts.duration + start_delay + 5,
                               read_from=(host, port))  # fmt: skip
        checker.start()
        try:
            bench = run(cfg, start_delay=start_delay)
        finally:
            injector.cancel()
            injector.join(30)
            checker.stop()
            checker.join(30)
        if injector.error:
            raise DrillError(f"{topology}: {opts.fault}: {injector.error}")
        result.fault_start = (injector.injected_at or t0) - t0
        result.fault_end = (injector.healed_at or time.time()) - t0
        result.series = [series_point(s) for s in bench.series]
        fleet.reload_state()
        verify = verify_when_settled(host, port, opts)
        result.summary = summarize(result.series, result.fault_start, result.fault_end,
                                   verify, bench.total)  # fmt: skip
        s = result.summary
        if scale and isinstance(injector, ScaleInjector):
            requested = (injector.requested_at or t0) - t0
            s.update(scale_summary(result.series, requested, proxy_migration_stats(host, port)))
            s.update(shards_before=before, shards_after=after, migration_window=window)
        stale = checker.counts
        # The checker's own requests: errors, misses and stale reads of keys it rewrites.
        s.update(stale_reads=stale.stale, stale_checked_reads=stale.reads,
                 stale_checker_errors=stale.write_errors + stale.read_errors,
                 stale_checker_misses=stale.misses, stale_examples=stale.examples)  # fmt: skip
        say(f"{result.topology}: {s['errors']} errors ({s['read_errors']} reads), "
            f"{s['keys_lost']} of {s['keys_written']} keys lost, {stale.stale} stale reads "
            f"of {stale.reads} checked ({s['stale_checker_errors']} checker errors, "
            f"{stale.misses} misses)")  # fmt: skip
        if scale:
            say(scale_report_line(result.topology, s))
    finally:
        if proxies is not None:
            proxies.stop()
        fleet.stop()
    return result


def run_drill(opts: DrillOptions) -> tuple[list[TopologyResult], Path, Path]:
    """Drill every topology; write the JSON report and the plot into ``opts.out``."""
    out = opts.out or Path("drill-" + time.strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    results: list[TopologyResult] = []
    with tempfile.TemporaryDirectory(prefix="memfleet-drill-") as tmp:
        for topo in opts.topologies:
            results.append(drill_topology(topo, opts, Path(tmp)))
            if opts.baseline and opts.fault in SCALE_FAULTS:
                # The same resize as every memcached proxy does it today: a plain reload.
                results.append(drill_topology(topo, opts, Path(tmp), window=0.0,
                                              label=f"{topo}, window off"))  # fmt: skip
    doc = report_document(opts, results)
    json_path = out / f"drill-{opts.fault}.json"
    json_path.write_text(json.dumps(doc, indent=1) + "\n")
    png = plot(results, opts.fault, out / f"drill-{opts.fault}.png")
    return results, json_path, png

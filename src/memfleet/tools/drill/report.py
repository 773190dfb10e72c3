"""The drill's text report: the per-second table of one topology and the summary across
topologies; and the JSON document it writes."""

from __future__ import annotations

from typing import Any

from memfleet.tools.drill.options import DrillOptions
from memfleet.tools.drill.summary import TopologyResult


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{v * 100:.1f}%"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def table(rows: list[list[str]]) -> str:
    """Aligned plain-text table (first row is the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in
                       enumerate(zip(r, widths, strict=True))).rstrip() for r in rows]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def per_second_table(r: TopologyResult) -> str:
    """One topology's per-second report."""
    rows = [["t (s)", "ops/s", "hit rate", "error rate", "p99 ms", ""]]
    for p in r.series:
        window = "fault" if r.fault_start <= p["t"] + 0.5 < r.fault_end else ""
        rows.append([str(p["t"]), f"{p['ops_per_sec']:,.0f}", _fmt(p["hit_rate"], True),
                     _fmt(p["error_rate"], True), _fmt(p["p99_ms"]), window])  # fmt: skip
    return table(rows)


def service_recovered(s: dict[str, Any]) -> str:
    """When requests were served again: no errors and the throughput back (not whether the
    data survived: that is :func:`data_recovered`)."""
    ttr = s.get("time_to_recover_s")
    if ttr is None:
        return "not recovered"
    return "no outage" if ttr == 0 and not s.get("errors") else f"after {ttr:g} s"


def data_recovered(s: dict[str, Any]) -> str:
    """Whether every key written before the fault reads back: ``yes`` only when none was
    lost (a topology that stops erroring but lost keys has not recovered its data)."""
    lost, written = s.get("keys_lost", 0), s.get("keys_written", 0)
    if not lost:
        return f"yes ({written:,} of {written:,} kept)"
    share = f", {lost / written:.1%}" if written else ""
    return f"no: {lost:,} of {written:,} keys lost{share}"


def summary_table(results: list[TopologyResult]) -> str:
    """The summary across topologies: errors, then service and data recovery apart."""
    rows = [["topology", "errors", "read errors", "write errors", "service recovered",
             "data recovered", "hit rate before", "hit rate after"]]  # fmt: skip
    for r in results:
        if r.skipped:
            rows.append([r.topology, "skipped", "", "", "", "", "", ""])
            continue
        s = r.summary
        rows.append([
            r.topology, _fmt(s["errors"]), _fmt(s["read_errors"]), _fmt(s["write_errors"]),
            service_recovered(s), data_recovered(s),
            _fmt(s["hit_rate_before"], True), _fmt(s["hit_rate_after"], True),
        ])  # fmt: skip
    return table(rows)


def scale_table(results: list[TopologyResult]) -> str:
    """The resize drills' summary: the lowest hit rate of a second after the change, the
    misses it caused, stale reads and errors, one row per run."""
    rows = [["run", "shards", "window", "lowest hit rate", "seconds < 99%", "misses after",
             "stale reads", "errors", "keys lost"]]  # fmt: skip
    for r in results:
        if r.skipped:
            rows.append([r.topology, "skipped", "", "", "", "", "", "", ""])
            continue
        s = r.summary
        rows.append([
            r.topology, f"{s.get('shards_before')} → {s.get('shards_after')}",
            f"{s.get('migration_window', 0):g} s", _fmt(s.get("min_hit_rate_after_change"), True),
            _fmt(s.get("seconds_below_99pct")), _fmt(s.get("misses_after_change")),
            _fmt(s.get("stale_reads")), _fmt(s["errors"]), _fmt(s["keys_lost"]),
        ])  # fmt: skip
    return table(rows)


def report_document(opts: DrillOptions, results: list[TopologyResult]) -> dict[str, Any]:
    """The JSON report of a drill: its settings, and each topology's summary and series."""
    return {
        "fault": opts.fault,
        "duration": opts.duration,
        "fault_at_s": opts.duration * opts.fault_at,
        "heal_at_s": opts.duration * opts.heal_at,
        "keys": opts.keys,
        "rate": opts.rate,
        "connections": opts.connections,
        "ratio": f"{opts.ratio[0]}:{opts.ratio[1]}",
        "proxy_workers": opts.workers,
        "proxy_instances": opts.proxies,
        "shards": opts.shards,
        "migration_window": opts.migration_window,
        "baseline": opts.baseline,
        "topologies": [
            {"topology": r.topology, "victim": r.victim, "skipped": r.skipped,
             "fault_start": round(r.fault_start, 3), "fault_end": round(r.fault_end, 3),
             "summary": r.summary, "per_second": r.series}
            for r in results
        ],
    }  # fmt: skip

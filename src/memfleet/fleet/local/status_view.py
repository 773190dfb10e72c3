"""``memfleet status`` as text: one line for the proxy, a table of the nodes, one verdict."""

from __future__ import annotations

import time

from memfleet.fleet.local.status import FleetStatus, NodeStatus

HEADER = [
    "NODE",
    "ADDRESS",
    "STATE",
    "RESTARTS",
    "ITEMS",
    "BYTES",
    "EVICTIONS",
    "HIT RATE",
    "OPS/S",
    "JOURNAL",
]


def _n(v: int | float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _bytes(used: int | None, limit: int | None) -> str:
    if used is None:
        return "-"
    mb = 1024 * 1024
    return f"{used / mb:.1f}/{limit / mb:.0f} MB" if limit else f"{used / mb:.1f} MB"


def _state(n: NodeStatus) -> str:
    if n.health == "repair":
        return "repair"
    if n.health == "up":
        return "up"
    if n.process == "restarting":
        return "down, restarting"
    if n.process == "exited":
        return "down, exited"
    return "down, not in proxy" if n.answers else "down"


def _row(n: NodeStatus) -> list[str]:
    journal = "-" if n.journal is None else f"{n.journal:,}"
    if n.repaired:
        journal += f" ({n.repaired:,} repaired)"
    return [
        n.name,
        n.address,
        _state(n),
        str(n.restarts),
        _n(n.items),
        _bytes(n.bytes, n.limit_bytes),
        _n(n.evictions),
        _pct(n.hit_rate),
        _n(n.ops_per_sec),
        journal,
    ]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def format_status(st: FleetStatus) -> str:
    """The status as a terminal shows it."""
    when = time.strftime("%H:%M:%S", time.localtime(st.taken))
    if not st.running:
        return f"memfleet status: {st.why}  ({when})"
    lines = [f"fleet {st.name!r}: {st.topology}; restart {st.restart or '?'}  ({when})"]
    p = st.proxy
    if p is not None:
        if p.answers:
            what = (
                f"up, restarts {p.restarts}, connections {_n(p.connections)}, "
                f"ops/s {_n(p.ops_per_sec)}, hit rate {_pct(p.hit_rate)}"
            )
        else:
            what = f"DOWN ({p.process}; {p.last_exit or p.error}), restarts {p.restarts}"
        lines.append(f"proxy {p.address}: {what}")
        if p.page:
            lines.append(f"page  {p.page}")
    lines.append("")
    lines += _table([HEADER] + [_row(n) for n in st.nodes])
    lines.append("")
    for name, at in sorted(st.retiring.items()):
        stop = time.strftime("%H:%M:%S", time.localtime(at))
        lines.append(f"retiring: {name} (removed by memfleet scale; serves the keys not yet "
                     f"moved until the migration window ends, stopped at {stop})")  # fmt: skip
    problems = st.problems
    if not problems:
        lines.append(f"ok: the proxy and all {len(st.nodes)} nodes are up")
    else:
        details = []
        for n in st.nodes:
            if n.health != "up":
                why = (
                    f"exited with {n.last_exit}"
                    if n.process != "running" and n.last_exit
                    else n.error or "the proxy takes no traffic to it"
                )
                details.append(f"{n.name} {n.health}" + (f" ({why})" if why else ""))
        if p is not None and not p.answers:
            details.append("proxy down")
        lines.append("degraded: " + "; ".join(details))
    return "\n".join(lines)

"""``memfleet drill``: a fault drill per topology, with a per-second report, a summary and a plot.

For each topology the drill

1. starts it with ``memfleet up --port 0 --state-file ...`` (a subprocess; ``--hosts`` for the
   host faults, ``--persistence restartable`` for ``restart-node`` so the node comes back warm);
2. warms it: writes ``--keys`` known keys (``drill:k:<i>``) through the proxy;
3. runs the bench workload against the proxy for ``--duration`` seconds: gets of the warmed
   keys and, by ``--ratio``, sets of *other* keys (``drill:w:<i>``), so the warmed set is
   never rewritten and what is lost can be counted exactly;
4. injects the fault at 30% of the run on one node of the cluster tier (or its host) and heals
   it at 60%;
5. reads every warmed key back once the run is over: a key that is missing or holds another
   value is lost.

Faults: ``kill-node`` (SIGKILL of the node's memcached, healed by ``memfleet up`` restarting
it, empty), ``hang-node`` (SIGSTOP, healed by SIGCONT), ``restart-node`` (a graceful stop of
the node and its restart, warm), ``kill-host`` / ``cut-host`` (``memfleet fault`` on the node's
simulated host; needs ``memfleet up --hosts``, i.e. Linux and root — skipped otherwise).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from memfleet.fleet.local import pid_alive
from memfleet.tools.bench import BenchConfig, Sample, key_of, preload, run, value_of
from memfleet.topology.presets import DEFAULT_TOPOLOGY, TOPOLOGIES

FAULTS = ("kill-node", "hang-node", "kill-host", "cut-host", "restart-node")
HOST_FAULTS = ("kill-host", "cut-host")
WARM_PREFIX = "drill:k:"
WRITE_PREFIX = "drill:w:"
METRICS = (
    ("ops_per_sec", "throughput (ops/s)"),
    ("hit_rate", "hit rate"),
    ("error_rate", "error rate"),
    ("p99_ms", "p99 latency (ms)"),
)


class DrillError(Exception):
    """The drill could not run; ``str()`` is the one-line message."""


@dataclass
class DrillOptions:
    """What a drill does."""

    topologies: list[str]
    fault: str = "kill-node"
    duration: float = 20.0
    fault_at: float = 0.3  # fraction of the run
    heal_at: float = 0.6
    keys: int = 5_000
    connections: int = 4
    pipeline: int = 1
    rate: float = 3_000.0
    ratio: tuple[int, int] = (9, 1)
    value_size: int = 100
    hosts: int = 3
    out: Path | None = None
    log: Any = None  # a callable taking one progress line


@dataclass
class TopologyResult:
    """One topology's drill: the per-second series, the fault window, the summary."""

    topology: str
    victim: str = ""
    series: list[dict[str, Any]] = field(default_factory=list)
    fault_start: float = 0.0
    fault_end: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None


# --- the fleet ----------------------------------------------------------------------------------


class FleetProcess:
    """``memfleet up`` as a subprocess in its own process group; always stopped."""

    def __init__(self, topology: str, workdir: Path, fault: str, hosts: int) -> None:
        self.state_path = workdir / f"state-{topology}.json"
        self.log_path = workdir / f"up-{topology}.log"
        self.state_path.unlink(missing_ok=True)
        args = [sys.executable, "-m", "memfleet", "up", "--topology", topology, "--port", "0",
                "--state-file", str(self.state_path), "--memory", "64"]  # fmt: skip
        if fault in HOST_FAULTS:
            args += ["--hosts", str(hosts)]
        if fault == "restart-node":
            # The point of a restart drill: a restartable node comes back with its cache.
            args += [
                "--persistence",
                "restartable",
                "--data-dir",
                str(workdir / f"data-{topology}"),
            ]
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        self.state: dict[str, Any] = {}

    def wait_ready(self, timeout: float = 90.0) -> dict[str, Any]:
        """Wait (bounded) for the state file; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DrillError(f"memfleet up exited ({self.proc.returncode}): {self.tail()}")
            with contextlib.suppress(OSError, ValueError):
                self.state = json.loads(self.state_path.read_text())
                return self.state
            time.sleep(0.1)
        raise DrillError(f"memfleet up not ready after {timeout:g}s: {self.tail()}")

    def reload_state(self) -> dict[str, Any]:
        """The state file again (pids change when nodes restart)."""
        with contextlib.suppress(OSError, ValueError):
            self.state = json.loads(self.state_path.read_text())
        return self.state

    def tail(self) -> str:
        """The end of ``memfleet up``'s output."""
        with contextlib.suppress(OSError):
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-3:])
        return ""

    def stop(self) -> None:
        """SIGTERM (``up`` stops its nodes), bounded wait, then SIGKILL of the group."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(60)
        # Anything left behind by an `up` that did not finish its stop goes too.
        for pid in [n.get("pid") for n in self.state.get("nodes", [])] + [
            self.state.get("proxy", {}).get("pid")
        ]:
            if isinstance(pid, int):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGCONT)
                    os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._log.close()


def memcached_pid(node_pid: int) -> int:
    """The memcached process under a ``memfleet node`` supervisor (the supervisor itself if
    it has no memcached child)."""
    with contextlib.suppress(OSError, ValueError):
        for task in Path(f"/proc/{node_pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                comm = Path(f"/proc/{child}/comm").read_text().strip()
                if comm.startswith("memcached"):
                    return int(child)
    return node_pid


def choose_victim(state: dict[str, Any]) -> dict[str, Any]:
    """The node the fault hits: the first node of the cluster tier (not the local cache nor
    the gutter: those are the topologies' answers to a failure, not what fails)."""
    nodes: list[dict[str, Any]] = state["nodes"]
    for n in nodes:
        if n["name"] != "memcached-local" and not n["name"].startswith("memcached-gutter"):
            return n
    return nodes[0]


class Injector(threading.Thread):
    """Injects the fault at ``t_fault`` and heals it at ``t_heal`` (wall clock)."""

    def __init__(self, fleet: FleetProcess, fault: str, victim: dict[str, Any],
                 t_fault: float, t_heal: float) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.fleet = fleet
        self.fault = fault
        self.victim = victim
        self.t_fault = t_fault
        self.t_heal = t_heal
        self.injected_at: float | None = None
        self.healed_at: float | None = None
        self.error: str | None = None
        self._stop_event = threading.Event()
        self._mc_pid = 0

    def cancel(self) -> None:
        """Stop waiting (heal at once if the fault is in place)."""
        self._stop_event.set()

    def run(self) -> None:
        try:
            if self._stop_event.wait(max(0.0, self.t_fault - time.time())):
                return
            self.inject()
            self.injected_at = time.time()
            self._stop_event.wait(max(0.0, self.t_heal - time.time()))
            self.heal()
            self.healed_at = time.time()
        except (OSError, subprocess.SubprocessError, DrillError) as exc:
            self.error = str(exc)

    def _fault_cmd(self, action: str) -> None:
        host = self.victim.get("failure_host")
        if not host:
            raise DrillError(f"{self.fault}: the node has no simulated host")
        r = subprocess.run(
            [sys.executable, "-m", "memfleet", "fault", "--state-file",
             str(self.fleet.state_path), action, host],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        if r.returncode != 0:
            raise DrillError(f"memfleet fault {action} {host}: {r.stderr.strip()}")

    def inject(self) -> None:
        """Put the fault in place."""
        pid = int(self.victim["pid"])
        if self.fault == "kill-node":
            os.kill(memcached_pid(pid), signal.SIGKILL)
        elif self.fault == "hang-node":
            self._mc_pid = memcached_pid(pid)
            os.kill(self._mc_pid, signal.SIGSTOP)
        elif self.fault == "restart-node":
            os.kill(pid, signal.SIGTERM)  # the supervisor stops memcached gracefully
        else:
            self._fault_cmd(self.fault)

    def heal(self) -> None:
        """Undo the fault: resume, restart or reconnect what it took away."""
        if self.fault == "hang-node":
            os.kill(self._mc_pid, signal.SIGCONT)
        elif self.fault in ("kill-node", "restart-node"):
            # `memfleet up` restarts, on SIGUSR2, every node that is no longer running; the
            # supervisor notices its memcached's death within half a second.
            pid = int(self.victim["pid"])
            deadline = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            up_pid = self.fleet.state.get("up_pid") or self.fleet.proc.pid
            os.kill(int(up_pid), signal.SIGUSR2)
        else:
            self._fault_cmd("heal-host")


# --- checking the warmed keys ------------------------------------------------------------------


def verify_keys(host: str, port: int, keys: int, value_size: int) -> dict[str, int]:
    """Read every warmed key (pipelined single gets): how many hold their value, are missing,
    hold another value, or could not be read (an error reply)."""
    out = {"ok": 0, "missing": 0, "wrong": 0, "unreadable": 0}
    prefix = WARM_PREFIX.encode()
    chunk = 100
    with socket.create_connection((host, port), timeout=10) as s:
        for lo in range(0, keys, chunk):
            idx = range(lo, min(keys, lo + chunk))
            s.sendall(b"".join(b"get " + key_of(prefix, i) + b"\r\n" for i in idx))
            buf = b""
            pos = 0
            for i in idx:
                while True:
                    reply_end = _reply_end(buf, pos)
                    if reply_end >= 0:
                        break
                    data = s.recv(1 << 20)
                    if not data:
                        raise DrillError("verify: the proxy closed the connection")
                    buf += data
                reply = buf[pos:reply_end]
                pos = reply_end
                if reply.startswith(b"VALUE "):
                    body = reply.split(b"\r\n", 2)[1]
                    out["ok" if body == value_of(i, value_size) else "wrong"] += 1
                elif reply == b"END\r\n":
                    out["missing"] += 1
                else:
                    out["unreadable"] += 1
    return out


def _reply_end(buf: bytes, pos: int) -> int:
    """End of the complete get reply starting at ``pos`` in ``buf``, or -1."""
    eol = buf.find(b"\r\n", pos)
    if eol < 0:
        return -1
    if buf.startswith(b"VALUE ", pos):
        length = int(buf[pos:eol].split()[3])
        stop = eol + 2 + length + 2
        return stop + 5 if len(buf) >= stop + 5 else -1
    return eol + 2


# --- one topology ------------------------------------------------------------------------------


def _point(s: Sample) -> dict[str, Any]:
    m = s.summary(1.0)
    return {
        "t": s.second,
        "ops_per_sec": m["ops_per_sec"],
        # The client's view: a get that failed is as useless as a miss.
        "hit_rate": round(s.hits / s.gets, 4) if s.gets else None,
        "error_rate": m["error_rate"],
        "errors": m["errors"],
        "get_errors": m["get_errors"],
        "set_errors": m["set_errors"],
        "p99_ms": None if m["p99_us"] is None else round(m["p99_us"] / 1000, 3),
    }


def summarize(series: list[dict[str, Any]], fault_start: float, fault_end: float,
              verify: dict[str, int], total: Sample) -> dict[str, Any]:  # fmt: skip
    """The summary row of one topology."""
    before = [p for p in series if p["t"] + 1 <= fault_start and p["ops_per_sec"] > 0]
    base_ops = sum(p["ops_per_sec"] for p in before) / len(before) if before else 0.0
    base_hits = [p["hit_rate"] for p in before if p["hit_rate"] is not None]
    # Recovered: from this second on, no errors and at least 80% of the throughput before.
    recovered_at: float | None = None
    for i, p in enumerate(series):
        if p["t"] + 1 <= fault_start:
            continue
        rest = series[i:]
        if all(q["errors"] == 0 and q["ops_per_sec"] >= 0.8 * base_ops for q in rest[:-1]):
            recovered_at = float(p["t"])
            break
    after = [p for p in series if recovered_at is not None and p["t"] >= max(recovered_at,
             fault_end) and p["hit_rate"] is not None]  # fmt: skip
    return {
        "requests": total.ops,
        "errors": total.errors,
        "read_errors": total.get_errors,
        "write_errors": total.set_errors,
        "keys_written": sum(verify.values()),
        "keys_lost": verify["missing"] + verify["wrong"] + verify["unreadable"],
        "keys_missing": verify["missing"],
        "keys_wrong": verify["wrong"],
        "keys_unreadable": verify["unreadable"],
        "hit_rate_before": round(sum(base_hits) / len(base_hits), 4) if base_hits else None,
        "time_to_recover_s": (
            None if recovered_at is None else round(max(0.0, recovered_at - fault_start), 1)
        ),
        "hit_rate_after": (
            round(sum(p["hit_rate"] for p in after) / len(after), 4) if after else None
        ),
    }


def drill_topology(topology: str, opts: DrillOptions, workdir: Path) -> TopologyResult:
    """Run the whole drill on one topology."""
    say = opts.log or (lambda _m: None)
    result = TopologyResult(topology)
    if opts.fault in HOST_FAULTS:
        from memfleet.fleet.hosts import hosts_unavailable

        why = hosts_unavailable()
        if why is not None:
            result.skipped = f"{opts.fault} needs simulated hosts: {why}"
            say(f"{topology}: skipped: {result.skipped}")
            return result
    fleet = FleetProcess(topology, workdir, opts.fault, opts.hosts)
    try:
        state = fleet.wait_ready()
        host, port = state["proxy"]["host"], int(state["proxy"]["port"])
        victim = choose_victim(state)
        result.victim = victim["name"] + (f" on {victim['failure_host']}"
                                          if opts.fault in HOST_FAULTS else "")  # fmt: skip
        cfg = BenchConfig(
            host=host, port=port, connections=opts.connections, pipeline=opts.pipeline,
            ratio=opts.ratio, keys=opts.keys, value_size=opts.value_size,
            duration=opts.duration, processes=1, key_prefix=WARM_PREFIX,
            set_prefix=WRITE_PREFIX, rate=opts.rate, timeout=3.0,
        )  # fmt: skip
        stored = preload(cfg)
        if stored != opts.keys:
            raise DrillError(f"{topology}: warming stored {stored} of {opts.keys} keys")
        say(
            f"{topology}: warmed {stored} keys; {opts.fault} on {result.victim} at "
            f"{opts.duration * opts.fault_at:g}s, healed at {opts.duration * opts.heal_at:g}s"
        )
        start_delay = 0.5
        t0 = time.time() + start_delay
        injector = Injector(fleet, opts.fault, victim, t0 + opts.duration * opts.fault_at,
                            t0 + opts.duration * opts.heal_at)  # fmt: skip
        injector.start()
        try:
            bench = run(cfg, start_delay=start_delay)
        finally:
            injector.cancel()
            injector.join(30)
        if injector.error:
            raise DrillError(f"{topology}: {opts.fault}: {injector.error}")
        result.fault_start = (injector.injected_at or t0) - t0
        result.fault_end = (injector.healed_at or time.time()) - t0
        result.series = [_point(s) for s in bench.series]
        fleet.reload_state()
        verify = _verify_when_settled(host, port, opts)
        result.summary = summarize(result.series, result.fault_start, result.fault_end,
                                   verify, bench.total)  # fmt: skip
        s = result.summary
        say(f"{topology}: {s['errors']} errors ({s['read_errors']} reads), "
            f"{s['keys_lost']} of {s['keys_written']} keys lost")  # fmt: skip
    finally:
        fleet.stop()
    return result


def _verify_when_settled(host: str, port: int, opts: DrillOptions) -> dict[str, int]:
    """Read the warmed keys back; a node that was just restarted may still be marked down in
    the proxy for one retry interval, so unreadable keys are read again a few times."""
    verify = verify_keys(host, port, opts.keys, opts.value_size)
    for _ in range(10):
        if not verify["unreadable"]:
            break
        time.sleep(0.5)
        verify = verify_keys(host, port, opts.keys, opts.value_size)
    return verify


# --- the report ---------------------------------------------------------------------------------


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


def summary_table(results: list[TopologyResult]) -> str:
    """The summary across topologies."""
    rows = [["topology", "errors", "read errors", "write errors", "keys lost",
             "time to recover", "hit rate before", "hit rate after"]]  # fmt: skip
    for r in results:
        if r.skipped:
            rows.append([r.topology, "skipped", "", "", "", "", "", ""])
            continue
        s = r.summary
        ttr = s["time_to_recover_s"]
        rows.append([
            r.topology, _fmt(s["errors"]), _fmt(s["read_errors"]), _fmt(s["write_errors"]),
            f"{s['keys_lost']:,} / {s['keys_written']:,}",
            "not recovered" if ttr is None else f"{ttr:g} s",
            _fmt(s["hit_rate_before"], True), _fmt(s["hit_rate_after"], True),
        ])  # fmt: skip
    return table(rows)


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


def run_drill(opts: DrillOptions) -> tuple[list[TopologyResult], Path, Path]:
    """Drill every topology; write the JSON report and the plot into ``opts.out``."""
    out = opts.out or Path("drill-" + time.strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    results: list[TopologyResult] = []
    with tempfile.TemporaryDirectory(prefix="memfleet-drill-") as tmp:
        for topo in opts.topologies:
            results.append(drill_topology(topo, opts, Path(tmp)))
    doc = {
        "fault": opts.fault,
        "duration": opts.duration,
        "fault_at_s": opts.duration * opts.fault_at,
        "heal_at_s": opts.duration * opts.heal_at,
        "keys": opts.keys,
        "rate": opts.rate,
        "connections": opts.connections,
        "ratio": f"{opts.ratio[0]}:{opts.ratio[1]}",
        "topologies": [
            {"topology": r.topology, "victim": r.victim, "skipped": r.skipped,
             "fault_start": round(r.fault_start, 3), "fault_end": round(r.fault_end, 3),
             "summary": r.summary, "per_second": r.series}
            for r in results
        ],
    }  # fmt: skip
    json_path = out / f"drill-{opts.fault}.json"
    json_path.write_text(json.dumps(doc, indent=1) + "\n")
    png = plot(results, opts.fault, out / f"drill-{opts.fault}.png")
    return results, json_path, png


@click.command("drill")
@click.option("--topology", "topologies", multiple=True, type=click.Choice(TOPOLOGIES),
              help=f"Topology to drill (repeatable; default {DEFAULT_TOPOLOGY}).")  # fmt: skip
@click.option("--fault", type=click.Choice(FAULTS), default="kill-node", show_default=True)
@click.option("--duration", type=click.FloatRange(4, 600), default=20.0, show_default=True,
              help="Seconds of load; the fault comes at 30%, the heal at 60%.")  # fmt: skip
@click.option(
    "--compare",
    is_flag=True,
    help="Drill several topologies side by side (all five unless --topology).",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for the JSON report and the PNG plot.")  # fmt: skip
@click.option("--keys", type=click.IntRange(10, 1_000_000), default=5_000, show_default=True)
@click.option(
    "--rate",
    type=click.FloatRange(0),
    default=3_000.0,
    show_default=True,
    help="Requests per second of the workload (0: as fast as possible).",
)
@click.option("--connections", type=click.IntRange(1, 1000), default=4, show_default=True)
@click.option("--ratio", default="9:1", show_default=True, help="GET:SET of the workload.")
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
    as_json: bool,
) -> None:
    """Fault drill: bring a topology up, load it, break it, heal it, report and plot."""
    from memfleet.tools.bench import BenchError, parse_ratio

    chosen = list(topologies) or (list(TOPOLOGIES) if compare else [DEFAULT_TOPOLOGY])
    try:
        opts = DrillOptions(
            topologies=chosen, fault=fault, duration=duration, keys=keys, rate=rate,
            connections=connections, ratio=parse_ratio(ratio), out=out,
            log=lambda m: click.echo(f"memfleet drill: {m}", err=True),
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
    click.echo(f"\nreport: {json_path}\nplot:   {png}")

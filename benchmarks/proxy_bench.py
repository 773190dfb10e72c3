#!/usr/bin/env python3
"""Benchmark memfleet's proxy against twemproxy and a direct memcached connection.

For every (target x mode x run) it starts fresh memcached backends and the target on free
loopback ports, preloads the key space through the target, runs a closed-loop load for
``--duration`` seconds and measures throughput, latency and the target's CPU time per request
(utime+stime from /proc). Servers are pinned to ``--server-cpu``, the load generator to
``--client-cpu``. Medians over ``--runs`` are printed as a table (``--markdown`` for
RESULTS.md) and optionally written as JSON.

Targets: ``direct`` (the load generator talks to one memcached: the floor), ``twemproxy``
(nutcracker over all backends), ``memfleet`` (as installed: compiled with mypyc when it could
be) and ``memfleet-pure`` (the same with MEMFLEET_PURE_PYTHON=1, the pure-Python fallback).
Modes: ``nonpipelined`` (memcaslap, one request in flight per connection) and ``pipelined``
(pipeload.py, 16 requests per batch).

Usage: python benchmarks/proxy_bench.py [--runs 3] [--duration 10] [--json out.json]
       [--proxies direct,twemproxy,memfleet] [--markdown]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

HERE = Path(__file__).resolve().parent
PIPELOAD = HERE / "pipeload.py"
TARGETS = ("direct", "twemproxy", "memfleet", "memfleet-pure")
MODES = ("nonpipelined", "pipelined")
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOOPBACK = "127.0.0.1"

# Ports handed out during this invocation: the OS may return a just-closed port again, and
# two of our own servers must never be told to use the same one.
_issued_ports: set[int] = set()


class TargetUnavailable(Exception):
    """The target could not be started or did not answer; it is skipped, others continue."""


# --------------------------------------------------------------------------------------------
# processes


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that the OS reports free (bind to port 0, read, close)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            port = int(s.getsockname()[1])
        if port not in _issued_ports and port != 11211:
            _issued_ports.add(port)
            return port
    raise RuntimeError("could not find a free port")


@dataclass
class Managed:
    """A child process started in its own session, so its whole group can be killed."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """PID of the child (taskset execs, so this is the server itself)."""
        return self.popen.pid

    def log_tail(self, lines: int = 15) -> str:
        """Last lines of the child's combined stdout/stderr."""
        try:
            text = self.log.read_text(errors="replace").strip()
        except OSError:
            text = ""
        tail = "\n".join(text.splitlines()[-lines:]) if text else "(empty log)"
        return f"\n--- last lines of {self.name}'s output ---\n{tail}"


class Fleet:
    """Starts child processes and guarantees they are all stopped again."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[Managed] = []

    def spawn(
        self, name: str, argv: Sequence[str], cpu: int | None, env: dict[str, str] | None = None
    ) -> Managed:
        """Start ``argv`` (pinned to ``cpu`` via taskset) with output going to a log file."""
        full = ["taskset", "-c", str(cpu), *argv] if cpu is not None else list(argv)
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                full,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        proc = Managed(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Managed, grace: float = 3.0) -> None:
        """Stop one child's process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
        if proc.popen.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=grace)
        # Also catches workers that outlived their leader in the same group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=grace)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        """Stop every child still tracked, most recently started first."""
        for proc in reversed(list(self.procs)):
            self.stop(proc)


def ask(port: int, request: bytes, terminator: bytes, timeout: float = 1.0) -> bytes:
    """Send one request to 127.0.0.1:port and read until ``terminator`` (or EOF/timeout)."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        s.sendall(request)
        buf = b""
        while not buf.endswith(terminator):
            data = s.recv(65536)
            if not data:
                break
            buf += data
    return buf


def wait_ready(proc: Managed, port: int, timeout: float) -> None:
    """Wait until the server on ``port`` answers ``version``; raise TargetUnavailable if not."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise TargetUnavailable(
                f"{proc.name} exited with code {proc.popen.returncode}{proc.log_tail()}"
            )
        try:
            reply = ask(port, b"version\r\n", b"\r\n", timeout=min(1.0, timeout))
            if reply.startswith(b"VERSION "):
                return
            last = f"unexpected reply {reply[:80]!r}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.05)
    raise TargetUnavailable(
        f"{proc.name} did not answer 'version' on 127.0.0.1:{port} within {timeout:.0f}s "
        f"({last}){proc.log_tail()}"
    )


def memcached_stats(port: int) -> dict[str, int]:
    """Integer counters of ``stats`` from the memcached on ``port``."""
    out: dict[str, int] = {}
    for line in ask(port, b"stats\r\n", b"END\r\n").decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT" and parts[2].isdigit():
            out[parts[1]] = int(parts[2])
    return out


# --------------------------------------------------------------------------------------------
# CPU accounting


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (the comm field may contain spaces, so split after it)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants (memfleet may fork worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_ticks(pids: Sequence[int], user_only: bool = False) -> dict[int, int]:
    """utime+stime (fields 14 and 15 of /proc/PID/stat, clock ticks) per live pid; only
    utime with ``user_only``."""
    out: dict[int, int] = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            out[pid] = int(fields[11]) + (0 if user_only else int(fields[12]))
    return out


def ticks_delta(before: dict[int, int], after: dict[int, int]) -> int:
    """CPU ticks spent between two snapshots; processes born in between count in full."""
    return sum(t - before.get(pid, 0) for pid, t in after.items())


def cpu_times(cpus: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(busy, total) jiffies per CPU from /proc/stat; steal is neither ours nor idle."""
    out: dict[int, tuple[int, int]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        m = re.match(r"cpu(\d+)\s+(.*)", line)
        if not m or int(m.group(1)) not in cpus:
            continue
        v = [int(x) for x in m.group(2).split()]
        # user nice system idle iowait irq softirq steal
        busy = v[0] + v[1] + v[2] + v[5] + v[6]
        steal = v[7] if len(v) > 7 else 0
        out[int(m.group(1))] = (busy, sum(v[:8]) - steal)
    return out


def total_busy_ticks() -> int:
    """Busy clock ticks summed over all CPUs (aggregate ``cpu`` line of /proc/stat)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6]


def busy_pct(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]], cpu: int, seconds: float
) -> float:
    """Percentage of ``seconds`` (the generator's own run time) that ``cpu`` was busy.

    memcaslap idles for up to a second after its timed run, so dividing by the wall-clock
    window would understate how saturated a CPU was while load was applied.
    """
    busy = after[cpu][0] - before[cpu][0]
    if seconds <= 0:
        return float("nan")
    return min(100.0, 100.0 * busy / (seconds * CLK_TCK))


def wait_for_quiet(max_wait: float, threshold_pct: float = 10.0) -> float:
    """Wait up to ``max_wait`` s for the machine to be idle; return the last busy % seen.

    Other programs on the machine (test suites, builds) steal CPU from the pinned servers
    and make runs incomparable; a short wait usually outlasts them.
    """
    n_cpus = os.cpu_count() or 1
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = total_busy_ticks(), time.monotonic()
        time.sleep(0.5)
        pct = 100.0 * (total_busy_ticks() - b0) / ((time.monotonic() - t0) * CLK_TCK * n_cpus)
        if pct < threshold_pct or time.monotonic() >= deadline:
            return pct


# --------------------------------------------------------------------------------------------
# load generators


MEMCASLAP_CFG = """key
16 16 1
value
{size} {size} 1
cmd
0 {set_ratio}
1 {get_ratio}
"""


def hist_percentile(dist: dict[int, int], q: float, lo: float, hi: float) -> float:
    """Percentile from memcaslap's log2 histogram.

    memcaslap puts a latency v (µs) in bucket i when 2**(i-1) < v <= 2**i. The result is
    interpolated geometrically inside the bucket and clamped to the reported min/max, so it
    is only an estimate: all that is certain is the power-of-two bucket it lies in.
    """
    total = sum(dist.values())
    if total == 0:
        return float("nan")
    rank = max(1.0, q / 100.0 * total)
    seen = 0
    for i in sorted(dist):
        count = dist[i]
        if count and seen + count >= rank:
            frac = (rank - seen) / count
            upper = float(2**i)
            lower = upper / 2 if i > 0 else 0.0
            est = lower + (upper - lower) * frac if lower == 0 else lower * 2**frac
            return min(max(est, lo), hi)
        seen += count
    return hi


def parse_memcaslap(text: str) -> dict[str, Any]:
    """Extract throughput, counters and latency stats from memcaslap's output (needs ``-S``)."""
    m = re.search(r"Run time: ([\d.]+)s Ops: (\d+) TPS: (\d+)", text)
    if not m:
        raise RuntimeError("memcaslap output has no 'Run time:' summary line")
    out: dict[str, Any] = {
        "seconds": float(m.group(1)),
        "ops": int(m.group(2)),
        "ops_per_sec": float(m.group(3)),
    }
    for name in ("cmd_get", "cmd_set", "get_misses"):
        mm = re.search(rf"^{name}: (\d+)", text, re.M)
        out[name] = int(mm.group(1)) if mm else 0
    start = text.rfind("Total Statistics (")
    if start < 0:
        raise RuntimeError("memcaslap output has no final 'Total Statistics' block")
    block = text[start:]
    stats = {
        k: float(v) for k, v in re.findall(r"^\s+(Min|Max|Avg|Geo|Std):\s+([\d.]+)", block, re.M)
    }
    dist: dict[int, int] = {}
    hist = block[block.index("Log2 Dist:") + len("Log2 Dist:") :]
    for line in hist.splitlines()[1:]:
        row = re.match(r"^\s+(\d+):((?:\s+\d+)+)\s*$", line)
        if not row:
            break
        base = int(row.group(1))
        for off, count in enumerate(row.group(2).split()):
            dist[base + off] = int(count)
    lo, hi = stats.get("Min", 0.0), stats.get("Max", float("inf"))
    out.update(
        avg_us=stats.get("Avg", float("nan")),
        min_us=lo,
        max_us=hi,
        p50_us=hist_percentile(dist, 50, lo, hi),
        p99_us=hist_percentile(dist, 99, lo, hi),
        log2_dist={str(k): v for k, v in sorted(dist.items())},
        latency_exact=False,
    )
    return out


@dataclass
class Workload:
    """Parameters shared by every measurement."""

    duration: int
    connections: int
    depth: int
    keys: int
    value_size: int
    set_ratio: float
    client_cpu: int
    nonpipelined_gen: str
    memcaslap: str


def run_child(fleet: Fleet, name: str, argv: Sequence[str], cpu: int, timeout: float) -> str:
    """Run a tracked child to completion (killed on timeout/Ctrl-C); return its output."""
    proc = fleet.spawn(name, argv, cpu)
    try:
        rc = proc.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        fleet.stop(proc)
        raise RuntimeError(f"{name} did not finish within {timeout:.0f}s") from None
    fleet.stop(proc)
    text = proc.log.read_text(errors="replace")
    if rc != 0:
        raise RuntimeError(f"{name} exited with code {rc}:\n{text[-2000:]}")
    return text


def preload(fleet: Fleet, port: int, wl: Workload) -> None:
    """Store the whole key space through the target and read a few keys back."""
    argv = [sys.executable, str(PIPELOAD), "--server", f"{LOOPBACK}:{port}", "--preload"]
    argv += ["--keys", str(wl.keys), "--value-size", str(wl.value_size)]
    try:
        run_child(fleet, "preload", argv, wl.client_cpu, timeout=60)
    except RuntimeError as exc:
        raise TargetUnavailable(f"preload through the target failed: {exc}") from exc


def run_load(fleet: Fleet, port: int, mode: str, wl: Workload) -> dict[str, Any]:
    """Run the load generator for ``mode`` against 127.0.0.1:port and return its results."""
    timeout = wl.duration + 60
    if mode == "nonpipelined" and wl.nonpipelined_gen == "memcaslap":
        cfg = fleet.workdir / "memcaslap.cfg"
        cfg.write_text(
            MEMCASLAP_CFG.format(
                size=wl.value_size, set_ratio=wl.set_ratio, get_ratio=round(1 - wl.set_ratio, 6)
            )
        )
        argv = [wl.memcaslap, "-s", f"{LOOPBACK}:{port}", "-T", "1", "-c", str(wl.connections)]
        # -S makes memcaslap print its latency histogram; one period = the whole run.
        argv += ["-X", str(wl.value_size), "-t", f"{wl.duration}s", "-S", f"{wl.duration}s"]
        argv += ["-F", str(cfg)]
        res = parse_memcaslap(run_child(fleet, "memcaslap", argv, wl.client_cpu, timeout))
        res["gets"], res["sets"] = res["cmd_get"], res["cmd_set"]
        res["errors"] = res["get_misses"]
        res["generator"] = "memcaslap"
        return res
    depth = wl.depth if mode == "pipelined" else 1
    argv = [sys.executable, str(PIPELOAD), "--server", f"{LOOPBACK}:{port}"]
    argv += ["--connections", str(wl.connections), "--depth", str(depth)]
    argv += ["--duration", str(wl.duration), "--keys", str(wl.keys)]
    argv += ["--value-size", str(wl.value_size), "--set-ratio", str(wl.set_ratio)]
    text = run_child(fleet, "pipeload", argv, wl.client_cpu, timeout)
    res = json.loads(text.strip().splitlines()[-1])
    assert isinstance(res, dict)
    for k in ("p50_us", "p99_us"):
        if res[k] is None:  # no batch completed at all
            res[k] = math.nan
    res["latency_exact"] = True
    res["generator"] = "pipeload"
    return res


# --------------------------------------------------------------------------------------------
# targets


@dataclass
class Settings:
    """Everything needed to start targets."""

    server_cpu: int
    backends: int
    memcached: str
    memcached_mem: int
    nutcracker: str
    memfleet_cmd: list[str]
    memfleet_config: Path | None
    ready_timeout: float


@dataclass
class Started:
    """A running target: where to send load and which processes to account CPU for."""

    port: int
    target_root: Managed
    backends: list[tuple[Managed, int]] = field(default_factory=list)


def start_backends(fleet: Fleet, s: Settings) -> list[tuple[Managed, int]]:
    """Start ``s.backends`` memcached processes on free ports and wait until they answer."""

    def spawn(i: int) -> tuple[Managed, int]:
        port = free_port()
        argv = [s.memcached, "-U", "0", "-t", "1", "-m", str(s.memcached_mem)]
        argv += ["-l", LOOPBACK, "-p", str(port)]
        if os.geteuid() == 0:
            argv += ["-u", "root"]  # memcached refuses to run as root without it
        return fleet.spawn(f"memcached{i}", argv, s.server_cpu), port

    out = [spawn(i) for i in range(s.backends)]
    for i in range(s.backends):
        for attempt in range(3):
            proc, port = out[i]
            try:
                wait_ready(proc, port, s.ready_timeout)
                break
            except TargetUnavailable as exc:
                # Most likely another program bound the port between our probe and memcached.
                fleet.stop(proc)
                if attempt == 2:
                    raise RuntimeError(f"memcached backend failed to start: {exc}") from exc
                out[i] = spawn(i)
    return out


def twemproxy_config(listen: int, backends: Sequence[int]) -> str:
    """nutcracker YAML for one ketama/fnv1a_64 pool over ``backends``."""
    servers = "".join(f"    - {LOOPBACK}:{p}:1\n" for p in backends)
    return (
        "bench:\n"
        f"  listen: {LOOPBACK}:{listen}\n"
        "  hash: fnv1a_64\n"
        "  distribution: ketama\n"
        "  auto_eject_hosts: false\n"
        "  server_connections: 1\n"
        "  servers:\n" + servers
    )


def memfleet_config(listen: int, backends: Sequence[int], custom: Path | None) -> str:
    """memfleet YAML: the sharded default, or ``custom`` with its @TOKENS@ filled in."""
    addrs = [f"{LOOPBACK}:{p}" for p in backends]
    if custom is None:
        quoted = ", ".join(f'"{a}"' for a in addrs)
        return (
            f"listen: {LOOPBACK}:{listen}\n"
            "pools:\n"
            "  main:\n"
            f"    backends: [{quoted}]\n"
            "routes:\n"
            "  default: main\n"
        )
    # Backend ports are only known at run time, so a ready-made file can name them through
    # plain tokens; a file without tokens is used verbatim.
    text = custom.read_text()
    text = text.replace("@LISTEN@", f"{LOOPBACK}:{listen}")
    text = text.replace("@BACKENDS@", "[" + ", ".join(f'"{a}"' for a in addrs) + "]")
    for i, a in enumerate(addrs):
        text = text.replace(f"@BACKEND{i}@", a)
    return text


def start_target(fleet: Fleet, target: str, s: Settings) -> Started:
    """Start backends plus ``target``; raise TargetUnavailable if the target does not answer."""
    backends = start_backends(fleet, s)
    ports = [p for _, p in backends]
    if target == "direct":
        return Started(port=ports[0], target_root=backends[0][0], backends=backends)
    listen = free_port()
    if target == "twemproxy":
        if not Path(s.nutcracker).exists():
            raise TargetUnavailable(f"{s.nutcracker} not found (apt-get install nutcracker)")
        conf = fleet.workdir / "nutcracker.yml"
        conf.write_text(twemproxy_config(listen, ports))
        nc_log = fleet.workdir / "nutcracker.out"
        argv = [s.nutcracker, "-c", str(conf), "-o", str(nc_log)]
        argv += ["-s", str(free_port()), "-a", LOOPBACK, "-p", str(fleet.workdir / "nc.pid")]
        proc = fleet.spawn("nutcracker", argv, s.server_cpu)
        proc.log = nc_log  # nutcracker reports its errors there, not on stderr
    elif target in ("memfleet", "memfleet-pure"):
        conf = fleet.workdir / "memfleet.yml"
        conf.write_text(memfleet_config(listen, ports, s.memfleet_config))
        argv = [*s.memfleet_cmd, "--config", str(conf), "--listen", f"{LOOPBACK}:{listen}"]
        env = {k: v for k, v in os.environ.items() if k != "MEMFLEET_PURE_PYTHON"}
        if target == "memfleet-pure":
            env["MEMFLEET_PURE_PYTHON"] = "1"
        proc = fleet.spawn(target, argv, s.server_cpu, env)
    else:
        raise ValueError(f"unknown target {target!r}")
    wait_ready(proc, listen, s.ready_timeout)
    return Started(port=listen, target_root=proc, backends=backends)


def backend_ops(started: Started, target: str) -> dict[str, int]:
    """Summed get/set/miss/eviction counters of the backends the load can reach."""
    ports = [started.backends[0][1]] if target == "direct" else [p for _, p in started.backends]
    total: dict[str, int] = {}
    for port in ports:
        st = memcached_stats(port)
        for k in ("cmd_get", "cmd_set", "get_misses", "evictions"):
            total[k] = total.get(k, 0) + st.get(k, 0)
    return total


def children_cpu_s() -> float:
    """CPU seconds of all reaped children so far (the load generator once it has exited)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def measure(target: str, mode: str, s: Settings, wl: Workload, workdir: Path) -> dict[str, Any]:
    """One run: start everything fresh, preload, load, measure CPU, stop everything."""
    fleet = Fleet(workdir)
    try:
        for attempt in (1, 2):
            try:
                started = start_target(fleet, target, s)
                break
            except TargetUnavailable as exc:
                # A port probed free may be grabbed by another program before our server
                # binds it, so one retry on fresh ports separates bad luck from a broken target.
                fleet.stop_all()
                if attempt == 2:
                    raise
                print(f"  {target} did not come up, retrying once: {exc}", file=sys.stderr)
        preload(fleet, started.port, wl)
        backend_pids = [m.pid for m, _ in started.backends]
        cpus = sorted({s.server_cpu, wl.client_cpu})
        ops_before = backend_ops(started, target)
        gen_before = children_cpu_s()
        all_before, wall_before = total_busy_ticks(), time.monotonic()
        sys_before = cpu_times(cpus)
        tgt_before = cpu_ticks(process_tree(started.target_root.pid))
        tgt_user_before = cpu_ticks(process_tree(started.target_root.pid), user_only=True)
        be_before = cpu_ticks(backend_pids)
        res = run_load(fleet, started.port, mode, wl)
        tgt_after = cpu_ticks(process_tree(started.target_root.pid))
        tgt_user_after = cpu_ticks(process_tree(started.target_root.pid), user_only=True)
        be_after = cpu_ticks(backend_pids)
        sys_after = cpu_times(cpus)
        all_after, wall_after = total_busy_ticks(), time.monotonic()
        gen_cpu_s = children_cpu_s() - gen_before
        ops_after = backend_ops(started, target)
        if started.target_root.popen.poll() is not None:
            raise TargetUnavailable(f"{target} died during the run{started.target_root.log_tail()}")
    finally:
        fleet.stop_all()
    ops = int(res["ops"])
    tgt_s = ticks_delta(tgt_before, tgt_after) / CLK_TCK
    be_s = ticks_delta(be_before, be_after) / CLK_TCK
    ours_s = be_s + gen_cpu_s + (0.0 if target == "direct" else tgt_s)
    window_s = wall_after - wall_before
    res["target_cpu_s"] = tgt_s
    res["backend_cpu_s"] = be_s
    res["loadgen_cpu_s"] = gen_cpu_s
    res["cpu_us_per_req"] = tgt_s * 1e6 / ops if ops else math.nan
    user_s = ticks_delta(tgt_user_before, tgt_user_after) / CLK_TCK
    res["user_cpu_us_per_req"] = user_s * 1e6 / ops if ops else math.nan
    res["backend_cpu_us_per_req"] = be_s * 1e6 / ops if ops else math.nan
    srv_busy_s = (sys_after[s.server_cpu][0] - sys_before[s.server_cpu][0]) / CLK_TCK
    res["server_cpu_total_us_per_req"] = srv_busy_s * 1e6 / ops if ops else math.nan
    res["server_cpu_busy_pct"] = busy_pct(sys_before, sys_after, s.server_cpu, res["seconds"])
    res["client_cpu_busy_pct"] = busy_pct(sys_before, sys_after, wl.client_cpu, res["seconds"])
    # CPU burnt by programs that are not part of this benchmark, in % of one CPU.
    other_s = (all_after - all_before) / CLK_TCK - ours_s
    res["other_cpu_pct"] = max(0.0, 100.0 * other_s / window_s) if window_s > 0 else math.nan
    res["backend_counters"] = {k: ops_after[k] - ops_before[k] for k in ops_after}
    seen = res["backend_counters"]["cmd_get"] + res["backend_counters"]["cmd_set"]
    res["backend_requests"] = seen
    res["get_fraction"] = res["gets"] / (res["gets"] + res["sets"]) if ops else math.nan
    return res


# --------------------------------------------------------------------------------------------
# reporting


METRICS = (
    "ops_per_sec",
    "p50_us",
    "p99_us",
    "cpu_us_per_req",
    "user_cpu_us_per_req",
    "backend_cpu_us_per_req",
    "errors",
    "server_cpu_busy_pct",
    "client_cpu_busy_pct",
    "other_cpu_pct",
    "server_cpu_total_us_per_req",
    "get_fraction",
)


def json_safe(obj: Any) -> Any:
    """Replace NaN/inf (not valid JSON) by None, recursively."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every metric over the runs of one (target, mode)."""
    out: dict[str, Any] = {m: statistics.median(float(r[m]) for r in runs) for m in METRICS}
    out["runs"] = len(runs)
    out["latency_exact"] = all(bool(r.get("latency_exact")) for r in runs)
    out["generator"] = runs[0].get("generator", "?")
    return out


def ratios(summary: dict[str, dict[str, dict[str, Any]]]) -> dict[str, float]:
    """memfleet/twemproxy ratio of CPU µs per request, per mode where both were measured."""
    out: dict[str, float] = {}
    for target, label in (("memfleet", ""), ("memfleet-pure", ", pure Python")):
        for mode in MODES:
            mf = summary.get(target, {}).get(mode)
            tw = summary.get("twemproxy", {}).get(mode)
            if mf and tw and tw["cpu_us_per_req"] > 0:
                out[mode + label] = mf["cpu_us_per_req"] / tw["cpu_us_per_req"]
    return out


def _fmt_row(target: str, mode: str, m: dict[str, Any]) -> list[str]:
    approx = "" if m["latency_exact"] else "~"
    return [
        target,
        mode,
        f"{m['ops_per_sec']:,.0f}",
        f"{approx}{m['p50_us']:,.0f}",
        f"{approx}{m['p99_us']:,.0f}",
        f"{m['cpu_us_per_req']:.2f}",
        f"{m['user_cpu_us_per_req']:.2f}",
        f"{m['backend_cpu_us_per_req']:.2f}",
        f"{m['errors']:.0f}",
        f"{m['server_cpu_busy_pct']:.0f}/{m['client_cpu_busy_pct']:.0f}",
        f"{m['other_cpu_pct']:.0f}",
    ]


HEADERS = [
    "target",
    "mode",
    "ops/s",
    "p50 µs",
    "p99 µs",
    "CPU µs/req",
    "of which user",
    "backends CPU µs/req",
    "errors",
    "CPU busy % srv/gen",
    "other %",
]


def rows_of(summary: dict[str, dict[str, dict[str, Any]]]) -> list[list[str]]:
    """Table rows in a stable target/mode order."""
    return [
        _fmt_row(t, mode, summary[t][mode])
        for t in TARGETS
        for mode in MODES
        if mode in summary.get(t, {})
    ]


def text_table(summary: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Plain fixed-width table."""
    rows = [HEADERS, *rows_of(summary)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = []
    for n, r in enumerate(rows):
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(
    summary: dict[str, dict[str, dict[str, Any]]],
    machine: dict[str, str],
    params: dict[str, Any],
    skipped: dict[str, str],
) -> str:
    """Markdown section for benchmarks/RESULTS.md."""
    out = [f"### memfleet proxy benchmark, {time.strftime('%Y-%m-%d')}", ""]
    out += [f"- **{k}**: {v}" for k, v in machine.items()]
    out.append(
        f"- **workload**: {params['connections']} connections, "
        f"{100 * (1 - params['set_ratio']):.0f}% get / {100 * params['set_ratio']:.0f}% set, "
        f"{params['value_size']}-byte values, {params['keys']:,} preloaded keys, "
        f"pipelined depth {params['depth']}, {params['duration']} s per run, "
        f"median of {params['runs']} runs; servers on CPU {params['server_cpu']}, "
        f"load generator on CPU {params['client_cpu']}"
    )
    if params.get("memfleet_config"):
        out.append(f"- **memfleet config**: `{params['memfleet_config']}`")
    out.append("")
    out.append("| " + " | ".join(HEADERS) + " |")
    out.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(HEADERS))) + "|")
    out += ["| " + " | ".join(r) + " |" for r in rows_of(summary)]
    out.append("")
    for mode, ratio in ratios(summary).items():
        out.append(f"- memfleet / twemproxy CPU µs per request ({mode}): **{ratio:.2f}×**")
    for target, why in skipped.items():
        out.append(f"- {target}: skipped ({why.splitlines()[0]})")
    out += [
        "",
        "CPU µs/req is the target's utime+stime (for `direct`: the one memcached) divided by "
        "completed requests; backends CPU is all memcached processes. Latency is per request "
        "(nonpipelined) or per 16-request batch (pipelined); `~` marks memcaslap values "
        "estimated from its log2 histogram. CPU busy % is per pinned CPU while load ran; "
        "`other %` is CPU (in % of one CPU) used by programs outside the benchmark, which "
        "should be ~0 for trustworthy numbers.",
    ]
    return "\n".join(out)


def _first_line(argv: Sequence[str]) -> str:
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (cp.stdout + cp.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def machine_info(s: Settings, memcaslap: str) -> dict[str, str]:
    """Versions and hardware facts that the results depend on."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        uv = importlib.metadata.version("uvloop")
    except importlib.metadata.PackageNotFoundError:
        uv = "not installed"
    return {
        "nproc": str(os.cpu_count()),
        "CPU": model,
        "kernel": platform.release(),
        "memcached": _first_line([s.memcached, "-V"]),
        "nutcracker": _first_line([s.nutcracker, "-V"]),
        "memcaslap": _first_line([memcaslap, "-V"]),
        "python": f"{platform.python_version()} (uvloop {uv})",
        "memfleet build": _memfleet_build(),
    }


def _memfleet_build() -> str:
    """Whether the memfleet under test runs its compiled hot path (the ``memfleet`` target)."""
    try:
        import memfleet
    except ImportError:
        return "memfleet not importable here"
    if os.environ.get("MEMFLEET_PURE_PYTHON"):
        return "MEMFLEET_PURE_PYTHON is set in this shell: unset it to measure the compiled build"
    return "compiled with mypyc" if memfleet.is_compiled() else "pure Python (not compiled)"


# --------------------------------------------------------------------------------------------
# main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--runs", type=int, default=3, help="runs per target and mode (median)")
    p.add_argument("--duration", type=int, default=10, help="seconds of load per run")
    p.add_argument("--json", type=Path, help="write all raw runs and medians here")
    p.add_argument("--markdown", action="store_true", help="also print a markdown section")
    p.add_argument("--proxies", default=",".join(TARGETS), help="targets, comma separated")
    p.add_argument("--modes", default=",".join(MODES), help="modes, comma separated")
    p.add_argument("--memfleet-config", type=Path, help="memfleet YAML to use instead")
    p.add_argument(
        "--memfleet-cmd",
        default=f"{shlex.quote(sys.executable)} -m memfleet proxy",
        help="command that starts memfleet (--config/--listen are appended)",
    )
    p.add_argument("--server-cpu", type=int, default=0, help="CPU for memcached and proxies")
    p.add_argument("--client-cpu", type=int, default=1, help="CPU for the load generator")
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--depth", type=int, default=16, help="pipeline depth of 'pipelined'")
    p.add_argument("--keys", type=int, default=10_000, help="preloaded keys")
    p.add_argument("--value-size", type=int, default=100)
    p.add_argument("--set-ratio", type=float, default=0.1)
    p.add_argument("--backends", type=int, default=3, help="memcached backends")
    p.add_argument("--memcached-mem", type=int, default=64, help="memcached -m (MB)")
    p.add_argument(
        "--nonpipelined-gen",
        choices=("memcaslap", "pipeload"),
        default="memcaslap",
        help="load generator for 'nonpipelined' (pipeload is Python-bound at depth 1)",
    )
    p.add_argument("--ready-timeout", type=float, default=10.0, help="seconds to answer 'version'")
    p.add_argument("--memcached", default="/usr/bin/memcached")
    p.add_argument("--nutcracker", default="/usr/sbin/nutcracker")
    p.add_argument("--memcaslap", default=shutil.which("memcaslap") or "/usr/bin/memcaslap")
    p.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="max seconds to wait before each run for other programs to stop using CPU",
    )
    p.add_argument("--keep-tmp", action="store_true", help="keep configs and logs for debugging")
    args = p.parse_args(argv)
    args.targets = [t.strip() for t in args.proxies.split(",") if t.strip()]
    args.mode_list = [m.strip() for m in args.modes.split(",") if m.strip()]
    for t in args.targets:
        if t not in TARGETS:
            p.error(f"unknown target {t!r}; choose from {', '.join(TARGETS)}")
    for m in args.mode_list:
        if m not in MODES:
            p.error(f"unknown mode {m!r}; choose from {', '.join(MODES)}")
    if args.runs < 1 or args.duration < 1 or args.backends < 1:
        p.error("--runs, --duration and --backends must be at least 1")
    n_cpus = os.cpu_count() or 1
    for cpu in (args.server_cpu, args.client_cpu):
        if not 0 <= cpu < n_cpus:
            p.error(f"CPU {cpu} does not exist (nproc = {n_cpus})")
    if args.memfleet_config is not None and not args.memfleet_config.is_file():
        p.error(f"--memfleet-config {args.memfleet_config} is not a file")
    return args


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so that cleanup in ``finally`` blocks runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def check_tools(args: argparse.Namespace) -> None:
    """Fail early when a tool every run needs is missing."""
    missing = [t for t in ("taskset", args.memcached) if shutil.which(t) is None]
    needs_memcaslap = "nonpipelined" in args.mode_list and args.nonpipelined_gen == "memcaslap"
    if needs_memcaslap and shutil.which(args.memcaslap) is None:
        missing.append(args.memcaslap)
    if missing:
        sys.exit(f"missing tools: {', '.join(missing)} (see benchmarks/README.md)")
    if args.server_cpu == args.client_cpu:
        print(
            "warning: server and load generator share a CPU; numbers are not comparable",
            file=sys.stderr,
        )


def report_run(label: str, res: dict[str, Any]) -> None:
    """One progress line per run on stderr, plus warnings about suspicious runs."""
    print(
        f"{label} {res['ops_per_sec']:,.0f} ops/s  "
        f"p50 {res['p50_us']:,.0f} µs  p99 {res['p99_us']:,.0f} µs  "
        f"CPU {res['cpu_us_per_req']:.2f} µs/req  errors {res['errors']}  "
        f"gets {100 * res['get_fraction']:.1f}%  "
        f"busy srv/gen {res['server_cpu_busy_pct']:.0f}/{res['client_cpu_busy_pct']:.0f}%  "
        f"other {res['other_cpu_pct']:.0f}%",
        file=sys.stderr,
        flush=True,
    )
    if abs(res["backend_requests"] - res["ops"]) > 0.05 * max(res["ops"], 1):
        print(
            f"{label} note: backends saw {res['backend_requests']:,} requests "
            f"for {res['ops']:,} completed",
            file=sys.stderr,
        )
    if res["other_cpu_pct"] > 10:
        print(
            f"{label} warning: other programs used {res['other_cpu_pct']:.0f}% of a CPU "
            "during this run; its numbers are disturbed",
            file=sys.stderr,
        )


def run_matrix(
    args: argparse.Namespace, settings: Settings, wl: Workload, tmp: Path
) -> tuple[dict[str, dict[str, list[dict[str, Any]]]], dict[str, str]]:
    """Run every (target, mode, run); return raw results and the skipped targets."""
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
    skipped: dict[str, str] = {}
    # Runs are interleaved across targets so that slow drifts of the machine's speed (other
    # VMs on the host, thermal limits) affect every target alike instead of one of them.
    for run in range(1, args.runs + 1):
        for mode in args.mode_list:
            for target in args.targets:
                if target in skipped:
                    continue
                label = f"[run {run}/{args.runs} {mode} {target}]"
                busy = wait_for_quiet(args.settle)
                if busy >= 10.0:
                    print(
                        f"{label} machine still {busy:.0f}% busy, running anyway", file=sys.stderr
                    )
                workdir = tmp / f"{target}-{mode}-{run}"
                workdir.mkdir()
                try:
                    res = measure(target, mode, settings, wl, workdir)
                except TargetUnavailable as exc:
                    skipped[target] = str(exc)
                    print(f"{label} SKIPPING {target}: {exc}", file=sys.stderr)
                    continue
                raw.setdefault(target, {}).setdefault(mode, []).append(res)
                report_run(label, res)
    return raw, skipped


def main(argv: list[str] | None = None) -> int:
    """Run the whole benchmark matrix and print the results."""
    args = parse_args(argv)
    check_tools(args)
    settings = Settings(
        server_cpu=args.server_cpu,
        backends=args.backends,
        memcached=args.memcached,
        memcached_mem=args.memcached_mem,
        nutcracker=args.nutcracker,
        memfleet_cmd=shlex.split(args.memfleet_cmd),
        memfleet_config=args.memfleet_config,
        ready_timeout=args.ready_timeout,
    )
    wl = Workload(
        duration=args.duration,
        connections=args.connections,
        depth=args.depth,
        keys=args.keys,
        value_size=args.value_size,
        set_ratio=args.set_ratio,
        client_cpu=args.client_cpu,
        nonpipelined_gen=args.nonpipelined_gen,
        memcaslap=args.memcaslap,
    )
    tmp = Path(tempfile.mkdtemp(prefix="memfleet-bench-"))
    t_start = time.monotonic()
    try:
        with sigterm_as_exit():
            raw, skipped = run_matrix(args, settings, wl, tmp)
    finally:
        if args.keep_tmp:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    summary = {t: {m: summarize(runs) for m, runs in modes.items()} for t, modes in raw.items()}
    params = {
        "runs": args.runs,
        "duration": args.duration,
        "connections": args.connections,
        "depth": args.depth,
        "keys": args.keys,
        "value_size": args.value_size,
        "set_ratio": args.set_ratio,
        "server_cpu": args.server_cpu,
        "client_cpu": args.client_cpu,
        "backends": args.backends,
        "nonpipelined_gen": args.nonpipelined_gen,
        "memfleet_config": str(args.memfleet_config) if args.memfleet_config else None,
    }
    machine = machine_info(settings, args.memcaslap)
    print()
    print(text_table(summary))
    for mode, ratio in ratios(summary).items():
        print(f"memfleet/twemproxy CPU µs per request ({mode}): {ratio:.2f}x")
    for target, why in skipped.items():
        print(f"{target}: skipped ({why.splitlines()[0]})")
    print(f"({time.monotonic() - t_start:.0f} s total)")
    if args.markdown:
        print()
        print(markdown(summary, machine, params, skipped))
    if args.json:
        args.json.write_text(
            json.dumps(
                json_safe(
                    {
                        "machine": machine,
                        "params": params,
                        "summary": summary,
                        "ratios_memfleet_over_twemproxy": ratios(summary),
                        "skipped": skipped,
                        "runs": raw,
                    }
                ),
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # Children were already stopped by the finally blocks on the way up.
        print("interrupted", file=sys.stderr)
        sys.exit(130)

#!/usr/bin/env python3
"""Instructions per request of memfleet's proxy, counted by valgrind's callgrind.

Wall-clock and CPU-time cells (``proxy_bench.py``) swing by 10% and more on a shared 2-core VM;
the number of instructions the proxy executes per request does not depend on what else runs.
This starts real memcached backends and one proxy under ``valgrind --tool=callgrind`` (with
instrumentation off while it starts and warms up), switches counting on for a fixed number of
non-pipelined requests (one connection, one request in flight, 9 gets : 1 set over a warm key
space; ``--depth 16`` for 16-deep pipelined batches), dumps the count, and prints instructions
(``Ir``) per request. Run it for several
checkouts (``--memfleet-cmd``) in one go, interleaved, and it prints their ratios to the first.

    python benchmarks/instructions.py --backends 6 \\
        --memfleet-config benchmarks/configs/replicated-sharded.yaml \\
        --memfleet-cmd "/work/before/.venv/bin/python -m memfleet proxy" \\
        --memfleet-cmd "/work/after/.venv/bin/python -m memfleet proxy"

It measures what the proxy executes, not how the machine runs it (cache misses, system-call
cost and scheduling are not in it): a companion to ``proxy_bench.py``, not a replacement.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

LOOPBACK = "127.0.0.1"
VALUE = b"x" * 100


def free_port() -> int:
    """A port the OS says is free on the loopback address."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, seconds: float) -> None:
    """Return once ``port`` accepts a connection (TimeoutError after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 1):
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {LOOPBACK}:{port} after {seconds:g}s")


class Client:
    """One blocking connection; each request waits for its whole reply."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=60)
        self.buf = b""

    def call(self, data: bytes, end: bytes) -> bytes:
        self.sock.sendall(data)
        while not self.buf.endswith(end):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the proxy closed the connection")
            self.buf += chunk
        out, self.buf = self.buf, b""
        return out


def workload(client: Client, count: int, keys: int, rng: random.Random, depth: int = 1) -> None:
    """``count`` requests: 9 gets to 1 set, keys drawn uniformly from ``keys``, sent in
    batches of ``depth`` (1: one request in flight; a batch ends with ``mn`` to know its end)."""
    if depth == 1:
        for _ in range(count):
            k = b"key:%d" % rng.randrange(keys)
            if rng.random() < 0.1:
                client.call(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(VALUE), VALUE), b"\r\n")
            else:
                client.call(b"get %s\r\n" % k, b"END\r\n")
        return
    for _ in range(count // depth):
        batch = []
        for _ in range(depth):
            k = b"key:%d" % rng.randrange(keys)
            if rng.random() < 0.1:
                batch.append(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(VALUE), VALUE))
            else:
                batch.append(b"get %s\r\n" % k)
        client.call(b"".join(batch) + b"mn\r\n", b"MN\r\n")


def render_config(template: Path, listen: int, backends: list[str], out: Path) -> None:
    """The proxy config: ``template`` with its ``@LISTEN@``/``@BACKENDn@`` placeholders filled."""
    text = template.read_text().replace("@LISTEN@", f"{LOOPBACK}:{listen}")
    for i, addr in enumerate(backends):
        text = text.replace(f"@BACKEND{i}@", addr)
    out.write_text(text)


@contextlib.contextmanager
def backends(n: int) -> Iterator[list[str]]:
    """``n`` real memcached processes on free loopback ports."""
    procs, addrs = [], []
    try:
        for _ in range(n):
            port = free_port()
            argv = ["memcached", "-U", "0", "-t", "1", "-m", "64", "-l", LOOPBACK, "-p", str(port)]
            if os.geteuid() == 0:
                argv += ["-u", "root"]  # memcached refuses to run as root without it
            procs.append(subprocess.Popen(argv))
            addrs.append(f"{LOOPBACK}:{port}")
        for a in addrs:
            wait_port(int(a.rsplit(":", 1)[1]), 10)
        yield addrs
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


def count_once(
    cmd: str, template: Path, n_backends: int, requests: int, keys: int, depth: int
) -> float:
    """Instructions per request of one proxy run."""
    with tempfile.TemporaryDirectory() as tmp, backends(n_backends) as addrs:
        listen = free_port()
        cfg = Path(tmp) / "proxy.yaml"
        render_config(template, listen, addrs, cfg)
        out = Path(tmp) / "callgrind.out"
        argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                f"--callgrind-out-file={out}", *shlex.split(cmd), "--config", str(cfg),
                "--watch-interval", "0"]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(listen, 120)
            client = Client(listen)
            rng = random.Random(1)
            for i in range(keys):  # the key space warm, so gets hit as in proxy_bench
                client.call(b"set key:%d 0 0 %d\r\n%s\r\n" % (i, len(VALUE), VALUE), b"\r\n")
            workload(client, 500, keys, rng)
            subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True,
                           capture_output=True)  # fmt: skip
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                           capture_output=True)  # fmt: skip
            workload(client, requests, keys, rng, depth)
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                           capture_output=True)  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(60)
        dumps = sorted(Path(tmp).glob("callgrind.out*"))
        totals = [_total(d) for d in dumps]
        # The dump asked for holds the window; the one written at exit holds only the stop.
        return max(totals) / requests


def _total(dump: Path) -> int:
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise ValueError(f"{dump}: no totals line")


def main() -> int:
    """Run every checkout ``--runs`` times, interleaved; print Ir/request and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--memfleet-cmd", action="append", required=True,
                    help="how to start a proxy (repeatable: one per checkout)")  # fmt: skip
    ap.add_argument("--memfleet-config", type=Path, required=True)
    ap.add_argument("--backends", type=int, default=3)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--depth", type=int, default=1, help="requests per batch (1: non-pipelined)")
    args = ap.parse_args()
    for tool in ("valgrind", "callgrind_control", "memcached"):
        if shutil.which(tool) is None:
            print(f"instructions.py: {tool} is not installed", file=sys.stderr)
            return 1
    results: dict[str, list[float]] = {c: [] for c in args.memfleet_cmd}
    for run in range(args.runs):
        for cmd in args.memfleet_cmd:
            ir = count_once(
                cmd, args.memfleet_config, args.backends, args.requests, args.keys, args.depth
            )
            results[cmd].append(ir)
            print(f"run {run + 1}: {ir:,.0f} Ir/request  {cmd}", flush=True)
    first = statistics.median(results[args.memfleet_cmd[0]])
    print("\n| checkout | Ir/request (median) | runs | vs first |\n|---|---:|---|---:|")
    for cmd, values in results.items():
        med = statistics.median(values)
        runs = ", ".join(f"{v:,.0f}" for v in values)
        print(f"| `{cmd}` | {med:,.0f} | {runs} | {med / first:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Proxy memory: RSS at idle, with N idle client connections, and after they close.

    python benchmarks/memory_bench.py [--connections 10000] [--workers 1]

Starts 3 memcached and the proxy on free loopback ports (limits.max_connections raised above
N), opens N connections that each send one `version` (so every connection is fully set up in
the proxy) and then stay idle, and reads the proxy's VmRSS from /proc at each step. Stops
everything it started.
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def free_port() -> int:
    """A TCP port the OS says is free on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, seconds: float = 10) -> None:
    """Wait (bounded) until 127.0.0.1:port accepts."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing on port {port}")


def rss_kb(pids: list[int]) -> int:
    """Summed VmRSS of the processes (the proxy and its workers)."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def proxy_pids(pid: int) -> list[int]:
    """The proxy and its worker processes (children), if any."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(p) for p in children.read_text().split()] if children.exists() else []
    return [pid, *kids]


def raise_nofile(n: int) -> None:
    """Allow this process (and its children) n + some open files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(soft, n + 1024), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main(argv: list[str] | None = None) -> int:
    """Measure and print a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    raise_nofile(args.connections + 100)
    memcached = shutil.which("memcached") or "/usr/bin/memcached"
    procs: list[subprocess.Popen[bytes]] = []
    conns: list[socket.socket] = []
    rows: list[tuple[str, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            ports = [free_port() for _ in range(3)]
            for p in ports:
                cmd = [memcached, "-l", "127.0.0.1", "-p", str(p), "-U", "0", "-m", "64"]
                if os.geteuid() == 0:
                    cmd += ["-u", "root"]
                procs.append(subprocess.Popen(cmd))
            for p in ports:
                wait_port(p)
            listen = free_port()
            cfg = {
                "pools": {"main": {"backends": [f"127.0.0.1:{p}" for p in ports]}},
                "routes": {"default": "main"},
                "limits": {"max_connections": args.connections + 100},
            }
            conf = Path(tmp) / "proxy.yaml"
            conf.write_text(yaml.safe_dump(cfg))
            cmd = [sys.executable, "-m", "memfleet", "proxy", "--config", str(conf),
                   "--listen", f"127.0.0.1:{listen}", "--log-level", "warning"]  # fmt: skip
            if args.workers > 1:
                cmd += ["--workers", str(args.workers)]
            proxy = subprocess.Popen(cmd, start_new_session=True)
            procs.append(proxy)
            wait_port(listen)
            time.sleep(1.0)
            rows.append(("idle, no clients", rss_kb(proxy_pids(proxy.pid))))
            sel = selectors.DefaultSelector()
            for _ in range(args.connections):
                s = socket.create_connection(("127.0.0.1", listen), timeout=10)
                s.sendall(b"version\r\n")
                conns.append(s)
            for s in conns:  # every connection answered: fully set up in the proxy
                s.settimeout(10)
                assert s.recv(100).startswith(b"VERSION")
            sel.close()
            time.sleep(1.0)
            rows.append((f"{args.connections:,} idle connections", rss_kb(proxy_pids(proxy.pid))))
            for s in conns:
                s.close()
            conns.clear()
            time.sleep(2.0)
            rows.append(("after they closed", rss_kb(proxy_pids(proxy.pid))))
        finally:
            for s in conns:
                s.close()
            for p in procs:
                if p.poll() is None:
                    if p.args[1:3] == ["-m", "memfleet"]:
                        os.killpg(p.pid, signal.SIGTERM)
                    else:
                        p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    base = rows[0][1]
    print(f"| proxy RSS (workers: {args.workers}) | KiB | per connection |")
    print("|---|---:|---:|")
    for name, kb in rows:
        per = f"{(kb - base) * 1024 / args.connections:,.0f} B" if "idle conn" in name else ""
        print(f"| {name} | {kb:,} | {per} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

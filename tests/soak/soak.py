"""Soak: a replicated-sharded fleet under a steady mixed workload for N minutes, a fault
injected every minute, and a report of errors, wrong values, lost keys and proxy memory.

    python tests/soak/soak.py --minutes 10 [--topology replicated-sharded] [--json out.json]

Faults cycle through: SIGKILL of a node and a cold restart, SIGSTOP of a node for 5 s, 50
proxy reloads, 1,000 connections opened and closed. Real memcached nodes and the real proxy
on free loopback ports; everything is stopped at the end (also on Ctrl-C). Results of runs
are recorded in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.helpers import Conn, Memcached, ProxyProcess
from tests.workload import KEYS, Workload, churn_connections, wait_backend_up

from memfleet.topology.presets import Topology

OPTIONS = {"read_timeout": 0.5, "connect_timeout": 0.5, "failure_limit": 2, "retry_timeout": 0.5}


def _fault(i: int, nodes: list[Memcached], proxy: ProxyProcess, admin: Conn) -> str:
    victim = nodes[i % len(nodes)]
    kind = ("kill-restart", "hang-5s", "reload-x50", "churn-1000")[i % 4]
    if kind == "kill-restart":
        victim.kill()
        time.sleep(2)
        victim.start()
        wait_backend_up(admin, victim, 30)
    elif kind == "hang-5s":
        victim.stop_signal()
        time.sleep(5)
        victim.cont_signal()
        wait_backend_up(admin, victim, 30)
    elif kind == "reload-x50":
        for _ in range(50):
            proxy.reload()
            time.sleep(0.02)
    else:
        churn_connections(proxy.port, 1000)
    return f"{kind} {victim.address}"


def main(argv: list[str] | None = None) -> int:
    """Run the soak; print one line a minute and a summary; exit 1 if anything was lost."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--topology", default="replicated-sharded")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    topo = Topology(args.topology, shards=3, replicas=2)
    nodes: list[Memcached] = []
    proxy: ProxyProcess | None = None
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            by_name = {n.name: Memcached() for n in topo.nodes()}
            nodes = list(by_name.values())
            cfg = topo.proxy_config(lambda n: by_name[n.name].address, pool_options=OPTIONS)
            proxy = ProxyProcess(cfg, Path(tmp))
            admin = Conn(proxy.port, timeout=10)
            for k in KEYS:
                admin.request(f"set {k} 0 0 4\r\ninit\r\n".encode())
            load = Workload(proxy.port, clients=4, seconds=args.minutes * 60 + 120)
            start = time.monotonic()
            minute = 0
            while time.monotonic() - start < args.minutes * 60:
                time.sleep(max(0.0, start + (minute + 1) * 60 - 30 - time.monotonic()))
                what = _fault(minute, nodes, proxy, admin)
                time.sleep(max(0.0, start + (minute + 1) * 60 - time.monotonic()))
                minute += 1
                row = {
                    "minute": minute, "fault": what, "ops": load.ops, "errors": load.errors,
                    "read_errors": load.read_errors, "wrong": len(load.wrong),
                    "proxy_rss_kb": proxy.rss_kb(),
                }  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
            load.finish()
            lost = []
            for key in KEYS:
                reply = admin.request(f"get {key}\r\n".encode())
                got = reply.split(b"\r\n")[1].decode() if reply.startswith(b"VALUE") else None
                if got not in load.allowed(key):
                    lost.append(key)
            summary = {
                "topology": args.topology, "minutes": args.minutes, "ops": load.ops,
                "errors": load.errors, "read_errors": load.read_errors,
                "wrong_values": len(load.wrong), "lost_keys": len(lost),
                "rss_kb_first": rows[0]["proxy_rss_kb"] if rows else None,
                "rss_kb_last": proxy.rss_kb(),
            }  # fmt: skip
            print(json.dumps(summary))
            if args.json:
                Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}))
            return 1 if lost or load.wrong else 0
        finally:
            if proxy is not None:
                proxy.stop()
            for n in nodes:
                n.stop()


if __name__ == "__main__":
    sys.exit(main())

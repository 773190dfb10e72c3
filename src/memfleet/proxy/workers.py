"""``memfleet proxy --workers N``: N proxy processes on one port (SO_REUSEPORT), one per core.

The parent supervises: it starts each worker as ``memfleet proxy ... --reuse-port`` (a fresh
interpreter, not a fork, so no event loop or lock is inherited), forwards SIGHUP (reload)
and SIGTERM/SIGINT (stop), restarts a worker that dies, and, with ``--metrics``, serves the
sum of the workers' metrics: each worker exposes its own on a private loopback port. It also
owns the rejoin fences the workers share (``memfleet.proxy.peer_hub``): each worker gets one
end of a socket pair to it, and a row of the shared write-fence table (a memfd).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.parser import text_string_to_metric_families

from memfleet.backends.fence import ROW_BYTES
from memfleet.proxy.peer_hub import PeerHub
from memfleet.proxy.peer_link import ENV as PEER_FD_ENV
from memfleet.proxy.peer_link import FENCE_ENV

log = logging.getLogger("memfleet.proxy.workers")

RESTART_DELAY = 1.0


def free_loopback_port() -> int:
    """A port the OS says is free on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def merge_metrics(texts: Iterable[str]) -> str:
    """Sum the workers' Prometheus expositions, sample by sample (same name and labels).

    Counters, gauges and histogram buckets all add up across processes; ``*_info`` gauges
    (constant 1) are kept, not summed, and ``*_up`` gauges (0 or 1 per backend) take the
    largest value: a backend is up for the proxy when any worker reaches it, and a sum would
    read 2 with two workers.
    """
    order: list[str] = []
    meta: dict[str, tuple[str, str]] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for fam in text_string_to_metric_families(text):
            if fam.name not in meta:
                order.append(fam.name)
                meta[fam.name] = (fam.documentation, fam.type)
                values[fam.name] = {}
            keep = fam.name.endswith("_info")
            largest = fam.name.endswith("_up")
            for s in fam.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                old = values[fam.name].get(key)
                if keep or old is None:
                    values[fam.name][key] = s.value
                else:
                    values[fam.name][key] = max(old, s.value) if largest else old + s.value
    out: list[str] = []
    for name in order:
        doc, kind = meta[name]
        exposed = name + "_total" if kind == "counter" else name
        out.append(f"# HELP {exposed} {doc}")
        out.append(f"# TYPE {exposed} {kind}")
        for (sample, labels), value in values[name].items():
            lab = ",".join(f'{k}="{v}"' for k, v in labels)
            out.append(f"{sample}{{{lab}}} {value!r}" if lab else f"{sample} {value!r}")
    return "\n".join(out) + "\n"


class Supervisor:
    """Starts, watches and stops the worker processes."""

    def __init__(self, worker_args: list[str], count: int, metrics: str | None) -> None:
        self.worker_args = worker_args
        self.count = count
        self.metrics_ports = [free_loopback_port() for _ in range(count)] if metrics else []
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self.stopping = threading.Event()
        self.hub = PeerHub()
        # The write-fence table all workers map (memfleet.backends.fence): one row each.
        self.fence_table = os.memfd_create("memfleet-fence")
        os.ftruncate(self.fence_table, count * ROW_BYTES)

    def _start(self, i: int) -> None:
        args = [sys.executable, "-m", "memfleet", "proxy", *self.worker_args, "--reuse-port"]
        if self.metrics_ports:
            args += ["--metrics", f"127.0.0.1:{self.metrics_ports[i]}"]
        channel = self.hub.new_worker(i)
        env = {
            **os.environ,
            PEER_FD_ENV: str(channel.fileno()),
            FENCE_ENV: f"{self.fence_table} {i} {self.count}",
        }
        fds = (channel.fileno(), self.fence_table)
        try:
            self.procs[i] = subprocess.Popen(args, pass_fds=fds, env=env)
        finally:
            channel.close()  # the worker has its own copy: its exit closes the channel
        log.info("worker %d started (pid %d)", i, self.procs[i].pid)  # type: ignore[union-attr]

    def _signal_all(self, sig: int) -> None:
        for p in self.procs:
            if p is not None and p.poll() is None:
                p.send_signal(sig)

    def scrape(self, path: str) -> list[tuple[int, str]]:
        """GET ``path`` from every worker's metrics port."""
        out = []
        for port in self.metrics_ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                    out.append((r.status, r.read().decode()))
            except urllib.error.HTTPError as exc:
                out.append((exc.code, exc.read().decode()))
            except OSError as exc:
                out.append((503, f"worker unreachable: {exc}\n"))
        return out

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; return the exit status."""
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        signal.signal(signal.SIGHUP, lambda *_: self._signal_all(signal.SIGHUP))
        self.hub.start()
        for i in range(self.count):
            self._start(i)
        while not self.stopping.wait(0.2):
            for i, p in enumerate(self.procs):
                if p is not None and p.poll() is not None and not self.stopping.is_set():
                    log.error(
                        "worker %d (pid %d) exited with %s; restarting", i, p.pid, p.returncode
                    )
                    time.sleep(RESTART_DELAY)
                    self._start(i)
        self._signal_all(signal.SIGTERM)
        status = 0
        for p in self.procs:
            if p is None:
                continue
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            status = status or (p.returncode if p.returncode and p.returncode > 0 else 0)
        self.hub.stop()
        os.close(self.fence_table)
        return status


def serve_metrics(sup: Supervisor, host: str, port: int) -> ThreadingHTTPServer:
    """The aggregated ``/metrics``, ``/healthz`` and ``/readyz`` in a background thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                results = sup.scrape("/metrics")
                texts = [t for code, t in results if code == 200]
                status, body = 200, merge_metrics(texts)
                ctype = "text/plain; version=0.0.4; charset=utf-8"
            elif path in ("/healthz", "/readyz"):
                results = sup.scrape(path)
                bad = [t.strip() for code, t in results if code != 200]
                status = 503 if bad else 200
                body = ("; ".join(bad) if bad else ("ok" if path == "/healthz" else "ready")) + "\n"
                ctype = "text/plain"
            else:
                status, body, ctype = 404, "not found\n", "text/plain"
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes every few seconds would flood the log

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def supervise(worker_args: list[str], count: int, metrics: tuple[str, int] | None) -> int:
    """Run ``count`` workers with ``worker_args`` until told to stop."""
    sup = Supervisor(worker_args, count, f"{metrics[0]}:{metrics[1]}" if metrics else None)
    server = serve_metrics(sup, *metrics) if metrics else None
    log.info("memfleet proxy: %d workers (pid %d supervises)", count, os.getpid())
    try:
        return sup.run()
    finally:
        if server is not None:
            server.shutdown()

"""The drill's own proxies over the fleet ``memfleet up`` started: ``--workers N`` processes
each, and as many instances as asked (``DrillOptions.workers`` and ``proxies``). They read
the proxy config ``up`` wrote, listen on free loopback ports, and are always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from memfleet.tools.drill.options import DrillError

READY_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pid_answering(port: int) -> int | None:
    """The pid of the proxy process that answers a new connection on ``port``, or None."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"stats\r\n")
            buf = b""
            while not buf.endswith(b"END\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    return None
                buf += chunk
    except OSError:
        return None
    for line in buf.split(b"\r\n"):
        if line.startswith(b"STAT pid "):
            return int(line.split()[2])
    return None


class DrillProxies:
    """``count`` instances of ``memfleet proxy --workers workers`` on the fleet's config."""

    def __init__(self, state: dict[str, Any], workdir: Path, workers: int, count: int) -> None:
        config = Path(state["data_dir"]) / "proxy.yaml"
        if not config.exists():
            raise DrillError(f"no proxy config at {config} to start the drill's proxies on")
        self.workers = workers
        self.ports: list[int] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self._logs = []
        for i in range(count):
            port = _free_port()
            log = (workdir / f"drill-proxy-{i}.log").open("ab")
            self._logs.append(log)
            args = [sys.executable, "-m", "memfleet", "proxy", "--config", str(config),
                    "--listen", f"127.0.0.1:{port}", "--watch-interval", "0"]  # fmt: skip
            if workers > 1:
                args += ["--workers", str(workers)]
            self.procs.append(subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            ))  # fmt: skip
            self.ports.append(port)

    def wait_ready(self) -> None:
        """Until every instance answers from each of its workers (bounded)."""
        deadline = time.monotonic() + READY_TIMEOUT
        for proc, port in zip(self.procs, self.ports, strict=True):
            seen: set[int] = set()
            while len(seen) < self.workers:
                if proc.poll() is not None:
                    raise DrillError(f"the drill's proxy on port {port} exited ({proc.returncode})")
                if time.monotonic() > deadline:
                    raise DrillError(
                        f"the drill's proxy on port {port}: {len(seen)} of "
                        f"{self.workers} workers answered in {READY_TIMEOUT:g}s"
                    )
                pid = _pid_answering(port)
                if pid is not None:
                    seen.add(pid)
                else:
                    time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM each instance (its supervisor stops its workers), then SIGKILL the group."""
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        for log in self._logs:
            log.close()

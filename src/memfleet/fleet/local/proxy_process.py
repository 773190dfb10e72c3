"""The proxy of a local fleet: its port, its process (``python -m memfleet proxy``, on the
simulated network with ``--hosts``), and waiting until it answers."""

from __future__ import annotations

import errno
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from memfleet.fleet.hosts import HostNetwork
from memfleet.fleet.local.messages import FleetError, say
from memfleet.fleet.local.ports import LOOPBACK, free_port, port_is_free
from memfleet.fleet.processes import die_with_parent, log_tail

# Where the proxy listens on the simulated network; the relay serves it on loopback.
INNER_PORT = 11211
PROXY_READY_TIMEOUT = 30.0


def _ask(host: str, port: int, request: bytes, end: bytes, timeout: float) -> bytes | None:
    """One request on a fresh connection: the reply up to ``end``, or None."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(request)
            buf = b""
            while not buf.endswith(end):
                chunk = s.recv(65536)
                if not chunk:
                    return None
                buf += chunk
    except OSError:
        return None
    return buf


def version_reply(host: str, port: int, timeout: float = 1.0) -> str | None:
    """The ``VERSION`` line a memcached-protocol server gives, or None."""
    buf = _ask(host, port, b"version\r\n", b"\r\n", timeout)
    if buf is None or not buf.startswith(b"VERSION "):
        return None
    return buf.decode(errors="replace").strip()


def check_metrics_port(host: str, port: int) -> tuple[str, int]:
    """``host:port`` for the proxy's metrics, a free port chosen for 0; FleetError naming the
    metrics port when it is taken (before anything starts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
            return host, int(s.getsockname()[1])
    except OSError as exc:
        why = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise FleetError(
            f"--metrics {host}:{port}: cannot serve the metrics there: {why}"
        ) from None


def choose_proxy_port(port: int) -> int:
    """``port`` if it is free, any free port for 0; another one (said so) if it is taken."""
    if port == 0:
        return free_port()
    if port_is_free(port):
        return port
    fallback = free_port()
    say(
        f"port {port} is in use by another program; the proxy listens on "
        f"{LOOPBACK}:{fallback} instead"
    )
    return fallback


def proxy_listen(listen_port: int, hosts: HostNetwork | None) -> tuple[str, int]:
    """Where the proxy itself listens (``HOST:PORT``), and the port of that address."""
    if hosts is not None:
        # The proxy lives on the simulated network; a relay in this process serves it on
        # loopback, so the private addresses never exist outside the namespaces.
        return f"{hosts.proxy_address}:{INNER_PORT}", INNER_PORT
    return f"{LOOPBACK}:{listen_port}", listen_port


def start_proxy(
    config_path: Path,
    listen: str,
    log_level: str,
    log: IO[bytes],
    hosts: HostNetwork | None,
    metrics: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``memfleet proxy`` on ``config_path`` in its own process group (with its
    metrics and status page on ``metrics``, ``HOST:PORT``, if given)."""
    argv = [
        sys.executable,
        "-m",
        "memfleet",
        "proxy",
        "--config",
        str(config_path),
        "--listen",
        listen,
        "--log-level",
        log_level,
    ]
    if metrics is not None:
        argv += ["--metrics", metrics]
    if hosts is not None:
        argv = hosts.exec_prefix(hosts.proxy_ns_name) + argv
    return subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent(signal.SIGTERM),
    )


def wait_proxy_answers(
    proxy: subprocess.Popen[bytes], port: int, log_path: Path, check_stop: Callable[[], None]
) -> None:
    """Wait until the proxy answers ``version`` on loopback ``port``; FleetError if it exits
    or does not answer in time. ``check_stop`` raises when the user asked to stop."""
    deadline = time.monotonic() + PROXY_READY_TIMEOUT
    while version_reply(LOOPBACK, port) is None:
        check_stop()
        if proxy.poll() is not None:
            raise FleetError(
                f"the proxy exited with status {proxy.returncode}: {log_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            raise FleetError(f"the proxy did not answer within {PROXY_READY_TIMEOUT:g}s")
        time.sleep(0.05)


# The stats line a proxy reports the hash of the config it serves on (memfleet.config.digest).
CONFIG_HASH_STAT = "config_hash"


def proxy_stats(host: str, port: int, timeout: float = 1.0) -> dict[str, str] | None:
    """The proxy's ``stats`` (name → value), or None when it does not answer."""
    buf = _ask(host, port, b"stats\r\n", b"END\r\n", timeout)
    if buf is None:
        return None
    out: dict[str, str] = {}
    for line in buf.decode(errors="replace").split("\r\n"):
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            out[parts[1]] = parts[2].strip()
    return out


def served_config_hash(host: str, port: int, timeout: float = 1.0) -> str | None:
    """The config hash the proxy at ``host:port`` reports in ``stats``, or None (no answer,
    or a proxy that does not report one)."""
    stats = proxy_stats(host, port, timeout)
    return None if stats is None else stats.get(CONFIG_HASH_STAT)

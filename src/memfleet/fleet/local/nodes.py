"""The cache nodes of a local fleet: where each one runs, its ``memfleet node`` supervisor
(started as ``python -m memfleet.fleet.node``, which does not import the proxy), and waiting
until every one answers."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from memfleet.fleet.hosts import HostNetwork
from memfleet.fleet.local.layout import Layout
from memfleet.fleet.local.messages import FleetError
from memfleet.fleet.local.options import FleetOptions, Persistence
from memfleet.fleet.local.ports import LOOPBACK, free_port
from memfleet.fleet.local.restarts import Restarts
from memfleet.fleet.processes import die_with_parent, log_tail
from memfleet.topology.presets import NodeSpec


@dataclass
class FleetNode:
    """One cache node of the running fleet."""

    spec: NodeSpec
    host: str
    port: int
    zone: str | None = None
    failure_host: str | None = None
    memory_file: Path | None = None
    log_path: Path | None = None
    ready_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    restarts: Restarts = field(default_factory=Restarts)

    @property
    def address(self) -> str:
        """``host:port`` as the proxy config names it."""
        return f"{self.host}:{self.port}"

    def state(self) -> dict[str, Any]:
        """The node's entry in the state file."""
        return {
            "name": self.spec.name,
            "host": self.host,
            "port": self.port,
            "pid": self.proc.pid if self.proc is not None else None,
            "replica": self.spec.replica,
            "shard": self.spec.shard,
            "zone": self.zone,
            "memory_file": str(self.memory_file) if self.memory_file else None,
            "failure_host": self.failure_host,
            "state": child_state(self.proc, self.restarts),
            "restarts": self.restarts.count,
            "last_exit": self.restarts.last_exit,
        }


def child_state(proc: subprocess.Popen[bytes] | None, restarts: Restarts) -> str:
    """``running``, ``restarting`` (exited, a restart is due) or ``exited`` (for good)."""
    if proc is not None and proc.poll() is None:
        return "running"
    return "restarting" if restarts.due is not None else "exited"


def place_nodes(
    layout: Layout, persistence: Persistence, data_dir: Path, hosts: HostNetwork | None
) -> list[FleetNode]:
    """A node per spec of the layout: its address, and its files under ``data_dir``."""
    nodes: list[FleetNode] = []
    per_host: dict[str, int] = {}
    for i, spec in enumerate(layout.specs):
        node = FleetNode(spec, LOOPBACK, 0, zone=layout.zones.get(spec.name))
        if hosts is not None:
            host = hosts.place(spec, i, layout.topology)
            node.failure_host = host.name
            node.host = host.address
            # Each host has its own address; its nodes take 11211, 11212, ... on it.
            node.port = 11211 + per_host.get(host.name, 0)
            per_host[host.name] = per_host.get(host.name, 0) + 1
        else:
            node.port = free_port()
        if persistence != "none":
            node.memory_file = data_dir / f"{spec.name}.mem"
        node.log_path = data_dir / "logs" / f"{spec.name}.log"
        node.ready_file = data_dir / "run" / f"{spec.name}.ready"
        nodes.append(node)
    return nodes


def node_argv(node: FleetNode, opts: FleetOptions, hosts: HostNetwork | None) -> list[str]:
    """The supervisor's command line for ``node`` (inside its host's namespace, if any)."""
    argv = [sys.executable, "-m", "memfleet.fleet.node", "--port", str(node.port),
            "--listen", node.host, "--memory", str(opts.memory),
            "--ready-file", str(node.ready_file),
            "--stop-timeout", str(opts.stop_timeout)]  # fmt: skip
    if node.memory_file is not None:
        argv += ["--memory-file", str(node.memory_file)]
        if opts.persistence == "restartable":
            argv.append("--restartable")
    if hosts is not None and node.failure_host is not None:
        argv = hosts.exec_prefix(hosts.netns_of(node.failure_host)) + argv
    return argv


def start_node(node: FleetNode, opts: FleetOptions, hosts: HostNetwork | None) -> IO[bytes]:
    """Start the node's supervisor in its own process group; returns its open log file."""
    assert node.log_path is not None and node.ready_file is not None
    node.ready_file.unlink(missing_ok=True)  # left behind by a SIGKILLed earlier run
    log = node.log_path.open("ab")
    node.proc = subprocess.Popen(
        node_argv(node, opts, hosts), stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=die_with_parent(signal.SIGTERM),
    )  # fmt: skip
    node.restarts.started(time.monotonic())
    return log


def wait_nodes_ready(
    nodes: list[FleetNode], timeout: float, check_stop: Callable[[], None]
) -> None:
    """Wait until every node's ready file exists; FleetError if one exits or time runs out.
    ``check_stop`` raises when the user asked to stop meanwhile."""
    deadline = time.monotonic() + timeout
    waiting = list(nodes)
    while waiting:
        check_stop()
        for node in list(waiting):
            assert node.proc is not None and node.ready_file is not None
            if node.ready_file.exists():
                waiting.remove(node)
            elif node.proc.poll() is not None:
                raise FleetError(
                    f"{node.spec.name} exited with status {node.proc.returncode}: "
                    f"{log_tail(node.log_path)}"
                )
        if waiting and time.monotonic() > deadline:
            names = ", ".join(n.spec.name for n in waiting)
            raise FleetError(f"not ready after {timeout:g}s: {names}")
        time.sleep(0.05)

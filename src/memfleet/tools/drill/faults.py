"""The faults a drill injects and heals: which node they hit, and the thread that puts each
fault in place at its time and undoes it at the heal time."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from memfleet.fleet.processes import pid_alive
from memfleet.tools.drill.fleet_process import FleetProcess
from memfleet.tools.drill.options import DrillError


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

"""``memfleet down``: stop a running ``memfleet up`` and everything it started, nothing else.

``up`` is asked with SIGTERM, as Ctrl-C would: it stops the proxy, then every node
(restartable ones gracefully, saving their cache), and removes its state. Only when it does
not finish in time is it killed, and then whatever it had started and still runs (each a
process-group leader whose command line is memfleet's) is stopped here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memfleet.fleet.processes import pid_alive, pid_runs

MARKER = b"memfleet"


@dataclass
class DownResult:
    """What ``down`` did: whether ``up`` was running, and what had to be forced."""

    was_running: bool
    forced: list[str]
    left: list[str]


def children(state: dict[str, Any]) -> list[tuple[str, int]]:
    """(name, pid) of every process the state file says ``up`` started."""
    # Nodes a resize is adding or retiring (memfleet.fleet.local.scaling) are up's too.
    nodes = [*state.get("nodes", []), *state.get("joining", []), *state.get("retiring", [])]
    out = [(n["name"], n["pid"]) for n in nodes if isinstance(n.get("pid"), int)]
    pid = (state.get("proxy") or {}).get("pid")
    if isinstance(pid, int):
        out.append(("proxy", pid))
    return out


def _wait_gone(pids: list[int], deadline: float) -> None:
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop_fleet(state: dict[str, Any], path: Path, timeout: float) -> DownResult:
    """Stop the fleet ``state`` describes (read from ``path``); bounded by ``timeout``."""
    up_pid = state.get("up_pid")
    was_running = isinstance(up_pid, int) and pid_runs(up_pid, MARKER)
    ours = [(name, pid) for name, pid in children(state) if pid_runs(pid, MARKER)]
    forced: list[str] = []
    deadline = time.monotonic() + timeout
    if was_running:
        assert isinstance(up_pid, int)
        with contextlib.suppress(ProcessLookupError):
            os.kill(up_pid, signal.SIGTERM)
        _wait_gone([up_pid], deadline)
        if pid_alive(up_pid):
            forced.append(f"memfleet up (pid {up_pid})")
            with contextlib.suppress(ProcessLookupError):
                os.kill(up_pid, signal.SIGKILL)
            _wait_gone([up_pid], time.monotonic() + 5)
    # What up started goes with it (its children get SIGTERM when it dies, too); a leftover
    # of an up that was killed, or that did not finish its stop, is stopped here.
    _wait_gone([p for _, p in ours], max(deadline, time.monotonic() + 2))
    for name, pid in ours:
        if pid_alive(pid):
            forced.append(f"{name} (pid {pid})")
            _signal_group(pid, signal.SIGKILL)
    _wait_gone([p for _, p in ours], time.monotonic() + 5)
    left = [f"{name} (pid {pid})" for name, pid in ours if pid_alive(pid)]
    if not left:
        path.unlink(missing_ok=True)  # up removes it itself; not when it was killed
    return DownResult(was_running, forced, left)

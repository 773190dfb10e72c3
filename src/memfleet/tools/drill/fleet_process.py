"""``memfleet up`` as the drill runs it: a subprocess in its own process group, its state
file, and a stop that leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from memfleet.tools.drill.options import HOST_FAULTS, DrillError


class FleetProcess:
    """``memfleet up`` as a subprocess in its own process group; always stopped."""

    def __init__(self, topology: str, workdir: Path, fault: str, hosts: int,
                 shards: int | None = None, migration_window: float | None = None,
                 tag: str = "") -> None:  # fmt: skip
        self.state_path = workdir / f"state-{topology}{tag}.json"
        self.log_path = workdir / f"up-{topology}{tag}.log"
        self.state_path.unlink(missing_ok=True)
        # --restart never: a node the drill kills stays down until the drill heals it (a
        # restart by `up` would hide the fault); a name of its own beside any other fleet.
        args = [sys.executable, "-m", "memfleet", "up", "--topology", topology, "--port", "0",
                "--state-file", str(self.state_path), "--memory", "64", "--restart", "never",
                "--name", f"drill-{os.getpid()}-{topology}{tag}", "--metrics", "off"]  # fmt: skip
        if shards is not None:
            args += ["--shards", str(shards)]
        if migration_window is not None:
            args += ["--migration-window", f"{migration_window:g}"]
        if fault in HOST_FAULTS:
            args += ["--hosts", str(hosts)]
        if fault == "restart-node":
            # The point of a restart drill: a restartable node comes back with its cache.
            args += [
                "--persistence",
                "restartable",
                "--data-dir",
                str(workdir / f"data-{topology}"),
            ]
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        self.state: dict[str, Any] = {}

    def wait_ready(self, timeout: float = 90.0) -> dict[str, Any]:
        """Wait (bounded) for the state file; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DrillError(f"memfleet up exited ({self.proc.returncode}): {self.tail()}")
            with contextlib.suppress(OSError, ValueError):
                self.state = json.loads(self.state_path.read_text())
                return self.state
            time.sleep(0.1)
        raise DrillError(f"memfleet up not ready after {timeout:g}s: {self.tail()}")

    def reload_state(self) -> dict[str, Any]:
        """The state file again (pids change when nodes restart)."""
        with contextlib.suppress(OSError, ValueError):
            self.state = json.loads(self.state_path.read_text())
        return self.state

    def tail(self) -> str:
        """The end of ``memfleet up``'s output."""
        with contextlib.suppress(OSError):
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-3:])
        return ""

    def stop(self) -> None:
        """SIGTERM (``up`` stops its nodes), bounded wait, then SIGKILL of the group."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(60)
        # Anything left behind by an `up` that did not finish its stop goes too.
        for pid in [n.get("pid") for n in self.state.get("nodes", [])] + [
            self.state.get("proxy", {}).get("pid")
        ]:
            if isinstance(pid, int):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGCONT)
                    os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._log.close()

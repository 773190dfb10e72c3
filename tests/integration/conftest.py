"""Fixtures for the `memfleet up` tests: the fleet runs as users run it, and everything it
started is gone when the test ends."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.fleet_helpers import Cmd, pid_alive, read_state, wait_for

StartUp = Callable[..., tuple[Cmd, dict[str, Any]]]


@pytest.fixture(autouse=True)
def fleet_runtime_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test's fleets keep their state in a directory of its own (``memfleet up`` names
    its fleet ``default`` unless told otherwise: tests running side by side, or a developer's
    own fleet, must not see each other's)."""
    path = tmp_path_factory.mktemp("xdg-runtime")
    path.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    return path


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[StartUp]:
    """Start ``memfleet up --port 0 --state-file ...`` and wait for its state file."""
    started: list[tuple[Cmd, Path]] = []

    def start(*args: str, port: str = "0") -> tuple[Cmd, dict[str, Any]]:
        n = len(started)
        state = tmp_path / f"state-{n}.json"
        cmd = Cmd(
            ["up", "--port", port, "--state-file", str(state), *args], tmp_path / f"up-{n}.log"
        )
        cmd.state_path = state
        started.append((cmd, state))
        wait_for(state.exists, "state file", cmd, timeout=60)
        return cmd, read_state(state)

    yield start
    for cmd, state in started:
        pids = []
        if state.exists():
            data = read_state(state)
            pids = [n["pid"] for n in data["nodes"]] + [data["proxy"]["pid"]]
        cmd.stop(timeout=60)
        for pid in pids:  # nothing the fleet started may outlive the test
            if pid_alive(pid):
                os.killpg(pid, signal.SIGKILL)

"""Helpers for the `memfleet node` / `memfleet up` tests: the commands run as users run them
(``python -m memfleet ...``), each in its own process group, always stopped afterwards."""

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

from pymemcache.client.base import Client

# Re-exported: the tests check processes the way `memfleet status` does.
from memfleet.fleet.processes import pid_alive as pid_alive


class Cmd:
    """A ``python -m memfleet ...`` process with its output in a log file."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self.state_path: Path | None = None  # `memfleet up --state-file`
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "memfleet", *args],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    def kill_group(self) -> None:
        """SIGKILL the whole process group (the command and everything it started)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, bounded wait, then SIGKILL of the group; closes the log."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        self.kill_group()
        self._log.close()


def wait_for(predicate: Any, what: str, proc: Cmd | None = None, timeout: float = 60.0) -> None:
    """Poll ``predicate`` (bounded in time); fail early if ``proc`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.proc.poll() is not None:
            raise AssertionError(f"exited ({proc.proc.returncode}) before {what}:\n{proc.log()}")
        time.sleep(0.05)
    raise AssertionError(f"no {what} after {timeout}s" + (f":\n{proc.log()}" if proc else ""))


def read_state(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def client(port: int, host: str = "127.0.0.1") -> Client:
    return Client((host, port), timeout=10, connect_timeout=5)


def set_keys(c: Client, n: int) -> dict[str, bytes]:
    """Write ``n`` keys in batches; returns what was written."""
    items = {f"key:{i}": f"value-{i}".encode() for i in range(n)}
    keys = list(items)
    for start in range(0, n, 500):
        batch = {k: items[k] for k in keys[start : start + 500]}
        assert c.set_many(batch, noreply=False) == []
    return items


def get_keys(c: Client, keys: list[str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for start in range(0, len(keys), 200):
        out.update(c.get_many(keys[start : start + 200]))
    return out


def curr_items(port: int, host: str = "127.0.0.1") -> int:
    c = client(port, host)
    try:
        return int(c.stats()[b"curr_items"])
    finally:
        c.close()


def memcached_on_port(port: int) -> list[int]:
    """pids of memcached processes started with ``-p <port>``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if argv and argv[0].endswith(b"memcached") and str(port).encode() in argv:
                i = argv.index(str(port).encode())
                if i > 0 and argv[i - 1] == b"-p" and pid_alive(int(entry.name)):
                    found.append(int(entry.name))
    return found

"""Child processes of the operator tools: tied to their parent's life, stopped as a group,
told apart from zombies (and from other programs that reuse a pid), their exit statuses
reported one way, and the end of their logs for an error message."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int) -> Callable[[], None]:
    """A preexec_fn asking Linux to send ``sig`` to the child when its parent dies, so a
    SIGKILLed supervisor never leaves an orphan memcached holding the port."""

    def setup() -> None:
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return setup


def stop_group(proc: subprocess.Popen[bytes], sig: int | None, timeout: float) -> None:
    """Signal a child (leader of its own process group), wait, SIGKILL the group if needed."""
    if sig is not None and proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    # Anything left in the group (memcached under a supervisor that died) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def pid_alive(pid: object) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    return False


def log_tail(path: Path | None, lines: int = 3) -> str:
    """The last ``lines`` lines of a child's log on one line (empty if there is none)."""
    if path is None:
        return ""
    with contextlib.suppress(OSError):
        text = path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])
    return ""


def exit_status(returncode: int) -> int:
    """A child's exit status as a shell reports it: killed by signal N is 128 + N.

    ``Popen.returncode`` says -9 for a process killed by SIGKILL, while a supervisor whose
    child was killed exits with 137: one kind of death must read the same whoever was hit.
    """
    return 128 - returncode if returncode < 0 else returncode


def describe_exit(returncode: int) -> str:
    """``status 137 (SIGKILL)``, ``status 1``: the exit status and, past 128, the signal."""
    status = exit_status(returncode)
    if 128 < status < 128 + 65:
        with contextlib.suppress(ValueError):
            return f"status {status} ({signal.Signals(status - 128).name})"
    return f"status {status}"


def pid_runs(pid: object, marker: bytes) -> bool:
    """True while ``pid`` runs and its command line holds ``marker``: a pid the OS has since
    given to another program is not ours to signal."""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return not sys.platform.startswith("linux")  # no /proc: trust the pid
    return marker in cmdline

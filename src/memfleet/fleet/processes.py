"""Child processes of the operator tools: tied to their parent's life, stopped as a group,
told apart from zombies, and the end of their logs for an error message."""

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

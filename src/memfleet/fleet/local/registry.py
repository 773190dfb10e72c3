"""Named fleets: where each ``memfleet up`` keeps its state, so that ``memfleet status`` and
``memfleet down`` find it by name without being told a file.

The state lives in a per-user runtime directory: ``$XDG_RUNTIME_DIR/memfleet`` (systemd makes
that directory per user, mode 0700, on tmpfs), or ``memfleet-<uid>`` in the temporary
directory where it is unset (root, CI, containers). A fleet ``NAME`` has ``NAME.json`` (the
state document) and ``NAME.lock``, which ``up`` holds locked for as long as it runs: the lock
goes away with the process however it dies, so a state file left by a killed ``up`` is never
mistaken for a running fleet.
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import IO

from memfleet.fleet.local.messages import FleetError, NameTaken

DEFAULT_NAME = "default"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def check_name(name: str) -> str:
    """``name`` if it can name a fleet (it becomes a file name); FleetError otherwise."""
    if not _NAME.match(name):
        raise FleetError(
            f"--name {name!r}: a fleet name is 1-63 lower-case letters, digits, '.', '_' or "
            "'-', starting with a letter or digit"
        )
    return name


def state_dir(create: bool = True) -> Path:
    """The directory holding this user's fleets (created, mode 0700, when ``create``)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_absolute() and Path(xdg).is_dir():
        path = Path(xdg) / "memfleet"
    else:
        path = Path(tempfile.gettempdir()) / f"memfleet-{os.getuid()}"
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists():
        # In a shared /tmp another user could have made the directory first and would then
        # see (and could replace) our state: refuse one that is not ours alone.
        st = path.lstat()
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise FleetError(
                f"{path}: the fleet state directory must be a directory owned by uid "
                f"{os.getuid()} with mode 0700 (remove it, or set XDG_RUNTIME_DIR)"
            )
    return path


def state_path(name: str, create: bool = False) -> Path:
    """The state file of fleet ``name``."""
    return state_dir(create) / f"{check_name(name)}.json"


def fleet_names() -> list[str]:
    """The fleets that have a state file here (running or left behind), sorted."""
    path = state_dir(create=False)
    if not path.is_dir():
        return []
    return sorted(p.stem for p in path.glob("*.json"))


class FleetLock:
    """The lock a running ``up`` holds on its fleet's name."""

    def __init__(self, name: str) -> None:
        self.name = check_name(name)
        self.path = state_dir() / f"{name}.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the name; FleetError when another ``up`` holds it."""
        f = self.path.open("a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            f.close()
            raise NameTaken(
                f"a fleet named {self.name!r} is already running (memfleet up, pid {holder}): "
                f"stop it with `memfleet down --name {self.name}` or choose another --name"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f

    @property
    def held(self) -> bool:
        """Whether this process holds the name."""
        return self._file is not None

    def release(self) -> None:
        """Give the name back (the file stays: removing it would race a new ``up``)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def is_running(name: str) -> bool:
    """Whether an ``up`` holds fleet ``name``'s lock now."""
    path = state_dir(create=False) / f"{check_name(name)}.lock"
    try:
        f = path.open("r")
    except OSError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False

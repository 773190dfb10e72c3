"""memcached's restart state file (``<memory file>.meta``): where it is, whether memcached
1.6 could read it, and moving a bad one out of the way.

memcached 1.6.18 *aborts* on an empty, garbled or truncated state file (measured: SIGABRT,
and a heap corruption for a truncated file), so a node would crash-loop on one; every such
file is caught here before memcached sees it.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

STATE_SUFFIX = ".meta"  # memcached's own name for the restart state file
BAD_STATE_SUFFIX = ".meta.bad"  # one moved-aside copy is kept, for post-mortems
# Keys memcached 1.6 always writes into the state file; one missing means a truncated file.
REQUIRED_STATE_KEYS = ("maxbytes", "current_time", "stop_time", "mmap_oldbase")
_STATE_LINE = re.compile(rb"^(T[A-Za-z0-9_]+|K[A-Za-z0-9_]+ [^ \n]+)$")


def state_file(memory_file: Path) -> Path:
    """memcached's restart state file for a memory file."""
    return memory_file.with_name(memory_file.name + STATE_SUFFIX)


def check_state_file(path: Path) -> str | None:
    """None when the state file looks like one memcached 1.6 wrote, else what is wrong.

    memcached aborts (SIGABRT) on an empty file, a line that is neither a tag nor a
    ``K<key> <value>`` pair, and on a truncated file, so every one of those is caught here.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not data:
        return "is empty"
    if not data.endswith(b"\n"):
        return "is truncated (no final newline)"
    lines = data[:-1].split(b"\n")
    if not lines[0].startswith(b"T"):
        return f"first line {lines[0][:40]!r} is not a tag"
    keys: dict[str, bytes] = {}
    for n, line in enumerate(lines, 1):
        if not _STATE_LINE.match(line):
            return f"line {n} {line[:40]!r} is not memcached's format"
        if line.startswith(b"K"):
            key, _, value = line[1:].partition(b" ")
            keys[key.decode()] = value
    missing = [k for k in REQUIRED_STATE_KEYS if k not in keys]
    if missing:
        return f"is truncated (no {', '.join(missing)})"
    return None


def state_stop_time(path: Path) -> int | None:
    """The ``stop_time`` a valid state file records (unix seconds)."""
    with contextlib.suppress(OSError):
        for line in path.read_bytes().splitlines():
            if line.startswith(b"Kstop_time "):
                with contextlib.suppress(ValueError):
                    return int(line.split()[1])
    return None


def move_aside(path: Path) -> Path:
    """Rename a state file out of memcached's way (one old copy is kept)."""
    target = path.with_name(path.name.removesuffix(STATE_SUFFIX) + BAD_STATE_SUFFIX)
    os.replace(path, target)
    return target


def wait_past_stop_time(meta: Path, limit: float = 3.0) -> None:
    """memcached 1.6.18 rejects a state file whose ``stop_time`` is not in the past (it takes
    ``now - stop_time <= 0`` for a clock gone wrong and starts cold), so a restart within the
    same second as the stop would silently lose the cache. Wait that second out (bounded)."""
    stop = state_stop_time(meta)
    if stop is None:
        return
    deadline = time.monotonic() + limit
    while time.time() < stop + 1 and time.monotonic() < deadline:
        time.sleep(0.05)

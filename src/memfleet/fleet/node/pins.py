"""The pin file (``<memory file>.memfleet.json``): the options a warm restart depends on.

memcached refuses (starts cold) a warm restart under a different memory layout or version;
pinning those options lets the next start say *why* it is cold.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PINS_SUFFIX = ".memfleet.json"

# Options that change the memory layout: a warm restart with a different value is refused by
# memcached (it starts cold), so a change is pinned and reported.
_VALUE_OPTIONS = {
    "-m": "-m",
    "--memory-limit": "-m",
    "-I": "-I",
    "--max-item-size": "-I",
    "-n": "-n",
    "--slab-min-size": "-n",
    "-f": "-f",
    "--slab-growth-factor": "-f",
}
_FLAG_OPTIONS = {"-C": "-C", "--disable-cas": "-C"}
_SLAB_EXTENDED = ("slab_chunk_max", "slab_sizes", "slab_reassign", "no_slab_reassign", "modern")
_PIN_NAMES = {"-m": "-m (--memory)", "-I": "-I (max item size)", "-n": "-n", "-f": "-f"}


def pins_file(memory_file: Path) -> Path:
    """memfleet's pin file (warm-restart-relevant options) beside a memory file."""
    return memory_file.with_name(memory_file.name + PINS_SUFFIX)


def pinned_options(argv: Sequence[str]) -> dict[str, str]:
    """The warm-restart-relevant options of a memcached command line, normalised to their
    short names (the last occurrence wins, as in memcached)."""
    pins: dict[str, str] = {}
    args = list(argv)
    i = 0
    while i < len(args):
        tok = args[i]
        name, eq, inline = tok.partition("=")
        if tok in _FLAG_OPTIONS:
            pins[_FLAG_OPTIONS[tok]] = "true"
        elif name in _VALUE_OPTIONS and (eq or tok == name):
            if eq:
                pins[_VALUE_OPTIONS[name]] = inline
            elif i + 1 < len(args):
                pins[_VALUE_OPTIONS[name]] = args[i + 1]
                i += 1
        elif len(tok) > 2 and tok[:2] in ("-m", "-I", "-n", "-f") and not tok.startswith("--"):
            pins[tok[:2]] = tok[2:]
        elif tok in ("-o", "--extended") and i + 1 < len(args):
            for item in args[i + 1].split(","):
                key, _, value = item.partition("=")
                if key in _SLAB_EXTENDED:
                    pins[f"-o {key}"] = value or "true"
            i += 1
        i += 1
    return pins


def pin_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human reasons why ``new`` cannot restart warm from a cache written under ``old``."""
    reasons: list[str] = []
    if old.get("memcached") and new.get("memcached") and old["memcached"] != new["memcached"]:
        reasons.append(f"the memcached version changed ({old['memcached']} → {new['memcached']})")
    old_opts: dict[str, str] = old.get("options", {})
    new_opts: dict[str, str] = new.get("options", {})
    for key in sorted(set(old_opts) | set(new_opts)):
        before, after = old_opts.get(key, "default"), new_opts.get(key, "default")
        if before != after:
            reasons.append(f"{_PIN_NAMES.get(key, key)} changed ({before} → {after})")
    return reasons


def read_pins(path: Path) -> dict[str, Any] | None:
    """The pins a previous start recorded (None if there are none or they cannot be read)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_pins(memory_file: Path, pins: dict[str, Any]) -> None:
    """Record the options this start runs with (atomically)."""
    path = pins_file(memory_file)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)

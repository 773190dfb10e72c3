"""The state file of a running ``memfleet up`` (``--state-file``): written atomically, read
back by ``memfleet status``, ``memfleet fault`` and the drills, and shown as a table."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from memfleet.fleet.local.messages import FleetError


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write the state file atomically (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, path)


def read_state(path: Path) -> dict[str, Any]:
    """A state file written by ``memfleet up``; FleetError when it is missing or broken."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FleetError(f"{path}: no such state file (is `memfleet up` running?)") from None
    except (OSError, ValueError) as exc:
        raise FleetError(f"{path}: cannot read the state file: {exc}") from None
    if not isinstance(data, dict) or "nodes" not in data or "proxy" not in data:
        raise FleetError(f"{path}: not a memfleet state file")
    return data


def format_table(state: dict[str, Any]) -> str:
    """The state document as an aligned text table (nodes, then the proxy)."""
    header = ["NAME", "ADDRESS", "PID", "REPLICA", "SHARD", "ZONE", "HOST", "MEMORY FILE"]
    rows = [header]
    for n in state["nodes"]:
        rows.append([
            n["name"], f"{n['host']}:{n['port']}", str(n["pid"]), str(n["replica"]),
            str(n["shard"]), n["zone"] or "-", n["failure_host"] or "-",
            n["memory_file"] or "-",
        ])  # fmt: skip
    p = state["proxy"]
    rows.append(["proxy", f"{p['host']}:{p['port']}", str(p["pid"]), "", "", "", "", ""])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )

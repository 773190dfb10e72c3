"""Whether this start can be warm: the state file and the pins together decide, and a state
file memcached would abort on or refuse is moved aside so that the start is cold instead."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memfleet.fleet.node.messages import say
from memfleet.fleet.node.pins import pin_changes, pins_file, read_pins
from memfleet.fleet.node.state_file import check_state_file, move_aside, state_file


@dataclass
class StateDecision:
    """What the start-up checks decided about the state file."""

    warm_expected: bool
    notes: list[str] = field(default_factory=list)


def check_restart_state(memory_file: Path, pins: dict[str, Any] | None) -> StateDecision:
    """Check the state file (and, with ``pins``, the pinned options); move a bad state file
    aside so memcached starts cold instead of aborting. Returns whether a warm start is
    expected; warnings go to the log."""
    meta = state_file(memory_file)
    if not meta.exists():
        note = "no state file: this start will be cold"
        if memory_file.exists():
            note += " (the last stop was not graceful, or this is the first start)"
        return StateDecision(False, [note])
    problem = check_state_file(meta)
    if problem is not None:
        moved = move_aside(meta)
        say(f"warning: state file {meta} {problem}; moved to {moved}; this start will be cold")
        return StateDecision(False)
    if pins is not None:
        old = read_pins(pins_file(memory_file))
        reasons = pin_changes(old, pins) if old is not None else []
        if reasons:
            # memcached would refuse these too; moving the file makes the outcome certain.
            moved = move_aside(meta)
            why = "; ".join(reasons)
            say(f"this start will be cold because {why} (state file moved to {moved})")
            return StateDecision(False)
    return StateDecision(True, ["state file found: this start will be warm"])

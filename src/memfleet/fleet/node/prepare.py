"""``memfleet node prepare``: the root-only start-up work (sizing, preallocation, state-file
check, ownership), for a Kubernetes init container."""

from __future__ import annotations

from pathlib import Path

from memfleet.fleet.node.memory_file import chown_files, preallocate, size_from_volume
from memfleet.fleet.node.messages import NodeError, say
from memfleet.fleet.node.state_file import check_state_file, move_aside, state_file


def prepare(
    memory_file: Path,
    memory: int | None,
    from_volume: bool,
    owner: str | None,
    restartable: bool,
) -> str:
    """The root-only start-up work for an init container; returns a one-line summary."""
    memory_file.parent.mkdir(parents=True, exist_ok=True)
    if from_volume:
        vs = size_from_volume(memory_file)
        memory = vs.memory_mb
    if memory is None:
        raise NodeError("give --memory MB or --size-from-volume")
    preallocate(memory_file, memory)
    state = "none"
    if restartable:
        meta = state_file(memory_file)
        if meta.exists():
            problem = check_state_file(meta)
            if problem is None:
                state = "ok"
            else:
                moved = move_aside(meta)
                say(f"warning: state file {meta} {problem}; moved to {moved}; next start is cold")
                state = "moved aside"
    else:
        state_file(memory_file).unlink(missing_ok=True)
    if owner is not None:
        chown_files(memory_file, owner)
    who = f", owner {owner}" if owner else ""
    return f"{memory_file}: -m {memory}, preallocated, state file: {state}{who}"

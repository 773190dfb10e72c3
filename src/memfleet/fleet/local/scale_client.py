"""The ``memfleet scale`` side of a resize: check the request, hand it to the running ``up``
(a request file and SIGUSR1, see :mod:`.scaling`), print its progress from the state file,
and with ``--wait`` stay until the retired nodes have stopped."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from memfleet.fleet.local.down import MARKER
from memfleet.fleet.local.messages import FleetError
from memfleet.fleet.local.registry import state_path
from memfleet.fleet.local.scale_plan import ScalePlan, plan_scale, topology_from_record
from memfleet.fleet.local.scaling import request_path
from memfleet.fleet.processes import pid_runs

POLL = 0.1
PROGRESS_EVERY = 10.0


class NotRunning(FleetError):
    """The fleet named is not running."""


class ScaleTimeout(FleetError):
    """The fleet did not finish the resize in time."""


@dataclass
class ScaleOutcome:
    """How a resize ended: ``done``, ``failed`` (undone) or ``nothing`` (already that size)."""

    phase: str
    record: dict[str, Any]


def check_request(state: dict[str, Any], shards: int) -> ScalePlan:
    """The plan for ``state``'s fleet, refused (FleetError) before anything is asked of it."""
    name = str(state.get("name", "?"))
    if not pid_runs(state.get("up_pid"), MARKER):
        raise NotRunning(f"fleet {name!r} is not running (its memfleet up has exited)")
    return plan_scale(topology_from_record(state.get("topology_spec")), shards, name)


def _read(name: str) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(state_path(name).read_text())
        if isinstance(data, dict):
            return data
    return {}


def _record(state: dict[str, Any], request_id: str) -> dict[str, Any] | None:
    for rec in state.get("scale") or []:
        if isinstance(rec, dict) and rec.get("id") == request_id:
            return rec
    return None


def run_scale(
    state: dict[str, Any], shards: int, timeout: float, echo: Callable[[str], None]
) -> ScaleOutcome:
    """Ask the fleet's ``up`` to resize to ``shards`` and follow it (bounded by ``timeout``)
    until it is done or failed; every step is passed to ``echo``."""
    plan = check_request(state, shards)
    if plan.direction == "none":
        return ScaleOutcome("nothing", {})
    name = str(state["name"])
    up_pid = int(state["up_pid"])
    request_id = f"{os.getpid()}-{time.time_ns()}"
    path = request_path(name, request_id)
    tmp = path.with_name(path.name + ".tmp")  # not a request until renamed
    tmp.write_text(json.dumps({"id": request_id, "shards": shards}) + "\n")
    os.replace(tmp, path)
    try:
        os.kill(up_pid, signal.SIGUSR1)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        raise NotRunning(f"fleet {name!r} is not running (its memfleet up has exited)") from None
    shown = 0
    deadline = time.monotonic() + timeout
    while True:
        rec = _record(_read(name), request_id)
        if rec is not None:
            messages = list(rec.get("messages") or [])
            for line in messages[shown:]:
                echo(str(line))
            shown = len(messages)
            if rec.get("phase") in ("done", "failed"):
                return ScaleOutcome(str(rec["phase"]), rec)
        if not pid_runs(up_pid, MARKER):
            raise NotRunning(f"fleet {name!r} stopped during the resize")
        if time.monotonic() > deadline:
            path.unlink(missing_ok=True)
            raise ScaleTimeout(
                f"no answer from fleet {name!r} within {timeout:g}s (its resize may still "
                "be under way: memfleet status shows it)"
            )
        time.sleep(POLL)


def wait_retired(
    name: str, names: list[str], timeout: float, echo: Callable[[str], None]
) -> list[str]:
    """Wait until none of ``names`` is retiring any more (the fleet stopped them after the
    migration window); a line of progress every 10 s. Returns those still running."""
    deadline = time.monotonic() + timeout
    last = 0.0
    while True:
        state = _read(name)
        left = [r for r in state.get("retiring") or [] if r.get("name") in names]
        if not left or not pid_runs(state.get("up_pid"), MARKER):
            return [str(r["name"]) for r in left]
        now = time.monotonic()
        if now > deadline:
            return [str(r["name"]) for r in left]
        if now - last >= PROGRESS_EVERY:
            last = now
            at = max(float(r.get("retire_at") or 0) for r in left)
            echo(f"waiting for the migration window: {', '.join(r['name'] for r in left)} "
                 f"stop in {max(0.0, at - time.time()):.0f}s")  # fmt: skip
        time.sleep(POLL * 5)

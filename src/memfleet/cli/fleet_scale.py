"""``memfleet scale``: resize a running ``memfleet up`` fleet in the safe order; the work is in
:mod:`memfleet.fleet.local.scaling` (inside ``up``) and :mod:`memfleet.fleet.local.scale_client`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from memfleet.fleet.local.messages import FleetError
from memfleet.fleet.local.registry import DEFAULT_NAME, check_name, state_path
from memfleet.fleet.local.scale_client import (
    NotRunning,
    ScaleTimeout,
    run_scale,
    wait_retired,
)
from memfleet.fleet.local.scale_plan import MAX_SHARDS
from memfleet.fleet.local.state import read_state
from memfleet.manpage import ManCommand


def _echo(line: str) -> None:
    click.echo(f"memfleet scale: {line}", err=True)


@click.command(
    "scale",
    cls=ManCommand,
    examples=(
        ("memfleet scale --shards 4", "The default fleet from 3 to 4 shards: the new node "
         "starts and answers, then the proxy reloads a config that names it."),
        ("memfleet scale --shards 3 --name test", "Back to 3: the proxy first; the removed "
         "node keeps serving the keys not yet moved until the migration window is over, "
         "then `up` stops it."),
        ("memfleet scale --shards 3 --wait", "The same, returning only once the removed "
         "node has stopped (a line of progress every 10 s)."),
    ),
    exit_codes=(
        (0, "the proxy serves the new size (or the fleet already had it)"),
        (1, "the resize failed and was undone (the message says why), or --wait ran out"),
        (2, "no such fleet running, a bad --shards, or a topology without shards"),
    ),
    epilog="Scale out: the new nodes are started and must answer before the proxy config "
    "names them; then the config is rewritten and the proxy reloaded (SIGHUP), done when "
    "the proxy reports the new config's hash. Scale in: the config first; the proxy keeps "
    "the old placement for its migration_window (memfleet up --migration-window, default "
    "600 s), reading moved keys through from the nodes it dropped, and `up` stops those "
    "nodes only after the window (memfleet status lists them as retiring; memfleet down "
    "stops them with the rest). In replicated-sharded every replica pool is resized "
    "together; in local-failover the cluster tier, in gutter the main pool. A resize that "
    "fails is undone: the old config back, the new nodes stopped.",
)  # fmt: skip
@click.option(
    "--shards", type=click.IntRange(1, MAX_SHARDS), required=True,
    help="Shards per pool after the resize (nodes per replica).",
)  # fmt: skip
@click.option("--name", default=DEFAULT_NAME, show_default=True,
              help="The fleet, as `memfleet up --name` named it.")  # fmt: skip
@click.option(
    "--state-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Find the fleet by this state file (`up --state-file`) instead of its name.  "
    "[default: the named fleet's]",
)  # fmt: skip
@click.option(
    "--wait", is_flag=True,
    help="Scale in: also wait until the removed nodes have stopped (after the window).",
)  # fmt: skip
@click.option(
    "--timeout", type=click.FloatRange(1, 86400), default=300.0, show_default=True,
    help="Seconds to wait for the resize (new nodes ready, the proxy reloaded); with --wait "
    "also for the window.",
)  # fmt: skip
def scale_cmd(shards: int, name: str, state_file: Path | None, wait: bool, timeout: float) -> None:
    """Resize a running fleet (started by `memfleet up`) to N shards per pool: nodes started
    before the proxy names them, removed ones stopped after the migration window."""
    try:
        check_name(name)
        path = state_file if state_file is not None else state_path(name)
        try:
            state = read_state(path)
        except FleetError as exc:
            raise NotRunning(
                str(exc) if state_file is not None else f"no fleet named {name!r} is running"
            ) from None
        outcome = run_scale(state, shards, timeout, _echo)
    except ScaleTimeout as exc:
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(1)
    except FleetError as exc:  # not running, or a resize it cannot make
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(2)
    fleet = str(state.get("name", name))
    if outcome.phase == "nothing":
        click.echo(f"memfleet scale: fleet {fleet!r} already has {shards} shards; nothing to do")
        return
    if outcome.phase == "failed":
        sys.exit(1)
    retired = [str(n) for n in outcome.record.get("retire") or []]
    if wait and retired:
        left = wait_retired(fleet, retired, timeout, _echo)
        if left:
            click.echo(f"memfleet: still running after {timeout:g}s: {', '.join(left)}", err=True)
            sys.exit(1)
        _echo(f"{', '.join(retired)} stopped")
    click.echo(f"memfleet scale: fleet {fleet!r} serves {shards} shards per pool")

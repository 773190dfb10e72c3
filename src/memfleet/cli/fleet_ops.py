"""``memfleet status`` (how a running fleet is), ``memfleet down`` (stop it) and
``memfleet fault`` (a simulated host down, cut off or back); the work is in
:mod:`memfleet.fleet.local` and :mod:`memfleet.fleet.hosts`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from memfleet.fleet.hosts import HostsError, fault
from memfleet.fleet.local.down import stop_fleet
from memfleet.fleet.local.messages import FleetError
from memfleet.fleet.local.registry import DEFAULT_NAME, check_name, state_path
from memfleet.fleet.local.state import read_state
from memfleet.fleet.local.status import StatusReader
from memfleet.fleet.local.status_view import format_status
from memfleet.manpage import ManCommand

NAME_HELP = "The fleet, as `memfleet up --name` named it."
STATE_FILE_HELP = "Read this state file (`up --state-file`) instead of the named fleet's."


def _locate(name: str, state_file: Path | None) -> tuple[str, Path, bool]:
    """(name, state file, whether it was given explicitly); exits 2 on a bad name."""
    try:
        check_name(name)
        if state_file is not None:
            return name, state_file, True
        return name, state_path(name), False
    except FleetError as exc:
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(2)


@click.command(
    "status",
    cls=ManCommand,
    examples=(
        ("memfleet status", "The default fleet: the proxy, then a row per node."),
        (
            "memfleet status --name test --watch",
            "Refreshed in place every 2 s, like top; Ctrl-C ends it.",
        ),
        ("memfleet status --json | jq .problems", "For scripts: the same figures as JSON."),
        ("until memfleet status -q; do sleep 1; done", "Wait until everything is up."),
    ),
    exit_codes=(
        (0, "the proxy and every node are up"),
        (
            1,
            "degraded: a node or the proxy is down, restarting, or out of service for "
            "repair (its rejoin journal)",
        ),
        (2, "the fleet is not running (or a bad option)"),
    ),
    epilog="Each node is asked for `stats` (the poller its metrics use) and the proxy for "
    "`stats`, `stats backends` and its status page's /status.json. STATE is the node as "
    "the fleet sees it: up; down (its process exited, restarting, or the proxy takes no "
    "traffic to it); repair (back, but out of service until the writes it missed are "
    "repaired). OPS/S is measured over 0.5 s (one refresh with --watch); HIT RATE is "
    "since the node started.",
)
@click.option("--name", default=DEFAULT_NAME, show_default=True, help=NAME_HELP)
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=STATE_FILE_HELP + "  [default: the named fleet's]",
)
@click.option("--watch", is_flag=True, help="Refresh in place until Ctrl-C.")
@click.option(
    "--interval",
    type=click.FloatRange(0.5, 3600),
    default=2.0,
    show_default=True,
    help="Seconds between two refreshes with --watch.",
)
@click.option(
    "--count",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="With --watch: stop after this many refreshes (0: until Ctrl-C).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document (with --watch: one per line)."
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing; only the exit status.")
def status_cmd(
    name: str,
    state_file: Path | None,
    watch: bool,
    interval: float,
    count: int,
    as_json: bool,
    quiet: bool,
) -> None:
    """Show how a running fleet is: the proxy and every node (up or down, restarts, items,
    memory, evictions, hit rate, ops/s, rejoin journal)."""
    name, path, explicit = _locate(name, state_file)
    reader = StatusReader(name, path, explicit)
    tty = sys.stdout.isatty() and not as_json
    done = 0
    code = 2
    try:
        while True:
            st = reader.read()
            code = st.exit_code
            if as_json and not quiet:
                click.echo(json.dumps(st.document(), indent=None if watch else 2))
            elif not quiet:
                # Like top: the screen is redrawn in place (a pipe gets one block each time).
                click.echo(("\x1b[H\x1b[2J" if watch and tty else "") + format_status(st))
            done += 1
            if not watch or (count and done >= count):
                break
            if not tty and not as_json and not quiet:
                click.echo("")
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    sys.exit(code)


@click.command(
    "down",
    cls=ManCommand,
    examples=(
        ("memfleet down", "Stop the default fleet: the proxy, then every node."),
        ("memfleet down --name test", "Stop the fleet `memfleet up --name test` started."),
        ("memfleet down --state-file state.json", "The fleet that wrote that state file."),
    ),
    exit_codes=(
        (0, "the fleet stopped (it was asked, as Ctrl-C asks, and did so in time)"),
        (1, "something had to be killed, or still runs (the message names it)"),
        (2, "no such fleet is running (a state file it left behind is removed)"),
    ),
    epilog="`down` sends memfleet up SIGTERM and waits: restartable nodes save their cache "
    "first. Past --timeout, up and whatever it started and still runs are killed "
    "(SIGKILL). Processes it did not start are never signalled: each pid is checked to "
    "be memfleet's.",
)
@click.option("--name", default=DEFAULT_NAME, show_default=True, help=NAME_HELP)
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=STATE_FILE_HELP + "  [default: the named fleet's]",
)
@click.option(
    "--timeout",
    type=click.FloatRange(1, 3600),
    default=90.0,
    show_default=True,
    help="Seconds to wait for a graceful stop before killing what is left.",
)
def down_cmd(name: str, state_file: Path | None, timeout: float) -> None:
    """Stop a running fleet (started by `memfleet up`) and everything it started."""
    name, path, _ = _locate(name, state_file)
    try:
        state = read_state(path)
    except FleetError as exc:
        what = str(exc) if state_file is not None else f"no fleet named {name!r} is running"
        click.echo(f"memfleet: {what}", err=True)
        sys.exit(2)
    result = stop_fleet(state, path, timeout)
    label = f"fleet {state.get('name', name)!r}"
    if not result.was_running and not result.forced:
        click.echo(f"memfleet: {label} was not running (removed its state file {path})", err=True)
        sys.exit(2)
    if result.left:
        click.echo(f"memfleet: {label}: still running: {', '.join(result.left)}", err=True)
        sys.exit(1)
    if result.forced:
        click.echo(
            f"memfleet: {label}: killed after {timeout:g}s: {', '.join(result.forced)}", err=True
        )
        sys.exit(1)
    click.echo(
        f"memfleet down: {label} stopped ({len(state.get('nodes', []))} nodes and the proxy)"
    )


@click.command(
    "fault",
    cls=ManCommand,
    examples=(
        (
            "memfleet fault kill-host host-1",
            "Every process on host-1 gets SIGKILL, its link "
            "goes down; its nodes stay down until heal-host.",
        ),
        (
            "memfleet fault cut-host host-1",
            "host-1 off the network; its processes keep running (a partition).",
        ),
        ("memfleet fault heal-host host-1", "Link up; the nodes of a killed host restart."),
    ),
    exit_codes=(
        (0, "done"),
        (1, "no such host, or the network change failed"),
        (2, "no such fleet, or a bad option"),
    ),
    epilog="Only for a fleet started with `memfleet up --hosts K` (Linux, root).",
)
@click.option("--name", default=DEFAULT_NAME, show_default=True, help=NAME_HELP)
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=STATE_FILE_HELP + "  [default: the named fleet's]",
)
@click.argument("action", type=click.Choice(["kill-host", "cut-host", "heal-host"]))
@click.argument("host")
def fault_cmd(name: str, state_file: Path | None, action: str, host: str) -> None:
    """Take a simulated host of `memfleet up --hosts K` down, off the network, or back."""
    name, path, _ = _locate(name, state_file)
    try:
        state = read_state(path)
    except FleetError as exc:
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(2)
    try:
        click.echo(fault(state, action, host))
    except HostsError as exc:
        click.echo(f"memfleet: fault {action} {host}: {exc}", err=True)
        sys.exit(1)

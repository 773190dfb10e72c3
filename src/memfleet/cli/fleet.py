"""``memfleet up`` (a whole cache on this machine), ``memfleet status`` (what it started) and
``memfleet fault`` (a simulated host down, cut off or back); the work is in
:mod:`memfleet.fleet.local` and :mod:`memfleet.fleet.hosts`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from memfleet.fleet.hosts import HostsError, fault, hosts_unavailable
from memfleet.fleet.local.layout import config_layout, topology_layout
from memfleet.fleet.local.lifecycle import run_up
from memfleet.fleet.local.messages import FleetError, say
from memfleet.fleet.local.options import (
    DEFAULT_NODE_MEMORY_MB,
    DEFAULT_PORT,
    PERSISTENCE,
    FleetOptions,
)
from memfleet.fleet.local.state import format_table, read_state
from memfleet.fleet.node.binary import find_memcached
from memfleet.fleet.node.messages import NodeError
from memfleet.fleet.processes import pid_alive
from memfleet.topology.presets import DEFAULT_TOPOLOGY, TOPOLOGIES, Topology


@click.command("up")
@click.option("--topology", type=click.Choice(TOPOLOGIES), default=None,
              help=f"Topology preset (default {DEFAULT_TOPOLOGY}).")  # fmt: skip
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="A proxy config file: one local node per backend.")  # fmt: skip
@click.option("--shards", type=click.IntRange(1, 256), default=3, show_default=True)
@click.option("--replicas", type=click.IntRange(1, 16), default=2, show_default=True)
@click.option("--placement", type=click.Choice(["aligned", "independent"]), default="aligned",
              show_default=True)  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Proxy port on 127.0.0.1 (0: any free port).")  # fmt: skip
@click.option("--persistence", type=click.Choice(PERSISTENCE), default="none",
              show_default=True)  # fmt: skip
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Memory files, proxy config, logs (default: a temporary dir).")  # fmt: skip
@click.option("--memory", type=click.IntRange(1), default=DEFAULT_NODE_MEMORY_MB,
              show_default=True, help="MB per node.")  # fmt: skip
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the fleet's addresses and pids here (JSON) once ready.")  # fmt: skip
@click.option("--hosts", type=click.IntRange(0, 64), default=0,
              help="Simulated hosts (network namespaces; Linux, root).")  # fmt: skip
@click.option("--ready-timeout", type=click.FloatRange(1), default=120.0, show_default=True)
@click.option("--log-level", default="warning", show_default=True, help="The proxy's.")
def up_cmd(
    topology: str | None,
    config_path: Path | None,
    shards: int,
    replicas: int,
    placement: str,
    port: int,
    persistence: str,
    data_dir: Path | None,
    memory: int,
    state_file: Path | None,
    hosts: int,
    ready_timeout: float,
    log_level: str,
) -> None:
    """Start a whole cache on this machine: nodes, proxy; Ctrl-C stops it."""
    try:
        if topology is not None and config_path is not None:
            raise FleetError("give --topology or --config, not both")
        topo: Topology | None = None
        if config_path is not None:
            layout = config_layout(config_path)
        else:
            topo = Topology(
                topology or DEFAULT_TOPOLOGY, shards=shards, replicas=replicas,
                placement="aligned" if placement == "aligned" else "independent",
            )  # fmt: skip
            layout = topology_layout(topo)
        if hosts:
            why = hosts_unavailable()
            if why is not None:
                say(f"--hosts {hosts}: {why}; running without simulated hosts")
                hosts = 0
        find_memcached()
    except (FleetError, NodeError, ValueError) as exc:
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(2)
    opts = FleetOptions(
        layout=layout,
        port=port,
        persistence="none" if persistence == "none" else
        ("memory-file" if persistence == "memory-file" else "restartable"),
        data_dir=data_dir,
        memory=memory,
        state_file=state_file.absolute() if state_file else None,
        hosts=hosts,
        ready_timeout=ready_timeout,
        log_level=log_level,
    )  # fmt: skip
    sys.exit(run_up(opts))


@click.command("status")
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the state file's JSON.")
def status_cmd(state_file: Path, as_json: bool) -> None:
    """Show what a running `memfleet up` started."""
    try:
        data = read_state(state_file)
    except FleetError as exc:
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(format_table(data))
    gone = [n["name"] for n in data["nodes"] if not pid_alive(n.get("pid"))]
    if not pid_alive(data["proxy"].get("pid")):
        gone.append("proxy")
    p = data["proxy"]
    click.echo(f"\nconnect: telnet {p['host']} {p['port']}")
    if gone:
        click.echo(f"not running: {', '.join(gone)}")


@click.command("fault")
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.argument("action", type=click.Choice(["kill-host", "cut-host", "heal-host"]))
@click.argument("host")
def fault_cmd(state_file: Path, action: str, host: str) -> None:
    """Take a simulated host of `memfleet up --hosts K` down, off the network, or back."""
    try:
        click.echo(fault(read_state(state_file), action, host))
    except (FleetError, HostsError) as exc:
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(1)

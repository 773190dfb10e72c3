"""``memfleet up``: a whole cache on this machine, supervised; the work is in
:mod:`memfleet.fleet.local`. ``status``, ``down`` and ``fault`` are in
:mod:`memfleet.cli.fleet_ops`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from memfleet.fleet.hosts import hosts_unavailable
from memfleet.fleet.local.layout import config_layout, topology_layout
from memfleet.fleet.local.lifecycle import run_up
from memfleet.fleet.local.messages import FleetError, say
from memfleet.fleet.local.options import (
    DEFAULT_NODE_MEMORY_MB,
    DEFAULT_PORT,
    PERSISTENCE,
    FleetOptions,
)
from memfleet.fleet.local.proxy_process import check_metrics_port
from memfleet.fleet.local.registry import DEFAULT_NAME, check_name
from memfleet.fleet.local.restarts import RESTART_POLICIES
from memfleet.fleet.node.binary import find_memcached
from memfleet.fleet.node.messages import NodeError
from memfleet.manpage import ManCommand
from memfleet.topology.presets import DEFAULT_TOPOLOGY, TOPOLOGIES, Topology

UP_EXAMPLES = (
    (
        "memfleet up",
        "replicated-sharded, 2 replicas × 3 shards, proxy on 127.0.0.1:11211, "
        "status page on a free loopback port (printed).",
    ),
    ("memfleet up --topology sharded --shards 4 --port 0", "4 shards, the proxy on any free port."),
    (
        "memfleet up --persistence restartable --data-dir ./cache",
        "Nodes that come back warm: stop with Ctrl-C, start again, the keys are still there.",
    ),
    (
        "memfleet up --name test --metrics 127.0.0.1:9150 --restart never",
        "A second fleet "
        "beside the default one, its status page on port 9150, a dead node left dead.",
    ),
    (
        "memfleet up --config proxy.yaml",
        "One local node per backend of an existing proxy config, the same pools and routes.",
    ),
)
UP_EXIT = (
    (0, "stopped by Ctrl-C, SIGTERM or `memfleet down`"),
    (1, "the fleet could not start (a node or the proxy failed; the message says which)"),
    (2, "bad options, memcached missing, or the fleet's name is taken by a running fleet"),
)


def parse_metrics(value: str) -> tuple[str, int] | None:
    """``--metrics``: ``HOST:PORT`` (port 0: a free one), or ``off``."""
    if value == "off":
        return None
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise FleetError(f"--metrics: {value!r} is not HOST:PORT (or off)")
    return check_metrics_port(host, int(port))


@click.command(
    "up",
    cls=ManCommand,
    examples=UP_EXAMPLES,
    exit_codes=UP_EXIT,
    epilog="Every node runs under `memfleet node` on a free loopback port; a node or proxy "
    "that exits is restarted after 1 s, then 2, 4 ... at most 30 s while it keeps failing "
    "(--restart never: it stays down). The fleet's state is in $XDG_RUNTIME_DIR/memfleet/"
    "NAME.json (unset: /tmp/memfleet-UID/), where `memfleet status` and `memfleet down` "
    "find it.",
)
@click.option(
    "--topology",
    type=click.Choice(TOPOLOGIES),
    default=None,
    help=f"Topology preset.  [default: {DEFAULT_TOPOLOGY}]",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A proxy config file instead of a preset: one local node "
    "per distinct backend, the file's pools and routes.",
)
@click.option(
    "--shards",
    type=click.IntRange(1, 256),
    default=3,
    show_default=True,
    help="Shards per pool (nodes per replica).",
)
@click.option(
    "--replicas",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Replica pools (replicated and replicated-sharded).",
)
@click.option(
    "--placement",
    type=click.Choice(["aligned", "independent"]),
    default="aligned",
    show_default=True,
    help="replicated-sharded: one hash seed for every replica "
    "(shard s holds the same keys in each), or one seed per replica.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Proxy port on 127.0.0.1 (0: any free port; a taken port: a free one, said so).",
)
@click.option(
    "--metrics",
    "metrics",
    default="127.0.0.1:0",
    metavar="HOST:PORT|off",
    help="Where the proxy serves its status page (/), "
    "Prometheus /metrics, /healthz and /readyz (port 0: a free one; off: none).  "
    "[default: 127.0.0.1:0, a free loopback port]",
)
@click.option(
    "--name",
    default=DEFAULT_NAME,
    show_default=True,
    help="The fleet's name: `memfleet status --name` and `memfleet down --name` "
    "find it by it; two fleets need two names.",
)
@click.option(
    "--restart",
    type=click.Choice(RESTART_POLICIES),
    default="always",
    show_default=True,
    help="always: restart a node or the proxy that exits, with "
    "back-off (as a StatefulSet); never: leave it down (SIGUSR2 restarts it).",
)
@click.option(
    "--persistence",
    type=click.Choice(PERSISTENCE),
    default="none",
    show_default=True,
    help="none: plain memory; memory-file: the cache in an "
    "mmap'd file in --data-dir; restartable: that file, saved on a graceful stop "
    "so the next start is warm.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Memory files, proxy config and logs.  [default: a temporary directory, removed at exit]",
)
@click.option(
    "--memory",
    type=click.IntRange(1),
    default=DEFAULT_NODE_MEMORY_MB,
    show_default=True,
    help="Cache size per node, in MB (memcached -m).",
)
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the fleet's addresses and pids here (JSON) once it is ready, "
    "removed on stop: for scripts.  [default: only the runtime directory]",
)
@click.option(
    "--hosts",
    type=click.IntRange(0, 64),
    default=0,
    show_default=True,
    help="Simulated hosts: network namespaces that fail as a unit (Linux, root; 0: none).",
)
@click.option(
    "--ready-timeout",
    type=click.FloatRange(1),
    default=120.0,
    show_default=True,
    help="Seconds every node has to answer before the start fails.",
)
@click.option(
    "--migration-window",
    type=click.FloatRange(0, 86400),
    default=None,
    help="Seconds a resize (memfleet scale) keeps the old placement beside the new one, "
    "reading moved keys through from their old node (0: off). Written into the proxy "
    "config as migration_window.  [default: 600, the proxy's]",
)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    help="The proxy's log level (its log is DATA-DIR/logs/proxy.log).",
)
def up_cmd(
    topology: str | None,
    config_path: Path | None,
    shards: int,
    replicas: int,
    placement: str,
    port: int,
    metrics: str,
    name: str,
    restart: str,
    persistence: str,
    data_dir: Path | None,
    memory: int,
    state_file: Path | None,
    hosts: int,
    ready_timeout: float,
    migration_window: float | None,
    log_level: str,
) -> None:
    """Start a whole cache on this machine (real memcached nodes behind the proxy), keep it
    running and restart what dies, until Ctrl-C or `memfleet down`."""
    try:
        check_name(name)
        if topology is not None and config_path is not None:
            raise FleetError("give --topology or --config, not both")
        if config_path is not None:
            layout = config_layout(config_path)
        else:
            topo = Topology(
                topology or DEFAULT_TOPOLOGY,
                shards=shards,
                replicas=replicas,
                placement="aligned" if placement == "aligned" else "independent",
            )
            layout = topology_layout(topo)
        if hosts:
            why = hosts_unavailable()
            if why is not None:
                say(f"--hosts {hosts}: {why}; running without simulated hosts")
                hosts = 0
        if hosts and metrics != "off":
            if metrics != "127.0.0.1:0":
                raise FleetError(
                    "--metrics with --hosts: the proxy's metrics port is not "
                    "relayed out of the simulated network; use --metrics off"
                )
            metrics = "off"
        metrics_at = parse_metrics(metrics)
        find_memcached()
    except (FleetError, NodeError, ValueError) as exc:
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(2)
    opts = FleetOptions(
        layout=layout,
        port=port,
        persistence="none"
        if persistence == "none"
        else ("memory-file" if persistence == "memory-file" else "restartable"),
        data_dir=data_dir,
        memory=memory,
        state_file=state_file.absolute() if state_file else None,
        hosts=hosts,
        ready_timeout=ready_timeout,
        log_level=log_level,
        name=name,
        restart="never" if restart == "never" else "always",
        metrics=metrics_at,
        migration_window=migration_window,
    )
    sys.exit(run_up(opts))

"""``memfleet up``: a whole distributed cache on this machine, and ``memfleet status``.

Every cache node of a topology runs under the node supervisor (``memfleet node``, started as
``python -m memfleet.fleet.node`` so that it does not import the proxy) on a free loopback port, in
its own process group (so a Ctrl-C in the terminal reaches only ``up``, which then stops things
in order: the proxy first, then the nodes, restartable nodes gracefully). The proxy config is
written into the data directory and the proxy is started on ``--port``. If ``up`` itself is
killed, Linux's parent-death signal still gives every child a SIGTERM, so a restartable node
saves its cache even then.

With ``--hosts K`` (Linux, root) the nodes live in K network namespaces, see
:mod:`memfleet.fleet.hosts`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import click
import yaml

from memfleet.config import ConfigError, load_config
from memfleet.fleet.hosts import HostNetwork, HostsError, fault, hosts_unavailable
from memfleet.fleet.node import NodeError, die_with_parent, find_memcached
from memfleet.topology.presets import DEFAULT_TOPOLOGY, TOPOLOGIES, NodeSpec, Topology

Persistence = Literal["none", "memory-file", "restartable"]
PERSISTENCE = ("none", "memory-file", "restartable")
DEFAULT_PORT = 11211
DEFAULT_NODE_MEMORY_MB = 64
LOOPBACK = "127.0.0.1"


class FleetError(Exception):
    """Why the fleet could not start; ``str()`` is the one-line message."""


def say(message: str) -> None:
    """A progress line on stderr (stdout carries the table)."""
    click.echo(f"memfleet up: {message}", err=True)


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port the OS reports free on ``host`` (bind to port 0)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether the proxy could listen on ``host:port`` now (SO_REUSEADDR, as asyncio binds)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def version_reply(host: str, port: int, timeout: float = 1.0) -> str | None:
    """The ``VERSION`` line a memcached-protocol server gives, or None."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"version\r\n")
            buf = b""
            while not buf.endswith(b"\r\n"):
                chunk = s.recv(4096)
                if not chunk:
                    return None
                buf += chunk
    except OSError:
        return None
    return buf.decode(errors="replace").strip() if buf.startswith(b"VERSION ") else None


# --- what to run ---------------------------------------------------------------------------


@dataclass
class FleetNode:
    """One cache node of the running fleet."""

    spec: NodeSpec
    host: str
    port: int
    zone: str | None = None
    failure_host: str | None = None
    memory_file: Path | None = None
    log_path: Path | None = None
    ready_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``host:port`` as the proxy config names it."""
        return f"{self.host}:{self.port}"

    def state(self) -> dict[str, Any]:
        """The node's entry in the state file."""
        return {
            "name": self.spec.name,
            "host": self.host,
            "port": self.port,
            "pid": self.proc.pid if self.proc is not None else None,
            "replica": self.spec.replica,
            "shard": self.spec.shard,
            "zone": self.zone,
            "memory_file": str(self.memory_file) if self.memory_file else None,
            "failure_host": self.failure_host,
        }


@dataclass
class Layout:
    """The nodes to start and how to turn their addresses into the proxy config."""

    title: str
    specs: list[NodeSpec]
    proxy_config: Callable[[Callable[[NodeSpec], str], str], dict[str, Any]]
    zones: dict[str, str] = field(default_factory=dict)
    topology: Topology | None = None


def topology_layout(topo: Topology) -> Layout:
    """A preset topology: its nodes, its proxy config."""
    zones: dict[str, str] = {}
    if topo.name == "local-failover":
        # The zones of the zfailover route: the local tier and the cluster tier.
        zones = {n.name: ("local" if n.role == "local" else "cluster") for n in topo.nodes()}
    if topo.name in ("replicated", "replicated-sharded"):
        sizes = f"{topo.replicas} replicas × {topo.shards} shards, placement {topo.placement}"
        if topo.name == "replicated":
            sizes = f"{topo.replicas} replicas"
    else:
        sizes = f"{topo.shards} shards"
    return Layout(
        title=f"{topo.name}, {sizes}",
        specs=topo.nodes(),
        proxy_config=lambda address, listen: topo.proxy_config(address, listen=listen),
        zones=zones,
        topology=topo,
    )


def config_layout(path: Path) -> Layout:
    """A proxy config file: every distinct backend becomes a local node (the file's own
    addresses are only names here); the proxy gets the same pools and routes."""
    try:
        load_config(path)  # the whole file is validated, with the proxy's own messages
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except ConfigError as exc:
        raise FleetError(str(exc)) from None
    pools: dict[str, Any] = data["pools"]
    specs: list[NodeSpec] = []
    by_address: dict[str, NodeSpec] = {}
    single = len(pools) == 1
    for r, (pool_name, pool) in enumerate(pools.items()):
        for s, address in enumerate(pool["backends"]):
            if address in by_address:
                continue
            name = f"memcached-{s}" if single else f"memcached-{r}-{s}"
            spec = NodeSpec(name, pool_name, "cache", r, s)
            by_address[address] = spec
            specs.append(spec)

    def proxy_config(address: Callable[[NodeSpec], str], listen: str) -> dict[str, Any]:
        cfg = dict(data)
        cfg["listen"] = listen
        cfg["pools"] = {
            name: {**pool, "backends": [address(by_address[b]) for b in pool["backends"]]}
            for name, pool in pools.items()
        }
        return cfg

    return Layout(title=f"{path} ({len(specs)} nodes)", specs=specs, proxy_config=proxy_config)


# --- the running fleet -----------------------------------------------------------------------


@dataclass
class FleetOptions:
    """Everything ``memfleet up`` was told."""

    layout: Layout
    port: int = DEFAULT_PORT
    persistence: Persistence = "none"
    data_dir: Path | None = None
    memory: int = DEFAULT_NODE_MEMORY_MB
    state_file: Path | None = None
    hosts: int = 0
    ready_timeout: float = 120.0
    stop_timeout: float = 60.0
    log_level: str = "info"


class Fleet:
    """Starts, reports on and stops the nodes and the proxy."""

    def __init__(self, opts: FleetOptions) -> None:
        self.opts = opts
        self.nodes: list[FleetNode] = []
        self.proxy: subprocess.Popen[bytes] | None = None
        self.proxy_host = LOOPBACK
        self.proxy_port = 0
        self.created_dir = opts.data_dir is None
        self.dir = (
            opts.data_dir.absolute()
            if opts.data_dir is not None
            else Path(tempfile.mkdtemp(prefix="memfleet-"))
        )
        self.stop_signal: int | None = None
        self.restart_requested = False  # SIGUSR2 (from `memfleet fault heal-host`)
        self.hosts: HostNetwork | None = None  # with --hosts
        self._logs: list[Any] = []

    # signals --------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_signal = signum

    def _on_restart(self, _signum: int, _frame: FrameType | None) -> None:
        self.restart_requested = True

    def install_signals(self) -> None:
        """SIGINT/SIGTERM ask for a clean stop (checked between steps and in the main loop);
        SIGUSR2 restarts nodes that are not running."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        signal.signal(signal.SIGUSR2, self._on_restart)

    def _check_stop(self) -> None:
        if self.stop_signal is not None:
            raise KeyboardInterrupt

    # start ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every node, wait until each answers, then start the proxy."""
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        (self.dir / "run").mkdir(exist_ok=True)
        if self.opts.persistence == "restartable" and self.created_dir:
            say("warning: --persistence restartable without --data-dir: the cache cannot "
                "survive this run (the temporary directory is removed at exit)")  # fmt: skip
        self._place_nodes()
        for node in self.nodes:
            self._check_stop()
            self._start_node(node)
        self._wait_nodes_ready()
        self._start_proxy()
        if self.opts.state_file is not None:
            self.write_state(self.opts.state_file)

    def _place_nodes(self) -> None:
        layout = self.opts.layout
        if self.opts.hosts:
            self.hosts = HostNetwork.create(self.opts.hosts, self.dir)
        per_host: dict[str, int] = {}
        for i, spec in enumerate(layout.specs):
            node = FleetNode(spec, LOOPBACK, 0, zone=layout.zones.get(spec.name))
            if self.hosts is not None:
                host = self.hosts.place(spec, i, layout.topology)
                node.failure_host = host.name
                node.host = host.address
                # Each host has its own address; its nodes take 11211, 11212, ... on it.
                node.port = 11211 + per_host.get(host.name, 0)
                per_host[host.name] = per_host.get(host.name, 0) + 1
            else:
                node.port = free_port()
            if self.opts.persistence != "none":
                node.memory_file = self.dir / f"{spec.name}.mem"
            node.log_path = self.dir / "logs" / f"{spec.name}.log"
            node.ready_file = self.dir / "run" / f"{spec.name}.ready"
            self.nodes.append(node)

    def _node_argv(self, node: FleetNode) -> list[str]:
        argv = [sys.executable, "-m", "memfleet.fleet.node", "--port", str(node.port),
                "--listen", node.host, "--memory", str(self.opts.memory),
                "--ready-file", str(node.ready_file),
                "--stop-timeout", str(self.opts.stop_timeout)]  # fmt: skip
        if node.memory_file is not None:
            argv += ["--memory-file", str(node.memory_file)]
            if self.opts.persistence == "restartable":
                argv.append("--restartable")
        if self.hosts is not None and node.failure_host is not None:
            argv = self.hosts.exec_prefix(self.hosts.netns_of(node.failure_host)) + argv
        return argv

    def _start_node(self, node: FleetNode) -> None:
        assert node.log_path is not None and node.ready_file is not None
        node.ready_file.unlink(missing_ok=True)  # left behind by a SIGKILLed earlier run
        log = node.log_path.open("ab")
        self._logs.append(log)
        node.proc = subprocess.Popen(
            self._node_argv(node), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )  # fmt: skip

    def _wait_nodes_ready(self) -> None:
        deadline = time.monotonic() + self.opts.ready_timeout
        waiting = list(self.nodes)
        while waiting:
            self._check_stop()
            for node in list(waiting):
                assert node.proc is not None and node.ready_file is not None
                if node.ready_file.exists():
                    waiting.remove(node)
                elif node.proc.poll() is not None:
                    raise FleetError(
                        f"{node.spec.name} exited with status {node.proc.returncode}: "
                        f"{_tail(node.log_path)}"
                    )
            if waiting and time.monotonic() > deadline:
                names = ", ".join(n.spec.name for n in waiting)
                raise FleetError(f"not ready after {self.opts.ready_timeout:g}s: {names}")
            time.sleep(0.05)

    def _choose_proxy_port(self) -> int:
        port = self.opts.port
        if port == 0:
            return free_port()
        if port_is_free(port):
            return port
        fallback = free_port()
        say(f"port {port} is in use by another program; the proxy listens on "
            f"{LOOPBACK}:{fallback} instead")  # fmt: skip
        return fallback

    def _start_proxy(self) -> None:
        self._check_stop()

        def address(spec: NodeSpec) -> str:
            return self._node(spec).address

        listen_port = self._choose_proxy_port()
        inner_port = listen_port
        if self.hosts is not None:
            # The proxy lives on the simulated network; a relay in this process serves it on
            # loopback, so the private addresses never exist outside the namespaces.
            inner_port = 11211
            listen = f"{self.hosts.proxy_address}:{inner_port}"
        else:
            listen = f"{LOOPBACK}:{listen_port}"
        cfg = self.opts.layout.proxy_config(address, listen)
        config_path = self.dir / "proxy.yaml"
        config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        log = (self.dir / "logs" / "proxy.log").open("ab")
        self._logs.append(log)
        argv = [sys.executable, "-m", "memfleet", "proxy", "--config", str(config_path),
                "--listen", listen, "--log-level", self.opts.log_level]  # fmt: skip
        if self.hosts is not None:
            argv = self.hosts.exec_prefix(self.hosts.proxy_ns_name) + argv
        self.proxy = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=die_with_parent(signal.SIGTERM),
        )  # fmt: skip
        if self.hosts is not None:
            self.hosts.start_relay(LOOPBACK, listen_port, inner_port)
        self.proxy_port = listen_port
        deadline = time.monotonic() + 30
        while version_reply(LOOPBACK, listen_port) is None:
            self._check_stop()
            if self.proxy.poll() is not None:
                raise FleetError(
                    f"the proxy exited with status {self.proxy.returncode}: "
                    f"{_tail(self.dir / 'logs' / 'proxy.log')}"
                )
            if time.monotonic() > deadline:
                raise FleetError("the proxy did not answer within 30s")
            time.sleep(0.05)

    def _node(self, spec: NodeSpec) -> FleetNode:
        for node in self.nodes:
            if node.spec == spec:
                return node
        raise KeyError(spec.name)

    # report ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The state-file document."""
        return {
            "proxy": {
                "host": self.proxy_host,
                "port": self.proxy_port,
                "pid": self.proxy.pid if self.proxy is not None else None,
            },
            "nodes": [n.state() for n in self.nodes],
            "topology": self.opts.layout.title,
            "persistence": self.opts.persistence,
            "data_dir": str(self.dir),
            "up_pid": os.getpid(),
            "hosts": self.hosts.state() if self.hosts is not None else None,
        }

    def write_state(self, path: Path) -> None:
        """Write the state file atomically (a reader never sees half of it)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.state(), indent=2) + "\n")
        os.replace(tmp, path)

    def table(self) -> str:
        """What runs where, and how to connect."""
        o = self.opts
        lines = [f"memfleet up: {o.layout.title}; persistence {o.persistence}; "
                 f"{o.memory} MB per node"]  # fmt: skip
        lines.append(format_table(self.state()))
        lines.append("")
        lines.append(f"connect:  telnet {self.proxy_host} {self.proxy_port}")
        lines.append(f"          pymemcache.Client(('{self.proxy_host}', {self.proxy_port}))")
        lines.append(f"data:     {self.dir}  (proxy.yaml, logs/)")
        if o.state_file is not None:
            lines.append(f"state:    {o.state_file}  (memfleet status --state-file ...)")
        lines.append("Ctrl-C stops everything.")
        return "\n".join(lines)

    # run and stop -----------------------------------------------------------------------------

    def watch(self) -> None:
        """Stay in the foreground until SIGINT/SIGTERM; report nodes that exit."""
        reported: set[str] = set()
        proxy_reported = False
        while self.stop_signal is None:
            if self.restart_requested:
                self.restart_requested = False
                for node in self.nodes:
                    if node.proc is not None and node.proc.poll() is not None:
                        say(f"restarting {node.spec.name}")
                        self._start_node(node)
                        reported.discard(node.spec.name)
                if self.opts.state_file is not None:
                    self.write_state(self.opts.state_file)
            for node in self.nodes:
                exited = node.proc is not None and node.proc.poll() is not None
                if exited and node.spec.name not in reported:
                    assert node.proc is not None
                    reported.add(node.spec.name)
                    say(f"{node.spec.name} exited with status {node.proc.returncode} "
                        f"(see {node.log_path})")  # fmt: skip
            if self.proxy is not None and self.proxy.poll() is not None and not proxy_reported:
                proxy_reported = True
                say(f"the proxy exited with status {self.proxy.returncode}")
            time.sleep(0.2)
        say(f"{signal.Signals(self.stop_signal).name}: stopping")

    def stop(self) -> None:
        """Stop the proxy, then every node (in parallel), then remove what was temporary."""
        if self.hosts is not None:
            self.hosts.stop_relay()
        if self.proxy is not None:
            _stop_group(self.proxy, signal.SIGTERM, 10.0)
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    node.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.opts.stop_timeout + 5
        for node in self.nodes:
            if node.proc is not None:
                _stop_group(node.proc, None, max(0.1, deadline - time.monotonic()))
        if self.hosts is not None:
            self.hosts.destroy()
        for log in self._logs:
            log.close()
        if self.opts.state_file is not None:
            self.opts.state_file.unlink(missing_ok=True)
        if self.created_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def _stop_group(proc: subprocess.Popen[bytes], sig: int | None, timeout: float) -> None:
    """Signal a child (leader of its own process group), wait, SIGKILL the group if needed."""
    if sig is not None and proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    # Anything left in the group (memcached under a supervisor that died) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _tail(path: Path | None, lines: int = 3) -> str:
    if path is None:
        return ""
    with contextlib.suppress(OSError):
        text = path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])
    return ""


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


def run_up(opts: FleetOptions) -> int:
    """``memfleet up``: start, print, wait for Ctrl-C/SIGTERM, stop. Returns the exit status."""
    fleet = Fleet(opts)
    fleet.install_signals()
    status = 0
    try:
        fleet.start()
        click.echo(fleet.table())
        sys.stdout.flush()
        say("ready")
        fleet.watch()
    except KeyboardInterrupt:
        say("interrupted while starting: stopping")
    except (FleetError, HostsError) as exc:
        click.echo(f"memfleet: {exc}", err=True)
        status = 1
    finally:
        # A second Ctrl-C during the stop must not leave half the fleet running.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        fleet.stop()
    say("stopped")
    return status


# --- command line ----------------------------------------------------------------------------


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


def pid_alive(pid: object) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    return False


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

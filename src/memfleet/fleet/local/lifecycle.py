"""A local fleet's life: start the nodes and then the proxy, stay in the foreground and
report what exits, and stop it all in order (the proxy first, then the nodes)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import IO, Any

import click

from memfleet.fleet.hosts import HostNetwork, HostsError
from memfleet.fleet.local.layout import write_proxy_config
from memfleet.fleet.local.messages import FleetError, say
from memfleet.fleet.local.nodes import FleetNode, place_nodes, start_node, wait_nodes_ready
from memfleet.fleet.local.options import FleetOptions
from memfleet.fleet.local.ports import LOOPBACK
from memfleet.fleet.local.proxy_process import (
    choose_proxy_port,
    proxy_listen,
    start_proxy,
    wait_proxy_answers,
)
from memfleet.fleet.local.state import format_table, write_state
from memfleet.fleet.processes import stop_group
from memfleet.topology.presets import NodeSpec


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
        self._logs: list[IO[bytes]] = []

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
        if self.opts.hosts:
            self.hosts = HostNetwork.create(self.opts.hosts, self.dir)
        self.nodes = place_nodes(self.opts.layout, self.opts.persistence, self.dir, self.hosts)
        for node in self.nodes:
            self._check_stop()
            self._start_node(node)
        wait_nodes_ready(self.nodes, self.opts.ready_timeout, self._check_stop)
        self._start_proxy()
        if self.opts.state_file is not None:
            self.write_state(self.opts.state_file)

    def _start_node(self, node: FleetNode) -> None:
        self._logs.append(start_node(node, self.opts, self.hosts))

    def _start_proxy(self) -> None:
        self._check_stop()

        def address(spec: NodeSpec) -> str:
            return self._node(spec).address

        listen_port = choose_proxy_port(self.opts.port)
        listen, inner_port = proxy_listen(listen_port, self.hosts)
        config_path = write_proxy_config(self.opts.layout, address, listen, self.dir / "proxy.yaml")
        log_path = self.dir / "logs" / "proxy.log"
        log = log_path.open("ab")
        self._logs.append(log)
        self.proxy = start_proxy(config_path, listen, self.opts.log_level, log, self.hosts)
        if self.hosts is not None:
            self.hosts.start_relay(LOOPBACK, listen_port, inner_port)
        self.proxy_port = listen_port
        wait_proxy_answers(self.proxy, listen_port, log_path, self._check_stop)

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
        write_state(path, self.state())

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
            stop_group(self.proxy, signal.SIGTERM, 10.0)
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    node.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.opts.stop_timeout + 5
        for node in self.nodes:
            if node.proc is not None:
                stop_group(node.proc, None, max(0.1, deadline - time.monotonic()))
        if self.hosts is not None:
            self.hosts.destroy()
        for log in self._logs:
            log.close()
        if self.opts.state_file is not None:
            self.opts.state_file.unlink(missing_ok=True)
        if self.created_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


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

"""A local fleet's life: start the nodes and then the proxy, stay in the foreground
restarting what exits (as a StatefulSet would, see :mod:`.restarts`), and stop it all in
order (the proxy first, then the nodes)."""

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

from memfleet.config import ConfigError, load_config
from memfleet.fleet.hosts import HostNetwork, HostsError
from memfleet.fleet.local.layout import write_proxy_config
from memfleet.fleet.local.messages import FleetError, NameTaken, say
from memfleet.fleet.local.nodes import (
    FleetNode,
    child_state,
    place_nodes,
    start_node,
    wait_nodes_ready,
)
from memfleet.fleet.local.options import FleetOptions
from memfleet.fleet.local.ports import LOOPBACK
from memfleet.fleet.local.proxy_process import (
    choose_proxy_port,
    proxy_listen,
    start_proxy,
    wait_proxy_answers,
)
from memfleet.fleet.local.registry import FleetLock, state_path
from memfleet.fleet.local.restarts import Restarts
from memfleet.fleet.local.scale_plan import topology_record
from memfleet.fleet.local.scaling import DEFAULT_WINDOW, Scaler
from memfleet.fleet.local.state import format_table, write_state
from memfleet.fleet.processes import describe_exit, stop_group
from memfleet.topology.presets import NodeSpec

WATCH_INTERVAL = 0.2


class Fleet:
    """Starts, supervises, reports on and stops the nodes and the proxy."""

    def __init__(self, opts: FleetOptions) -> None:
        self.opts = opts
        self.nodes: list[FleetNode] = []
        self.proxy: subprocess.Popen[bytes] | None = None
        self.proxy_restarts = Restarts()
        self.proxy_host = LOOPBACK
        self.proxy_port = 0
        self._proxy_listen = ""
        self.created_dir = opts.data_dir is None
        self.dir = (
            opts.data_dir.absolute()
            if opts.data_dir is not None
            else Path(tempfile.mkdtemp(prefix="memfleet-"))
        )
        self.lock = FleetLock(opts.name)
        self.registry_path = state_path(opts.name, create=True)
        self.phase = "starting"
        self.stop_signal: int | None = None
        self.restart_requested = False  # SIGUSR2 (from `memfleet fault heal-host`)
        self.hosts: HostNetwork | None = None  # with --hosts
        self._logs: dict[str, IO[bytes]] = {}
        self.scaler = Scaler(self)  # `memfleet scale`

    # signals --------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_signal = signum

    def _on_restart(self, _signum: int, _frame: FrameType | None) -> None:
        self.restart_requested = True

    def _on_scale(self, _signum: int, _frame: FrameType | None) -> None:
        self.scaler.requested = True

    def install_signals(self) -> None:
        """SIGINT/SIGTERM ask for a clean stop (checked between steps and in the main loop);
        SIGUSR2 restarts at once every node that is not running, whatever ``--restart``;
        SIGUSR1 says ``memfleet scale`` left a request (:mod:`.scaling`)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        signal.signal(signal.SIGUSR2, self._on_restart)
        signal.signal(signal.SIGUSR1, self._on_scale)

    def _check_stop(self) -> None:
        if self.stop_signal is not None:
            raise KeyboardInterrupt

    # start ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Take the fleet's name, start every node, wait until each answers, then start the
        proxy."""
        self.lock.acquire()
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
        self.write_state()  # `memfleet down` can find (and stop) a fleet still starting
        wait_nodes_ready(self.nodes, self.opts.ready_timeout, self._check_stop)
        self._start_proxy()
        self.phase = "ready"
        self.write_state()

    def _start_node(self, node: FleetNode) -> None:
        old = self._logs.pop(node.spec.name, None)
        if old is not None:
            old.close()
        self._logs[node.spec.name] = start_node(node, self.opts, self.hosts)

    def start_new_node(self, node: FleetNode) -> None:
        """Start a node a resize adds (supervised once the resize names it)."""
        self._start_node(node)

    def stop_node(self, node: FleetNode) -> None:
        """Stop one node (gracefully, bounded) and close its log."""
        if node.proc is not None:
            stop_group(node.proc, signal.SIGTERM, self.opts.stop_timeout + 5)
        log = self._logs.pop(node.spec.name, None)
        if log is not None:
            log.close()

    def all_nodes(self) -> list[FleetNode]:
        """Every node running: the fleet's, and those joining or retiring in a resize."""
        return [*self.nodes, *self.scaler.extra_nodes()]

    def signal_proxy(self, sig: int) -> None:
        """Signal the proxy if it runs (one restarting reads the config file anyway)."""
        if self.proxy is not None and self.proxy.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proxy.send_signal(sig)

    def migration_window(self) -> float:
        """The seconds the proxy keeps the old placement after a resize (its config's)."""
        if self.opts.migration_window is not None:
            return self.opts.migration_window
        with contextlib.suppress(ConfigError):
            cfg = load_config(self.config_path)
            return float(cfg.migration_window)
        return DEFAULT_WINDOW

    def write_config(self) -> None:
        """Write the proxy config for the layout and the nodes as they are now."""

        def address(spec: NodeSpec) -> str:
            return self._node(spec).address

        extra: dict[str, Any] = {}
        if self.opts.migration_window is not None:
            extra["migration_window"] = self.opts.migration_window
        write_proxy_config(self.opts.layout, address, self._proxy_listen, self.config_path, extra)

    def _start_proxy(self) -> None:
        self._check_stop()
        listen_port = choose_proxy_port(self.opts.port)
        listen, inner_port = proxy_listen(listen_port, self.hosts)
        self._proxy_listen = listen
        self.write_config()
        self._start_proxy_process()
        if self.hosts is not None:
            self.hosts.start_relay(LOOPBACK, listen_port, inner_port)
        self.proxy_port = listen_port
        assert self.proxy is not None
        wait_proxy_answers(self.proxy, listen_port, self.proxy_log, self._check_stop)

    @property
    def config_path(self) -> Path:
        """The proxy config ``up`` wrote."""
        return self.dir / "proxy.yaml"

    @property
    def proxy_log(self) -> Path:
        """The proxy's log file."""
        return self.dir / "logs" / "proxy.log"

    def _start_proxy_process(self) -> None:
        old = self._logs.pop("proxy", None)
        if old is not None:
            old.close()
        log = self.proxy_log.open("ab")
        self._logs["proxy"] = log
        metrics = (
            None if self.opts.metrics is None else f"{self.opts.metrics[0]}:{self.opts.metrics[1]}"
        )
        self.proxy = start_proxy(
            self.config_path, self._proxy_listen, self.opts.log_level, log, self.hosts, metrics
        )
        self.proxy_restarts.started(time.monotonic())

    def _node(self, spec: NodeSpec) -> FleetNode:
        for node in self.nodes:
            if node.spec == spec:
                return node
        raise KeyError(spec.name)

    # report ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The state document (the registry's file, and ``--state-file``)."""
        from memfleet import is_compiled

        metrics = self.opts.metrics
        return {
            "name": self.opts.name,
            "phase": self.phase,
            "proxy": {
                "host": self.proxy_host,
                "port": self.proxy_port,
                "pid": self.proxy.pid if self.proxy is not None else None,
                "state": child_state(self.proxy, self.proxy_restarts),
                "restarts": self.proxy_restarts.count,
                "last_exit": self.proxy_restarts.last_exit,
                "metrics": None if metrics is None else {"host": metrics[0], "port": metrics[1]},
            },
            "nodes": [n.state() for n in self.nodes],
            "topology": self.opts.layout.title,
            "persistence": self.opts.persistence,
            "restart": self.opts.restart,
            "hot_path": "compiled" if is_compiled() else "pure Python",
            "data_dir": str(self.dir),
            "up_pid": os.getpid(),
            "hosts": self.hosts.state() if self.hosts is not None else None,
            "topology_spec": (
                None
                if self.opts.layout.topology is None
                else topology_record(self.opts.layout.topology)
            ),
            **self.scaler.state(),
        }

    def write_state(self) -> None:
        """Write the state atomically (a reader never sees half of it): always into the
        fleet's registry file, and into ``--state-file`` once the fleet is ready (scripts
        wait for that file to appear)."""
        doc = self.state()
        write_state(self.registry_path, doc)
        if self.opts.state_file is not None and self.phase == "ready":
            write_state(self.opts.state_file, doc)

    def table(self) -> str:
        """What runs where, and how to connect, watch and stop it."""
        o = self.opts
        st = self.state()
        lines = [f"memfleet up: {o.layout.title}; persistence {o.persistence}; "
                 f"{o.memory} MB per node; hot path: {st['hot_path']}"]  # fmt: skip
        lines.append(format_table(st))
        lines.append("")
        lines.append(f"connect:  telnet {self.proxy_host} {self.proxy_port}")
        lines.append(f"          pymemcache.Client(('{self.proxy_host}', {self.proxy_port}))")
        if o.metrics is not None:
            lines.append(f"page:     http://{o.metrics[0]}:{o.metrics[1]}/  (metrics: /metrics)")
        flag = "" if o.name == "default" else f" --name {o.name}"
        lines.append(f"status:   memfleet status{flag}  (stop: memfleet down{flag})")
        lines.append(f"data:     {self.dir}  (proxy.yaml, logs/)")
        if o.state_file is not None:
            lines.append(f"state:    {o.state_file}")
        never = "" if o.restart == "always" else " (--restart never)"
        lines.append(f"restarts: {o.restart}{never}; Ctrl-C stops everything.")
        return "\n".join(lines)

    # run and stop -----------------------------------------------------------------------------

    def watch(self) -> None:
        """Stay in the foreground until SIGINT/SIGTERM, restarting what exits."""
        while self.stop_signal is None:
            now = time.monotonic()
            changed = False
            if self.restart_requested:
                self.restart_requested = False
                for node in self.nodes:
                    if node.restarts.down:
                        node.restarts.due = now  # at once, whatever the policy
            for node in self.nodes:
                changed |= self._supervise_node(node, now)
            changed |= self._supervise_proxy(now)
            changed |= self.scaler.tick(now)
            if changed:
                self.write_state()
            time.sleep(WATCH_INTERVAL)
        say(f"{signal.Signals(self.stop_signal).name}: stopping")

    def _supervise_node(self, node: FleetNode, now: float) -> bool:
        r = node.restarts
        proc = node.proc
        if proc is None or proc.poll() is None:
            return False
        name = node.spec.name
        if not r.down:
            _reap_group(proc)
            delay = r.exited(now, describe_exit(proc.returncode), self.opts.restart)
            say(f"{name} exited with {r.last_exit} (see {node.log_path}); "
                + _next(delay))  # fmt: skip
            return True
        if r.is_due(now):
            if node.failure_host is not None and not self._host_link_up(node.failure_host):
                r.due = now + 1.0  # its host is down: it comes back with the host
                return False
            self._start_node(node)
            r.restarted(now)
            say(f"{name} restarted (restart {r.count})")
            return True
        return False

    def _supervise_proxy(self, now: float) -> bool:
        r = self.proxy_restarts
        proc = self.proxy
        if proc is None or proc.poll() is None:
            return False
        if not r.down:
            _reap_group(proc)
            delay = r.exited(now, describe_exit(proc.returncode), self.opts.restart)
            say(f"the proxy exited with {r.last_exit} (see {self.proxy_log}); " + _next(delay))
            return True
        if r.is_due(now):
            self._start_proxy_process()
            r.restarted(now)
            say(f"the proxy restarted (restart {r.count})")
            return True
        return False

    def _host_link_up(self, host_name: str) -> bool:
        """Whether a simulated host is on the network (``memfleet fault kill-host`` takes its
        link down; its nodes are not restarted until ``heal-host``)."""
        if self.hosts is None:
            return True
        host = next((h for h in self.hosts.hosts if h.name == host_name), None)
        if host is None:
            return True
        r = subprocess.run(
            ["ip", "-n", self.hosts.switch, "-o", "link", "show", host.switch_port],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        return r.returncode == 0 and ",UP" in r.stdout.split(">", 1)[0]

    def stop(self) -> None:
        """Stop the proxy, then every node (in parallel), then remove what was temporary."""
        self.phase = "stopping"
        with contextlib.suppress(OSError):
            if self.lock.held:
                self.write_state()
        if self.hosts is not None:
            self.hosts.stop_relay()
        if self.proxy is not None:
            stop_group(self.proxy, signal.SIGTERM, 10.0)
        nodes = self.all_nodes()
        for node in nodes:
            if node.proc is not None and node.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    node.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.opts.stop_timeout + 5
        for node in nodes:
            if node.proc is not None:
                stop_group(node.proc, None, max(0.1, deadline - time.monotonic()))
        if self.hosts is not None:
            self.hosts.destroy()
        for log in self._logs.values():
            log.close()
        if self.lock.held:  # another `up` owns these files when the name was taken
            self.registry_path.unlink(missing_ok=True)
            if self.opts.state_file is not None:
                self.opts.state_file.unlink(missing_ok=True)
        self.lock.release()
        if self.created_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def _next(delay: float | None) -> str:
    if delay is None:
        return "not restarted (--restart never; SIGUSR2 restarts it)"
    return f"restarting in {delay:g}s"


def _reap_group(proc: subprocess.Popen[bytes]) -> None:
    """Whatever is left of an exited child's process group (memcached under a supervisor
    that was killed) goes too, so the restart finds its port free."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_up(opts: FleetOptions) -> int:
    """``memfleet up``: start, print, supervise until Ctrl-C/SIGTERM, stop. Returns the exit
    status (0 after a requested stop, 1 when the fleet could not start)."""
    try:
        fleet = Fleet(opts)
    except FleetError as exc:
        click.echo(f"memfleet: {exc}", err=True)
        return 2
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
        status = 2 if isinstance(exc, NameTaken) else 1
    finally:
        # A second Ctrl-C during the stop must not leave half the fleet running.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        fleet.stop()
    say("stopped")
    return status

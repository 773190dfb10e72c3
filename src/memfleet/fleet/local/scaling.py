"""``memfleet scale`` inside ``memfleet up``: the resize of a running fleet, in the safe order.

``scale`` leaves a request file beside the fleet's state (``NAME.scale-ID.json``) and sends
``up`` SIGUSR1; ``up`` does the work between two rounds of its supervision loop (it owns the
nodes, so it restarts, reports and stops the new ones like the others) and reports each step
in the state file's ``scale`` records, which ``scale`` prints.

- **Scale out**: the new nodes are started and must answer before the proxy config names
  them; then the config is rewritten (atomically) and the proxy reloaded (SIGHUP), and the
  resize is done when the proxy reports the new config's hash.
- **Scale in**: the config comes first (the proxy keeps the old placement for its
  ``migration_window``, reading moved keys through from the nodes it no longer names); the
  nodes it dropped keep running, *retiring*, and ``up`` stops them once the window is over.
  ``memfleet down`` stops them with the rest; their memory files are removed, so a later
  scale-out starts those shards cold instead of serving what they held before.

A scale-out that names a node still retiring takes it back (a rollback within the window: the
proxy deleted its copy of every key written since, so it holds nothing stale) when the proxy's
window is certain to outlast the reload; otherwise it is refused until the node is gone. A
resize that fails (a new node exits or is not ready in time, the proxy does not take the
config) is undone: the previous config is written back and the new nodes are stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from memfleet.config import ConfigError, load_config
from memfleet.config.digest import config_hash
from memfleet.fleet.hosts import HostNetwork
from memfleet.fleet.local.layout import topology_layout
from memfleet.fleet.local.messages import FleetError, say
from memfleet.fleet.local.nodes import FleetNode
from memfleet.fleet.local.options import FleetOptions
from memfleet.fleet.local.ports import LOOPBACK, free_port
from memfleet.fleet.local.proxy_process import proxy_stats, served_config_hash
from memfleet.fleet.local.registry import state_dir
from memfleet.fleet.local.scale_plan import ScalePlan, plan_scale
from memfleet.fleet.processes import log_tail
from memfleet.topology.presets import NodeSpec

# The proxy's own default (memfleet.config.model.ProxyConfig.migration_window).
DEFAULT_WINDOW = 600.0
# A retiring node outlives the proxy's window by this much: the proxy's window starts when
# it reloads, at the latest when it reports the new hash, which is when this one starts.
RETIRE_MARGIN = 1.0
RELOAD_TIMEOUT = 30.0
KEEP_RECORDS = 8


def request_glob(name: str) -> str:
    """The file names of the pending scale requests of fleet ``name``."""
    return f"{name}.scale-*.json"


def request_path(name: str, request_id: str) -> Path:
    """Where ``scale`` leaves its request for fleet ``name``."""
    return state_dir() / f"{name}.scale-{request_id}.json"


class Fleet(Protocol):
    """What a resize needs of the running fleet (:class:`.lifecycle.Fleet`)."""

    opts: FleetOptions
    nodes: list[FleetNode]
    hosts: HostNetwork | None
    dir: Path
    phase: str
    proxy_port: int

    @property
    def config_path(self) -> Path:
        """The proxy config file."""

    @property
    def proxy_log(self) -> Path:
        """The proxy's log."""

    def start_new_node(self, node: FleetNode) -> None:
        """Start a node (not yet named by the config)."""

    def stop_node(self, node: FleetNode) -> None:
        """Stop one node, bounded."""

    def all_nodes(self) -> list[FleetNode]:
        """Every node running."""

    def signal_proxy(self, sig: int) -> None:
        """Signal the proxy if it runs."""

    def migration_window(self) -> float:
        """The proxy's migration window, seconds."""

    def write_config(self) -> None:
        """Write the proxy config for the layout and nodes as they are."""


@dataclass
class Retiring:
    """A node the proxy no longer names, kept until the migration window is over."""

    node: FleetNode
    at: float  # monotonic time of its stop
    wall_at: float  # the same, as a Unix time, for the state file
    window_end: float  # monotonic: until when the proxy still reads through from it
    stopping_since: float | None = None


@dataclass
class ScaleJob:
    """One resize in progress, and its record in the state file."""

    request_id: str
    plan: ScalePlan
    started: float
    phase: str = "starting"  # starting, reloading, done, failed
    messages: list[str] = field(default_factory=list)
    new_nodes: list[FleetNode] = field(default_factory=list)  # started for this resize
    taken_back: list[Retiring] = field(default_factory=list)
    deadline: float = 0.0
    expected_hash: str = ""
    old_config: str = ""
    old_nodes: list[FleetNode] = field(default_factory=list)
    retire_at: float | None = None  # Unix time the retired nodes stop

    def record(self) -> dict[str, Any]:
        """The job as ``scale`` reads it from the state file."""
        return {
            "id": self.request_id,
            "from": self.plan.before.shards,
            "to": self.plan.after.shards,
            "phase": self.phase,
            "messages": list(self.messages),
            "config_hash": self.expected_hash or None,
            "retire": [s.name for s in self.plan.retire],
            "retire_at": self.retire_at,
        }


class Scaler:
    """The resizes of one running fleet: requests, the job in progress, retiring nodes."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.requested = False  # SIGUSR1 from `memfleet scale`
        self.job: ScaleJob | None = None
        self.retiring: list[Retiring] = []
        self.records: list[dict[str, Any]] = []

    # what the fleet reports and stops -------------------------------------------------------

    def extra_nodes(self) -> list[FleetNode]:
        """Nodes running outside the fleet's node list: retiring, or started by a resize not
        yet done (``down`` and the fleet's stop stop them too)."""
        extra = [r.node for r in self.retiring]
        if self.job is not None and self.job.phase == "starting":
            extra += self.job.new_nodes + [r.node for r in self.job.taken_back]
        return extra

    def state(self) -> dict[str, Any]:
        """The state file's part: retiring and joining nodes, the last resizes."""
        joining = self.job.new_nodes if self.job and self.job.phase == "starting" else []
        return {
            "retiring": [
                {**r.node.state(), "retire_at": round(r.wall_at, 3)} for r in self.retiring
            ],
            "joining": [n.state() for n in joining],
            "scale": self.records + ([self.job.record()] if self.job else []),
        }

    # one round of the supervision loop ------------------------------------------------------

    def tick(self, now: float) -> bool:
        """Take new requests, advance the resize in progress, stop what is due; whether the
        state changed."""
        changed = False
        if self.requested:
            self.requested = False
            changed |= self._take_requests(now)
        if self.job is not None:
            changed |= self._step(now)
        changed |= self._retire(now)
        return changed

    def _take_requests(self, now: float) -> bool:
        name = self.fleet.opts.name
        paths = sorted(state_dir().glob(request_glob(name)), key=_mtime)
        for path in paths:
            try:
                request = json.loads(path.read_text())
                path.unlink()
                request_id, shards = str(request["id"]), int(request["shards"])
            except (OSError, ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)
                continue
            try:
                self._start(request_id, shards, now)
            except FleetError as exc:
                self._refuse(request_id, shards, str(exc))
        return bool(paths)

    def _refuse(self, request_id: str, shards: int, why: str) -> None:
        say(f"scale to {shards} shards refused: {why}")
        self._keep({"id": request_id, "to": shards, "phase": "failed", "messages": [why]})

    def _keep(self, record: dict[str, Any]) -> None:
        self.records = [*self.records, record][-KEEP_RECORDS:]

    def _start(self, request_id: str, shards: int, now: float) -> None:
        fleet = self.fleet
        if self.job is not None:
            raise FleetError(f"a resize to {self.job.plan.after.shards} shards is in progress")
        if fleet.phase != "ready":
            raise FleetError(f"the fleet is {fleet.phase}, not ready")
        plan = plan_scale(fleet.opts.layout.topology, shards, fleet.opts.name)
        if plan.direction == "none":
            raise FleetError(f"the fleet already has {shards} shards")
        job = ScaleJob(request_id, plan, now)
        for spec in plan.add:
            back = next((r for r in self.retiring if r.node.spec.name == spec.name), None)
            if back is None:
                continue
            if back.stopping_since is not None or now + RELOAD_TIMEOUT >= back.window_end:
                raise FleetError(
                    f"{spec.name} is still retiring after the last scale-in (it stops at "
                    f"{time.strftime('%H:%M:%S', time.localtime(back.wall_at))}); scale out "
                    "again once it has stopped"
                )
            job.taken_back.append(back)
        self.job = job
        self._say(job, f"scale {plan.direction}: {plan.before.shards} → {shards} shards")
        for r in job.taken_back:
            self.retiring.remove(r)
            self._say(job, f"{r.node.spec.name} taken back (it was retiring, its keys kept)")
        taken = {r.node.spec.name for r in job.taken_back}
        for spec in plan.add:
            if spec.name in taken:
                continue
            node = self._place(spec, plan)
            job.new_nodes.append(node)
            try:
                fleet.start_new_node(node)
            except OSError as exc:
                self._fail(job, f"{spec.name} could not start: {exc}")
                return
            self._say(job, f"{spec.name} starting on {node.address}")
        job.deadline = now + fleet.opts.ready_timeout
        if not job.new_nodes:
            self._reload(job, now)

    def _place(self, spec: NodeSpec, plan: ScalePlan) -> FleetNode:
        fleet = self.fleet
        node = FleetNode(spec, LOOPBACK, 0)
        hosts = fleet.hosts
        if hosts is not None:
            index = [s.name for s in plan.after.nodes()].index(spec.name)
            host = hosts.place(spec, index, plan.after)
            node.failure_host, node.host = host.name, host.address
            used = {n.port for n in fleet.all_nodes() if n.failure_host == host.name}
            node.port = next(p for p in range(11211, 65535) if p not in used)
        else:
            node.port = free_port()
        if fleet.opts.persistence != "none":
            node.memory_file = fleet.dir / f"{spec.name}.mem"
            remove_memory_files(node)  # a shard added again starts cold, never with old keys
        node.log_path = fleet.dir / "logs" / f"{spec.name}.log"
        node.ready_file = fleet.dir / "run" / f"{spec.name}.ready"
        return node

    def _say(self, job: ScaleJob, message: str) -> None:
        say(message)
        job.messages.append(message)

    # the steps --------------------------------------------------------------------------------

    def _step(self, now: float) -> bool:
        job = self.job
        assert job is not None
        if job.phase == "starting":
            for node in job.new_nodes:
                assert node.proc is not None and node.ready_file is not None
                if node.proc.poll() is not None:
                    why = f"status {node.proc.returncode}: {log_tail(node.log_path)}"
                    self._fail(job, f"{node.spec.name} exited with {why}")
                    return True
            waiting = [n.spec.name for n in job.new_nodes if not _ready(n)]
            if not waiting:
                names = ", ".join(n.spec.name for n in job.new_nodes)
                self._say(job, f"new nodes answer: {names}")
                self._reload(job, now)
                return True
            if now > job.deadline:
                limit = self.fleet.opts.ready_timeout
                self._fail(job, f"not ready after {limit:g}s: {', '.join(waiting)}")
                return True
            return False
        if job.phase == "reloading":
            proxy = self.fleet
            if served_config_hash(LOOPBACK, proxy.proxy_port) == job.expected_hash:
                self._done(job, now)
                return True
            if now > job.deadline:
                tail = log_tail(proxy.proxy_log)
                where = f": {tail}" if tail else f"; see {proxy.proxy_log}"
                took = f"hash {job.expected_hash}) within {RELOAD_TIMEOUT:g}s{where}"
                self._fail(job, f"the proxy did not take the new config ({took}")
                return True
        return False

    def _reload(self, job: ScaleJob, now: float) -> None:
        """The config naming the new set of nodes, then the proxy told to reload it."""
        fleet = self.fleet
        plan = job.plan
        job.old_config = fleet.config_path.read_text()
        job.old_nodes = list(fleet.nodes)
        by_name = {n.spec.name: n for n in [*fleet.nodes, *job.new_nodes]}
        by_name.update({r.node.spec.name: r.node for r in job.taken_back})
        fleet.opts.layout = topology_layout(plan.after)
        fleet.nodes = [by_name[s.name] for s in plan.after.nodes()]
        fleet.write_config()
        try:
            job.expected_hash = config_hash(load_config(fleet.config_path))
        except ConfigError as exc:
            self._fail(job, str(exc))
            return
        fleet.signal_proxy(signal.SIGHUP)
        job.phase = "reloading"
        job.deadline = now + RELOAD_TIMEOUT
        self._say(job, f"proxy config rewritten ({len(fleet.nodes)} nodes, hash "
                       f"{job.expected_hash}); proxy reloading")  # fmt: skip

    def _done(self, job: ScaleJob, now: float) -> None:
        fleet = self.fleet
        window = fleet.migration_window()
        retired = [n for n in job.old_nodes if n.spec.name in {s.name for s in job.plan.retire}]
        # Every reload that moves keys restarts the proxy's window for every pool, so nodes
        # retired by an earlier resize stay as long as this one's.
        wall = time.time() + window + RETIRE_MARGIN
        for r in self.retiring:
            if r.stopping_since is None and r.at < now + window + RETIRE_MARGIN:
                r.at, r.wall_at, r.window_end = now + window + RETIRE_MARGIN, wall, now + window
        if retired:
            job.retire_at = round(wall, 3)
            for node in retired:
                self.retiring.append(Retiring(node, now + window + RETIRE_MARGIN, wall,
                                              now + window))  # fmt: skip
            names = ", ".join(n.spec.name for n in retired)
            self._say(job, f"the proxy serves {job.plan.after.shards} shards; {names} "
                           f"retiring: stopped after the {window:g}s migration window, at "
                           f"{time.strftime('%H:%M:%S', time.localtime(wall))}")  # fmt: skip
        else:
            self._say(job, f"the proxy serves {job.plan.after.shards} shards; done")
        job.phase = "done"
        self._keep(job.record())
        self.job = None

    def _fail(self, job: ScaleJob, why: str) -> None:
        """Undo what the resize did: the previous config back, the new nodes stopped."""
        fleet = self.fleet
        if job.old_config:
            fleet.opts.layout = topology_layout(job.plan.before)
            fleet.nodes = job.old_nodes
            tmp = fleet.config_path.with_name(fleet.config_path.name + ".tmp")
            tmp.write_text(job.old_config)
            os.replace(tmp, fleet.config_path)
            fleet.signal_proxy(signal.SIGHUP)
        for node in job.new_nodes:
            fleet.stop_node(node)
        self.retiring.extend(job.taken_back)
        job.phase = "failed"
        self._say(job, f"scale to {job.plan.after.shards} shards failed, undone: {why}")
        self._keep(job.record())
        self.job = None

    def _retire(self, now: float) -> bool:
        changed = False
        due = [r for r in self.retiring if r.stopping_since is None and now >= r.at]
        if due and self._proxy_window_open():
            for r in due:
                r.at = now + 1.0  # the proxy still reads through from them: not yet
            return False
        for r in list(self.retiring):
            proc = r.node.proc
            if r.stopping_since is None and now >= r.at:
                r.stopping_since = now
                if proc is not None and proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(signal.SIGTERM)  # graceful, as `down` stops a node
                say(f"{r.node.spec.name}: migration window over, stopping it")
            if r.stopping_since is None:
                continue
            if proc is None or proc.poll() is not None:
                self.fleet.stop_node(r.node)
                remove_memory_files(r.node)
                self.retiring.remove(r)
                say(f"{r.node.spec.name} stopped (retired by the last scale-in)")
                changed = True
            elif now > r.stopping_since + self.fleet.opts.stop_timeout + 5:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        return changed

    def _proxy_window_open(self) -> bool:
        """Whether the proxy says its resize window is still open (it can outlast the timer:
        it waits for journaled old-owner deletes); a proxy that does not answer: no."""
        stats = proxy_stats(LOOPBACK, self.fleet.proxy_port)
        return stats is not None and stats.get("migration_active") == "1"


def _mtime(path: Path) -> float:
    """When a request was left (one taken meanwhile sorts first and is skipped)."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _ready(node: FleetNode) -> bool:
    return node.ready_file is not None and node.ready_file.exists()


def remove_memory_files(node: FleetNode) -> None:
    """A retired shard's memory file and memcached's state file beside it: what it held is
    not what its keys are now."""
    if node.memory_file is None:
        return
    for path in (node.memory_file, node.memory_file.with_name(node.memory_file.name + ".meta")):
        path.unlink(missing_ok=True)

"""``memfleet status``: ask a running fleet's proxy and every node how they are.

Each node is read with the node poller the metrics use
(:class:`~memfleet.fleet.node.stats_poller.StatsPoller`: one ``stats`` per poll); rates come
from two polls (half a second apart for a one-off status, one refresh apart with
``--watch``). The proxy is asked over the memcached protocol (``stats``, ``stats backends``:
which nodes it takes traffic to) and, where ``up`` serves its status page, for its rejoin
journal (``/status.json``).
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memfleet.fleet.local.messages import FleetError
from memfleet.fleet.local.registry import is_running
from memfleet.fleet.local.state import read_state
from memfleet.fleet.node.probe import ask
from memfleet.fleet.node.stats_poller import Snapshot, StatsPoller, parse_stats
from memfleet.fleet.processes import pid_runs

SAMPLE_SECONDS = 0.5
OK, DEGRADED, NOT_RUNNING = 0, 1, 2
# memcached's request counters whose sum is the node's ops/s.
OPS_STATS = (
    "cmd_get",
    "cmd_set",
    "cmd_touch",
    "cmd_flush",
    "delete_hits",
    "delete_misses",
    "incr_hits",
    "incr_misses",
    "decr_hits",
    "decr_misses",
)
PROXY_OPS_STATS = ("cmd_get", "cmd_set", "cmd_touch", "cmd_flush", "cmd_other")


def _int(stats: dict[str, str], key: str) -> int | None:
    with contextlib.suppress(KeyError, ValueError):
        return int(stats[key])
    return None


def _ops(stats: dict[str, str], keys: tuple[str, ...]) -> int:
    return sum(_int(stats, k) or 0 for k in keys)


def rate(old: dict[str, str], new: dict[str, str], dt: float, keys: tuple[str, ...]) -> float:
    """Requests per second between two ``stats`` answers (0 after a restart)."""
    if dt <= 0:
        return 0.0
    return max(0, _ops(new, keys) - _ops(old, keys)) / dt


def hit_rate(stats: dict[str, str]) -> float | None:
    """get hits / gets since the server started; None before the first get."""
    hits, misses = _int(stats, "get_hits") or 0, _int(stats, "get_misses") or 0
    return hits / (hits + misses) if hits + misses else None


@dataclass
class NodeStatus:
    """One node as ``status`` saw it."""

    name: str
    address: str
    replica: int | None
    shard: int | None
    process: str  # running / restarting / exited: what `up` says of its supervisor
    restarts: int
    last_exit: str | None
    answers: bool | None  # None: not reachable from here (a simulated host)
    error: str | None = None
    in_proxy: str | None = None  # up / down / repair: the proxy's view; None: unknown
    items: int | None = None
    bytes: int | None = None
    limit_bytes: int | None = None
    evictions: int | None = None
    hit_rate: float | None = None
    ops_per_sec: float | None = None
    journal: int | None = None  # keys to repair before it serves again
    repaired: int | None = None  # journaled keys repaired so far

    @property
    def health(self) -> str:
        """``up``, ``repair`` (out of service until its journal is repaired) or ``down``."""
        if self.process != "running" or self.answers is False:
            return "down"
        if self.in_proxy in ("down", "repair"):
            return self.in_proxy
        return "up" if self.answers or self.in_proxy == "up" else "down"


@dataclass
class ProxyStatus:
    """The proxy as ``status`` saw it."""

    address: str
    process: str
    restarts: int
    last_exit: str | None
    answers: bool
    error: str | None = None
    connections: int | None = None
    hit_rate: float | None = None
    ops_per_sec: float | None = None
    page: str | None = None  # the status page's URL


@dataclass
class FleetStatus:
    """The whole fleet; ``exit_code`` is 0 (all up), 1 (degraded) or 2 (not running)."""

    name: str
    state_file: str
    running: bool
    why: str = ""
    topology: str = ""
    restart: str = ""
    taken: float = field(default_factory=time.time)
    proxy: ProxyStatus | None = None
    nodes: list[NodeStatus] = field(default_factory=list)
    # Nodes a scale-in removed from the proxy config, kept until the migration window is over
    # (memfleet.fleet.local.scaling): name → Unix time of their stop.
    retiring: dict[str, float] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        """What is not well, one phrase each."""
        if not self.running:
            return [self.why]
        out = [f"{n.name} {n.health}" for n in self.nodes if n.health != "up"]
        if self.proxy is not None and not self.proxy.answers:
            out.append("proxy down")
        return out

    @property
    def exit_code(self) -> int:
        """0 when everything is up, 1 when degraded, 2 when the fleet is not running."""
        if not self.running:
            return NOT_RUNNING
        return DEGRADED if self.problems else OK

    def document(self) -> dict[str, Any]:
        """For ``--json``."""
        doc = asdict(self)
        doc["exit_code"] = self.exit_code
        doc["problems"] = self.problems
        for n, d in zip(self.nodes, doc["nodes"], strict=True):
            d["health"] = n.health
        return doc


class StatusReader:
    """Reads one fleet's status; keeps the last polls so that ``--watch`` rates span one
    refresh."""

    def __init__(self, name: str, path: Path, explicit: bool) -> None:
        self.name = name
        self.path = path
        self.explicit = explicit  # --state-file: no registry lock to ask
        self.pollers: dict[str, StatsPoller] = {}
        self.previous: dict[str, Snapshot | None] = {}  # each node's poll before the last
        self.proxy_last: tuple[float, dict[str, str]] | None = None

    def _running(self, state: dict[str, Any]) -> bool:
        if self.explicit:
            return pid_runs(state.get("up_pid"), b"memfleet")
        return is_running(self.name)

    def read(self) -> FleetStatus:
        """Poll once (twice, half a second apart, for the first read: rates need two)."""
        status = FleetStatus(self.name, str(self.path), running=False)
        try:
            state = read_state(self.path)
        except FleetError as exc:
            status.why = (
                str(exc)
                if self.explicit
                else (
                    f"no fleet named {self.name!r} is running "
                    f"(`memfleet up --name {self.name}` starts one)"
                )
            )
            return status
        if not self._running(state):
            status.why = (
                f"fleet {self.name!r} is not running: memfleet up (pid "
                f"{state.get('up_pid')}) has exited; {self.path} is left over"
            )
            return status
        status.running = True
        status.name = str(state.get("name", self.name))
        status.topology = str(state.get("topology", ""))
        status.restart = str(state.get("restart", ""))
        status.retiring = {
            str(r.get("name")): float(r.get("retire_at") or 0) for r in state.get("retiring") or []
        }
        first = not self.pollers
        nodes = state["nodes"]
        self._poll(nodes)
        proxy_stats, backends = self._ask_proxy(state)
        if first:
            self._proxy_status(state, proxy_stats)  # the first of two samples
            time.sleep(SAMPLE_SECONDS)
            self._poll(nodes)
            proxy_stats, backends = self._ask_proxy(state)
        status.proxy = self._proxy_status(state, proxy_stats)
        journal = self._journal(state)
        status.nodes = [self._node_status(n, backends, journal) for n in nodes]
        return status

    # nodes -----------------------------------------------------------------------------------

    def _poll(self, nodes: list[dict[str, Any]]) -> None:
        for n in nodes:
            if n.get("failure_host"):
                continue  # its address lives in a network namespace
            key = f"{n['name']}@{n['host']}:{n['port']}"
            poller = self.pollers.get(key)
            if poller is None:
                poller = self.pollers[key] = StatsPoller(n["host"], int(n["port"]), 1.0)
            self.previous[key] = poller.last
            poller.poll()

    def _node_status(
        self, n: dict[str, Any], backends: dict[str, str] | None, journal: dict[str, dict[str, Any]]
    ) -> NodeStatus:
        address = f"{n['host']}:{n['port']}"
        ns = NodeStatus(
            name=n["name"],
            address=address,
            replica=n.get("replica"),
            shard=n.get("shard"),
            process=str(n.get("state", "running")),
            restarts=int(n.get("restarts", 0)),
            last_exit=n.get("last_exit"),
            answers=None,
        )
        if backends is not None and address in backends:
            ns.in_proxy = backends[address]
        j = journal.get(address) or {}
        if j:
            ns.journal = j.get("journal")
            ns.repaired = j.get("repaired")
            if j.get("state") == "repair":
                ns.in_proxy = "repair"
        if n.get("failure_host"):
            ns.error = f"on simulated host {n['failure_host']}: figures from the proxy only"
            return ns
        key = f"{n['name']}@{address}"
        last = self.pollers[key].last
        prev = self.previous.get(key)
        ns.answers = last is not None and last.ok
        if last is None or not last.ok:
            ns.error = last.error if last is not None else "not polled"
            return ns
        s = last.stats
        ns.items, ns.bytes = _int(s, "curr_items"), _int(s, "bytes")
        ns.limit_bytes, ns.evictions = _int(s, "limit_maxbytes"), _int(s, "evictions")
        ns.hit_rate = hit_rate(s)
        if prev is not None and prev.ok:
            ns.ops_per_sec = rate(prev.stats, s, last.taken - prev.taken, OPS_STATS)
        return ns

    # the proxy -------------------------------------------------------------------------------

    def _ask_proxy(
        self, state: dict[str, Any]
    ) -> tuple[dict[str, str] | None, dict[str, str] | None]:
        p = state["proxy"]
        try:
            stats = parse_stats(ask(p["host"], int(p["port"]), b"stats\r\n", b"END\r\n"))
            lines = parse_stats(ask(p["host"], int(p["port"]), b"stats backends\r\n", b"END\r\n"))
        except (OSError, KeyError, ValueError):
            return None, None
        backends = {k[: -len(":state")]: v for k, v in lines.items() if k.endswith(":state")}
        return stats, backends

    def _proxy_status(self, state: dict[str, Any], stats: dict[str, str] | None) -> ProxyStatus:
        p = state["proxy"]
        metrics = p.get("metrics")
        ps = ProxyStatus(
            address=f"{p['host']}:{p['port']}",
            process=str(p.get("state", "running")),
            restarts=int(p.get("restarts", 0)),
            last_exit=p.get("last_exit"),
            answers=stats is not None,
            page=f"http://{metrics['host']}:{metrics['port']}/" if metrics else None,
        )
        if stats is None:
            ps.error = "does not answer stats"
            self.proxy_last = None
            return ps
        now = time.monotonic()
        ps.connections = _int(stats, "curr_connections")
        ps.hit_rate = hit_rate(stats)
        if self.proxy_last is not None:
            then, old = self.proxy_last
            ps.ops_per_sec = rate(old, stats, now - then, PROXY_OPS_STATS)
        self.proxy_last = (now, stats)
        return ps

    def _journal(self, state: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Per backend address, its rejoin state from the status page's JSON (if served)."""
        metrics = state["proxy"].get("metrics")
        if not metrics:
            return {}
        url = f"http://{metrics['host']}:{metrics['port']}/status.json"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                doc = json.loads(r.read())
        except (OSError, ValueError):
            return {}
        out: dict[str, dict[str, Any]] = {}
        for pool in doc.get("pools", []):
            for b in pool.get("backends", []):
                out.setdefault(b["name"], b)
        return out

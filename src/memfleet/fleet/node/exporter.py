"""``memfleet node --metrics HOST:PORT``: the node's own memcached ``stats`` as Prometheus
metrics, plus ``/healthz`` and ``/readyz``.

The memcached figures carry the names of the Prometheus community's memcached_exporter
(``memcached_current_items``, ``memcached_items_evicted_total``, ``memcached_commands_total``
with ``command``/``status`` labels...), so dashboards and alerts written for it work on a
memfleet node unchanged. memfleet adds ``memfleet_node_up`` (memcached answered the last
poll), ``memfleet_node_info`` and the poller's own health. Every sample carries the node's
``pool``/``replica``/``shard`` labels (those that were given).

The figures come from the :class:`~memfleet.fleet.node.stats_poller.StatsPoller`, never from a
request per scrape: a node is asked once per interval however many scrapers there are.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from memfleet import __version__
from memfleet.fleet.node.messages import NodeError
from memfleet.fleet.node.stats_poller import Snapshot, StatsPoller

# (metric, memcached stat, help). Gauges are levels; counters only ever grow (until restart).
GAUGES = (
    ("memcached_current_items", "curr_items", "Items stored now"),
    ("memcached_current_bytes", "bytes", "Bytes used to store items"),
    ("memcached_limit_bytes", "limit_maxbytes", "Bytes this node may use for items (-m)"),
    ("memcached_current_connections", "curr_connections", "Open connections"),
    ("memcached_max_connections", "max_connections", "Connection limit (-c)"),
    ("memcached_uptime_seconds", "uptime", "Seconds since memcached started"),
    ("memcached_malloced_bytes", "total_malloced", "Bytes allocated to slab pages"),
)
COUNTERS = (
    ("memcached_items_total", "total_items", "Items stored since start"),
    ("memcached_items_evicted_total", "evictions", "Valid items evicted to free memory"),
    ("memcached_items_reclaimed_total", "reclaimed", "Stores that reused an expired item"),
    ("memcached_connections_total", "total_connections", "Connections accepted since start"),
    ("memcached_connections_rejected_total", "rejected_connections", "Connections refused"),
    (
        "memcached_connections_listener_disabled_total",
        "listen_disabled_num",
        "Times the connection limit disabled the listener",
    ),
    ("memcached_read_bytes_total", "bytes_read", "Bytes read from the network"),
    ("memcached_written_bytes_total", "bytes_written", "Bytes written to the network"),
    ("memcached_item_too_large_total", "store_too_large", "Stores refused: item too large"),
    ("memcached_item_no_memory_total", "store_no_memory", "Stores refused: out of memory"),
    ("memcached_process_user_cpu_seconds_total", "rusage_user", "memcached's user CPU time"),
    ("memcached_process_system_cpu_seconds_total", "rusage_system", "memcached's system CPU"),
)
# memcached counts <op>_hits / <op>_misses for these commands.
HIT_MISS_COMMANDS = ("get", "delete", "incr", "decr", "cas", "touch")


@dataclass(frozen=True)
class NodeLabels:
    """Where the node sits in its topology; an empty value means "not given"."""

    pool: str = ""
    replica: str = ""
    shard: str = ""

    def items(self) -> list[tuple[str, str]]:
        """The labels that were given, in a fixed order. ``{replica}``/``{shard}`` in the
        pool name are filled in (Kubernetes gives one template to every pod of a set)."""
        pool = self.pool.replace("{replica}", self.replica).replace("{shard}", self.shard)
        given = (("pool", pool), ("replica", self.replica), ("shard", self.shard))
        return [(k, v) for k, v in given if v]


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class NodeCollector(Collector):
    """Turns the poller's last snapshot into metric families at scrape time."""

    def __init__(self, poller: StatsPoller, labels: NodeLabels) -> None:
        self.poller = poller
        self.names = [k for k, _ in labels.items()]
        self.values = [v for _, v in labels.items()]

    def _gauge(self, name: str, doc: str, value: float) -> GaugeMetricFamily:
        fam = GaugeMetricFamily(name, doc, labels=self.names)
        fam.add_metric(self.values, value)
        return fam

    def collect(self) -> Iterator[Metric]:
        """memfleet's node metrics, then memcached's figures from the last good poll."""
        p = self.poller
        last = p.last
        up = 1.0 if last is not None and last.ok else 0.0
        yield self._gauge("memfleet_node_up", "1 when memcached answered the last stats poll", up)
        yield self._gauge("memcached_up", "memcached_exporter's name for memfleet_node_up", up)
        polls = CounterMetricFamily(
            "memfleet_node_stats_polls", "stats polls by result", labels=[*self.names, "result"]
        )
        polls.add_metric([*self.values, "ok"], p.polls - p.failures)
        polls.add_metric([*self.values, "failed"], p.failures)
        yield polls
        good = p.last_ok
        if good is not None:
            yield self._gauge(
                "memfleet_node_stats_age_seconds",
                "Seconds since memcached last answered a stats poll",
                max(0.0, time.time() - good.taken),
            )
        info = GaugeMetricFamily(
            "memfleet_node_info",
            "The node supervisor's and memcached's versions",
            labels=[*self.names, "version", "memcached_version"],
        )
        memcached_version = good.stats.get("version", "") if good is not None else ""
        info.add_metric([*self.values, __version__, memcached_version], 1)
        yield info
        if last is not None and last.ok:
            # Only a fresh answer is exported: figures of a memcached that stopped answering
            # would look alive on a dashboard.
            yield from self._stats(last)

    def _stats(self, snap: Snapshot) -> Iterator[Metric]:
        s = snap.stats
        for name, stat, doc in GAUGES:
            value = _number(s.get(stat))
            if value is not None:
                yield self._gauge(name, doc, value)
        for name, stat, doc in COUNTERS:
            value = _number(s.get(stat))
            if value is not None:
                fam = CounterMetricFamily(name, doc, labels=self.names)
                fam.add_metric(self.values, value)
                yield fam
        commands = CounterMetricFamily(
            "memcached_commands",
            "Requests by command and result (as memcached_exporter reports them)",
            labels=[*self.names, "command", "status"],
        )
        for op in HIT_MISS_COMMANDS:
            for stat, status in ((f"{op}_hits", "hit"), (f"{op}_misses", "miss")):
                value = _number(s.get(stat))
                if value is not None:
                    commands.add_metric([*self.values, op, status], value)
        cas = [_number(s.get(k)) for k in ("cas_hits", "cas_misses", "cas_badval")]
        badval = cas[2]
        if badval is not None:
            commands.add_metric([*self.values, "cas", "badval"], badval)
        cmd_set = _number(s.get("cmd_set"))
        if cmd_set is not None and None not in cas:
            # memcached counts cas requests in cmd_set as well.
            commands.add_metric([*self.values, "set", "hit"], cmd_set - sum(c or 0 for c in cas))
        flush = _number(s.get("cmd_flush"))
        if flush is not None:
            commands.add_metric([*self.values, "flush", "hit"], flush)
        yield commands


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9151`` for IPv6) → (host, port); NodeError when malformed."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise NodeError(f"--metrics: {value!r} is not HOST:PORT")
    return host, int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


class NodeMetricsServer:
    """``/metrics``, ``/healthz`` (memcached's process runs) and ``/readyz`` (memcached
    answered the last poll) in a background thread."""

    def __init__(self, poller: StatsPoller, labels: NodeLabels, alive: Callable[[], bool]) -> None:
        self.poller = poller
        self.alive = alive
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(NodeCollector(poller, labels))
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def respond(self, path: str) -> tuple[int, str, bytes]:
        """Status, content type and body for a GET of ``path``."""
        path = path.split("?", 1)[0]
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path == "/healthz":
            ok = self.alive()
            return (200 if ok else 503), "text/plain", b"ok\n" if ok else b"memcached exited\n"
        if path == "/readyz":
            last = self.poller.last
            if last is not None and last.ok:
                return 200, "text/plain", b"ready\n"
            why = last.error if last is not None else "not polled yet"
            return 503, "text/plain", f"memcached does not answer: {why}\n".encode()
        return 404, "text/plain", b"not found\n"

    def bind(self, host: str, port: int) -> tuple[str, int]:
        """Listen (before memcached starts, so a taken port fails the start at once);
        returns the bound address (port 0 picks a free one)."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, ctype, body = server.respond(self.path)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # a scrape every few seconds is not worth a log line

        cls = _IPv6Server if ":" in host else _Server
        try:
            self._httpd = cls((host, port), Handler)
        except OSError as exc:
            raise NodeError(f"--metrics {host}:{port}: {exc.strerror or exc}") from None
        bound = self._httpd.server_address
        return str(bound[0]), int(bound[1])

    def start(self) -> None:
        """Serve in a daemon thread (after :meth:`bind`)."""
        assert self._httpd is not None
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="metrics-http", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            if self._thread is not None:
                self._httpd.shutdown()
            self._httpd.server_close()

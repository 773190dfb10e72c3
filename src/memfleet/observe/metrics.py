"""Prometheus metrics, ``/healthz`` and ``/readyz`` for ``memfleet proxy --metrics HOST:PORT``.

Nothing here runs per request. The proxy keeps plain integer counters (``ProxyStats``,
``Backend``) whatever the flags; a custom collector reads them when Prometheus scrapes, so
``prometheus-client`` is never called on the hot path. Latency is measured only with
``--metrics``:

- per backend, once per backend *batch*: the time a batch was written is noted and every reply
  of that batch, when read, is counted as that old (one clock read per backend read);
- per route: at scrape time, the backend histograms of the backends each top-level route
  (``routes:`` entry) reaches are merged; no clock is read per client request or client read
  (a first version timed each client read, and cost ~5 µs/request unpipelined).

The HTTP endpoint runs on the proxy's own event loop (no thread), so a scrape sees the
counters between two callbacks, never half-updated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from memfleet import __version__
from memfleet.backends.backend import Backend, LatencyHistogram
from memfleet.observe.stats import backend_in_flight, reconnects

if TYPE_CHECKING:
    from memfleet.backends.pool import Pool
    from memfleet.config import ProxyConfig
    from memfleet.observe.stats import ProxyStats
    from memfleet.routes.base import Route

log = logging.getLogger("memfleet.observe.metrics")


class LimitLines(Protocol):
    """Counters that render as ``STAT`` lines (``memfleet.proxy.limits.LimitCounters``)."""

    def lines(self) -> list[tuple[str, object]]: ...


class ProxyView(Protocol):
    """What the metrics read of the running proxy (``memfleet.proxy.app.Proxy`` is one): a
    read-only view, so this module does not import the proxy."""

    after_apply: Callable[[], None] | None

    @property
    def cfg(self) -> ProxyConfig: ...
    @property
    def pools(self) -> dict[str, Pool]: ...
    @property
    def root(self) -> Route: ...
    @property
    def stats(self) -> ProxyStats: ...
    @property
    def limit_counters(self) -> LimitLines: ...
    @property
    def listening(self) -> bool: ...
    @property
    def log_lines_suppressed(self) -> int: ...
    def all_backends(self) -> list[Backend]: ...
    def client_in_flight(self) -> Iterator[int]: ...
    def memory_held(self) -> tuple[int, int]: ...
    def migration_lines(self) -> list[tuple[str, object]]: ...


def route_of(cfg: ProxyConfig, cmd: bytes) -> str:
    """The name of the top-level route a command takes (``default`` unless mapped)."""
    name = cmd.decode(errors="replace")
    return name if name in cfg.routes and name != "default" else "default"


def route_latency(proxy: ProxyView) -> dict[str, LatencyHistogram]:
    """Per top-level route, the merged latency histograms of the backends it reaches
    (computed at scrape time: nothing is measured per route on the hot path)."""
    routes = top_level_routes(proxy)
    out: dict[str, LatencyHistogram] = {}
    for name, route in routes.items():
        merged = LatencyHistogram()
        for b in route.backends():
            h = b.latency
            if h is None:
                continue
            merged.counts = [x + y for x, y in zip(merged.counts, h.counts, strict=True)]
            merged.sum += h.sum
            merged.count += h.count
        out[name] = merged
    return out


def enable(proxy: ProxyView) -> None:
    """Turn latency measurement on for this proxy (before it accepts clients)."""

    def histograms() -> None:
        for b in proxy.all_backends():
            if b.latency is None:
                b.latency = LatencyHistogram()

    histograms()
    proxy.after_apply = histograms  # backends a reload adds are measured too


def top_level_routes(proxy: ProxyView) -> dict[str, Route]:
    """The ``routes:`` entries of the config in force, by name (``default`` included)."""
    from memfleet.routes.command import CommandRoute

    root = proxy.root
    if not isinstance(root, CommandRoute):
        return {"default": root}
    routes = {"default": root.default}
    for cmd, r in root.by_command.items():
        routes[cmd.decode(errors="replace")] = r
    return routes


# The resize window's gauges (memfleet.routes.migrate.MigrationCounters.lines); the rest of
# its lines are counters.
_MIGRATION_GAUGES = {
    "migration_active": "1 while a resize window is open",
    "migration_window_remaining": "Seconds until the open resize window is due to end",
    "migration_journaled": "Old-owner deletes journaled for a retry (keys)",
}


def migration_metrics(lines: list[tuple[str, object]]) -> Iterator[Metric]:
    """``memfleet_migration_*``: the resize windows' counters and gauges."""
    for name, value in lines:
        n = int(str(value))
        doc = _MIGRATION_GAUGES.get(name)
        if doc is not None:
            suffix = "_seconds" if name == "migration_window_remaining" else ""
            yield GaugeMetricFamily(f"memfleet_{name}{suffix}", doc, value=n)
        else:
            what = name.removeprefix("migration_").replace("_", " ")
            yield CounterMetricFamily(f"memfleet_{name}", f"Resize windows: {what}", value=n)


def readiness(proxy: ProxyView) -> tuple[bool, str]:
    """Ready: listening, a config loaded, and every top-level route has a live path (a backend
    it can reach that is not down, or no backend at all: a null route answers by itself).

    Never "every backend up": one cache node out of service must not take every proxy out of
    its Service (a DaemonSet proxy behind ``internalTrafficPolicy: Local`` would leave the
    apps of that node with no cache at all)."""
    if not proxy.listening:
        return False, "not listening"
    dead: list[str] = []
    for name, route in top_level_routes(proxy).items():
        backends = list(route.backends())
        if backends and all(b.down for b in backends):
            dead.append(f"{name} (down: {', '.join(b.name for b in backends)})")
    if dead:
        return False, "no live path for route(s): " + "; ".join(sorted(dead))
    return True, "ready"


def _histogram(
    name: str, doc: str, label: str, items: Iterable[tuple[str, LatencyHistogram]]
) -> HistogramMetricFamily:
    fam = HistogramMetricFamily(name, doc, labels=[label])
    for value, h in items:
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for bound, n in zip(h.bounds, h.counts, strict=False):
            cumulative += n
            buckets.append((repr(bound), cumulative))
        buckets.append(("+Inf", h.count))
        fam.add_metric([value], buckets, h.sum)
    return fam


class ProxyCollector(Collector):
    """Reads the proxy's plain counters at scrape time."""

    def __init__(self, proxy: ProxyView) -> None:
        self.proxy = proxy

    def collect(self) -> Iterator[Metric]:
        """Every memfleet metric, from the counters as they are now."""
        p = self.proxy
        st = p.stats
        backends = p.all_backends()
        pool_of: dict[int, str] = {}
        for name, pool in p.pools.items():
            for b in pool.backends:
                pool_of.setdefault(id(b), name)

        info = GaugeMetricFamily("memfleet_info", "memfleet version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        # Which config this proxy serves: proxies of one fleet that differ show it (a
        # scale-in waits until every proxy reports the new hash).
        config = GaugeMetricFamily(
            "memfleet_config_info", "Hash of the config in force", labels=["hash"]
        )
        config.add_metric([st.config_hash], 1)
        yield config
        yield from migration_metrics(p.migration_lines())

        req = CounterMetricFamily(
            "memfleet_requests",
            "Client requests by command and top-level route (get: keys fetched, as cmd_get)",
            labels=["command", "route"],
        )
        req.add_metric(["get", route_of(p.cfg, b"get")], st.cmd_get)
        req.add_metric(["flush_all", "all"], st.cmd_flush)
        for cmd, n in sorted(st.commands.items()):
            req.add_metric([cmd.decode(errors="replace"), route_of(p.cfg, cmd)], n)
        yield req

        yield CounterMetricFamily("memfleet_get_hits", "Keys found by get", value=st.get_hits)
        yield CounterMetricFamily("memfleet_get_misses", "Keys missed by get", value=st.get_misses)

        errs = CounterMetricFamily("memfleet_errors", "Errors by kind", labels=["kind"])
        errs.add_metric(["client_protocol"], st.protocol_errors)
        errs.add_metric(["client_http"], st.http_closed)  # closed unanswered, as memcached
        errs.add_metric(["backend_failed_fast"], sum(b.failed_fast for b in backends))
        errs.add_metric(["backend_failure"], sum(b.errors - b.failed_fast for b in backends))
        kinds: dict[str, int] = {}
        for b in backends:
            for k, n in b.failure_kinds.items():
                kinds[k] = kinds.get(k, 0) + n
        for k, n in sorted(kinds.items()):
            errs.add_metric([f"backend_{k}"], n)
        errs.add_metric(["reload_refused"], st.reloads_failed)
        yield errs

        limits = CounterMetricFamily(
            "memfleet_limit_hits", "Times a client or backend limit was hit", labels=["limit"]
        )
        for limit, hits in p.limit_counters.lines():
            limits.add_metric([limit], int(str(hits)))
        limits.add_metric(["backend_queue_full"], sum(b.queue_full for b in backends))
        yield limits

        reloads = CounterMetricFamily("memfleet_reloads", "Config reloads", labels=["result"])
        reloads.add_metric(["ok"], st.reloads)
        reloads.add_metric(["refused"], st.reloads_failed)
        yield reloads

        yield GaugeMetricFamily(
            "memfleet_client_connections", "Open client connections", value=st.curr_connections
        )
        yield CounterMetricFamily(
            "memfleet_client_connections_opened", "Client connections accepted",
            value=st.total_connections,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "memfleet_in_flight",
            "Client requests received and not answered yet",
            value=sum(max(0, n) for n in p.client_in_flight()),
        )
        held, trims = p.memory_held()
        yield GaugeMetricFamily(
            "memfleet_client_bytes_held",
            "Bytes the clients hold in the proxy or have reserved for replies on their way "
            "(what max_client_bytes and max_memory bound)",
            value=held,
        )
        yield CounterMetricFamily(
            "memfleet_memory_trims",
            "Times the proxy gave freed memory back to the system after a large release",
            value=trims,
        )
        yield CounterMetricFamily(
            "memfleet_log_lines_rate_limited",
            "Log lines dropped by the rate limit (client protocol errors)",
            value=p.log_lines_suppressed,
        )

        yield from self._backends(backends, pool_of)
        yield _histogram(
            "memfleet_route_latency_seconds",
            "Backend reply latency of the backends each top-level route reaches",
            "route",
            sorted(route_latency(p).items()),
        )

    def _backends(self, backends: list[Backend], pool_of: dict[int, str]) -> Iterator[Metric]:
        labels = ["backend", "pool"]
        up = GaugeMetricFamily(
            "memfleet_backend_up", "1 when the backend takes traffic", labels=labels
        )
        requests = CounterMetricFamily("memfleet_backend_requests", "Requests sent", labels=labels)
        errors = CounterMetricFamily("memfleet_backend_errors", "Requests failed", labels=labels)
        fast = CounterMetricFamily(
            "memfleet_backend_failed_fast", "Requests failed while down", labels=labels
        )
        down = CounterMetricFamily(
            "memfleet_backend_marked_down", "Times marked down", labels=labels
        )
        recon = CounterMetricFamily("memfleet_backend_reconnects", "TCP reconnects", labels=labels)
        inflight = GaugeMetricFamily(
            "memfleet_backend_in_flight", "Requests unanswered", labels=labels
        )
        failures = CounterMetricFamily(
            "memfleet_backend_failures", "Connection failures by kind",
            labels=["backend", "pool", "kind"],
        )  # fmt: skip
        # The rejoin journal's outcome: keys deleted on a returning replica, or one flush when
        # the journal overflowed (every rejoin with `rejoin: flush`).
        invalidated = CounterMetricFamily(
            "memfleet_backend_rejoin_invalidated", "Journaled keys deleted before a rejoin",
            labels=labels,
        )  # fmt: skip
        flushes = CounterMetricFamily(
            "memfleet_backend_rejoin_flushes", "Flushes before a rejoin (journal overflow)",
            labels=labels,
        )  # fmt: skip
        repaired = CounterMetricFamily(
            "memfleet_backend_rejoin_repaired",
            "Journaled keys copied from a healthy replica before a rejoin", labels=labels,
        )  # fmt: skip
        outs = CounterMetricFamily(
            "memfleet_backend_out_of_service", "Times taken out of service for missed writes",
            labels=labels,
        )  # fmt: skip
        journaled = GaugeMetricFamily(
            "memfleet_backend_journaled", "Keys waiting for their repair (-1: a flush is due)",
            labels=labels,
        )  # fmt: skip
        for b in backends:
            lv = [b.name, pool_of.get(id(b), "")]
            up.add_metric(lv, 0 if b.down else 1)
            requests.add_metric(lv, b.requests)
            errors.add_metric(lv, b.errors)
            fast.add_metric(lv, b.failed_fast)
            down.add_metric(lv, b.marked_down)
            recon.add_metric(lv, reconnects(b))
            inflight.add_metric(lv, backend_in_flight(b))
            invalidated.add_metric(lv, b.invalidated)
            flushes.add_metric(lv, b.rejoin_flushes)
            repaired.add_metric(lv, b.repaired)
            outs.add_metric(lv, b.out_of_service)
            journaled.add_metric(lv, b.journaled)
            for k, n in sorted(b.failure_kinds.items()):
                failures.add_metric([*lv, k], n)
        yield from (up, requests, errors, fast, down, recon, inflight, failures)
        yield from (invalidated, flushes, repaired, outs, journaled)
        yield _histogram(
            "memfleet_backend_latency_seconds",
            "Backend reply latency (per written batch, attributed to its replies)",
            "backend",
            [(b.name, b.latency) for b in backends if b.latency is not None],
        )


def registry_for(proxy: ProxyView) -> CollectorRegistry:
    """A registry holding the proxy's collector and the process/platform ones."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(ProxyCollector(proxy))
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)
    return reg


class Page(Protocol):
    """Another page served beside the metrics (the status page,
    ``memfleet.observe.status_page.StatusPage``, which imports this module)."""

    paths: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]

    def respond(self, path: str) -> tuple[int, str, bytes]: ...


class MetricsServer:
    """A minimal HTTP/1.1 server on the proxy's loop: ``/metrics``, ``/healthz``, ``/readyz``,
    and ``page`` (the status page) when given."""

    MAX_REQUEST = 8192
    READ_TIMEOUT = 5.0

    def __init__(self, proxy: ProxyView, page: Page | None = None) -> None:
        self.proxy = proxy
        self.registry = registry_for(proxy)
        self.page = page
        self._server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; return the bound address (port 0 picks a free one)."""
        self._server = await asyncio.start_server(self._handle, host, port)
        sock = self._server.sockets[0].getsockname()
        log.info("metrics on http://%s:%d/metrics", sock[0], sock[1])
        return str(sock[0]), int(sock[1])

    def respond(self, path: str) -> tuple[int, str, bytes]:
        """Status, content type and body for a GET of ``path``."""
        path = path.split("?", 1)[0]
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path == "/healthz":
            return 200, "text/plain", b"ok\n"
        if path == "/readyz":
            ok, why = readiness(self.proxy)
            # The config hash on the second line: a rollout can see which proxies have it.
            body = f"{why}\nconfig_hash {self.proxy.stats.config_hash}\n"
            return (200 if ok else 503), "text/plain", body.encode()
        if self.page is not None and path in self.page.paths:
            return self.page.respond(path)
        return 404, "text/plain", b"not found\n"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.READ_TIMEOUT)
            parts = head.split(b"\r\n", 1)[0].split()
            if len(parts) != 3 or parts[0] not in (b"GET", b"HEAD"):
                status, ctype, body = 405, "text/plain", b"only GET\n"
            else:
                status, ctype, body = self.respond(parts[1].decode(errors="replace"))
            reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}.get(
                status, "Service Unavailable"
            )
            extra = "".join(f"{k}: {v}\r\n" for k, v in self.page.headers) if self.page else ""
            hdr = (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n{extra}"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            writer.write(hdr if parts[0] == b"HEAD" else hdr + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

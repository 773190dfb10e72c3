"""What the status page shows, as one plain document (also served as ``/status.json``): the
proxy's counters, its pools and each backend's state, rates, latency and rejoin journal, the
route tree of the config in force, and the limits hit.

Read on the proxy's event loop between two callbacks (the metrics server calls it), from the
same plain counters the Prometheus collector reads; nothing here runs per request. Rates and
latency percentiles are over the last window of at least a second (two viewers refreshing
at once share it), not since the start.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memfleet import __version__
from memfleet.backends.backend import Backend, LatencyHistogram
from memfleet.observe.stats import backend_in_flight, reconnects

if TYPE_CHECKING:
    from memfleet.observe.metrics import ProxyView

WINDOW = 1.0  # seconds: the shortest window rates are computed over


def _proxy_ops(p: ProxyView) -> int:
    st = p.stats
    return st.cmd_get + st.cmd_set + st.cmd_touch + st.cmd_flush + st.cmd_other


def percentile_ms(counts: list[int], bounds: tuple[float, ...], q: float) -> float | None:
    """The upper bound (ms) of the bucket holding the ``q`` quantile; None without samples,
    ``inf`` past the last bound."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        seen += n
        if seen >= rank and n:
            return bounds[i] * 1000 if i < len(bounds) else float("inf")
    return float("inf")


def rejoin_view(b: Backend) -> tuple[int | None, bool]:
    """(journaled keys waiting for repair, whether a flush is due instead). Reads the
    backend's ``journaled`` count (-1: a flush is due) where it has one, else the size of its
    journal; None when this build keeps none."""
    journaled = getattr(b, "journaled", None)
    if isinstance(journaled, int):
        return (None, True) if journaled < 0 else (journaled, False)
    journal = getattr(b, "_journal", None)
    keys = len(journal) if isinstance(journal, set | dict | list) else None
    return keys, bool(getattr(b, "_flush_on_rejoin", False))


def repaired(b: Backend) -> int:
    """Journaled keys settled before a rejoin: deleted there, or copied from a replica."""
    return sum(int(getattr(b, name, 0) or 0) for name in ("invalidated", "repaired"))


def backend_state(b: Backend) -> str:
    """``up``; ``failing`` (failures, not yet at the limit); ``repair`` (out of service until
    the writes it missed are repaired); ``down``."""
    keys, flush = rejoin_view(b)
    if b.down:
        return "repair" if (keys or flush) else "down"
    return "failing" if b.failures else "up"


@dataclass
class _Sample:
    taken: float
    proxy_ops: int
    errors: int
    per_backend: dict[str, tuple[int, int, list[int]]]  # requests, errors, latency counts


@dataclass
class StatusSampler:
    """Keeps the last sample, so that rates cover a window of at least :data:`WINDOW`."""

    last: _Sample | None = None
    rates: dict[str, Any] = field(default_factory=dict)

    def sample(self, p: ProxyView, backends: list[Backend]) -> dict[str, Any]:
        """Rates since the window's start: ``proxy`` ops/s, ``errors`` /s, and per backend
        (ops/s, errors/s, latency bucket counts of the window)."""
        now = time.monotonic()
        cur = _Sample(
            now,
            _proxy_ops(p),
            p.stats.protocol_errors + sum(b.errors for b in backends),
            {
                b.name: (b.requests, b.errors, list(b.latency.counts) if b.latency else [])
                for b in backends
            },
        )
        if self.last is None:
            self.last = cur
            return {}
        if now - self.last.taken < WINDOW:
            return self.rates  # none yet, or those of the window that ended last
        old, dt = self.last, max(now - self.last.taken, 1e-6)
        per: dict[str, Any] = {}
        for name, (req, err, counts) in cur.per_backend.items():
            o_req, o_err, o_counts = old.per_backend.get(name, (req, err, counts))
            if len(o_counts) != len(counts):
                o_counts = [0] * len(counts)
            per[name] = {
                "ops": max(0, req - o_req) / dt,
                "errors": max(0, err - o_err) / dt,
                "latency": [max(0, a - b) for a, b in zip(counts, o_counts, strict=True)],
            }
        self.rates = {
            "seconds": dt,
            "proxy_ops": max(0, cur.proxy_ops - old.proxy_ops) / dt,
            "errors": max(0, cur.errors - old.errors) / dt,
            "backends": per,
        }
        self.last = cur
        return self.rates


_CHILD_KEYS = ("child", "a", "b", "default")


def _labelled(prefix: str, node: dict[str, Any]) -> dict[str, Any]:
    node["label"] = prefix + node["label"]
    return node


def describe_route(spec: Any, named: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """A route spec of the config as ``{"label", "children"}`` (names of pools and named
    routes as leaves; a named route's own tree under it, once)."""
    if isinstance(spec, str):
        if spec in named and depth < 8:
            return {
                "label": f"{spec} (named route)",
                "children": [describe_route(named[spec], named, depth + 1)],
            }
        return {"label": spec, "children": []}
    if not isinstance(spec, dict) or len(spec) != 1:
        return {"label": str(spec), "children": []}
    handler, args = next(iter(spec.items()))
    if not isinstance(args, dict):
        if isinstance(args, list):
            args = {"children": args}
        elif args is None:
            args = {}
        else:
            args = {"child": args}
    children: list[dict[str, Any]] = []
    options: list[str] = []
    for key, value in args.items():
        labelled = handler == "commands" or key not in ("child", "children")
        if key in ("children", "prefixes") and isinstance(value, dict):
            for k, v in value.items():
                children.append(_labelled(f"{k}: ", describe_route(v, named, depth + 1)))
        elif isinstance(value, list):
            children += [describe_route(v, named, depth + 1) for v in value]
        elif isinstance(value, dict) or (
            isinstance(value, str) and (handler == "commands" or key in _CHILD_KEYS)
        ):
            child = describe_route(value, named, depth + 1)
            children.append(_labelled(f"{key}: ", child) if labelled else child)
        else:
            shown = str(value).lower() if isinstance(value, bool) else value
            options.append(f"{key} {shown}")
    label = handler + (f" ({', '.join(options)})" if options else "")
    return {"label": label, "children": children}


def snapshot(p: ProxyView, sampler: StatusSampler) -> dict[str, Any]:
    """The whole document the page shows."""
    from memfleet.observe.metrics import readiness, top_level_routes

    st = p.stats
    backends = p.all_backends()
    rates = sampler.sample(p, backends)
    per = rates.get("backends", {})
    ready, why = readiness(p)
    pools = []
    for pool_name, pool in p.pools.items():
        rows = []
        for b in pool.backends:
            r = per.get(b.name, {})
            counts = r.get("latency") or []
            bounds = b.latency.bounds if b.latency is not None else LatencyHistogram.BOUNDS
            keys, flush = rejoin_view(b)
            rows.append(
                {
                    "name": b.name,
                    "state": backend_state(b),
                    "failures": b.failures,
                    "failure_limit": b.options.failure_limit,
                    "requests": b.requests,
                    "ops_per_sec": r.get("ops"),
                    "errors": b.errors,
                    "errors_per_sec": r.get("errors"),
                    "failed_fast": b.failed_fast,
                    "marked_down": b.marked_down,
                    "reconnects": reconnects(b),
                    "in_flight": backend_in_flight(b),
                    "p50_ms": percentile_ms(counts, bounds, 0.5) if counts else None,
                    "p99_ms": percentile_ms(counts, bounds, 0.99) if counts else None,
                    "journal": keys,
                    "flush_pending": flush,
                    "repaired": repaired(b),
                    "flushes": getattr(b, "rejoin_flushes", None),
                }
            )
        pools.append({"name": pool_name, "backends": rows})
    routes = []
    live = {name: [b for b in r.backends()] for name, r in top_level_routes(p).items()}
    for name, spec in p.cfg.routes.items():
        reach = live.get(name, live.get("default", []))
        routes.append(
            {
                "name": name,
                "tree": describe_route(spec, dict(p.cfg.named_routes)),
                "backends": len(reach),
                "backends_up": sum(1 for b in reach if not b.down),
            }
        )
    limits = [{"limit": k, "hits": int(str(v))} for k, v in p.limit_counters.lines()]
    limits.append({"limit": "backend_queue_full", "hits": sum(b.queue_full for b in backends)})
    hits, misses = st.get_hits, st.get_misses
    return {
        "version": __version__,
        "pid": os.getpid(),
        "time": time.time(),
        "uptime_s": int(time.time() - st.started),
        "listen": p.cfg.listen,
        "ready": ready,
        "ready_reason": why,
        "connections": st.curr_connections,
        "total_connections": st.total_connections,
        "ops_per_sec": rates.get("proxy_ops"),
        "errors_per_sec": rates.get("errors"),
        "window_s": rates.get("seconds"),
        "get_hits": hits,
        "get_misses": misses,
        "hit_rate": hits / (hits + misses) if hits + misses else None,
        "protocol_errors": st.protocol_errors,
        "backend_errors": sum(b.errors for b in backends),
        "in_flight": sum(max(0, n) for n in p.client_in_flight()),
        "reloads": st.reloads,
        "reloads_refused": st.reloads_failed,
        "pools": pools,
        "routes": routes,
        "limits": limits,
    }

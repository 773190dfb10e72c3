"""``memfleet bench``: a multiprocess memcached load generator with latency percentiles.

Each worker process drives its share of the connections with non-blocking sockets and a
selector: a connection sends ``--pipeline`` requests in one write (gets and sets mixed by
``--ratio``), waits for all their replies, and sends the next batch (a closed loop, optionally
paced to ``--rate``). Every reply is parsed, so hits, misses and errors are counted exactly;
latency is measured per batch (send of the batch to its last reply byte; with ``--pipeline 1``
that is per request) into a log-bucketed histogram (2% resolution), so memory stays bounded
however long the run.

Workers report one sample per second of the run; the parent merges them into a per-second
time series (the drill plots it) and a total, and shows live progress.

Keys are ``<prefix><index>`` for ``index`` in ``0..keys-1``; the value of a key depends only on
its index, so a reader can check what it gets against what was written.

Only loopback targets are accepted: this is a tool for a fleet on this machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import multiprocessing as mp
import os
import queue as queue_mod
import random
import selectors
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import click

DEFAULT_PREFIX = "mfbench:"
RECV_SIZE = 256 * 1024
# Log buckets: bucket i holds latencies in [GROWTH**i, GROWTH**(i+1)) microseconds.
GROWTH = 1.02
_LOG_GROWTH = math.log(GROWTH)
MAX_BUCKET = int(math.log(60e6) / _LOG_GROWTH)  # one minute; anything slower is clamped


class BenchError(Exception):
    """A problem with the arguments or the target; ``str()`` is the one-line message."""


def parse_target(spec: str) -> tuple[str, int]:
    """``HOST:PORT`` of a loopback address (``localhost`` is 127.0.0.1)."""
    host, sep, port_s = spec.rpartition(":")
    if not sep or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise BenchError(f"--target: {spec!r} is not HOST:PORT")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise BenchError(f"--target: {host!r} is not a loopback address (bench stays local)")
    return host.strip("[]"), int(port_s)


def parse_ratio(spec: str) -> tuple[int, int]:
    """``get:set`` weights such as ``9:1`` (``1:0`` reads only)."""
    try:
        g, s = (int(x) for x in spec.split(":"))
    except ValueError:
        raise BenchError(f"--ratio: {spec!r} is not GET:SET (e.g. 9:1)") from None
    if g < 0 or s < 0 or g + s == 0:
        raise BenchError(f"--ratio: {spec!r} needs non-negative weights, not both 0")
    return g, s


def key_of(prefix: bytes, i: int) -> bytes:
    """The key with index ``i``."""
    return prefix + b"%d" % i


def value_of(i: int, size: int) -> bytes:
    """The value stored under key ``i`` (deterministic, no CR/LF)."""
    stem = b"%d|" % i
    return (stem * (size // len(stem) + 1))[:size]


@dataclass
class BenchConfig:
    """What a bench run does."""

    host: str
    port: int
    connections: int = 8
    pipeline: int = 1
    ratio: tuple[int, int] = (9, 1)
    keys: int = 10_000
    value_size: int = 100
    duration: float = 10.0
    processes: int = 1
    key_prefix: str = DEFAULT_PREFIX
    # Sets go to their own keys (``<set_prefix><i>``) when given: a drill keeps the keys it
    # warmed untouched so that what is lost can be counted exactly.
    set_prefix: str | None = None
    rate: float = 0.0  # total requests per second; 0: as fast as replies come
    timeout: float = 3.0  # a batch unanswered this long counts as errors, connection reset
    max_ops: int = 0  # stop after this many requests in total (0: duration only)
    seed: int = 1


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a latency."""
    us = seconds * 1e6
    if us < 1.0:
        return 0
    return min(MAX_BUCKET, int(math.log(us) / _LOG_GROWTH))


def bucket_value(b: int) -> float:
    """A latency (seconds) representing bucket ``b`` (its geometric middle)."""
    return float(GROWTH ** (b + 0.5) / 1e6)


def percentile(hist: dict[int, int], q: float) -> float | None:
    """The ``q``-th percentile (0..100) of a bucket histogram, in seconds; None if empty."""
    total = sum(hist.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q / 100.0 * total))
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= rank:
            return bucket_value(b)
    return bucket_value(max(hist))


@dataclass
class Sample:
    """Counts for one second of the run (or for the whole run, once merged)."""

    second: int = 0
    gets: int = 0
    hits: int = 0
    misses: int = 0
    get_errors: int = 0
    sets: int = 0
    set_errors: int = 0
    hist: dict[int, int] = field(default_factory=dict)

    @property
    def ops(self) -> int:
        """Requests answered (errors included)."""
        return self.gets + self.sets

    @property
    def errors(self) -> int:
        """Requests that got an error or no answer."""
        return self.get_errors + self.set_errors

    def add(self, other: Sample) -> None:
        """Merge ``other`` into this one."""
        self.gets += other.gets
        self.hits += other.hits
        self.misses += other.misses
        self.get_errors += other.get_errors
        self.sets += other.sets
        self.set_errors += other.set_errors
        for b, n in other.hist.items():
            self.hist[b] = self.hist.get(b, 0) + n

    def summary(self, seconds: float) -> dict[str, Any]:
        """The numbers a report shows (latencies in microseconds)."""

        def us(q: float) -> float | None:
            v = percentile(self.hist, q)
            return None if v is None else round(v * 1e6, 1)

        answered = self.hits + self.misses
        return {
            "ops": self.ops,
            "ops_per_sec": round(self.ops / seconds, 1) if seconds > 0 else 0.0,
            "gets": self.gets,
            "sets": self.sets,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": round(self.hits / answered, 4) if answered else None,
            "errors": self.errors,
            "get_errors": self.get_errors,
            "set_errors": self.set_errors,
            "error_rate": round(self.errors / self.ops, 4) if self.ops else 0.0,
            "p50_us": us(50),
            "p90_us": us(90),
            "p99_us": us(99),
            "p999_us": us(99.9),
        }


# --- the worker ---------------------------------------------------------------------------


class _Conn:
    """One connection with at most one batch in flight."""

    __slots__ = ("buf", "kinds", "next_at", "pos", "sent_at", "sock")

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.kinds: bytes = b""  # b"g"/b"s" per request of the batch in flight
        self.pos = 0  # replies of the batch already parsed
        self.sent_at = 0.0
        self.next_at = 0.0


def parse_replies(buf: bytearray, kinds: bytes, sample: Sample) -> tuple[int, int] | None:
    """Parse complete replies from ``buf`` for the requests ``kinds`` (b"g" get, b"s" set);
    count them in ``sample``. Returns (replies parsed, bytes consumed); None if the stream
    makes no sense (the connection must be reset)."""
    pos = 0
    n = 0
    end = len(buf)
    for k in kinds:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            break
        if k == 103:  # get
            if buf.startswith(b"VALUE ", pos):
                try:
                    length = int(buf[pos:eol].split()[3])
                except (IndexError, ValueError):
                    return None
                stop = eol + 2 + length + 2
                if end < stop + 5:
                    break
                if buf[stop : stop + 5] != b"END\r\n":
                    return None
                sample.hits += 1
                pos = stop + 5
            elif eol == pos + 3 and buf.startswith(b"END", pos):
                sample.misses += 1
                pos = eol + 2
            else:
                sample.get_errors += 1
                pos = eol + 2
            sample.gets += 1
        else:
            if not (eol == pos + 6 and buf.startswith(b"STORED", pos)):
                sample.set_errors += 1
            sample.sets += 1
            pos = eol + 2
        n += 1
    return n, pos


def _batches(cfg: BenchConfig, seed: int, count: int = 512) -> list[tuple[bytes, bytes]]:
    """Pre-built (request bytes, kinds) batches: building requests costs nothing at run time."""
    rng = random.Random(seed)
    g, s = cfg.ratio
    prefix = cfg.key_prefix.encode()
    set_prefix = (cfg.set_prefix if cfg.set_prefix is not None else cfg.key_prefix).encode()
    out = []
    for _ in range(count):
        req: list[bytes] = []
        kinds = bytearray()
        for _ in range(cfg.pipeline):
            i = rng.randrange(cfg.keys)
            if rng.random() * (g + s) < g:
                req.append(b"get " + key_of(prefix, i) + b"\r\n")
                kinds.append(103)
            else:
                v = value_of(i, cfg.value_size)
                req.append(b"set %s 0 0 %d\r\n%s\r\n" % (key_of(set_prefix, i), len(v), v))
                kinds.append(115)
        out.append((b"".join(req), bytes(kinds)))
    return out


def run_worker(
    cfg: BenchConfig,
    n_conns: int,
    seed: int,
    t0: float,
    report: Callable[[Sample], None],
    max_ops: int = 0,
) -> None:
    """Drive ``n_conns`` connections from wall-clock ``t0`` for ``cfg.duration`` seconds;
    ``report`` gets one Sample per second of the run (index from ``t0``)."""
    batches = _batches(cfg, seed)
    sel = selectors.DefaultSelector()
    conns = [_Conn() for _ in range(n_conns)]
    perf = time.perf_counter
    # Wall clock to perf_counter: every worker agrees on which second a sample belongs to.
    p0 = perf() + (t0 - time.time())
    deadline = p0 + cfg.duration
    cur = Sample(second=0)
    sent = 0
    bi = seed % len(batches)
    per_conn_interval = (
        (cfg.pipeline * n_conns / (cfg.rate / max(1, cfg.processes))) if (cfg.rate > 0) else 0.0
    )

    def flush_sample(now: float) -> None:
        nonlocal cur
        sec = int(now - p0)
        if sec != cur.second:
            report(cur)
            cur = Sample(second=sec)

    def reset(c: _Conn, errors: bool) -> None:
        if errors:
            for k in c.kinds[c.pos :]:
                if k == 103:
                    cur.gets += 1
                    cur.get_errors += 1
                else:
                    cur.sets += 1
                    cur.set_errors += 1
        c.kinds = b""
        c.pos = 0
        c.buf.clear()
        if c.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(c.sock)
            c.sock.close()
            c.sock = None

    def connect(c: _Conn) -> bool:
        try:
            s = socket.create_connection((cfg.host, cfg.port), timeout=1.0)
        except OSError:
            return False
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        c.sock = s
        sel.register(s, selectors.EVENT_READ, c)
        return True

    def send(c: _Conn, now: float) -> None:
        nonlocal sent, bi
        if c.sock is None and not connect(c):
            c.next_at = now + 0.1  # target unreachable: retry shortly, count nothing
            return
        req, kinds = batches[bi]
        bi = (bi + 1) % len(batches)
        c.kinds = kinds
        c.pos = 0
        c.sent_at = now
        sent += len(kinds)
        assert c.sock is not None
        try:
            c.sock.sendall(req)  # a batch is small; the socket buffer takes it whole
        except OSError:
            reset(c, errors=True)
            c.next_at = now + 0.1
            return
        if per_conn_interval:
            c.next_at = max(c.next_at + per_conn_interval, now - per_conn_interval)

    # Wait for the common start (workers may have been forked a little earlier or later).
    while perf() < p0:
        time.sleep(min(0.05, max(0.0, p0 - perf())))
    for i, c in enumerate(conns):
        c.next_at = p0 + (per_conn_interval * i / n_conns if per_conn_interval else 0.0)
    while True:
        now = perf()
        if now >= deadline or (max_ops and sent >= max_ops):
            break
        flush_sample(now)
        wake = deadline
        for c in conns:
            if not c.kinds:
                if c.next_at <= now:
                    send(c, now)
                if not c.kinds:
                    wake = min(wake, c.next_at)
            elif now - c.sent_at > cfg.timeout:
                reset(c, errors=True)  # no reply in time: the stream cannot be trusted
                c.next_at = now
        timeout = max(0.0, min(wake - now, 0.05))
        for skey, _mask in sel.select(timeout):
            c = skey.data
            if c.sock is None or not c.kinds:
                if c.sock is not None:
                    reset(c, errors=False)  # data nobody asked for
                continue
            try:
                data = c.sock.recv(RECV_SIZE)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                reset(c, errors=True)
                c.next_at = perf() + 0.01
                continue
            c.buf += data
            parsed = parse_replies(c.buf, c.kinds[c.pos :], cur)
            if parsed is None:
                reset(c, errors=True)
                continue
            n, used = parsed
            if used:
                del c.buf[:used]
            c.pos += n
            if c.pos == len(c.kinds):
                done = perf()
                b = bucket_of(done - c.sent_at)
                cur.hist[b] = cur.hist.get(b, 0) + len(c.kinds)
                c.kinds = b""
                c.pos = 0
                if done < deadline and c.next_at <= done:
                    send(c, done)
    # Batches still in flight at the deadline are neither counted nor errors.
    report(cur)
    for c in conns:
        if c.sock is not None:
            c.sock.close()
    sel.close()


def _worker_entry(cfg: BenchConfig, n_conns: int, seed: int, t0: float, q: Any) -> None:
    try:
        run_worker(cfg, n_conns, seed, t0, lambda s: q.put(("sample", asdict(s))),
                   max_ops=cfg.max_ops // max(1, cfg.processes))  # fmt: skip
        q.put(("done", None))
    except BaseException as exc:  # the parent reports it; a worker never hangs the run
        q.put(("failed", f"{type(exc).__name__}: {exc}"))


# --- the parent ---------------------------------------------------------------------------


@dataclass
class BenchResult:
    """A finished run: the per-second series and the total."""

    config: BenchConfig
    seconds: float
    series: list[Sample]
    total: Sample
    failures: list[str]

    def report(self) -> dict[str, Any]:
        """The JSON document ``--json`` prints."""
        cfg = self.config
        return {
            "target": f"{cfg.host}:{cfg.port}",
            "connections": cfg.connections,
            "pipeline": cfg.pipeline,
            "ratio": f"{cfg.ratio[0]}:{cfg.ratio[1]}",
            "keys": cfg.keys,
            "value_size": cfg.value_size,
            "processes": cfg.processes,
            "seconds": round(self.seconds, 3),
            **self.total.summary(self.seconds),
            "per_second": [{"second": s.second, **s.summary(1.0)} for s in self.series],
            "worker_failures": self.failures,
        }


def preload(cfg: BenchConfig, indices: range | None = None, prefix: str | None = None) -> int:
    """Store ``prefix<i>`` for every index (default: all keys), pipelined; returns how many
    were stored (``STORED``)."""
    indices = indices if indices is not None else range(cfg.keys)
    p = (prefix if prefix is not None else cfg.key_prefix).encode()
    stored = 0
    chunk = 200
    with socket.create_connection((cfg.host, cfg.port), timeout=10) as s:
        idx = list(indices)
        for lo in range(0, len(idx), chunk):
            part = idx[lo : lo + chunk]
            req = b"".join(
                b"set %s 0 0 %d\r\n%s\r\n" % (key_of(p, i), cfg.value_size,
                                              value_of(i, cfg.value_size))
                for i in part
            )  # fmt: skip
            s.sendall(req)
            buf = b""
            while buf.count(b"\r\n") < len(part):
                data = s.recv(RECV_SIZE)
                if not data:
                    raise BenchError("preload: the target closed the connection")
                buf += data
            stored += buf.count(b"STORED\r\n")
    return stored


def run(
    cfg: BenchConfig,
    on_sample: Callable[[Sample], None] | None = None,
    start_delay: float = 0.3,
) -> BenchResult:
    """Fork the workers, start them together, merge their per-second samples."""
    procs = max(1, min(cfg.processes, cfg.connections))
    cfg.processes = procs
    share = [cfg.connections // procs + (1 if i < cfg.connections % procs else 0)
             for i in range(procs)]  # fmt: skip
    ctx = mp.get_context("fork")
    q: Any = ctx.Queue()
    t0 = time.time() + start_delay
    workers = [
        ctx.Process(target=_worker_entry, args=(cfg, share[i], cfg.seed + i, t0, q), daemon=True)
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    by_second: dict[int, Sample] = {}
    failures: list[str] = []
    done = 0
    hard_deadline = time.monotonic() + start_delay + cfg.duration + cfg.timeout + 15
    try:
        while done < procs and time.monotonic() < hard_deadline:
            try:
                kind, payload = q.get(timeout=0.2)
            except queue_mod.Empty:
                if all(not w.is_alive() for w in workers) and q.empty():
                    break
                continue
            if kind == "sample":
                s = Sample(**{**payload, "hist": {int(k): v for k, v in payload["hist"].items()}})
                slot = by_second.setdefault(s.second, Sample(second=s.second))
                slot.add(s)
                if on_sample is not None:
                    on_sample(s)
            elif kind == "failed":
                failures.append(str(payload))
                done += 1
            else:
                done += 1
    finally:
        for w in workers:
            w.join(timeout=2)
            if w.is_alive():
                w.kill()
                w.join(2)
        q.close()
        q.join_thread()
    series = [by_second[k] for k in sorted(by_second)]
    total = Sample()
    for s in series:
        total.add(s)
    if failures and not total.ops:
        raise BenchError("every worker failed: " + "; ".join(failures[:3]))
    return BenchResult(cfg, cfg.duration, series, total, failures)


def default_processes() -> int:
    """One worker per CPU this process may run on."""
    return max(1, len(os.sched_getaffinity(0)))


def format_text(result: BenchResult) -> str:
    """The human-readable summary."""
    r = result.report()

    def us(v: float | None) -> str:
        return "-" if v is None else f"{v:,.0f} µs"

    hit = "-" if r["hit_rate"] is None else f"{r['hit_rate'] * 100:.2f}%"
    return "\n".join([
        f"target {r['target']}: {r['connections']} connections × pipeline {r['pipeline']}, "
        f"ratio {r['ratio']}, {r['keys']} keys of {r['value_size']} B, "
        f"{r['processes']} process(es), {r['seconds']:g}s",
        f"  ops/s     {r['ops_per_sec']:,.0f}  ({r['ops']:,} requests: {r['gets']:,} gets, "
        f"{r['sets']:,} sets)",
        f"  hit rate  {hit}  ({r['hits']:,} hits, {r['misses']:,} misses)",
        f"  errors    {r['errors']:,}  (gets {r['get_errors']:,}, sets {r['set_errors']:,})",
        f"  latency   p50 {us(r['p50_us'])}  p90 {us(r['p90_us'])}  p99 {us(r['p99_us'])}  "
        f"p99.9 {us(r['p999_us'])}",
    ] + [f"  worker failed: {f}" for f in r["worker_failures"]])  # fmt: skip


class Progress:
    """Live progress on a terminal: one line per second with the last second's numbers."""

    def __init__(self, duration: float, enabled: bool) -> None:
        self.duration = duration
        self.enabled = enabled
        self._live: Any = None
        self._seconds: dict[int, Sample] = {}

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.live import Live

            self._live = Live("starting...", console=Console(stderr=True), refresh_per_second=4)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def sample(self, s: Sample) -> None:
        """A worker's sample arrived: show the newest complete second."""
        slot = self._seconds.setdefault(s.second, Sample(second=s.second))
        slot.add(s)
        if self._live is None:
            return
        done = sorted(self._seconds)
        last = self._seconds[done[-2]] if len(done) > 1 else slot
        m = last.summary(1.0)
        hit = "-" if m["hit_rate"] is None else f"{m['hit_rate'] * 100:.1f}%"
        p99 = "-" if m["p99_us"] is None else f"{m['p99_us']:,.0f} µs"
        self._live.update(
            f"[bold]{min(s.second + 1, int(self.duration))}/{self.duration:g}s[/]  "
            f"{m['ops_per_sec']:,.0f} ops/s  hit {hit}  errors {m['errors']}  p99 {p99}"
        )


def main_bench(cfg: BenchConfig, as_json: bool, do_preload: bool) -> int:
    """``memfleet bench``: preload, run, print. Returns the exit status."""
    if do_preload:
        n = preload(cfg)
        if not as_json:
            print(f"preloaded {n:,} of {cfg.keys:,} keys", file=sys.stderr)
    with Progress(cfg.duration, enabled=sys.stderr.isatty() and not as_json) as progress:
        result = run(cfg, on_sample=progress.sample)
    if as_json:
        print(json.dumps(result.report()))
    else:
        print(format_text(result))
    return 0 if result.total.ops else 1


@click.command("bench")
@click.option("--target", required=True, help="HOST:PORT of the proxy or memcached (loopback).")
@click.option("--connections", type=click.IntRange(1, 10_000), default=8, show_default=True)
@click.option("--pipeline", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Requests per batch on a connection.")  # fmt: skip
@click.option("--ratio", default="9:1", show_default=True, help="GET:SET weights.")
@click.option("--keys", type=click.IntRange(1, 100_000_000), default=10_000, show_default=True)
@click.option("--value-size", type=click.IntRange(1, 1024 * 1024), default=100,
              show_default=True)  # fmt: skip
@click.option("--duration", type=click.FloatRange(0.5, 3600), default=10.0, show_default=True)
@click.option("--processes", type=click.IntRange(1, 256), default=None,
              help="Worker processes (default: one per CPU).")  # fmt: skip
@click.option("--rate", type=click.FloatRange(0), default=0.0,
              help="Total requests per second (0: as fast as possible).")  # fmt: skip
@click.option("--key-prefix", default=DEFAULT_PREFIX, show_default=True)
@click.option("--preload/--no-preload", default=True, show_default=True,
              help="Store every key before the run (so gets can hit).")  # fmt: skip
@click.option("--max-ops", type=click.IntRange(0), default=0,
              help="Stop after this many requests (0: duration only).")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(0.1, 60), default=3.0, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def bench_cmd(
    target: str,
    connections: int,
    pipeline: int,
    ratio: str,
    keys: int,
    value_size: int,
    duration: float,
    processes: int | None,
    rate: float,
    key_prefix: str,
    preload: bool,
    max_ops: int,
    timeout: float,
    seed: int,
    as_json: bool,
) -> None:
    """Load generator: ops/s, hit rate, latency percentiles, errors."""
    try:
        host, port = parse_target(target)
        cfg = BenchConfig(
            host=host, port=port, connections=connections, pipeline=pipeline,
            ratio=parse_ratio(ratio), keys=keys, value_size=value_size, duration=duration,
            processes=processes or default_processes(), key_prefix=key_prefix, rate=rate,
            timeout=timeout, max_ops=max_ops, seed=seed,
        )  # fmt: skip
        sys.exit(main_bench(cfg, as_json, preload))
    except (BenchError, OSError) as exc:
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(2)

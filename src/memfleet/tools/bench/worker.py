"""One worker process: its connections, each with one pipelined batch in flight, driven by a
selector from a common start time, reporting one Sample per second of the run."""

from __future__ import annotations

import contextlib
import random
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from memfleet.tools.bench.latency import bucket_of
from memfleet.tools.bench.replies import parse_replies
from memfleet.tools.bench.sample import Sample
from memfleet.tools.bench.workload import RECV_SIZE, BenchConfig, key_of, value_of


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
    batches = _batches(cfg, seed, cfg.batches)
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


def worker_entry(cfg: BenchConfig, n_conns: int, seed: int, t0: float, q: Any) -> None:
    """A worker process's main: its samples, then "done" (or "failed": why) on queue ``q``."""
    try:
        run_worker(cfg, n_conns, seed, t0, lambda s: q.put(("sample", asdict(s))),
                   max_ops=cfg.max_ops // max(1, cfg.processes))  # fmt: skip
        q.put(("done", None))
    except BaseException as exc:  # the parent reports it; a worker never hangs the run
        q.put(("failed", f"{type(exc).__name__}: {exc}"))

#!/usr/bin/env python3
"""Pipelining memcached load generator (ASCII protocol) for the memfleet benchmarks.

Every connection sends ``--depth`` requests in one ``send`` and waits for all replies before
sending the next batch (closed loop). Requests are ``get key`` or ``set key 0 0 SIZE`` with a
fixed set ratio over a preloaded key space. Prints one JSON object on stdout:
``{ops, seconds, p50_us, p99_us, errors, ...}``. Latency is measured per batch, from the send
of the batch to the arrival of its last reply byte; with ``--depth 1`` that is per request.

Speed trick: every key has a deterministic value, so the exact reply bytes of each batch are
known in advance. A batch is checked with one ``bytes`` comparison instead of parsing 16
replies in Python, which keeps the generator far cheaper per request than the proxy under
test. Only when a reply diverges does a real (slow) reply parser run.

Use ``--preload`` to store every key (through the target) before a measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import random
import selectors
import socket
import sys
import time
from array import array
from dataclasses import dataclass

KEY_FMT = b"mfbench:%08d"  # 16 bytes, same key length as the memcaslap workload
RECV_SIZE = 256 * 1024
TEMPLATES_PER_PROC = 1024
TIMEOUT_CHECK_INTERVAL = 0.1


def key_of(i: int) -> bytes:
    """Return the key with index ``i``."""
    return KEY_FMT % i


def value_of(i: int, size: int) -> bytes:
    """Return the deterministic value stored under key ``i`` (never contains CR/LF)."""
    stem = b"%08d|" % i
    return (stem * (size // len(stem) + 1))[:size]


@dataclass(frozen=True)
class Batch:
    """One pre-built pipelined batch: request bytes and the exact expected reply bytes."""

    request: bytes
    expected: bytes
    parts: tuple[bytes, ...]  # expected reply per request, only used on the slow path
    gets: int
    sets: int


def build_batches(
    n_batches: int, depth: int, n_keys: int, value_size: int, set_ratio: float, seed: int
) -> list[Batch]:
    """Build ``n_batches`` random batches with exactly ``round(set_ratio)`` sets overall."""
    rng = random.Random(seed)
    total = n_batches * depth
    n_sets = round(total * set_ratio)
    is_set = [True] * n_sets + [False] * (total - n_sets)
    rng.shuffle(is_set)
    batches: list[Batch] = []
    for b in range(n_batches):
        req: list[bytes] = []
        parts: list[bytes] = []
        gets = sets = 0
        for j in range(depth):
            i = rng.randrange(n_keys)
            key = key_of(i)
            value = value_of(i, value_size)
            if is_set[b * depth + j]:
                # Writing the same deterministic value keeps every later get predictable.
                req.append(b"set %s 0 0 %d\r\n%s\r\n" % (key, value_size, value))
                parts.append(b"STORED\r\n")
                sets += 1
            else:
                req.append(b"get %s\r\n" % key)
                parts.append(b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (key, value_size, value))
                gets += 1
        batches.append(Batch(b"".join(req), b"".join(parts), tuple(parts), gets, sets))
    return batches


def split_replies(buf: bytes | bytearray) -> list[bytes]:
    """Split complete memcached ASCII replies off ``buf`` (slow path, used on divergence).

    A get reply is any number of ``VALUE`` blocks followed by ``END``; every other reply
    (``STORED``, ``ERROR``, ``SERVER_ERROR ...``, ...) is a single line. An incomplete
    trailing reply is not returned.
    """
    replies: list[bytes] = []
    pos = 0
    n = len(buf)
    while pos < n:
        start = pos
        complete = False
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            line = bytes(buf[pos:eol])
            pos = eol + 2
            if line.startswith(b"VALUE "):
                fields = line.split()
                try:
                    length = int(fields[3])
                except (IndexError, ValueError):
                    complete = True  # garbage header: treat the line as a (bad) reply
                    break
                if pos + length + 2 > n:
                    break
                pos += length + 2
                continue
            complete = True
            break
        if not complete:
            break
        replies.append(bytes(buf[start:pos]))
    return replies


class Conn:
    """State of one client connection with at most one batch in flight."""

    __slots__ = ("batch", "buf", "dead", "idx", "pending_out", "sent_at", "slow", "sock")

    def __init__(self, sock: socket.socket, idx: int) -> None:
        self.sock = sock
        self.idx = idx
        self.batch: Batch | None = None
        self.buf = bytearray()
        self.sent_at = 0.0
        self.pending_out = b""
        self.slow = False
        self.dead = False


@dataclass
class WorkerResult:
    """What one worker process reports back to the parent."""

    ok: int
    errors: int
    gets: int
    sets: int
    batches: int
    seconds: float
    lost_connections: int
    latencies: bytes  # array('d') of batch latencies in seconds
    error_samples: list[str]


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def run_worker(
    host: str,
    port: int,
    n_conns: int,
    batches: list[Batch],
    duration: float,
    max_batches: int,
    timeout: float,
    start_at: mpc.Connection | None,
) -> WorkerResult:
    """Drive ``n_conns`` connections until ``duration`` or ``max_batches``, whichever is first."""
    sel = selectors.DefaultSelector()
    conns = [Conn(_connect(host, port, timeout), i * 7919) for i in range(n_conns)]
    if start_at is not None:
        # Connections are established before the barrier so that setup is not measured.
        start_at.send("ready")
        start_at.recv()
    latencies = array("d")
    ok = errors = gets = sets = done = lost = 0
    error_samples: list[str] = []
    n_templates = len(batches)
    perf = time.perf_counter
    t0 = perf()
    deadline = t0 + duration
    inflight = sent = 0
    next_timeout_check = t0 + TIMEOUT_CHECK_INTERVAL

    def kill(c: Conn, why: str) -> None:
        nonlocal errors, lost, inflight
        if c.dead:
            return
        c.dead = True
        lost += 1
        if c.batch is not None:
            errors += c.batch.gets + c.batch.sets
            inflight -= 1
            c.batch = None
        if len(error_samples) < 5:
            error_samples.append(why)
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(c.sock)
        c.sock.close()

    def send_next(c: Conn) -> None:
        nonlocal inflight, sent
        if sent >= max_batches:
            return
        sent += 1
        batch = batches[c.idx % n_templates]
        c.idx += 1
        c.batch = batch
        c.buf.clear()
        c.slow = False
        inflight += 1
        c.sent_at = perf()
        try:
            n = c.sock.send(batch.request)
        except OSError as exc:
            kill(c, f"send: {exc!r}")
            return
        if n < len(batch.request):
            c.pending_out = batch.request[n:]
            sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)

    def finish(c: Conn, batch: Batch, bad: int) -> None:
        nonlocal ok, errors, gets, sets, done, inflight
        now = perf()
        latencies.append(now - c.sent_at)
        errors += bad
        ok += batch.gets + batch.sets - bad
        gets += batch.gets
        sets += batch.sets
        done += 1
        inflight -= 1
        c.batch = None
        if now < deadline:
            send_next(c)

    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
        send_next(c)

    while inflight > 0:
        for skey, mask in sel.select(TIMEOUT_CHECK_INTERVAL):
            c = skey.data
            if c.dead:
                continue
            if mask & selectors.EVENT_WRITE and c.pending_out:
                try:
                    n = c.sock.send(c.pending_out)
                except BlockingIOError:
                    n = 0
                except OSError as exc:
                    kill(c, f"send: {exc!r}")
                    continue
                c.pending_out = c.pending_out[n:]
                if not c.pending_out:
                    sel.modify(c.sock, selectors.EVENT_READ, c)
            if not mask & selectors.EVENT_READ:
                continue
            try:
                data = c.sock.recv(RECV_SIZE)
            except BlockingIOError:
                continue
            except OSError as exc:
                kill(c, f"recv: {exc!r}")
                continue
            if not data:
                kill(c, "connection closed by server")
                continue
            batch = c.batch
            if batch is None:
                kill(c, "unsolicited data from server")
                continue
            # Fast path: the whole batch reply arrived in one recv and is exactly right.
            if not c.buf and data == batch.expected:
                finish(c, batch, 0)
                continue
            c.buf += data
            if not c.slow:
                if c.buf == batch.expected:
                    finish(c, batch, 0)
                    continue
                if len(c.buf) < len(batch.expected) and batch.expected.startswith(c.buf):
                    continue
                c.slow = True
            replies = split_replies(c.buf)
            if len(replies) < len(batch.parts):
                continue
            bad_replies = [g for g, e in zip(replies, batch.parts, strict=False) if g != e]
            if bad_replies and len(error_samples) < 5:
                error_samples.append(f"unexpected reply: {bad_replies[0][:120]!r}")
            if len(replies) > len(batch.parts):
                # The stream is out of sync; later replies could be attributed wrongly.
                errors += len(bad_replies)
                ok += batch.gets + batch.sets - len(bad_replies)
                c.batch = None
                inflight -= 1
                kill(c, "more replies than requests (stream out of sync)")
                continue
            finish(c, batch, len(bad_replies))
        now = perf()
        if now >= next_timeout_check:
            next_timeout_check = now + TIMEOUT_CHECK_INTERVAL
            for c in conns:
                if c.batch is not None and not c.dead and now - c.sent_at > timeout:
                    kill(c, f"no complete reply within {timeout:.1f}s")
    seconds = perf() - t0
    for c in conns:
        if not c.dead:
            sel.unregister(c.sock)
            c.sock.close()
    sel.close()
    return WorkerResult(
        ok=ok,
        errors=errors,
        gets=gets,
        sets=sets,
        batches=done,
        seconds=seconds,
        lost_connections=lost,
        latencies=latencies.tobytes(),
        error_samples=error_samples,
    )


def _worker_main(args: argparse.Namespace, n_conns: int, seed: int, pipe: mpc.Connection) -> None:
    try:
        batches = build_batches(
            TEMPLATES_PER_PROC, args.depth, args.keys, args.value_size, args.set_ratio, seed
        )
        host, port = parse_server(args.server)
        max_batches = max(1, args.max_requests // args.depth // args.procs)
        res = run_worker(
            host, port, n_conns, batches, args.duration, max_batches, args.timeout, pipe
        )
        pipe.send(res)
    except BaseException as exc:  # report everything, the parent decides what is fatal
        pipe.send(f"{type(exc).__name__}: {exc}")
    finally:
        pipe.close()


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (``q`` in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100.0 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def parse_server(spec: str) -> tuple[str, int]:
    """Parse ``host:port`` and refuse anything that is not a loopback address."""
    host, _, port_s = spec.rpartition(":")
    if host == "localhost":
        host = "127.0.0.1"
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"pipeload only talks to loopback addresses, got {host!r}")
    return host, int(port_s)


def preload(args: argparse.Namespace) -> dict[str, object]:
    """Store every key once (pipelined, 100 per send) and verify every reply."""
    host, port = parse_server(args.server)
    chunk = 100
    stored = 0
    t0 = time.perf_counter()
    deadline = t0 + args.timeout * 10
    with socket.create_connection((host, port), timeout=args.timeout) as sock:
        for lo in range(0, args.keys, chunk):
            hi = min(args.keys, lo + chunk)
            req = b"".join(
                b"set %s 0 0 %d\r\n%s\r\n"
                % (key_of(i), args.value_size, value_of(i, args.value_size))
                for i in range(lo, hi)
            )
            sock.sendall(req)
            want = b"STORED\r\n" * (hi - lo)
            buf = bytearray()
            while len(buf) < len(want):
                if time.perf_counter() > deadline:
                    raise SystemExit("preload: timed out")
                data = sock.recv(RECV_SIZE)
                if not data:
                    raise SystemExit("preload: connection closed by server")
                buf += data
                if not want.startswith(buf):
                    raise SystemExit(f"preload: unexpected reply {bytes(buf[:120])!r}")
            stored += hi - lo
        # A read-back of a few keys catches proxies that ack sets but route gets elsewhere.
        probe = sorted({0, args.keys // 2, args.keys - 1})
        for i in probe:
            sock.sendall(b"get %s\r\n" % key_of(i))
            want = b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (
                key_of(i),
                args.value_size,
                value_of(i, args.value_size),
            )
            buf = bytearray()
            while len(buf) < len(want) and want.startswith(buf):
                if time.perf_counter() > deadline:
                    raise SystemExit("preload: timed out on read-back")
                data = sock.recv(RECV_SIZE)
                if not data:
                    raise SystemExit("preload: connection closed by server")
                buf += data
            if buf != want:
                raise SystemExit(f"preload: read-back of key {i} returned {bytes(buf[:120])!r}")
    return {"preloaded": stored, "seconds": time.perf_counter() - t0}


def run_load(args: argparse.Namespace) -> dict[str, object]:
    """Fork ``--procs`` workers, start them together, merge their results."""
    procs = max(1, min(args.procs, args.connections))
    args.procs = procs
    share = [
        args.connections // procs + (1 if i < args.connections % procs else 0) for i in range(procs)
    ]
    ctx = mp.get_context("fork")
    pipes: list[mpc.Connection] = []
    workers: list[mp.process.BaseProcess] = []
    try:
        for i in range(procs):
            parent_end, child_end = ctx.Pipe()
            p = ctx.Process(
                target=_worker_main, args=(args, share[i], args.seed + i, child_end), daemon=True
            )
            p.start()
            child_end.close()
            pipes.append(parent_end)
            workers.append(p)
        setup_deadline = time.monotonic() + args.timeout * 5
        for pipe in pipes:
            if not pipe.poll(max(0.0, setup_deadline - time.monotonic())):
                raise SystemExit("pipeload: worker did not connect in time")
            msg = pipe.recv()
            if msg != "ready":
                raise SystemExit(f"pipeload: worker failed: {msg}")
        for pipe in pipes:
            pipe.send("go")
        results: list[WorkerResult] = []
        finish_deadline = time.monotonic() + args.duration + args.timeout * 3 + 5
        for pipe in pipes:
            if not pipe.poll(max(0.0, finish_deadline - time.monotonic())):
                raise SystemExit("pipeload: worker did not finish in time")
            msg = pipe.recv()
            if not isinstance(msg, WorkerResult):
                raise SystemExit(f"pipeload: worker failed: {msg}")
            results.append(msg)
    finally:
        for w in workers:
            w.join(timeout=2)
            if w.is_alive():
                w.kill()
                w.join()
    lat = array("d")
    for r in results:
        lat.frombytes(r.latencies)
    lat_sorted = sorted(lat)
    seconds = max(r.seconds for r in results)
    ok = sum(r.ok for r in results)
    samples = [s for r in results for s in r.error_samples][:5]
    return {
        "ops": ok,
        "seconds": seconds,
        "ops_per_sec": ok / seconds if seconds > 0 else 0.0,
        "p50_us": percentile(lat_sorted, 50) * 1e6 if lat_sorted else None,
        "p99_us": percentile(lat_sorted, 99) * 1e6 if lat_sorted else None,
        "errors": sum(r.errors for r in results),
        "gets": sum(r.gets for r in results),
        "sets": sum(r.sets for r in results),
        "batches": sum(r.batches for r in results),
        "lost_connections": sum(r.lost_connections for r in results),
        "depth": args.depth,
        "connections": args.connections,
        "procs": procs,
        "error_samples": samples,
    }


def default_procs() -> int:
    """One worker per CPU we may run on: more processes than CPUs only add context switches."""
    return len(os.sched_getaffinity(0))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True, help="127.0.0.1:PORT (loopback only)")
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--depth", type=int, default=16, help="requests per pipelined batch")
    p.add_argument("--duration", type=float, default=10.0, help="seconds to run")
    p.add_argument(
        "--max-requests", type=int, default=200_000_000, help="stop after this many requests"
    )
    p.add_argument("--procs", type=int, default=default_procs(), help="worker processes")
    p.add_argument("--keys", type=int, default=10_000, help="size of the key space")
    p.add_argument("--value-size", type=int, default=100)
    p.add_argument("--set-ratio", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=2.0, help="per-batch reply timeout, seconds")
    p.add_argument("--preload", action="store_true", help="store every key, verify, exit")
    args = p.parse_args(argv)
    if args.connections < 1 or args.depth < 1 or args.keys < 1 or args.duration <= 0:
        p.error("--connections, --depth, --keys and --duration must be positive")
    if not 0.0 <= args.set_ratio <= 1.0:
        p.error("--set-ratio must be within 0..1")
    parse_server(args.server)
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point: print one JSON object with the results."""
    args = parse_args(argv)
    result = preload(args) if args.preload else run_load(args)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

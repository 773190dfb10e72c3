"""``memfleet bench``: the load generator's command; the generator itself is
:mod:`memfleet.tools.bench`."""

from __future__ import annotations

import json
import os
import socket
import sys

import click

from memfleet.manpage import ManCommand
from memfleet.tools.bench.preload import preload
from memfleet.tools.bench.progress import Progress
from memfleet.tools.bench.report import format_text
from memfleet.tools.bench.runner import default_processes, run
from memfleet.tools.bench.workload import (
    DEFAULT_PREFIX,
    BenchConfig,
    BenchError,
    parse_ratio,
    parse_target,
)


def check_target(host: str, port: int, target: str, timeout: float) -> None:
    """Fail at once, naming the target, when nothing answers there."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
        raise BenchError(f"--target {target}: cannot connect: {why}") from None


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


@click.command(
    "bench", cls=ManCommand,
    examples=(
        ("memfleet bench --target 127.0.0.1:11211", "10 s of 9:1 gets and sets from one "
         "process per CPU, 8 connections each."),
        ("memfleet bench --target 127.0.0.1:11211 --connections 50 --pipeline 16 --duration 30",
         "Many clients, 16 requests in flight on each."),
        ("memfleet bench --target 127.0.0.1:11211 --rate 5000 --json", "A paced load, one "
         "JSON report (ops/s, hit rate, p50/p90/p99/p99.9, errors)."),
    ),
    exit_codes=(
        (0, "the run finished and some requests were answered"),
        (1, "no request was answered"),
        (2, "a bad option, a target that is not loopback, or nothing listening there"),
    ),
    epilog="The target must be a loopback address: bench never loads another machine.",
)  # fmt: skip
@click.option("--target", required=True, metavar="HOST:PORT",
              help="The proxy or memcached to load (a loopback address).")  # fmt: skip
@click.option("--connections", type=click.IntRange(1, 10_000), default=8, show_default=True,
              help="Connections per worker process.")  # fmt: skip
@click.option("--pipeline", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Requests per batch on a connection.")  # fmt: skip
@click.option("--ratio", default="9:1", show_default=True, help="GET:SET weights.")
@click.option("--keys", type=click.IntRange(1, 100_000_000), default=10_000, show_default=True,
              help="Distinct keys the requests pick from (uniformly).")  # fmt: skip
@click.option("--value-size", type=click.IntRange(1, 1024 * 1024), default=100,
              show_default=True, help="Bytes per value.")  # fmt: skip
@click.option("--duration", type=click.FloatRange(0.5, 3600), default=10.0, show_default=True,
              help="Seconds of load.")  # fmt: skip
@click.option("--processes", type=click.IntRange(1, 256), default=None,
              help="Worker processes.  [default: one per CPU]")  # fmt: skip
@click.option("--rate", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Total requests per second (0: as fast as possible).")  # fmt: skip
@click.option("--key-prefix", default=DEFAULT_PREFIX, show_default=True,
              help="Every key starts with it (KEY-PREFIX<i>).")  # fmt: skip
@click.option("--preload/--no-preload", default=True, show_default=True,
              help="Store every key before the run (so gets can hit).")  # fmt: skip
@click.option("--max-ops", type=click.IntRange(0), default=0, show_default=True,
              help="Stop after this many requests (0: duration only).")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(0.1, 60), default=3.0, show_default=True,
              help="Seconds a batch may wait for its replies before it counts as "
              "errors.")  # fmt: skip
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seed of the key and command choice (the same seed, the same "
              "requests).")  # fmt: skip
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
    """Load generator: ops/s, hit rate, latency percentiles and errors of a memcached-protocol
    server on this machine."""
    try:
        host, port = parse_target(target)
        check_target(host, port, target, timeout)
        cfg = BenchConfig(
            host=host, port=port, connections=connections, pipeline=pipeline,
            ratio=parse_ratio(ratio), keys=keys, value_size=value_size, duration=duration,
            processes=processes or default_processes(), key_prefix=key_prefix, rate=rate,
            timeout=timeout, max_ops=max_ops, seed=seed,
        )  # fmt: skip
        sys.exit(main_bench(cfg, as_json, preload))
    except BenchError as exc:
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # the target went away during the run
        click.echo(f"memfleet: bench against {target}: {exc.strerror or exc}", err=True)
        sys.exit(1)

"""``memfleet bench``: the load generator's command; the generator itself is
:mod:`memfleet.tools.bench`."""

from __future__ import annotations

import json
import sys

import click

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

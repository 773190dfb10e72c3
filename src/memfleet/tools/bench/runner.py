"""A whole bench run: fork the workers, start them together, merge their per-second samples."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import time
from collections.abc import Callable
from typing import Any

from memfleet.tools.bench.report import BenchResult
from memfleet.tools.bench.sample import Sample
from memfleet.tools.bench.worker import worker_entry
from memfleet.tools.bench.workload import BenchConfig, BenchError


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
        ctx.Process(target=worker_entry, args=(cfg, share[i], cfg.seed + i, t0, q), daemon=True)
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

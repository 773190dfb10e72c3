#!/usr/bin/env bash
# The performance issue's acceptance matrix in one command: CPU µs per request of memfleet
# (compiled, and its pure-Python fallback), twemproxy and direct memcached, for the `sharded`
# topology (3 backends) and `replicated-sharded` (2 replicas x 3 shards over 6 backends;
# twemproxy, which cannot replicate, shards over the same 6), non-pipelined and 16-deep
# pipelined. Prints both tables, then the four memfleet/twemproxy ratios.
#   usage: benchmarks/acceptance.sh [OUTDIR] [extra proxy_bench.py options, e.g. --runs 1]
# About 12 minutes with the defaults (3 runs x 10 s per cell).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-$here/../.venv/bin/python}
out=${1:-$(mktemp -d /tmp/memfleet-acceptance-XXXXXX)}
shift || true
mkdir -p "$out"
echo "results in $out"
"$py" "$here/proxy_bench.py" --markdown --json "$out/sharded.json" "$@" | tee "$out/sharded.txt"
"$py" "$here/proxy_bench.py" --backends 6 --proxies twemproxy,memfleet,memfleet-pure \
    --memfleet-config "$here/configs/replicated-sharded.yaml" \
    --markdown --json "$out/replicated-sharded.json" "$@" | tee "$out/replicated-sharded.txt"
"$py" - "$out" <<'PY'
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
print("\n| topology | mode | memfleet CPU µs/req | twemproxy CPU µs/req | memfleet / twemproxy |")
print("|---|---|---:|---:|---:|")
for topo in ("sharded", "replicated-sharded"):
    summary = json.loads((out / f"{topo}.json").read_text())["summary"]
    for mode in ("nonpipelined", "pipelined"):
        mf = summary.get("memfleet", {}).get(mode, {}).get("cpu_us_per_req")
        tw = summary.get("twemproxy", {}).get(mode, {}).get("cpu_us_per_req")
        ratio = f"**{mf / tw:.2f}×**" if mf and tw else "n/a"
        fmt = lambda v: f"{v:.2f}" if v else "n/a"  # noqa: E731
        print(f"| {topo} | {mode} | {fmt(mf)} | {fmt(tw)} | {ratio} |")
PY

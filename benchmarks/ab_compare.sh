#!/usr/bin/env bash
# A change on the request path, before and after: runs benchmarks/acceptance.sh alternately
# with two installs of memfleet (each its own checkout and venv), N times each, one 10-second
# run per cell (memfleet and twemproxy side by side in the same run), then prints per cell the
# median CPU µs/request of each and the median memfleet/twemproxy ratio of each.
#   usage: benchmarks/ab_compare.sh BEFORE_CHECKOUT AFTER_CHECKOUT [N=5] [OUTDIR]
# Single runs vary by about ±5% on a 2-core machine, hence interleaving and medians.
set -euo pipefail
before=$(cd "$1" && pwd)
after=$(cd "$2" && pwd)
n=${3:-5}
out=${4:-$(mktemp -d /tmp/memfleet-ab-XXXXXX)}
mkdir -p "$out"
echo "results in $out"
for i in $(seq 1 "$n"); do
    for side in before after; do
        dir=$before
        [ "$side" = after ] && dir=$after
        PYTHON="$dir/.venv/bin/python" "$dir/benchmarks/acceptance.sh" "$out/$side-$i" \
            --runs 1 --proxies twemproxy,memfleet >"$out/$side-$i.log" 2>&1
        echo "run $i $side done"
    done
done
python3 - "$out" "$n" <<'PY'
import json
import statistics
import sys
from pathlib import Path

out, n = Path(sys.argv[1]), int(sys.argv[2])
print()
print("| topology | mode | before µs/req | after µs/req | after/before | before ratio | after ratio |")
print("|---|---|---:|---:|---:|---:|---:|")
for topo in ("sharded", "replicated-sharded"):
    for mode in ("nonpipelined", "pipelined"):
        cpu: dict[str, list[float]] = {"before": [], "after": []}
        ratio: dict[str, list[float]] = {"before": [], "after": []}
        for side in cpu:
            for i in range(1, n + 1):
                path = out / f"{side}-{i}" / f"{topo}.json"
                summary = json.loads(path.read_text())["summary"] if path.exists() else {}
                if "memfleet" not in summary or "twemproxy" not in summary:
                    print(f"{side} run {i} {topo}: a target did not run (see its log)")
                    continue
                mf = summary["memfleet"][mode]["cpu_us_per_req"]
                tw = summary["twemproxy"][mode]["cpu_us_per_req"]
                cpu[side].append(mf)
                ratio[side].append(mf / tw)
        b, a = statistics.median(cpu["before"]), statistics.median(cpu["after"])
        rb, ra = statistics.median(ratio["before"]), statistics.median(ratio["after"])
        print(f"| {topo} | {mode} | {b:.2f} | {a:.2f} | {a / b:.3f} | {rb:.2f}× | {ra:.2f}× |")
PY

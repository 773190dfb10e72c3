#!/usr/bin/env bash
# How throughput scales with `memfleet proxy --workers N` (N = 1, 2) on this machine.
# Nothing is pinned: the proxy workers, 3 memcached and memcaslap share all CPUs, so this
# measures what a 2-core box gets, not a per-core ceiling. Loopback, free ports only.
#   usage: benchmarks/workers_scaling.sh [seconds]
set -euo pipefail
secs=${1:-8}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])"; }
user=(); [ "$(id -u)" -eq 0 ] && user=(-u root)
backends=()
for i in 0 1 2; do
  p=$(free_port); memcached -U 0 -t 1 -m 64 -l 127.0.0.1 -p "$p" "${user[@]}" & pids+=($!)
  backends+=("\"127.0.0.1:$p\"")
done
printf 'pools: {main: {backends: [%s]}}\nroutes: {default: main}\n' "$(IFS=,; echo "${backends[*]}")" > "$tmp/p.yaml"
printf 'key\n16 16 1\nvalue\n100 100 1\ncmd\n0 0.1\n1 0.9\n' > "$tmp/cfg"
echo "| workers | ops/s (memcaslap -T 2 -c 100, ${secs} s, 90% get) |"
echo "|---:|---:|"
for w in 1 2; do
  port=$(free_port)
  python3 -m memfleet proxy --config "$tmp/p.yaml" --listen "127.0.0.1:$port" --workers "$w" \
    --watch-interval 0 --log-level warning & proxy=$!
  for _ in $(seq 50); do (echo > /dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
  sleep 1
  tps=$(memcaslap -s "127.0.0.1:$port" -T 2 -c 100 -X 100 -t "${secs}s" -F "$tmp/cfg" 2>&1 \
        | grep -oP "TPS: \K[0-9]+" | tail -1)
  echo "| $w | $tps |"
  kill "$proxy"; wait "$proxy" 2>/dev/null || true
done

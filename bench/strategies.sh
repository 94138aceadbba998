#!/usr/bin/env bash
# p50/p99 latency per strategy with one deliberately slow backend (docs/strategies.md).
# Three `roundhouse backend` processes: two answer in 20 ms, one in 200 ms. The same
# closed-loop load (16 clients, DURATION each) runs against the balancer with each strategy.
# Usage: bench/strategies.sh [DURATION]     (default 10s)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
cargo build --release --quiet
BIN=target/release/roundhouse
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; }

"$BIN" backend --port 19301 --latency 20..20 --name fast-1 >/dev/null 2>&1 & PIDS+=($!)
"$BIN" backend --port 19302 --latency 20..20 --name fast-2 >/dev/null 2>&1 & PIDS+=($!)
"$BIN" backend --port 19303 --latency 200..200 --name slow >/dev/null 2>&1 & PIDS+=($!)
for port in 19301 19302 19303; do wait_port $port; done

echo "| strategy | p50 (ms) | p99 (ms) | req/s | share sent to the slow backend |"
echo "|---|---|---|---|---|"
for strategy in round-robin weighted least-conn p2c random ip-hash least-load; do
    # weighted: the operator knows the slow one and gives it weight 1 against 3.
    "$BIN" --listen 127.0.0.1:19300 --strategy "$strategy" --workers 16 --access-log off \
        --backend http://127.0.0.1:19301,weight=3 --backend http://127.0.0.1:19302,weight=3 \
        --backend http://127.0.0.1:19303,weight=1 >/dev/null 2>&1 &
    balancer=$!
    wait_port 19300
    # least-load needs its first load reports before the run means anything.
    sleep 2
    "$BIN" bench http://127.0.0.1:19300/work -c 16 -d "$DURATION" --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
slow = [b for b in r["balancer"]["backends"] if b["url"].endswith(":19303")][0]["requests"]
total = sum(b["requests"] for b in r["balancer"]["backends"])
print("| %s | %.0f | %.0f | %.0f | %.1f%% |" % (sys.argv[1], r["latency_ms"]["p50"], r["latency_ms"]["p99"],
      r["throughput_rps"], 100.0 * slow / max(total, 1)))
' "$strategy"
    kill "$balancer"; wait "$balancer" 2>/dev/null || true
done

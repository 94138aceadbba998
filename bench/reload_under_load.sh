#!/usr/bin/env bash
# Reload under load: `roundhouse bench` sends GET /api/users through roundhouse (each
# client on its own keep-alive connection) while a SIGHUP every second swaps the
# configuration between two versions (the api pool gains and loses a backend, the
# route's Host changes). Prints bench's report (answers by status, errors), the
# reloads the balancer counted, and its reload log.
#
#   bench/reload_under_load.sh            # 20 s, 32 connections
#   DURATION=60 CONNECTIONS=64 bench/reload_under_load.sh
#   RELOAD=0 bench/reload_under_load.sh   # the same load without any SIGHUP, to compare
#
# Ports: BASE (default 19400) for the balancer and BASE+1..BASE+4 for the backends.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-19400}
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-32}
RELOAD=${RELOAD:-1}
cargo build --release -q
bin=target/release/roundhouse
dir=$(mktemp -d)
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

for n in 1 2 3 4; do
    "$bin" backend --port $((BASE + n)) --latency 1..5 >/dev/null &
    pids+=($!)
done

# version A: api pool of one backend; version B: two, and a Host rewrite.
config() {
    local api=$1 host=$2
    cat <<TOML
listen = "127.0.0.1:$BASE"
workers = 8
queue = 1024
access_log = "off"
backends = ["http://127.0.0.1:$((BASE + 1))", "http://127.0.0.1:$((BASE + 2))"]

[[pools]]
name = "api"
backends = [$api]

[[routes]]
prefix = "/api"
pool = "api"
strip_prefix = true
$host
TOML
}
config "\"http://127.0.0.1:$((BASE + 3))\"" "" >"$dir/a.toml"
config "\"http://127.0.0.1:$((BASE + 3))\", \"http://127.0.0.1:$((BASE + 4))\"" 'host = "api.internal"' >"$dir/b.toml"
cp "$dir/a.toml" "$dir/live.toml"

"$bin" --config "$dir/live.toml" >"$dir/out.log" 2>"$dir/err.log" &
balancer=$!
pids+=("$balancer")
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$BASE/stats" >/dev/null && break
    sleep 0.1
done

"$bin" bench "http://127.0.0.1:$BASE/api/users" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 10s >"$dir/bench.txt" 2>/dev/null &
load=$!
for second in $(seq $((DURATION - 1))); do
    sleep 1
    ((RELOAD)) || continue
    if ((second % 2)); then cp "$dir/b.toml" "$dir/live.toml"; else cp "$dir/a.toml" "$dir/live.toml"; fi
    kill -HUP "$balancer"
done
wait "$load"

if ((RELOAD)); then every="a SIGHUP every second"; else every="no SIGHUP"; fi
echo "== roundhouse bench, $DURATION s, $CONNECTIONS clients, $every"
cat "$dir/bench.txt"
echo "== /metrics after the run"
curl -s "http://127.0.0.1:$BASE/metrics" | grep -E '^roundhouse_(config_reloads_total|requests_total\{route="/api")'
echo "== the balancer's log (first lines)"
head -4 "$dir/err.log"
echo "reload lines in the log: $(grep -c 'reloaded ' "$dir/err.log" || true)"

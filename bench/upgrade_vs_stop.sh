#!/usr/bin/env bash
# The walkthrough's step 9 twice: `roundhouse bench -c 16 -d 15s` against the default
# balancer (4 workers, simulated backends 200..800 ms), and about 5 s into the run
# first a SIGINT (Ctrl-C: stop), then, on a fresh balancer, a SIGUSR2 (upgrade in
# place). Prints each run's answers, errors and refused connections; docs/concepts.md,
# "Restarting without dropping a connection", has the numbers.
#
#   bench/upgrade_vs_stop.sh
#   AT=8 DURATION=20 bench/upgrade_vs_stop.sh
#
# Ports: BASE (default 19500) for the balancer and BASE+1..BASE+3 for the backends.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-19500}
DURATION=${DURATION:-15}
AT=${AT:-5}
cargo build --release -q
bin=$PWD/target/release/roundhouse
dir=$(mktemp -d)
# After an upgrade the serving process is not our child: /stats names it.
serving_pid() {
    curl -s --max-time 2 "http://127.0.0.1:$BASE/stats" | sed -n 's/^ *"pid": \([0-9]*\),*$/\1/p'
}
stop_serving() {
    local pid
    pid=$(serving_pid || true)
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
}
cleanup() {
    stop_serving
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

for signal in INT USR2; do
    "$bin" --access-log off --listen "127.0.0.1:$BASE" --sim-base-port $((BASE + 1)) \
        >"$dir/balancer-$signal" 2>&1 &
    balancer=$!
    for _ in $(seq 50); do
        curl -s -o /dev/null "http://127.0.0.1:$BASE/stats" && break
        sleep 0.1
    done
    "$bin" bench "http://127.0.0.1:$BASE/" -c 16 -d "${DURATION}s" >"$dir/bench-$signal" 2>&1 &
    bench=$!
    sleep "$AT"
    kill "-$signal" "$balancer"
    wait "$bench"
    wait "$balancer" || true
    echo "=== SIG$signal at ${AT}s"
    grep -E '^roundhouse: (stopping|upgraded|drained|drain)' "$dir/balancer-$signal" || true
    grep -E '^(requests|answers|errors) ' "$dir/bench-$signal"
    stop_serving
done

#!/usr/bin/env bash
# Throughput of the cache's HIT path against the MISS path, measured in the same run on
# the same machine, reported as a ratio (absolute numbers depend on the machine).
#
#   cargo build --release && bench/cache_hit_vs_miss.sh
#   FRONT=epoll bench/cache_hit_vs_miss.sh     # the same with the event-loop front
#
# MISS: `--cache` off, every request goes through the queue, a worker and a simulated
#       backend answering at once (--sim-latency 0), so this is the proxy's own cost.
# HIT:  `--cache` on, the same URL made cacheable with ?cache=60: after the first
#       request every answer comes from the cache on the connection thread.
# HIT+LOG: as HIT, with the access log written to a file, to show what logging costs.
# Each configuration runs ROUNDS times, alternating, to spread out noise from other load.
set -euo pipefail

BIN=${BIN:-target/release/roundhouse}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
FRONT=${FRONT:-threads}
URL_PATH='/hello?cache=60'

command -v wrk >/dev/null || { echo "needs wrk (apt-get install -y wrk)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 2; }

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

# run LABEL FLAGS... : starts a balancer, loads it with wrk, stops it; prints requests/s.
run() {
    local label=$1
    shift
    local out="$workdir/$label.out"
    "$BIN" --listen 127.0.0.1:0 --front "$FRONT" --sim-base-port 0 --sim-backends 3 --sim-latency 0 \
        --workers 4 --queue 1024 "$@" >"$out" 2>/dev/null &
    local pid=$!
    local addr=""
    for _ in $(seq 100); do
        addr=$(sed -n 's|^roundhouse listening on http://||p' "$out" | head -1)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "roundhouse did not start" >&2; kill "$pid"; exit 1; }
    curl -s -o /dev/null "http://$addr$URL_PATH"
    local rps
    rps=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "http://$addr$URL_PATH" |
        awk '/^Requests\/sec/ {print $2}')
    kill -TERM "$pid"
    wait "$pid" || true
    echo "$rps"
}

declare -A total
for label in miss hit hit_log; do total[$label]=0; done
for round in $(seq "$ROUNDS"); do
    miss=$(run miss --access-log off)
    hit=$(run hit --access-log off --cache)
    hit_log=$(run hit_log --access-log "$workdir/access.log" --cache)
    echo "round $round: MISS $miss req/s, HIT $hit req/s, HIT with access log $hit_log req/s"
    total[miss]=$(awk -v a="${total[miss]}" -v b="$miss" 'BEGIN {print a + b}')
    total[hit]=$(awk -v a="${total[hit]}" -v b="$hit" 'BEGIN {print a + b}')
    total[hit_log]=$(awk -v a="${total[hit_log]}" -v b="$hit_log" 'BEGIN {print a + b}')
done
awk -v miss="${total[miss]}" -v hit="${total[hit]}" -v hit_log="${total[hit_log]}" -v rounds="$ROUNDS" 'BEGIN {
    printf "mean: MISS %.0f req/s, HIT %.0f req/s, HIT with access log %.0f req/s\n", miss / rounds, hit / rounds, hit_log / rounds
    printf "HIT/MISS throughput ratio: %.2f; access log keeps %.0f%% of HIT throughput\n", hit / miss, 100 * hit_log / hit
}'
echo "access log lines written: $(wc -l <"$workdir/access.log")"

#!/usr/bin/env bash
# Two checks of roundhouse against what theory says it should do (issue 11):
#
# 1. Slow backends: with the simulated backends (200..800 ms, so 0.5 s on average),
#    64 clients and N workers, throughput is bounded by N / 0.5 s (the workers) and by
#    64 / 0.5 s (the clients, Little's law). --workers 4 should reach >= 0.98 x 8 req/s,
#    --workers 64 >= 0.95 x 128 req/s. wrk runs with --timeout 30s: with 4 workers a
#    request waits about 8 s in the queue, which wrk's default 2 s would count as an error.
# 2. Memory: 2,000 concurrent keep-alive clients (one thread each) against fast backends:
#    RSS should stay <= 64 MiB with zero errors. Reports peak threads and RSS.
#
#   bench/bounds.sh            # both checks, about 90 s
#   bench/bounds.sh --record   # also append the results to bench/RESULTS.md
#
# Environment: BENCH_PORT_BASE (default 9100; uses BASE+401..BASE+405), DURATION (20).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BASE="${BENCH_PORT_BASE:-9100}"
DURATION="${DURATION:-20}"
RECORD=0
[ "${1:-}" = "--record" ] && RECORD=1

SCRIPT=bounds.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
command -v wrk >/dev/null || bench_install wrk
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

ports_free $(seq $((BASE + 401)) $((BASE + 405)))

echo "bounds.sh: building roundhouse (release)" >&2
(cd "$ROOT" && cargo build --release --quiet)
BIN="$ROOT/target/release/roundhouse"
quiet_flags=()
help="$("$BIN" serve --help 2>&1)"
if grep -q -- '--no-access-log' <<<"$help"; then
    quiet_flags=(--no-access-log)
elif grep -q -- '--access-log' <<<"$help"; then
    quiet_flags=(--access-log off)
fi

stop() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# wrk's requests/s, socket errors + non-2xx answers.
wrk_summary() {
    awk '/^Requests\/sec:/ {rps = $2}
         /Socket errors:/ {gsub(/,/, ""); errors += $4 + $6 + $8 + $10}
         /Non-2xx or 3xx responses:/ {errors += $5}
         END {printf "%s %d\n", rps, errors}'
}

RESULTS="$RUN/results.md"
{
    echo "### bounds.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $(uname -srm), $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg). roundhouse $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)."
    echo
    echo "Slow backends (simulated, 200..800 ms), 64 clients, ${DURATION} s, wrk -t1 --timeout 30s:"
    echo
    echo "| workers | bound req/s | target | measured req/s | ratio | errors | verdict |"
    echo "|---|---|---|---|---|---|---|"
} >"$RESULTS"

port=$((BASE + 401))
for workers in 4 64; do
    bound=$((workers < 64 ? workers * 2 : 128))
    target=$([ "$workers" -eq 4 ] && echo 0.98 || echo 0.95)
    RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$port" --workers "$workers" --queue 64 \
        --sim-backends 3 --sim-base-port 0 --sim-latency 200..800 "${quiet_flags[@]}" \
        >"$RUN/slow-$workers.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_listening "$port"
    echo "bounds.sh: --workers $workers, 64 clients, ${DURATION} s" >&2
    out=$(wrk -t1 -c64 -d"${DURATION}s" --timeout 30s "http://127.0.0.1:$port/" 2>&1) || true
    read -r rps errors <<<"$(wrk_summary <<<"$out")"
    awk -v w="$workers" -v b="$bound" -v t="$target" -v r="$rps" -v e="$errors" 'BEGIN {
        ratio = r / b
        printf "| %d | %d | >= %.2f x | %.2f | %.3f | %d | %s |\n", w, b, t, r, ratio, e,
            (ratio >= t && e == 0) ? "met" : "missed"
    }' >>"$RESULTS"
    stop "$pid"
    port=$((port + 1))
done

# Memory: three fast simulated backends as their own processes, so the balancer's RSS
# and thread count are its own.
backend_ports=()
for number in 1 2 3; do
    RUST_LOG=warn "$BIN" backend --port "$port" --latency 0..1 >"$RUN/backend-$number.log" 2>&1 &
    PIDS+=($!)
    backend_ports+=("$port")
    port=$((port + 1))
done
for backend in "${backend_ports[@]}"; do wait_listening "$backend"; done
RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$port" --workers 4 --queue 4096 --max-connections 4096 \
    --backend "http://127.0.0.1:${backend_ports[0]}" --backend "http://127.0.0.1:${backend_ports[1]}" \
    --backend "http://127.0.0.1:${backend_ports[2]}" "${quiet_flags[@]}" >"$RUN/memory.log" 2>&1 &
pid=$!
PIDS+=("$pid")
wait_listening "$port"
echo "bounds.sh: 2000 keep-alive clients, ${DURATION} s" >&2
wrk -t1 -c2000 -d"${DURATION}s" --timeout 30s "http://127.0.0.1:$port/" >"$RUN/wrk-memory.txt" 2>&1 &
wrk_pid=$!
peak_threads=0
peak_rss=0
while kill -0 "$wrk_pid" 2>/dev/null; do
    read -r threads rss <<<"$(awk '/^Threads:/ {t = $2} /^VmRSS:/ {r = $2} END {print t + 0, r + 0}' /proc/"$pid"/status)"
    [ "$threads" -gt "$peak_threads" ] && peak_threads=$threads
    [ "$rss" -gt "$peak_rss" ] && peak_rss=$rss
    sleep 0.5
done
wait "$wrk_pid" || true
hwm=$(awk '/^VmHWM:/ {print $2}' /proc/"$pid"/status)
read -r rps errors <<<"$(wrk_summary <"$RUN/wrk-memory.txt")"
{
    echo
    echo "Memory: 2,000 concurrent keep-alive clients (wrk -t1 -c2000, ${DURATION} s, --max-connections 4096, --queue 4096), fast simulated backends in their own processes:"
    echo
    echo "| peak threads | peak RSS MiB (sampled) | VmHWM MiB | req/s | errors | verdict (RSS <= 64 MiB, 0 errors) |"
    echo "|---|---|---|---|---|---|"
    awk -v t="$peak_threads" -v r="$peak_rss" -v h="$hwm" -v q="$rps" -v e="$errors" 'BEGIN {
        printf "| %d | %.1f | %.1f | %.0f | %d | %s |\n", t, r / 1024, h / 1024, q, e,
            (h / 1024 <= 64 && e == 0) ? "met" : "missed"
    }'
} >>"$RESULTS"

cat "$RESULTS"
if [ "$RECORD" -eq 1 ]; then
    { echo; cat "$RESULTS"; } >>"$ROOT/bench/RESULTS.md"
    echo "bounds.sh: appended to bench/RESULTS.md" >&2
fi

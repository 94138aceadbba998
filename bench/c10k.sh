#!/usr/bin/env bash
# The C10k experiment (issue 14): the threaded front and the event-loop front at 100,
# 1,000 and 10,000 concurrent keep-alive connections, then the bounds the event loop
# must hold, the descriptor limit, and slowloris.
#
#   bench/c10k.sh                    # everything, about 6 minutes
#   bench/c10k.sh --plot docs/img    # also draw docs/img/c10k-*.svg from the table
#   bench/c10k.sh --record           # also append the tables to bench/RESULTS.md
#
# 1. Both fronts, wrk -t1 -cN for N in 100 1000 10000 (--timeout 30s), fast backends in
#    their own process (one nginx worker answering a 2-byte 200 on three ports, as in
#    compare.sh), so the proxy's own cost is what is measured; a fresh balancer for each
#    run (VmHWM is per process). Columns: peak threads (sampled every 0.5 s), VmHWM,
#    req/s, errors, CPU us/req and context switches per request (perf stat, all the
#    balancer's threads, when perf works here), next to what the model predicts
#    (docs/concepts.md, "I/O multiplexing and the C10k problem").
# 2. Bounds of --front epoll at 10,000 connections: every one answered (0 errors), RSS
#    <= 64 MiB, threads <= workers + 8.
# 3. Under prlimit --nofile=1024:1024 with the simulated backends in the same process:
#    wrk -c900 gets no error from either front; wrk -c1100 gets 503s for the clients
#    past what the limit holds, and no socket error (a reset is a read error to wrk).
# 4. Slowloris against --front epoll: wrk -c32's p99 with and without 5,000 slowloris
#    connections (examples/slowloris.rs), 3 interleaved rounds, medians; within 2x.
#
# Environment: BENCH_PORT_BASE (default 9100; uses BASE+501..BASE+520), DURATION (10),
# WORKERS (4).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BASE="${BENCH_PORT_BASE:-9100}"
DURATION="${DURATION:-10}"
WORKERS="${WORKERS:-4}"
RECORD=0
PLOT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --record) RECORD=1 ;;
        --plot) PLOT="$2"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "c10k.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

export PATH="$PATH:/usr/sbin:/sbin"
SCRIPT=c10k.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v prlimit >/dev/null || missing+=(util-linux)
bench_install "${missing[@]}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt 10500 ]; then
    echo "c10k.sh: the descriptor limit is $(ulimit -n); 10,000 connections need about 10,500 in the balancer and in wrk (ulimit -Hn)" >&2
fi

ports_free $(seq $((BASE + 501)) $((BASE + 520)))
stop() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

echo "c10k.sh: building roundhouse and the slowloris example (release)" >&2
(cd "$ROOT" && cargo build --release --quiet --bin roundhouse --example slowloris --example c10k_plot)
BIN="$ROOT/target/release/roundhouse"
SLOWLORIS="$ROOT/target/release/examples/slowloris"
PERF=0
if perf stat -e context-switches -x, -o /dev/null -- true >/dev/null 2>&1; then PERF=1; fi
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { sed 's/.*) //' /proc/"$1"/stat | awk '{print $12 + $13}'; }

# wrk's "requests rps p99_ms errors socket_errors".
parse_wrk() {
    awk "$WRK_MS"'
        $1 == "99%" { p99 = ms($2) }
        / requests in / { requests = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Socket errors:/ { gsub(/,/, ""); sockets += $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { non2xx += $5 }
        END { printf "%d %.0f %.3f %d %d\n", requests, rps, p99, sockets + non2xx, sockets }
    '
}

# Runs wrk against PORT while sampling PID's threads and RSS; prints
# "requests rps p99 errors socket_errors peak_threads hwm_kib cpu_us_per_req ctx_per_req".
measure() {
    local pid=$1 port=$2 connections=$3 out ctx=-1 cpu_before cpu_after
    local wrk=(wrk -t1 -c"$connections" -d"${DURATION}s" --timeout 30s --latency "http://127.0.0.1:$port/")
    cpu_before=$(cpu_ticks "$pid")
    if [ $PERF -eq 1 ]; then
        perf stat -e context-switches -x, -o "$RUN/perf.txt" -p "$pid" -- "${wrk[@]}" >"$RUN/wrk.txt" 2>&1 &
    else
        "${wrk[@]}" >"$RUN/wrk.txt" 2>&1 &
    fi
    local runner=$! peak=0 threads
    while kill -0 "$runner" 2>/dev/null; do
        threads=$(awk '/^Threads:/ {print $2}' /proc/"$pid"/status 2>/dev/null || echo 0)
        [ "${threads:-0}" -gt "$peak" ] && peak=$threads
        sleep 0.5
    done
    wait "$runner" || true
    cpu_after=$(cpu_ticks "$pid")
    [ $PERF -eq 1 ] && ctx=$(awk -F, '$3 == "context-switches" {print $1 + 0}' "$RUN/perf.txt")
    local hwm
    hwm=$(awk '/^VmHWM:/ {print $2}' /proc/"$pid"/status)
    read -r requests rps p99 errors sockets <<<"$(parse_wrk <"$RUN/wrk.txt")"
    [ "${requests:-0}" -gt 0 ] || requests=1
    awk -v n="$requests" -v rps="$rps" -v p99="$p99" -v e="$errors" -v s="$sockets" -v t="$peak" \
        -v h="$hwm" -v cpu=$((cpu_after - cpu_before)) -v tck="$CLK_TCK" -v ctx="${ctx:--1}" 'BEGIN {
        printf "%d %s %s %d %d %d %d %.1f %.2f\n", n, rps, p99, e, s, t, h, cpu * 1e6 / tck / n, (ctx >= 0 ? ctx / n : -1)
    }'
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
backend_ports=($((BASE + 501)) $((BASE + 502)) $((BASE + 503)))
sed -e "s/127\.0\.0\.1:9101/127.0.0.1:${backend_ports[0]}/g; s/127\.0\.0\.1:9102/127.0.0.1:${backend_ports[1]}/g" \
    -e "s/127\.0\.0\.1:9103/127.0.0.1:${backend_ports[2]}/g" "$ROOT/bench/nginx-backends.conf" >"$RUN/nginx-backends.conf"
nginx -p "$RUN" -c "$RUN/nginx-backends.conf" -g 'daemon off;' >"$RUN/backends.log" 2>&1 &
PIDS+=($!)
for backend in "${backend_ports[@]}"; do wait_listening "$backend"; done
BACKEND_FLAGS=()
for backend in "${backend_ports[@]}"; do BACKEND_FLAGS+=(--backend "http://127.0.0.1:$backend"); done

start_balancer() {
    local front=$1 port=$2
    shift 2
    RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$port" --front "$front" --workers "$WORKERS" \
        --queue 16384 --max-connections 16384 --access-log off "$@" >"$RUN/balancer-$front-$port.log" 2>&1 &
    BALANCER=$!
    PIDS+=("$BALANCER")
    wait_listening "$port"
}

# ---------------------------------------------------------------- 1. the experiment
echo "front connections requests rps p99_ms errors socket_errors threads hwm_kib cpu_us ctx_per_req" >"$RUN/c10k.tsv"
balancer_port=$((BASE + 510))
for connections in 100 1000 10000; do
    for front in threads epoll; do
        start_balancer "$front" "$balancer_port" "${BACKEND_FLAGS[@]}"
        # One short warm-up, so the backend connections and the first threads exist.
        wrk -t1 -c16 -d1s "http://127.0.0.1:$balancer_port/" >/dev/null 2>&1 || true
        echo "c10k.sh: --front $front, $connections connections, ${DURATION} s" >&2
        echo "$front $connections $(measure "$BALANCER" "$balancer_port" "$connections")" >>"$RUN/c10k.tsv"
        stop "$BALANCER"
        balancer_port=$((balancer_port + 1))
    done
done

# ---------------------------------------------------------------- 3. descriptor limit
limit_rows=()
for front in threads epoll; do
    RUST_LOG=warn prlimit --nofile=1024:1024 -- "$BIN" serve --listen "127.0.0.1:$balancer_port" \
        --front "$front" --workers "$WORKERS" --queue 4096 --max-connections 4096 --access-log off \
        --sim-backends 3 --sim-base-port 0 --sim-latency 0..1 >"$RUN/limit-$front.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_listening "$balancer_port"
    holds=$(grep -o 'holds [0-9]* client connections' "$RUN/limit-$front.log" | grep -o '[0-9]*' || echo "?")
    for connections in 900 1100; do
        echo "c10k.sh: --front $front under 1,024 descriptors, $connections connections" >&2
        out=$(wrk -t1 -c"$connections" -d5s --timeout 30s "http://127.0.0.1:$balancer_port/" 2>&1) || true
        read -r requests rps _ errors sockets <<<"$(parse_wrk <<<"$out")"
        non2xx=$((errors - sockets))
        limit_rows+=("$front $holds $connections $requests $non2xx $sockets")
    done
    stop "$pid"
    balancer_port=$((balancer_port + 1))
done

# ---------------------------------------------------------------- 4. slowloris
start_balancer epoll "$balancer_port" "${BACKEND_FLAGS[@]}"
slow_pid=$BALANCER
base_p99s=()
attack_p99s=()
for round in 1 2 3; do
    echo "c10k.sh: slowloris round $round: without" >&2
    out=$(wrk -t1 -c32 -d"${DURATION}s" --latency "http://127.0.0.1:$balancer_port/" 2>&1) || true
    base_p99s+=("$(parse_wrk <<<"$out" | cut -d' ' -f3)")
    "$SLOWLORIS" "127.0.0.1:$balancer_port" 5000 $((DURATION + 10)) 2>"$RUN/slowloris.log" &
    loris=$!
    PIDS+=("$loris")
    until grep -q "connections open" "$RUN/slowloris.log" 2>/dev/null; do sleep 0.2; done
    echo "c10k.sh: slowloris round $round: with $(grep -o '[0-9]* connections open' "$RUN/slowloris.log")" >&2
    out=$(wrk -t1 -c32 -d"${DURATION}s" --latency "http://127.0.0.1:$balancer_port/" 2>&1) || true
    attack_p99s+=("$(parse_wrk <<<"$out" | cut -d' ' -f3)")
    attack_errors=$(parse_wrk <<<"$out" | cut -d' ' -f4)
    stop "$loris"
done
stop "$slow_pid"
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
base_p99=$(median "${base_p99s[@]}")
attack_p99=$(median "${attack_p99s[@]}")
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- the tables
RESULTS="$RUN/results.md"
{
    echo "### c10k.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $(uname -srm), $(nproc) cores, load average before/after: $LOAD_BEFORE / $LOAD_AFTER. roundhouse $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown), --workers $WORKERS, wrk -t1 --timeout 30s, ${DURATION} s per run, backends: one nginx worker on three ports (bench/nginx-backends.conf)."
    echo
    echo "| front | connections | threads (predicted) | threads | VmHWM MiB (predicted) | VmHWM MiB | req/s | errors | CPU us/req | ctx/req |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    awk -v w="$WORKERS" 'NR > 1 {
        # The model (docs/concepts.md): a thread and about 24 KiB (touched stack, read
        # buffer, kernel-visible state) per connection for threads; a few hundred bytes
        # per connection and a fixed handful of threads for the loop. 8 MiB of base.
        threads = ($1 == "threads") ? $2 + w + 6 : w + 6
        rss = ($1 == "threads") ? 8 + $2 * 24 / 1024 : 8 + $2 * 1 / 1024
        printf "| %s | %d | %d | %d | %.0f | %.1f | %.0f | %d | %.1f | %.2f |\n", $1, $2, threads, $8, rss, $9 / 1024, $4, $6, $10, $11
    }' "$RUN/c10k.tsv"
    echo
    awk -v w="$WORKERS" '$1 == "epoll" && $2 == 10000 {
        ok = ($6 == 0 && $9 / 1024 <= 64 && $8 <= w + 8)
        printf "Bounds of --front epoll at 10,000 connections: errors %d (0), VmHWM %.1f MiB (<= 64), threads %d (<= %d): %s.\n", $6, $9 / 1024, $8, w + 8, ok ? "met" : "missed"
    }' "$RUN/c10k.tsv"
    echo
    echo "Under prlimit --nofile=1024:1024, simulated backends in the same process, wrk -t1 5 s:"
    echo
    echo "| front | connections the limit holds | wrk connections | requests | 503s | socket errors (resets, refusals) | verdict |"
    echo "|---|---|---|---|---|---|---|"
    for row in "${limit_rows[@]}"; do
        read -r front holds connections requests non2xx sockets <<<"$row"
        if [ "$connections" -le 900 ]; then
            verdict=$([ "$non2xx" -eq 0 ] && [ "$sockets" -eq 0 ] && echo "met (all answered)" || echo missed)
        else
            verdict=$([ "$non2xx" -gt 0 ] && [ "$sockets" -eq 0 ] && echo "met (503s, no reset)" || echo missed)
        fi
        echo "| $front | $holds | $connections | $requests | $non2xx | $sockets | $verdict |"
    done
    echo
    awk -v b="$base_p99" -v a="$attack_p99" -v e="${attack_errors:-0}" -v bs="${base_p99s[*]}" -v as="${attack_p99s[*]}" 'BEGIN {
        printf "Slowloris, --front epoll: wrk -c32 p99 %.2f ms without, %.2f ms with 5,000 slowloris connections (rounds: %s / %s): %.2fx (<= 2x): %s.\n", b, a, bs, as, a / b, (a <= 2 * b) ? "met" : "missed"
    }'
} >"$RESULTS"
cat "$RESULTS"
KEEP="$ROOT/target/bench/c10k-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$KEEP"
cp "$RUN"/results.md "$RUN"/c10k.tsv "$RUN"/*.log "$KEEP"/ 2>/dev/null || true
echo "c10k.sh: raw outputs in ${KEEP#"$ROOT"/}" >&2
if [ -n "$PLOT" ]; then
    "$ROOT/target/release/examples/c10k_plot" "$RUN/c10k.tsv" "$PLOT" "$WORKERS"
    cp "$RUN/c10k.tsv" "$PLOT/c10k.tsv"
fi
if [ "$RECORD" -eq 1 ]; then
    { echo; cat "$RESULTS"; } >>"$ROOT/bench/RESULTS.md"
    echo "c10k.sh: appended to bench/RESULTS.md" >&2
fi

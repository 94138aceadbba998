#!/usr/bin/env bash
# roundhouse next to nginx and HAProxy, on the same backends, measured by the same wrk.
#
#   bench/compare.sh                  # 5 s runs, 3 interleaved rounds (about 3-4 minutes)
#   bench/compare.sh --long           # 10 s runs
#   bench/compare.sh --baseline REV   # also measure roundhouse built from git revision REV
#                                     # (repeat for several; targets are named REV-wN)
#   bench/compare.sh --record         # also append the table to bench/RESULTS.md
#   bench/compare.sh --only "roundhouse-w4 REV-w4"   # fewer targets (nginx always runs)
#
# What it does: installs nginx, HAProxy and wrk from Debian's packages if missing;
# starts three fast backends (one nginx worker answering a 2-byte 200 on three ports);
# in front of them nginx (1 worker, upstream keepalive), HAProxy (1 thread, http-reuse)
# and roundhouse (release build, --workers 4 and 16, each with the threaded front
# (roundhouse-wN) and the event-loop front (roundhouse-epoll-wN, --front epoll), queue as
# large as the connection count, access log off when the build has one); then runs wrk -t1 at 32 and 256
# connections against each, several rounds, the order of targets rotating each round
# so no target always runs first (or right after the same neighbour). Judge medians:
# on a shared machine single runs swing widely.
#
# Columns: req/s and latency from wrk; errors = socket errors + non-2xx/3xx answers,
# summed over rounds; served = req/s x mean latency (Little's law: how many connections
# had a request in progress on average; wrk does not report connections it never got an
# answer on); CPU us/req = the proxy process's utime+stime from /proc/PID/stat over the
# run, divided by the requests; ctx/req = context switches of all its threads per
# request (perf stat -e context-switches, when perf works here); RSS = resident memory
# after the run.
#
# Environment: BENCH_PORT_BASE (default 9100; ports BASE+1..BASE+3 for backends,
# BASE+101 nginx, BASE+201 HAProxy, BASE+301.. roundhouse), DURATION, ROUNDS,
# CONNECTIONS ("32 256"), WORKERS ("4 16").
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${DURATION:-5}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-32 256}"
WORKERS="${WORKERS:-4 16}"
BASE="${BENCH_PORT_BASE:-9100}"
BASELINE=""
RECORD=0
ONLY=
while [ $# -gt 0 ]; do
    case "$1" in
        --long) DURATION=10 ;;
        --duration) DURATION="$2"; shift ;;
        --rounds) ROUNDS="$2"; shift ;;
        --baseline) BASELINE="${BASELINE:+$BASELINE }$2"; shift ;;
        --record) RECORD=1 ;;
        --only) ONLY="$2"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

# ---------------------------------------------------------------- tools
SCRIPT=compare.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v wrk >/dev/null || missing+=(wrk)
bench_install "${missing[@]}"
export PATH="$PATH:/usr/sbin:/sbin"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------- ports and configs
B1=$((BASE + 1)); B2=$((BASE + 2)); B3=$((BASE + 3))
NGINX_PORT=$((BASE + 101)); HAPROXY_PORT=$((BASE + 201)); ROUNDHOUSE_PORT=$((BASE + 301))
ports_free $B1 $B2 $B3 $NGINX_PORT $HAPROXY_PORT $(seq $ROUNDHOUSE_PORT $((ROUNDHOUSE_PORT + 20)))
rewrite_ports() {
    sed -e "s/127\.0\.0\.1:9101/127.0.0.1:$B1/g; s/127\.0\.0\.1:9102/127.0.0.1:$B2/g" \
        -e "s/127\.0\.0\.1:9103/127.0.0.1:$B3/g; s/127\.0\.0\.1:9201/127.0.0.1:$NGINX_PORT/g" \
        -e "s/127\.0\.0\.1:9301/127.0.0.1:$HAPROXY_PORT/g" "$1" >"$2"
}
rewrite_ports "$ROOT/bench/nginx-backends.conf" "$RUN/nginx-backends.conf"
rewrite_ports "$ROOT/bench/nginx-proxy-w1.conf" "$RUN/nginx-proxy-w1.conf"
rewrite_ports "$ROOT/bench/haproxy-t1.cfg" "$RUN/haproxy-t1.cfg"

# ---------------------------------------------------------------- builds
echo "compare.sh: building roundhouse (release)" >&2
(cd "$ROOT" && cargo build --release --quiet)
BIN="$ROOT/target/release/roundhouse"
declare -A BASELINE_BIN
for rev in $BASELINE; do
    echo "compare.sh: building roundhouse at $rev (release)" >&2
    mkdir -p "$RUN/src-$rev"
    git -C "$ROOT" archive "$rev" | tar -x -C "$RUN/src-$rev"
    # One target directory for all revisions: only the roundhouse crate is rebuilt.
    CARGO_TARGET_DIR="$ROOT/target/bench-baseline" cargo build --release --quiet \
        --manifest-path "$RUN/src-$rev/Cargo.toml"
    cp "$ROOT/target/bench-baseline/release/roundhouse" "$RUN/roundhouse-$rev"
    BASELINE_BIN[$rev]="$RUN/roundhouse-$rev"
done

# ---------------------------------------------------------------- start everything
declare -A PORT_OF PID_OF
TARGETS=()
# Whether to measure a target: all by default, else nginx (the reference) and --only's.
want() { [ -z "$ONLY" ] || [ "$1" = nginx ] || [[ " $ONLY " == *" $1 "* ]]; }

nginx -p "$RUN" -c "$RUN/nginx-backends.conf" -g 'daemon off;' >"$RUN/backends.log" 2>&1 &
PIDS+=($!); PID_OF[direct]=$!
wait_listening $B1; wait_listening $B2; wait_listening $B3

nginx -p "$RUN" -c "$RUN/nginx-proxy-w1.conf" -g 'daemon off;' >"$RUN/nginx.log" 2>&1 &
PIDS+=($!); PID_OF[nginx]=$!; PORT_OF[nginx]=$NGINX_PORT; TARGETS+=(nginx)

if want haproxy; then
    haproxy -db -f "$RUN/haproxy-t1.cfg" >"$RUN/haproxy.log" 2>&1 &
    PIDS+=($!); PID_OF[haproxy]=$!; PORT_OF[haproxy]=$HAPROXY_PORT; TARGETS+=(haproxy)
fi

max_connections=0
for c in $CONNECTIONS; do [ "$c" -gt $max_connections ] && max_connections=$c; done
start_roundhouse() {
    local name=$1 bin=$2 workers=$3 port=$4 front=${5:-threads}
    want "$name" || return 0
    local flags=(serve --listen "127.0.0.1:$port" --workers "$workers"
        --queue $((max_connections > 64 ? max_connections : 64))
        --max-connections $((max_connections + 64))
        --backend "http://127.0.0.1:$B1" --backend "http://127.0.0.1:$B2" --backend "http://127.0.0.1:$B3")
    # Logging each request would measure the terminal, not the proxy.
    local help
    help="$("$bin" serve --help 2>&1)"
    if grep -q -- '--no-access-log' <<<"$help"; then
        flags+=(--no-access-log)
    elif grep -q -- '--access-log' <<<"$help"; then
        flags+=(--access-log off)
    fi
    if [ "$front" != threads ]; then
        grep -q -- '--front' <<<"$help" || return 0
        flags+=(--front "$front")
    fi
    RUST_LOG=warn "$bin" "${flags[@]}" >"$RUN/$name.log" 2>&1 &
    PIDS+=($!); PID_OF[$name]=$!; PORT_OF[$name]=$port; TARGETS+=("$name")
}
port=$ROUNDHOUSE_PORT
for workers in $WORKERS; do
    start_roundhouse "roundhouse-w$workers" "$BIN" "$workers" $port
    port=$((port + 1))
    start_roundhouse "roundhouse-epoll-w$workers" "$BIN" "$workers" $port epoll
    port=$((port + 1))
done
for rev in $BASELINE; do
    for workers in $WORKERS; do
        start_roundhouse "$rev-w$workers" "${BASELINE_BIN[$rev]}" "$workers" $port
        port=$((port + 1))
    done
done
# The backends measured directly: the ceiling no proxy can pass.
if want direct; then PORT_OF[direct]=$B1; TARGETS+=(direct); fi
for target in "${TARGETS[@]}"; do wait_listening "${PORT_OF[$target]}"; done

# ---------------------------------------------------------------- measuring
CLK_TCK=$(getconf CLK_TCK)

# All processes of a target: the process and its children (nginx's master and worker),
# found once, after warm-up, by their parent PID in /proc/*/stat.
declare -A FAMILY_OF
find_family() {
    local parent=$1 stat line rest
    echo "$parent"
    for stat in /proc/[0-9]*/stat; do
        read -r line <"$stat" 2>/dev/null || continue
        rest=${line##*) }
        set -- $rest
        if [ "$2" = "$parent" ]; then echo "${stat//[^0-9]/}"; fi
    done
}
family() { echo "${FAMILY_OF[$1]:-$1}"; }
cpu_ticks() {
    local total=0 pid fields
    for pid in $(family "$1"); do
        # Fields after the command name (which may hold spaces): utime and stime are
        # the 12th and 13th.
        fields=$(sed 's/.*) //' /proc/"$pid"/stat 2>/dev/null) || continue
        total=$((total + $(awk '{print $12 + $13}' <<<"$fields")))
    done
    echo $total
}
# perf stat counts the switches of threads that start and end during the run (a
# connection thread per connection); /proc/PID/task/* would miss those that ended.
PERF=0
if perf stat -e context-switches -x, -o /dev/null -- true >/dev/null 2>&1; then PERF=1; fi
rss_kib() {
    local pid
    for pid in $(family "$1"); do cat /proc/"$pid"/status 2>/dev/null || true; done |
        awk '/^VmRSS:/ {sum += $2} END {print sum + 0}'
}

# wrk's numbers as "requests rps p50_ms p99_ms avg_ms errors".
parse_wrk() {
    awk "$WRK_MS"'
        $1 == "Latency" && avg == "" { avg = ms($2) }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        / requests in / { requests = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Socket errors:/ { gsub(/,/, ""); errors += $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { errors += $5 }
        END { printf "%d %.0f %.3f %.3f %.3f %d\n", requests, rps, p50, p99, avg, errors }
    '
}

measure() {
    local target=$1 connections=$2 round=$3 duration=$4
    local pid=${PID_OF[$target]} port=${PORT_OF[$target]}
    local cpu_before cpu_after out ctx=-1 wrk=(wrk -t1 -c"$connections" -d"${duration}s" --latency)
    cpu_before=$(cpu_ticks "$pid")
    if [ $PERF -eq 1 ]; then
        local pids
        pids=$(family "$pid" | tr ' \n' ',,' | sed 's/,*$//')
        out=$(perf stat -e context-switches -x, -o "$RUN/perf.txt" -p "$pids" -- \
            "${wrk[@]}" "http://127.0.0.1:$port/" 2>&1) || true
        ctx=$(awk -F, '$3 == "context-switches" {print $1 + 0}' "$RUN/perf.txt")
    else
        out=$("${wrk[@]}" "http://127.0.0.1:$port/" 2>&1) || true
    fi
    cpu_after=$(cpu_ticks "$pid")
    echo "$out" >"$RUN/wrk-$target-c$connections-r$round.txt"
    read -r requests rps p50 p99 avg errors <<<"$(parse_wrk <<<"$out")"
    [ "${requests:-0}" -gt 0 ] || requests=1
    awk -v t="$target" -v c="$connections" -v r="$round" -v n="$requests" -v rps="$rps" \
        -v p50="$p50" -v p99="$p99" -v avg="$avg" -v e="$errors" \
        -v cpu=$((cpu_after - cpu_before)) -v tck="$CLK_TCK" -v ctx="${ctx:--1}" \
        -v rss="$(rss_kib "$pid")" 'BEGIN {
            printf "%s %s %s %s %s %s %s %s %s %.2f %.3f %.1f\n", t, c, r, n, rps, p50, p99, avg, e,
                cpu * 1e6 / tck / n, (ctx >= 0 ? ctx / n : -1), rss / 1024
        }' >>"$RUN/data.txt"
    local detail=""
    [ "$errors" -eq 0 ] || detail=" ($(grep -E 'Socket errors|Non-2xx' <<<"$out" | tr -s ' \n' ' '))"
    printf '  %-16s c=%-4s round %s: %8.0f req/s  p99 %6.2f ms  errors %s%s\n' \
        "$target" "$connections" "$round" "$rps" "$p99" "$errors" "$detail" >&2
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "compare.sh: warming up (1 s each)" >&2
for target in "${TARGETS[@]}"; do
    wrk -t1 -c"$max_connections" -d1s "http://127.0.0.1:${PORT_OF[$target]}/" >/dev/null 2>&1 || true
done
for target in "${TARGETS[@]}"; do
    FAMILY_OF[${PID_OF[$target]}]="$(find_family "${PID_OF[$target]}")"
done
echo "compare.sh: ${ROUNDS} rounds of ${DURATION} s runs" >&2
: >"$RUN/data.txt"
count=${#TARGETS[@]}
for ((round = 1; round <= ROUNDS; round++)); do
    for connections in $CONNECTIONS; do
        for ((step = 0; step < count; step++)); do
            target=${TARGETS[$(((step + round - 1) % count))]}
            measure "$target" "$connections" "$round" "$DURATION"
            sleep 0.5
        done
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- the table
version_of() { "$@" 2>&1 | head -n 1 | sed 's/ - https.*//'; }
{
    echo "### compare.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $(uname -srm), $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); load average before/after: $LOAD_BEFORE / $LOAD_AFTER."
    echo "Tools: $(version_of nginx -v), $(version_of haproxy -v), $(version_of wrk -v | cut -d' ' -f1-2), $(version_of rustc -V)."
    echo "roundhouse: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)${BASELINE:+, baselines: $BASELINE}. wrk -t1, ${DURATION} s per run, medians of $ROUNDS interleaved rounds; errors summed."
    echo
    echo "| target | conns | req/s | x nginx | p50 ms | p99 ms | p99 x nginx | errors | served | CPU us/req | ctx/req | RSS MiB |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    awk -v order="${TARGETS[*]}" -v conns="$CONNECTIONS" '
        function median(list,    n, values, i, j, swap) {
            n = split(list, values, " ")
            for (i = 2; i <= n; i++)
                for (j = i; j > 1 && values[j - 1] + 0 > values[j] + 0; j--) {
                    swap = values[j]; values[j] = values[j - 1]; values[j - 1] = swap
                }
            return n % 2 ? values[(n + 1) / 2] : (values[n / 2] + values[n / 2 + 1]) / 2
        }
        {
            key = $1 SUBSEP $2
            rps[key] = rps[key] " " $5; p50[key] = p50[key] " " $6; p99[key] = p99[key] " " $7
            avg[key] = avg[key] " " $8; errors[key] += $9; cpu[key] = cpu[key] " " $10
            ctx[key] = ctx[key] " " $11; rss[key] = rss[key] " " $12
        }
        END {
            nt = split(order, targets, " "); nc = split(conns, cs, " ")
            for (ci = 1; ci <= nc; ci++) {
                c = cs[ci]; base = "nginx" SUBSEP c
                base_rps = median(rps[base]); base_p99 = median(p99[base])
                for (ti = 1; ti <= nt; ti++) {
                    key = targets[ti] SUBSEP c
                    if (!(key in rps)) continue
                    r = median(rps[key]); p = median(p99[key])
                    served = r * median(avg[key]) / 1000
                    name = targets[ti] == "direct" ? "backend direct" : targets[ti]
                    printf "| %s | %d | %.0f | %.2f | %.2f | %.2f | %.2f | %d | %.0f/%d | %.1f | %.2f | %.1f |\n",
                        name, c, r, (base_rps > 0 ? r / base_rps : 0), median(p50[key]), p,
                        (base_p99 > 0 ? p / base_p99 : 0), errors[key], served, c,
                        median(cpu[key]), median(ctx[key]), median(rss[key])
                }
            }
        }
    ' "$RUN/data.txt"
    echo
    echo "Targets for roundhouse (issue 11): >= 0.8x nginx req/s, p99 <= 2x nginx, 0 errors, every connection served, <= 15 CPU us/req."
    echo "Targets for roundhouse-epoll-w4 (issue 14): >= 0.9x nginx req/s at 256 connections and >= 0.8x at 32, ahead of roundhouse-w4 at both, p99 <= 1.5x nginx, 0 errors, ctx/req <= 1.2."
} | tee "$RUN/table.md"

if [ "$RECORD" -eq 1 ]; then
    { echo; cat "$RUN/table.md"; } >>"$ROOT/bench/RESULTS.md"
    echo "compare.sh: appended to bench/RESULTS.md" >&2
fi
# Keep the table and every raw wrk output for a closer look.
KEEP="$ROOT/target/bench/compare-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$KEEP"
cp "$RUN"/table.md "$RUN"/data.txt "$RUN"/wrk-*.txt "$RUN"/*.log "$KEEP"/ 2>/dev/null || true
echo "compare.sh: raw outputs in ${KEEP#"$ROOT"/}" >&2

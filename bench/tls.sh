#!/usr/bin/env bash
# HTTPS next to nginx, with the same certificate, in the same run (issue 19).
#
#   bench/tls.sh               # 5 s runs, 3 interleaved rounds (about 2.5 minutes)
#   bench/tls.sh --rounds 5
#
# Two measures, each with wrk -t1 -c32 against nginx (1 worker, and 2 workers: one per
# core, as roundhouse's connection threads spread over both) and roundhouse
# (--workers 4) with each front: threads (a handshake on each connection's thread),
# epoll with one event loop and with two (`--front-threads 2`; the loops run the
# handshakes and all record encryption themselves), all terminating TLS in front of the
# same three fast nginx backends:
#   - HTTPS requests/s on kept-alive connections (one handshake per connection, then
#     only record encryption: the steady cost of TLS);
#   - handshakes/s: every request on a new connection (`Connection: close`), so each
#     one pays a full handshake (TLS 1.3, ECDHE + an ECDSA P-256 signature; neither
#     side resumes sessions);
#   - sequential handshakes/s: `openssl s_time -new`, one connection at a time and no
#     request, so only the handshake's latency counts, not how it spreads over cores.
# Prints the median of the rounds and the ratios roundhouse/nginx for each. The
# certificate is made by `roundhouse cert --self-signed` (ECDSA P-256).
#
# Environment: BENCH_PORT_BASE (default 9800), DURATION, ROUNDS, CONNECTIONS (32).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${DURATION:-5}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-32}"
BASE="${BENCH_PORT_BASE:-9800}"
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift ;;
        --duration) DURATION="$2"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "tls.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

SCRIPT=tls.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
bench_install "${missing[@]}"
export PATH="$PATH:/usr/sbin:/sbin"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

B1=$((BASE + 1)); B2=$((BASE + 2)); B3=$((BASE + 3))
NGINX_PORT=$((BASE + 102)); NGINX2_PORT=$((BASE + 103)); ROUNDHOUSE_PORT=$((BASE + 301))
EPOLL_PORT=$((BASE + 302)); EPOLL2_PORT=$((BASE + 303))
ports_free $B1 $B2 $B3 $NGINX_PORT $NGINX2_PORT $ROUNDHOUSE_PORT $EPOLL_PORT $EPOLL2_PORT

echo "tls.sh: building roundhouse (release)" >&2
(cd "$ROOT" && cargo build --release --quiet)
BIN="$ROOT/target/release/roundhouse"
"$BIN" cert --self-signed --out "$RUN/cert" >/dev/null
CERT="$RUN/cert/cert.pem"; KEY="$RUN/cert/key.pem"

rewrite() {
    sed -e "s/127\.0\.0\.1:9101/127.0.0.1:$B1/g; s/127\.0\.0\.1:9102/127.0.0.1:$B2/g" \
        -e "s/127\.0\.0\.1:9103/127.0.0.1:$B3/g; s/127\.0\.0\.1:9202/127.0.0.1:$NGINX_PORT/g" \
        -e "s#ssl_certificate CERT;#ssl_certificate $CERT;#; s#ssl_certificate_key KEY;#ssl_certificate_key $KEY;#" \
        "$1" >"$2"
}
rewrite "$ROOT/bench/nginx-backends.conf" "$RUN/nginx-backends.conf"
rewrite "$ROOT/bench/nginx-tls-w1.conf" "$RUN/nginx-tls-w1.conf"
sed -e 's/^worker_processes 1;/worker_processes 2;/; s/nginx-tls-w1/nginx-tls-w2/g' \
    -e "s/127\.0\.0\.1:$NGINX_PORT /127.0.0.1:$NGINX2_PORT /; s/ nt_/ nt2_/g" \
    "$RUN/nginx-tls-w1.conf" >"$RUN/nginx-tls-w2.conf"

nginx -p "$RUN" -c "$RUN/nginx-backends.conf" -g 'daemon off;' >"$RUN/backends.log" 2>&1 &
PIDS+=($!)
nginx -p "$RUN" -c "$RUN/nginx-tls-w1.conf" -g 'daemon off;' >"$RUN/nginx.log" 2>&1 &
PIDS+=($!)
nginx -p "$RUN" -c "$RUN/nginx-tls-w2.conf" -g 'daemon off;' >"$RUN/nginx2.log" 2>&1 &
PIDS+=($!)
start_roundhouse() {
    local name=$1 port=$2
    shift 2
    RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$port" --workers 4 \
        --queue 256 --max-connections 1024 --access-log off \
        --tls-cert "$CERT" --tls-key "$KEY" "$@" \
        --backend "http://127.0.0.1:$B1" --backend "http://127.0.0.1:$B2" --backend "http://127.0.0.1:$B3" \
        >"$RUN/$name.log" 2>&1 &
    PIDS+=($!)
}
start_roundhouse roundhouse "$ROUNDHOUSE_PORT"
start_roundhouse roundhouse-epoll "$EPOLL_PORT" --front epoll
start_roundhouse roundhouse-epoll2 "$EPOLL2_PORT" --front epoll --front-threads 2
for port in $B1 $B2 $B3 $NGINX_PORT $NGINX2_PORT $ROUNDHOUSE_PORT $EPOLL_PORT $EPOLL2_PORT; do
    wait_listening "$port"
done

declare -A PORT_OF=([nginx]=$NGINX_PORT [nginx-w2]=$NGINX2_PORT [roundhouse]=$ROUNDHOUSE_PORT
    [roundhouse-epoll]=$EPOLL_PORT [roundhouse-epoll2]=$EPOLL2_PORT)
OURS=(roundhouse roundhouse-epoll roundhouse-epoll2)
TARGETS=(nginx nginx-w2 "${OURS[@]}")
# Requests per second from one wrk run; a run with errors is reported and kept.
run() {
    local target=$1 mode=$2 out
    local args=(-t1 -c"$CONNECTIONS" -d"${DURATION}s")
    if [ "$mode" = sequential ]; then
        # "N connections in T real seconds": N / T.
        # A failed connection makes s_time exit 1 after its count: reported, and the
        # count kept (a failing target then shows as slow, not as a dead script).
        { openssl s_time -connect "127.0.0.1:${PORT_OF[$target]}" -new -time "$DURATION" 2>/dev/null ||
            echo "tls.sh: $target sequential: a connection failed" >&2; } |
            awk '/connections in [0-9.]+ real seconds/ {printf "%.0f\n", $1 / $4}'
        return
    fi
    [ "$mode" = handshakes ] && args+=(-H "Connection: close")
    out=$(wrk "${args[@]}" "https://127.0.0.1:${PORT_OF[$target]}/")
    if grep -q -E "Socket errors|Non-2xx" <<<"$out"; then
        echo "tls.sh: $target $mode: $(grep -E 'Socket errors|Non-2xx' <<<"$out" | tr -s ' ')" >&2
    fi
    awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# Warm-up: connections, caches, the first handshakes.
for target in "${TARGETS[@]}"; do
    wrk -t1 -c4 -d1s "https://127.0.0.1:${PORT_OF[$target]}/" >/dev/null
done
declare -A RESULTS
for round in $(seq 1 "$ROUNDS"); do
    # The order rotates each round, so no target always runs first.
    shift_by=$(((round - 1) % ${#TARGETS[@]}))
    order=("${TARGETS[@]:shift_by}" "${TARGETS[@]:0:shift_by}")
    for mode in requests handshakes sequential; do
        for target in "${order[@]}"; do
            rps=$(run "$target" "$mode")
            echo "tls.sh: round $round, $mode, $target: $rps/s" >&2
            RESULTS[$target-$mode]="${RESULTS[$target-$mode]:-} $rps"
        done
    done
done

echo
echo "HTTPS, wrk -t1 -c$CONNECTIONS, ${DURATION}s runs, median of $ROUNDS rounds ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
printf '%-34s %-18s %10s %10s %10s %8s %8s\n' "measure" "roundhouse" "nginx 1 w" "nginx 2 w" "ours" "vs 1 w" "vs 2 w"
for mode in requests handshakes sequential; do
    med() { tr ' ' '\n' <<<"${RESULTS[$1-$mode]}" | grep . | median; }
    one=$(med nginx); two=$(med nginx-w2)
    label="requests/s (kept-alive)"
    [ "$mode" = handshakes ] && label="handshakes/s (Connection: close)"
    [ "$mode" = sequential ] && label="handshakes/s (s_time, one at once)"
    for name in "${OURS[@]}"; do
        ours=$(med "$name")
        variant="--front threads"
        [ "$name" = roundhouse-epoll ] && variant="--front epoll"
        [ "$name" = roundhouse-epoll2 ] && variant="epoll, 2 loops"
        printf '%-34s %-18s %10.0f %10.0f %10.0f %8.2f %8.2f\n' "$label" "$variant" "$one" "$two" "$ours" \
            "$(awk -v a="$ours" -v b="$one" 'BEGIN {print a / b}')" "$(awk -v a="$ours" -v b="$two" 'BEGIN {print a / b}')"
    done
done

#!/usr/bin/env bash
# L4 versus L7 with keep-alive clients (docs/l4.md): three simulated HTTP backends,
# `roundhouse tcp` and `roundhouse serve` in front of them, both round-robin, and
# CLIENTS clients that each send REQUESTS requests over ONE keep-alive connection
# (one curl invocation with many URLs reuses its connection). Prints which backend
# answered each client's requests, and the totals per backend.
#
# Usage: scripts/l4_vs_l7.sh [path/to/roundhouse]   (default: target/release/roundhouse)
# Ports: BASE_PORT+1..3 backends, BASE_PORT+10 tcp, BASE_PORT+20 serve (BASE_PORT=19100).
set -euo pipefail

BIN=${1:-target/release/roundhouse}
CLIENTS=${CLIENTS:-4}
REQUESTS=${REQUESTS:-100}
BASE_PORT=${BASE_PORT:-19100}
export RUST_LOG=warn

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT

backends_tcp=()
backends_http=()
for n in 1 2 3; do
    port=$((BASE_PORT + n))
    "$BIN" backend --port "$port" --latency 1..3 >/dev/null 2>&1 &
    pids+=($!)
    backends_tcp+=(--backend "127.0.0.1:$port")
    backends_http+=(--backend "http://127.0.0.1:$port")
done
"$BIN" tcp --listen "127.0.0.1:$((BASE_PORT + 10))" "${backends_tcp[@]}" >/dev/null 2>&1 &
pids+=($!)
"$BIN" serve --listen "127.0.0.1:$((BASE_PORT + 20))" "${backends_http[@]}" >/dev/null 2>&1 &
pids+=($!)
for port in $((BASE_PORT + 1)) $((BASE_PORT + 2)) $((BASE_PORT + 3)) $((BASE_PORT + 10)) $((BASE_PORT + 20)); do
    until curl -s -o /dev/null "http://127.0.0.1:$port/health"; do sleep 0.1; done
done

# The health polls above went through nothing but the backends themselves, so the
# counts below are the clients' requests only.
measure() {
    local name=$1 base=$2 out
    out=$(mktemp -d)
    local clients=()
    for c in $(seq "$CLIENTS"); do
        urls=()
        for _ in $(seq "$REQUESTS"); do urls+=("$base/hello"); done
        curl -s "${urls[@]}" | grep -o '"backend": *"[^"]*"' | sed 's/.*"\(backend-[0-9]*\)"/\1/' >"$out/$c" &
        clients+=($!)
    done
    wait "${clients[@]}"
    echo "== $name"
    for c in $(seq "$CLIENTS"); do
        echo "client $c: $(sort "$out/$c" | uniq -c | awk '{printf "%s %s  ", $2, $1}')"
    done
    echo "total:    $(cat "$out"/* | sort | uniq -c | awk '{printf "%s %s  ", $2, $1}')"
    rm -r "$out"
}

measure "L4: roundhouse tcp (each connection pinned to one backend)" "http://127.0.0.1:$((BASE_PORT + 10))"
measure "L7: roundhouse serve (each request balanced)" "http://127.0.0.1:$((BASE_PORT + 20))"

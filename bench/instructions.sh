#!/usr/bin/env bash
# Instructions per forwarded request, counted by callgrind: a number that does not move
# with the load of a shared machine (wall-clock benchmarks do), for comparing two builds.
#
#   bench/instructions.sh                      # the release build of this checkout
#   bench/instructions.sh BIN [BIN...]         # these binaries
#   bench/instructions.sh --baseline REV       # this checkout and the build of REV
#
# Each binary runs under callgrind twice, serving N1 and then N2 keep-alive GETs
# (python's http.client, one connection) in front of a simulated backend that answers
# at once; (instructions(N2) - instructions(N1)) / (N2 - N1) leaves start-up and
# shutdown out. Every thread of the proxy is counted; the backend and the client are not.
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-300} N2=${N2:-1300}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
BINS=()
if [ "${1:-}" = --baseline ]; then
    rev=$2
    cargo build --release --quiet
    BINS+=("$PWD/target/release/roundhouse")
    work=$(mktemp -d)
    git archive "$rev" | tar -x -C "$work"
    CARGO_TARGET_DIR="$PWD/target/bench-baseline" cargo build --release --quiet --manifest-path "$work/Cargo.toml"
    cp target/bench-baseline/release/roundhouse "target/roundhouse-$rev"
    BINS+=("$PWD/target/roundhouse-$rev")
    rm -rf "$work"
elif [ $# -gt 0 ]; then
    BINS=("$@")
else
    cargo build --release --quiet
    BINS=("$PWD/target/release/roundhouse")
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

count() {
    local bin=$1 n=$2 backend=$3 port out
    port=$(free_port)
    out=$(mktemp -d)
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.%p" "$bin" --listen "127.0.0.1:$port" \
        --backend "http://127.0.0.1:$backend" --workers 2 --access-log off --health-interval 0s \
        >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    python3 - "$port" "$n" <<'PY'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
connection = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    connection.request("GET", "/x", headers={"Host": "bench"})
    response = connection.getresponse()
    response.read()
    assert response.status == 200, response.status
PY
    kill -INT "$pid"
    wait "$pid" 2>/dev/null || true
    grep -h '^summary:' "$out"/cg.* | awk '{ total += $2 } END { print total }'
    rm -rf "$out"
}

backend_port=$(free_port)
"${BINS[0]}" backend --port "$backend_port" --latency 0..0 >/dev/null 2>&1 &
backend=$!
trap 'kill $backend 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$backend_port") 2>/dev/null && break; sleep 0.1; done
printf '| binary | instructions per request |\n|---|---|\n'
for bin in "${BINS[@]}"; do
    low=$(count "$bin" "$N1" "$backend_port")
    high=$(count "$bin" "$N2" "$backend_port")
    printf '| %s | %d |\n' "$(basename "$bin")" $(( (high - low) / (N2 - N1) ))
done

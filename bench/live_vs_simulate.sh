#!/bin/bash
# The balancer against the simulator, at small scale (docs/simulate.md, walkthrough step).
#
# N single-server backends (`roundhouse backend --latency-dist exp:MEAN --servers 1`),
# the live balancer in front, and open-loop Poisson arrivals at λ·N/MEAN per second
# (examples/poisson_load.rs). For each strategy it prints the live latency and what
# `roundhouse simulate` predicts for the same N and λ, in milliseconds.
#
# Usage: bench/live_vs_simulate.sh   (env: LOAD=0.7 MEAN=20 REQUESTS=6000 BASE_PORT=19100
#        STRATEGIES="random round-robin p2c least-conn")
# Sleeping threads are the service: on a busy machine they wake late, the effective
# load rises, and the live figures drift up. Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
LOAD=${LOAD:-0.7}
MEAN=${MEAN:-20}
N=4
REQUESTS=${REQUESTS:-6000}
BASE_PORT=${BASE_PORT:-19100}
STRATEGIES=${STRATEGIES:-"random round-robin p2c least-conn"}
cargo build --release --quiet --bin roundhouse --example poisson_load
BIN=./target/release/roundhouse
LOADGEN=./target/release/examples/poisson_load
RATE=$(awk "BEGIN { print $LOAD * $N * 1000 / $MEAN }")

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
backends=()
for i in $(seq 1 $N); do
    port=$((BASE_PORT + i))
    $BIN backend --port $port --latency-dist exp:$MEAN --servers 1 > /dev/null &
    pids+=($!)
    backends+=(--backend http://127.0.0.1:$port)
done

for strategy in $STRATEGIES; do
    predicted=$($BIN simulate --strategy $strategy --backends $N --load $LOAD --requests 2000000 --json |
        awk -v mean=$MEAN '/"mean"/ { print $2 * mean; exit }' | tr -d ,)
    $BIN serve --listen 127.0.0.1:$BASE_PORT "${backends[@]}" --strategy $strategy \
        --workers 64 --queue 1024 --health-interval 0 > /dev/null 2>&1 &
    balancer=$!
    # Wait until the balancer answers (no fixed sleep).
    for _ in $(seq 1 100); do
        curl -s -o /dev/null http://127.0.0.1:$BASE_PORT/stats && break
        sleep 0.1
    done
    echo "== $strategy: N=$N, λ=$LOAD, service mean $MEAN ms; simulate predicts mean ${predicted} ms"
    $LOADGEN http://127.0.0.1:$BASE_PORT/work $RATE $REQUESTS
    kill $balancer
    wait $balancer 2>/dev/null || true
done

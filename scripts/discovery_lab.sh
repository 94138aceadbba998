#!/usr/bin/env bash
# Several hosts on one machine, for docs/discovery.md: a network namespace per host,
# each cabled (a veth pair) to one virtual switch (a bridge), all on one private /24.
# `up` starts a three-member etcd cluster, three backends that register themselves,
# and two balancers that follow them; `down` stops every process it started and
# removes every namespace, cable and route it made. Needs root and iproute2.
#
# Usage: sudo scripts/discovery_lab.sh up|down|status [path/to/roundhouse]
#   (default binary: target/release/roundhouse)
# Hosts (LAB_NET defaults to 10.213.100):
#   etcd1..3 .11-.13   lb1..2 .21-.22   web1..3 .31-.33   this machine .1
# LAB (default rhlab) names the namespaces (LAB-etcd1, ...); LAB_DIR (default
# /tmp/LAB) holds etcd's data, every log and the PIDs. TTL is the backends'
# --register-ttl (default 5s). Inside each namespace the ports are fixed (2379, 2380,
# 9000, 8080): every host has its own network stack, so nothing else can hold them.
set -euo pipefail

ACTION=${1:-}
BIN=${2:-target/release/roundhouse}
LAB=${LAB:-rhlab}
NET=${LAB_NET:-10.213.100}
DIR=${LAB_DIR:-/tmp/$LAB}
TTL=${TTL:-5s}
HOSTS=(etcd1 etcd2 etcd3 lb1 lb2 web1 web2 web3)
declare -A ADDRESS=([etcd1]=11 [etcd2]=12 [etcd3]=13 [lb1]=21 [lb2]=22 [web1]=31 [web2]=32 [web3]=33)
ETCD="etcd://$NET.11:2379,$NET.12:2379,$NET.13:2379/roundhouse/web"

address() { echo "$NET.${ADDRESS[$1]}"; }

# Runs "$@" inside host $1's namespace in the background, logging to LAB_DIR/$1.log.
start_on() {
    local host=$1
    shift
    ip netns exec "$LAB-$host" "$@" >>"$DIR/$host.log" 2>&1 &
    echo "$! $host" >>"$DIR/pids"
}

# Waits up to 20 s for `curl ARGS` to succeed.
wait_for() {
    for _ in $(seq 200); do
        curl -s -o /dev/null --max-time 1 "$@" && return 0
        sleep 0.1
    done
    echo "no answer from curl $*" >&2
    return 1
}

network_up() {
    # A guard first: if the bridge disappears, packets for the lab are refused here
    # instead of following the default route off the machine.
    ip route add unreachable "$NET.0/24" metric 4000
    ip link add "${LAB}br" type bridge
    ip addr add "$NET.1/24" dev "${LAB}br"
    ip link set "${LAB}br" up
    local index=0
    for host in "${HOSTS[@]}"; do
        index=$((index + 1))
        ip netns add "$LAB-$host"
        ip link add "${LAB}${index}o" type veth peer name "${LAB}${index}i"
        ip link set "${LAB}${index}i" netns "$LAB-$host"
        ip link set "${LAB}${index}o" master "${LAB}br" up
        ip -n "$LAB-$host" link set "${LAB}${index}i" name eth0
        ip -n "$LAB-$host" addr add "$(address "$host")/24" dev eth0
        ip -n "$LAB-$host" link set eth0 up
        ip -n "$LAB-$host" link set lo up
    done
}

processes_up() {
    local cluster=""
    for n in 1 2 3; do
        cluster+="${cluster:+,}etcd$n=http://$NET.1$n:2380"
    done
    for n in 1 2 3; do
        local ip=$NET.1$n
        start_on "etcd$n" etcd --name "etcd$n" --data-dir "$DIR/etcd$n" \
            --listen-client-urls "http://$ip:2379" --advertise-client-urls "http://$ip:2379" \
            --listen-peer-urls "http://$ip:2380" --initial-advertise-peer-urls "http://$ip:2380" \
            --initial-cluster "$cluster" --initial-cluster-state new --pre-vote
    done
    for n in 1 2 3; do
        wait_for -X POST -d '{"key":"AA=="}' "http://$NET.1$n:2379/v3/kv/range"
    done
    for n in 1 2 3; do
        start_on "web$n" "$BIN" backend --host "$NET.3$n" --port 9000 --latency 1..5 \
            --name "web$n" --register "$ETCD" --advertise "http://$NET.3$n:9000" --register-ttl "$TTL"
    done
    for n in 1 2; do
        start_on "lb$n" "$BIN" --listen "$NET.2$n:8080" --discovery "$ETCD" --access-log off \
            --admin-allow "$NET.0/24"
    done
    for n in 1 2; do
        wait_for "http://$NET.2$n:8080/stats"
    done
}

status() {
    for n in 1 2; do
        echo "lb$n ($NET.2$n:8080):"
        curl -s "http://$NET.2$n:8080/stats" | python3 -c '
import json, sys
stats = json.load(sys.stdin)
watcher = stats["discovery"][0]
print("  pool:", " ".join(stats["pools"][0]["backends"]) or "(empty)")
print("  etcd: {state} at {endpoint}, revision {revision}, {errors} errors".format(**watcher))'
    done
}

down() {
    if [ -f "$DIR/pids" ]; then
        # Balancers and backends first, while etcd still runs: each backend revokes
        # its lease on the way out. Then etcd; then anything still running.
        local pid host
        while read -r pid host; do
            case $host in etcd*) ;; *) kill "$pid" 2>/dev/null || true ;; esac
        done <"$DIR/pids"
        for _ in $(seq 30); do
            local running=0
            while read -r pid host; do
                case $host in etcd*) ;; *) kill -0 "$pid" 2>/dev/null && running=1 ;; esac
            done <"$DIR/pids"
            [ "$running" = 0 ] && break
            sleep 0.1
        done
        while read -r pid host; do
            kill "$pid" 2>/dev/null || true
        done <"$DIR/pids"
        sleep 0.5
        while read -r pid host; do
            kill -9 "$pid" 2>/dev/null || true
        done <"$DIR/pids"
        rm -f "$DIR/pids"
    fi
    # etcd's data goes with the cluster; the logs stay for reading.
    rm -rf "$DIR"/etcd?
    local index=0
    for host in "${HOSTS[@]}"; do
        index=$((index + 1))
        ip link del "${LAB}${index}o" 2>/dev/null || true
        ip netns del "$LAB-$host" 2>/dev/null || true
    done
    ip link del "${LAB}br" 2>/dev/null || true
    ip route del unreachable "$NET.0/24" metric 4000 2>/dev/null || true
}

case "$ACTION" in
    up)
        [ -x "$BIN" ] || { echo "no roundhouse binary at $BIN (cargo build --release)" >&2; exit 2; }
        command -v etcd >/dev/null || { echo "etcd is not installed (apt-get install etcd-server)" >&2; exit 2; }
        BIN=$(realpath "$BIN")
        mkdir -p "$DIR"
        network_up || { down; exit 1; }
        processes_up || { down; exit 1; }
        status
        ;;
    down) down ;;
    status) status ;;
    *)
        echo "usage: sudo $0 up|down|status [path/to/roundhouse]" >&2
        exit 2
        ;;
esac

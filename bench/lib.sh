# What the benchmark scripts share, sourced by compare.sh, bounds.sh, c10k.sh and tls.sh
# after they set SCRIPT (their name, for messages): Debian packages installed when
# missing, a scratch folder, the processes a script starts (stopped on exit, by PID,
# newest first, so a benchmark never leaves a server behind), waiting for a port to
# listen, and reading wrk's latencies.

# bench_install PACKAGE...: install the Debian packages named, with sudo when not root.
# nginx-light is gone from newer Debian releases; plain nginx serves as well.
bench_install() {
    [ $# -eq 0 ] && return
    echo "$SCRIPT: installing $* from Debian's packages" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >/dev/null
    if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@" >/dev/null; then
        local replaced=("${@/nginx-light/nginx}")
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${replaced[@]}" >/dev/null
    fi
}

RUN="$(mktemp -d "${TMPDIR:-/tmp}/roundhouse-$SCRIPT.XXXXXX")"
PIDS=()
cleanup() {
    local index
    for ((index = ${#PIDS[@]} - 1; index >= 0; index--)); do
        kill -TERM "${PIDS[index]}" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A connect that succeeds means something listens (bash's /dev/tcp, no nc needed).
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_listening PORT: up to 30 s, then fail with the end of every log in $RUN.
wait_listening() {
    local port=$1 tries=0
    until listening "$port"; do
        tries=$((tries + 1))
        if [ $tries -gt 300 ]; then
            echo "$SCRIPT: nothing listens on port $port after 30 s; see $RUN/*.log" >&2
            tail -n 5 "$RUN"/*.log >&2 || true
            exit 1
        fi
        sleep 0.1
    done
}

# ports_free PORT...: exit 2 if one is taken, naming BENCH_PORT_BASE.
ports_free() {
    local port
    for port in "$@"; do
        if listening "$port"; then
            echo "$SCRIPT: port $port is in use; choose other ports with BENCH_PORT_BASE=N" >&2
            exit 2
        fi
    done
}

# An awk function for the scripts that read wrk's output: ms("850.00us"), ms("1.20ms"),
# ms("2.01s"), ms("1.5m") in milliseconds. Prefix an awk program with it: awk "$WRK_MS"'...'.
WRK_MS='
    function ms(text) {
        if (text ~ /us$/) return substr(text, 1, length(text) - 2) / 1000
        if (text ~ /ms$/) return substr(text, 1, length(text) - 2) + 0
        if (text ~ /m$/) return substr(text, 1, length(text) - 1) * 60000
        if (text ~ /s$/) return substr(text, 1, length(text) - 1) * 1000
        return text + 0
    }'

#!/usr/bin/env bash
# Sends the same hostile or unusual requests to roundhouse, nginx and HAProxy, each in
# front of the same simulated backend, and prints the status each one answers.
# Usage: bench/edge_cases.sh   (installs nginx-light and haproxy from Debian if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need haproxy; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light haproxy >/dev/null
fi
cargo build --release --quiet
BIN=target/release/roundhouse
WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

BACKEND=19181 RH=19182 NGINX=19183 HAPROXY=19184
"$BIN" backend --port $BACKEND --latency 0..1 >/dev/null 2>&1 & PIDS+=($!)
"$BIN" --listen 127.0.0.1:$RH --backend http://127.0.0.1:$BACKEND --access-log off >/dev/null 2>&1 & PIDS+=($!)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1; pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log;
events {}
http {
    access_log off; client_max_body_size 10m;
    client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/f; uwsgi_temp_path $WORK/nginx/u; scgi_temp_path $WORK/nginx/s;
    server { listen 127.0.0.1:$NGINX; location / { proxy_pass http://127.0.0.1:$BACKEND; } }
}
CONF
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' & PIDS+=($!)
cat > "$WORK/haproxy.cfg" <<CONF
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:$HAPROXY
    default_backend be
backend be
    server b1 127.0.0.1:$BACKEND
CONF
haproxy -db -f "$WORK/haproxy.cfg" >/dev/null 2>&1 & PIDS+=($!)
for port in $BACKEND $RH $NGINX $HAPROXY; do
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

# The status line an address answers to the raw request in $2 (printf format).
status() {
    local port=$1 request=$2 line
    exec 3<>/dev/tcp/127.0.0.1/"$port"
    printf "$request" >&3 2>/dev/null || true
    # A reset makes the read fail: that is an answer too, not a reason to stop.
    line=$(timeout 5 head -c 200 <&3 2>/dev/null | head -1 | tr -d '\r' | cut -d' ' -f2-3) || line="resets the connection"
    exec 3>&-
    echo "${line:-(closed, no answer)}"
}

LONG=$(printf 'a%.0s' $(seq 9000))
MANY=$(for i in $(seq 120); do printf 'X-%s: v\\r\\n' "$i"; done)
HUGE=$(head -c 1048576 /dev/zero | tr '\0' 'a')
cases=(
    "malformed request line|NOT HTTP AT ALL\r\n\r\n"
    "target of 9000 bytes|GET /$LONG HTTP/1.1\r\nHost: t\r\n\r\n"
    "120 header fields|GET / HTTP/1.1\r\nHost: t\r\n${MANY}\r\n"
    "1 MiB header line|GET / HTTP/1.1\r\nHost: t\r\nX-Huge: $HUGE\r\n\r\n"
    "Content-Length and Transfer-Encoding|POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    "two differing Content-Lengths|POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
    "Transfer-Encoding: gzip|POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n"
    "absolute-form target|GET http://other.example/x HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n"
    "CONNECT|CONNECT other.example:443 HTTP/1.1\r\nHost: other.example:443\r\n\r\n"
    "HTTP/1.1 without Host|GET / HTTP/1.1\r\n\r\n"
    "HTTP/1.0 without Host|GET / HTTP/1.0\r\n\r\n"
    "body over the 10 MiB limit|POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 20000000\r\n\r\n"
    "two Host fields|GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nConnection: close\r\n\r\n"
    "Host: a, b (a list)|GET / HTTP/1.1\r\nHost: a.test, b.test\r\nConnection: close\r\n\r\n"
    "Connection: close, host|GET / HTTP/1.1\r\nHost: t\r\nConnection: close, host\r\n\r\n"
    "chunk size line ended by bare LF|POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\nhello\r\n0\r\n\r\n"
    "chunk data ended by bare LF|POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\n0\r\n\r\n"
    "HTTP/1.2|GET / HTTP/1.2\r\nHost: t\r\nConnection: close\r\n\r\n"
    "Content-Length: 5, 5|POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\nConnection: close\r\n\r\nhello"
)
printf '| case | roundhouse | nginx | HAProxy |\n|---|---|---|---|\n'
for case in "${cases[@]}"; do
    name=${case%%|*} request=${case#*|}
    printf '| %s | %s | %s | %s |\n' "$name" "$(status $RH "$request")" "$(status $NGINX "$request")" "$(status $HAPROXY "$request")"
done

# What the backend was told the Host is, when the client's Connection names Host: the
# simulated backend echoes the headers it received.
host_seen() {
    local port=$1
    exec 3<>/dev/tcp/127.0.0.1/"$port"
    printf 'GET / HTTP/1.1\r\nHost: client.test\r\nConnection: close, host\r\n\r\n' >&3
    timeout 5 cat <&3 | grep -o '"host": "[^"]*"' | head -1 | cut -d'"' -f4
    exec 3>&-
}
printf '\n| Host the backend received for `Connection: close, host` | roundhouse | nginx | HAProxy |\n|---|---|---|---|\n'
printf '| (the client sent client.test) | %s | %s | %s |\n' "$(host_seen $RH)" "$(host_seen $NGINX)" "$(host_seen $HAPROXY)"

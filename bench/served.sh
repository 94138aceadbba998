#!/usr/bin/env bash
# Did every connection get answers? wrk cannot say (it reports no error for a connection
# that never got a response), but roundhouse has one thread per connection, so the
# kernel can: a connection thread blocks in read(2) for the next request at
# least once per request, so its voluntary context switches count its requests.
#
#   bench/served.sh PID PORT [CONNECTIONS]   # PID: a running `roundhouse serve` on PORT
#
# Runs wrk for 6 s and prints, over a 4 s window in the middle, how many connection
# threads served at least 10 requests, and the fewest and most switches of any of them
# (a narrow range means the connections were served fairly).
set -euo pipefail
PID=$1
PORT=$2
CONNECTIONS=${3:-256}
WINDOW=$(mktemp -d "${TMPDIR:-/tmp}/roundhouse-served.XXXXXX")
trap 'rm -rf "$WINDOW"' EXIT

# One awk over all threads' status files: fast enough to be a snapshot.
snapshot() {
    awk '/^Name:/ {name = $2} /^Pid:/ {tid = $2}
         /^voluntary_ctxt_switches/ {if (name ~ /^conn-/ && name != "conn-accept") print tid, $2}' \
        /proc/"$PID"/task/*/status 2>/dev/null | sort
}

wrk -t1 -c"$CONNECTIONS" -d6s "http://127.0.0.1:$PORT/" >"$WINDOW/wrk.txt" &
WRK=$!
sleep 1
snapshot >"$WINDOW/before"
sleep 4
snapshot >"$WINDOW/after"
wait "$WRK" || true
join "$WINDOW/before" "$WINDOW/after" | awk -v c="$CONNECTIONS" '
    { grown = $3 - $2; n++; if ((grown / 2) >= 10) served++
      if (min == "" || grown < min) min = grown; if (grown > max) max = grown }
    END { printf "%d connections, %d connection threads, %d served >= 10 requests in 4 s; switches per thread %d..%d\n",
                 c, n, served, min, max }'
grep -E "requests in|Socket errors|Non-2xx" "$WINDOW/wrk.txt" || true

#!/usr/bin/env bash
# The first seed's calculator, run by roundhouse (docs/l4.md, "README demo"), without
# the three terminals: three `--calc-tcp` servers, `roundhouse tcp --strategy
# least-load` in front, one calculator kept busy directly, and the client. Prints what
# each terminal would show.
#
# Usage: scripts/calc_demo.sh [path/to/roundhouse]   (default: target/release/roundhouse)
# Uses the README's ports: 5000 (balancer), 8081 (admin), 6000-6021 (calculators).
set -euo pipefail

BIN=${1:-target/release/roundhouse}
out=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -r "$out"; }
trap cleanup EXIT

# Terminal 1: three calculators, each spending 100 ms of CPU per expression.
for n in 0 1 2; do
    "$BIN" backend --calc-tcp --port "60${n}1" --status-port "60${n}0" --cpu-work 100 >"$out/calc$n" 2>&1 &
    pids+=($!)
done
sleep 0.5

# Terminal 2: the balancer.
"$BIN" tcp --strategy least-load --admin 127.0.0.1:8081 \
    --backend 127.0.0.1:6001,status=127.0.0.1:6000 \
    --backend 127.0.0.1:6011,status=127.0.0.1:6010 \
    --backend 127.0.0.1:6021,status=127.0.0.1:6020 >"$out/balancer" 2>&1 &
pids+=($!)
sleep 0.5

# Terminal 3: someone else keeps the first calculator busy, straight to its port...
yes '2 * 21' | head -200 | "$BIN" client calc --tcp 127.0.0.1:6001 >/dev/null &
pids+=($!)
sleep 2.5
# ...and our client goes through the balancer.
printf '3 + 4\n2 * (3 + 4)\n10 / 4\n1 / 0\n(1 + 2\n0.1 + 0.2\n' | "$BIN" client calc --tcp 127.0.0.1:5000 >"$out/client"
curl -s 127.0.0.1:8081/stats >"$out/stats"
sleep 0.2

for n in 0 1 2; do cat "$out/calc$n"; done
echo "-----"
cat "$out/balancer"
echo "-----"
cat "$out/client"
echo "-----"
grep -E '"(address|load|total)"' "$out/stats"
echo "-----"
cat "$out/stats"

#!/usr/bin/env bash
# `peakguard rehearse` vs wrk, side by side in one run, on loopback:
#  1. maximum requests/s on one core against the same static target (nginx, 20 KB file):
#     nginx pinned to core 0, each load tool pinned to core 1 (goal: rehearse >= 80 % of wrk);
#  2. a server that stalls for one second: wrk's closed-loop latency vs rehearse's
#     open-model latency (measured from the intended send time).
# Bounded: DURATION seconds per run (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
B=$(mktemp -d /tmp/peakguard-bench-rehearse.XXXXXX)
NGINX_PORT=26301 STALL_PORT=26302
cleanup() {
  [ -f "$B/nginx.pid" ] && kill "$(cat "$B/nginx.pid")" 2>/dev/null || true
  [ -n "${stall_pid:-}" ] && kill "$stall_pid" 2>/dev/null || true
}
trap cleanup EXIT
cargo build --release -q -p peakguard --bin peakguard
cargo build --release -q -p peakguard-sim --example sim_origin
PG=target/release/peakguard
STALL=target/release/examples/sim_origin

mkdir -p "$B/www" "$B/tmp"
head -c 20000 /dev/zero | tr '\0' 'x' >"$B/www/20k.html"
cat >"$B/nginx.conf" <<CNF
worker_processes 1;
pid $B/nginx.pid;
error_log $B/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off; sendfile on; tcp_nopush off; keepalive_requests 1000000;
  client_body_temp_path $B/tmp/b; proxy_temp_path $B/tmp/p; fastcgi_temp_path $B/tmp/f; uwsgi_temp_path $B/tmp/u; scgi_temp_path $B/tmp/s;
  server { listen 127.0.0.1:$NGINX_PORT; root $B/www; }
}
CNF
taskset -c 0 nginx -c "$B/nginx.conf" -p "$B" -e "$B/nginx-error.log"
sleep 0.5
URL=http://127.0.0.1:$NGINX_PORT/20k.html
echo /20k.html >"$B/urls.txt"

# Three alternating rounds (this machine's speed drifts between runs); medians reported.
wrk_runs=() pg_runs=()
for round in 1 2 3; do
  wrk_runs+=("$(taskset -c 1 wrk -t1 -c50 -d"${DURATION}s" "$URL" | awk '/Requests\/sec/ {print $2}')")
  taskset -c 1 $PG rehearse --target "http://127.0.0.1:$NGINX_PORT" --urls "$B/urls.txt" --rate 200000 \
    --duration "${DURATION}s" --concurrency 50 --quiet --json "$B/max.json" >/dev/null
  pg_runs+=("$(python3 -c "import json;print(round(json.load(open('$B/max.json'))['achieved_rps'],1))")")
done
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
wrk_rps=$(median "${wrk_runs[@]}")
pg_rps=$(median "${pg_runs[@]}")

# --- stalling server ------------------------------------------------------------------------
taskset -c 0 $STALL $STALL_PORT --stall-at 2 & stall_pid=$!
sleep 0.5
wrk_stall=$(taskset -c 1 wrk -t1 -c8 -d5s --timeout 10s --latency "http://127.0.0.1:$STALL_PORT/")
kill $stall_pid; wait $stall_pid 2>/dev/null || true
taskset -c 0 $STALL $STALL_PORT --stall-at 2 & stall_pid=$!
sleep 0.5
taskset -c 1 $PG rehearse --target "http://127.0.0.1:$STALL_PORT" --rate 1000 --duration 5s --concurrency 8 \
  --quiet --json "$B/stall.json" >/dev/null
read -r pg_p50 pg_p99 pg_max pg_sent pg_not <<<"$(python3 -c "import json;r=json.load(open('$B/stall.json'));t=r['total'];print(t['p50_ms'],t['p99_ms'],t['max_ms'],r['sent'],r['not_sent'])")"
wrk_reqs=$(echo "$wrk_stall" | awk '/requests in/ {print $1}')
wrk_p50=$(echo "$wrk_stall" | awk '$1=="50%" {print $2}')
wrk_p99=$(echo "$wrk_stall" | awk '$1=="99%" {print $2}')
wrk_max=$(echo "$wrk_stall" | awk '/Latency/ {print $4; exit}')

echo "Maximum requests/s on one core, 20 KB static file from nginx (nginx on core 0, the load tool on core 1), 50 connections, ${DURATION}s per run, median of 3 alternating runs:"
echo
echo "| tool | req/s | ratio to wrk |"
echo "|---|---|---|"
echo "| wrk -t1 -c50 | $wrk_rps (runs: ${wrk_runs[*]}) | 1.00 |"
echo "| peakguard rehearse (open model, rate set above capacity, --concurrency 50) | $pg_rps (runs: ${pg_runs[*]}) | $(python3 -c "print(round($pg_rps/$wrk_rps,2))") |"
echo
echo "A server that stalls every response for one second (2 s after the start), 8 connections, 5 s:"
echo
echo "| tool | requests | p50 | p99 | max |"
echo "|---|---|---|---|---|"
echo "| wrk -t1 -c8 (closed loop) | $wrk_reqs | $wrk_p50 | $wrk_p99 | $wrk_max |"
echo "| peakguard rehearse --rate 1000 --concurrency 8 (open model) | $pg_sent sent, $pg_not not sent | ${pg_p50} ms | ${pg_p99} ms | ${pg_max} ms |"

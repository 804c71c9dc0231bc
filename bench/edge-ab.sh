#!/usr/bin/env bash
# A/B of two peakguard builds or settings, side by side in one run on the real WordPress of
# scripts/wp-env.sh: cache hits for identity and browser clients at 50 and 1,000 connections
# (wrk, plain HTTP/1.1), rounds alternating A and B so the machine's drift hits both, then
# RSS with IDLE idle keep-alive connections. Used to decide the allocator and the client
# write buffer. Bounded: DURATION seconds per run, ROUNDS rounds.
#
#   A_BIN=/tmp/pg-system B_BIN=/tmp/pg-mimalloc bench/edge-ab.sh
#   B_SERVER='write_buffer = "16KiB"' bench/edge-ab.sh        (same binary, other settings)
#   A_STATS='enabled = false' WATCH=1 bench/edge-ab.sh         (statistics off vs on, with
#                                                               /stats read every second, as
#                                                               an open console does)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-6}
ROUNDS=${ROUNDS:-2}
IDLE=${IDLE:-10000}
IDLE_AE=${IDLE_AE-gzip, deflate, br}   # the idle clients' Accept-Encoding ("" = identity)
URL_PATH=${URL_PATH:-/e2e-post-1/}
A_BIN=${A_BIN:-target/release/peakguard}
B_BIN=${B_BIN:-$A_BIN}
A_SERVER=${A_SERVER:-}
B_SERVER=${B_SERVER:-}
A_STATS=${A_STATS:-}   # keys of [stats] for A and B
B_STATS=${B_STATS:-}
WATCH=${WATCH:-0}      # 1: GET /stats?last=60m on both every second during the runs
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export PG_E2E_DIR=${PG_E2E_DIR:-/tmp/peakguard-ab-wp}
export PG_E2E_NGINX_PORT=${PG_E2E_NGINX_PORT:-27180} PG_E2E_DB_PORT=${PG_E2E_DB_PORT:-27106}
B=$(mktemp -d /tmp/peakguard-ab.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  scripts/wp-env.sh down >/dev/null 2>&1 || true
  rm -rf "$B"
}
trap cleanup EXIT
scripts/wp-env.sh up >&2

start() { # name bin port admin server-extra stats-extra
  cat >"$B/$1.toml" <<CNF
[server]
listen = ["127.0.0.1:$3"]
threads = $(nproc)
pid_file = "$B/$1.pid"
upgrade_sock = "$B/$1-upgrade.sock"
$5
[admin]
listen = "127.0.0.1:$4"
token = "bench"
[cache]
disk_path = "$B/$1-cache"
[maintenance]
state_file = "$B/$1-maintenance.json"
[shield]
state_file = "$B/$1-shield.json"
room_key_file = "$B/$1-room.key"
[journal]
file = "$B/$1-journal.jsonl"
[stats]
dir = "$B/$1-stats"
$6
[[site]]
name = "wp"
origin = "http://127.0.0.1:$PG_E2E_NGINX_PORT"
CNF
  RUST_LOG=error "$2" serve --config "$B/$1.toml" >"$B/$1.log" 2>&1 &
  pids+=($!)
  PID[$1]=$!
}
declare -A PORT=([a]=27201 [b]=27203) PID=()
for port in 27201 27203; do
  ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "port $port is in use" >&2; exit 1; }
done
start a "$A_BIN" 27201 27202 "$A_SERVER" "$A_STATS"
start b "$B_BIN" 27203 27204 "$B_SERVER" "$B_STATS"
if [ "$WATCH" = 1 ]; then
  ( while :; do
      for admin in 27202 27204; do
        curl -s -o /dev/null -H 'Authorization: Bearer bench' "http://127.0.0.1:$admin/stats?last=60m" || true
      done
      sleep 1
    done ) &
  pids+=($!)
fi
for _ in $(seq 1 50); do
  curl -s -o /dev/null -H 'Host: wp.test' "http://127.0.0.1:27201$URL_PATH" && \
  curl -s -o /dev/null -H 'Host: wp.test' "http://127.0.0.1:27203$URL_PATH" && break
  sleep 0.2
done
for s in a b; do for i in 1 2 3; do
  curl -s -o /dev/null -H 'Host: wp.test' -H 'Accept-Encoding: gzip, deflate, br' "http://127.0.0.1:${PORT[$s]}$URL_PATH"; sleep 0.2
done; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
declare -A RPS CPU P99
for round in $(seq 1 "$ROUNDS"); do
  order=(a b); [ $((round % 2)) = 0 ] && order=(b a)
  for client in identity browser; do
    hdrs=(); [ "$client" = browser ] && hdrs=(-H 'Accept-Encoding: gzip, deflate, br')
    for c in 50 1000; do
      for s in "${order[@]}"; do
        before=$(cpu_ticks "${PID[$s]}")
        out=$(wrk -t2 -c"$c" -d"${DURATION}s" --timeout 10s --latency -H 'Host: wp.test' "${hdrs[@]}" "http://127.0.0.1:${PORT[$s]}$URL_PATH")
        after=$(cpu_ticks "${PID[$s]}")
        reqs=$(echo "$out" | awk '/requests in/ {print $1}')
        k="$s,$client,$c"
        RPS[$k]="${RPS[$k]:-} $(echo "$out" | awk '/Requests\/sec/ {print $2}')"
        CPU[$k]="${CPU[$k]:-} $(awk -v t=$((after - before)) -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.2f", (t / hz) / n * 100000 }')"
        echo "  round $round $k: $(echo "$out" | awk '/Requests\/sec/ {print $2}') req/s" >&2
      done
    done
  done
done
mean() { echo "$1" | awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.2f", s / NF }'; }
echo
echo "A = $A_BIN ${A_SERVER:-(defaults)} [stats] ${A_STATS:-(defaults)}; B = $B_BIN ${B_SERVER:-(defaults)} [stats] ${B_STATS:-(defaults)}; WATCH=$WATCH; $ROUNDS rounds of ${DURATION}s, alternating."
echo
echo "| client | conns | A req/s | B req/s | B / A req/s | A CPU s/100k | B CPU s/100k | B / A CPU |"
echo "|---|---|---|---|---|---|---|---|"
for client in identity browser; do
  for c in 50 1000; do
    ar=$(mean "${RPS[a,$client,$c]}"); br=$(mean "${RPS[b,$client,$c]}")
    ac=$(mean "${CPU[a,$client,$c]}"); bc=$(mean "${CPU[b,$client,$c]}")
    echo "| $client | $c | $ar | $br | $(awk -v a="$ar" -v b="$br" 'BEGIN { printf "%.2f", b / a }') | $ac | $bc | $(awk -v a="$ac" -v b="$bc" 'BEGIN { printf "%.2f", b / a }') |"
  done
done
if [ "$IDLE" -gt 0 ]; then
  echo
  echo "Idle clients fetched the page with Accept-Encoding: ${IDLE_AE:-(none)}."
  echo
  echo "| build | idle HTTP/1.1 connections | RSS before MiB | RSS with them MiB | KiB per connection |"
  echo "|---|---|---|---|---|"
  for s in a b; do
    before=$(rss_kib "${PID[$s]}")
    fifo="$B/idle-$s"; mkfifo "$fifo"
    python3 bench/idle-connections.py h1 127.0.0.1 "${PORT[$s]}" "$IDLE" wp.test "$URL_PATH" "$IDLE_AE" <"$fifo" >"$fifo.out" &
    ipid=$!
    exec 9>"$fifo"
    for _ in $(seq 1 600); do grep -q ready "$fifo.out" 2>/dev/null && break; sleep 0.2; done
    sleep 1
    n=$(awk '/ready/ {print $2}' "$fifo.out"); after=$(rss_kib "${PID[$s]}")
    exec 9>&-
    wait "$ipid" 2>/dev/null || true
    echo "| $s | ${n:-0} | $((before / 1024)) | $((after / 1024)) | $(awk -v a="$after" -v b="$before" -v n="${n:-0}" 'BEGIN { if (n == 0) print "n/a"; else printf "%.1f", (a - b) / n }') |"
    sleep 2
  done
fi

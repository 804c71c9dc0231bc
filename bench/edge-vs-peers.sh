#!/usr/bin/env bash
# Cache-hit benchmark, side by side in one run on the same origin (the private real WordPress
# from scripts/wp-env.sh): Varnish (Debian `varnish`, a standard WordPress VCL), nginx
# proxy_cache, and peakguard, each given the machine's cores, loaded by wrk on loopback.
# Reports requests/s, p50/p99 at 50 and 1,000 connections, CPU seconds per 100k requests,
# and ratios peakguard / peer. Bounded: DURATION seconds per run (default 10).
#
#   bench/edge-vs-peers.sh            (builds peakguard --release, starts WordPress if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
URL_PATH=${URL_PATH:-/e2e-post-1/}
export PG_E2E_DIR=${PG_E2E_DIR:-/tmp/peakguard-bench-wp}
export PG_E2E_NGINX_PORT=${PG_E2E_NGINX_PORT:-26180} PG_E2E_DB_PORT=${PG_E2E_DB_PORT:-26106}
B=$(mktemp -d /tmp/peakguard-bench.XXXXXX)
chmod 755 "$B"   # varnishd drops privileges and must read its VCL
VARNISH_PORT=26201 VARNISH_ADMIN=26202 NGINX_PORT=26203 PG_PORT=26204 PG_ADMIN=26205
ORIGIN=127.0.0.1:$PG_E2E_NGINX_PORT
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$B/varnish.pid" ] && kill "$(cat "$B/varnish.pid")" 2>/dev/null || true
  [ -f "$B/nginx.pid" ] && kill "$(cat "$B/nginx.pid")" 2>/dev/null || true
  scripts/wp-env.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT

scripts/wp-env.sh up >&2
cargo build --release -q -p peakguard

# --- Varnish with a standard WordPress VCL -----------------------------------------------
cat >"$B/wordpress.vcl" <<VCL
vcl 4.1;
backend default { .host = "127.0.0.1"; .port = "$PG_E2E_NGINX_PORT"; }
sub vcl_recv {
  if (req.method != "GET" && req.method != "HEAD") { return (pass); }
  if (req.url ~ "^/(wp-admin|wp-login\.php|xmlrpc\.php|wp-cron\.php|cart|checkout|my-account)") { return (pass); }
  if (req.http.Cookie ~ "wordpress_logged_in_|wp-postpass_|comment_author_|woocommerce_items_in_cart|woocommerce_cart_hash|wp_woocommerce_session_") { return (pass); }
  set req.url = regsuball(req.url, "(utm_[a-z]+|gclid|fbclid|msclkid|mc_cid|mc_eid|_ga|ref)=[^&]*&?", "");
  set req.url = regsub(req.url, "[?&]$", "");
  unset req.http.Cookie;
  return (hash);
}
sub vcl_backend_response {
  if (beresp.http.Set-Cookie) { set beresp.uncacheable = true; return (deliver); }
  if (!beresp.http.Cache-Control && !beresp.http.Expires) { set beresp.ttl = 5m; }
  set beresp.grace = 24h;
}
VCL
varnishd -a 127.0.0.1:$VARNISH_PORT -T 127.0.0.1:$VARNISH_ADMIN -f "$B/wordpress.vcl" \
  -s malloc,256m -n "$B/varnish" -P "$B/varnish.pid" -p thread_pool_min=50 >/dev/null

# --- nginx proxy_cache --------------------------------------------------------------------
mkdir -p "$B/nginx-cache" "$B/nginx-tmp"
cat >"$B/nginx.conf" <<CNF
worker_processes auto;
worker_rlimit_nofile 16384;
pid $B/nginx.pid;
error_log $B/nginx-error.log;
events { worker_connections 8192; }
http {
  access_log off;
  sendfile on; tcp_nopush off;
  keepalive_requests 1000000;
  client_body_temp_path $B/nginx-tmp/body; proxy_temp_path $B/nginx-tmp/proxy;
  fastcgi_temp_path $B/nginx-tmp/fcgi; uwsgi_temp_path $B/nginx-tmp/uwsgi; scgi_temp_path $B/nginx-tmp/scgi;
  proxy_cache_path $B/nginx-cache keys_zone=wp:64m max_size=1g inactive=1d;
  upstream wp { server $ORIGIN; keepalive 64; }
  map \$http_cookie \$skip { default 0; ~*wordpress_logged_in_|wp-postpass_|comment_author_|woocommerce_ 1; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://wp;
      proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$http_host;
      proxy_cache wp; proxy_cache_key \$scheme\$http_host\$uri\$is_args\$args;
      proxy_cache_valid 200 301 404 5m; proxy_cache_lock on; proxy_cache_use_stale error timeout updating http_500 http_502 http_503;
      proxy_cache_bypass \$skip; proxy_no_cache \$skip;
    }
  }
}
CNF
nginx -c "$B/nginx.conf" -p "$B" -e "$B/nginx-error.log"

# --- peakguard ----------------------------------------------------------------------------
cat >"$B/peakguard.toml" <<CNF
[server]
listen = ["127.0.0.1:$PG_PORT"]
threads = $(nproc)
pid_file = "$B/pg.pid"
upgrade_sock = "$B/pg-upgrade.sock"
[admin]
listen = "127.0.0.1:$PG_ADMIN"
token = "bench"
[cache]
disk_path = "$B/pg-cache"
memory_size = "256MiB"
[maintenance]
state_file = "$B/pg-maintenance.json"
[[site]]
name = "wp"
origin = "http://$ORIGIN"
CNF
RUST_LOG=error target/release/peakguard serve --config "$B/peakguard.toml" >"$B/pg.log" 2>&1 &
pg_pid=$!; pids+=("$pg_pid")
sleep 1

# --- measurement --------------------------------------------------------------------------
cpu_ticks() { # sum of utime+stime of a process and its children, in clock ticks
  local total=0 p
  for p in $1 $(ps -o pid= --ppid "$1" 2>/dev/null); do
    [ -r /proc/$p/stat ] || continue
    total=$((total + $(awk '{print $14 + $15}' /proc/$p/stat)))
  done
  echo $total
}
hz=$(getconf CLK_TCK)
declare -A RPS P50 P99 CPU
run() { # name port pid conns
  local name=$1 port=$2 pid=$3 c=$4
  curl -s -o /dev/null -H 'Host: wp.test' "http://127.0.0.1:$port$URL_PATH"   # warm
  curl -s -o /dev/null -H 'Host: wp.test' "http://127.0.0.1:$port$URL_PATH"
  local before after out
  before=$(cpu_ticks "$pid")
  out=$(wrk -t2 -c"$c" -d"${DURATION}s" --timeout 10s --latency -H 'Host: wp.test' "http://127.0.0.1:$port$URL_PATH")
  after=$(cpu_ticks "$pid")
  local reqs; reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  RPS[$name,$c]=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  P50[$name,$c]=$(echo "$out" | awk '$1=="50%" {print $2}')
  P99[$name,$c]=$(echo "$out" | awk '$1=="99%" {print $2}')
  CPU[$name,$c]=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.2f", (t / hz) / n * 100000 }')
  local errs; errs=$(echo "$out" | awk '/Non-2xx|Socket errors/' | tr '\n' ' ')
  echo "  $name c=$c: ${RPS[$name,$c]} req/s, p50 ${P50[$name,$c]}, p99 ${P99[$name,$c]}, CPU ${CPU[$name,$c]} s/100k ${errs}" >&2
}
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us/,"",v); print v/1000 } else if (v ~ /ms$/) { sub(/ms/,"",v); print v } else if (v ~ /s$/) { sub(/s/,"",v); print v*1000 } else print v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }

vpid=$(cat "$B/varnish.pid"); npid=$(cat "$B/nginx.pid")
# varnishd -P names the manager; its cache child does the work (counted as a child).
for c in 50 1000; do
  run varnish $VARNISH_PORT "$vpid" $c
  run nginx $NGINX_PORT "$npid" $c
  run peakguard $PG_PORT "$pg_pid" $c
done

echo
echo "Cache hits on $URL_PATH ($(curl -s -H 'Host: wp.test' "http://127.0.0.1:$PG_PORT$URL_PATH" | wc -c) bytes), wrk -t2, ${DURATION}s per run, $(nproc) cores shared by wrk and the proxy."
echo
echo "| proxy | conns | req/s | p50 ms | p99 ms | CPU s / 100k req |"
echo "|---|---|---|---|---|---|"
for c in 50 1000; do
  for n in varnish nginx peakguard; do
    echo "| $n | $c | ${RPS[$n,$c]} | $(to_ms "${P50[$n,$c]}") | $(to_ms "${P99[$n,$c]}") | ${CPU[$n,$c]} |"
  done
done
echo
echo "| ratio (peakguard / peer) | conns | req/s | p99 (lower is better) | CPU per request (lower is better) |"
echo "|---|---|---|---|---|"
for c in 50 1000; do
  for n in varnish nginx; do
    echo "| peakguard / $n | $c | $(ratio "${RPS[peakguard,$c]}" "${RPS[$n,$c]}") | $(ratio "$(to_ms "${P99[peakguard,$c]}")" "$(to_ms "${P99[$n,$c]}")") | $(ratio "${CPU[peakguard,$c]}" "${CPU[$n,$c]}") |"
  done
done

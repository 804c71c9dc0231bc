#!/usr/bin/env bash
# Cache-hit benchmark, side by side in one run on the same origin (the private real WordPress
# from scripts/wp-env.sh): Varnish (Debian `varnish`, a standard WordPress VCL, its default
# gzip support), nginx proxy_cache (`gzip on` for HTML, CSS, JS, JSON as a site has it), and
# peakguard, each given the machine's cores, all on loopback.
#
# Clients: "identity" (no Accept-Encoding, what a bare benchmark sends) and "browser" (a
# browser's Accept-Encoding: gzip, deflate, br, Accept, Accept-Language, User-Agent), at 50
# and 1,000 connections: plain HTTP/1.1 with wrk, and TLS with h2load over HTTP/2 and over
# HTTP/1.1 (nginx and peakguard on the same certificate; Debian's Varnish has no TLS).
# Reports requests/s, p50/p99, CPU seconds per 100k requests and ratios peakguard / peer;
# then the memory of 10,000 idle keep-alive connections (HTTP/1.1, and HTTP/2 over TLS).
# Bounded: DURATION seconds per run (default 8), IDLE connections (default 10000).
#
#   bench/edge-vs-peers.sh            (builds peakguard --release, starts WordPress if needed)
#   TLS=0 IDLE=0 bench/edge-vs-peers.sh    (plain HTTP/1.1 only)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8}
TLS=${TLS:-1}
IDLE=${IDLE:-10000}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # 10,000 idle connections need the hard limit
URL_PATH=${URL_PATH:-/e2e-post-1/}
export PG_E2E_DIR=${PG_E2E_DIR:-/tmp/peakguard-bench-wp}
export PG_E2E_NGINX_PORT=${PG_E2E_NGINX_PORT:-26180} PG_E2E_DB_PORT=${PG_E2E_DB_PORT:-26106}
B=$(mktemp -d /tmp/peakguard-bench.XXXXXX)
chmod 755 "$B"   # varnishd drops privileges and must read its VCL
VARNISH_PORT=26201 VARNISH_ADMIN=26202 NGINX_PORT=26203 PG_PORT=26204 PG_ADMIN=26205
NGINX_TLS=26206 PG_TLS=26207
ORIGIN=127.0.0.1:$PG_E2E_NGINX_PORT
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$B/varnish.pid" ] && kill "$(cat "$B/varnish.pid")" 2>/dev/null || true
  [ -f "$B/nginx.pid" ] && kill "$(cat "$B/nginx.pid")" 2>/dev/null || true
  scripts/wp-env.sh down >/dev/null 2>&1 || true
  rm -rf "$B"
}
trap cleanup EXIT

scripts/wp-env.sh up >&2
cargo build --release -q -p peakguard
command -v h2load >/dev/null || { apt-get install -y -q nghttp2-client >/dev/null; }
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=wp.test -addext subjectAltName=DNS:wp.test \
  -keyout "$B/key.pem" -out "$B/cert.pem" >/dev/null 2>&1

# --- Varnish with a standard WordPress VCL -----------------------------------------------
sed "s/@ORIGIN_PORT@/$PG_E2E_NGINX_PORT/" bench/wordpress.vcl.in >"$B/wordpress.vcl"
varnishd -a 127.0.0.1:$VARNISH_PORT -T 127.0.0.1:$VARNISH_ADMIN -f "$B/wordpress.vcl" \
  -s malloc,256m -n "$B/varnish" -P "$B/varnish.pid" -p thread_pool_min=50 >/dev/null

# --- nginx proxy_cache --------------------------------------------------------------------
mkdir -p "$B/nginx-cache" "$B/nginx-tmp"
cat >"$B/nginx.conf" <<CNF
worker_processes auto;
worker_rlimit_nofile 20000;
pid $B/nginx.pid;
error_log $B/nginx-error.log;
events { worker_connections 20000; }
http {
  access_log off;
  sendfile on; tcp_nopush off;
  keepalive_requests 1000000;
  client_body_temp_path $B/nginx-tmp/body; proxy_temp_path $B/nginx-tmp/proxy;
  fastcgi_temp_path $B/nginx-tmp/fcgi; uwsgi_temp_path $B/nginx-tmp/uwsgi; scgi_temp_path $B/nginx-tmp/scgi;
  proxy_cache_path $B/nginx-cache keys_zone=wp:64m max_size=1g inactive=1d;
  upstream wp { server $ORIGIN; keepalive 64; }
  map \$http_cookie \$skip { default 0; ~*wordpress_logged_in_|wp-postpass_|comment_author_|woocommerce_ 1; }
  gzip on; gzip_types text/css application/javascript application/json image/svg+xml; gzip_vary on; gzip_proxied any;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    listen 127.0.0.1:$NGINX_TLS ssl http2;
    ssl_certificate $B/cert.pem; ssl_certificate_key $B/key.pem;
    location / {
      proxy_pass http://wp;
      proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$http_host;
      proxy_set_header Accept-Encoding "";
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
tls_listen = ["127.0.0.1:$PG_TLS"]
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
[shield]
state_file = "$B/pg-shield.json"
room_key_file = "$B/pg-room.key"
[[site]]
name = "wp"
origin = "http://$ORIGIN"
tls_cert = "$B/cert.pem"
tls_key = "$B/key.pem"
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
rss_kib() { # resident memory of a process and its children
  local total=0 p
  for p in $1 $(ps -o pid= --ppid "$1" 2>/dev/null); do
    [ -r /proc/$p/status ] || continue
    total=$((total + $(awk '/^VmRSS:/ {print $2}' /proc/$p/status)))
  done
  echo $total
}
hz=$(getconf CLK_TCK)
UA='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
ACCEPT='text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8'
browser_headers=(-H "Accept-Encoding: gzip, deflate, br" -H "User-Agent: $UA" -H "Accept: $ACCEPT" -H "Accept-Language: en-US,en;q=0.9")
declare -A RPS P50 P99 CPU BYTES
warm() { # port scheme: fill the cache (and let peakguard's background encoders finish)
  local i
  for i in 1 2 3; do
    curl -sk -o /dev/null -H 'Host: wp.test' "$2://127.0.0.1:$1$URL_PATH"
    curl -sk -o /dev/null -H 'Host: wp.test' -H 'Accept-Encoding: gzip, deflate, br' "$2://127.0.0.1:$1$URL_PATH"
    sleep 0.2
  done
}
record() { # key pid before reqs
  local after; after=$(cpu_ticks "$2")
  CPU[$1]=$(awk -v t=$((after - $3)) -v hz="$hz" -v n="$4" 'BEGIN { if (n == 0) print "n/a"; else printf "%.2f", (t / hz) / n * 100000 }')
}
wrk_run() { # name port pid conns client
  local name=$1 port=$2 pid=$3 c=$4 client=$5 key="$1,$4,$5,h1" hdrs=()
  [ "$client" = browser ] && hdrs=("${browser_headers[@]}")
  warm "$port" http
  BYTES[$name,$client]=$(curl -s -o /dev/null -w '%{size_download}' -H 'Host: wp.test' "${hdrs[@]}" "http://127.0.0.1:$port$URL_PATH")
  local before out reqs; before=$(cpu_ticks "$pid")
  out=$(wrk -t2 -c"$c" -d"${DURATION}s" --timeout 10s --latency -H 'Host: wp.test' "${hdrs[@]}" "http://127.0.0.1:$port$URL_PATH")
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  record "$key" "$pid" "$before" "$reqs"
  RPS[$key]=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  P50[$key]=$(to_ms "$(echo "$out" | awk '$1=="50%" {print $2}')")
  P99[$key]=$(to_ms "$(echo "$out" | awk '$1=="99%" {print $2}')")
  local errs; errs=$(echo "$out" | awk '/Non-2xx|Socket errors/' | tr '\n' ' ')
  echo "  $key: ${RPS[$key]} req/s, p50 ${P50[$key]} ms, p99 ${P99[$key]} ms, CPU ${CPU[$key]} s/100k ${BYTES[$name,$client]} B/resp ${errs}" >&2
}
h2load_run() { # name port pid conns client proto(h2|h1)
  local name=$1 port=$2 pid=$3 c=$4 client=$5 proto=$6 key="$1,$4,$5,tls-$6" hdrs=() flags=()
  [ "$client" = browser ] && hdrs=("${browser_headers[@]}")
  [ "$proto" = h1 ] && flags=(--h1)
  warm "$port" https
  local log="$B/h2load-$name-$c-$client-$proto.log" before out reqs
  before=$(cpu_ticks "$pid")
  out=$(h2load "${flags[@]}" -t2 -c"$c" -m1 -D "$DURATION" --warm-up-time=1 -H ':authority: wp.test' "${hdrs[@]}" \
        --log-file="$log" "https://127.0.0.1:$port$URL_PATH" 2>&1) || true
  reqs=$(echo "$out" | awk '/^requests:/ {print $8}')   # "N succeeded"
  record "$key" "$pid" "$before" "${reqs:-0}"
  RPS[$key]=$(echo "$out" | awk '/^finished in/ {print $4}')
  # the log: start (us), status, duration (us) per request
  local p50=n/a p99=n/a
  if [ -s "$log" ]; then
    read -r p50 p99 < <(awk '{print $3}' "$log" | sort -n | awk '{a[NR]=$1} END { i=int(NR*0.5); if (i<1) i=1; j=int(NR*0.99); if (j<1) j=1; printf "%.2f %.2f\n", a[i]/1000, a[j]/1000 }') || true
  fi
  P50[$key]=$p50; P99[$key]=$p99
  rm -f "$log"
  echo "  $key: ${RPS[$key]} req/s, p50 ${p50} ms, p99 ${p99} ms, CPU ${CPU[$key]} s/100k (${reqs:-0} ok)" >&2
}
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us/,"",v); print v/1000 } else if (v ~ /ms$/) { sub(/ms/,"",v); print v } else if (v ~ /s$/) { sub(/s/,"",v); print v*1000 } else print v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "n/a" || b == "n/a" || a == "" || b == "") print "n/a"; else printf "%.2f", a / b }'; }

vpid=$(cat "$B/varnish.pid"); npid=$(cat "$B/nginx.pid")
# varnishd -P names the manager; its cache child does the work (counted as a child).
for client in identity browser; do
  for c in 50 1000; do
    wrk_run varnish $VARNISH_PORT "$vpid" $c $client
    wrk_run nginx $NGINX_PORT "$npid" $c $client
    wrk_run peakguard $PG_PORT "$pg_pid" $c $client
  done
done
protos=(h1)
if [ "$TLS" = 1 ]; then
  protos+=(tls-h2 tls-h1)
  for proto in h2 h1; do
    for client in identity browser; do
      for c in 50 1000; do
        h2load_run nginx $NGINX_TLS "$npid" $c $client $proto
        h2load_run peakguard $PG_TLS "$pg_pid" $c $client $proto
      done
    done
  done
fi

echo
echo "Cache hits on $URL_PATH ($(curl -s -H 'Host: wp.test' "http://127.0.0.1:$PG_PORT$URL_PATH" | wc -c) bytes identity), ${DURATION}s per run, $(nproc) cores shared by the load generator and the proxy. Bytes per response for a browser: varnish ${BYTES[varnish,browser]}, nginx ${BYTES[nginx,browser]}, peakguard ${BYTES[peakguard,browser]}."
echo
echo "| protocol | client | conns | proxy | req/s | p50 ms | p99 ms | CPU s / 100k req |"
echo "|---|---|---|---|---|---|---|---|"
for proto in "${protos[@]}"; do
  for client in identity browser; do
    for c in 50 1000; do
      for n in varnish nginx peakguard; do
        k="$n,$c,$client,$proto"
        [ -n "${RPS[$k]:-}" ] || continue
        echo "| $proto | $client | $c | $n | ${RPS[$k]} | ${P50[$k]} | ${P99[$k]} | ${CPU[$k]} |"
      done
    done
  done
done
echo
echo "| protocol | client | conns | peakguard / peer | req/s (higher is better) | p99 (lower is better) | CPU per request (lower is better) |"
echo "|---|---|---|---|---|---|---|"
for proto in "${protos[@]}"; do
  for client in identity browser; do
    for c in 50 1000; do
      for n in varnish nginx; do
        k="$n,$c,$client,$proto"; p="peakguard,$c,$client,$proto"
        [ -n "${RPS[$k]:-}" ] || continue
        echo "| $proto | $client | $c | / $n | $(ratio "${RPS[$p]}" "${RPS[$k]}") | $(ratio "${P99[$p]}" "${P99[$k]}") | $(ratio "${CPU[$p]}" "${CPU[$k]}") |"
      done
    done
  done
done

# --- idle connections ----------------------------------------------------------------------
if [ "$IDLE" -gt 0 ]; then
  echo
  echo "Memory with $IDLE idle keep-alive connections (RSS of the proxy's processes, after one request each for HTTP/1.1; after the preface and SETTINGS for HTTP/2):"
  echo
  echo "| proxy | protocol | connections open | RSS before MiB | RSS with them MiB | KiB per connection |"
  echo "|---|---|---|---|---|---|"
  idle() { # name pid kind port
    local before after fifo="$B/idle-$1-$3" ready
    before=$(rss_kib "$2")
    mkfifo "$fifo"
    python3 bench/idle-connections.py "$3" 127.0.0.1 "$4" "$IDLE" wp.test "$URL_PATH" <"$fifo" >"$fifo.out" &
    local ipid=$!
    exec 9>"$fifo"
    for _ in $(seq 1 600); do grep -q ready "$fifo.out" 2>/dev/null && break; sleep 0.2; done
    sleep 1
    ready=$(awk '/ready/ {print $2}' "$fifo.out")
    after=$(rss_kib "$2")
    exec 9>&-
    wait "$ipid" 2>/dev/null || true
    echo "| $1 | $3 | ${ready:-0} | $((before / 1024)) | $((after / 1024)) | $(awk -v a="$after" -v b="$before" -v n="${ready:-0}" 'BEGIN { if (n == 0) print "n/a"; else printf "%.1f", (a - b) / n }') |"
    sleep 2
  }
  idle varnish "$vpid" h1 $VARNISH_PORT
  idle nginx "$npid" h1 $NGINX_PORT
  idle peakguard "$pg_pid" h1 $PG_PORT
  if [ "$TLS" = 1 ]; then
    idle nginx "$npid" h2 $NGINX_TLS
    idle peakguard "$pg_pid" h2 $PG_TLS
  fi
fi

#!/usr/bin/env bash
# The WAF side by side with nginx + ModSecurity (Debian's libnginx-mod-http-modsecurity), in
# one run, both with CRS 4.28 and its WordPress rule exclusions plugin (loaded in CRS 4's
# plugin order) on Debian's libmodsecurity with the same base settings, both in front of the
# simulated origin. peakguard's CRS is installed as a user does (bench/crs4-install.sh);
# nginx includes the shared tree the way the CRS documentation says.
#   1. the shared corpus (../shared/waf-corpus/dev.jsonl, score.py): PL1 attacks, GoTestWAF
#      attacks, the clean benign set, the WordPress requests — nginx with the plugin's
#      exclusions for everyone (what a WAF in front of the site can do), peakguard with its
#      visitor rules without a session and its editor rules with an issued one;
#   2. the cost per inspected request: p50/p99 of an uncacheable page at a steady rate with
#      browser headers (peakguard rehearse), WAF on and off, for both;
#   3. cache-hit throughput of peakguard with the WAF on and off, alternating rounds: wrk
#      (HTTP/1.1) and h2load (TLS + HTTP/2), browser headers.
# Loopback only; bounded (DURATION seconds per load run); stops what it started.
#
#   bench/waf-vs-nginx.sh [CORPUS]
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${1:-../shared/waf-corpus/dev.jsonl}
SCORE=$(dirname "$CORPUS")/score.py
SHARED_CRS=$(realpath "${SHARED_CRS:-../shared/crs-4}")
command -v h2load >/dev/null || { apt-get install -y -q nghttp2-client >/dev/null; }
DURATION=${DURATION:-8}
RATE=${RATE:-100}
ROUNDS=${ROUNDS:-5}
B=$(mktemp -d /tmp/peakguard-waf-bench.XXXXXX)
chmod 755 "$B"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$B"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listens on $1" >&2; return 1; }

cargo build --release -q -p peakguard --bin peakguard
cargo build --release -q -p peakguard-sim --example sim_origin
. bench/crs4-install.sh
crs4_install "$B" "$SHARED_CRS"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench.test -keyout "$B/key.pem" -out "$B/cert.pem" >/dev/null 2>&1
ORIGIN=$(free_port)
target/release/examples/sim_origin "$ORIGIN" >/dev/null 2>&1 & pids+=($!)

# --- peakguard: WAF on (all bypassed, for the corpus), WAF on (cache on), WAF off ---------
pg() { # name port admin site-keys waf-section [tls-port]
  local tls_listen="" tls_site=""
  if [ -n "${6:-}" ]; then
    tls_listen="tls_listen = [\"127.0.0.1:$6\"]"
    tls_site=$(printf 'tls_cert = "%s"\ntls_key = "%s"' "$B/cert.pem" "$B/key.pem")
  fi
  cat >"$B/$1.toml" <<TOML
[server]
listen = ["127.0.0.1:$2"]
$tls_listen
pid_file = "$B/$1.pid"
upgrade_sock = "$B/$1-upgrade.sock"
access_log = ""
[admin]
listen = "127.0.0.1:$3"
token = "bench"
[cache]
disk_path = ""
[maintenance]
state_file = "$B/$1-maintenance.json"
[shield]
state_file = "$B/$1-shield.json"
room_key_file = "$B/$1-room.key"
[waf]
log = "$B/$1-waf.jsonl"
crs_home = "$B/crs-home"
[[site]]
name = "bench"
hosts = ["*"]
origin = "http://127.0.0.1:$ORIGIN"
$4
$tls_site
[site.shield.admission]
enabled = false
[site.shield.login]
enabled = false
$5
TOML
  target/release/peakguard serve --config "$B/$1.toml" 2>"$B/$1.log" & pids+=($!)
  wait_port "$2"
}
PG_CORPUS=$(free_port); PG_ON=$(free_port); PG_OFF=$(free_port); PG_ON_TLS=$(free_port); PG_OFF_TLS=$(free_port)
PG_CORPUS_ADMIN=$(free_port)
pg corpus "$PG_CORPUS" "$PG_CORPUS_ADMIN" 'bypass_paths = ["/"]' $'[site.waf]\nparanoia = 1'
PG_ON_ADMIN=$(free_port)
pg on "$PG_ON" "$PG_ON_ADMIN" "" $'[site.waf]\nparanoia = 1' "$PG_ON_TLS"
pg off "$PG_OFF" "$(free_port)" "" "" "$PG_OFF_TLS"

# --- nginx + ModSecurity with the same CRS -------------------------------------------------
NG_ON=$(free_port); NG_OFF=$(free_port)
cat >"$B/modsec.conf" <<'MSC'
SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 65536
SecRequestBodyNoFilesLimit 65536
SecRequestBodyLimitAction ProcessPartial
SecResponseBodyAccess Off
SecAuditEngine Off
SecArgumentSeparator &
SecCookieFormat 0
SecRule REQUEST_HEADERS:Content-Type "@rx ^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecDefaultAction "phase:1,log,auditlog,pass"
SecDefaultAction "phase:2,log,auditlog,pass"
SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.blocking_paranoia_level=1,setvar:tx.detection_paranoia_level=1,setvar:tx.inbound_anomaly_score_threshold=5,setvar:tx.outbound_anomaly_score_threshold=4"
SecAction "id:900990,phase:1,nolog,pass,t:none,setvar:tx.crs_setup_version=4280"
MSC
cat >>"$B/modsec.conf" <<MSC
Include $SHARED_CRS/plugins-available/wordpress-rule-exclusions/wordpress-rule-exclusions-config.conf
Include $SHARED_CRS/plugins-available/wordpress-rule-exclusions/wordpress-rule-exclusions-before.conf
Include $SHARED_CRS/rules/REQUEST-*.conf
MSC
mkdir -p "$B/nginx"
cat >"$B/nginx.conf" <<NGX
load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;
worker_processes $(nproc);
pid $B/nginx.pid;
error_log $B/nginx-error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $B/nginx/body;
  proxy_temp_path $B/nginx/proxy;
  fastcgi_temp_path $B/nginx/fastcgi;
  uwsgi_temp_path $B/nginx/uwsgi;
  scgi_temp_path $B/nginx/scgi;
  client_max_body_size 10m;
  upstream origin { server 127.0.0.1:$ORIGIN; keepalive 64; }
  server {
    listen 127.0.0.1:$NG_ON;
    modsecurity on;
    modsecurity_rules_file $B/modsec.conf;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; }
  }
  server {
    listen 127.0.0.1:$NG_OFF;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; }
  }
}
NGX
nginx -p "$B/nginx" -c "$B/nginx.conf" -g 'daemon off;' 2>>"$B/nginx-error.log" & pids+=($!)
wait_port "$NG_ON"

echo "== $(date -u +%FT%TZ) peakguard $(git rev-parse --short HEAD) vs nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') + libnginx-mod-http-modsecurity $(dpkg-query -W -f='${Version}' libnginx-mod-http-modsecurity); CRS 4.28.0 + wordpress-rule-exclusions (both), libmodsecurity $(dpkg-query -W -f='${Version}' libmodsecurity3); $(nproc) cores"
curl -s -H 'Authorization: Bearer bench' "http://127.0.0.1:$PG_CORPUS_ADMIN/status" | python3 -c 'import json,sys; w=json.load(sys.stdin)["waf"][0]; print("   peakguard runs CRS", w["crs"], "(" + w["found"] + "), plugins", w["plugins"])'

echo "== 1. the corpus"
summary() { # results-file
  python3 - "$CORPUS" "$1" <<'PY'
import json, sys
recs = {json.loads(l)["id"]: json.loads(l) for l in open(sys.argv[1])}
got = {}
status = {}
for line in open(sys.argv[2]):
    r = json.loads(line)
    got[r["id"]] = r["blocked"]
    status[r["id"]] = r.get("status")
for name, select in [
    ("crs PL1 attacks", lambda r: r["source"] == "crs" and r["expect"] == "block" and r["paranoia"] == 1),
    ("gotestwaf attacks", lambda r: r["source"] == "gotestwaf" and r["expect"] == "block"),
    ("clean benign", lambda r: r["expect"] == "allow" and r["source"] != "crs-wp" and (r["meta"].get("crs_ref") or {}).get("pl1") != "block"),
    ("crs-wp allow (WordPress requests)", lambda r: r["source"] == "crs-wp" and r["expect"] == "allow"),
]:
    ids = [i for i, r in recs.items() if i in got and select(r)]
    n = len(ids); b = sum(1 for i in ids if got[i])
    parser = sum(1 for i in ids if not got[i] and status[i] == 400)
    print(f"  {name:<36} n={n:<5} blocked {b:>5} ({100*b/max(n,1):5.1f} %); refused 400 by the HTTP server before the WAF: {parser}")
PY
}
for target in "peakguard:$PG_CORPUS" "nginx-modsecurity:$NG_ON"; do
  name=${target%%:*}; port=${target##*:}
  python3 "$SCORE" --url "http://127.0.0.1:$port" --max-paranoia 1 --workers 4 --source crs --source gotestwaf --results "$B/$name-a.jsonl" "$CORPUS" >/dev/null
  python3 "$SCORE" --url "http://127.0.0.1:$port" --wp-uri --workers 4 --source crs-wp --results "$B/$name-b.jsonl" "$CORPUS" >/dev/null
  cat "$B/$name-a.jsonl" "$B/$name-b.jsonl" >"$B/$name.jsonl"
  echo "$name:"
  summary "$B/$name.jsonl"
done

python3 - "$B/peakguard.jsonl" "$B/nginx-modsecurity.jsonl" <<'PY'
import json, sys
a = {json.loads(l)["id"]: json.loads(l) for l in open(sys.argv[1])}
b = {json.loads(l)["id"]: json.loads(l) for l in open(sys.argv[2])}
only_nginx = [i for i in a if a[i]["expect"] == "block" and not a[i]["blocked"] and b.get(i, {}).get("blocked")]
only_pg = [i for i in a if a[i]["expect"] == "block" and a[i]["blocked"] and not b.get(i, {}).get("blocked")]
print("  attacks only nginx blocks:", " ".join(only_nginx) or "none")
print("  attacks only peakguard blocks:", " ".join(only_pg) or "none")
PY
# The same WordPress requests from a logged-in editor: a session the origin issued through
# peakguard (the simulated origin's /wp-login.php sets one), added to each record.
cookie=$(curl -s -D - -o /dev/null -X POST -d 'log=editor&pwd=x' "http://127.0.0.1:$PG_CORPUS/wp-login.php" | tr -d '\r' | awk -F': ' 'tolower($1)=="set-cookie" {split($2,a,";"); print a[1]}' | grep wordpress_logged_in_ | head -1)
python3 - "$CORPUS" "$cookie" >"$B/crs-wp-editor.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["source"] != "crs-wp" or r.get("raw_b64"):
        continue
    r["headers"] = [h for h in r["headers"] if h[0].lower() != "cookie"] + [["Cookie", sys.argv[2]]]
    print(json.dumps(r))
PY
for target in "peakguard:$PG_CORPUS" "nginx-modsecurity:$NG_ON"; do
  name=${target%%:*}; port=${target##*:}
  python3 "$SCORE" --url "http://127.0.0.1:$port" --wp-uri --workers 4 --results "$B/$name-editor.jsonl" "$B/crs-wp-editor.jsonl" >/dev/null
  python3 -c "
import json,sys
rs=[json.loads(l) for l in open(sys.argv[1])]
allow=[r for r in rs if r['expect']=='allow']; b=sum(1 for r in allow if r['blocked'])
print(f'  {sys.argv[2]:<18} crs-wp allow with an editor session: n={len(allow)} blocked {b} ({100*b/max(len(allow),1):.1f} %)')
print('    still blocked:', ' '.join(r['id'] for r in allow if r['blocked']))" "$B/$name-editor.jsonl" "$name"
done

echo "== 2. cost per inspected request: /echo (no-store, so every request is inspected), $RATE req/s for ${DURATION}s, browser headers; $ROUNDS rounds, the four in turn, median of the rounds"
printf '/echo?q=shoes&utm_source=newsletter&page=2\n' >"$B/urls.txt"
targets=("peakguard WAF on:$PG_ON" "peakguard WAF off:$PG_OFF" "nginx ModSecurity on:$NG_ON" "nginx ModSecurity off:$NG_OFF")
# Warm-up (discarded): each server's first requests pay for page faults and lazily built
# state; nginx's WAF server block has just had the corpus, peakguard's WAF edge nothing.
for target in "${targets[@]}"; do
  target/release/peakguard rehearse --target "http://127.0.0.1:${target##*:}" --urls "$B/urls.txt" --rate "$RATE" --duration 3s >/dev/null 2>&1
done
: >"$B/cost.txt"
for r in $(seq 1 "$ROUNDS"); do
  for target in "${targets[@]}"; do
    name=${target%%:*}; port=${target##*:}
    target/release/peakguard rehearse --target "http://127.0.0.1:$port" --urls "$B/urls.txt" --rate "$RATE" --duration "${DURATION}s" --json "$B/r.json" >/dev/null 2>&1
    python3 -c "import json,sys; t=json.load(open('$B/r.json'))['total']; print(f'{sys.argv[1]}\t{t[\"p50_ms\"]}\t{t[\"p99_ms\"]}')" "$name" >>"$B/cost.txt"
  done
done
python3 - "$B/cost.txt" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, p50, p99 = line.rstrip("\n").split("\t")
    rows[name].append((float(p50), float(p99)))
for name, runs in rows.items():
    p50 = statistics.median(r[0] for r in runs)
    p99 = statistics.median(r[1] for r in runs)
    each = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in runs)
    print(f"  {name:<24} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms   (rounds p50/p99: {each})")
on = lambda who: statistics.median(r[0] for r in rows[f"{who} on"]) - statistics.median(r[0] for r in rows[f"{who} off"])
print(f"  added by the WAF at p50: peakguard {on('peakguard WAF'):.2f} ms, nginx {on('nginx ModSecurity'):.2f} ms")
PY

echo "== 3. cache hits, WAF on vs off (50 connections, browser headers, ${DURATION}s, $ROUNDS rounds alternating: wrk over HTTP/1.1, h2load over TLS + HTTP/2; nginx and the corpus edge stopped first)"
kill "$(cat "$B/nginx.pid")" 2>/dev/null || true
kill "$(cat "$B/corpus.pid")" 2>/dev/null || true
H=(-H 'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' -H 'Accept-Encoding: gzip, deflate, br' -H 'Accept-Language: en-US,en;q=0.5' -H 'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0')
for port in "$PG_ON" "$PG_OFF"; do curl -s -o /dev/null "${H[@]}" "http://127.0.0.1:$port/page/home"; done
ratios=()
for r in $(seq 1 "$ROUNDS"); do
  declare -A rps=()
  for which in on off; do
    port=$PG_ON; [ "$which" = off ] && port=$PG_OFF
    rps[$which]=$(wrk -t2 -c50 -d"${DURATION}s" "${H[@]}" "http://127.0.0.1:$port/page/home" | awk '/Requests\/sec/ {print $2}')
  done
  ratio=$(python3 -c "print(f'{${rps[on]} / ${rps[off]}:.3f}')")
  ratios+=("$ratio")
  echo "  round $r: WAF on ${rps[on]} req/s, off ${rps[off]} req/s, on/off $ratio"
done
python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[1:]]; print(f'  HTTP/1.1 on/off, median of {len(r)} rounds: {statistics.median(r):.3f} (min {min(r):.3f}, max {max(r):.3f})')" "${ratios[@]}"
H2=(-H 'accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' -H 'accept-encoding: gzip, deflate, br' -H 'accept-language: en-US,en;q=0.5' -H 'user-agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0')
for port in "$PG_ON_TLS" "$PG_OFF_TLS"; do curl -sk -o /dev/null "${H[@]}" "https://127.0.0.1:$port/page/home"; done
h2ratios=()
for r in $(seq 1 "$ROUNDS"); do
  declare -A h2rps=()
  for which in on off; do
    port=$PG_ON_TLS; [ "$which" = off ] && port=$PG_OFF_TLS
    out=$(h2load -t2 -c50 -m1 -D "$DURATION" --warm-up-time=1 "${H2[@]}" "https://127.0.0.1:$port/page/home" 2>&1) || true
    h2rps[$which]=$(echo "$out" | awk '/^finished in/ {print $4}')
    ok=$(echo "$out" | awk '/^requests:/ {print $8}')
    [ "${ok:-0}" -gt 0 ] || { echo "h2load got no answer from $which:" >&2; echo "$out" >&2; exit 1; }
  done
  ratio=$(python3 -c "print(f'{${h2rps[on]} / ${h2rps[off]}:.3f}')")
  h2ratios+=("$ratio")
  echo "  round $r (TLS + HTTP/2): WAF on ${h2rps[on]} req/s, off ${h2rps[off]} req/s, on/off $ratio"
done
python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[1:]]; print(f'  TLS + HTTP/2 on/off, median of {len(r)} rounds: {statistics.median(r):.3f} (min {min(r):.3f}, max {max(r):.3f})')" "${h2ratios[@]}"
echo "  inspections by the WAF-on edge (the hits are not among them):"
curl -s -H 'Authorization: Bearer bench' "http://127.0.0.1:$PG_ON_ADMIN/metrics" | grep '^peakguard_waf_inspections_total' | sed 's/^/    /'

#!/usr/bin/env bash
# The peak benchmark (issue P5), side by side in one run on loopback, driven by
# `peakguard rehearse` with browser headers: the private real WordPress (scripts/wp-env.sh)
# with PHP-FPM `pm = dynamic`, `pm.max_children = 4`, and a cold cache for each target; an
# open-model spike ramping to RATE requests/s (default 1,000: 5,000 visitors each asking for a
# page every 5 s), then holding:
#   90 % anonymous visitors over ~200 URLs (the sitemap),
#    8 % shoppers (a page, add to cart — the shop issues the cart cookies — cart, checkout;
#        the cart and checkout are uncacheable and do real database work),
#    2 % logged-in users (logged in through the target before the run).
# Targets: nginx direct (the origin itself), Varnish (standard WordPress VCL), peakguard with
# its shield off, peakguard with it on as it comes (origin admission, here with a fixed
# limit of 2 = pm.max_children - 2: with pm = dynamic PHP-FPM wants one idle spare, and a
# worker stays busy for a moment after its response has gone out, so a limit of 3 lets
# PHP-FPM count its pool full now and then), and the same with the waiting room switched on and sized by the
# origin itself (newcomers line up while origin admission estimates a wait over 2 s; the
# line moves only while it is shorter). The rehearsal behaves like browsers in the room: it
# refreshes after Retry-After with the cookie that holds its place, and reports the time in
# line apart from the requests.
# For each: success rate, p50/p99 and timeouts per class, and the waiting room's visitors;
# PHP-FPM's busiest moment (its status page — on a hidden pool of its own, so sampling takes
# no worker — every 100 ms, and its own high-water mark), its longest listen queue and its
# own count of the times it reached pm.max_children (with pm = dynamic it also logs each);
# for peakguard, the most requests it let reach the origin at once and the time each lane
# waited for its turn.
# Bounded: RAMP + HOLD seconds per target (default 20 + 40), requests time out after 30 s
# (about 10 minutes in all).
#
#   bench/peak.sh                      (builds peakguard --release, starts WordPress)
#   RATE=500 HOLD=20 bench/peak.sh
#   TARGETS="peakguard-shield-room" RATE=300 HOLD=15 bench/peak.sh   (some targets only)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-1000}
RAMP=${RAMP:-20}
HOLD=${HOLD:-40}
LIMIT=${LIMIT:-2}   # peakguard's origin limit (PHP-FPM has 4 workers; see above)
TARGETS=${TARGETS:-nginx varnish peakguard-shield-off peakguard-shield-on peakguard-shield-room}
wanted() { [[ " $TARGETS " == *" $1 "* ]]; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export PG_E2E_DIR=${PG_E2E_DIR:-/tmp/peakguard-bench-peak-wp}
export PG_E2E_NGINX_PORT=${PG_E2E_NGINX_PORT:-26380} PG_E2E_DB_PORT=${PG_E2E_DB_PORT:-26306}
export PG_E2E_FPM_PM=dynamic
B=$(mktemp -d /tmp/peakguard-bench-peak.XXXXXX)
chmod 755 "$B"   # varnishd drops privileges and must read its VCL
VARNISH_PORT=26381 VARNISH_ADMIN=26382 PG_PORT=26383 PG_ADMIN=26384
ORIGIN_PORT=$PG_E2E_NGINX_PORT
edge_pid=""
cleanup() {
  [ -n "$edge_pid" ] && kill "$edge_pid" 2>/dev/null || true
  [ -f "$B/varnish.pid" ] && kill "$(cat "$B/varnish.pid")" 2>/dev/null || true
  scripts/wp-env.sh down >/dev/null 2>&1 || true
  rm -rf "$B"
}
trap cleanup EXIT

scripts/wp-env.sh up >&2
cargo build --release -q -p peakguard
PG=$PWD/target/release/peakguard
FPM_LOG=$PG_E2E_DIR/php-fpm.log

# A fresh PHP-FPM for each target: its counters (listen queue, max children reached) start
# at zero, and no worker carries the previous run's state.
restart_fpm() {
  kill "$(cat "$PG_E2E_DIR/php-fpm.pid")" 2>/dev/null || true
  for _ in $(seq 1 100); do [ -f "$PG_E2E_DIR/php-fpm.pid" ] || break; sleep 0.1; done
  scripts/wp-env.sh up >/dev/null 2>&1
  # The previous target may have left MariaDB busy: WordPress answers a failed query with a
  # redirect to its installer, and the logins before the run would fail. Wait until the
  # home page answers 200 (at most 60 s).
  for _ in $(seq 1 120); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: wp.test' "http://127.0.0.1:$ORIGIN_PORT/")" = 200 ] && break
    sleep 0.5
  done
}

cat >"$B/scenario.toml" <<TOML
profile = "ramp 0-$RATE ${RAMP}s, hold ${HOLD}s"
concurrency = 4000
timeout = "30s"
warm_after = "${RAMP}s"
sitemap = true
max_urls = 200
[[class]]
kind = "anonymous"
weight = 90
[[class]]
kind = "shopper"
weight = 8
add_to_cart = ["/?add-to-cart=11", "/?add-to-cart=12", "/?add-to-cart=13"]
cart = "/cart/"
checkout = "/checkout/"
[[class]]
kind = "logged_in"
weight = 2
username = "admin"
password = "e2e-admin-pass"
sessions = 20
TOML

sed "s/@ORIGIN_PORT@/$ORIGIN_PORT/" bench/wordpress.vcl.in >"$B/wordpress.vcl"

edge_config() { # $1 = extra site keys
  cat <<TOML
[server]
listen = ["127.0.0.1:$PG_PORT"]
pid_file = "$B/edge/pid"
upgrade_sock = "$B/edge/upgrade.sock"
[admin]
listen = "127.0.0.1:$PG_ADMIN"
token = "bench"
[cache]
disk_path = "$B/edge/cache"
[maintenance]
state_file = "$B/edge/maintenance.json"
[shield]
state_file = "$B/edge/shield.json"
room_key_file = "$B/edge/room.key"
[[site]]
name = "wp"
hosts = ["wp.test"]
origin = "http://127.0.0.1:$ORIGIN_PORT"
$1
TOML
}

start_edge() { # $1 = extra site keys
  rm -rf "$B/edge"; mkdir -p "$B/edge"
  edge_config "$1" >"$B/edge.toml"
  "$PG" serve --config "$B/edge.toml" 2>"$B/edge.log" & edge_pid=$!
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$PG_ADMIN/healthz" && return 0
    kill -0 "$edge_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "peakguard did not start:" >&2; cat "$B/edge.log" >&2
  exit 1
}

stop_edge() {
  kill "$edge_pid" 2>/dev/null || true
  wait "$edge_pid" 2>/dev/null || true
  edge_pid=""
}

run() { # $1 = name, $2 = port
  local name=$1 port=$2
  restart_fpm
  local reached_before log_from
  reached_before=$(grep -c "reached pm.max_children" "$FPM_LOG" 2>/dev/null || true)
  log_from=$(stat -c %s "$PG_E2E_DIR/nginx-access.log")
  mkfifo "$B/stop-$name"
  python3 bench/fpm-sampler.py "http://127.0.0.1:$ORIGIN_PORT/fpm-status?json" \
    <"$B/stop-$name" >"$B/fpm-$name.json" &
  local sampler=$!
  exec 9>"$B/stop-$name"
  echo "== $name: rehearsing (${RAMP}s ramp to $RATE req/s, ${HOLD}s hold)" >&2
  "$PG" rehearse --scenario "$B/scenario.toml" --target "http://wp.test" \
    --resolve "wp.test:80:127.0.0.1:$port" --quiet --json "$B/$name.json" >/dev/null || true
  exec 9>&-
  wait "$sampler" || true
  local reached_after
  reached_after=$(grep -c "reached pm.max_children" "$FPM_LOG" 2>/dev/null || true)
  echo $((reached_after - reached_before)) >"$B/reached-$name"
  python3 bench/nginx-concurrency.py "$PG_E2E_DIR/nginx-access.log" "$log_from" \
    "$(stat -c %s "$PG_E2E_DIR/nginx-access.log")" >"$B/nginx-most-$name"
  if [ -n "$edge_pid" ]; then
    curl -s -H "Authorization: Bearer bench" "http://127.0.0.1:$PG_ADMIN/metrics" >"$B/metrics-$name.txt"
    curl -s -H "Authorization: Bearer bench" "http://127.0.0.1:$PG_ADMIN/shield" >"$B/shield-$name.json"
  fi
}

if wanted nginx; then run nginx "$ORIGIN_PORT"; fi

if wanted varnish; then
  varnishd -a 127.0.0.1:$VARNISH_PORT -T 127.0.0.1:$VARNISH_ADMIN -f "$B/wordpress.vcl" \
    -s malloc,256m -n "$B/varnish" -P "$B/varnish.pid" -p thread_pool_min=50 \
    -p thread_pool_max=5000 >/dev/null
  run varnish "$VARNISH_PORT"
  kill "$(cat "$B/varnish.pid")"; rm -f "$B/varnish.pid"
fi

if wanted peakguard-shield-off; then
  start_edge $'[site.shield.admission]\nenabled = false\n[site.shield.login]\nenabled = false'
  run peakguard-shield-off "$PG_PORT"
  stop_edge
fi

ADMISSION=$'[site.shield.admission]\nlimit = '"$LIMIT"$'\nadaptive = false\nqueue_timeout = "20s"'
if wanted peakguard-shield-on; then
  start_edge "$ADMISSION"
  run peakguard-shield-on "$PG_PORT"
  stop_edge
fi

if wanted peakguard-shield-room; then
  start_edge "$ADMISSION"$'\n[site.shield.waiting_room]\nenabled = true\nmax_origin_wait = "2s"\nrefresh = "5s"'
  run peakguard-shield-room "$PG_PORT"
  stop_edge
fi

python3 - "$B" "$RATE" "$RAMP" "$HOLD" "$LIMIT" <<'PY'
import json, os, re, sys
b, rate, ramp, hold, limit = sys.argv[1:6]
names = [n for n in ["nginx", "varnish", "peakguard-shield-off", "peakguard-shield-on", "peakguard-shield-room"]
         if os.path.exists(os.path.join(b, f"{n}.json"))]
print(f"Spike: ramp to {rate} req/s in {ramp}s, hold {hold}s; PHP-FPM pm = dynamic, max_children = 4; peakguard's origin limit {limit}; cold cache per target.\n")
print("Requests are the answers visitors finally got; a visitor in a waiting room is counted")
print("once, with the answer it got when let in (the room's own pages are not requests).\n")
print(f"| target | class | requests | success % | timeouts | p50 ms | p99 ms | p99 ms from {ramp}s on (warm) | waiting room: visitors / let in / still in line at the end | time in line p50 / p99 s |")
print("|---|---|---|---|---|---|---|---|---|---|")
for n in names:
    r = json.load(open(os.path.join(b, f"{n}.json")))
    for cls in ["anonymous", "shopper", "logged_in"]:
        s = r["classes"].get(cls)
        if not s:
            continue
        ok = 100.0 * (1 - s["error_rate"]) if s["requests"] else 0.0
        room = s.get("waiting_room")
        held = f"{room['visitors']} / {room['let_in']} / {room['unfinished']}" if room else "-"
        wait = f"{room['wait_p50_ms'] / 1000:.1f} / {room['wait_p99_ms'] / 1000:.1f}" if room and room["let_in"] else "-"
        warm = r.get("warm_classes", {}).get(cls)
        warm_p99 = f"{warm['p99_ms']:.1f}" if warm else "-"
        print(f"| {n} | {cls} | {s['requests']} | {ok:.2f} | {s['timeouts']} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | {warm_p99} | {held} | {wait} |")
    if r.get("not_sent"):
        print(f"| {n} | (not sent: backlog full) | {r['not_sent']} | | | | |")
print()
print("| target | PHP requests at once (nginx's log) | PHP-FPM most active (sampled / its own high-water mark) | longest listen queue | status samples unanswered | times max_children reached (FPM's counter) | 'reached max_children' log lines | peakguard: most at the origin |")
print("|---|---|---|---|---|---|---|---|")
for n in names:
    f = json.load(open(os.path.join(b, f"fpm-{n}.json")))
    reached = open(os.path.join(b, f"reached-{n}")).read().strip()
    peak = "-"
    sh = os.path.join(b, f"shield-{n}.json")
    if os.path.exists(sh):
        adm = json.load(open(sh)).get("admission") or []
        peak = str(adm[0]["peak_in_flight"]) if adm else "not limited"
    counter = f["max_children_reached"]
    counter = "no answer (pool still busy)" if counter is None else counter
    mark = f.get("max_active_processes")
    most = open(os.path.join(b, f"nginx-most-{n}")).read().strip()
    print(f"| {n} | {most} | {f['most_active']} / {'-' if mark is None else mark} | {f['longest_listen_queue']} | {f['unanswered']} of {f['answered'] + f['unanswered']} | {counter} | {reached} | {peak} |")
for target in ["peakguard-shield-on", "peakguard-shield-room"]:
    m = os.path.join(b, f"metrics-{target}.txt")
    if not os.path.exists(m):
        continue
    text = open(m).read()
    def val(pat):
        x = re.search(pat, text)
        return float(x.group(1)) if x else 0.0
    print()
    for lane in ["checkout", "session", "anonymous", "bot"]:
        waited = val(rf'peakguard_admission_total{{site="wp",lane="{lane}",result="after_wait"}} (\S+)')
        at_once = val(rf'peakguard_admission_total{{site="wp",lane="{lane}",result="at_once"}} (\S+)')
        refused = val(rf'peakguard_admission_total{{site="wp",lane="{lane}",result="timed_out"}} (\S+)')
        secs = val(rf'peakguard_admission_wait_seconds_total{{site="wp",lane="{lane}"}} (\S+)')
        mean = secs / waited * 1000 if waited else 0
        print(f"- {target}, lane {lane}: {int(at_once)} let in at once, {int(waited)} after waiting (mean {mean:.0f} ms), {int(refused)} timed out")
PY

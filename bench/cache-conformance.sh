#!/usr/bin/env bash
# The `http` profile against the HTTP cache conformance suite (http-cache-tests on npm, the
# suite behind cache-tests.fyi), scored beside the results the suite publishes for other
# caches (nginx, Squid, ATS, Varnish, Apache, nuster, Fastly; shipped in its package).
# Everything on loopback: the suite's origin on 26411, peakguard on 26412 (admin 26413).
#
#   bench/cache-conformance.sh            # prints the table; JSON results in the temp dir
#   RUNS=3 bench/cache-conformance.sh     # a test counts as passed when it passed in every run
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE_VERSION=${SUITE_VERSION:-0.4.5}
RUNS=${RUNS:-1}
ORIGIN_PORT=26411 EDGE_PORT=26412 ADMIN_PORT=26413
B=$(mktemp -d /tmp/peakguard-conformance.XXXXXX)
cleanup() {
  [ -n "${pg_pid:-}" ] && kill "$pg_pid" 2>/dev/null || true
  [ -n "${origin_pid:-}" ] && kill "$origin_pid" 2>/dev/null || true
  rm -rf "$B"
}
trap cleanup EXIT

if ! command -v npm >/dev/null 2>&1; then
  echo "[conformance] installing nodejs and npm" >&2
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/dev/null
fi
cargo build --release -q -p peakguard --bin peakguard
(cd "$B" && npm pack -q "http-cache-tests@$SUITE_VERSION" >/dev/null && tar xzf http-cache-tests-*.tgz \
  && cd package && npm install -q --no-save --omit=dev node-fetch@2 >/dev/null 2>&1)
SUITE=$B/package

mkdir -m 700 "$B/state"
cat >"$B/peakguard.toml" <<CNF
[server]
listen = ["127.0.0.1:$EDGE_PORT"]
threads = 2
pid_file = "$B/state/pid"
upgrade_sock = "$B/state/upgrade.sock"
[admin]
listen = "127.0.0.1:$ADMIN_PORT"
token_file = "$B/state/token"
[cache]
disk_path = "$B/state/cache"
[maintenance]
state_file = "$B/state/maintenance.json"
[shield]
state_file = "$B/state/shield.json"
room_key_file = "$B/state/room.key"
[[site]]
name = "conformance"
profile = "http"
origin = "http://127.0.0.1:$ORIGIN_PORT"
CNF

(cd "$SUITE" && npm_config_port=$ORIGIN_PORT npm_package_config_protocol=http \
  npm_package_config_pidfile="$B/origin.pid" exec node server/server.mjs >"$B/origin.log" 2>&1) &
origin_pid=$!
target/release/peakguard serve --config "$B/peakguard.toml" >"$B/peakguard.log" 2>&1 &
pg_pid=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$EDGE_PORT/" && curl -s -o /dev/null "http://127.0.0.1:$ORIGIN_PORT/" && break
  sleep 0.1
done

for i in $(seq "$RUNS"); do
  echo "[conformance] run $i of $RUNS" >&2
  (cd "$SUITE" && npm_config_base="http://127.0.0.1:$EDGE_PORT" npm_package_config_id= \
    node --no-warnings cli.mjs >"$B/peakguard-$i.json")
done
cat >"$B/kinds.mjs" <<JS
import tests from '$SUITE/tests/index.mjs'
import surrogate from '$SUITE/tests/surrogate-control.mjs'
tests.push(surrogate)
const out = {}
for (const s of tests) for (const t of s.tests) {
  if (t.browser_only === true) continue
  out[t.id] = t.kind || 'required'
}
console.log(JSON.stringify(out))
JS
node --no-warnings "$B/kinds.mjs" >"$B/kinds.json"
python3 bench/cache-conformance-score.py "$B/kinds.json" "$SUITE/results" "$B"/peakguard-*.json

#!/usr/bin/env bash
# The WAF against the shared corpus (../shared/waf-corpus/dev.jsonl), through the real edge:
# `peakguard serve` with [site.waf] at paranoia level 1 in front of the simulated origin,
# every record replayed byte for byte by the corpus's own runner (score.py), one
# connection each. Prints score.py's per-category table for: the PL1 attack set (crs at
# paranoia 1 and gotestwaf), the WordPress requests (crs-wp, their WordPress paths), and all
# allow records. Every request is a cache bypass (inspected). Loopback only; stops what it
# started.
#
#   bench/waf-corpus.sh [CORPUS]        (default ../shared/waf-corpus/dev.jsonl)
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${1:-../shared/waf-corpus/dev.jsonl}
SCORE=$(dirname "$CORPUS")/score.py
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cargo build --release -q -p peakguard --bin peakguard
cargo build --release -q -p peakguard-sim --example sim_origin
ORIGIN=$(free_port); EDGE=$(free_port); ADMIN=$(free_port)
target/release/examples/sim_origin "$ORIGIN" >/dev/null 2>&1 & pids+=($!)
cat >"$work/peakguard.toml" <<TOML
[server]
listen = ["127.0.0.1:$EDGE"]
pid_file = "$work/pid"
upgrade_sock = "$work/upgrade.sock"
access_log = ""
[admin]
listen = "127.0.0.1:$ADMIN"
token = "bench"
[cache]
disk_path = ""
[maintenance]
state_file = "$work/maintenance.json"
[shield]
state_file = "$work/shield.json"
room_key_file = "$work/room.key"
[waf]
log = "$work/waf.jsonl"
[[site]]
name = "corpus"
hosts = ["*"]
origin = "http://127.0.0.1:$ORIGIN"
# Every request goes to the origin, as dynamic pages do: a cache hit is never inspected (it
# cannot reach PHP), and a corpus of repeated URLs would otherwise be mostly hits.
bypass_paths = ["/"]
[site.shield.admission]
enabled = false
[site.shield.limits]
enabled = false
[site.shield.login]
enabled = false
[site.waf]
paranoia = 1
TOML
target/release/peakguard serve --config "$work/peakguard.toml" 2>"$work/edge.log" & pids+=($!)
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$ADMIN/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$ADMIN/healthz" >/dev/null || { echo "peakguard did not start:" >&2; cat "$work/edge.log" >&2; exit 1; }
echo "== $(date -u +%FT%TZ) peakguard $(git rev-parse --short HEAD), CRS $(dpkg-query -W -f='${Version}' modsecurity-crs), libmodsecurity $(dpkg-query -W -f='${Version}' libmodsecurity3)"
echo "== PL1 attacks (crs paranoia 1, gotestwaf) and every allow record"
python3 "$SCORE" --url "http://127.0.0.1:$EDGE" --max-paranoia 1 --workers 4 --by source-category --source crs --source gotestwaf --results "$work/results.jsonl" "$CORPUS"
echo "== the clean benign set (expect allow, not blocked by the reference CRS at PL1) and the references"
python3 - "$CORPUS" "$work/results.jsonl" <<'PY'
import json, sys
recs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    recs[r["id"]] = r
got = {}
for line in open(sys.argv[2]):
    r = json.loads(line)
    got[r["id"]] = r["blocked"]
def rate(select, ref=None):
    ids = [i for i, r in recs.items() if i in got and select(r)]
    ours = sum(1 for i in ids if got[i])
    theirs = sum(1 for i in ids if (recs[i]["meta"].get("crs_ref") or {}).get("pl1") == "block")
    return len(ids), ours, theirs
for name, select in [
    ("crs PL1 attacks", lambda r: r["source"] == "crs" and r["expect"] == "block" and r["paranoia"] == 1),
    ("gotestwaf attacks", lambda r: r["source"] == "gotestwaf" and r["expect"] == "block"),
    ("clean benign (allow, reference passes)", lambda r: r["expect"] == "allow" and (r["meta"].get("crs_ref") or {}).get("pl1") != "block"),
    ("all allow records sent here", lambda r: r["expect"] == "allow"),
]:
    n, ours, theirs = rate(select)
    print(f"{name:<42} n={n:<5} blocked: peakguard {ours} ({100*ours/max(n,1):.1f} %), reference {theirs} ({100*theirs/max(n,1):.1f} %)")
PY
echo "== WordPress requests (crs-wp, on their WordPress paths)"
python3 "$SCORE" --url "http://127.0.0.1:$EDGE" --wp-uri --workers 4 --source crs-wp "$CORPUS"

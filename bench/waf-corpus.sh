#!/usr/bin/env bash
# The WAF against the shared corpus (../shared/waf-corpus/dev.jsonl), through the real edge,
# CRS 4 beside Debian's CRS 3.3 in one run: two `peakguard serve` at paranoia level 1 in
# front of the simulated origin —
#   crs4: CRS 4.28 and the WordPress rule exclusions plugin, installed the way a user does
#         (`peakguard waf crs install` from a release tarball made of ../shared/crs-4,
#         `peakguard waf plugin install`) into the bench's own crs_home;
#   crs3: Debian's modsecurity-crs (the fallback);
# every record replayed byte for byte by the corpus's own runner (score.py), one connection
# each, every request a cache bypass (inspected). Prints, for both: the PL1 attack set (crs
# at paranoia 1), GoTestWAF's attacks, the clean benign set, the WordPress requests that must
# pass (crs-wp on their WordPress paths) without and with a login session the origin issued
# through the edge, and every category's rates side by side. Loopback only; stops what it
# started.
#
#   bench/waf-corpus.sh [CORPUS]        (default ../shared/waf-corpus/dev.jsonl)
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${1:-../shared/waf-corpus/dev.jsonl}
SCORE=$(dirname "$CORPUS")/score.py
SHARED_CRS=${SHARED_CRS:-../shared/crs-4}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cargo build --release -q -p peakguard --bin peakguard
cargo build --release -q -p peakguard-sim --example sim_origin
ORIGIN=$(free_port)
target/release/examples/sim_origin "$ORIGIN" >/dev/null 2>&1 & pids+=($!)

edge() { # name port admin crs-lines
  cat >"$work/$1.toml" <<TOML
[server]
listen = ["127.0.0.1:$2"]
pid_file = "$work/$1.pid"
upgrade_sock = "$work/$1-upgrade.sock"
access_log = ""
[admin]
listen = "127.0.0.1:$3"
token = "bench"
[cache]
disk_path = ""
[maintenance]
state_file = "$work/$1-maintenance.json"
[shield]
state_file = "$work/$1-shield.json"
room_key_file = "$work/$1-room.key"
[waf]
log = "$work/$1-waf.jsonl"
crs_home = "$work/crs-home"
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
$4
TOML
  target/release/peakguard serve --config "$work/$1.toml" 2>"$work/$1.log" & pids+=($!)
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$3/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "peakguard ($1) did not start:" >&2; cat "$work/$1.log" >&2; exit 1
}

# CRS 4 as a user gets it (bench/crs4-install.sh): into $work/crs-home.
. bench/crs4-install.sh
crs4_install "$work" "$SHARED_CRS"
CRS4_EDGE=$(free_port); CRS4_ADMIN=$(free_port); CRS3_EDGE=$(free_port); CRS3_ADMIN=$(free_port)
edge crs4 "$CRS4_EDGE" "$CRS4_ADMIN" ""
edge crs3 "$CRS3_EDGE" "$CRS3_ADMIN" "crs_dir = \"/usr/share/modsecurity-crs\""
running() { curl -s -H 'Authorization: Bearer bench' "http://127.0.0.1:$1/status" | python3 -c 'import json,sys; w=json.load(sys.stdin)["waf"][0]; print("CRS", w["crs"], "(" + w["found"] + "), plugins", w["plugins"])'; }
echo "== $(date -u +%FT%TZ) peakguard $(git rev-parse --short HEAD), libmodsecurity $(dpkg-query -W -f='${Version}' libmodsecurity3)"
echo "   crs4 edge: $(running "$CRS4_ADMIN")"
echo "   crs3 edge: $(running "$CRS3_ADMIN")"

# A login session each edge saw the origin issue (the simulated origin's /wp-login.php sets
# one), added to every crs-wp record: what a logged-in editor sends.
editor_records() { # edge-port → file
  local cookie
  cookie=$(curl -s -D - -o /dev/null -X POST -d 'log=editor&pwd=x' "http://127.0.0.1:$1/wp-login.php" | tr -d '\r' | awk -F': ' 'tolower($1)=="set-cookie" {split($2,a,";"); print a[1]}' | grep wordpress_logged_in_ | head -1)
  python3 - "$CORPUS" "$cookie" >"$2" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["source"] != "crs-wp":
        continue
    r["headers"] = [h for h in r["headers"] if h[0].lower() != "cookie"] + [["Cookie", sys.argv[2]]]
    r.pop("raw_b64", None)
    print(json.dumps(r))
PY
}

for name in crs4 crs3; do
  port=$CRS4_EDGE; [ "$name" = crs3 ] && port=$CRS3_EDGE
  python3 "$SCORE" --url "http://127.0.0.1:$port" --max-paranoia 1 --workers 4 --source crs --source gotestwaf --results "$work/$name-main.jsonl" "$CORPUS" >"$work/$name-main.txt"
  python3 "$SCORE" --url "http://127.0.0.1:$port" --wp-uri --workers 4 --source crs-wp --results "$work/$name-wp.jsonl" "$CORPUS" >/dev/null
  editor_records "$port" "$work/$name-editor-records.jsonl"
  python3 "$SCORE" --url "http://127.0.0.1:$port" --wp-uri --workers 4 --results "$work/$name-editor.jsonl" "$work/$name-editor-records.jsonl" >/dev/null
done

python3 - "$CORPUS" "$work" <<'PY'
import collections, json, sys
recs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    recs[r["id"]] = r
work = sys.argv[2]
def load(path):
    out = {}
    for line in open(path):
        r = json.loads(line)
        out[r["id"]] = r
    return out
res = {n: {part: load(f"{work}/{n}-{part}.jsonl") for part in ("main", "wp", "editor")} for n in ("crs4", "crs3")}
ref = lambda r: (r["meta"].get("crs_ref") or {}).get("pl1") == "block"
ref_wp = lambda r: (r["meta"].get("crs_wp_ref") or {}).get("pl1") == "block"
subsets = [
    ("crs PL1 attacks", "main", lambda r: r["source"] == "crs" and r["expect"] == "block" and r["paranoia"] == 1, ref, "≥ 97 %"),
    ("… refused (403, or 400 by the edge's parser)", "main", lambda r: r["source"] == "crs" and r["expect"] == "block" and r["paranoia"] == 1, ref, "", True),
    ("GoTestWAF attacks", "main", lambda r: r["source"] == "gotestwaf" and r["expect"] == "block", ref, "> 48 %"),
    ("clean benign (allow, reference passes)", "main", lambda r: r["expect"] == "allow" and not ref(r), ref, "≤ 2 %"),
    ("all allow records (crs, gotestwaf)", "main", lambda r: r["expect"] == "allow", ref, ""),
    ("WordPress requests (crs-wp allow), no session", "wp", lambda r: r["source"] == "crs-wp" and r["expect"] == "allow", ref_wp, ""),
    ("the same, an issued editor session", "editor", lambda r: r["source"] == "crs-wp" and r["expect"] == "allow", ref_wp, "≤ 1 %"),
    ("crs-wp attacks (must stay blocked), editor session", "editor", lambda r: r["source"] == "crs-wp" and r["expect"] == "block", ref_wp, ""),
]
print()
print(f"{'subset':<52} {'n':>5}  {'CRS 4.28 + plugin':>18}  {'CRS 3.3.4':>16}  {'reference':>16}  goal")
for name, part, select, refsel, goal, *refused in subsets:
    ids = [i for i in res["crs4"][part] if i in recs and select(recs[i])]
    n = len(ids)
    hit = lambda r: r.get("blocked") or (refused and r.get("status") == 400)
    cell = lambda k: f"{(b := sum(1 for i in ids if hit(res[k][part].get(i, {})))):>5} ({100*b/max(n,1):5.1f} %)"
    reject = lambda r: refsel(r) or (refused and (r["meta"].get("crs_ref") or {}).get("pl1") == "reject")
    rb = sum(1 for i in ids if reject(recs[i]))
    print(f"{name:<52} {n:>5}  {cell('crs4'):>18}  {cell('crs3'):>16}  {rb:>5} ({100*rb/max(n,1):5.1f} %)  {goal}")
for k in ("crs4", "crs3"):
    for part in ("main", "wp", "editor"):
        bad = sum(1 for r in res[k][part].values() if r.get("status") == 400)
        if bad:
            print(f"  {k} {part}: {bad} refused 400 by the edge's HTTP parser before any guard (counted as not blocked)")
print()
print("per category (blocked / n): PL1 attacks and GoTestWAF; allow rows are what was refused")
rows = collections.defaultdict(lambda: collections.Counter())
for k in ("crs4", "crs3"):
    for i, r in res[k]["main"].items():
        rec = recs.get(i)
        if rec is None:
            continue
        key = (rec["source"], rec["category"], rec["expect"])
        rows[key][k + "_n"] += 1
        rows[key][k + "_b"] += 1 if r.get("blocked") else 0
print(f"{'source/category':<30} {'expect':<6} {'n':>5}  {'CRS 4.28':>15}  {'CRS 3.3.4':>15}")
for key in sorted(rows):
    c = rows[key]
    n = c["crs4_n"]
    f = lambda k: f"{c[k+'_b']:>4} ({100*c[k+'_b']/max(n,1):5.1f} %)"
    print(f"{key[0]+'/'+key[1]:<30} {key[2]:<6} {n:>5}  {f('crs4'):>15}  {f('crs3'):>15}")
still = [i for i, r in res["crs4"]["editor"].items() if recs[i]["expect"] == "allow" and r.get("blocked")]
print()
print("crs-wp allow still blocked with an editor session (CRS 4):", " ".join(still) or "none")
PY

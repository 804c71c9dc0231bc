#!/usr/bin/env bash
# `peakguard backup` vs Debian's restic, side by side in one run, on the same data:
# Debian's WordPress tree plus generated uploads (default ~7,000 files / ~1 GB of
# incompressible "images": ~10,000 files in all) and a private MariaDB holding a ~200 MB
# database (socket only, no TCP port).
#
# Each tool does the whole job a backup needs: restic = `mariadb-dump > file` then
# `restic backup site file` (the same dump flags peakguard uses); peakguard = `peakguard
# backup`. Measured, alternating the tools, median of ROUNDS (default 3):
#   first backup · no-change incremental · one-file-change incremental ·
#   database-only change · restore (files + dump) ·
#   peakguard's scheduled run inside `serve` (no change, one file changed) · rollback.
# Bounded by the data size; everything lives in BENCH_DIR and is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
UPLOADS=${UPLOADS:-7000}
UPLOAD_MB=${UPLOAD_MB:-1000}
DB_ROWS=${DB_ROWS:-100000}   # ~2 KB each: ~200 MB of table data
B=${BENCH_DIR:-$(mktemp -d /tmp/peakguard-bench-backup.XXXXXX)}
PORT=26401 ADMIN=26402
mkdir -p "$B"
cleanup() {
  [ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null || true
  [ -n "${SHM:-}" ] && rm -rf "$SHM"
  [ -f "$B/mysql.pid" ] && kill "$(cat "$B/mysql.pid")" 2>/dev/null || true
  sleep 1
  if [ -z "${KEEP:-}" ]; then rm -rf "$B"; fi
}
trap cleanup EXIT
command -v restic >/dev/null && command -v mariadbd >/dev/null && [ -d /usr/share/wordpress ] || {
  echo "needs Debian's restic, mariadb-server and wordpress: scripts/wp-env.sh install" >&2
  exit 2
}
cargo build --release -q -p peakguard --bin peakguard
PG=$PWD/target/release/peakguard
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "-" }'; }

echo "== data in $B"
mariadb-install-db --no-defaults --datadir="$B/mysql" --user=root --auth-root-authentication-method=socket >/dev/null 2>&1
mariadbd --no-defaults --datadir="$B/mysql" --socket="$B/mysql.sock" --skip-networking --user=root \
  --pid-file="$B/mysql.pid" --innodb-buffer-pool-size=512M >"$B/mysql.log" 2>&1 &
for _ in $(seq 1 100); do [ -S "$B/mysql.sock" ] && break; sleep 0.1; done
SQL="mariadb --socket=$B/mysql.sock -uroot"
$SQL -e "CREATE DATABASE bench; USE bench; CREATE TABLE bench.wp_posts (ID BIGINT UNSIGNED PRIMARY KEY AUTO_INCREMENT,
  post_title VARCHAR(200), post_status VARCHAR(20), post_content LONGTEXT) ENGINE=InnoDB;
  INSERT INTO bench.wp_posts (post_title, post_status, post_content)
    SELECT CONCAT('Product ', seq), 'publish', REPEAT(CONCAT(MD5(seq), ' ', SHA1(seq), ' '), 27)
    FROM seq_1_to_${DB_ROWS};"
cp -rL /usr/share/wordpress "$B/site"
python3 - "$B/site/wp-content/uploads" "$UPLOADS" "$UPLOAD_MB" <<'PY'
import os, random, sys
root, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(7)
avg = mb * 1024 * 1024 // n
for i in range(n):
    d = os.path.join(root, "20%02d" % (20 + i % 6), "%02d" % (1 + i % 12))
    os.makedirs(d, exist_ok=True)
    size = random.randint(avg // 4, avg * 7 // 4)
    with open(os.path.join(d, "img-%05d.jpg" % i), "wb") as f:
        f.write(os.urandom(size))
PY
FILES=$(find "$B/site" -type f | wc -l)
SITE_MB=$(du -sm "$B/site" | cut -f1)
DUMP_MB=$(mariadb-dump --socket="$B/mysql.sock" -uroot --single-transaction bench | wc -c | awk '{ printf "%d", $1 / 1048576 }')
echo "site: $FILES files, $SITE_MB MB; database dump: $DUMP_MB MB"

# restic: the same dump, then the same tree.
export RESTIC_PASSWORD=bench-restic RESTIC_REPOSITORY="$B/restic"
restic init -q >/dev/null
mkdir -p "$B/dump"
restic_run() {
  mariadb-dump --socket="$B/mysql.sock" -uroot --single-transaction --routines --triggers --events \
    --hex-blob --skip-dump-date bench >"$B/dump/database.sql"
  restic backup -q --host bench "$B/site" "$B/dump/database.sql" >/dev/null
}
cat >"$B/peakguard.toml" <<CNF
[server]
listen = ["127.0.0.1:$PORT"]
pid_file = "$B/pg.pid"
upgrade_sock = "$B/pg-upgrade.sock"
[admin]
listen = "127.0.0.1:$ADMIN"
token = "bench"
[maintenance]
state_file = "$B/maintenance.json"
[shield]
state_file = "$B/shield.json"
room_key_file = "$B/room.key"
[cache]
disk_path = ""
[[site]]
name = "bench"
origin = "http://127.0.0.1:9"
[site.backup]
root = "$B/site"
state_dir = "$B/pg-state"
every = "10m"
[site.backup.database]
name = "bench"
user = "root"
host = "localhost:$B/mysql.sock"
CNF
pg_run() { "$PG" backup --config "$B/peakguard.toml" >"$B/pg-last.txt" 2>&1 || { cat "$B/pg-last.txt"; exit 1; }; }
timed() { local t0; t0=$(now); "$@"; secs "$t0" "$(now)"; }
# A restore is done when it is on disk: both are timed up to a `sync`.
restic_restore() { restic restore -q latest --target "$1"; sync; }
pg_restore() { "$PG" restore latest --to "$1" --config "$B/peakguard.toml" >/dev/null; sync; }
one_upload=$(find "$B/site/wp-content/uploads" -type f -print -quit)
touch_one() { head -c "$(stat -c %s "$one_upload")" /dev/urandom >"$one_upload"; }
touch_db() { $SQL -e "UPDATE bench.wp_posts SET post_title = CONCAT('Sale ', NOW(6)) WHERE ID = 42"; }

declare -A R
echo "== first backup"
R[first_restic]=$(timed restic_run); R[first_pg]=$(timed pg_run)
echo "restic ${R[first_restic]} s, peakguard ${R[first_pg]} s"
# After the bulk load InnoDB purges and flushes for a while: its log sequence number moves,
# which peakguard rightly counts as a database change. Wait until it stands still (5 s).
settle() {
  local last="" same=0 lsn
  for _ in $(seq 1 180); do
    lsn=$($SQL -N -e "SHOW GLOBAL STATUS LIKE 'Innodb_lsn_current'" | cut -f2)
    if [ "$lsn" = "$last" ]; then same=$((same + 1)); else same=0; last=$lsn; fi
    [ $same -ge 5 ] && return
    sleep 1
  done
}
settle

stage() {   # stage NAME PREPARE: alternating, median of ROUNDS
  local name=$1 prep=$2 r="" p="" i
  for i in $(seq 1 "$ROUNDS"); do
    $prep; r="$r $(timed restic_run)"
    $prep; p="$p $(timed pg_run)"
  done
  R[${name}_restic]=$(echo "$r" | median); R[${name}_pg]=$(echo "$p" | median)
  echo "$name: restic [$r ] peakguard [$p ] — $(tail -n 1 "$B/pg-last.txt")"
}
echo "== incrementals"
stage nochange true
stage onefile touch_one
stage dbonly touch_db

echo "== restore (files + dump): to disk until synced, and to memory (tmpfs: the tools' own cost)"
SHM=$(mktemp -d /dev/shm/peakguard-bench.XXXXXX)
# The floor: copying the same tree and dump with `cp -a` (from the page cache), then `sync`.
cp_copy() { mkdir -p "$1"; cp -a "$B/site" "$B/dump/database.sql" "$1/"; sync; }
# Each round restores into a fresh directory and the copies are deleted only after the
# stage: this disk is mounted with `discard`, deleting large trees keeps the virtual disk
# busy for seconds, and that slowed whichever restore came next (about 2x) in earlier versions.
# In tmpfs (DROP=now) nothing is discarded and each copy is dropped at once to spare memory.
restore_stage() {   # restore_stage NAME TARGET_PARENT [DROP]
  local name=$1 T=$2/r drop=${3:-after} rr="" pr="" cr="" i
  settled() { [ "$drop" = now ] && rm -rf "$T"-*; sync; sleep 1; }
  # One untimed round first: the first restore after the backups ran slow for whichever
  # tool went first (restic, 1.5-2x its later rounds).
  settled; restic_restore "$T-warm-restic"; settled; pg_restore "$T-warm-pg"
  for i in $(seq 1 "$ROUNDS"); do
    settled; rr="$rr $(timed restic_restore "$T-restic-$i")"
    settled; pr="$pr $(timed pg_restore "$T-pg-$i")"
    settled; cr="$cr $(timed cp_copy "$T-cp-$i")"
  done
  rm -rf "$T"-*; sync; sleep 3
  R[${name}_restic]=$(echo "$rr" | median); R[${name}_pg]=$(echo "$pr" | median)
  R[${name}_cp]=$(echo "$cr" | median)
  # The disk's speed drifts during a stage (cp -a 1.6-7.4 s in one run): the ratio within
  # each round, where both tools met the same disk, is the fairer comparison.
  R[${name}_paired]=$(paste <(echo "$rr" | tr ' ' '\n' | grep -v '^$') <(echo "$pr" | tr ' ' '\n' | grep -v '^$') |
    awk '{ printf "%.2f ", $1 / $2 }' | median)
  echo "$name: restic [$rr ] peakguard [$pr ] cp -a [$cr ] restic/peakguard per round: median ${R[${name}_paired]}×"
}
restore_stage restore "$B"
restore_stage restoremem "$SHM" now
rm -rf "$SHM"

echo "== scheduled runs inside peakguard serve"
settle
RUST_LOG=peakguard=info "$PG" serve --config "$B/peakguard.toml" >"$B/serve.log" 2>&1 &
serve_pid=$!
backups() { curl -s -H "Authorization: Bearer bench" "http://127.0.0.1:$ADMIN/backups"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['bench']['$1'])"; }
wait_runs() { for _ in $(seq 1 600); do [ "$(backups | field runs_ok 2>/dev/null)" = "$1" ] && return; sleep 0.1; done; echo "no run $1" >&2; cat "$B/serve.log" >&2; exit 1; }
wait_runs 1     # the run at start (opens the repository, derives the key)
daemon_run() { local n; n=$(( $(backups | field runs_ok) + 1 )); curl -s -XPOST -H "Authorization: Bearer bench" "http://127.0.0.1:$ADMIN/backup" >/dev/null; wait_runs $n; printf '%.2f' "$(backups | field last_duration_secs)"; }
dn="" do=""
for i in $(seq 1 "$ROUNDS"); do
  sleep 1; dn="$dn $(daemon_run)"
  touch_one; do="$do $(daemon_run)"
done
R[daemon_nochange]=$(echo "$dn" | median); R[daemon_onefile]=$(echo "$do" | median)
echo "daemon: no change [$dn ] one file [$do ]"
grep -o "snapshot [^ ]* of bench: .*" "$B/serve.log" | tail -n 4 || true
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=""

echo "== rollback of the whole site to the first snapshot"
first=$("$PG" snapshots --json --config "$B/peakguard.toml" | python3 -c "import json,sys; print(json.load(sys.stdin)['snapshots'][0]['id'])")
t0=$(now)
"$PG" rollback "$first" --no-keep-orders --config "$B/peakguard.toml" --admin 127.0.0.1:9 --token none >"$B/rollback.txt" 2>&1 || { cat "$B/rollback.txt"; exit 1; }
R[rollback]=$(secs "$t0" "$(now)")
grep -E "^ *[0-9]+\.[0-9]+s  " "$B/rollback.txt" | head -n 20 || true

cat <<MD

| ${FILES} files, ${SITE_MB} MB + ${DUMP_MB} MB dump | restic 0.14 (dump + backup) | peakguard | restic / peakguard |
|---|---|---|---|
| first backup | ${R[first_restic]} s | ${R[first_pg]} s | $(ratio "${R[first_restic]}" "${R[first_pg]}") |
| no-change incremental | ${R[nochange_restic]} s | ${R[nochange_pg]} s | $(ratio "${R[nochange_restic]}" "${R[nochange_pg]}") |
| one-file-change incremental | ${R[onefile_restic]} s | ${R[onefile_pg]} s | $(ratio "${R[onefile_restic]}" "${R[onefile_pg]}") |
| database-only change | ${R[dbonly_restic]} s | ${R[dbonly_pg]} s | $(ratio "${R[dbonly_restic]}" "${R[dbonly_pg]}") |
| restore (files + dump) to disk, until synced | ${R[restore_restic]} s | ${R[restore_pg]} s | $(ratio "${R[restore_restic]}" "${R[restore_pg]}") (per round: ${R[restore_paired]}×) |
| (floor: \`cp -a\` of the same tree and dump to disk, until synced) | | ${R[restore_cp]} s | |
| restore (files + dump) to memory (tmpfs) | ${R[restoremem_restic]} s | ${R[restoremem_pg]} s | $(ratio "${R[restoremem_restic]}" "${R[restoremem_pg]}") (per round: ${R[restoremem_paired]}×) |
| (floor: \`cp -a\` to memory) | | ${R[restoremem_cp]} s | |
| scheduled run in \`serve\`, no change | — | ${R[daemon_nochange]} s | |
| scheduled run in \`serve\`, one file changed | — | ${R[daemon_onefile]} s | |
| rollback of the whole site | — | ${R[rollback]} s | |
MD

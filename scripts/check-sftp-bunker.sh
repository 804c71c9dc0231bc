#!/usr/bin/env bash
# A bunker over real SFTP: builds peakguard with the opendal backends, starts a private
# OpenSSH server on 127.0.0.1 (Debian's openssh-server, key login only, its own host key and
# config, nothing system-wide), and checks that
#   1. `peakguard backup` + `peakguard copy` put the snapshot in the SFTP bunker,
#   2. `peakguard snapshots --bunker` lists it (by its pgid) with nothing missing,
#   3. Debian's restic reads the bunker over its own SFTP client: lists the snapshot,
#      `check --read-data` passes, and its restore has the same sha256 for every file,
#   4. `peakguard restore --bunker` restores the same files,
#   5. no `ssh` control master (opendal starts one per connection) outlives the commands.
# Not part of scripts/test.sh: the opendal build adds 5-10 minutes on 2 cores.
# Usage: scripts/check-sftp-bunker.sh        (needs root for apt-get; port 24222)
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-24222}
W=$(mktemp -d /tmp/peakguard-sftp.XXXXXX)
sshd_pid=""
# The ssh control masters opendal starts for this run (they name our client key).
masters() { pgrep -f "ssh-connection.*$W/client_key" || true; }
cleanup() {
  [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null || true
  for pid in $(masters); do kill "$pid" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
command -v restic >/dev/null && [ -x /usr/sbin/sshd ] && [ -d /usr/share/wordpress ] || {
  apt-get update -q >/dev/null
  apt-get install -y -q openssh-server restic wordpress >/dev/null
}
step() { echo "== $*"; }

step "build with --features opendal"
cargo build --release -q -p peakguard --features opendal
PG=$PWD/target/release/peakguard

step "private sshd on 127.0.0.1:$PORT"
ssh-keygen -q -t ed25519 -N '' -f "$W/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$W/client_key"
cp "$W/client_key.pub" "$W/authorized_keys"
mkdir -p /run/sshd
cat >"$W/sshd_config" <<CONF
ListenAddress 127.0.0.1:$PORT
HostKey $W/host_key
PidFile $W/sshd.pid
AuthorizedKeysFile $W/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
CONF
/usr/sbin/sshd -D -e -f "$W/sshd_config" 2>"$W/sshd.log" &
sshd_pid=$!
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
SSH="ssh -i $W/client_key -p $PORT -o StrictHostKeyChecking=no -o UserKnownHostsFile=$W/known_hosts -o BatchMode=yes"
$SSH "$(id -un)@127.0.0.1" true

step "a site (Debian's WordPress tree, files only) with an SFTP bunker"
cp -rL /usr/share/wordpress "$W/site"
mkdir -p "$W/bunker"
cat >"$W/peakguard.toml" <<CONF
[[site]]
name = "shop"
[site.backup]
root = "$W/site"
state_dir = "$W/state"
database.skip = true
[site.backup.bunker]
repository = "opendal:sftp"
password = "bunker-secret"
[site.backup.bunker.options]
endpoint = "ssh://127.0.0.1:$PORT"
user = "$(id -un)"
key = "$W/client_key"
root = "$W/bunker"
known_hosts_strategy = "accept"
CONF
out=$("$PG" backup --config "$W/peakguard.toml")
echo "$out"
id=$(echo "$out" | grep -o 'snapshot [^ ]*' | head -n 1 | cut -d' ' -f2)
"$PG" copy --config "$W/peakguard.toml"
listed=$("$PG" snapshots --bunker --config "$W/peakguard.toml")
echo "$listed"
echo "$listed" | grep -q "$id" || { echo "FAIL: $id not listed in the bunker" >&2; exit 1; }

step "Debian's restic reads the bunker over SFTP"
export RESTIC_PASSWORD=bunker-secret
R=(restic -r "sftp:$(id -un)@127.0.0.1:$W/bunker" -o "sftp.command=$SSH $(id -un)@127.0.0.1 -s sftp")
"${R[@]}" snapshots --tag "pgid:$id" | tee "$W/restic-snapshots.txt"
grep -q "1 snapshots" "$W/restic-snapshots.txt" || { echo "FAIL: restic does not list $id" >&2; exit 1; }
"${R[@]}" check --read-data
"${R[@]}" restore latest --tag "pgid:$id" --target "$W/by-restic" >/dev/null
"$PG" restore latest --bunker --to "$W/by-peakguard" --config "$W/peakguard.toml" >/dev/null
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
sums "$W/site" >"$W/site.sums"
sums "$W/by-restic/site" >"$W/restic.sums"
sums "$W/by-peakguard/site" >"$W/pg.sums"
cmp -s "$W/site.sums" "$W/restic.sums" || { echo "FAIL: restic's restore differs" >&2; exit 1; }
cmp -s "$W/site.sums" "$W/pg.sums" || { echo "FAIL: peakguard's restore from the bunker differs" >&2; exit 1; }
left=$(masters | wc -l)
[ "$left" -eq 0 ] || { echo "FAIL: $left ssh control master(s) left behind by peakguard" >&2; exit 1; }
echo "OK: snapshot $id is in the SFTP bunker; restic lists and checks it; $(wc -l <"$W/site.sums") files restored with equal sha256 by restic and by peakguard"

#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): installs the Debian packages it
# needs, checks formatting and lints, runs unit and integration tests, then starts a private
# real WordPress on loopback (scripts/wp-env.sh) and runs the end-to-end tests against it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s ==\n' "$*"; }

step "Debian packages"
scripts/wp-env.sh install

step "format"
cargo fmt --all -- --check

step "lints, unit and integration tests"
# Clippy lints our crates while they are compiled for the tests: clippy-driver, as the
# workspace's compiler, runs clippy's lints (-D warnings) and then compiles, so the
# dependencies are compiled once, not checked once for `cargo clippy` and compiled again for
# `cargo test` (about 3 minutes less on a 2-core machine). What it compiles is the same
# code; clippy's driver only turns off rustc's MIR optimisations (LLVM's stay), so
# benchmarks use plain `cargo build --release` binaries, never these. Every later cargo
# command here keeps the same wrapper, or it would compile our crates again.
clippy_driver="$(dirname "$(rustup which cargo 2>/dev/null || command -v cargo)")/clippy-driver"
[ -x "$clippy_driver" ] || { echo "clippy-driver not found beside cargo: rustup component add clippy" >&2; exit 1; }
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# All targets (lib, bins, tests, examples, benches) as `cargo clippy --all-targets` would;
# no doc tests (the workspace has none: examples in docs are prose).
# The property tests of the parsers (crates/peakguard-cache/tests/fuzz_parsers.rs): 20,000
# cases each, a few seconds.
PROPTEST_CASES="${PROPTEST_CASES:-20000}" cargo test --release --workspace --all-targets

step "end-to-end tests against a real WordPress"
# A directory made here is removed at the end (after the servers in it have stopped).
if [ -z "${PG_E2E_DIR:-}" ]; then
  PG_E2E_DIR=$(mktemp -d /tmp/peakguard-e2e.XXXXXX)
  made_e2e_dir=$PG_E2E_DIR
fi
export PG_E2E_DIR
trap 'scripts/wp-env.sh down || true; [ -z "${made_e2e_dir:-}" ] || rm -rf "$made_e2e_dir"' EXIT
scripts/wp-env.sh up
eval "$(scripts/wp-env.sh env | sed 's/^/export /')"
cargo test --release -p peakguard --test wordpress -- --include-ignored --test-threads=1
cargo test --release -p peakguard --test shield -- --include-ignored --test-threads=1
cargo test --release -p peakguard --test backup -- --include-ignored --test-threads=1
cargo test --release -p peakguard --test monitor_wordpress -- --include-ignored --test-threads=1
cargo test --release -p peakguard --test waf_wordpress -- --include-ignored --test-threads=1
cargo test --release -p peakguard --test wordpress_plugin -- --include-ignored --test-threads=1
cargo test --release -p peakguard --test rehearse -- --ignored --test-threads=1

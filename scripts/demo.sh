#!/usr/bin/env bash
# The README's first command: `peakguard demo` on its embedded default. Installs the one
# build dependency a fresh Debian lacks (cmake, needed by Pingora's zlib-ng), then builds and
# runs the demo. Extra arguments go to `peakguard demo` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cmake >/dev/null 2>&1; then
  echo "[demo] installing cmake (needed to build Pingora)..." >&2
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q cmake >/dev/null
fi
exec cargo run --release -q -p peakguard -- demo "$@"

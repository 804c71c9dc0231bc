#!/usr/bin/env bash
# The README's first command: `peakguard demo` on its embedded default. Installs the build
# dependencies a fresh Debian lacks (cmake, needed by Pingora's zlib-ng; libmodsecurity-dev
# and pkg-config, which the WAF links against; the Core Rule Set it loads), then builds and
# runs the demo. Extra arguments go to `peakguard demo` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cmake >/dev/null 2>&1 || ! command -v pkg-config >/dev/null 2>&1 \
  || [ ! -f /usr/include/modsecurity/modsecurity.h ] || [ ! -d /usr/share/modsecurity-crs ]; then
  echo "[demo] installing the build dependencies (cmake, pkg-config, libmodsecurity-dev, modsecurity-crs)..." >&2
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    cmake pkg-config libmodsecurity-dev modsecurity-crs >/dev/null
fi
exec cargo run --release -q -p peakguard -- demo "$@"

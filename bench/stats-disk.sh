#!/usr/bin/env bash
# The statistics' size on disk at their default retention (14 days of minutes, 13 months of
# hours) for SITES sites (default 10): once at the bound (every period as full as it can
# be) and once as a busy small shop. Writes to a temporary directory and removes it.
#
#   bench/stats-disk.sh [SITES]
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release -q -p peakguard-stats --example disk_size -- "${1:-10}"

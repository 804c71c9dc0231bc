# Sourced by the WAF benchmarks: installs CRS 4 and its WordPress rule exclusions plugin the
# way a user does — `peakguard waf crs install` from a release tarball as the CRS project
# publishes it (coreruleset-VERSION/…), made here of the shared CRS 4.28 tree and checked by
# its SHA-256, then `peakguard waf plugin install` — into the crs_home of $1 (a work
# directory; its TOML `install.toml` names that crs_home).
#
#   crs4_install WORKDIR [SHARED_CRS]   → WORKDIR/crs-home
crs4_install() {
  local work=$1 shared=${2:-../shared/crs-4}
  mkdir -p "$work/release/coreruleset-4.28.0"
  cp -r "$shared"/rules "$shared"/plugins "$shared"/crs-setup.conf.example "$shared"/LICENSE "$work/release/coreruleset-4.28.0/"
  tar czf "$work/coreruleset-4.28.0-minimal.tar.gz" -C "$work/release" coreruleset-4.28.0
  rm -rf "$work/release"
  printf '[waf]\ncrs_home = "%s/crs-home"\n' "$work" >"$work/install.toml"
  target/release/peakguard waf crs install "$work/coreruleset-4.28.0-minimal.tar.gz" \
    --sha256 "$(sha256sum "$work/coreruleset-4.28.0-minimal.tar.gz" | cut -c1-64)" -c "$work/install.toml" >/dev/null
  target/release/peakguard waf plugin install "$shared/plugins-available/wordpress-rule-exclusions" -c "$work/install.toml" >/dev/null
}

#!/usr/bin/env bash
# Run Debian's promtool (the same version roles/prometheus installs on bookworm) without
# installing the prometheus package here: its .deb is downloaded once and unpacked into the
# cache. Usage: scripts/promtool.sh test rules tests/prometheus/face_rec_rules_test.yml
set -euo pipefail
source "$(dirname "$0")/lib.sh"
dir="$FACE_REC_CACHE/promtool"
if [ ! -x "$dir/usr/bin/promtool" ]; then
  log "fetching Debian's prometheus package for promtool into $dir"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download -q prometheus >/dev/null 2>&1) || {
    apt-get update -qq && (cd "$tmp" && apt-get download -q prometheus >/dev/null)
  }
  mkdir -p "$dir"
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/unpacked"
  install -D -m 0755 "$tmp/unpacked/usr/bin/promtool" "$dir/usr/bin/promtool"
fi
exec "$dir/usr/bin/promtool" "$@"

#!/usr/bin/env bash
# One dlib build per machine: the wheel built for the controller's tests also serves test hosts
# of the same build key (roles/dlib's: version, Python, distribution, architecture, baseline),
# through the controller cache that roles/dlib reads. Only when this machine is such a host
# itself: Debian 12's Python 3.11 here and in a Debian 12 test host take the same wheel.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
python="${1:-python3}"
wheel=$("$FACE_REC_ROOT/scripts/controller-dlib.sh" "$python")
# The key's parts as roles/dlib/tasks/facts.yml derives them.
. /etc/os-release
tag=$("$python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
version=$(basename "$wheel" | cut -d- -f2)
grep -qw avx /proc/cpuinfo || exit 0  # the controller's wheel is built for the avx baseline
key="dlib-$version-$tag-$ID${VERSION_ID%%.*}-$(uname -m)-avx"
dir="$FACE_REC_CACHE/dlib-wheels/$key"
if [ ! -e "$dir/$(basename "$wheel")" ]; then
  mkdir -p "$dir"
  cp "$wheel" "$dir/"
  log "dlib wheel for test hosts: $dir"
fi

#!/usr/bin/env bash
# Make this machine able to run the project: Debian packages, the controller venv, a running
# Docker engine and the test-host image. Idempotent; seconds when everything is in place.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_root "$@"

# debootstrap/docker.io: test hosts. python3-venv: the controller venv. The rest: building
# dlib from source on this machine for the app's tests (the same recipe as roles/dlib).
packages=(debootstrap docker.io python3-venv python3-dev git rsync
          build-essential cmake libopenblas-dev liblapack-dev libjpeg-dev libpng-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Controller venv, rebuilt only when the pins change.
req="$FACE_REC_ROOT/requirements/controller.txt"
stamp="$FACE_REC_VENV/.requirements-$(hash_files "$req")"
if [ ! -e "$stamp" ]; then
  log "controller venv $FACE_REC_VENV"
  python3 -m venv "$FACE_REC_VENV"
  "$FACE_REC_VENV/bin/pip" install -q --upgrade pip
  "$FACE_REC_VENV/bin/pip" install -q -r "$req"
  rm -f "$FACE_REC_VENV"/.requirements-*
  touch "$stamp"
fi

"$FACE_REC_ROOT/scripts/dockerd.sh"
"$FACE_REC_ROOT/testhost/build-image.sh" >/dev/null

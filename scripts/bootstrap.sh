#!/usr/bin/env bash
# Make this machine able to run the project: Debian packages, the controller venv, a running
# Docker engine and the test-host image. Idempotent; seconds when everything is in place.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_root "$@"

# debootstrap/docker.io: test hosts; openssh-client: reaching them over SSH. python3-venv: the
# controller venv. chromium and its driver: the browser test. nginx-light: `nginx -t` on the
# rendered roles/nginx templates (tests/test_nginx_config.py), nothing served. The rest:
# building dlib from source on this machine for the app's tests (the same recipe as roles/dlib).
packages=(debootstrap docker.io openssh-client python3-venv python3-dev git rsync chromium chromium-driver nginx-light
          build-essential cmake libopenblas-dev liblapack-dev libjpeg-dev libpng-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Installed for `nginx -t` only: the nginx that Debian's package started (under systemd) goes.
  if [[ " ${missing[*]} " == *" nginx-light "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
fi

make_ssh_key "$TESTHOST_MACHINE_KEY"

# The test-host image builds (network and disk) while the venv and dlib build (CPU).
"$FACE_REC_ROOT/scripts/dockerd.sh"
"$FACE_REC_ROOT/testhost/build-image.sh" >/dev/null &
image_build=$!

# Controller venv, rebuilt only when the pins change. --require-hashes: only the files whose
# sha256 the pins name (scripts/pin-requirements.sh), pip's own new version among them. The
# GCE extra too: the tests rehearse the Compute Engine plays with google.cloud's own code.
req="$FACE_REC_ROOT/requirements/controller.txt"
gce_req="$FACE_REC_ROOT/requirements/gce.txt"
stamp="$FACE_REC_VENV/.requirements-$(hash_files "$req" "$gce_req")"
if [ ! -e "$stamp" ]; then
  log "controller venv $FACE_REC_VENV"
  python3 -m venv "$FACE_REC_VENV"
  "$FACE_REC_VENV/bin/pip" install -q --require-hashes -r "$req" -r "$gce_req"
  rm -f "$FACE_REC_VENV"/.requirements-*
  touch "$stamp"
fi

# The app and real dlib in the same venv, for the app's tests.
app_stamp="$FACE_REC_VENV/.app-$(hash_files "$FACE_REC_ROOT/app/requirements.txt" "$FACE_REC_ROOT/app/pyproject.toml")"
if [ ! -e "$app_stamp" ]; then
  wheel=$("$FACE_REC_ROOT/scripts/controller-dlib.sh" "$FACE_REC_VENV/bin/python")
  log "app and its pinned dependencies into $FACE_REC_VENV"
  # dlib first: app/requirements.txt leaves it out, and --require-hashes refuses a venv without
  # it. The wheel is a local file built from the hashed sdist: no index, no hash.
  "$FACE_REC_VENV/bin/pip" install -q --no-deps --no-index "$wheel"
  "$FACE_REC_VENV/bin/pip" install -q --require-hashes -r "$FACE_REC_ROOT/app/requirements.txt"
  # The app itself, editable: pip cannot hash an editable install, and needs none (this
  # checkout). No index either: its dependencies are the hashed ones above and its build
  # backend the venv's hashed setuptools (--no-build-isolation).
  "$FACE_REC_VENV/bin/pip" install -q --no-deps --no-index --no-build-isolation -e "$FACE_REC_ROOT/app"
  rm -f "$FACE_REC_VENV"/.app-*
  touch "$app_stamp"
fi
"$FACE_REC_ROOT/scripts/seed-dlib-cache.sh" "$FACE_REC_VENV/bin/python"

wait "$image_build" || die "the test-host image build failed (its error is above)"

#!/usr/bin/env bash
# Compile the hashed pins from the top-level pins kept by hand in the .in files beside them:
#   requirements/controller.in -> requirements/controller.txt  (the controller's .venv)
#   requirements/gce.in        -> requirements/gce.txt         (optional, on top of controller.txt)
#   app/requirements.in        -> app/requirements.txt         (the app's venv on every host)
#   requirements/pip-tools.in  -> requirements/pip-tools.txt   (what this script compiles with)
# Every transitive dependency, each with the sha256 of every file the index has for its pinned
# version (the sdist and every wheel, whatever the Python or platform: Debian 12's 3.11 and
# Debian 13's 3.13 alike), so `pip install --require-hashes` takes those files and no other.
# A pin already in a .txt is kept; to move one, change the .in or delete the .txt's line.
# pip-compile resolves for the Python that runs it (python3, 3.11 here): after a change, check
# that the app's file still covers 3.13 (README.md, "Pinned and hashed").
# dlib's and uWSGI's sdists are hashed in roles/dlib/vars/main.yml and roles/uwsgi/vars/main.yml.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
# pip-tools in a throwaway venv, hashed like the rest: a tool of whoever pins, never installed
# in .venv or on a host.
python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install --quiet --require-hashes -r "$FACE_REC_ROOT/requirements/pip-tools.txt"

compile() {
  # No index or find-links lines in the output: hosts use their own pip's index.
  CUSTOM_COMPILE_COMMAND="scripts/pin-requirements.sh" "$tools/venv/bin/pip-compile" --quiet \
    --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links --no-emit-trusted-host "$@"
}

cd "$FACE_REC_ROOT"
log "requirements/pip-tools.txt"
compile --allow-unsafe -o requirements/pip-tools.txt requirements/pip-tools.in
log "requirements/controller.txt"
# --allow-unsafe: pip and setuptools are pinned and hashed like the rest.
compile --allow-unsafe -o requirements/controller.txt requirements/controller.in
log "requirements/gce.txt"
compile --allow-unsafe -o requirements/gce.txt requirements/gce.in
log "app/requirements.txt"
# dlib is the one "unsafe" package here: resolved with the rest, written as a comment only
# (roles/dlib builds it from its hashed sdist before this file is installed).
compile --unsafe-package dlib -o app/requirements.txt app/requirements.in

#!/usr/bin/env bash
# Remove every test host and network this project started (by label), also after a crashed
# or interrupted run. Touches nothing without the project's label.
#   down.sh         all of them
#   down.sh KIND    only those labelled org.face-rec.testhost=KIND (host: Molecule's, local: make up's)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_root
docker info >/dev/null 2>&1 || exit 0  # no engine, nothing of ours can be running
filter="label=$FACE_REC_LABEL${1:+=$1}"
containers=$(docker ps -aq --filter "$filter")
if [ -n "$containers" ]; then
  log "removing test hosts: $(docker inspect -f '{{.Name}}' $containers | tr -d / | paste -sd' ')"
  # shellcheck disable=SC2086
  docker rm -f --volumes $containers >/dev/null
fi
networks=$(docker network ls -q --filter "$filter")
# shellcheck disable=SC2086
[ -z "$networks" ] || docker network rm $networks >/dev/null

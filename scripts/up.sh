#!/usr/bin/env bash
# Start a local test host (a fresh Debian 12 "VM" in a systemd container), provision it with
# site.yml, and publish its port 80 on 127.0.0.1:$FACE_REC_PORT for a browser on this machine.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_root "$@"
"$FACE_REC_ROOT/scripts/bootstrap.sh"
name=face-rec-local
port="${FACE_REC_PORT:-8080}"

if ! docker container inspect "$name" >/dev/null 2>&1; then
  log "starting test host $name (port 80 on 127.0.0.1:$port)"
  # systemd as PID 1 without --privileged: what works on this kind of machine.
  docker run -d --name "$name" --hostname "$name" --label "$FACE_REC_LABEL=local" \
    --cap-add SYS_ADMIN --security-opt seccomp=unconfined --cgroupns=host \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
    -p "127.0.0.1:$port:80" "$TESTHOST_IMAGE:latest" >/dev/null
else
  docker start "$name" >/dev/null
fi

cd "$FACE_REC_ROOT"
PATH="$FACE_REC_VENV/bin:$PATH" ansible-playbook -i inventory/local.yml site.yml "$@"
log "provisioned: http://127.0.0.1:$port/ (stop it with: make down)"

#!/usr/bin/env bash
# Start a local test host (a fresh Debian 12 "VM" in a systemd container), provision it with
# site.yml over SSH, as a real VM is (inventory/local.yml), and publish its port 80 on
# 127.0.0.1:$FACE_REC_PORT for a browser on this machine, its SSH on 127.0.0.1:$FACE_REC_SSH_PORT.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_root "$@"
"$FACE_REC_ROOT/scripts/bootstrap.sh"
name=face-rec-local
port="${FACE_REC_PORT:-8080}"
export FACE_REC_SSH_PORT="${FACE_REC_SSH_PORT:-2222}"
known_hosts="$(dirname "$TESTHOST_MACHINE_KEY")/known_hosts"

if ! docker container inspect "$name" >/dev/null 2>&1; then
  log "starting test host $name (port 80 on 127.0.0.1:$port, SSH on 127.0.0.1:$FACE_REC_SSH_PORT)"
  # systemd as PID 1 without --privileged: what works on this kind of machine. The login
  # user's key is the host's metadata, as on a Compute Engine VM.
  docker run -d --name "$name" --hostname "$name" --label "$FACE_REC_LABEL=local" \
    --cap-add SYS_ADMIN --security-opt seccomp=unconfined --cgroupns=host \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
    -v "$TESTHOST_MACHINE_KEY.pub:/etc/testhost/ssh-keys:ro" \
    -p "127.0.0.1:$port:80" -p "127.0.0.1:$FACE_REC_SSH_PORT:22" "$TESTHOST_IMAGE:latest" >/dev/null
  # A new host has new host keys: forget the last one's.
  [ ! -e "$known_hosts" ] || ssh-keygen -q -R "[127.0.0.1]:$FACE_REC_SSH_PORT" -f "$known_hosts" 2>/dev/null
else
  docker port "$name" 22/tcp >/dev/null 2>&1 \
    || die "$name was started before test hosts were reached over SSH: make down, then make up"
  docker start "$name" >/dev/null
fi

cd "$FACE_REC_ROOT"
ports=()
[ "$FACE_REC_SSH_PORT" = 2222 ] || ports=(-e "ansible_port=$FACE_REC_SSH_PORT")
PATH="$FACE_REC_VENV/bin:$PATH" ansible-playbook -i inventory/local.yml site.yml "${ports[@]}" "$@"
log "provisioned: http://127.0.0.1:$port/ (ssh -i $TESTHOST_MACHINE_KEY -p $FACE_REC_SSH_PORT ops@127.0.0.1; stop it with: make down)"

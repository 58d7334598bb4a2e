#!/usr/bin/env bash
# Start Docker's engine when none answers (this machine has no systemd to do it).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_root "$@"
docker info >/dev/null 2>&1 && exit 0
command -v dockerd >/dev/null || die "dockerd is missing: apt-get install docker.io"
logfile=/var/log/face_rec-dockerd.log
log "starting dockerd (log: $logfile)"
# setsid: the engine must outlive the shell that started it.
setsid dockerd >"$logfile" 2>&1 < /dev/null &
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && exit 0
  kill -0 $! 2>/dev/null || break
  sleep 1
done
tail -n 20 "$logfile" >&2
die "dockerd did not start (its log's tail is above)"

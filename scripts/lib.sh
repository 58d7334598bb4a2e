# Shared helpers for the scripts in this folder. Source it; do not run it.
# shellcheck shell=bash

FACE_REC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Caches that outlive a clone (so a second clone, or CI, does not redo slow work).
export FACE_REC_CACHE="${FACE_REC_CACHE:-/var/cache/face_rec}"
FACE_REC_VENV="${FACE_REC_VENV:-$FACE_REC_ROOT/.venv}"
# Everything the project starts carries this label, so teardown finds it and nothing else.
FACE_REC_LABEL="org.face-rec.testhost"
TESTHOST_IMAGE="face-rec/debian12"
# The SSH key test hosts give their login user `ops`, as a VM takes its user's key from its
# metadata: the machine's own for `make up` and hand runs of Molecule (scripts/bootstrap.sh makes
# it); scripts/test.sh makes a new one for each run.
TESTHOST_MACHINE_KEY="$FACE_REC_CACHE/testhost/ssh/id_ed25519"
export FACE_REC_TESTHOST_KEY="${FACE_REC_TESTHOST_KEY:-$TESTHOST_MACHINE_KEY}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
# Log a command, then run it.
run() { log "$*"; "$@"; }

require_root() {
  [ "$(id -u)" -eq 0 ] || die "run this as root (it installs Debian packages and starts Docker's engine): sudo $0 $*"
}

# The controller venv as scripts/bootstrap.sh makes it (its stamp), with the app and real dlib
# in it too if $1 is "app".
require_venv() {
  compgen -G "$FACE_REC_VENV/.requirements-*" >/dev/null && { [ "${1:-}" != app ] || compgen -G "$FACE_REC_VENV/.app-*" >/dev/null; } \
    || die "the controller venv $FACE_REC_VENV is not made${1:+ with the $1 in it}: run make bootstrap once, as root"
}

# The Debian mirror this machine's apt already uses, so debootstrap needs no URL of its own.
debian_mirror() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 ~ /^(bookworm|trixie)$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [ -n "$uri" ] || die "cannot find a Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
  printf '%s\n' "$uri"
}

# Hash of files, for "rebuild only when the recipe changes".
hash_files() { cat "$@" | sha256sum | cut -c1-12; }

# An ed25519 key pair at $1 (and $1.pub), made once.
make_ssh_key() {
  [ -s "$1" ] && [ -s "$1.pub" ] && return 0
  mkdir -p -m 0700 "$(dirname "$1")"
  rm -f "$1" "$1.pub"
  ssh-keygen -q -t ed25519 -N '' -C "face_rec test hosts" -f "$1"
}

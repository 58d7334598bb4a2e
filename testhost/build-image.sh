#!/usr/bin/env bash
# Build a test-host image (Debian + systemd + a sudo login user) once; rebuild only when this
# recipe changes. Prints the image name. Needs root, debootstrap and a Docker engine.
#   build-image.sh [bookworm|trixie]    face-rec/debian12 (the default) or face-rec/debian13
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
require_root
here="$FACE_REC_ROOT/testhost"
suite="${1:-bookworm}"
case "$suite" in
  bookworm) TESTHOST_IMAGE=face-rec/debian12 ;;
  trixie) TESTHOST_IMAGE=face-rec/debian13 ;;
  *) die "unknown suite '$suite': bookworm (Debian 12) or trixie (Debian 13)" ;;
esac

local_cas=(/usr/local/share/ca-certificates/*.crt)
[ -e "${local_cas[0]}" ] || local_cas=()
recipe_hash=$(hash_files "$here/build-image.sh" "$here/packages.txt" "$here/Dockerfile" "$here"/files/* "${local_cas[@]}")
image="$TESTHOST_IMAGE:$recipe_hash"

if docker image inspect "$image" >/dev/null 2>&1; then
  docker tag "$image" "$TESTHOST_IMAGE:latest"
  echo "$image"
  exit 0
fi

command -v debootstrap >/dev/null || die "debootstrap is missing: run scripts/bootstrap.sh (or apt-get install debootstrap)"

# The rootfs depends only on the suite and the package list: cache it as a tarball.
rootfs_hash=$(printf '%s\n' "$suite" | cat - "$here/packages.txt" "$here/build-image.sh" | sha256sum | cut -c1-12)
rootfs_tar="$FACE_REC_CACHE/testhost/rootfs-$suite-$rootfs_hash.tar"
if [ ! -s "$rootfs_tar" ]; then
  mkdir -p "$(dirname "$rootfs_tar")"
  work=$(mktemp -d "$FACE_REC_CACHE/testhost/debootstrap.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  log "debootstrap $suite (about 3 minutes, once)"
  debootstrap --variant=minbase --include="$(paste -sd, "$here/packages.txt")" \
    "$suite" "$work/rootfs" "$(debian_mirror)" > "$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
  # apt clean: the image need not carry the downloaded .debs. The package lists stay, as in a
  # cloud image: roles decide from their age whether to update them.
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb
  tar -C "$work/rootfs" -cf "$rootfs_tar.part" .
  mv "$rootfs_tar.part" "$rootfs_tar"
  rm -rf "$work"
  trap - EXIT
fi

base="$TESTHOST_IMAGE-rootfs:$rootfs_hash"
if ! docker image inspect "$base" >/dev/null 2>&1; then
  log "docker import $base"
  docker import --change "LABEL org.face-rec.image=rootfs" "$rootfs_tar" "$base" >/dev/null
fi

log "docker build $image"
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$here/Dockerfile" "$here"/files/* "$context/"
mkdir "$context/local-ca"
[ "${#local_cas[@]}" -eq 0 ] || cp "${local_cas[@]}" "$context/local-ca/"
DOCKER_BUILDKIT=0 docker build --quiet --label org.face-rec.image=testhost \
  --build-arg "BASE=$base" -t "$image" "$context" >"$context/build.log" 2>&1 \
  || { cat "$context/build.log" >&2; die "docker build of the test-host image failed"; }
docker tag "$image" "$TESTHOST_IMAGE:latest"
# Older recipes' images and rootfs tarballs are of no further use.
for repository in "$TESTHOST_IMAGE" "$TESTHOST_IMAGE-rootfs"; do
  docker image ls --format '{{.Repository}}:{{.Tag}}' "$repository"
done | grep -v -x -e "$image" -e "$TESTHOST_IMAGE:latest" -e "$base" | xargs -r docker rmi >/dev/null 2>&1 || true
find "$FACE_REC_CACHE/testhost" -maxdepth 1 -name "rootfs-$suite-*.tar" ! -name "$(basename "$rootfs_tar")" -delete
echo "$image"

#!/usr/bin/env bash
# Print the path of a dlib wheel for this controller's Python, building it from source once
# (about 7 minutes on 2 cores) into $FACE_REC_CACHE/dlib-controller/. The app's tests need
# real dlib; they never rebuild it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
version="${DLIB_VERSION:-20.0.1}"
python="${1:-python3}"
tag=$("$python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
dir="$FACE_REC_CACHE/dlib-controller"
wheel=$(ls "$dir"/dlib-"$version"-"$tag"-"$tag"-linux_*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  mkdir -p "$dir"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # The CPU baseline pinned to AVX by roles/dlib's own toolchain template: one recipe.
  "$python" - "$FACE_REC_ROOT/roles/dlib/templates/cpu_baseline.cmake.j2" > "$work/baseline.cmake" <<'PY'
import sys, jinja2
template = jinja2.Template(open(sys.argv[1]).read(), trim_blocks=True)
print(template.render(dlib_baseline="avx", ansible_managed="written by scripts/controller-dlib.sh"))
PY
  # The sdist whose sha256 roles/dlib pins, and no other file (--require-hashes); what builds
  # it (setuptools, wheel, packaging, cmake) comes through pip's build isolation unhashed.
  "$python" - "$FACE_REC_ROOT/roles/dlib/vars/main.yml" "$version" > "$work/requirements.txt" <<'PY'
import sys, yaml
path, version = sys.argv[1:]
known = yaml.safe_load(open(path))["__dlib_sdist_sha256"]
if version not in known:
    sys.exit(f"error: dlib {version} has no sdist sha256 in {path} (known: {', '.join(known)}): add it there")
print(f"dlib=={version} --hash=sha256:{known[version]}")
PY
  log "building dlib $version from source for the controller's tests (about 7 minutes, once)"
  # --no-cache-dir, as roles/dlib: pip would take a wheel it cached from another build of the
  # same sdist, whatever that build's CPU baseline.
  CMAKE_TOOLCHAIN_FILE="$work/baseline.cmake" DLIB_NO_GUI_SUPPORT=ON DLIB_USE_CUDA=OFF \
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$python" -m pip wheel --quiet --no-deps --no-binary dlib --no-cache-dir --require-hashes \
      -r "$work/requirements.txt" -w "$work/out" \
    > "$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; die "dlib build failed (log tail above)"; }
  mv "$work"/out/dlib-*.whl "$dir/"
  wheel=$(ls "$dir"/dlib-"$version"-"$tag"-"$tag"-linux_*.whl | head -n1)
fi
echo "$wheel"

#!/usr/bin/env bash
# The whole test suite, as CI runs it: lint, the Python tests, then every Molecule scenario on
# fresh test hosts. Leaves no test host behind, also when interrupted.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_root "$@"
"$FACE_REC_ROOT/scripts/bootstrap.sh"
# Debian 13 hosts too, for the dlib and default scenarios (make up needs only Debian 12's):
# built while lint and the Python tests run.
"$FACE_REC_ROOT/testhost/build-image.sh" trixie >/dev/null &
trixie_image=$!
cd "$FACE_REC_ROOT"
export PATH="$FACE_REC_VENV/bin:$PATH"
# A key made for this run: the hosts trust it and nothing else.
run_dir=$(mktemp -d)
export FACE_REC_TESTHOST_KEY="$run_dir/id_ed25519"
make_ssh_key "$FACE_REC_TESTHOST_KEY"
# Molecule's hosts only: a local host from `make up` stays.
trap '"$FACE_REC_ROOT/scripts/down.sh" host; rm -rf "$run_dir"' EXIT

# Scenarios run in this order: cheap contract checks first. FACE_REC_SCENARIOS="default" (or
# "dlib default", in that order) runs only those, after the same lint and Python tests.
scenarios=(${FACE_REC_SCENARIOS:-testhost dlib default fleet})

"$FACE_REC_ROOT/scripts/lint.sh"
run pytest -q tests
wait "$trixie_image" || die "the Debian 13 test-host image build failed (its error is above)"
for scenario in "${scenarios[@]}"; do
  start=$SECONDS
  run molecule test -s "$scenario"
  log "molecule scenario $scenario: $((SECONDS - start)) s"
done

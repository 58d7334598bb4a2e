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
# The app's tests first, alone: their cost bounds are CPU time against a baseline of the same
# run, which a busy machine blurs. The other Python tests (mostly ansible-playbook start-ups)
# then run beside the testhost scenario (Debian 12 hosts, mostly waiting on Docker and SSH).
run pytest -q tests/app
if [ "${scenarios[0]:-}" = testhost ]; then
  log "pytest -q tests --ignore=tests/app, beside molecule test -s testhost"
  pytest -q tests --ignore=tests/app >"$run_dir/pytest.log" 2>&1 &
  python_tests=$!
  start=$SECONDS
  run molecule test -s testhost
  log "molecule scenario testhost: $((SECONDS - start)) s"
  scenarios=("${scenarios[@]:1}")
  python_tests_rc=0
  wait "$python_tests" || python_tests_rc=$?
  cat "$run_dir/pytest.log"
  [ "$python_tests_rc" -eq 0 ] || die "the Python tests failed (above)"
else
  run pytest -q tests --ignore=tests/app
fi
wait "$trixie_image" || die "the Debian 13 test-host image build failed (its error is above)"
for scenario in "${scenarios[@]}"; do
  start=$SECONDS
  run molecule test -s "$scenario"
  log "molecule scenario $scenario: $((SECONDS - start)) s"
done

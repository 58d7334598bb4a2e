#!/usr/bin/env bash
# The app's tests only (tests/app: Flask's test client on real dlib and real photos), in the
# controller venv made once by make bootstrap. No test host. Arguments go to pytest:
#   scripts/test-app.sh -k fuzz
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_venv app
cd "$FACE_REC_ROOT"
export PATH="$FACE_REC_VENV/bin:$PATH"
run pytest -q tests/app "$@"

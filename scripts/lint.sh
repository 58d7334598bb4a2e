#!/usr/bin/env bash
# Lint, as make test runs it: YAML, Ansible, and the roles' README variables tables against
# their meta/argument_specs.yml. Through the controller venv (made once by make bootstrap).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_venv
cd "$FACE_REC_ROOT"
export PATH="$FACE_REC_VENV/bin:$PATH"
run yamllint --strict .
run ansible-lint
run python scripts/role_docs.py --check

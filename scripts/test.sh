#!/usr/bin/env bash
# The test command of the README.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
$PY -m pytest -q -ra --durations=15 "$@"

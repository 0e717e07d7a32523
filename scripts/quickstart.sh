#!/usr/bin/env bash
# The README's main command: set up .venv, start the whole stack on loopback with the shipped
# weights (transmitter, channel, receiver, gateway), send an image through it, print the report.
# KEEP=1 keeps the stack serving afterwards (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "${KEEP:-0}" = "1" ]; then
  exec .venv/bin/sccdm stack up --demo
fi
exec .venv/bin/sccdm stack up --demo --exit-after-demo

#!/usr/bin/env bash
# Installs everything, then runs the whole test suite (pass -m "not slow" for the quick subset).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m pytest "$@"

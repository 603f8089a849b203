#!/usr/bin/env bash
# Installs everything, then runs the whole test suite (pass -m "not slow" for the quick subset)
# on every core: the tests spend most of their time waiting on daemons and subprocesses. Tests
# sharing an expensive module fixture (the FUSE mounts) stay on one worker (xdist_group).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# The slowest tests are listed at the end: where the time goes when the suite slows down.
exec .venv/bin/python -m pytest -n auto --dist loadgroup --durations=15 "$@"

#!/usr/bin/env bash
# The reliability campaign: every crash, device-fault and corruption scenario --runs N times with
# seed --seed S, the results table written into docs/reliability.md (see that file; --help lists
# the options, --only NAME runs one scenario and prints its table instead).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m tests.helpers.reliability_campaign "$@"

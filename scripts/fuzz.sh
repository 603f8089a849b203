#!/usr/bin/env bash
# The fuzzing campaign (reliability R4): every parser gets --inputs N seeded inputs; prints one line of
# figures per parser and the crashing or hanging inputs on stderr, and exits 1 if there were any.
#   scripts/fuzz.sh --inputs 1000000 --seed 1 [--markdown] [PARSER...]
#   scripts/fuzz.sh --engine atheris --inputs 1000000 --seed 1 PARSER   (coverage-guided, one parser)
# docs/reliability-fuzzing.md lists the parsers and the figures of the last full run.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${TAPEFS_PYTHON:-.venv/bin/python}" -m tests.helpers.reliability_fuzz "$@"

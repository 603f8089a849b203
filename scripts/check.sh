#!/usr/bin/env bash
# The static checks, with the project venv from scripts/install.sh: ruff (lint and format), mypy (types) and
# lint-imports (the import contracts in pyproject.toml). CI and `tox -e lint` run this script.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TAPEFS_CHECK_BIN:-.venv/bin}
"$bin/ruff" check tapefs vtape tools
"$bin/ruff" format --check tapefs vtape tools
"$bin/mypy"
"$bin/lint-imports"

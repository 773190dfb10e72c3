#!/usr/bin/env bash
# Installs everything (scripts/setup.sh), then runs the linters, the type checker and the tests:
# once on the compiled hot path and once on the pure-Python fallback (MEMFLEET_PURE_PYTHON=1),
# because both ship and both must behave the same.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check src tests benchmarks setup.py
.venv/bin/ruff format --check src tests benchmarks setup.py
.venv/bin/mypy
echo "== tests, compiled hot path (memfleet.is_compiled() = $(.venv/bin/python -c 'import memfleet; print(memfleet.is_compiled())'))"
.venv/bin/python -m pytest "$@"
echo "== tests, pure-Python fallback"
MEMFLEET_PURE_PYTHON=1 .venv/bin/python -m pytest "$@"

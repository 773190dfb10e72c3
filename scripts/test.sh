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
# Tests of code that is never compiled (manifest rendering, help texts, the fleet and node
# supervisors, the status page, monitoring rules, drills, `memfleet scale`, the routelib
# import and render) would run the very same code again: the fallback run leaves them
# out (a CI run stays well under 20 minutes).
MEMFLEET_PURE_PYTHON=1 .venv/bin/python -m pytest "$@" \
    --ignore=tests/kube --ignore=tests/unit/test_help.py \
    --ignore=tests/integration/test_supervision.py --ignore=tests/integration/test_status_page.py \
    --ignore=tests/integration/test_drill.py --ignore=tests/integration/test_drill_scale.py \
    --ignore=tests/integration/test_scale.py --ignore=tests/integration/test_routelib_proxy.py \
    --ignore=tests/unit/test_routelib_import.py --ignore=tests/unit/test_routelib_render.py \
    --ignore=tests/monitoring --ignore=tests/integration/test_fleet.py \
    --ignore=tests/integration/test_node.py --ignore=tests/integration/test_hosts.py

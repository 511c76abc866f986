#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: both warehouses (SQLite and
# the PostgreSQL at WORKBENCH_TEST_PG_URL, default postgres@127.0.0.1:5432),
# the notebooks under papermill/nbval, the dashboard under AppTest and Chromium.
#
# The tests run in parallel (pytest-xdist): one worker more than there are
# cores, since many tests wait on subprocesses, kernels and servers rather than
# compute. WORKBENCH_TEST_WORKERS sets the number (0 = no xdist, one process);
# arguments are passed on to pytest (e.g. -x, -k NAME, -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Lint and types first: a clean tree is part of passing.
.venv/bin/ruff check pipeline workbench tests migrations
.venv/bin/mypy
WORKERS=${WORKBENCH_TEST_WORKERS:-$(( $(nproc) + 1 ))}
exec .venv/bin/python -m pytest -n "$WORKERS" --dist loadgroup "$@"

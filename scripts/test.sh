#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: both warehouses (SQLite and
# the PostgreSQL at WORKBENCH_TEST_PG_URL, default postgres@127.0.0.1:5432),
# the notebooks under papermill/nbval, the dashboard under AppTest and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Lint and types first: a clean tree is part of passing.
.venv/bin/ruff check pipeline workbench tests migrations
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"

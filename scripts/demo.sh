#!/usr/bin/env bash
# The main job on the embedded SQLite default: demo files for every dataset
# (six months, plus a few faulty deliveries) through every stage, the status
# table, then the dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pipeline demo --with-bad-files
# The faulty deliveries are meant to fail; the run's exit status 1 says so.
.venv/bin/python -m pipeline run || true
.venv/bin/python -m pipeline status
PORT=${PORT:-8501}
echo
echo "Dashboard: http://localhost:${PORT}  (Ctrl-C to stop)"
exec .venv/bin/python -m streamlit run workbench/app.py --server.port "$PORT" --server.headless true --client.toolbarMode viewer

"""The dashboard's first page imports only what it needs (issue 17).

A fresh server's first visit pays for every module its pages import;
alembic, pandera, sqlglot and ruamel.yaml cost it ~1 s together and the
pages never use them (no migration, no validation, no SQL translation, no
config edit until a button asks). Each is imported inside the functions that
use it; these tests fail if a top-level import brings one back.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# The modules workbench/app.py's pages (workbench/views/*) import.
DASHBOARD_MODULES = ("workbench.data", "workbench.jobs", "workbench.tasks", "workbench.ui", "workbench.shell",
                     "workbench.charts", "workbench.month_actions")
REPO = Path(__file__).resolve().parents[2]
DEFERRED = ("alembic", "pandera", "sqlglot", "ruamel.yaml")


def loaded_after(*statements: str) -> set[str]:
    """Which of DEFERRED a fresh interpreter holds after running ``statements``."""
    code = "\n".join([*statements, "import json, sys",
                      f"print(json.dumps([m for m in {list(DEFERRED)!r} if m in sys.modules]))"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_dashboard_modules_import_no_migration_validation_or_sql_translation_library() -> None:
    assert loaded_after(*(f"import {m}" for m in DASHBOARD_MODULES)) == set()


def test_opening_a_sqlite_warehouse_without_migrating_does_not_import_them(tmp_path: Path) -> None:
    # Opening an engine registers the SQLite functions on each connection.
    url = f"sqlite:///{tmp_path}/warehouse/workbench.sqlite"
    assert loaded_after(
        "import workbench.data",
        "from pipeline.warehouse.engine import get_engine",
        f"engine = get_engine({url!r}, migrate=False)",
        "engine.connect().close()",
    ) == set()


def test_the_functions_that_use_them_still_import_them() -> None:
    # The checks above can fail: these are the deferred imports, taken when used.
    config = REPO / "datasets_config.yml"
    assert loaded_after(
        "from pipeline.warehouse.migrate import head_revision",
        "from pipeline.io.config_edit import _yaml",
        "from pipeline.io.config_file import load_config",
        "from pipeline.domain.schema import build_schema",
        "from pipeline.warehouse.query import sql_schema",
        "import workbench.data",
    ) == set()
    assert loaded_after(
        "from pipeline.warehouse.migrate import head_revision; head_revision()",
        "from pipeline.io.config_edit import _yaml; _yaml()",
        "from pipeline.io.config_file import load_config",
        "from pipeline.domain.schema import build_schema",
        "from pipeline.warehouse.query import sql_schema",
        f"config = load_config(__import__('pathlib').Path({str(config)!r}))",
        "dataset = next(iter(config.datasets.values()))",
        "build_schema(dataset, '2025-01')",
        "sql_schema(config)",
    ) == set(DEFERRED)

"""Preview, correct, roll back (SPEC §10.3), on both warehouses."""
from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import Workspace

TABLES = ("stage.citizens", "core.citizens", "mart.citizens_by_municipality",
          "core.benefit_payments", "mart.benefits_by_municipality")
LOGS = ("meta.ingestion_log", "meta.validation_log", "meta.validation_errors", "meta.load_log", "meta.corrections")


def snapshot(ws: Workspace) -> dict[str, object]:
    """Everything a dry run must leave alone: every table's rows, the log
    row counts and the bytes of every file under data/ (Parquet, history)."""
    state: dict[str, object] = {t: sorted(map(repr, ws.rows(f"SELECT * FROM {t}"))) for t in TABLES}
    state.update({t: ws.scalar(f"SELECT count(*) FROM {t}") for t in LOGS})
    files = sorted(p for p in (ws.data_dir / "stage").rglob("*") if p.is_file())
    state["files"] = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    return state


def edit_february(ws: Workspace) -> None:
    """A corrected delivery: 3 citizens removed, 2 added, 4 incomes changed."""
    path = ws.landed / "citizens_2025-02.xlsx"
    wb = openpyxl.load_workbook(path)
    sheet = wb.active
    assert sheet is not None
    sheet.delete_rows(2, 3)
    for row in range(5, 9):
        sheet.cell(row=row, column=8).value = 12345.0
    for n in (1, 2):
        sheet.append([900000 + n, "New", "Person", "1990-01-01", "F", "0114", 1, 1000.0])
    wb.save(path)


@pytest.fixture
def loaded(workspace: Workspace, demo_dir: Path) -> Workspace:
    workspace.add_demo(demo_dir, "citizens_2025-0[12].xlsx")
    workspace.add_demo(demo_dir, "benefit_payments_2025-0[12].csv")
    assert workspace.main("pipeline", "run").returncode == 0
    return workspace


def test_dry_run_reports_the_exact_difference_and_changes_nothing(loaded: Workspace) -> None:
    edit_february(loaded)
    before = snapshot(loaded)
    proc = loaded.main("pipeline", "reload", "--dataset", "citizens", "--period", "2025-02", "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["added"], report["removed"], report["changed"]) == (2, 3, 4)
    assert report["rows_after"] == report["rows_before"] - 1
    assert report["unchanged"] == report["rows_before"] - 3 - 4
    assert report["columns_changed"] == {"monthly_income": 4}
    assert all(s["monthly_income"][1] == 12345.0 for s in report["sample"])
    assert "core.benefit_payments" in report["downstream"] and "mart.citizens_by_municipality" in report["downstream"]
    assert snapshot(loaded) == before
    text = loaded.main("pipeline", "reload", "--dataset", "citizens", "--period", "2025-02", "--dry-run")
    assert "2 added, 3 removed, 4 changed" in text.stdout and snapshot(loaded) == before


def test_dry_run_of_a_refused_file_says_why_and_changes_nothing(loaded: Workspace) -> None:
    path = loaded.landed / "citizens_2025-02.xlsx"
    wb = openpyxl.load_workbook(path)
    assert wb.active is not None
    wb.active.cell(row=3, column=5).value = "Q"
    wb.save(path)
    before = snapshot(loaded)
    proc = loaded.main("pipeline", "reload", "--dataset", "citizens", "--period", "2025-02", "--dry-run")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "would be refused" in proc.stderr and "sex" in proc.stderr
    assert snapshot(loaded) == before


def test_reload_with_a_reason_is_recorded(loaded: Workspace) -> None:
    edit_february(loaded)
    proc = loaded.main("pipeline", "reload", "--dataset", "citizens", "--period", "2025-02",
                       "--reason", "municipality re-delivered February")
    assert proc.returncode == 0, proc.stderr
    [row] = loaded.rows("SELECT kind, reason, actor, added, removed, changed, load_id FROM meta.corrections")
    assert row[:2] == ("reload", "municipality re-delivered February") and row[2]
    assert row[3:6] == (2, 3, 4)
    assert row[6] == loaded.scalar("SELECT max(id) FROM meta.load_log WHERE step = 'load_stage'")


def test_history_lists_versions_and_rollback_restores_every_layer(loaded: Workspace) -> None:
    original = {t: sorted(loaded.rows(f"SELECT * FROM {t} WHERE _data_period = '2025-02'")) for t in TABLES}
    january = {t: sorted(loaded.rows(f"SELECT * FROM {t} WHERE _data_period = '2025-01'")) for t in TABLES}
    edit_february(loaded)
    assert loaded.main("pipeline", "reload", "--dataset", "citizens", "--period", "2025-02").returncode == 0
    history = json.loads(loaded.main("pipeline", "history", "--dataset", "citizens", "--period", "2025-02",
                                     "--json").stdout)
    assert len(history) == 2 and [v["served"] for v in history] == [True, False]
    assert history[1]["file"] == "citizens_2025-02.xlsx" and history[0]["loaded_at"].endswith("+00:00")

    proc = loaded.main("pipeline", "rollback", "--dataset", "citizens", "--period", "2025-02")
    assert proc.returncode == 0, proc.stderr
    for table in TABLES:  # stage, core, mart and the dependent payments: exactly the old rows
        assert sorted(loaded.rows(f"SELECT * FROM {table} WHERE _data_period = '2025-02'")) == original[table]
        assert sorted(loaded.rows(f"SELECT * FROM {table} WHERE _data_period = '2025-01'")) == january[table]
    assert loaded.scalar("SELECT count(*) FROM meta.load_log WHERE step = 'rollback'") == 1
    assert loaded.rows("SELECT kind FROM meta.corrections") == [("rollback",)]
    history = json.loads(loaded.main("pipeline", "history", "--dataset", "citizens", "--period", "2025-02",
                                     "--json").stdout)
    assert [v["served"] for v in history] == [False, True]


def test_rollback_without_an_earlier_version_is_refused(loaded: Workspace) -> None:
    before = snapshot(loaded)
    proc = loaded.main("pipeline", "rollback", "--dataset", "citizens", "--period", "2025-01")
    assert proc.returncode == 1
    assert "no earlier version" in proc.stderr and proc.stderr.count("\n") == 1
    assert snapshot(loaded) == before


def test_only_the_newest_versions_are_kept(loaded: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_KEEP_VERSIONS", "2")
    for _ in range(3):
        assert loaded.main("pipeline", "reload", "--dataset", "citizens", "--period", "2025-01").returncode == 0
    kept = sorted(p.stem for p in (loaded.data_dir / "stage" / "history" / "citizens" / "2025-01").glob("*.parquet"))
    assert len(kept) == 2
    history = json.loads(loaded.main("pipeline", "history", "--dataset", "citizens", "--period", "2025-01",
                                     "--json").stdout)
    assert [v["kept"] for v in history] == [True, True, False, False]


def test_concurrent_reload_and_rollback_end_with_one_whole_version(loaded: Workspace) -> None:
    edit_february(loaded)
    assert loaded.main("pipeline", "reload", "--dataset", "citizens", "--period", "2025-02").returncode == 0
    versions = {}
    for v in json.loads(loaded.main("pipeline", "history", "--dataset", "citizens", "--period", "2025-02",
                                    "--json").stdout):
        versions[v["load_id"]] = v["rows"]
    results: list[int] = []

    def act(*args: str) -> None:
        results.append(loaded.cli(*args).returncode)

    threads = [threading.Thread(target=act, args=("reload", "--dataset", "citizens", "--period", "2025-02")),
               threading.Thread(target=act, args=("rollback", "--dataset", "citizens", "--period", "2025-02"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(0) >= 1
    rows = loaded.scalar("SELECT count(*) FROM stage.citizens WHERE _data_period = '2025-02'")
    assert rows in versions.values()
    # core was rebuilt from whatever stage serves: the two agree
    assert loaded.scalar("SELECT count(*) FROM core.citizens WHERE _data_period = '2025-02'") == rows

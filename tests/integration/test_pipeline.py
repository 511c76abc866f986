"""The whole pipeline per period (run, reload, status) on both backends."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.demo import write_citizens_xlsx
from tests.conftest import Workspace

GOOD = "*_2025-0[1-6].*"  # 6 months × 2 datasets


def digests(ws: Workspace) -> dict[str, str]:
    """A checksum of every stage/core/mart table's full content."""
    inspector = sa.inspect(ws.engine)
    out = {}
    for schema in ("stage", "core", "mart"):
        for name in inspector.get_table_names(schema=schema):
            rows = sorted(repr(tuple(r)) for r in ws.rows(f'SELECT * FROM {schema}."{name}"'))
            out[f"{schema}.{name}"] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return out


def counts(ws: Workspace, table: str) -> dict[str, int]:
    return dict(ws.rows(f"SELECT _data_period, count(*) FROM {table} GROUP BY _data_period"))


def test_run_on_demo_data_then_again_changes_nothing(workspace: Workspace, demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, GOOD)
    proc = workspace.cli("run")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "[12/12]" in proc.stdout and "12 loaded, 0 skipped, 0 failed" in proc.stdout
    periods = [f"2025-0{m}" for m in range(1, 7)]
    for table in ("stage.citizens", "core.citizens", "stage.benefit_payments", "core.benefit_payments"):
        assert sorted(counts(workspace, table)) == periods, table
    assert counts(workspace, "stage.citizens") == counts(workspace, "core.citizens")
    assert sorted(counts(workspace, "mart.citizens_by_municipality")) == periods
    assert sorted(counts(workspace, "mart.benefits_by_municipality")) == periods
    # core conforms: names trimmed and title-cased, ages and bands derived
    assert workspace.scalar("SELECT count(*) FROM core.citizens WHERE first_name <> trim(first_name)") == 0
    assert workspace.scalar("SELECT count(*) FROM core.citizens WHERE age IS NULL OR age_band IS NULL") == 0
    assert workspace.scalar("SELECT count(*) FROM stage.citizens WHERE first_name <> trim(first_name)") > 0
    # mart head counts add up to the stage rows of each period
    assert dict(workspace.rows("SELECT _data_period, sum(citizens) FROM mart.citizens_by_municipality "
                               "GROUP BY _data_period")) == counts(workspace, "stage.citizens")

    before = digests(workspace)
    log_rows = workspace.scalar("SELECT count(*) FROM meta.load_log")
    proc = workspace.cli("run")
    assert proc.returncode == 0, proc.stderr
    assert "0 loaded, 12 skipped, 0 failed" in proc.stdout
    assert digests(workspace) == before
    assert workspace.scalar("SELECT count(*) FROM meta.load_log") == log_rows


def test_corrected_file_replaces_its_period_only(workspace: Workspace, demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, "citizens_2025-0[1-3].xlsx")
    assert workspace.main("pipeline", "run").returncode == 0
    before = {t: counts(workspace, t) for t in ("stage.citizens", "core.citizens", "mart.citizens_by_municipality")}
    other = workspace.rows("SELECT * FROM core.citizens WHERE _data_period <> '2025-02' ORDER BY citizen_id, _data_period")

    import datetime as dt

    from pipeline.demo import Citizen
    corrected = [Citizen(900 + i, "Ny", "Person", dt.date(1990, 1, 1), "F", "0114", 1, 10.0) for i in range(5)]
    write_citizens_xlsx(workspace.landed / "citizens_2025-02.xlsx", corrected)
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 0, proc.stderr
    assert "1 loaded, 2 skipped" in proc.stdout
    assert counts(workspace, "stage.citizens")["2025-02"] == 5
    assert counts(workspace, "core.citizens")["2025-02"] == 5
    assert workspace.rows("SELECT municipality_code, citizens FROM mart.citizens_by_municipality "
                          "WHERE _data_period = '2025-02'") == [("0114", 5)]
    for table, old in before.items():
        now = counts(workspace, table)
        assert {p: c for p, c in now.items() if p != "2025-02"} == {p: c for p, c in old.items() if p != "2025-02"}
    assert workspace.rows("SELECT * FROM core.citizens WHERE _data_period <> '2025-02' "
                          "ORDER BY citizen_id, _data_period") == other
    # the changed file was ingested again: two accepted rows for that name
    assert workspace.scalar("SELECT count(*) FROM meta.ingestion_log WHERE file_name = 'citizens_2025-02.xlsx'") == 2


def test_failing_files_are_reported_and_the_others_load(workspace: Workspace, demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, "citizens_2025-0[12].xlsx")
    bad = workspace.add_demo(demo_dir, "citizens_2025-07.xlsx")  # invalid rows → rejected by validate
    workspace.add_demo(demo_dir, "citizens_june_final*")          # misnamed → rejected by ingest
    proc = workspace.cli("run")
    assert proc.returncode == 1
    assert "2 loaded, 0 skipped, 2 failed" in proc.stdout
    assert "failed at validate" in proc.stdout and "failed at ingest" in proc.stdout
    err = proc.stderr.strip().splitlines()
    assert len(err) == 2 and any("citizens_june_final(2).xlsx" in line for line in err)
    assert sorted(counts(workspace, "stage.citizens")) == ["2025-01", "2025-02"]
    # unchanged failures are not retried (nor logged again) on the next run
    ingests = workspace.scalar("SELECT count(*) FROM meta.ingestion_log")
    proc = workspace.cli("run")
    assert proc.returncode == 0 and "0 loaded, 4 skipped" in proc.stdout
    assert "unchanged since it failed validation" in proc.stdout
    assert workspace.scalar("SELECT count(*) FROM meta.ingestion_log") == ingests
    assert bad


def test_reload_reprocesses_the_period_from_landed(workspace: Workspace, demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, "citizens_2025-0[12].xlsx")
    assert workspace.main("pipeline", "run").returncode == 0
    ingests = workspace.scalar("SELECT count(*) FROM meta.ingestion_log")
    proc = workspace.main("pipeline", "reload", "--dataset", "citizens", "--period", "2025-02")
    assert proc.returncode == 0, proc.stderr
    # every reload is a whole attempt, ingest included (header checked under
    # today's config), and a new load of the period
    assert workspace.scalar("SELECT count(*) FROM meta.ingestion_log") == ingests + 1
    assert workspace.scalar("SELECT count(*) FROM meta.load_log WHERE step = 'load_stage' AND period = '2025-02'") == 2
    shutil.copy(demo_dir / "citizens_2025-03.xlsx", workspace.landed / "citizens_2025-02.xlsx")
    proc = workspace.main("pipeline", "reload", "--dataset", "citizens", "--period", "2025-02")
    assert proc.returncode == 0, proc.stderr
    assert workspace.scalar("SELECT count(*) FROM meta.ingestion_log") == ingests + 2
    proc = workspace.main("pipeline", "reload", "--dataset", "citizens", "--period", "2025-05")
    assert proc.returncode == 2 and "no file for dataset 'citizens' and period 2025-05" in proc.stderr
    proc = workspace.main("pipeline", "reload", "--dataset", "nope", "--period", "2025-02")
    assert proc.returncode == 2


def test_status_json_agrees_with_the_tables(workspace: Workspace, demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, "*_2025-0[12].*")
    workspace.add_demo(demo_dir, "citizens_2025-07.xlsx")
    workspace.main("pipeline", "run")
    proc = workspace.main("pipeline", "status", "--json")
    assert proc.returncode == 0
    rows = json.loads(proc.stdout)
    by_key = {(r["dataset"], r["period"]): r for r in rows}
    for dataset in ("citizens", "benefit_payments"):
        stage = counts(workspace, f"stage.{dataset}")
        core = counts(workspace, f"core.{dataset}")
        for period, n in stage.items():
            r = by_key[(dataset, period)]
            assert (r["stage_rows"], r["core_rows"]) == (n, core[period])
            assert (r["ingestion_status"], r["validation_status"], r["load_status"]) == ("accepted", "passed", "succeeded")
    failed = by_key[("citizens", "2025-07")]
    assert failed["validation_status"] == "failed" and failed["stage_rows"] is None and failed["error"]
    text = workspace.main("pipeline", "status").stdout
    assert "citizens" in text and "2025-07" in text and "! citizens 2025-07" in text


def test_transform_and_publish_commands(workspace: Workspace, demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, "*_2025-01.*")
    assert workspace.main("pipeline", "run").returncode == 0
    proc = workspace.main("pipeline.transform", "--dataset", "benefit_payments", "--period", "2025-01")
    assert proc.returncode == 0 and "core.benefit_payments period 2025-01" in proc.stdout
    unmatched = workspace.scalar("SELECT sum(citizen_unmatched) FROM core.benefit_payments")
    assert unmatched == workspace.scalar(
        "SELECT count(*) FROM stage.benefit_payments p WHERE NOT EXISTS (SELECT 1 FROM stage.citizens c "
        "WHERE c.citizen_id = p.citizen_id AND c._data_period = p._data_period)")
    proc = workspace.main("pipeline.publish", "--dataset", "citizens", "--period", "2025-03")
    assert proc.returncode == 1 and "has not been through transform yet" in proc.stderr
    proc = workspace.main("pipeline.publish", "--dataset", "citizens", "--period", "2025-13")
    assert proc.returncode == 2


def test_reloading_citizens_refreshes_the_payments_that_join_them(workspace: Workspace, demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, "*_2025-01.*")
    assert workspace.main("pipeline", "run").returncode == 0
    assert workspace.scalar("SELECT count(*) FROM core.benefit_payments WHERE municipality_code = '9999'") == 0
    # the register is corrected: everybody moved to municipality 9999
    import datetime as dt

    from pipeline.demo import Citizen
    ids = [r[0] for r in workspace.rows("SELECT citizen_id FROM stage.citizens")]
    write_citizens_xlsx(workspace.landed / "citizens_2025-01.xlsx",
                        [Citizen(i, "A", "B", dt.date(1980, 1, 1), "F", "9999", 1, 1.0) for i in ids])
    proc = workspace.main("pipeline", "reload", "--dataset", "citizens", "--period", "2025-01")
    assert proc.returncode == 0, proc.stderr
    assert "refreshed benefit_payments 2025-01" in proc.stdout
    matched = workspace.scalar("SELECT count(*) FROM core.benefit_payments WHERE citizen_unmatched = 0")
    assert matched > 0
    assert workspace.scalar("SELECT count(*) FROM core.benefit_payments WHERE municipality_code = '9999'") == matched


def test_shipped_sql_gives_the_same_core_and_mart_on_both_backends(
        pg_database: str, demo_dir: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The .sql files are written for PostgreSQL; on SQLite the workbench
    registers the functions they use. Same input → the same rows."""
    from pipeline import orchestrate
    from pipeline.context import Context
    from pipeline.settings import Settings
    from pipeline.warehouse.engine import dispose_engines
    from tests.conftest import CONFIG_PATH, reset_postgres

    reset_postgres(pg_database)
    results = {}
    for backend, url in (("sqlite", f"sqlite:///{tmp_path / 'wh' / 'workbench.sqlite'}"), ("postgres", pg_database)):
        data = tmp_path / backend
        ws = Workspace(root=tmp_path, db_url=url)
        (data / "landed").mkdir(parents=True)
        for src in demo_dir.glob("*_2025-03.*"):
            shutil.copy(src, data / "landed" / src.name)
        ctx = Context(Settings(data_dir=data, config_path=CONFIG_PATH, db_url=url))
        outcomes = orchestrate.run(ctx=ctx)
        assert [o.status for o in outcomes] == ["succeeded", "succeeded"], outcomes
        results[backend] = {
            "core": [tuple(str(v) for v in r) for r in ws.rows(
                "SELECT citizen_id, first_name, last_name, age, age_band, birth_date FROM core.citizens "
                "ORDER BY citizen_id")],
            "mart": [(r[0], r[1], r[2], round(float(r[3]), 2)) for r in ws.rows(
                "SELECT municipality_code, benefit_type, payments, amount_total FROM mart.benefits_by_municipality "
                "ORDER BY municipality_code, benefit_type")],
        }
        dispose_engines()
    assert results["sqlite"]["core"] == results["postgres"]["core"]
    assert results["sqlite"]["mart"] == results["postgres"]["mart"]


def test_a_failed_transform_marks_the_period_failed_in_status(workspace: Workspace) -> None:
    (workspace.root / "broken.sql").write_text("SELECT no_such_column, _data_period FROM stage.sales "
                                               "WHERE _data_period = :period")
    workspace.use_config("""
datasets:
  sales:
    file_pattern: '^sales_(?P<period>\\d{4}-\\d{2})\\.csv$'
    transform: broken.sql
    columns:
      id: {type: integer}
""")
    (workspace.landed / "sales_2025-01.csv").write_text("id\n1\n2\n")
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 1 and "FAILED at transform" in proc.stdout
    assert "no_such_column" in proc.stderr
    [row] = json.loads(workspace.main("pipeline", "status", "--json").stdout)
    assert (row["stage_rows"], row["core_rows"]) == (2, None)
    assert (row["load_status"], row["last_step"]) == ("failed", "transform")
    assert "no_such_column" in row["error"]


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_transform_waits_for_a_load_of_its_stage_period_in_progress(workspace: Workspace, demo_dir: Path) -> None:
    """Read and write in one transaction under a shared lock on the stage
    period: core can never be rebuilt from stage rows about to be replaced."""
    import os
    import subprocess
    import sys

    from pipeline.warehouse import tables
    from pipeline.warehouse.replace import lock_key

    workspace.add_demo(demo_dir, "citizens_2025-01.xlsx")
    assert workspace.main("pipeline", "run").returncode == 0
    key = lock_key(tables.stage_table(workspace.config().dataset("citizens")), "2025-01")
    holder = workspace.engine.connect()
    holder.begin()
    holder.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})  # a load of January running
    try:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.transform", "--dataset", "citizens",
                                 "--period", "2025-01"], cwd=workspace.root, env=os.environ.copy(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        workspace.wait_until_blocked_on_lock(proc)
        assert proc.poll() is None  # waits for the load
    finally:
        holder.rollback()
        holder.close()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


def test_a_failing_dependent_refresh_fails_the_reload(workspace: Workspace) -> None:
    (workspace.root / "b.sql").write_text(
        "SELECT b.id, a.nope, b._data_period FROM stage.b b JOIN stage.a a ON a.id = b.id "
        "WHERE b._data_period = :period")
    workspace.use_config("""
datasets:
  a:
    file_pattern: '^a_(?P<period>\\d{4}-\\d{2})\\.csv$'
    columns:
      id: {type: integer}
  b:
    file_pattern: '^b_(?P<period>\\d{4}-\\d{2})\\.csv$'
    transform: b.sql
    depends_on: [a]
    columns:
      id: {type: integer}
""")
    (workspace.landed / "a_2025-01.csv").write_text("id\n1\n")
    (workspace.landed / "b_2025-01.csv").write_text("id\n1\n")
    workspace.main("pipeline", "run")  # b fails at transform, its stage load succeeded
    proc = workspace.main("pipeline", "reload", "--dataset", "a", "--period", "2025-01")
    assert proc.returncode == 1
    assert "FAILED at refresh dependents" in proc.stdout and "nope" in proc.stderr


def test_first_build_and_rebuilds_run_inside_the_database(
        workspace: Workspace, demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """core and mart are built by INSERT … SELECT from the first build on, on
    both warehouses: the tables come from the result's declared types, and
    the rows never pass through Python. The rows are the ones the fetch path
    (kept for columns whose type only their values tell) writes."""
    from pipeline.warehouse import replace

    fetch = replace.query_period

    def no_python_rows(*_args: object, **_kw: object) -> None:
        raise AssertionError("the period's rows were fetched into Python")

    monkeypatch.setattr("pipeline.warehouse.replace.query_period", no_python_rows)
    workspace.add_demo(demo_dir, "*_2025-0[12].*")
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 0 and "4 loaded" in proc.stdout, proc.stderr + proc.stdout
    derived = ("core.citizens", "core.benefit_payments", "mart.citizens_by_municipality",
               "mart.benefits_by_municipality", "mart.citizens_summary")
    built = {t: d for t, d in digests(workspace).items() if t in derived}
    assert len(built) >= 4 and counts(workspace, "core.citizens") == counts(workspace, "stage.citizens")
    # the declared types, not whatever the first rows happened to be
    columns = {c["name"]: c["type"] for c in sa.inspect(workspace.engine).get_columns(
        "benefits_by_municipality", schema="mart")}
    assert isinstance(columns["payments"], sa.Integer) and isinstance(columns["amount_total"], sa.Float)
    assert isinstance(columns["municipality_code"], sa.String)
    ages = {c["name"]: c["type"] for c in sa.inspect(workspace.engine).get_columns("citizens", schema="core")}
    assert isinstance(ages["age"], sa.Integer) and isinstance(ages["birth_date"], sa.Date)

    # rebuilds: again inside the database, the same rows
    for module in ("pipeline.transform", "pipeline.publish"):
        for dataset in ("citizens", "benefit_payments"):
            proc = workspace.main(module, "--dataset", dataset, "--period", "2025-02")
            assert proc.returncode == 0, proc.stderr
    assert {t: d for t, d in digests(workspace).items() if t in derived} == built

    # the fetch-and-write path gives the very same tables
    monkeypatch.setattr("pipeline.warehouse.replace.query_period", fetch)
    monkeypatch.setattr("pipeline.warehouse.replace._rebuild_in_database", lambda *_a: None)
    for module in ("pipeline.transform", "pipeline.publish"):
        for dataset in ("citizens", "benefit_payments"):
            for period in ("2025-01", "2025-02"):
                assert workspace.main(module, "--dataset", dataset, "--period", period).returncode == 0
    assert {t: d for t, d in digests(workspace).items() if t in derived} == built


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_run_hashes_each_file_once_and_still_refuses_one_changed_after_ingest(
        workspace: Workspace, demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from collections import Counter

    from pipeline.io import landed
    from pipeline.runners.direct import DirectRunner

    hashed: Counter[str] = Counter()
    file_sha256, bytes_sha256 = landed.file_sha256, landed.bytes_sha256

    def counted_file(path: Path, *args: object) -> str:
        hashed[Path(path).name] += 1
        return file_sha256(path)

    def counted_bytes(data: bytes) -> str:
        hashed[f"bytes of {len(data)}"] += 1
        return bytes_sha256(data)

    monkeypatch.setattr(landed, "file_sha256", counted_file)
    monkeypatch.setattr(landed, "bytes_sha256", counted_bytes)
    files = [p.name for p in workspace.add_demo(demo_dir, "*_2025-0[12].*")]
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 0 and "4 loaded" in proc.stdout, proc.stderr + proc.stdout
    # skip check, ingest and validate's "unchanged since ingest" share one hash
    assert hashed == Counter({name: 1 for name in files})

    # a file written after ingest (say a colleague saves over it) is refused
    path = workspace.landed / "benefit_payments_2025-03.csv"
    ingest = DirectRunner.ingest
    for edit in (_other_size, _same_size):
        shutil.copy(demo_dir / path.name, path)

        def ingest_then_edit(self: DirectRunner, landed_path: Path, ctx, edit=edit):  # type: ignore[no-untyped-def]
            result = ingest(self, landed_path, ctx)
            edit(landed_path)
            return result

        monkeypatch.setattr(DirectRunner, "ingest", ingest_then_edit)
        proc = workspace.main("pipeline", "run", "--force", "--dataset", "benefit_payments", "--period", "2025-03")
        assert proc.returncode == 1, edit
        assert "file changed since ingest" in proc.stdout + proc.stderr, edit
    assert workspace.scalar("SELECT count(*) FROM stage.benefit_payments WHERE _data_period = '2025-03'") == 0


def _other_size(path: Path) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(",unemployment,", ",disability,", 1), encoding="utf-8")


def _same_size(path: Path) -> None:
    """Two digits swapped: the same size; the mtime moves, as any save moves
    it (set explicitly, so the test does not depend on the clock's tick)."""
    import os

    data = bytearray(path.read_bytes())
    data[data.index(b"1")] = ord("2")
    stat = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

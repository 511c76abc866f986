"""Migrations: a fresh warehouse gets the SPEC §5 schema; a legacy one (raw
schema, stage tables without _data_period, meta logs without the new columns)
is brought up to it with every legacy row kept; running it twice is harmless."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from pipeline.warehouse.backends.sqlite import sqlite_files
from pipeline.warehouse.engine import get_engine
from tests.conftest import Workspace

META_COLUMNS = {
    "ingestion_log": {"id", "dataset", "period", "file_name", "file_path", "file_size", "file_sha256",
                      "status", "error", "ingested_at"},
    "validation_log": {"id", "ingestion_id", "dataset", "period", "status", "rows_total", "rows_valid",
                       "rows_invalid", "parquet_path", "error", "started_at", "finished_at"},
    "validation_errors": {"validation_id", "row_number", "column", "check", "value"},
    "load_log": {"id", "step", "dataset", "period", "status", "source", "rows_deleted", "rows_inserted",
                 "error", "started_at", "finished_at"},
}


def columns(engine: sa.Engine, schema: str, table: str) -> dict[str, dict]:
    return {c["name"]: c for c in sa.inspect(engine).get_columns(table, schema=schema)}


def make_legacy(ws: Workspace) -> None:
    statements = [
        "CREATE TABLE {raw}citizens_raw (line TEXT)",
        "INSERT INTO {raw}citizens_raw VALUES ('1;Anna'), ('2;Lars')",
        "CREATE TABLE {stage}citizens (citizen_id BIGINT, first_name TEXT)",
        "INSERT INTO {stage}citizens VALUES (1, 'Anna'), (2, 'Lars'), (3, 'Sofia')",
        "CREATE TABLE {meta}ingestion_log (id INTEGER PRIMARY KEY, file_name TEXT, status TEXT, ingested_at TIMESTAMP)",
        "INSERT INTO {meta}ingestion_log (id, file_name, status, ingested_at) "
        "VALUES (1, 'citizens.xlsx', 'ok', '2024-01-31 10:00:00'), (2, 'citizens.xlsx', 'ok', '2024-02-29 10:00:00')",
    ]
    if ws.backend == "sqlite":
        main = Path(sa.make_url(ws.db_url).database)
        main.parent.mkdir(parents=True, exist_ok=True)
        files = sqlite_files(main)
        for schema in ("raw", "stage", "meta"):
            con = sqlite3.connect(files[schema])
            for s in statements:
                if "{" + schema + "}" in s:
                    con.execute(s.format(**{schema: ""}))
            con.commit()
            con.close()
        sqlite3.connect(main).close()
    else:
        engine = sa.create_engine(ws.db_url)
        with engine.begin() as conn:
            for schema in ("raw", "stage", "meta"):
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            for s in statements:
                conn.exec_driver_sql(s.format(raw="raw.", stage="stage.", meta="meta."))
        engine.dispose()


def test_fresh_warehouse_gets_meta_tables(workspace: Workspace) -> None:
    proc = workspace.main("pipeline", "migrate")
    assert proc.returncode == 0, proc.stderr
    engine = get_engine(workspace.db_url, migrate=False)
    for table, wanted in META_COLUMNS.items():
        assert wanted <= set(columns(engine, "meta", table)), table


def test_legacy_warehouse_is_migrated_keeping_rows_and_twice_is_harmless(workspace: Workspace) -> None:
    make_legacy(workspace)
    for _ in range(2):
        proc = workspace.cli("migrate")
        # The meta schema is migrated; the legacy stage.citizens (two columns)
        # cannot take the config's NOT NULL columns, which is said in one line
        # and changes nothing (SPEC §10.4).
        assert "is at revision" in proc.stdout
        assert proc.returncode == 1
        assert proc.stderr.count("\n") == 1 and "dataset 'citizens': new column 'last_name'" in proc.stderr
    engine = get_engine(workspace.db_url, migrate=False)
    inspector = sa.inspect(engine)

    stage_cols = columns(engine, "stage", "citizens")
    period = stage_cols["_data_period"]
    assert period["nullable"] is False
    assert isinstance(period["type"], sa.String) and period["type"].length == 7
    indexed = [ix["column_names"] for ix in inspector.get_indexes("citizens", schema="stage")]
    assert ["_data_period"] in indexed
    assert workspace.rows("SELECT citizen_id, first_name, _data_period FROM stage.citizens ORDER BY 1") == [
        (1, "Anna", "legacy"), (2, "Lars", "legacy"), (3, "Sofia", "legacy")]

    for table, wanted in META_COLUMNS.items():
        assert wanted <= set(columns(engine, "meta", table)), table
    assert workspace.rows("SELECT id, file_name, status FROM meta.ingestion_log ORDER BY id") == [
        (1, "citizens.xlsx", "ok"), (2, "citizens.xlsx", "ok")]

    if workspace.backend == "sqlite":
        assert not sqlite_files(Path(sa.make_url(workspace.db_url).database))["raw"].exists()
    else:
        assert "raw" not in inspector.get_schema_names()

    # the migrated warehouse is usable: a new ingest is logged beside the legacy rows
    workspace.landed.joinpath("benefit_payments_2025-01.csv").write_text(
        "Payment ID,Citizen ID,Benefit Type,Amount,Payment Date,Booked At,Is Correction\n")
    proc = workspace.main("pipeline.ingest", "--file-path", str(workspace.landed / "benefit_payments_2025-01.csv"))
    assert proc.returncode == 0, proc.stderr
    assert workspace.scalar("SELECT count(*) FROM meta.ingestion_log") == 3


def test_row_key_is_added_to_a_warehouse_at_0004_and_twice_is_harmless(workspace: Workspace) -> None:
    from alembic import command

    from pipeline.warehouse.migrate import alembic_config

    engine = get_engine(workspace.db_url, migrate=False)

    def upgrade(target: str, *, stamp: str | None = None) -> None:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            if stamp:  # the log says 0004 although the column is there: the revision runs again
                command.stamp(cfg, stamp)
            command.upgrade(cfg, target)

    upgrade("0004")
    with engine.begin() as conn:  # an error logged before the column existed
        conn.exec_driver_sql('INSERT INTO meta.validation_errors (validation_id, row_number, "column", "check", '
                             "value) VALUES (1, 5, 'sex', 'isin [M, F]', 'Q')")
    assert "row_key" not in columns(engine, "meta", "validation_errors")
    for again in (None, "0004"):
        upgrade("head", stamp=again)
        row_key = columns(engine, "meta", "validation_errors")["row_key"]
        assert row_key["nullable"] is True and isinstance(row_key["type"], sa.Text)
        assert workspace.rows('SELECT row_number, "column", value, row_key FROM meta.validation_errors') == [
            (5, "sex", "Q", None)]
    engine.dispose()

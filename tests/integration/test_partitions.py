"""PostgreSQL: one partition per month, swapped in (SPEC §10.5)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipeline.warehouse.engine import dispose_engines
from pipeline.warehouse.migrate import alembic_config
from tests.conftest import Workspace

pytestmark = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)

PARTITIONS = """
SELECT child.relname FROM pg_inherits
JOIN pg_class parent ON parent.oid = inhparent JOIN pg_class child ON child.oid = inhrelid
JOIN pg_namespace n ON n.oid = parent.relnamespace
WHERE n.nspname = :schema AND parent.relname = :table ORDER BY 1
"""


def partitions(ws: Workspace, schema: str, table: str) -> list[str]:
    return [name for (name,) in ws.rows(PARTITIONS, schema=schema, table=table)]


@pytest.fixture
def loaded(workspace: Workspace, demo_dir: Path) -> Workspace:
    workspace.add_demo(demo_dir, "citizens_2025-0[123].xlsx")
    assert workspace.main("pipeline", "run").returncode == 0
    return workspace


def test_every_layer_is_partitioned_one_partition_per_month(loaded: Workspace) -> None:
    months = ["citizens__2025_01", "citizens__2025_02", "citizens__2025_03"]
    assert partitions(loaded, "stage", "citizens") == months
    assert partitions(loaded, "core", "citizens") == months
    assert len(partitions(loaded, "mart", "citizens_by_municipality")) == 3
    # a reload swaps the month's partition: still one per month, nothing left behind
    assert loaded.main("pipeline", "reload", "--dataset", "citizens", "--period", "2025-02").returncode == 0
    assert partitions(loaded, "stage", "citizens") == months
    assert loaded.scalar("SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_\\_new'") == 0


def test_a_failure_at_attach_leaves_the_old_partition_served(loaded: Workspace, tmp_path: Path) -> None:
    before = sorted(loaded.rows("SELECT * FROM stage.citizens WHERE _data_period = '2025-02'"))
    other = loaded.rows("SELECT ctid, citizen_id FROM stage.citizens WHERE _data_period = '2025-01' ORDER BY ctid")
    parquet = loaded.data_dir / "stage" / "cleaned" / "citizens" / "period=2025-02" / "part-0.parquet"
    table = pq.read_table(parquet)
    duplicated = pa.concat_tables([table, table.slice(0, 1)])  # one primary key twice
    bad = tmp_path / "dup.parquet"
    pq.write_table(duplicated, bad)
    proc = loaded.main("pipeline.load_stage", "--parquet-path", str(bad), "--period", "2025-02",
                       "--dataset", "citizens")
    assert proc.returncode == 1 and "nothing changed" in proc.stderr
    assert sorted(loaded.rows("SELECT * FROM stage.citizens WHERE _data_period = '2025-02'")) == before
    assert loaded.rows("SELECT ctid, citizen_id FROM stage.citizens WHERE _data_period = '2025-01' "
                       "ORDER BY ctid") == other
    assert loaded.scalar("SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_\\_new'") == 0


def test_a_reader_of_another_month_is_not_held_behind_a_reload(loaded: Workspace) -> None:
    engine = sa.create_engine(loaded.db_url)
    holder = engine.connect()
    holder.begin()
    # A long report on January holds its lock on the parent table...
    holder.exec_driver_sql("SELECT count(*) FROM stage.citizens WHERE _data_period = '2025-01'")
    reload = threading.Thread(target=lambda: loaded.cli("reload", "--dataset", "citizens", "--period", "2025-02"))
    reload.start()
    time.sleep(3)  # the reload is now trying to swap February in
    try:
        with engine.connect() as reader:
            # ...another reader must not queue behind the swap for longer than
            # its lock timeout (2 s); without the timeout it would wait for the
            # report to finish (never, here) and hit this statement timeout.
            reader.exec_driver_sql("SET statement_timeout = '8s'")
            assert reader.exec_driver_sql(
                "SELECT count(*) FROM stage.citizens WHERE _data_period = '2025-03'").scalar()
    finally:
        holder.rollback()
        holder.close()
        reload.join(timeout=120)
        engine.dispose()
    assert loaded.scalar("SELECT status FROM meta.load_log WHERE step = 'load_stage' ORDER BY id DESC LIMIT 1") \
        == "succeeded"


def test_the_migration_partitions_flat_tables_with_legacy_rows_twice(db_url: str, workspace: Workspace) -> None:
    from alembic import command

    engine = sa.create_engine(db_url)
    with engine.begin() as conn:  # a warehouse from before partitions
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003_corrections")
        conn.exec_driver_sql("CREATE TABLE stage.things (id BIGINT PRIMARY KEY, v TEXT, "
                             "_data_period VARCHAR(7) NOT NULL)")
        conn.exec_driver_sql("CREATE INDEX ix_things_data_period ON stage.things (_data_period)")
        conn.exec_driver_sql("INSERT INTO stage.things VALUES (1, 'a', 'legacy'), (2, 'b', '2025-01'), "
                             "(3, 'c', '2025-02'), (4, 'd', '2025-02')")
    for _ in range(2):
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        assert partitions(workspace, "stage", "things") == ["things__2025_01", "things__2025_02", "things__legacy"]
        assert workspace.rows("SELECT id, v, _data_period FROM stage.things ORDER BY id") == [
            (1, "a", "legacy"), (2, "b", "2025-01"), (3, "c", "2025-02"), (4, "d", "2025-02")]
        indexes = {name for (name,) in workspace.rows(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'stage' AND tablename = 'things'")}
        assert {"ix_things_data_period", "things_pkey"} <= indexes
    dispose_engines()
    engine.dispose()


def test_transform_and_publish_of_a_loaded_month_run_inside_the_database(
        loaded: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    before = {t: sorted(loaded.rows(f"SELECT * FROM {t} WHERE _data_period = '2025-02'"))
              for t in ("core.citizens", "mart.citizens_by_municipality")}

    def no_python_rows(*_args: object, **_kw: object) -> None:
        raise AssertionError("the period's rows were fetched into Python")

    # INSERT … SELECT: the fetch-and-write path must not be needed once the
    # tables exist with the query's columns.
    monkeypatch.setattr("pipeline.warehouse.replace.query_period", no_python_rows)
    for module in ("pipeline.transform", "pipeline.publish"):
        proc = loaded.main(module, "--dataset", "citizens", "--period", "2025-02")
        assert proc.returncode == 0, proc.stderr
    for table, rows in before.items():
        assert sorted(loaded.rows(f"SELECT * FROM {table} WHERE _data_period = '2025-02'")) == rows

"""load_stage: the refactoring plan's success metrics — replace one period,
append a new one, never touch another, roll back on failure — plus the
concurrency and crash guarantees of SPEC §7."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipeline.domain.schema import arrow_schema
from tests.conftest import Workspace

COLUMNS = "citizen_id, first_name, last_name, birth_date, sex, municipality_code, household_id, monthly_income"


def citizens(ws: Workspace, ids: range, tag: str, **overrides: list) -> pa.Table:
    # nullable fields, so a test can build files the table itself must refuse
    schema = pa.schema([f.with_nullable(True) for f in arrow_schema(ws.config().dataset("citizens"))])
    n = len(ids)
    data = {
        "citizen_id": list(ids),
        "first_name": [f"{tag}{i}" for i in ids],
        "last_name": ["Berg"] * n,
        "birth_date": [dt.date(1980, 1, 1) + dt.timedelta(days=i % 9000) for i in ids],
        "sex": ["F", "M", "X"] * (n // 3) + ["F"] * (n % 3),
        "municipality_code": ["0219"] * n,
        "household_id": [i // 2 + 1 for i in ids],
        "monthly_income": [float(i % 5000) for i in ids],
    }
    data.update(overrides)
    return pa.table({f.name: pa.array(data[f.name], type=f.type) for f in schema}, schema=schema)


def write(ws: Workspace, table: pa.Table, name: str) -> Path:
    path = ws.root / f"{name}.parquet"
    pq.write_table(table, path)
    return path


def load(ws: Workspace, path: Path, period: str, dataset: str = "citizens"):  # type: ignore[no-untyped-def]
    return ws.main("pipeline.load_stage", "--parquet-path", str(path), "--period", period, "--dataset", dataset)


def period_rows(ws: Workspace, period: str) -> list[tuple]:
    rows = ws.rows(f"SELECT {COLUMNS} FROM stage.citizens WHERE _data_period = :p ORDER BY citizen_id", p=period)
    return [tuple(str(v) for v in r) for r in rows]


def expected(table: pa.Table) -> list[tuple]:
    return sorted((tuple(str(v) for v in r.values()) for r in table.to_pylist()), key=lambda t: int(t[0]))


def test_first_load_reload_and_other_period_untouched(workspace: Workspace) -> None:
    may, june_v1, june_v2 = (citizens(workspace, range(1, 51), "may"),
                             citizens(workspace, range(1, 41), "v1"),
                             citizens(workspace, range(30, 61), "v2"))
    assert load(workspace, write(workspace, may, "may"), "2025-05").returncode == 0
    assert load(workspace, write(workspace, june_v1, "june1"), "2025-06").returncode == 0
    assert period_rows(workspace, "2025-06") == expected(june_v1)
    if workspace.backend == "postgresql":
        # physical row ids of May before the June reload: not deleted and re-inserted
        may_ctids = workspace.rows("SELECT ctid FROM stage.citizens WHERE _data_period = '2025-05' ORDER BY ctid")

    proc = load(workspace, write(workspace, june_v2, "june2"), "2025-06")
    assert proc.returncode == 0, proc.stderr
    assert "40 rows deleted, 31 inserted" in proc.stdout
    assert period_rows(workspace, "2025-06") == expected(june_v2)
    assert period_rows(workspace, "2025-05") == expected(may)
    if workspace.backend == "postgresql":
        assert workspace.rows("SELECT ctid FROM stage.citizens WHERE _data_period = '2025-05' ORDER BY ctid") == may_ctids
    log = workspace.rows("SELECT step, period, status, rows_deleted, rows_inserted FROM meta.load_log ORDER BY id")
    assert log == [("load_stage", "2025-05", "succeeded", 0, 50), ("load_stage", "2025-06", "succeeded", 0, 40),
                   ("load_stage", "2025-06", "succeeded", 40, 31)]


def test_failure_midway_leaves_table_exactly_as_before(workspace: Workspace) -> None:
    good = citizens(workspace, range(1, 101), "good")
    assert load(workspace, write(workspace, good, "good"), "2025-06").returncode == 0
    n = 60_000  # several batches: the failure comes after rows were already sent
    names = [f"n{i}" for i in range(n)]
    names[-1] = None  # NOT NULL refused by the database itself, at the very end
    bad = citizens(workspace, range(1, n + 1), "bad", first_name=names)
    path = write(workspace, bad, "bad")
    proc = load(workspace, path, "2025-06")
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "nothing changed" in proc.stderr
    assert "first_name" in proc.stderr or "NOT NULL" in proc.stderr.upper()
    assert period_rows(workspace, "2025-06") == expected(good)
    status, error = workspace.rows("SELECT status, error FROM meta.load_log ORDER BY id DESC")[0]
    assert status == "failed" and error


def test_text_in_a_numeric_column_is_refused_before_the_database(workspace: Workspace) -> None:
    good = citizens(workspace, range(1, 11), "good")
    assert load(workspace, write(workspace, good, "good"), "2025-06").returncode == 0
    bad = good.set_column(good.schema.get_field_index("monthly_income"), "monthly_income",
                          pa.array(["lots"] * 10))
    proc = load(workspace, write(workspace, bad, "bad"), "2025-06")
    assert proc.returncode == 1
    assert "column 'monthly_income' is string" in proc.stderr
    assert period_rows(workspace, "2025-06") == expected(good)
    assert workspace.rows("SELECT status FROM meta.load_log ORDER BY id DESC")[0] == ("failed",)


def test_period_column_that_disagrees_is_refused(workspace: Workspace) -> None:
    table = citizens(workspace, range(1, 4), "x").append_column("_data_period", pa.array(["2025-05"] * 3))
    proc = load(workspace, write(workspace, table, "p"), "2025-06")
    assert proc.returncode == 1 and "holds '2025-05', not the --period 2025-06" in proc.stderr
    same = citizens(workspace, range(1, 4), "x").append_column("_data_period", pa.array(["2025-06"] * 3))
    assert load(workspace, write(workspace, same, "q"), "2025-06").returncode == 0


@pytest.mark.parametrize("dataset", ["citizens; DROP TABLE stage.citizens; --", "citizens\" CASCADE", "CITIZENS"])
def test_dataset_names_are_looked_up_never_spliced(workspace: Workspace, dataset: str) -> None:
    good = citizens(workspace, range(1, 6), "g")
    path = write(workspace, good, "g")
    assert load(workspace, path, "2025-06").returncode == 0
    proc = load(workspace, path, "2025-06", dataset=dataset)
    assert proc.returncode == 2 and "unknown dataset" in proc.stderr
    assert period_rows(workspace, "2025-06") == expected(good)


@pytest.mark.parametrize("period", ["2025-13", "202506", "2025-06' OR '1'='1"])
def test_malformed_period_is_a_usage_error(workspace: Workspace, period: str) -> None:
    path = write(workspace, citizens(workspace, range(1, 3), "g"), "g")
    proc = load(workspace, path, period)
    assert proc.returncode == 2 and "--period" in proc.stderr


def test_missing_parquet_is_a_usage_error(workspace: Workspace) -> None:
    proc = load(workspace, workspace.root / "nope.parquet", "2025-06")
    assert proc.returncode == 2 and "no such Parquet file" in proc.stderr


def test_stage_table_ddl(workspace: Workspace) -> None:
    load(workspace, write(workspace, citizens(workspace, range(1, 3), "g"), "g"), "2025-06")
    inspector = sa.inspect(workspace.engine)
    cols = {c["name"]: c for c in inspector.get_columns("citizens", schema="stage")}
    period = cols["_data_period"]
    assert period["nullable"] is False
    assert isinstance(period["type"], sa.String) and period["type"].length == 7
    assert cols["citizen_id"]["nullable"] is False and isinstance(cols["citizen_id"]["type"], sa.BigInteger)
    assert isinstance(cols["monthly_income"]["type"], sa.Float)
    assert isinstance(cols["birth_date"]["type"], sa.Date)
    indexes = {tuple(ix["column_names"]): ix["unique"] for ix in inspector.get_indexes("citizens", schema="stage")}
    assert ("_data_period",) in indexes
    assert bool(indexes[("_data_period", "citizen_id")]) is True
    if workspace.backend == "postgresql":
        assert workspace.scalar(
            "SELECT data_type || '(' || character_maximum_length || ')' FROM information_schema.columns "
            "WHERE table_schema='stage' AND table_name='citizens' AND column_name='_data_period'"
        ) == "character varying(7)"


def _spawn(ws: Workspace, path: Path, period: str = "2025-06") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.load_stage", "--parquet-path", str(path), "--period", period,
         "--dataset", "citizens"], cwd=ws.root, env=os.environ.copy(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_concurrent_loads_of_one_period_never_mix(workspace: Workspace) -> None:
    """PostgreSQL serialises them with the advisory lock, SQLite queues writers."""
    a = citizens(workspace, range(1, 20_001), "a")
    b = citizens(workspace, range(50_001, 65_001), "b")
    pa_, pb = write(workspace, a, "a"), write(workspace, b, "b")
    load(workspace, pa_, "2025-05")  # another period, must stay as it is
    procs = [_spawn(workspace, p) for p in (pa_, pb, pa_, pb)]
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    rows = period_rows(workspace, "2025-06")
    assert rows in (expected(a), expected(b))
    assert period_rows(workspace, "2025-05") == expected(a)
    # the log row committed last names the file the period now holds
    last = workspace.rows("SELECT source FROM meta.load_log WHERE period = '2025-06' ORDER BY finished_at DESC")[0][0]
    assert Path(last).name == ("a.parquet" if rows == expected(a) else "b.parquet")


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_killed_load_leaves_previous_rows_and_next_load_succeeds(workspace: Workspace) -> None:
    before = citizens(workspace, range(1, 101), "before")
    assert load(workspace, write(workspace, before, "before"), "2025-06").returncode == 0
    big = write(workspace, citizens(workspace, range(1, 600_001), "big"), "big")
    proc = _spawn(workspace, big)
    deadline = time.monotonic() + 60
    copying = False
    while time.monotonic() < deadline and proc.poll() is None:
        copying = bool(workspace.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY %'"))
        if copying:
            break
        time.sleep(0.05)
    assert copying, "the load never reached COPY"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert period_rows(workspace, "2025-06") == expected(before)
    after = citizens(workspace, range(7, 17), "after")
    proc = load(workspace, write(workspace, after, "after"), "2025-06")
    assert proc.returncode == 0, proc.stderr
    assert period_rows(workspace, "2025-06") == expected(after)


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_load_waits_only_for_its_own_period(workspace: Workspace) -> None:
    from pipeline.warehouse import tables
    from pipeline.warehouse.replace import lock_key

    first = citizens(workspace, range(1, 11), "first")
    path = write(workspace, first, "first")
    assert load(workspace, path, "2025-06").returncode == 0  # creates the table
    key = lock_key(tables.stage_table(workspace.config().dataset("citizens")), "2025-06")
    holder = workspace.engine.connect()
    holder.begin()
    holder.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})  # a load of June in progress
    try:
        other = _spawn(workspace, path, period="2025-05")
        assert other.wait(timeout=60) == 0  # May does not wait for June
        same = _spawn(workspace, write(workspace, citizens(workspace, range(5, 8), "second"), "second"))
        workspace.wait_until_blocked_on_lock(same)
        assert same.poll() is None  # June waits its turn
    finally:
        holder.rollback()
        holder.close()
    assert same.wait(timeout=60) == 0
    assert [r[0] for r in period_rows(workspace, "2025-06")] == ["5", "6", "7"]


TYPES_CONFIG = """
datasets:
  kinds:
    file_pattern: '^kinds_(?P<period>\\\\d{4}-\\\\d{2})\\\\.csv$'
    columns:
      id:     {type: integer, nullable: false}
      code:   {type: string}
      name:   {type: string, max_length: 40}
      amount: {type: decimal, precision: 12, scale: 2}
      day:    {type: date}
      at:     {type: datetime}
      flag:   {type: boolean}
      ratio:  {type: float}
"""


def test_batch_load_keeps_every_type_exactly(workspace: Workspace) -> None:
    import decimal

    workspace.use_config(TYPES_CONFIG)
    schema = arrow_schema(workspace.config().dataset("kinds"))
    rows = [
        {"id": 1, "code": "0219", "name": "Åsa Nyström", "amount": decimal.Decimal("1234567890.12"),
         "day": dt.date(1900, 1, 1), "at": dt.datetime(2025, 6, 1, 0, 0, 0), "flag": True, "ratio": 0.1},
        {"id": 2, "code": "007", "name": "O'Connor 😀", "amount": decimal.Decimal("-0.01"),
         "day": dt.date(2025, 6, 30), "at": dt.datetime(2025, 6, 30, 23, 59, 59, 999999), "flag": False,
         "ratio": -1e-300},
        {"id": 3, "code": "", "name": None, "amount": None, "day": None, "at": None, "flag": None, "ratio": None},
    ]
    table = pa.Table.from_pylist(rows, schema=schema)
    assert load(workspace, write(workspace, table, "kinds"), "2025-06", "kinds").returncode == 0

    # read back through the column types: the very values written
    from pipeline.warehouse.tables import stage_table
    stage = stage_table(workspace.config().dataset("kinds"))
    with workspace.engine.connect() as conn:
        got = [dict(r._mapping) for r in conn.execute(sa.select(stage).order_by(stage.c.id))]
    assert [{k: v for k, v in r.items() if k != "_data_period"} for r in got] == rows
    assert {r["_data_period"] for r in got} == {"2025-06"}
    if workspace.backend == "sqlite":
        # stored exactly as SQLAlchemy's own per-row insert stores them (what
        # every reader and every translated .sql file expects)
        reference = sa.Table("kinds_reference", sa.MetaData(), *(c.copy() for c in stage.columns), schema="stage")
        with workspace.engine.begin() as conn:
            reference.create(conn)
            conn.execute(reference.insert(), [{**r, "_data_period": "2025-06"} for r in rows])
        stored = "SELECT {} FROM stage.{} ORDER BY id".format(
            ", ".join(f"typeof({c}), {c}" for c in stage.columns.keys()), "{}")
        assert workspace.rows(stored.format("kinds")) == workspace.rows(stored.format("kinds_reference"))

"""SQLite, the zero-setup embedded warehouse.

Each schema is its own database file beside the main one
(``workbench.stage.sqlite``, …), attached to every connection under the
schema's name, so ``stage.citizens`` means the same as on PostgreSQL. WAL
mode and a busy timeout let the dashboard read while a run writes. SQLite has
one writer at a time: a writing transaction starts with ``BEGIN IMMEDIATE``
(asked for with the ``workbench_write`` execution option), so writers queue at
the start instead of failing half-way; that is also its period lock.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from pipeline.domain.period import PERIOD_COLUMN
from pipeline.errors import UsageError
from pipeline.warehouse.backends.base import SCHEMAS, with_period

SQLITE_BUSY_TIMEOUT_MS = 60_000
SQLITE_BATCH_ROWS = 20_000


class SqliteBackend:
    name = "sqlite"
    concurrent_writers = False

    def make_engine(self, url: sa.URL) -> Engine:
        if not url.database or url.database == ":memory:":
            raise UsageError("the SQLite warehouse must be a file (sqlite:///path/workbench.sqlite)")
        return _sqlite_engine(url)

    def lock(self, conn: Connection, key: int, *, shared: bool = False) -> None:
        pass  # the transaction began with BEGIN IMMEDIATE: it is the only writer

    def append(self, conn: Connection, table: sa.Table, batches: Iterable[pa.RecordBatch],
               period: str) -> int:
        return insert_batches(conn, table, batches, period)

    def create_table(self, conn: Connection, table: sa.Table) -> None:
        table.create(conn)

    def replace_rows(self, conn: Connection, table: sa.Table, period: str,
                     batches: Iterable[pa.RecordBatch]) -> tuple[int, int]:
        # One table per dataset: delete the month, append the new rows.
        deleted = conn.execute(sa.delete(table).where(table.c[PERIOD_COLUMN] == period)).rowcount
        return deleted, insert_batches(conn, table, batches, period)

    def before_migrations(self, conn: Connection) -> None:
        pass

    def after_migrations(self, engine: Engine) -> None:
        _drop_empty_legacy_raw(engine)


def sqlite_files(main: Path) -> dict[str, Path]:
    """The database file behind each schema, beside the main file."""
    return {schema: main.with_name(f"{main.stem}.{schema}.sqlite") for schema in (*SCHEMAS, "raw")}


def _sqlite_engine(sa_url: sa.URL) -> Engine:
    main = Path(sa_url.database or "").absolute()
    main.parent.mkdir(parents=True, exist_ok=True)
    files = sqlite_files(main)
    engine = sa.create_engine(
        sa_url.set(database=str(main)),
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite's own
        # implicit transactions would defeat BEGIN IMMEDIATE).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        for schema, path in files.items():
            # 'raw' exists only in a legacy warehouse, until its migration drops it.
            if schema != "raw" or path.exists():
                cur.execute(f'ATTACH DATABASE ? AS "{schema}"', (str(path),))
        for schema in ("main", *SCHEMAS):
            cur.execute(f'PRAGMA "{schema}".journal_mode = WAL')
        cur.close()
        _register_sqlite_functions(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock up front, so it waits its turn instead
        # of failing when another writer commits between its read and write.
        mode = "IMMEDIATE" if conn.get_execution_options().get("workbench_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _register_sqlite_functions(dbapi_conn: Any) -> None:
    """PostgreSQL functions the shipped .sql files use, so they run unchanged."""

    def initcap(value: Any) -> Any:
        return None if value is None else str(value).title()

    def to_char(value: Any, fmt: Any) -> Any:
        if value is None:
            return None
        day = dt.date.fromisoformat(str(value)[:10])
        out = str(fmt)
        for token, part in (("YYYY", f"{day.year:04d}"), ("MM", f"{day.month:02d}"), ("DD", f"{day.day:02d}")):
            out = out.replace(token, part)
        return out

    dbapi_conn.create_function("initcap", 1, initcap, deterministic=True)
    dbapi_conn.create_function("to_char", 2, to_char, deterministic=True)


def insert_batches(conn: Connection, table: sa.Table, batches: Iterable[pa.RecordBatch], period: str) -> int:
    """Batched executemany (SQLite), inside the caller's transaction."""
    inserted = 0
    statement = table.insert()
    for batch in batches:
        for start in range(0, batch.num_rows, SQLITE_BATCH_ROWS):
            rows = with_period(batch.slice(start, SQLITE_BATCH_ROWS), period).to_pylist()
            if rows:
                conn.execute(statement, rows)
                inserted += len(rows)
    return inserted


def _drop_empty_legacy_raw(engine: Engine) -> None:
    raw = sqlite_files(Path(engine.url.database or ""))["raw"]
    if raw.exists():
        with engine.connect() as conn:
            left = conn.exec_driver_sql("SELECT count(*) FROM raw.sqlite_master").scalar()
        if not left:
            engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{raw}{suffix}").unlink(missing_ok=True)

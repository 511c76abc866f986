"""Replace one period of one table, atomically: the pattern load_stage,
transform and publish share.

In ONE transaction: take a lock that serialises writers of the same table and
period, ``DELETE … WHERE _data_period = :period``, append the new rows, record
the outcome in ``meta.load_log``, commit. Any error rolls all of it back; the
failure is then logged in a transaction of its own.

Why the lock: under READ COMMITTED two concurrent loads of one period can both
delete (the second sees nothing yet) and both insert, leaving both files'
rows. A transaction-scoped advisory lock on (table, period) makes the second
wait until the first commits, so its DELETE then sees and removes those rows.
Loads of other periods take other keys and do not wait. SQLite has one writer
at a time: BEGIN IMMEDIATE queues writers at the start of the transaction
(see warehouse.backends).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.errors import StepFailed, WorkbenchError, one_line
from pipeline.warehouse import runlog
from pipeline.warehouse.backends import backend_of
from pipeline.warehouse.engine import write_transaction
from pipeline.warehouse.query import SqlFile, insert_period, period_select, query_period, result_schema
from pipeline.warehouse.tables import columns_to_add, derived_table, ensure_table, table_exists


@dataclass(frozen=True)
class LoadResult:
    load_id: int
    step: str
    dataset: str
    period: str
    table: str
    rows_deleted: int
    rows_inserted: int
    seconds: float


def lock_key(table: sa.Table, period: str) -> int:
    """A signed 64-bit advisory-lock key for (schema.table, period)."""
    digest = hashlib.sha256(f"{table.schema}.{table.name}|{period}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def ensure_table_once(engine: Engine, table: sa.Table) -> None:
    """Create the table if missing (or add the config's new columns), in its
    own short transaction, under a lock on the table so that concurrent first
    loads do not race to create it. A table already as the config says needs
    no write transaction (on SQLite that would queue behind every writer)."""
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        if inspector.has_table(table.name, schema=table.schema) and not columns_to_add(
                table, {c["name"]: c for c in inspector.get_columns(table.name, schema=table.schema)}):
            return
    with write_transaction(engine) as conn:
        backend_of(conn).lock(conn, lock_key(table, "*table*"))
        ensure_table(conn, table)


def _swap(conn: Connection, table: sa.Table, period: str,
          batches: Iterable[pa.RecordBatch]) -> tuple[int, int]:
    """DELETE the period, append the batches; inside the caller's transaction."""
    return backend_of(conn).replace_rows(conn, table, period, batches)


@contextlib.contextmanager
def server_reason_kept(conn: Connection) -> Iterator[None]:
    """On failure, note the server's own reason on the exception when the
    connection was lost (the driver then says only "invalid socket", and the
    rollback after it "connection already closed"); errors.one_line prefers it.
    libpq keeps the server's last message on the connection's ``info``."""
    try:
        yield
    except Exception as exc:
        try:
            dbapi = conn.connection.dbapi_connection
            # Only a connection that is gone: an ordinary SQL error keeps its
            # own message (which names the .sql file and line).
            lost = bool(getattr(dbapi, "closed", 0)) or bool(getattr(exc, "connection_invalidated", False))
            info = getattr(dbapi, "info", None) if lost else None
            text = str(getattr(info, "error_message", "") or "")
        except Exception:  # noqa: BLE001 - best effort on a broken connection
            text = ""
        said = [line.split(":", 1)[1].strip() for line in text.splitlines()
                if line.startswith(("FATAL:", "ERROR:", "PANIC:"))]
        if said:
            exc.server_reason = f"connection lost: {said[0]}"  # type: ignore[attr-defined]
        raise


def _failed(engine: Engine, exc: BaseException, *, step: str, dataset: str, period: str, source: str,
            target: str, file_sha256: str | None, started: dt.datetime) -> StepFailed:
    """Log the failure in its own transaction; the error to raise."""
    message = one_line(exc)
    runlog.log_load_failure(engine, step=step, dataset=dataset, period=period, source=source,
                file_sha256=file_sha256, error=message, started=started)
    failure = StepFailed(f"{step} {dataset} {period} into {target} failed, nothing changed: {message}")
    failure.logged = True  # type: ignore[attr-defined]
    return failure


def replace_period(
    engine: Engine,
    table: sa.Table,
    period: str,
    batches: Iterable[pa.RecordBatch],
    *,
    step: str,
    dataset: str,
    source: str,
    file_sha256: str | None = None,
) -> LoadResult:
    """Make ``batches`` the whole content of ``period`` in ``table``, atomically."""
    started = runlog.utcnow()
    clock = time.perf_counter()
    name = f"{table.schema}.{table.name}"
    try:
        ensure_table_once(engine, table)
        with write_transaction(engine) as conn, server_reason_kept(conn):
            backend_of(conn).lock(conn, lock_key(table, period))
            deleted, inserted = _swap(conn, table, period, batches)
            load_id = runlog.log_load(conn, step=step, dataset=dataset, period=period, source=source,
                                   file_sha256=file_sha256, deleted=deleted, inserted=inserted,
                                   started=started)
    except Exception as exc:
        raise _failed(engine, exc, step=step, dataset=dataset, period=period, source=source,
                      target=name, file_sha256=file_sha256, started=started) from exc
    return LoadResult(load_id, step, dataset, period, name, deleted, inserted, time.perf_counter() - clock)


def rebuild_period(
    engine: Engine,
    *,
    source: sa.Table,
    target: tuple[str, str],
    statement: sa.Executable | SqlFile,
    period: str,
    types: Mapping[str, pa.DataType],
    step: str,
    dataset: str,
    key: tuple[str, ...] = (),
) -> LoadResult:
    """Replace ``period`` of a derived table (``core``/``mart``) with the result
    of ``statement`` over ``source``, reading and writing in ONE transaction,
    inside the database (INSERT … SELECT; the first build creates the table
    from the result's declared types first).

    The read holds a shared lock on (source, period): a load of that source
    period waits until the read is done, and the read waits for a load in
    progress. So two concurrent reloads can never leave core built from the
    older stage rows. Locks are always taken source first, then target.
    """
    started = runlog.utcnow()
    clock = time.perf_counter()
    label, where = ".".join(target), f"{source.schema}.{source.name}"
    try:
        with write_transaction(engine) as conn, server_reason_kept(conn):
            backend_of(conn).lock(conn, lock_key(source, period), shared=True)
            derived = Derived(target, statement, period, types, key, dataset)
            swapped = _rebuild_in_database(conn, derived)
            if swapped is None:
                swapped = _rebuild_from_rows(conn, derived)
            deleted, inserted = swapped
            load_id = runlog.log_load(conn, step=step, dataset=dataset, period=period, source=where,
                                      file_sha256=None, deleted=deleted, inserted=inserted, started=started)
    except Exception as exc:
        raise _failed(engine, exc, step=step, dataset=dataset, period=period, source=where,
                      target=label, file_sha256=None, started=started) from exc
    return LoadResult(load_id, step, dataset, period, label, deleted, inserted, time.perf_counter() - clock)


@dataclass(frozen=True)
class Derived:
    """What one period of a derived table is built from."""

    target: tuple[str, str]
    statement: sa.Executable | SqlFile
    period: str
    types: Mapping[str, pa.DataType]
    key: tuple[str, ...]
    dataset: str


def _ensure_derived(conn: Connection, d: Derived, arrow: pa.Schema) -> sa.Table:
    """Create the derived table for ``arrow`` (or add the columns it lacks);
    the table as the database has it, locked for the period."""
    schema, name = d.target
    table = derived_table(schema, name, arrow, d.key, d.dataset)
    if not table_exists(conn, schema, name):
        # first build of this table: serialise creators of it
        backend_of(conn).lock(conn, lock_key(table, "*table*"))
    ensure_table(conn, table)
    backend_of(conn).lock(conn, lock_key(table, d.period))
    return sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)


def _rebuild_in_database(conn: Connection, d: Derived) -> tuple[int, int] | None:
    """Replace the period inside the database (INSERT … SELECT, no rows
    through Python), creating the table on the first build from the result's
    declared types. None when a column the table lacks has a type neither the
    config, the SQL nor the database tells (then only its values can)."""
    schema, name = d.target
    select = period_select(conn, d.statement, d.period)
    existing = ({c["name"] for c in sa.inspect(conn).get_columns(name, schema=schema)}
                if table_exists(conn, schema, name) else set())
    arrow = result_schema(conn, select, d.types, existing)
    if arrow is None:
        return None
    table = _ensure_derived(conn, d, arrow)
    return backend_of(conn).replace_rows_by_query(
        conn, table, d.period, lambda c, into: insert_period(c, select, d.period, into))


def _rebuild_from_rows(conn: Connection, d: Derived) -> tuple[int, int]:
    """The period's result fetched into Arrow and written back: only for a
    result column whose type only its values tell (see _rebuild_in_database)."""
    result = query_period(conn, d.statement, d.period, d.types)
    table = _ensure_derived(conn, d, result.schema)
    return _swap(conn, table, d.period, result.to_batches())


@contextlib.contextmanager
def failures_logged(engine: Engine, *, step: str, dataset: str, period: str, source: str) -> Iterator[None]:
    """Log a failure of the work inside (reading the source, checks) to
    ``meta.load_log`` unless replace_period already did."""
    started = runlog.utcnow()
    try:
        yield
    except WorkbenchError as exc:
        if not getattr(exc, "logged", False):
            runlog.log_load_failure(engine, step=step, dataset=dataset, period=period, source=source,
                        file_sha256=None, error=str(exc), started=started)
        raise


def require_loaded(engine: Engine, step: str, dataset: str, period: str, hint: str) -> None:
    """Refuse to build on a period that ``step`` never produced (an empty
    period that was loaded is fine; a period never loaded is a mistake)."""
    if not runlog.has_succeeded(engine, step, dataset, period):
        raise StepFailed(f"{dataset} {period} has not been through {step} yet; run: {hint}")

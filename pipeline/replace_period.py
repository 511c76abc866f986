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
at a time: BEGIN IMMEDIATE queues writers at the start of the transaction.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import queue
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline import db
from pipeline.errors import StepFailed, WorkbenchError

SQLITE_BATCH_ROWS = 20_000
QUEUE_DEPTH = 4  # CSV chunks buffered ahead of COPY; bounds memory


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


def _lock(conn: Connection, key: int, *, shared: bool = False) -> None:
    if conn.dialect.name == "postgresql":
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        conn.execute(sa.text(f"SELECT {function}(:key)"), {"key": key})
    # SQLite: the transaction began with BEGIN IMMEDIATE (db.write_transaction).


def ensure_table_once(engine: Engine, table: sa.Table) -> None:
    """Create the table if missing, in its own short transaction, under a lock
    on the table so that concurrent first loads do not race to create it."""
    with db.write_transaction(engine) as conn:
        _lock(conn, lock_key(table, "*table*"))
        db.ensure_table(conn, table)


def with_period(batch: pa.RecordBatch, period: str) -> pa.RecordBatch:
    column = pa.array([period] * batch.num_rows, type=pa.string())
    return pa.RecordBatch.from_arrays([*batch.columns, column], names=[*batch.schema.names, db.PERIOD_COLUMN])


class _QueueReader(io.RawIOBase):
    """A file object over a queue of byte chunks, for psycopg2's copy_expert.

    Each read returns at most the rest of the current chunk (a short read is
    fine for copy_expert), so no chunk is copied more than once.
    """

    def __init__(self, chunks: "queue.Queue[bytes | BaseException | None]") -> None:
        self._chunks = chunks
        self._chunk = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        while not self._chunk and not self._done:
            item = self._chunks.get()
            if item is None:
                self._done = True
            elif isinstance(item, BaseException):
                raise item
            else:
                self._chunk = memoryview(item)
        if size < 0:
            size = len(self._chunk)
        out, self._chunk = self._chunk[:size], self._chunk[size:]
        return out.tobytes()


def _csv_chunks(batches: Iterable[pa.RecordBatch], period: str, counter: list[int]) -> Iterator[bytes]:
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    for batch in batches:
        if batch.num_rows == 0:
            continue
        sink = io.BytesIO()
        # Arrow writes null as an empty unquoted field and quotes every string,
        # which is exactly COPY … CSV's NULL / empty-string distinction.
        pacsv.write_csv(with_period(batch, period), sink, options)
        counter[0] += batch.num_rows
        yield sink.getvalue()


def copy_batches(conn: Connection, table: sa.Table, batches: Iterable[pa.RecordBatch], period: str) -> int:
    """Stream record batches into ``COPY … FROM STDIN`` on PostgreSQL.

    A producer thread turns the next batch into CSV while the current one is
    sent (Arrow's CSV writer and psycopg2's socket writes both release the GIL).
    """
    preparer = conn.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(c.name) for c in table.columns)
    statement = f"COPY {preparer.format_table(table)} ({columns}) FROM STDIN WITH (FORMAT csv)"
    chunks: "queue.Queue[bytes | BaseException | None]" = queue.Queue(maxsize=QUEUE_DEPTH)
    counter = [0]
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in _csv_chunks(batches, period, counter):
                while not stop.is_set():
                    try:
                        chunks.put(chunk, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            chunks.put(None)
        except BaseException as exc:  # handed to the reader, raised in this thread's caller
            chunks.put(exc)

    producer = threading.Thread(target=produce, name="copy-producer", daemon=True)
    producer.start()
    try:
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.copy_expert(statement, _QueueReader(chunks), size=1 << 20)
        finally:
            cursor.close()
    finally:
        stop.set()
        producer.join()
    return counter[0]


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


def _swap(conn: Connection, table: sa.Table, period: str,
          batches: Iterable[pa.RecordBatch]) -> tuple[int, int]:
    """DELETE the period, append the batches; inside the caller's transaction."""
    deleted = conn.execute(sa.delete(table).where(table.c[db.PERIOD_COLUMN] == period)).rowcount
    if conn.dialect.name == "postgresql":
        inserted = copy_batches(conn, table, batches, period)
    else:
        inserted = insert_batches(conn, table, batches, period)
    return deleted, inserted


def _log_success(conn: Connection, *, step: str, dataset: str, period: str, source: str,
                 file_sha256: str | None, deleted: int, inserted: int, started: object) -> int:
    return conn.execute(
        sa.insert(db.load_log).values(
            step=step, dataset=dataset, period=period, status="succeeded", source=source,
            file_sha256=file_sha256, rows_deleted=deleted, rows_inserted=inserted,
            started_at=started, finished_at=db.utcnow(),
        ).returning(db.load_log.c.id)
    ).scalar_one()


def _failed(engine: Engine, exc: BaseException, *, step: str, dataset: str, period: str, source: str,
            target: str, file_sha256: str | None, started: object) -> StepFailed:
    """Log the failure in its own transaction; the error to raise."""
    message = describe_error(exc)
    log_failure(engine, step=step, dataset=dataset, period=period, source=source,
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
    started = db.utcnow()
    clock = time.perf_counter()
    name = f"{table.schema}.{table.name}"
    try:
        ensure_table_once(engine, table)
        with db.write_transaction(engine) as conn:
            _lock(conn, lock_key(table, period))
            deleted, inserted = _swap(conn, table, period, batches)
            load_id = _log_success(conn, step=step, dataset=dataset, period=period, source=source,
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
    statement: sa.Executable,
    period: str,
    types: Mapping[str, pa.DataType],
    step: str,
    dataset: str,
    key: tuple[str, ...] = (),
) -> LoadResult:
    """Replace ``period`` of a derived table (``core``/``mart``) with the result
    of ``statement`` over ``source``, reading and writing in ONE transaction.

    The read holds a shared lock on (source, period): a load of that source
    period waits until the read is done, and the read waits for a load in
    progress. So two concurrent reloads can never leave core built from the
    older stage rows. Locks are always taken source first, then target.
    """
    from pipeline.utils.sql import derived_table, query_period

    started = db.utcnow()
    clock = time.perf_counter()
    schema, name = target
    label = f"{schema}.{name}"
    where = f"{source.schema}.{source.name}"
    try:
        with db.write_transaction(engine) as conn:
            _lock(conn, lock_key(source, period), shared=True)
            result = query_period(conn, statement, period, types)
            table = derived_table(schema, name, result.schema, key)
            if not db.table_exists(conn, schema, name):
                # first build of this table: serialise creators of it
                _lock(conn, lock_key(table, "*table*"))
            db.ensure_table(conn, table)
            _lock(conn, lock_key(table, period))
            deleted, inserted = _swap(conn, table, period, result.to_batches())
            load_id = _log_success(conn, step=step, dataset=dataset, period=period, source=where,
                                   file_sha256=None, deleted=deleted, inserted=inserted, started=started)
    except Exception as exc:
        raise _failed(engine, exc, step=step, dataset=dataset, period=period, source=where,
                      target=label, file_sha256=None, started=started) from exc
    return LoadResult(load_id, step, dataset, period, label, deleted, inserted, time.perf_counter() - clock)


@contextlib.contextmanager
def failures_logged(engine: Engine, *, step: str, dataset: str, period: str, source: str) -> Iterator[None]:
    """Log a failure of the work inside (reading the source, checks) to
    ``meta.load_log`` unless replace_period already did."""
    started = db.utcnow()
    try:
        yield
    except WorkbenchError as exc:
        if not getattr(exc, "logged", False):
            log_failure(engine, step=step, dataset=dataset, period=period, source=source,
                        file_sha256=None, error=str(exc), started=started)
        raise


def has_succeeded(engine: Engine, step: str, dataset: str, period: str) -> bool:
    log = db.load_log
    with engine.connect() as conn:
        return conn.execute(
            sa.select(log.c.id).where(log.c.step == step, log.c.dataset == dataset,
                                      log.c.period == period, log.c.status == "succeeded").limit(1)
        ).first() is not None


def require_loaded(engine: Engine, step: str, dataset: str, period: str, hint: str) -> None:
    """Refuse to build on a period that ``step`` never produced (an empty
    period that was loaded is fine; a period never loaded is a mistake)."""
    if not has_succeeded(engine, step, dataset, period):
        raise StepFailed(f"{dataset} {period} has not been through {step} yet; run: {hint}")


def describe_error(exc: BaseException) -> str:
    """One line: the database's own message without SQLAlchemy's SQL dump."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        text = str(exc.orig)
    else:
        text = str(exc)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return "; ".join(lines[:2]) if lines else type(exc).__name__


def log_failure(engine: Engine, *, step: str, dataset: str, period: str, source: str,
                file_sha256: str | None, error: str, started: object) -> None:
    try:
        with db.write_transaction(engine) as conn:
            conn.execute(sa.insert(db.load_log).values(
                step=step, dataset=dataset, period=period, status="failed", source=source,
                file_sha256=file_sha256, rows_deleted=0, rows_inserted=0, error=error,
                started_at=started, finished_at=db.utcnow(),
            ))
    except Exception:  # the database itself may be gone; the caller still reports the failure
        pass

"""PostgreSQL, the production warehouse: bulk appends stream Arrow batches as
CSV into ``COPY … FROM STDIN``; period writers serialise on transaction-scoped
advisory locks; the four schemas are real schemas."""
from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.domain.period import PERIOD_COLUMN
from pipeline.warehouse.backends.base import SCHEMAS, with_period
from pipeline.warehouse.backends.pg_partitions import create_partitioned, is_partitioned, replace_partition

if TYPE_CHECKING:
    from pipeline.warehouse.dialect import Schema

QUEUE_DEPTH = 4  # CSV chunks buffered ahead of COPY; bounds memory
# Any fixed 64-bit number: the key of the advisory lock that serialises
# concurrent first-use migrations.
MIGRATION_LOCK_KEY = 7_100_202_506
NUMERIC_OID = 1700
# PostgreSQL type OIDs (pg_type) of result columns no config or SQL types.
ARROW_OF_OID: dict[int, pa.DataType] = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int64(), 23: pa.int64(), 700: pa.float64(), 701: pa.float64(),
    25: pa.string(), 1042: pa.string(), 1043: pa.string(), 19: pa.string(), 1082: pa.date32(),
    1114: pa.timestamp("us"),
}


class PostgresBackend:
    name = "postgresql"
    concurrent_writers = True
    max_decimal_digits = 38  # the config's limit (Arrow's decimal128); PostgreSQL takes more

    def make_engine(self, url: sa.URL) -> Engine:
        return sa.create_engine(url, pool_pre_ping=True)

    def lock(self, conn: Connection, key: int, *, shared: bool = False) -> None:
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        conn.execute(sa.text(f"SELECT {function}(:key)"), {"key": key})

    def append(self, conn: Connection, table: sa.Table, batches: Iterable[pa.RecordBatch],
               period: str) -> int:
        return copy_batches(conn, table, batches, period)

    def create_table(self, conn: Connection, table: sa.Table) -> None:
        create_partitioned(conn, table)

    def replace_rows(self, conn: Connection, table: sa.Table, period: str,
                     batches: Iterable[pa.RecordBatch]) -> tuple[int, int]:
        if is_partitioned(conn, table):
            return replace_partition(conn, table, period, batches, copy_batches)
        # a flat table (created before partitions, not migrated yet)
        deleted = conn.execute(sa.delete(table).where(table.c[PERIOD_COLUMN] == period)).rowcount
        return deleted, copy_batches(conn, table, batches, period)

    def replace_rows_by_query(self, conn: Connection, table: sa.Table, period: str,
                              fill: Callable[[Connection, sa.Table], int]) -> tuple[int, int]:
        if is_partitioned(conn, table):
            return replace_partition(conn, table, period, (), lambda c, into, _b, _p, _f: fill(c, into))
        deleted = conn.execute(sa.delete(table).where(table.c[PERIOD_COLUMN] == period)).rowcount
        return deleted, fill(conn, table)

    def warehouse_file(self, url: sa.URL) -> Path | None:
        return None

    def before_migrations(self, conn: Connection) -> None:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        for schema in SCHEMAS:
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')

    def after_migrations(self, engine: Engine) -> None:
        pass

    def prepare_sql(self, text: str, source: Path, schema: Schema | None = None) -> str:
        # PostgreSQL runs the file as written; parsing it first refuses a file
        # that would fail half-way through a run.
        from pipeline.warehouse.dialect import translate  # sqlglot: slow to import

        return translate(text, source=source, dialect=self.name)

    def sql_error_line(self, exc: BaseException, executed: str) -> int | None:
        # psycopg2 reports PostgreSQL's 1-based character position of the error.
        diag = getattr(getattr(exc, "orig", None), "diag", None)
        position = getattr(diag, "statement_position", None)
        if not position or not str(position).isdigit():
            return None
        return executed[: int(position) - 1].count("\n") + 1

    def decimal_type(self, precision: int, scale: int) -> sa.types.TypeEngine[Any]:
        return sa.Numeric(precision, scale, asdecimal=True)

    def stored_value(self, value: sa.ColumnElement[Any],
                     column_type: sa.types.TypeEngine[Any]) -> sa.ColumnElement[Any]:
        return value  # PostgreSQL's assignment casts store it as the column's type

    def probe_types(self, conn: Connection, select: sa.Select[Any],
                    params: dict[str, Any]) -> dict[str, pa.DataType | None]:
        # (name, type OID, …) of each column, from a run that returns no row
        oids: dict[str, Any] = {d[0]: d[1] for d in conn.execute(select.limit(0), params).cursor.description}
        found = {name: ARROW_OF_OID.get(oid) for name, oid in oids.items()}
        q = select.subquery("p")
        for name in (n for n, oid in oids.items() if oid == NUMERIC_OID):
            # NUMERIC of unknown scale: whole numbers as integers (as SQLite gives them)
            whole = sa.select(sa.func.bool_and(q.c[name] == sa.func.trunc(q.c[name])))
            found[name] = pa.int64() if conn.execute(whole, params).scalar() is not False else pa.float64()
        return found


class _QueueReader(io.RawIOBase):
    """A file object over a queue of byte chunks, for psycopg2's copy_expert.

    Each read returns at most the rest of the current chunk (a short read is
    fine for copy_expert), so no chunk is copied more than once.
    """

    def __init__(self, chunks: queue.Queue[bytes | BaseException | None]) -> None:
        self._chunks = chunks
        self._chunk = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        while not self._chunk and not self._done:
            item = self._chunks.get()
            if item is None:
                self._done = True
            elif isinstance(item, BaseException):
                raise item
            else:
                self._chunk = memoryview(item)
        if size is None or size < 0:
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


def copy_batches(conn: Connection, table: sa.Table, batches: Iterable[pa.RecordBatch], period: str,
                 freeze: bool = False) -> int:
    """Stream record batches into ``COPY … FROM STDIN`` on PostgreSQL.

    A producer thread turns the next batch into CSV while the current one is
    sent (Arrow's CSV writer and psycopg2's socket writes both release the GIL).
    """
    preparer = conn.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(c.name) for c in table.columns)
    # FREEZE (rows written already frozen, no later vacuum pass) is allowed
    # only into a table created in this transaction: a partition being built.
    options = "FORMAT csv, FREEZE" if freeze else "FORMAT csv"
    statement = f"COPY {preparer.format_table(table)} ({columns}) FROM STDIN WITH ({options})"
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=QUEUE_DEPTH)
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
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None  # a checked-out connection always has one
        cursor = dbapi.cursor()
        try:
            cursor.copy_expert(statement, _QueueReader(chunks), size=1 << 20)
        finally:
            cursor.close()
    finally:
        stop.set()
        producer.join()
    return counter[0]

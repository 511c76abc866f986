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

import decimal
import itertools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from pipeline.domain.period import PERIOD_COLUMN
from pipeline.errors import UsageError
from pipeline.warehouse.backends.base import SCHEMAS
from pipeline.warehouse.backends.sqlite_functions import MAX_DECIMAL_DIGITS, register_sqlite_functions

if TYPE_CHECKING:
    from pipeline.warehouse.dialect import Schema

SQLITE_BUSY_TIMEOUT_MS = 60_000
SQLITE_BATCH_ROWS = 20_000
# A decimal is stored as a scaled 64-bit integer: 18 digits always fit.
MAX_EXACT_DIGITS = MAX_DECIMAL_DIGITS


class SqliteBackend:
    name = "sqlite"
    concurrent_writers = False
    max_decimal_digits = MAX_EXACT_DIGITS

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

    def replace_rows_by_query(self, conn: Connection, table: sa.Table, period: str,
                              fill: Callable[[Connection, sa.Table], int]) -> tuple[int, int]:
        deleted = conn.execute(sa.delete(table).where(table.c[PERIOD_COLUMN] == period)).rowcount
        return deleted, fill(conn, table)

    def warehouse_file(self, url: sa.URL) -> Path | None:
        return Path(url.database or "").absolute()

    def before_migrations(self, conn: Connection) -> None:
        pass

    def after_migrations(self, engine: Engine) -> None:
        _drop_empty_legacy_raw(engine)

    def prepare_sql(self, text: str, source: Path, schema: Schema | None = None) -> str:
        from pipeline.warehouse.dialect import translate  # sqlglot: slow to import, only for .sql files

        return translate(text, source=source, dialect=self.name, schema=schema)

    def sql_error_line(self, exc: BaseException, executed: str) -> int | None:
        return None  # SQLite reports no position (and runs the translated text)

    def decimal_type(self, precision: int, scale: int) -> sa.types.TypeEngine[Any]:
        return SqliteDecimal(precision, scale)

    def stored_value(self, value: sa.ColumnElement[Any],
                     column_type: sa.types.TypeEngine[Any]) -> sa.ColumnElement[Any]:
        return stored_value_sql(value, column_type)

    def probe_types(self, conn: Connection, select: sa.Select[Any],
                    params: dict[str, Any]) -> dict[str, pa.DataType | None]:
        # No declared types for expressions: the storage classes of the
        # values, as the fetched rows would have been typed.
        q = select.subquery("p")
        probe = sa.select(*(sa.func.group_concat(sa.distinct(sa.func.typeof(c))) for c in q.c))
        classes = conn.execute(probe, params).one()
        return {c.name: _arrow_of_classes(set((found or "").split(","))) for c, found in zip(q.c, classes)}


class _ScaledNumeric(sa.Numeric):
    """``NUMERIC(p, s)`` in the DDL (so the column reflects as a decimal of
    that precision and scale), with no driver conversion: SQLAlchemy's own
    Numeric on SQLite would pass every value through a float."""

    cache_ok = True

    def bind_processor(self, dialect: Any) -> None:
        return None

    def result_processor(self, dialect: Any, coltype: Any) -> None:
        return None


class SqliteDecimal(sa.types.TypeDecorator[decimal.Decimal]):
    """``decimal(p,s)`` on SQLite: the value times 10**s as a 64-bit integer
    (12.34 in a scale-2 column is stored as 1234) in a ``NUMERIC(p,s)``
    column, whose affinity keeps integers as integers. SUM, +, -,
    comparisons and ORDER BY of values of one scale are exact in SQLite's
    own integer arithmetic; the translated SQL (warehouse.dialect) keeps
    track of each expression's scale. Up to 18 digits fit (10**18 < 2**63);
    a value that does not fit, or has more digits after the point than the
    scale, is an error, never rounded."""

    impl = _ScaledNumeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision, scale, asdecimal=True)
        self.scale = scale

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        return None if value is None else to_scaled(value, self.scale)

    def process_result_value(self, value: Any, dialect: Any) -> decimal.Decimal | None:
        return None if value is None else from_scaled(value, self.scale)


def to_scaled(value: Any, scale: int) -> int:
    """``value`` (a Decimal, int or decimal text) as its integer count of 10**-scale."""
    number = value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
    scaled = number.scaleb(scale, context=_EXACT)
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more digits after the point than the column's scale {scale}")
    if abs(scaled) >= 10 ** MAX_EXACT_DIGITS:
        raise ValueError(f"{value} has more than {MAX_EXACT_DIGITS} digits: SQLite stores a decimal in 64 bits")
    return int(scaled)


def from_scaled(value: Any, scale: int) -> decimal.Decimal:
    """A stored value (the integer count of 10**-scale) as the Decimal it stands for."""
    if not isinstance(value, int):
        raise TypeError(f"a decimal column holds {value!r}, not the integer it stores: "
                        "rebuild this table (reload the month)")
    return decimal.Decimal(value).scaleb(-scale, context=_EXACT)


_EXACT = decimal.Context(prec=80)


@event.listens_for(sa.Table, "column_reflect")
def _reflect_decimal(inspector: Any, table: sa.Table, column: dict[str, Any]) -> None:
    """A reflected ``NUMERIC(p,s)`` column of a SQLite warehouse holds scaled
    integers: read it with SqliteDecimal, so every reader gets Decimals."""
    kind = column["type"]
    bind = getattr(inspector, "bind", None)
    if (bind is not None and bind.dialect.name == "sqlite" and isinstance(kind, sa.Numeric)
            and not isinstance(kind, sa.Float) and kind.precision is not None and kind.scale is not None):
        column["type"] = SqliteDecimal(kind.precision, kind.scale)


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
        # What the translated .sql files call (warehouse.dialect).
        register_sqlite_functions(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock up front, so it waits its turn instead
        # of failing when another writer commits between its read and write.
        mode = "IMMEDIATE" if conn.get_execution_options().get("workbench_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def insert_batches(conn: Connection, table: sa.Table, batches: Iterable[pa.RecordBatch], period: str) -> int:
    """Append the batches through the raw sqlite3 driver, inside the caller's
    transaction: ``cursor.executemany`` with plain tuples made column by
    column from Arrow (no per-row SQLAlchemy parameter building). The values
    are exactly what SQLAlchemy's own types would have bound
    (:func:`sqlite_column_values`)."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None  # a checked-out connection always has one
    cursor = dbapi.cursor()
    inserted = 0
    try:
        for batch in batches:
            names = [n for n in batch.schema.names if n != PERIOD_COLUMN]
            statement = _insert_sql(conn, table, [*names, PERIOD_COLUMN])
            for start in range(0, batch.num_rows, SQLITE_BATCH_ROWS):
                part = batch.slice(start, SQLITE_BATCH_ROWS)
                columns = [sqlite_column_values(part.column(n), table.c[n].type if n in table.c else None)
                           for n in names]
                cursor.executemany(statement, list(zip(*columns, itertools.repeat(period, part.num_rows))))
                inserted += part.num_rows
    finally:
        cursor.close()
    return inserted


def _insert_sql(conn: Connection, table: sa.Table, names: list[str]) -> str:
    preparer = conn.dialect.identifier_preparer
    return (f"INSERT INTO {preparer.format_table(table)} ({', '.join(preparer.quote(n) for n in names)}) "
            f"VALUES ({', '.join('?' * len(names))})")


def sqlite_column_values(array: pa.Array, column_type: sa.types.TypeEngine[Any] | None = None) -> list[Any]:
    """One Arrow column as the Python values the sqlite3 driver binds, the
    way the column types store them on SQLite: dates as ``YYYY-MM-DD`` and
    timestamps as ``YYYY-MM-DD HH:MM:SS.ffffff`` text (SQLAlchemy's format),
    booleans as 1/0, decimals as the scaled integers :class:`SqliteDecimal`
    stores (at the table column's scale); None for null."""
    kind = array.type
    if pa.types.is_decimal(kind):
        scale = column_type.scale if isinstance(column_type, SqliteDecimal) else kind.scale
        return [None if v is None else to_scaled(v, scale) for v in array.to_pylist()]
    if pa.types.is_timestamp(kind):
        array = array.cast(pa.timestamp("us", tz=kind.tz)).cast(pa.string())
    elif pa.types.is_date(kind):
        array = array.cast(pa.string())
    elif pa.types.is_boolean(kind):
        array = array.cast(pa.int8())
    return array.to_pylist()


def stored_value_sql(value: sa.ColumnElement[Any], column_type: sa.types.TypeEngine[Any]) -> sa.ColumnElement[Any]:
    """A query's output column as an INSERT … SELECT stores it in a column of
    ``column_type``: what :func:`sqlite_column_values` would bind. A decimal
    output leaves the translated query as exact text ('12.30', see
    warehouse.dialect); it is stored as the column's scaled integer, rounded
    half away from zero to the column's scale and refused on overflow, as
    PostgreSQL's assignment to NUMERIC(p,s) does. The rest comes as stored."""
    if isinstance(column_type, SqliteDecimal):
        return sa.func.pg_dec_round(value, 0, column_type.scale, column_type.precision)
    return value


def _arrow_of_classes(classes: set[str]) -> pa.DataType | None:
    classes -= {"", "null"}
    if "blob" in classes:
        return None
    if "text" in classes or not classes:
        return pa.string()
    return pa.float64() if "real" in classes else pa.int64()


def _drop_empty_legacy_raw(engine: Engine) -> None:
    raw = sqlite_files(Path(engine.url.database or ""))["raw"]
    if raw.exists():
        with engine.connect() as conn:
            left = conn.exec_driver_sql("SELECT count(*) FROM raw.sqlite_master").scalar()
        if not left:
            engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{raw}{suffix}").unlink(missing_ok=True)

"""What a warehouse backend provides. Everything that differs between
PostgreSQL and SQLite lives behind this interface, in one module per backend
(after dlt's ``destinations/impl/<name>/``), so the rest of the package never
asks which database it is talking to.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.domain.period import PERIOD_COLUMN

# Every backend addresses tables as <schema>.<table> in these four schemas.
SCHEMAS = ("meta", "stage", "core", "mart")


class Backend(Protocol):
    name: str                   # SQLAlchemy's dialect name
    # Loads of different periods run side by side (PostgreSQL), or queue for
    # the one writer (SQLite).
    concurrent_writers: bool
    # Digits of a config decimal column the backend stores exactly.
    max_decimal_digits: int

    def make_engine(self, url: sa.URL) -> Engine:
        """An engine on which ``meta.x``, ``stage.x``, ``core.x``, ``mart.x`` resolve."""

    def lock(self, conn: Connection, key: int, *, shared: bool = False) -> None:
        """A transaction-scoped lock on ``key`` (serialises writers of one period)."""

    def append(self, conn: Connection, table: sa.Table, batches: Iterable[pa.RecordBatch],
               period: str) -> int:
        """Append the batches, each row with ``period``, inside the caller's transaction."""

    def create_table(self, conn: Connection, table: sa.Table) -> None:
        """Create a stage/core/mart table (partitioned by period where the database can)."""

    def replace_rows(self, conn: Connection, table: sa.Table, period: str,
                     batches: Iterable[pa.RecordBatch]) -> tuple[int, int]:
        """Make ``batches`` the whole of ``period`` in ``table``, inside the
        caller's transaction; (rows removed, rows added)."""

    def replace_rows_by_query(self, conn: Connection, table: sa.Table, period: str,
                              fill: Callable[[Connection, sa.Table], int]) -> tuple[int, int]:
        """Like replace_rows, but ``fill(conn, into)`` inserts the rows into
        the table given (the month being built); (rows removed, rows added)."""

    def warehouse_file(self, url: sa.URL) -> Path | None:
        """The file an embedded warehouse lives in (None for a server): it
        must exist before a reader opens it, or opening would create it."""

    def before_migrations(self, conn: Connection) -> None:
        """Inside the migration transaction, before Alembic runs (schemas, locks)."""

    def after_migrations(self, engine: Engine) -> None:
        """Once the migrations are committed (clean-up outside the transaction)."""

    def prepare_sql(self, text: str, source: Path, schema: dict[str, dict[str, dict[str, str]]] | None = None) -> str:
        """A PostgreSQL-dialect .sql file as this warehouse runs it; raises
        SqlNotPortable (naming file, line and construct) if it cannot.
        ``schema`` ({schema: {table: {column: type}}}) types the columns it reads."""

    def sql_error_line(self, exc: BaseException, executed: str) -> int | None:
        """The line of ``executed`` a database error points at, when the database says."""

    def decimal_type(self, precision: int, scale: int) -> sa.types.TypeEngine[Any]:
        """The column type of a config ``decimal`` column."""

    def stored_value(self, value: sa.ColumnElement[Any],
                     column_type: sa.types.TypeEngine[Any]) -> sa.ColumnElement[Any]:
        """A query's output column as INSERT … SELECT must store it in a column
        of ``column_type`` (derived tables are built inside the database)."""

    def probe_types(self, conn: Connection, select: sa.Select[Any],
                    params: dict[str, Any]) -> dict[str, pa.DataType | None]:
        """The Arrow type the database gives each column of ``select``, where
        neither the config nor the SQL declares it (None: no known type)."""


def with_period(batch: pa.RecordBatch, period: str) -> pa.RecordBatch:
    column = pa.array([period] * batch.num_rows, type=pa.string())
    return pa.RecordBatch.from_arrays([*batch.columns, column], names=[*batch.schema.names, PERIOD_COLUMN])

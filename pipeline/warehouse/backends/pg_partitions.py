"""One partition per month on PostgreSQL: every stage, core and mart table is
``PARTITION BY LIST (_data_period)`` and a period replace swaps a freshly
built partition in.

Why: replacing a month by DELETE + COPY into one indexed table rewrites the
indexes row by row and leaves the deleted rows as bloat (a 1M-row month
reloaded 5 times doubled the table). Building the month as its own table —
``COPY … FREEZE`` into a table created in the same transaction, its indexes
and a ``CHECK (_data_period = 'P')`` built once after the rows are in — and
swapping it in with DETACH/ATTACH costs about one bulk load, and dropping the
old partition gives its space back at once.

The swap is the only moment the parent is locked (plain DETACH takes ACCESS
EXCLUSIVE; DETACH CONCURRENTLY cannot run in a transaction), so it runs under
a short ``lock_timeout`` inside a savepoint and is retried: a reader of
another month waits at most that long behind it. The new table is built from
the config's definition, not ``LIKE`` the parent, so building it takes no
lock on the parent and loads of different months do not wait for each other.
There is no DEFAULT partition (ATTACH would have to scan it).
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.domain.period import PERIOD_COLUMN

LOCK_TIMEOUT = "2s"
SWAP_ATTEMPTS = 60            # × (2 s timeout + back-off): about two minutes of readers in the way
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout
MAX_IDENTIFIER = 63

Appender = Callable[[Connection, sa.Table, Iterable[pa.RecordBatch], str, bool], int]


def partition_name(table: str, period: str) -> str:
    """``citizens__2025_06`` (``citizens__legacy``); hashed if it would pass 63 bytes."""
    name = f"{table}__{period.replace('-', '_')}"
    if len(name.encode()) <= MAX_IDENTIFIER - 5:  # room for the "__new" suffix while it is built
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{table[:MAX_IDENTIFIER - 5 - 11 - 9]}_{digest}__{period.replace('-', '_')}"


def literal(period: str) -> str:
    """A period as an SQL literal for DDL (which takes no bound parameters).
    Periods reach here validated (YYYY-MM, or 'legacy'); quoting keeps it safe anyway."""
    return "'" + period.replace("'", "''") + "'"


def create_partitioned(conn: Connection, table: sa.Table) -> None:
    """Create ``table`` partitioned by period; its indexes become partitioned indexes."""
    table.dialect_options["postgresql"]["partition_by"] = f'LIST ("{PERIOD_COLUMN}")'
    table.create(conn)


def is_partitioned(conn: Connection, table: sa.Table) -> bool:
    return bool(conn.execute(sa.text(
        "SELECT c.relkind = 'p' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :schema AND c.relname = :name"), {"schema": table.schema, "name": table.name},
    ).scalar())


def _exists(conn: Connection, schema: str | None, name: str) -> bool:
    return conn.execute(sa.text(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :schema AND c.relname = :name"), {"schema": schema, "name": name},
    ).first() is not None


def replace_partition(conn: Connection, table: sa.Table, period: str, batches: Iterable[pa.RecordBatch],
                      append: Appender) -> tuple[int, int]:
    """Make ``batches`` the month's partition; (rows of the old one, rows of the new one)."""
    q = conn.dialect.identifier_preparer.quote
    schema, final = table.schema or "public", partition_name(table.name, period)
    # The parent's own column types (ATTACH wants them exactly; a query
    # result's types can vary with its values), in the batches' column order.
    # Reading the catalog takes no lock on the parent.
    parent = {c["name"]: c for c in sa.inspect(conn).get_columns(table.name, schema=schema)}
    building = sa.Table(f"{final}__new", sa.MetaData(), *(
        sa.Column(c.name, parent[c.name]["type"] if c.name in parent else c.type,
                  nullable=parent[c.name]["nullable"] if c.name in parent else c.nullable)
        for c in table.columns), schema=schema)
    building.create(conn)
    inserted = append(conn, building, batches, period, True)
    # After the rows: the CHECK lets ATTACH skip its scan; ATTACH builds the
    # partition's share of the parent's indexes (a duplicate key fails here,
    # before anything is swapped).
    conn.exec_driver_sql(f"ALTER TABLE {q(schema)}.{q(building.name)} ADD CONSTRAINT "
                         f"{q(final + '__period')} CHECK ({q(PERIOD_COLUMN)} = {literal(period)})")
    deleted = 0
    if _exists(conn, schema, final):
        deleted = int(conn.exec_driver_sql(f"SELECT count(*) FROM {q(schema)}.{q(final)}").scalar() or 0)
    _swap(conn, table, building.name, final, period)
    return deleted, inserted


def _swap(conn: Connection, table: sa.Table, building: str, final: str, period: str) -> None:
    q = conn.dialect.identifier_preparer.quote
    parent, schema = f"{q(table.schema or '')}.{q(table.name)}", q(table.schema or "")
    for attempt in range(SWAP_ATTEMPTS):
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                if _exists(conn, table.schema, final):
                    conn.exec_driver_sql(f"ALTER TABLE {parent} DETACH PARTITION {schema}.{q(final)}")
                    conn.exec_driver_sql(f"DROP TABLE {schema}.{q(final)}")
                conn.exec_driver_sql(f"ALTER TABLE {schema}.{q(building)} RENAME TO {q(final)}")
                conn.exec_driver_sql(f"ALTER TABLE {parent} ATTACH PARTITION {schema}.{q(final)} "
                                     f"FOR VALUES IN ({literal(period)})")
                conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
            return
        except sa.exc.OperationalError as exc:
            if getattr(exc.orig, "pgcode", None) != LOCK_NOT_AVAILABLE or attempt == SWAP_ATTEMPTS - 1:
                raise
            time.sleep(min(0.05 * 2 ** attempt, 1.0))  # let the readers in the way finish

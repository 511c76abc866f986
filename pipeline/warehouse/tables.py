"""Tables derived from the config: ``stage.<table>`` from the dataset's
columns, ``core``/``mart`` tables from a query result's Arrow schema, each
with the indexed ``_data_period`` (and a unique index on the period and the
primary key where the dataset has one).

Evolution (SPEC §10.4): an existing table gains the columns the config (or
the query result) adds — ``ALTER TABLE … ADD COLUMN``, nullable or with the
column's ``default:`` so the rows already there get NULL or the default. A
removed column, a type change or a new NOT NULL column without a default is
refused (SchemaChangeRefused, one line) before anything changes."""
from __future__ import annotations

from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.domain.config import ColumnConfig, Config, DatasetConfig
from pipeline.domain.period import PERIOD_COLUMN
from pipeline.domain.schema import arrow_schema
from pipeline.errors import StepFailed
from pipeline.warehouse.backends import backend_of, decimal_type

__all__ = ["PERIOD_COLUMN", "SchemaChangeRefused", "column_type", "columns_to_add", "derived_table",
           "ensure_table", "mirror_core_table", "period_column", "period_count", "period_counts", "sql_type",
           "stage_table", "sync_tables", "table_exists", "type_family"]


def column_type(col: ColumnConfig) -> sa.types.TypeEngine[Any]:
    if col.type == "string":
        return sa.String(col.max_length) if col.max_length else sa.Text()
    if col.type == "decimal":
        assert col.precision is not None and col.scale is not None  # the config requires both
        return decimal_type(col.precision, col.scale)
    types: dict[str, sa.types.TypeEngine[Any]] = {
        "integer": sa.BigInteger(),
        "float": sa.Double(),
        "date": sa.Date(),
        "datetime": sa.DateTime(),
        "boolean": sa.Boolean(),
    }
    return types[col.type]


def default_clause(col: ColumnConfig) -> sa.ColumnElement[Any] | None:
    """The column's ``default:`` as a literal of its type (DDL renders it inline):
    the value rows already loaded get when the column is added."""
    return None if col.default is None else sa.literal(col.default, column_type(col))


def period_column() -> sa.Column:
    return sa.Column(PERIOD_COLUMN, sa.String(7), nullable=False)


def stage_table(dataset: DatasetConfig, metadata: sa.MetaData | None = None) -> sa.Table:
    """``stage.<table>``: the dataset's typed columns plus the indexed period."""
    metadata = metadata or sa.MetaData()
    columns = [sa.Column(c.name, column_type(c), nullable=c.nullable, server_default=default_clause(c))
               for c in dataset.columns.values()]
    table = sa.Table(dataset.table, metadata, *columns, period_column(), schema="stage",
                     info={"dataset": dataset.name})
    add_period_indexes(table, dataset.primary_key)
    return table


def add_period_indexes(table: sa.Table, key: tuple[str, ...] = ()) -> None:
    sa.Index(f"ix_{table.name}_data_period", table.c[PERIOD_COLUMN])
    if key:
        sa.Index(f"ux_{table.name}_period_key", table.c[PERIOD_COLUMN], *(table.c[k] for k in key), unique=True)


class SchemaChangeRefused(StepFailed):
    """The config (or a query result) changes a table destructively: a removed
    column, a type change, a new NOT NULL column without a default."""


def ensure_table(conn: Connection, table: sa.Table) -> list[str]:
    """Create ``table`` if missing, else add the columns it lacks (additive
    evolution); a destructive difference is refused before anything changes.
    The names of the columns added."""
    inspector = sa.inspect(conn)
    if not inspector.has_table(table.name, schema=table.schema):
        backend_of(conn).create_table(conn, table)
        return []
    existing = {c["name"]: c for c in inspector.get_columns(table.name, schema=table.schema)}
    added = columns_to_add(table, existing)
    if added:
        from alembic.migration import MigrationContext  # only here: alembic is slow to import
        from alembic.operations import Operations

        ops = Operations(MigrationContext.configure(conn))
        for column in added:
            ops.add_column(table.name, sa.Column(column.name, column.type, nullable=column.nullable,
                                                 server_default=column.server_default), schema=table.schema)
    return [c.name for c in added]


def columns_to_add(table: sa.Table, existing: dict[str, Any]) -> list[sa.Column]:
    """The columns of ``table`` to add to its existing version (reflected
    columns by name); SchemaChangeRefused naming the dataset, the column and
    the way forward for anything that is not an addition."""
    dataset = table.info.get("dataset")
    where = f"{table.schema}.{table.name}"
    who = f"dataset {dataset!r}: " if dataset else ""
    derived = table.info.get("derived", False)
    for name in existing:
        if name not in table.c:
            source = "the result of its SQL" if derived else "the config"
            back = f"select it again (NULL AS {name})" if derived else "put it back in the config (nullable)"
            raise SchemaChangeRefused(
                f"{who}column {name!r} of {where} is no longer in {source}; nothing changed: {back}, "
                f"or drop it yourself (ALTER TABLE {where} DROP COLUMN {name})")
    added = []
    for column in table.columns:
        if column.name not in existing:
            if not column.nullable and column.server_default is None:
                raise SchemaChangeRefused(
                    f"{who}new column {column.name!r} is nullable: false without a default, which the rows "
                    f"already in {where} cannot meet; nothing changed: give it a default (or nullable: true)")
            added.append(column)
            continue
        # A query result's types follow its rows (an all-null column has none):
        # only the config's own columns are held to their type.
        was, now = type_family(existing[column.name]["type"]), type_family(column.type)
        if not derived and "unknown" not in (was, now) and was != now:
            raise SchemaChangeRefused(
                f"{who}column {column.name!r} is {was} in {where} but {now} in the config; nothing changed: "
                f"a type change is not migrated — keep the type, or add a column under a new name")
    return added


def type_family(sql_type: Any) -> str:
    """The config type a (reflected) SQL type stands for; lengths aside."""
    for family, kind in (("boolean", sa.Boolean), ("integer", sa.Integer), ("float", sa.Float),
                         ("decimal", sa.Numeric), ("datetime", sa.DateTime), ("date", sa.Date),
                         ("string", sa.String)):
        if isinstance(sql_type, kind):
            return family
    return "unknown"


def table_exists(conn: Connection, schema: str, name: str) -> bool:
    return sa.inspect(conn).has_table(name, schema=schema)


def period_counts(conn: Connection, schema: str, table: str) -> dict[str, int]:
    """Rows per period of ``schema.table`` ({} when the table does not exist)."""
    if not table_exists(conn, schema, table):
        return {}
    t = sa.Table(table, sa.MetaData(), sa.Column(PERIOD_COLUMN), schema=schema)
    query = sa.select(t.c[PERIOD_COLUMN], sa.func.count()).group_by(t.c[PERIOD_COLUMN])
    return {period: count for period, count in conn.execute(query)}


def period_count(conn: Connection, schema: str, table: str, period: str) -> int:
    """Rows of one period of ``schema.table`` (0 when the table does not
    exist); read through the period index, so as fast with 100 other periods."""
    if not table_exists(conn, schema, table):
        return 0
    t = sa.Table(table, sa.MetaData(), sa.Column(PERIOD_COLUMN), schema=schema)
    return int(conn.execute(sa.select(sa.func.count()).where(t.c[PERIOD_COLUMN] == period)).scalar() or 0)


def derived_table(schema: str, name: str, arrow: pa.Schema, key: tuple[str, ...] = (),
                  dataset: str | None = None) -> sa.Table:
    """A core/mart table for a query result: its columns plus the indexed period."""
    columns = [sa.Column(f.name, sql_type(f.type)) for f in arrow]
    table = sa.Table(name, sa.MetaData(), *columns, period_column(), schema=schema,
                     info={"dataset": dataset, "derived": True})
    # The key's unique index only where the result still carries the whole key.
    add_period_indexes(table, key if set(key) <= set(arrow.names) else ())
    return table


def sql_type(arrow_type: pa.DataType) -> sa.types.TypeEngine:
    if pa.types.is_decimal(arrow_type):
        return decimal_type(arrow_type.precision, arrow_type.scale)
    if pa.types.is_integer(arrow_type):
        return sa.BigInteger()
    if pa.types.is_floating(arrow_type):
        return sa.Double()
    if pa.types.is_boolean(arrow_type):
        return sa.Boolean()
    if pa.types.is_date(arrow_type):
        return sa.Date()
    if pa.types.is_timestamp(arrow_type):
        return sa.DateTime()
    return sa.Text()


def config_tables(config: Config) -> list[sa.Table]:
    """The tables whose columns the config alone decides: every ``stage``
    table, and the ``core`` table of a dataset without a transform (a mirror
    of stage). A transform's ``core`` and the marts follow their SQL's result
    and gain new columns at their next build."""
    tables = [stage_table(ds) for ds in config.datasets.values()]
    return tables + [mirror_core_table(ds) for ds in config.datasets.values() if ds.transform is None]


def mirror_core_table(dataset: DatasetConfig) -> sa.Table:
    """``core.<table>`` of a dataset without a transform: stage's columns,
    typed as a query result, with the config's defaults (so a column added
    later gets the default in old periods of core as in stage)."""
    table = derived_table("core", dataset.table, arrow_schema(dataset), dataset.primary_key, dataset.name)
    for col in dataset.columns.values():
        clause = default_clause(col)
        if clause is not None:
            table.c[col.name].server_default = sa.DefaultClause(clause)
    return table


def sync_tables(conn: Connection, config: Config) -> list[str]:
    """Add the config's new columns to the existing tables of
    :func:`config_tables`; 'schema.table.column' of each column added. Every
    table is checked before any is altered."""
    inspector = sa.inspect(conn)
    tables = [t for t in config_tables(config) if inspector.has_table(t.name, schema=t.schema)]
    for table in tables:  # refuse before the first ALTER
        columns_to_add(table, {c["name"]: c for c in inspector.get_columns(table.name, schema=table.schema)})
    return [f"{t.schema}.{t.name}.{name}" for t in tables for name in ensure_table(conn, t)]

"""Tables derived from the config: ``stage.<table>`` from the dataset's
columns, ``core``/``mart`` tables from a query result's Arrow schema, each
with the indexed ``_data_period`` (and a unique index on the period and the
primary key where the dataset has one)."""
from __future__ import annotations

from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.domain.config import ColumnConfig, DatasetConfig
from pipeline.domain.period import PERIOD_COLUMN
from pipeline.errors import StepFailed
from pipeline.warehouse.backends import decimal_type

__all__ = ["PERIOD_COLUMN", "column_type", "derived_table", "ensure_table", "period_column",
           "period_counts", "sql_type", "stage_table", "table_exists"]


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


def period_column() -> sa.Column:
    return sa.Column(PERIOD_COLUMN, sa.String(7), nullable=False)


def stage_table(dataset: DatasetConfig, metadata: sa.MetaData | None = None) -> sa.Table:
    """``stage.<table>``: the dataset's typed columns plus the indexed period."""
    metadata = metadata or sa.MetaData()
    columns = [sa.Column(c.name, column_type(c), nullable=c.nullable) for c in dataset.columns.values()]
    table = sa.Table(dataset.table, metadata, *columns, period_column(), schema="stage")
    add_period_indexes(table, dataset.primary_key)
    return table


def add_period_indexes(table: sa.Table, key: tuple[str, ...] = ()) -> None:
    sa.Index(f"ix_{table.name}_data_period", table.c[PERIOD_COLUMN])
    if key:
        sa.Index(f"ux_{table.name}_period_key", table.c[PERIOD_COLUMN], *(table.c[k] for k in key), unique=True)


def ensure_table(conn: Connection, table: sa.Table) -> None:
    """Create ``table`` if missing; refuse one whose columns no longer match."""
    inspector = sa.inspect(conn)
    if not inspector.has_table(table.name, schema=table.schema):
        table.create(conn)
        return
    existing = {c["name"] for c in inspector.get_columns(table.name, schema=table.schema)}
    wanted = {c.name for c in table.columns}
    if existing != wanted:
        missing = sorted(wanted - existing)
        extra = sorted(existing - wanted)
        raise StepFailed(
            f"{table.schema}.{table.name} does not match the config "
            f"(missing columns: {missing or 'none'}; columns not in the config: {extra or 'none'}); "
            "migrate or drop the table"
        )


def table_exists(conn: Connection, schema: str, name: str) -> bool:
    return sa.inspect(conn).has_table(name, schema=schema)


def period_counts(conn: Connection, schema: str, table: str) -> dict[str, int]:
    """Rows per period of ``schema.table`` ({} when the table does not exist)."""
    if not table_exists(conn, schema, table):
        return {}
    t = sa.Table(table, sa.MetaData(), sa.Column(PERIOD_COLUMN), schema=schema)
    query = sa.select(t.c[PERIOD_COLUMN], sa.func.count()).group_by(t.c[PERIOD_COLUMN])
    return {period: count for period, count in conn.execute(query)}


def derived_table(schema: str, name: str, arrow: pa.Schema, key: tuple[str, ...] = ()) -> sa.Table:
    """A core/mart table for a query result: its columns plus the indexed period."""
    columns = [sa.Column(f.name, sql_type(f.type)) for f in arrow]
    table = sa.Table(name, sa.MetaData(), *columns, period_column(), schema=schema)
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

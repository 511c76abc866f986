"""PostgreSQL: stage, core and mart tables partitioned by month

Revision ID: 0004
Revises: 0003_corrections
Create Date: 2026-12-03

Every flat table in ``stage``, ``core`` and ``mart`` that has a
``_data_period`` column becomes ``PARTITION BY LIST (_data_period)`` with one
partition per period it holds (legacy rows' ``'legacy'`` period included,
named ``<table>__legacy``), keeping every row and every index. Tables already
partitioned are skipped, so running it twice changes nothing. SQLite keeps one
table per dataset: nothing to do there.

Frozen: the partition naming here is this revision's own copy of the rule in
pipeline.warehouse.backends.pg_partitions.
"""
import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003_corrections"
branch_labels = None
depends_on = None

PERIOD_COLUMN = "_data_period"
SCHEMAS = ("stage", "core", "mart")


def partition_name(table: str, period: str) -> str:
    name = f"{table}__{period.replace('-', '_')}"
    if len(name.encode()) <= 58:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{table[:38]}_{digest}__{period.replace('-', '_')}"


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    flat = bind.execute(sa.text(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = :col AND NOT a.attisdropped "
        "WHERE c.relkind = 'r' AND NOT c.relispartition AND n.nspname = ANY(:schemas) ORDER BY 1, 2"),
        {"col": PERIOD_COLUMN, "schemas": list(SCHEMAS)}).all()
    for schema, table in flat:
        _partition(bind, schema, table)


def _partition(bind: sa.Connection, schema: str, table: str) -> None:
    old = f"{table}__flat"
    indexes = bind.execute(sa.text(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :s AND tablename = :t"),
        {"s": schema, "t": table}).all()
    bind.exec_driver_sql(f"ALTER TABLE {q(schema)}.{q(table)} RENAME TO {q(old)}")
    for name, _definition in indexes:
        bind.exec_driver_sql(f"ALTER INDEX {q(schema)}.{q(name)} RENAME TO {q(name[:50] + '__flat')}")
    bind.exec_driver_sql(f"CREATE TABLE {q(schema)}.{q(table)} (LIKE {q(schema)}.{q(old)} INCLUDING DEFAULTS) "
                         f"PARTITION BY LIST ({q(PERIOD_COLUMN)})")
    for _name, definition in indexes:
        # The definitions were read under the table's own name: they now build
        # partitioned indexes on the new parent. A unique index must include
        # the partition key there; one that does not (a legacy primary key)
        # becomes a plain index — the workbench's keys are unique per period.
        if definition.startswith("CREATE UNIQUE") and PERIOD_COLUMN not in definition:
            definition = definition.replace("CREATE UNIQUE INDEX", "CREATE INDEX", 1)
        bind.exec_driver_sql(definition)
    periods = bind.exec_driver_sql(
        f"SELECT DISTINCT {q(PERIOD_COLUMN)} FROM {q(schema)}.{q(old)} ORDER BY 1").scalars().all()
    for period in periods:
        literal = "'" + str(period).replace("'", "''") + "'"
        bind.exec_driver_sql(f"CREATE TABLE {q(schema)}.{q(partition_name(table, period))} "
                             f"PARTITION OF {q(schema)}.{q(table)} FOR VALUES IN ({literal})")
    bind.exec_driver_sql(f"INSERT INTO {q(schema)}.{q(table)} SELECT * FROM {q(schema)}.{q(old)}")
    bind.exec_driver_sql(f"DROP TABLE {q(schema)}.{q(old)}")


def downgrade() -> None:
    # Partitioned tables answer every query the flat ones did.
    pass

"""period-aware staging (the refactoring plan's Task 1.2)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Brings a legacy warehouse to the current schema, keeping every legacy row:

1. adds the columns SPEC §5 names to legacy meta logs (nullable: legacy rows
   have no value for them);
2. adds ``_data_period VARCHAR(7) NOT NULL`` and its index to every table in
   ``stage``. Legacy rows get the period ``'legacy'``: the old loads replaced
   whole tables and recorded no period, so any real month would be a guess.
   Such rows are never touched by a period reload; to assign them a month,
   ``UPDATE stage.<t> SET _data_period = 'YYYY-MM' WHERE _data_period = 'legacy'``;
3. drops the ``raw`` schema and its tables.

Every step checks before it acts, so running it on a database that already
has the new shape changes nothing.
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LEGACY_PERIOD = "legacy"
PERIOD_COLUMN = "_data_period"
TS = sa.DateTime(timezone=True)
# The meta columns SPEC §5 names, as of this revision (frozen: see 0001).
META_COLUMNS = {
    "ingestion_log": [
        ("dataset", sa.String(63)), ("period", sa.String(7)), ("file_name", sa.Text),
        ("file_path", sa.Text), ("file_size", sa.BigInteger), ("file_sha256", sa.String(64)),
        ("status", sa.String(16)), ("error", sa.Text), ("ingested_at", TS),
    ],
    "validation_log": [
        ("ingestion_id", sa.Integer), ("dataset", sa.String(63)), ("period", sa.String(7)),
        ("status", sa.String(16)), ("rows_total", sa.BigInteger), ("rows_valid", sa.BigInteger),
        ("rows_invalid", sa.BigInteger), ("parquet_path", sa.Text), ("error", sa.Text),
        ("started_at", TS), ("finished_at", TS),
    ],
    "validation_errors": [
        ("validation_id", sa.Integer), ("row_number", sa.BigInteger), ("column", sa.Text),
        ("check", sa.Text), ("value", sa.Text),
    ],
    "load_log": [
        ("step", sa.String(16)), ("dataset", sa.String(63)), ("period", sa.String(7)),
        ("status", sa.String(16)), ("source", sa.Text), ("file_sha256", sa.String(64)),
        ("rows_deleted", sa.BigInteger), ("rows_inserted", sa.BigInteger), ("error", sa.Text),
        ("started_at", TS), ("finished_at", TS),
    ],
}


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    sqlite = bind.dialect.name == "sqlite"

    for table, columns in META_COLUMNS.items():
        present = {c["name"] for c in inspector.get_columns(table, schema="meta")}
        for name, type_ in columns:
            if name not in present:
                op.add_column(table, sa.Column(name, type_, nullable=True), schema="meta")
        if not sqlite:
            _ensure_id_sequence(bind, table)

    for name in inspector.get_table_names(schema="stage"):
        columns = {c["name"] for c in inspector.get_columns(name, schema="stage")}
        if PERIOD_COLUMN not in columns:
            # NOT NULL needs a value for the rows already there.
            op.add_column(
                name,
                sa.Column(PERIOD_COLUMN, sa.String(7), nullable=False,
                          server_default=LEGACY_PERIOD),
                schema="stage",
            )
            if not sqlite:  # SQLite cannot drop a default; it is harmless there
                op.alter_column(name, PERIOD_COLUMN, server_default=None, schema="stage")
        indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes(name, schema="stage")}
        if not any(cols and cols[0] == PERIOD_COLUMN for cols in indexed):
            op.create_index(f"ix_{name}_data_period", name, [PERIOD_COLUMN], schema="stage")

    if sqlite:
        attached = {row[1] for row in bind.exec_driver_sql("PRAGMA database_list")}
        if "raw" in attached:
            for name in sa.inspect(bind).get_table_names(schema="raw"):
                bind.exec_driver_sql(f'DROP TABLE "raw"."{name}"')
    else:
        bind.exec_driver_sql('DROP SCHEMA IF EXISTS "raw" CASCADE')


def _ensure_id_sequence(bind: sa.Connection, table: str) -> None:
    """A legacy log whose ``id`` has no default gets a sequence starting after
    its highest id, so new rows number on from the legacy ones."""
    default = bind.execute(sa.text(
        "SELECT column_default FROM information_schema.columns "
        "WHERE table_schema = 'meta' AND table_name = :t AND column_name = 'id'"), {"t": table}).scalar()
    if default is not None:
        return
    seq = f'"meta"."{table}_id_seq"'
    bind.exec_driver_sql(f'CREATE SEQUENCE IF NOT EXISTS {seq} OWNED BY "meta"."{table}"."id"')
    bind.exec_driver_sql(
        f"SELECT setval('{seq}', COALESCE((SELECT max(id) FROM \"meta\".\"{table}\"), 0) + 1, false)")
    bind.exec_driver_sql(f'ALTER TABLE "meta"."{table}" ALTER COLUMN "id" SET DEFAULT nextval(\'{seq}\')')


def downgrade() -> None:
    # The legacy shape is not worth restoring; the upgrade kept all legacy rows.
    pass

"""meta log tables

Revision ID: 0001
Revises:
Create Date: 2026-11-26

The baseline: the meta tables of SPEC §5 as they were at this revision. The
definitions are this revision's own, frozen here: importing today's tables
from the package would silently change what this revision means whenever
they change. Tables that already exist (a legacy warehouse) are left for 0002
to bring up to date.
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

META = sa.MetaData(schema="meta")
TS = sa.DateTime(timezone=True)

ingestion_log = sa.Table(
    "ingestion_log", META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("dataset", sa.String(63)),
    sa.Column("period", sa.String(7)),
    sa.Column("file_name", sa.Text),
    sa.Column("file_path", sa.Text),
    sa.Column("file_size", sa.BigInteger),
    sa.Column("file_sha256", sa.String(64)),
    sa.Column("status", sa.String(16)),
    sa.Column("error", sa.Text),
    sa.Column("ingested_at", TS),
    sa.Index("ix_ingestion_log_dataset_period", "dataset", "period"),
)

validation_log = sa.Table(
    "validation_log", META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ingestion_id", sa.Integer),
    sa.Column("dataset", sa.String(63)),
    sa.Column("period", sa.String(7)),
    sa.Column("status", sa.String(16)),
    sa.Column("rows_total", sa.BigInteger),
    sa.Column("rows_valid", sa.BigInteger),
    sa.Column("rows_invalid", sa.BigInteger),
    sa.Column("parquet_path", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("started_at", TS),
    sa.Column("finished_at", TS),
    sa.Index("ix_validation_log_dataset_period", "dataset", "period"),
    sa.Index("ix_validation_log_ingestion_id", "ingestion_id"),
)

validation_errors = sa.Table(
    "validation_errors", META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("validation_id", sa.Integer, nullable=False),
    sa.Column("row_number", sa.BigInteger),
    sa.Column("column", sa.Text),
    sa.Column("check", sa.Text),
    sa.Column("value", sa.Text),
    sa.Index("ix_validation_errors_validation_id", "validation_id"),
)

load_log = sa.Table(
    "load_log", META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("step", sa.String(16)),
    sa.Column("dataset", sa.String(63)),
    sa.Column("period", sa.String(7)),
    sa.Column("status", sa.String(16)),
    sa.Column("source", sa.Text),
    sa.Column("file_sha256", sa.String(64)),
    sa.Column("rows_deleted", sa.BigInteger),
    sa.Column("rows_inserted", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("started_at", TS),
    sa.Column("finished_at", TS),
    sa.Index("ix_load_log_dataset_period", "dataset", "period", "step"),
)


def upgrade() -> None:
    META.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    META.drop_all(op.get_bind(), checkfirst=True)

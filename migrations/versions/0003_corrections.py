"""meta.corrections: the ledger of reloads with a reason and rollbacks

Revision ID: 0003_corrections
Revises: 0003 (month state)
Create Date: 2026-12-03

Who changed a served month, when and why, with what the change did (rows
before and after; keys added, removed, changed). Frozen definition (see 0001).
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_corrections"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("corrections", schema="meta"):
        return
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset", sa.String(63), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("load_id", sa.Integer),
        sa.Column("rows_before", sa.BigInteger),
        sa.Column("rows_after", sa.BigInteger),
        sa.Column("added", sa.BigInteger),
        sa.Column("removed", sa.BigInteger),
        sa.Column("changed", sa.BigInteger),
        schema="meta",
    )
    op.create_index("ix_corrections_dataset_period", "corrections", ["dataset", "period"], schema="meta")


def downgrade() -> None:
    op.drop_table("corrections", schema="meta")

"""meta.validation_errors.row_key: which record failed

Revision ID: 0005_row_key
Revises: 0004
Create Date: 2026-12-03

A row-level error names the failing row's primary key as the file gives it
(``1001``; a composite key as ``a=1, b=x``), so the month page and its CSV
say which record failed, not only its row number. Nullable (older errors,
datasets without a key, rows whose key cell is empty), added only when
absent: running it twice, or on a database that has it, changes nothing.
Frozen definition (see 0001).
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_row_key"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("validation_errors", schema="meta")}
    if "row_key" not in present:
        op.add_column("validation_errors", sa.Column("row_key", sa.Text, nullable=True), schema="meta")


def downgrade() -> None:
    op.drop_column("validation_errors", "row_key", schema="meta")

"""meta log tables

Revision ID: 0001
Revises:
Create Date: 2026-11-26

The baseline: the meta tables of SPEC §5, created from their one definition
in pipeline.db. Tables that already exist (a legacy warehouse) are left for
0002 to bring up to date.
"""
from alembic import op

from pipeline import db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    db.META.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    db.META.drop_all(op.get_bind(), checkfirst=True)

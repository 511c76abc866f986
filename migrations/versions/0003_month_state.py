"""a month's state is always true (SPEC §10.1)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

Adds what the run log needs to tell the truth about a month:

- ``validation_log.rows_dropped`` / ``rows_warned``: rows left out by
  ``on_invalid_rows: drop`` and rows that failed only ``severity: warn``
  checks (NULL on older rows: the state falls back to ``rows_invalid`` of a
  passed validation, which under the old code was exactly the dropped rows);
- ``config_sha256`` on ``ingestion_log`` and ``validation_log``: the dataset
  config that judged the file, so a refusal is retried once that config
  changed;
- ``retryable`` on both: a failure that was not a verdict on the data (a disk
  or connection error, a process that died) is retried by ``run``;
- ``runner_host`` / ``runner_pid`` on ``validation_log``: who holds a
  ``running`` row, so one whose process is gone can be marked failed;
- ``validation_errors.header``: the column's header as the file spells it.

Nullable columns only, each added when absent: running it twice, or on a
database that already has them, changes nothing. The definitions are this
revision's own (frozen), as in 0001 and 0002.
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NEW_COLUMNS = {
    "ingestion_log": [("config_sha256", sa.String(64)), ("retryable", sa.Boolean)],
    "validation_log": [
        ("rows_dropped", sa.BigInteger), ("rows_warned", sa.BigInteger), ("config_sha256", sa.String(64)),
        ("retryable", sa.Boolean), ("runner_host", sa.String(255)), ("runner_pid", sa.Integer),
    ],
    "validation_errors": [("header", sa.Text)],
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, columns in NEW_COLUMNS.items():
        present = {c["name"] for c in inspector.get_columns(table, schema="meta")}
        for name, type_ in columns:
            if name not in present:
                op.add_column(table, sa.Column(name, type_, nullable=True), schema="meta")


def downgrade() -> None:
    for table, columns in NEW_COLUMNS.items():
        for name, _type in columns:
            op.drop_column(table, name, schema="meta")

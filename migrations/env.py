"""Alembic environment: runs on the connection pipeline.warehouse.migrate
hands over, or on the warehouse named by WORKBENCH_DB_URL (``alembic upgrade
head`` from the repository root works too)."""
from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from pipeline.warehouse.backends import backend_of
from pipeline.warehouse.engine import get_engine


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        version_table_schema="meta",
        transactional_ddl=True,
    )
    with context.begin_transaction():
        backend_of(connection).before_migrations(connection)
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = get_engine(migrate=False)
    with engine.connect() as conn:
        conn.execution_options(workbench_write=True)
        run(conn)

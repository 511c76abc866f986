"""Alembic environment: runs on the connection pipeline.db hands over, or on
the warehouse named by WORKBENCH_DB_URL (``alembic upgrade head`` from the
repository root works too)."""
from __future__ import annotations

from alembic import context

from pipeline import db

# Any fixed 64-bit number: the key of the advisory lock that serialises
# concurrent first-use migrations on PostgreSQL.
MIGRATION_LOCK_KEY = 7_100_202_506


def run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=db.META,
        version_table_schema="meta",
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            for schema in db.SCHEMAS:
                connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = db.get_engine(migrate=False)
    with engine.connect() as conn:
        conn.execution_options(sqlite_write=True)
        run(conn)

"""What the PostgreSQL benchmarks share: the server, a throw-away database
for one run, and a stopwatch."""
from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator

import sqlalchemy as sa

ADMIN = os.environ.get("WORKBENCH_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def throwaway_database(dispose: Callable[[], None]) -> Iterator[sa.URL]:
    """A new database's URL; dropped afterwards (``dispose`` first closes the
    caller's pooled connections to it)."""
    name = f"workbench_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(ADMIN).set(database=name)
    finally:
        dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start

"""The warehouse backends, by SQLAlchemy dialect name: the only place that
names the databases the workbench supports."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.errors import UsageError
from pipeline.warehouse.backends.base import SCHEMAS, Backend
from pipeline.warehouse.backends.postgres import PostgresBackend
from pipeline.warehouse.backends.sqlite import SqliteBackend

BACKENDS: dict[str, Backend] = {b.name: b for b in (PostgresBackend(), SqliteBackend())}

__all__ = ["BACKENDS", "SCHEMAS", "Backend", "backend_for_url", "backend_of"]


def backend_for_url(url: sa.URL) -> Backend:
    name = url.get_backend_name()
    backend = BACKENDS.get(name)
    if backend is None:
        raise UsageError(f"unsupported database {name!r}: use postgresql+psycopg2:// or sqlite:///")
    return backend


def backend_of(bind: Engine | Connection) -> Backend:
    """The backend of an engine or connection."""
    return BACKENDS[bind.dialect.name]

"""The warehouse backends, by SQLAlchemy dialect name: the only place that
names the databases the workbench supports."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.errors import UsageError
from pipeline.warehouse.backends.base import SCHEMAS, Backend
from pipeline.warehouse.backends.postgres import PostgresBackend
from pipeline.warehouse.backends.sqlite import SqliteBackend

BACKENDS: dict[str, Backend] = {b.name: b for b in (PostgresBackend(), SqliteBackend())}

__all__ = ["BACKENDS", "SCHEMAS", "Backend", "backend_for_url", "backend_named", "backend_of", "decimal_type"]


def backend_for_url(url: sa.URL) -> Backend:
    name = url.get_backend_name()
    backend = BACKENDS.get(name)
    if backend is None:
        raise UsageError(f"unsupported database {name!r}: use postgresql+psycopg2:// or sqlite:///")
    return backend


def backend_of(bind: Engine | Connection) -> Backend:
    """The backend of an engine or connection."""
    return BACKENDS[bind.dialect.name]


def backend_named(name: str) -> Backend:
    """The backend for ``check --warehouse NAME``."""
    backend = BACKENDS.get(name)
    if backend is None:
        raise UsageError(f"unknown warehouse {name!r} (use one of {', '.join(BACKENDS)})")
    return backend


def decimal_type(precision: int, scale: int) -> sa.types.TypeEngine[Any]:
    """``decimal(p,s)`` as each backend stores it, chosen when the table is
    created on one (SQLAlchemy type variants)."""
    base: sa.types.TypeEngine[Any] = sa.Numeric(precision, scale, asdecimal=True)
    for backend in BACKENDS.values():
        base = base.with_variant(backend.decimal_type(precision, scale), backend.name)
    return base

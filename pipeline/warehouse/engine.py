"""Engines for the warehouse URL, one per URL per process, migrated on first
use; and the one way to open a writing transaction."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from pipeline.errors import UsageError
from pipeline.settings import get_settings
from pipeline.warehouse.backends import backend_for_url
from pipeline.warehouse.migrate import ensure_migrated

_engines: dict[str, Engine] = {}
_migrated: set[str] = set()
_lock = threading.Lock()


def get_engine(url: str | None = None, *, migrate: bool = True) -> Engine:
    """The engine for ``url`` (default ``WORKBENCH_DB_URL``), migrated on first use."""
    if url is None:
        url = get_settings().db_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = make_engine(url)
            _engines[url] = engine
    if migrate and url not in _migrated:
        ensure_migrated(engine)
        _migrated.add(url)
    return engine


def make_engine(url: str) -> Engine:
    try:
        sa_url = make_url(url)
    except sa.exc.ArgumentError:
        raise UsageError(f"WORKBENCH_DB_URL {url!r} is not a database URL") from None
    return backend_for_url(sa_url).make_engine(sa_url)


def dispose_engines() -> None:
    """Close every pooled connection (tests; before deleting SQLite files)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _migrated.clear()


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction that will write (on SQLite it takes the write lock up
    front, so it waits its turn instead of failing when another writer
    commits between its read and its write)."""
    with engine.connect() as conn:
        conn.execution_options(workbench_write=True)
        with conn.begin():
            yield conn

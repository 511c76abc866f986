"""Alembic, driven from the package: ``python -m pipeline migrate`` and the
automatic migration on first use. The revisions live in ``migrations/``."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.domain.config import Config
from pipeline.warehouse.backends import backend_of
from pipeline.warehouse.tables import sync_tables

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

# alembic is imported where it is used: the dashboard opens its engines with
# migrate=False, and importing alembic costs its first page ~0.4 s.
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


@functools.cache
def head_revision() -> str:
    """The newest revision in migrations/ (read once per process: parsing
    every revision file is the slow part of the first-use check)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT version_num FROM meta.alembic_version")).scalar()
    except sa.exc.DBAPIError:
        return None


def migrate(engine: Engine) -> str:
    """Bring the database to the current schema; safe to run any number of times."""
    from alembic import command

    cfg = alembic_config()
    with engine.connect() as conn:
        conn.execution_options(workbench_write=True)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    backend_of(engine).after_migrations(engine)
    return current_revision(engine) or ""


def ensure_migrated(engine: Engine) -> None:
    if current_revision(engine) != head_revision():
        migrate(engine)



def sync_config_columns(engine: Engine, config: Config) -> list[str]:
    """After the migrations: add the config's new columns to the existing
    tables (``python -m pipeline migrate``), in one transaction; a refused
    change leaves every table as it was. 'schema.table.column' of each added."""
    with engine.connect() as conn:
        conn.execution_options(workbench_write=True)
        with conn.begin():
            return sync_tables(conn, config)

"""The warehouse: engines for PostgreSQL and the embedded SQLite default, the
``meta`` log tables, and table definitions derived from the config.

Both backends address tables as ``meta.x``, ``stage.x``, ``core.x`` and
``mart.x``. On SQLite each schema is its own database file, attached to every
connection under the schema's name, in WAL mode with a busy timeout so the
dashboard can read while a run writes.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import threading
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url

from pipeline.config import ColumnConfig, DatasetConfig
from pipeline.errors import StepFailed, UsageError

SCHEMAS = ("meta", "stage", "core", "mart")
PERIOD_COLUMN = "_data_period"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 60_000

# --------------------------------------------------------------------------
# meta: the logs (SPEC §5). Migrations create these from this one definition.
# --------------------------------------------------------------------------
META = sa.MetaData(schema="meta")
TS = sa.DateTime(timezone=True)

ingestion_log = sa.Table(
    "ingestion_log", META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("dataset", sa.String(63)),
    sa.Column("period", sa.String(7)),
    sa.Column("file_name", sa.Text),
    sa.Column("file_path", sa.Text),
    sa.Column("file_size", sa.BigInteger),
    sa.Column("file_sha256", sa.String(64)),
    sa.Column("status", sa.String(16)),
    sa.Column("error", sa.Text),
    sa.Column("ingested_at", TS),
    sa.Index("ix_ingestion_log_dataset_period", "dataset", "period"),
)

validation_log = sa.Table(
    "validation_log", META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ingestion_id", sa.Integer),
    sa.Column("dataset", sa.String(63)),
    sa.Column("period", sa.String(7)),
    sa.Column("status", sa.String(16)),
    sa.Column("rows_total", sa.BigInteger),
    sa.Column("rows_valid", sa.BigInteger),
    sa.Column("rows_invalid", sa.BigInteger),
    sa.Column("parquet_path", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("started_at", TS),
    sa.Column("finished_at", TS),
    sa.Index("ix_validation_log_dataset_period", "dataset", "period"),
    sa.Index("ix_validation_log_ingestion_id", "ingestion_id"),
)

validation_errors = sa.Table(
    "validation_errors", META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("validation_id", sa.Integer, nullable=False),
    sa.Column("row_number", sa.BigInteger),
    sa.Column("column", sa.Text),
    sa.Column("check", sa.Text),
    sa.Column("value", sa.Text),
    sa.Index("ix_validation_errors_validation_id", "validation_id"),
)

load_log = sa.Table(
    "load_log", META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("step", sa.String(16)),
    sa.Column("dataset", sa.String(63)),
    sa.Column("period", sa.String(7)),
    sa.Column("status", sa.String(16)),
    sa.Column("source", sa.Text),
    sa.Column("file_sha256", sa.String(64)),
    sa.Column("rows_deleted", sa.BigInteger),
    sa.Column("rows_inserted", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("started_at", TS),
    sa.Column("finished_at", TS),
    sa.Index("ix_load_log_dataset_period", "dataset", "period", "step"),
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# --------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------
_engines: dict[str, Engine] = {}
_migrated: set[str] = set()
_lock = threading.Lock()


def get_engine(url: str | None = None, *, migrate: bool = True) -> Engine:
    """The engine for ``url`` (default ``WORKBENCH_DB_URL``), migrated on first use."""
    if url is None:
        from pipeline.settings import get_settings

        url = get_settings().db_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _make_engine(url)
            _engines[url] = engine
    if migrate and url not in _migrated:
        ensure_migrated(engine)
        _migrated.add(url)
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests; before deleting SQLite files)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _migrated.clear()


def is_sqlite(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "sqlite"


def _make_engine(url: str) -> Engine:
    try:
        sa_url = make_url(url)
    except sa.exc.ArgumentError:
        raise UsageError(f"WORKBENCH_DB_URL {url!r} is not a database URL") from None
    backend = sa_url.get_backend_name()
    if backend == "postgresql":
        return sa.create_engine(sa_url, pool_pre_ping=True)
    if backend == "sqlite":
        if not sa_url.database or sa_url.database == ":memory:":
            raise UsageError("the SQLite warehouse must be a file (sqlite:///path/workbench.sqlite)")
        return _sqlite_engine(sa_url)
    raise UsageError(f"unsupported database {backend!r}: use postgresql+psycopg2:// or sqlite:///")


def sqlite_files(main: Path) -> dict[str, Path]:
    """The database file behind each schema, beside the main file."""
    return {schema: main.with_name(f"{main.stem}.{schema}.sqlite") for schema in (*SCHEMAS, "raw")}


def _sqlite_engine(sa_url: sa.URL) -> Engine:
    main = Path(sa_url.database).absolute()
    main.parent.mkdir(parents=True, exist_ok=True)
    files = sqlite_files(main)
    engine = sa.create_engine(
        sa_url.set(database=str(main)),
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite's own
        # implicit transactions would defeat BEGIN IMMEDIATE).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        for schema, path in files.items():
            # 'raw' exists only in a legacy warehouse, until its migration drops it.
            if schema != "raw" or path.exists():
                cur.execute(f'ATTACH DATABASE ? AS "{schema}"', (str(path),))
        for schema in ("main", *SCHEMAS):
            cur.execute(f'PRAGMA "{schema}".journal_mode = WAL')
        cur.close()
        _register_sqlite_functions(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        # A writer takes the write lock up front, so it waits its turn instead
        # of failing when another writer commits between its read and write.
        mode = "IMMEDIATE" if conn.get_execution_options().get("sqlite_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _register_sqlite_functions(dbapi_conn) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL functions the shipped .sql files use, so they run unchanged."""

    def initcap(value):  # type: ignore[no-untyped-def]
        return None if value is None else str(value).title()

    def to_char(value, fmt):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        day = dt.date.fromisoformat(str(value)[:10])
        out = str(fmt)
        for token, part in (("YYYY", f"{day.year:04d}"), ("MM", f"{day.month:02d}"), ("DD", f"{day.day:02d}")):
            out = out.replace(token, part)
        return out

    dbapi_conn.create_function("initcap", 1, initcap, deterministic=True)
    dbapi_conn.create_function("to_char", 2, to_char, deterministic=True)


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction that will write: BEGIN IMMEDIATE on SQLite."""
    with engine.connect() as conn:
        conn.execution_options(sqlite_write=True)
        with conn.begin():
            yield conn


# --------------------------------------------------------------------------
# Migrations
# --------------------------------------------------------------------------
def alembic_config():  # type: ignore[no-untyped-def]
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
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
        conn.execution_options(sqlite_write=True)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    if is_sqlite(engine):
        _drop_empty_legacy_raw(engine)
    return current_revision(engine) or ""


def ensure_migrated(engine: Engine) -> None:
    if current_revision(engine) != head_revision():
        migrate(engine)


def _drop_empty_legacy_raw(engine: Engine) -> None:
    raw = sqlite_files(Path(engine.url.database))["raw"]
    if raw.exists():
        with engine.connect() as conn:
            left = conn.exec_driver_sql("SELECT count(*) FROM raw.sqlite_master").scalar()
        if not left:
            engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{raw}{suffix}").unlink(missing_ok=True)


# --------------------------------------------------------------------------
# Tables derived from the config
# --------------------------------------------------------------------------
def column_type(col: ColumnConfig) -> sa.types.TypeEngine:
    if col.type == "string":
        return sa.String(col.max_length) if col.max_length else sa.Text()
    return {
        "integer": sa.BigInteger(),
        "float": sa.Double(),
        "date": sa.Date(),
        "datetime": sa.DateTime(),
        "boolean": sa.Boolean(),
    }[col.type]


def period_column() -> sa.Column:
    return sa.Column(PERIOD_COLUMN, sa.String(7), nullable=False)


def stage_table(dataset: DatasetConfig, metadata: sa.MetaData | None = None) -> sa.Table:
    """``stage.<table>``: the dataset's typed columns plus the indexed period."""
    metadata = metadata or sa.MetaData()
    columns = [sa.Column(c.name, column_type(c), nullable=c.nullable) for c in dataset.columns.values()]
    table = sa.Table(dataset.table, metadata, *columns, period_column(), schema="stage")
    add_period_indexes(table, dataset.primary_key)
    return table


def add_period_indexes(table: sa.Table, key: tuple[str, ...] = ()) -> None:
    sa.Index(f"ix_{table.name}_data_period", table.c[PERIOD_COLUMN])
    if key:
        sa.Index(f"ux_{table.name}_period_key", table.c[PERIOD_COLUMN], *(table.c[k] for k in key), unique=True)


def ensure_table(conn: Connection, table: sa.Table) -> None:
    """Create ``table`` if missing; refuse one whose columns no longer match."""
    inspector = sa.inspect(conn)
    if not inspector.has_table(table.name, schema=table.schema):
        table.create(conn)
        return
    existing = {c["name"] for c in inspector.get_columns(table.name, schema=table.schema)}
    wanted = {c.name for c in table.columns}
    if existing != wanted:
        missing = sorted(wanted - existing)
        extra = sorted(existing - wanted)
        raise StepFailed(
            f"{table.schema}.{table.name} does not match the config "
            f"(missing columns: {missing or 'none'}; columns not in the config: {extra or 'none'}); "
            "migrate or drop the table"
        )


def table_exists(conn: Connection, schema: str, name: str) -> bool:
    return sa.inspect(conn).has_table(name, schema=schema)

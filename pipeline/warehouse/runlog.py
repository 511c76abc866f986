"""The run log: the ``meta`` tables (SPEC §5), the words their status columns
hold, and every query that writes them or reads a month's outcome from them.
The one source of what happened to a month: the stages write here; run,
status, the dashboard and the notebooks ask here.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.domain.validation import value_text
from pipeline.errors import UsageError, readable
from pipeline.warehouse.engine import write_transaction


class IngestStatus(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class ValidationStatus(StrEnum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"


class LoadStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Step(StrEnum):
    LOAD_STAGE = "load_stage"
    TRANSFORM = "transform"
    PUBLISH = "publish"


# --------------------------------------------------------------------------
# The tables. Migrations carry their own frozen copies; these are what the
# code reads and writes today.
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
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------
# ingest
# --------------------------------------------------------------------------
def log_ingestion(engine: Engine, **values: Any) -> int:
    """One ingest attempt, accepted or rejected; its id."""
    with write_transaction(engine) as conn:
        return int(conn.execute(
            sa.insert(ingestion_log).values(**values, ingested_at=utcnow()).returning(ingestion_log.c.id)
        ).scalar_one())


@dataclass(frozen=True)
class Ingestion:
    id: int
    dataset: str
    period: str
    file_name: str
    file_path: Path
    file_sha256: str


def accepted_ingestion(engine: Engine, ingestion_id: int) -> Ingestion:
    """An accepted ingestion by id; a usage error for an unknown or rejected one."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(ingestion_log).where(ingestion_log.c.id == ingestion_id)).mappings().first()
    if row is None:
        raise UsageError(f"no ingestion with id {ingestion_id} in meta.ingestion_log")
    if row["status"] != IngestStatus.ACCEPTED:
        raise UsageError(f"ingestion {ingestion_id} was rejected at ingest: {row['error']}")
    return Ingestion(row["id"], row["dataset"], row["period"], row["file_name"],
                     Path(row["file_path"]), row["file_sha256"])


def ingestion_period(engine: Engine, ingestion_id: int) -> tuple[str, str] | None:
    """(dataset, period) of an ingestion, None when unknown or unparsed."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(ingestion_log.c.dataset, ingestion_log.c.period)
                           .where(ingestion_log.c.id == ingestion_id)).first()
    return (row.dataset, row.period) if row is not None and row.dataset and row.period else None


def last_accepted_ingestion(engine: Engine, file_path: Path) -> tuple[int, str] | None:
    """(id, sha256) of the newest accepted ingestion of a landed file."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(ingestion_log.c.id, ingestion_log.c.file_sha256)
            .where(ingestion_log.c.file_path == readable(str(file_path.resolve())),
                   ingestion_log.c.status == IngestStatus.ACCEPTED)
            .order_by(ingestion_log.c.id.desc()).limit(1)
        ).first()
    return (row.id, row.file_sha256) if row is not None else None


# --------------------------------------------------------------------------
# validate
# --------------------------------------------------------------------------
def start_validation(engine: Engine, ingestion: Ingestion) -> int:
    """A ``running`` validation row, finished later by finish_validation."""
    with write_transaction(engine) as conn:
        return int(conn.execute(
            sa.insert(validation_log).values(
                ingestion_id=ingestion.id, dataset=ingestion.dataset, period=ingestion.period,
                status=ValidationStatus.RUNNING, started_at=utcnow(),
            ).returning(validation_log.c.id)
        ).scalar_one())


def finish_validation(engine: Engine, validation_id: int, *, status: str, counts: tuple[Any, Any, Any],
                      parquet: Path | None, error: str | None, failures: pd.DataFrame | None) -> None:
    total, valid, invalid = counts
    with write_transaction(engine) as conn:
        conn.execute(
            sa.update(validation_log).where(validation_log.c.id == validation_id).values(
                status=status, rows_total=total, rows_valid=valid, rows_invalid=invalid,
                parquet_path=str(parquet) if parquet else None, error=error, finished_at=utcnow(),
            )
        )
        if failures is not None and len(failures):
            conn.execute(sa.insert(validation_errors), _error_rows(validation_id, failures))


def _error_rows(validation_id: int, failures: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"validation_id": validation_id, "row_number": int(row), "column": column,
         "check": check, "value": value_text(value)}
        for row, column, check, value in zip(failures["row_number"], failures["column"],
                                             failures["check"], failures["value"])
    ]


# --------------------------------------------------------------------------
# load_stage, transform, publish
# --------------------------------------------------------------------------
def log_load(conn: Connection, *, step: str, dataset: str, period: str, source: str,
             file_sha256: str | None, deleted: int, inserted: int, started: dt.datetime) -> int:
    """A succeeded step, inside the transaction that did the work."""
    return int(conn.execute(
        sa.insert(load_log).values(
            step=step, dataset=dataset, period=period, status=LoadStatus.SUCCEEDED, source=source,
            file_sha256=file_sha256, rows_deleted=deleted, rows_inserted=inserted,
            started_at=started, finished_at=utcnow(),
        ).returning(load_log.c.id)
    ).scalar_one())


def log_load_failure(engine: Engine, *, step: str, dataset: str, period: str, source: str,
                     file_sha256: str | None, error: str, started: dt.datetime) -> None:
    """A failed step, in a transaction of its own (the work's was rolled back)."""
    try:
        with write_transaction(engine) as conn:
            conn.execute(sa.insert(load_log).values(
                step=step, dataset=dataset, period=period, status=LoadStatus.FAILED, source=source,
                file_sha256=file_sha256, rows_deleted=0, rows_inserted=0, error=error,
                started_at=started, finished_at=utcnow(),
            ))
    except Exception:  # the database itself may be gone; the caller still reports the failure
        pass


def has_succeeded(engine: Engine, step: str, dataset: str, period: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(load_log.c.id).where(load_log.c.step == step, load_log.c.dataset == dataset,
                                           load_log.c.period == period,
                                           load_log.c.status == LoadStatus.SUCCEEDED).limit(1)
        ).first() is not None


# --------------------------------------------------------------------------
# What run needs to know
# --------------------------------------------------------------------------
def refusal_of(engine: Engine, file_path: Path, sha: str) -> str | None:
    """Why this content of this file was refused last time, or None."""
    with engine.connect() as conn:
        last = conn.execute(
            sa.select(ingestion_log.c.status, ingestion_log.c.error, ingestion_log.c.id)
            .where(ingestion_log.c.file_path == readable(str(file_path.resolve())), ingestion_log.c.file_sha256 == sha)
            .order_by(ingestion_log.c.id.desc()).limit(1)
        ).first()
        if last is None:
            return None
        if last.status == IngestStatus.REJECTED:
            return f"unchanged since it was rejected: {last.error}"
        failed = conn.execute(
            sa.select(validation_log.c.status, validation_log.c.error)
            .where(validation_log.c.ingestion_id == last.id)
            .order_by(validation_log.c.id.desc()).limit(1)
        ).first()
    if failed is not None and failed.status == ValidationStatus.FAILED:
        return f"unchanged since it failed validation: {failed.error}"
    return None


def published_from(engine: Engine, dataset: str, period: str, sha: str) -> bool:
    """Whether the period's last load came from a file with ``sha`` and was
    published after it."""
    with engine.connect() as conn:
        last_load = conn.execute(
            sa.select(load_log.c.file_sha256, load_log.c.id)
            .where(load_log.c.step == Step.LOAD_STAGE, load_log.c.status == LoadStatus.SUCCEEDED,
                   load_log.c.dataset == dataset, load_log.c.period == period)
            .order_by(load_log.c.id.desc()).limit(1)
        ).first()
        if last_load is None or last_load.file_sha256 != sha:
            return False
        published = conn.execute(
            sa.select(load_log.c.status)
            .where(load_log.c.step == Step.PUBLISH, load_log.c.dataset == dataset,
                   load_log.c.period == period, load_log.c.id > last_load.id)
            .order_by(load_log.c.id.desc()).limit(1)
        ).scalar()
    return published == LoadStatus.SUCCEEDED


# --------------------------------------------------------------------------
# Per-month outcomes (status, the dashboard)
# --------------------------------------------------------------------------
def latest_per_period(conn: Connection, log: sa.Table, *where: Any) -> dict[tuple[str, str], Any]:
    """The newest row of ``log`` per (dataset, period)."""
    newest = (
        sa.select(sa.func.max(log.c.id))
        .where(log.c.dataset.is_not(None), log.c.period.is_not(None), *where)
        .group_by(log.c.dataset, log.c.period)
    )
    rows = conn.execute(sa.select(log).where(log.c.id.in_(newest)))
    return {(r.dataset, r.period): r for r in rows}


def max_id(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0


def newest_since(engine: Engine, table: sa.Table, after_id: int, *where: Any) -> Any:
    """The newest row of ``table`` with an id above ``after_id`` matching ``where``."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(table).where(table.c.id > after_id, *where).order_by(table.c.id.desc()).limit(1)
        ).first()

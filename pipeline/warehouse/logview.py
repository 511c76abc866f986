"""Reading the run log for people: pages of a log filtered and newest first
(the dashboard), a stage's own rows and a month's history (the notebooks),
the failing cells of a validation. Every query is filtered and paginated in
SQL, so a page costs the same with 100 log rows or 100,000."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.warehouse.runlog import (
    IngestStatus,
    LoadStatus,
    ValidationStatus,
    ingestion_log,
    load_log,
    validation_errors,
    validation_log,
)

DEFAULT_PAGE_SIZE = 100
# SPEC §5 stores at most the first 1,000 errors per validation; asking for
# more than that could never return more.
MAX_ERRORS = 1000
TABLES = {"ingestion_log": ingestion_log, "validation_log": validation_log, "load_log": load_log}


@dataclass(frozen=True)
class LogSpec:
    table: sa.Table
    time_column: str
    statuses: tuple[str, ...]


LOGS: dict[str, LogSpec] = {
    "ingestion": LogSpec(ingestion_log, "ingested_at", tuple(IngestStatus)),
    "validation": LogSpec(validation_log, "started_at", (ValidationStatus.PASSED, ValidationStatus.FAILED)),
    "load": LogSpec(load_log, "started_at", tuple(LoadStatus)),
}


@dataclass(frozen=True)
class LogFilter:
    """What the analyst picked; ``None`` means any."""

    dataset: str | None = None
    period: str | None = None
    status: str | None = None
    step: str | None = None  # load log only


def _where(spec: LogSpec, flt: LogFilter) -> list[sa.ColumnElement[bool]]:
    t = spec.table
    conds = []
    if flt.dataset is not None:
        conds.append(t.c.dataset == flt.dataset)
    if flt.period is not None:
        conds.append(t.c.period == flt.period)
    if flt.status is not None:
        conds.append(t.c.status == flt.status)
    if flt.step is not None and "step" in t.c:
        conds.append(t.c.step == flt.step)
    return conds


def _newest_first(spec: LogSpec) -> list[sa.ColumnElement[Any]]:
    # The timestamp decides; the id breaks ties (same clock tick) and orders
    # legacy rows that have no timestamp, which go last.
    t = spec.table
    return [t.c[spec.time_column].desc().nulls_last(), t.c.id.desc()]


def _log_select(kind: str) -> sa.Select[Any]:
    t = LOGS[kind].table
    if kind == "ingestion":
        return sa.select(
            t.c.id, t.c.ingested_at, t.c.dataset, t.c.period, t.c.file_name, t.c.status, t.c.error,
            t.c.file_size, t.c.file_sha256,
        )
    if kind == "validation":
        ing = ingestion_log
        return sa.select(
            t.c.id, t.c.started_at, t.c.finished_at, t.c.dataset, t.c.period, ing.c.file_name, t.c.status,
            t.c.rows_total, t.c.rows_valid, t.c.rows_invalid, t.c.error, t.c.ingestion_id, t.c.parquet_path,
        ).select_from(t.outerjoin(ing, ing.c.id == t.c.ingestion_id))
    return sa.select(
        t.c.id, t.c.started_at, t.c.finished_at, t.c.step, t.c.dataset, t.c.period, t.c.status,
        t.c.rows_deleted, t.c.rows_inserted, t.c.error, t.c.source,
    )


def read_log(engine: Engine, kind: str, flt: LogFilter = LogFilter(), *,
             limit: int = DEFAULT_PAGE_SIZE, offset: int = 0) -> pd.DataFrame:
    """One page of the ``kind`` log ('ingestion', 'validation' or 'load'),
    newest first, filtered by ``flt``."""
    spec = LOGS[kind]
    stmt = _log_select(kind).where(*_where(spec, flt)).order_by(*_newest_first(spec))
    stmt = stmt.limit(max(1, limit)).offset(max(0, offset))
    with engine.connect() as conn:
        result = conn.execute(stmt)
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    for col in ("ingested_at", "started_at", "finished_at"):
        if col in frame:
            frame[col] = utc(frame[col])
    for col in ("rows_total", "rows_valid", "rows_invalid", "rows_deleted", "rows_inserted", "file_size"):
        if col in frame:
            frame[col] = pd.array(frame[col], dtype="Int64")
    return frame


def count_log(engine: Engine, kind: str, flt: LogFilter = LogFilter()) -> int:
    """How many rows of the ``kind`` log match ``flt`` (for the page count)."""
    spec = LOGS[kind]
    stmt = sa.select(sa.func.count()).select_from(spec.table).where(*_where(spec, flt))
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def log_filter_options(engine: Engine, kind: str) -> dict[str, list[str]]:
    """The values each filter can take: what is in the log, plus every
    status the log can hold (so 'failed' is offered before the first failure)."""
    spec = LOGS[kind]
    t = spec.table
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for col in ("dataset", "period", "status") + (("step",) if kind == "load" else ()):
            values = conn.execute(sa.select(t.c[col]).where(t.c[col].is_not(None)).distinct()).scalars()
            out[col] = sorted(set(values))
    out["status"] = sorted(set(out["status"]) | {str(s) for s in spec.statuses})
    out["period"] = sorted(out["period"], reverse=True)  # newest month first
    return out


def failing_cells(engine: Engine, validation_id: int, *, limit: int = MAX_ERRORS) -> pd.DataFrame:
    """The row-level errors of one validation, in file order: the row as the
    analyst sees it (header = row 1), the record's primary key as the file
    gave it, the column, the check, the value."""
    t = validation_errors
    stmt = (
        sa.select(t.c.row_number, t.c.row_key, t.c.column, t.c.check, t.c.value)
        .where(t.c.validation_id == validation_id)
        .order_by(t.c.row_number.asc().nulls_first(), t.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).fetchall()
    frame = pd.DataFrame(rows, columns=["row_number", "key", "column", "check", "value"])
    frame["row_number"] = pd.array(frame["row_number"], dtype="Int64")
    return frame


def reloadable_periods(engine: Engine, datasets: Iterable[str] | None = None) -> pd.DataFrame:
    """(dataset, period) pairs with at least one accepted ingestion — only
    those have a landed file the pipeline recognised — newest period first.
    ``datasets`` limits them to the ones the config still knows."""
    t = ingestion_log
    stmt = (
        sa.select(t.c.dataset, t.c.period)
        .where(t.c.status == IngestStatus.ACCEPTED, t.c.dataset.is_not(None), t.c.period.is_not(None))
        .distinct()
    )
    if datasets is not None:
        stmt = stmt.where(t.c.dataset.in_(list(datasets)))
    with engine.connect() as conn:
        rows = conn.execute(stmt).fetchall()
    frame = pd.DataFrame(rows, columns=["dataset", "period"])
    return frame.sort_values(["dataset", "period"], ascending=[True, False], ignore_index=True)


def warehouse_is_empty(engine: Engine) -> bool:
    """True until the first file has been ingested: nothing to show yet."""
    with engine.connect() as conn:
        return conn.execute(sa.select(ingestion_log.c.id).limit(1)).first() is None


def log_rows(engine: Engine, log: str, *ids: int) -> pd.DataFrame:
    """Rows of a ``meta`` log by id, as a DataFrame (what a stage wrote)."""
    table = TABLES[log]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(table.c.id.in_(ids)).order_by(table.c.id)).all()
    return pd.DataFrame([dict(r._mapping) for r in rows], columns=list(table.c.keys()))


def log_history(engine: Engine, log: str, dataset: str, period: str, limit: int = 5,
                **where: Any) -> pd.DataFrame:
    """The newest ``limit`` rows of a log for one dataset and period."""
    table = TABLES[log]
    query = sa.select(table).where(table.c.dataset == dataset, table.c.period == period,
                                   *(table.c[k] == v for k, v in where.items()))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(table.c.id.desc()).limit(limit)).all()
    return pd.DataFrame([dict(r._mapping) for r in rows], columns=list(table.c.keys()))


def utc(values: pd.Series) -> pd.Series:
    """Timestamps as UTC. SQLite hands back naive values (written in UTC by
    the pipeline), PostgreSQL aware ones; one column type for both."""
    if values.empty:
        return pd.Series(pd.array([], dtype="datetime64[us, UTC]"), index=values.index, name=values.name)
    return pd.to_datetime(values, utc=True)

"""Everything the dashboard reads, as plain functions: an engine in, a
DataFrame out. No Streamlit here, so each function is tested against a real
warehouse without running the app, and the page code in ``app.py`` stays a
thin layout over them.

Every log query is filtered and paginated in SQL (``LIMIT``/``OFFSET``), so
the page costs the same with 100 log rows or 100,000: the browser never
receives more than one page.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline import db
from pipeline.config import Config
from pipeline.status import collect_status

# Coverage states, in the order the legend shows them.
LOADED, PENDING, FAILED, MISSING = "loaded", "pending", "failed", "missing"
STATES = (LOADED, PENDING, FAILED, MISSING)

DEFAULT_PAGE_SIZE = 100
# SPEC §5 stores at most the first 1,000 errors per validation; asking for
# more than that could never return more.
MAX_ERRORS = 1000

EMPTY_MESSAGE = "No data yet — run `python -m pipeline demo && python -m pipeline run`"

STATUS_COLUMNS = [
    "dataset", "period", "stage_rows", "core_rows", "ingestion_status",
    "validation_status", "load_status", "last_ingested_at", "last_loaded_at",
    "file_name", "error",
]


# --------------------------------------------------------------------------
# Per-period status, coverage and row counts
# --------------------------------------------------------------------------
def period_status(engine: Engine, config: Config | None = None) -> pd.DataFrame:
    """One row per (dataset, period) the warehouse knows, from
    ``pipeline.status.collect_status`` — the same numbers as
    ``python -m pipeline status``, so the dashboard and the CLI never disagree."""
    records = collect_status(engine=engine, config=config)
    frame = pd.DataFrame.from_records(records, columns=STATUS_COLUMNS) if records else pd.DataFrame(
        columns=STATUS_COLUMNS
    )
    for col in ("stage_rows", "core_rows"):
        frame[col] = pd.array(frame[col], dtype="Int64")
    for col in ("last_ingested_at", "last_loaded_at"):
        frame[col] = _utc(frame[col])
    return frame.sort_values(["dataset", "period"], ignore_index=True)


def month_range(first: str, last: str) -> list[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last`` inclusive."""
    year, month = int(first[:4]), int(first[5:7])
    end = (int(last[:4]), int(last[5:7]))
    out = []
    while (year, month) <= end:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def period_state(row: pd.Series | dict[str, Any]) -> str:
    """loaded / pending / failed for one status row.

    The latest attempt decides: a period whose newest file was rejected or
    failed a step is 'failed' even when older rows are still in stage — the
    analyst has to act on it. Rows in stage with no load logged (a migrated
    legacy warehouse) count as loaded. Accepted but not loaded is 'pending'.
    """
    def is_(key: str, value: str) -> bool:
        # pandas hands missing values back as None, NaN or pd.NA; only a real
        # string can match.
        found = row.get(key)
        return isinstance(found, str) and found == value

    if is_("ingestion_status", "rejected") or is_("validation_status", "failed") or is_("load_status", "failed"):
        return FAILED
    rows = row.get("stage_rows")
    if is_("load_status", "succeeded") or (not isinstance(row.get("load_status"), str)
                                           and rows is not None and not pd.isna(rows) and rows > 0):
        return LOADED
    return PENDING


def coverage(status: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, every month from its first to its last known period, with
    its state; a month inside that span the warehouse knows nothing of is
    'missing' — the gap an analyst must chase."""
    columns = ["dataset", "period", "state", "stage_rows", "file_name", "error"]
    frames = []
    for dataset, group in status.dropna(subset=["period"]).groupby("dataset", sort=True):
        known = group.set_index("period")
        months = month_range(known.index.min(), known.index.max())
        rows = []
        for period in months:
            if period in known.index:
                rec = known.loc[period]
                rows.append({
                    "dataset": dataset, "period": period, "state": period_state(rec),
                    "stage_rows": rec["stage_rows"], "file_name": rec["file_name"], "error": rec["error"],
                })
            else:
                rows.append({"dataset": dataset, "period": period, "state": MISSING,
                             "stage_rows": pd.NA, "file_name": None, "error": None})
        frames.append(pd.DataFrame(rows, columns=columns))
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)
    out["stage_rows"] = pd.array(out["stage_rows"], dtype="Int64")
    return out


def row_count_changes(status: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Stage row counts per dataset and period with the change from the
    previous period that has a count, and ``flagged`` where that change is
    larger than ``threshold`` (a share: 0.2 = 20 %) either way.

    The previous period *with a count* is the baseline, not the previous
    calendar month: after a missing month the analyst still wants to know
    whether the volume jumped, and the gap itself is shown as 'missing'.
    """
    cov = coverage(status)
    cov = cov[cov["state"] != MISSING].copy()
    out = []
    for _dataset, group in cov.groupby("dataset", sort=True):
        group = group.sort_values("period").copy()
        counted = group["stage_rows"].astype("Float64")
        previous = counted.ffill().shift(1)
        # A period without a count does not move the baseline and is never flagged.
        change = (counted - previous) / previous
        change = change.where(counted.notna() & previous.notna() & (previous != 0))
        group["previous_rows"] = pd.array(previous.round(), dtype="Int64")
        group["change"] = change
        group["flagged"] = (change.abs() > threshold).fillna(False).astype(bool)
        # A first delivery after an empty one (0 → n) is a real jump too.
        jumped = (previous == 0) & counted.notna() & (counted != 0)
        group.loc[jumped.fillna(False).astype(bool), "flagged"] = True
        out.append(group)
    columns = ["dataset", "period", "state", "stage_rows", "previous_rows", "change", "flagged"]
    if not out:
        return pd.DataFrame(columns=columns)
    result = pd.concat(out, ignore_index=True)
    status_core = status.set_index(["dataset", "period"])["core_rows"]
    result["core_rows"] = pd.array(
        [status_core.get((d, p), pd.NA) for d, p in zip(result["dataset"], result["period"])], dtype="Int64"
    )
    return result[["dataset", "period", "state", "stage_rows", "core_rows", "previous_rows", "change", "flagged"]]


# --------------------------------------------------------------------------
# The logs
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class LogSpec:
    table: sa.Table
    time_column: str
    statuses: tuple[str, ...]


LOGS: dict[str, LogSpec] = {
    "ingestion": LogSpec(db.ingestion_log, "ingested_at", ("accepted", "rejected")),
    "validation": LogSpec(db.validation_log, "started_at", ("passed", "failed")),
    "load": LogSpec(db.load_log, "started_at", ("succeeded", "failed")),
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
        ing = db.ingestion_log
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
            frame[col] = _utc(frame[col])
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
    out["status"] = sorted(set(out["status"]) | set(spec.statuses))
    out["period"] = sorted(out["period"], reverse=True)  # newest month first
    return out


def failed_validations(engine: Engine, flt: LogFilter = LogFilter(), *, limit: int = 200) -> pd.DataFrame:
    """The newest failed validations matching ``flt`` (status is forced to
    'failed'), with the file name: the choices for 'show its errors'."""
    return read_log(engine, "validation", LogFilter(flt.dataset, flt.period, "failed"), limit=limit)


def validation_errors(engine: Engine, validation_id: int, *, limit: int = MAX_ERRORS) -> pd.DataFrame:
    """The row-level errors of one validation, in file order: the row as the
    analyst sees it in Excel (header = row 1), the column, the check, the value."""
    t = db.validation_errors
    stmt = (
        sa.select(t.c.row_number, t.c.column, t.c.check, t.c.value)
        .where(t.c.validation_id == validation_id)
        .order_by(t.c.row_number.asc().nulls_first(), t.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).fetchall()
    frame = pd.DataFrame(rows, columns=["excel_row", "column", "check", "value"])
    frame["excel_row"] = pd.array(frame["excel_row"], dtype="Int64")
    return frame


def errors_csv(errors: pd.DataFrame) -> bytes:
    """The errors as a UTF-8 CSV with a BOM, so Excel opens accents correctly."""
    return errors.to_csv(index=False).encode("utf-8-sig")


# --------------------------------------------------------------------------
# Reload choices and emptiness
# --------------------------------------------------------------------------
def reloadable_periods(engine: Engine, datasets: Iterable[str] | None = None) -> pd.DataFrame:
    """(dataset, period) pairs with at least one accepted ingestion — only
    those have a landed file the pipeline recognised — newest period first.
    ``datasets`` limits them to the ones the config still knows."""
    t = db.ingestion_log
    stmt = (
        sa.select(t.c.dataset, t.c.period)
        .where(t.c.status == "accepted", t.c.dataset.is_not(None), t.c.period.is_not(None))
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
        return conn.execute(sa.select(db.ingestion_log.c.id).limit(1)).first() is None


def _utc(values: pd.Series) -> pd.Series:
    """Timestamps as UTC. SQLite hands back naive values (written in UTC by
    the pipeline), PostgreSQL aware ones; one column type for both."""
    if values.empty:
        return pd.Series(pd.array([], dtype="datetime64[us, UTC]"), index=values.index, name=values.name)
    return pd.to_datetime(values, utc=True)


def describe_outcome(outcome: Any) -> str:
    """One line for a reload outcome (pipeline.orchestrate.PeriodOutcome)."""
    where = f"{outcome.dataset} {outcome.period}"
    source = f" from {outcome.file_name}" if getattr(outcome, "file_name", None) else ""
    if outcome.status == "succeeded":
        before = "no rows" if outcome.rows_before is None else f"{outcome.rows_before:,} rows"
        after = "no rows" if outcome.rows_after is None else f"{outcome.rows_after:,} rows"
        return f"Reloaded {where}{source}: stage {before} → {after}."
    step = f" at {outcome.failed_step}" if outcome.failed_step else ""
    return f"Reload of {where}{source} failed{step}: {outcome.error}"


def now_utc() -> dt.datetime:
    """Now, timezone-aware in UTC (the timestamps the logs hold)."""
    return dt.datetime.now(dt.timezone.utc)

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
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.accept_headers import Accepted, accept_headers, refused_file_id
from pipeline.context import Context
from pipeline.domain.config import Config
from pipeline.domain.period import month_range
from pipeline.errors import WorkbenchError
from pipeline.orchestrate import landed_deliveries, month_states
from pipeline.settings import Settings, get_settings
from pipeline.warehouse.backends import backend_for_url
from pipeline.warehouse.engine import get_engine
from pipeline.warehouse.logview import (
    DEFAULT_PAGE_SIZE,
    LOGS,
    MAX_ERRORS,
    LogFilter,
    count_log,
    failing_cells,
    log_filter_options,
    read_log,
    reloadable_periods,
    utc,
    warehouse_is_empty,
)
from pipeline.warehouse.runlog import STATE_KEYS, MonthState, ValidationStatus
from pipeline.warehouse.runlog import validation_errors as errors_table

__all__ = ["DEFAULT_PAGE_SIZE", "LOGS", "LogFilter", "count_log", "log_filter_options", "month_range",
           "read_log", "reloadable_periods", "warehouse_is_empty"]

# Month states (pipeline.warehouse.runlog.MonthState, the same words as
# ``python -m pipeline status``), in the order the legend shows them.
# LOADED keeps its name for the page code: a month whose latest delivery is served.
LOADED, STALE, SERVING_PREVIOUS, PENDING, FAILED, MISSING = (s.value for s in (
    MonthState.PUBLISHED, MonthState.STALE, MonthState.FAILED_SERVING_PREVIOUS, MonthState.PENDING,
    MonthState.FAILED, MonthState.MISSING))
SERVED_STATES = (LOADED, STALE, SERVING_PREVIOUS)  # months whose rows are in the warehouse
RETRY_STATES = (FAILED, SERVING_PREVIOUS)  # a backfill judges their unchanged file again
BACKFILL_STATES = (MISSING, PENDING, *RETRY_STATES)

EMPTY_MESSAGE = "No data yet — run `python -m pipeline demo && python -m pipeline run`"

STATUS_COLUMNS = list(STATE_KEYS)


# --------------------------------------------------------------------------
# Is there a warehouse to read? (read-only: the dashboard never creates one)
# --------------------------------------------------------------------------
def display_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def warehouse_problem(url: str) -> str | None:
    """One line saying why the warehouse at ``url`` cannot be read, or None.

    Read-only on purpose: ``get_engine`` would create a missing SQLite file
    (and its folder) and migrate an empty database, so a mistyped
    ``WORKBENCH_DATA_DIR`` used to leave an empty warehouse behind. A SQLite
    file must exist; a server must answer and hold the migrated ``meta``
    schema.
    """
    try:
        sa_url = sa.make_url(url)
    except sa.exc.ArgumentError:
        return f"WORKBENCH_DB_URL {url!r} is not a database URL"
    path = backend_for_url(sa_url).warehouse_file(sa_url)
    if path is not None:
        if not path.is_file():
            return (f"No warehouse at {path}: run `python -m pipeline run` first, "
                    "or check WORKBENCH_DATA_DIR / WORKBENCH_DB_URL.")
    engine = get_engine(url, migrate=False)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        return f"Cannot read the warehouse {display_url(url)}: {first_line(exc)}"
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT version_num FROM meta.alembic_version")).scalar()
    except sa.exc.SQLAlchemyError:
        return (f"The warehouse {display_url(url)} has no Period Workbench tables: "
                "run `python -m pipeline migrate` (or `run`) first.")
    return None


# --------------------------------------------------------------------------
# Per-period status, coverage and row counts
# --------------------------------------------------------------------------
def period_status(engine: Engine, config: Config, settings: Settings | None = None) -> pd.DataFrame:
    """One row per (dataset, period) — gap months included — from the run
    log's month states (``runlog.month_states``), with the files now in
    ``settings``' landed folder (the environment's by default): the same
    states and numbers as ``python -m pipeline status``, so the dashboard and
    the CLI never disagree."""
    ctx = Context(settings or get_settings(), config, engine)
    records = month_states(ctx)
    frame = pd.DataFrame.from_records(records, columns=STATUS_COLUMNS) if records else pd.DataFrame(
        columns=STATUS_COLUMNS
    )
    for col in ("stage_rows", "core_rows", "rows_dropped", "rows_warned"):
        frame[col] = pd.array(frame[col], dtype="Int64")
    for col in ("last_ingested_at", "last_loaded_at"):
        frame[col] = utc(frame[col])
    return frame.sort_values(["dataset", "period"], ignore_index=True)


def period_state(row: pd.Series | dict[str, Any]) -> str:
    """The month state of one status row (derived by the run log, never here)."""
    state = row.get("state")
    return state if isinstance(state, str) else MISSING


def coverage(status: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, every month from its first to its last known period, with
    its state; a month inside that span the warehouse knows nothing of is
    'missing' — the gap an analyst must chase."""
    columns = ["dataset", "period", "state", "stage_rows", "file_name", "error"]
    known = status.dropna(subset=["period"])
    if known.empty:
        return pd.DataFrame(columns=columns)
    # Vectorised (one merge, not a lookup per month): 120 months x 10
    # datasets cost milliseconds on every page run.
    spans = known.groupby("dataset", sort=True)["period"].agg(["min", "max"])
    months = pd.DataFrame([(name, period) for name, first, last in spans.itertuples()
                           for period in month_range(first, last)], columns=["dataset", "period"])
    out = months.merge(known.drop_duplicates(["dataset", "period"])[columns], on=["dataset", "period"], how="left")
    out["state"] = [s if isinstance(s, str) else MISSING for s in out["state"]]
    out["stage_rows"] = pd.array(out["stage_rows"], dtype="Int64")
    return out[columns]


MONTH_PAGE_PATH = "month"  # st.Page(url_path="month") in workbench/app.py


def month_url(dataset: str, period: str) -> str:
    """The month page's address relative to the app's root (a deep link)."""
    return f"{MONTH_PAGE_PATH}?{urlencode({'dataset': dataset, 'period': period})}"


def coverage_grid(cov: pd.DataFrame) -> pd.DataFrame:
    """The coverage as a calendar: per cell its ``year`` (a row of the
    grid) and ``month`` (1–12, a column), and ``href``, the month page.
    Twelve columns whatever the history's length, so 120 months fit the
    width and the newest year is a row like any other."""
    periods = cov["period"].astype(str)
    is_month = periods.str.fullmatch(r"\d{4}-\d{2}")
    out = cov[is_month.to_numpy()].copy()
    out["year"] = out["period"].str[:4]
    out["month"] = out["period"].str[5:7].astype(int)
    out["href"] = [month_url(d, p) for d, p in zip(out["dataset"], out["period"])]
    return out.reset_index(drop=True)


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
    core = status[["dataset", "period", "core_rows"]].drop_duplicates(["dataset", "period"])
    result = result.drop(columns="core_rows", errors="ignore").merge(core, on=["dataset", "period"], how="left")
    result["core_rows"] = pd.array(result["core_rows"], dtype="Int64")
    return result[["dataset", "period", "state", "stage_rows", "core_rows", "previous_rows", "change", "flagged"]]


# --------------------------------------------------------------------------
# The logs (the queries are the run log's: pipeline.warehouse.logview)
# --------------------------------------------------------------------------
def log_periods(engine: Engine, kind: str, dataset: str | None) -> list[str]:
    """The periods the ``kind`` log holds for ``dataset`` (every dataset's
    when None), newest first: the Period filter's choices follow the Dataset."""
    t = LOGS[kind].table
    stmt = sa.select(t.c.period).where(t.c.period.is_not(None)).distinct()
    if dataset is not None:
        stmt = stmt.where(t.c.dataset == dataset)
    with engine.connect() as conn:
        return sorted(conn.execute(stmt).scalars(), reverse=True)


LOG_COLUMN_ORDER = {
    # What an analyst scans first; the long Error (and Source) last, so they
    # never push the file, the counts or the SHA-256 off-screen.
    "ingestion": ["id", "ingested_at", "dataset", "period", "status", "file_name", "file_size", "file_sha256",
                  "error"],
    "validation": ["id", "started_at", "seconds", "dataset", "period", "status", "file_name", "rows_total",
                   "rows_valid", "rows_invalid", "ingestion_id", "error"],
    "load": ["id", "started_at", "seconds", "step", "dataset", "period", "status", "rows_deleted",
             "rows_inserted", "source", "error"],
}


def log_table(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """A page of a log as the dashboard shows it: the duration in seconds,
    the SHA-256 shortened, the useful columns first."""
    if "finished_at" in frame:
        frame = frame.assign(seconds=_seconds(frame))
    if "file_sha256" in frame:
        frame = frame.assign(file_sha256=frame["file_sha256"].str[:12])
    return frame[[c for c in LOG_COLUMN_ORDER[kind] if c in frame]]


def entries(n: int, noun: str = "entry", plural: str = "entries") -> str:
    """'1 entry', '2 entries', '1,250 entries'."""
    return f"{n:,} {noun if n == 1 else plural}"


def failed_validations(engine: Engine, flt: LogFilter = LogFilter(), *, limit: int = 200) -> pd.DataFrame:
    """The newest failed validations matching ``flt`` (status is forced to
    'failed'), with the file name: the choices for 'show its errors'."""
    return read_log(engine, "validation", LogFilter(flt.dataset, flt.period, ValidationStatus.FAILED), limit=limit)


def validation_errors(engine: Engine, validation_id: int, *, limit: int = MAX_ERRORS) -> pd.DataFrame:
    """The row-level errors of one validation, in file order, the row named
    as the analyst sees it in Excel (header = row 1)."""
    return failing_cells(engine, validation_id, limit=limit).rename(columns={"row_number": "excel_row"})


def errors_csv(errors: pd.DataFrame) -> bytes:
    """The errors as a UTF-8 CSV with a BOM, so Excel opens accents correctly."""
    return errors.to_csv(index=False).encode("utf-8-sig")


def describe_outcome(outcome: Any) -> str:
    """One line for a reload outcome (pipeline.orchestrate.PeriodOutcome)."""
    where = f"{outcome.dataset} {outcome.period}"
    source = f" from {outcome.file_name}" if getattr(outcome, "file_name", None) else ""
    if outcome.status == "succeeded":
        before = "no rows" if outcome.rows_before is None else f"{outcome.rows_before:,} rows"
        after = "no rows" if outcome.rows_after is None else f"{outcome.rows_after:,} rows"
        dropped = getattr(outcome, "rows_dropped", 0) or 0
        tail = f", dropped {dropped:,} invalid row{'s' if dropped != 1 else ''}" if dropped else ""
        warned = getattr(outcome, "rows_warned", 0) or 0
        tail += f", kept {warned:,} row{'s' if warned != 1 else ''} with warnings" if warned else ""
        return f"Reloaded {where}{source}: stage {before} → {after}{tail}."
    step = f" at {outcome.failed_step}" if outcome.failed_step else ""
    return f"Reload of {where}{source} failed{step}: {outcome.error}"


def now_utc() -> dt.datetime:
    """Now, timezone-aware in UTC (the timestamps the logs hold)."""
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------
# One month: its attempts, its errors, its versions, a preview
# --------------------------------------------------------------------------
ATTEMPT_COLUMNS = ["started_at", "step", "status", "seconds", "rows", "file_name", "error", "log", "id"]


def month_attempts(engine: Engine, dataset: str, period: str, *, limit: int = 200) -> pd.DataFrame:
    """Every attempt at the month, newest first, from the three logs:
    ingest (ingestion_log), validate (validation_log) and each load_log step
    (load_stage, transform, publish, rollback), with its duration."""
    flt = LogFilter(dataset, period)
    ing = read_log(engine, "ingestion", flt, limit=limit)
    val = read_log(engine, "validation", flt, limit=limit)
    load = read_log(engine, "load", flt, limit=limit)
    parts = [
        pd.DataFrame({"started_at": ing["ingested_at"], "step": "ingest", "status": ing["status"],
                      "seconds": float("nan"), "rows": pd.array([pd.NA] * len(ing), dtype="Int64"),
                      "file_name": ing["file_name"], "error": ing["error"], "log": "ingestion", "id": ing["id"]}),
        pd.DataFrame({"started_at": val["started_at"], "step": "validate", "status": val["status"],
                      "seconds": _seconds(val), "rows": val["rows_total"], "file_name": val["file_name"],
                      "error": val["error"], "log": "validation", "id": val["id"]}),
        pd.DataFrame({"started_at": load["started_at"], "step": load["step"], "status": load["status"],
                      "seconds": _seconds(load), "rows": load["rows_inserted"],
                      "file_name": load["source"].map(_file_of), "error": load["error"], "log": "load",
                      "id": load["id"]}),
    ]
    out = pd.concat([p for p in parts if not p.empty], ignore_index=True) if any(
        not p.empty for p in parts) else pd.DataFrame(columns=ATTEMPT_COLUMNS)
    out = out.sort_values(["started_at", "id"], ascending=False, ignore_index=True, na_position="last")
    return out[ATTEMPT_COLUMNS]


def _seconds(frame: pd.DataFrame) -> pd.Series:
    if frame.empty:
        return pd.Series(dtype="float")
    return (frame["finished_at"] - frame["started_at"]).dt.total_seconds()


def _file_of(source: object) -> str | None:
    return Path(str(source)).name if isinstance(source, str) and source else None


def latest_validation_with_errors(engine: Engine, dataset: str, period: str) -> int | None:
    """The newest validation of the month that found invalid rows or rows
    with warnings (``severity: warn``), or failed."""
    t = LOGS["validation"].table
    stmt = (sa.select(t.c.id).where(t.c.dataset == dataset, t.c.period == period,
                                    (t.c.rows_invalid > 0) | (t.c.rows_warned > 0)
                                    | (t.c.status == ValidationStatus.FAILED))
            .order_by(t.c.id.desc()).limit(1))
    with engine.connect() as conn:
        found = conn.execute(stmt).scalar()
    return None if found is None else int(found)


def check_totals(engine: Engine, validation_id: int) -> pd.DataFrame:
    """Per check and column, how many cells failed (all stored errors, not one page)."""
    t = errors_table
    stmt = (sa.select(t.c.check, t.c.column, t.c.header, sa.func.count().label("errors"))
            .where(t.c.validation_id == validation_id).group_by(t.c.check, t.c.column, t.c.header)
            .order_by(sa.func.count().desc(), t.c.check, t.c.column))
    with engine.connect() as conn:
        rows = conn.execute(stmt).fetchall()
    frame = pd.DataFrame(rows, columns=["check", "column", "header", "errors"])
    frame["errors"] = pd.array(frame["errors"], dtype="Int64")
    return _header_or_column(frame)


def month_errors(engine: Engine, validation_id: int, *, limit: int = MAX_ERRORS) -> pd.DataFrame:
    """Row-level errors in file order: the Excel row (header = row 1), the
    row's primary key as the file gives it, the column as configured and as
    the file's header spells it, check, value."""
    t = errors_table
    stmt = (sa.select(t.c.row_number, t.c.row_key, t.c.column, t.c.header, t.c.check, t.c.value)
            .where(t.c.validation_id == validation_id)
            .order_by(t.c.row_number.asc().nulls_first(), t.c.id).limit(limit))
    with engine.connect() as conn:
        rows = conn.execute(stmt).fetchall()
    frame = pd.DataFrame(rows, columns=["excel_row", "key", "column", "header", "check", "value"])
    frame["excel_row"] = pd.array(frame["excel_row"], dtype="Int64")
    return _header_or_column(frame)


def _header_or_column(frame: pd.DataFrame) -> pd.DataFrame:
    # The log keeps a header only where the file spells it other than the
    # column (validate's _file_headers); elsewhere the file's header IS the
    # column's name, which reads better than an empty cell.
    frame["header"] = frame["header"].where(frame["header"].notna(), frame["column"])
    return frame


def header_mapping(ctx: Context, dataset: str, period: str) -> Accepted | None:
    """The ``header:`` aliases ``accept-headers --dry-run`` proposes for the
    month's refused file (pipeline.accept_headers), or None: the month's
    latest file was not refused, every column has its header, or no header
    is close enough to guess (the month's error says what is wrong)."""
    file_id = refused_file_id(ctx, dataset, period)
    if file_id is None:
        return None
    try:
        proposal = accept_headers(ctx, file_id, dry_run=True)
    except WorkbenchError:
        return None
    return proposal if proposal.mapping else None


def versions_frame(versions: list[Any]) -> pd.DataFrame:
    """corrections.history() as a table, newest first."""
    columns = ["load_id", "served", "file", "rows", "loaded_at", "kept"]
    frame = pd.DataFrame([{c: getattr(v, c) for c in columns} for v in versions], columns=columns)
    frame["loaded_at"] = utc(frame["loaded_at"])
    return frame


def sample_frame(sample: list[dict[str, Any]], key: tuple[str, ...]) -> pd.DataFrame:
    """A preview's sample of changed keys: one row per changed cell
    (key…, column, old, new)."""
    rows = []
    for entry in sample:
        keys = {k: entry.get(k) for k in key}
        for column, value in entry.items():
            if column in key or not isinstance(value, list | tuple) or len(value) != 2:
                continue
            rows.append({**{k: str(v) for k, v in keys.items()}, "column": column,
                         "old": None if value[0] is None else str(value[0]),
                         "new": None if value[1] is None else str(value[1])})
    return pd.DataFrame(rows, columns=[*key, "column", "old", "new"])


def pending_deliveries(status: pd.DataFrame, landed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Months whose landed file was not processed yet (state pending), named
    by the file in ``landed`` (``landed_months``) when it was never ingested."""
    columns = ["dataset", "period", "file_name", "state"]
    if status.empty:
        return pd.DataFrame(columns=columns)
    rows = status.loc[status["state"] == PENDING, columns].copy()
    if landed is not None and not landed.empty:
        files = landed.set_index(["dataset", "period"])["file_name"]
        rows["file_name"] = [f if isinstance(f, str) else files.get((d, p)) for d, p, f in
                             zip(rows["dataset"], rows["period"], rows["file_name"])]
    return rows.sort_values(["period", "dataset"], ascending=[False, True], ignore_index=True)


# --------------------------------------------------------------------------
# Range backfill: which months of a range to process
# --------------------------------------------------------------------------
def landed_months(settings: Settings, config: Config) -> pd.DataFrame:
    """The files in ``landed/`` whose name gives a dataset and period (the
    newest per month, as a reload would pick)."""
    ctx = Context(settings, config, engine=None)
    rows = [(d.parsed.dataset, d.parsed.period, d.path.name, d.path.stat().st_mtime)
            for d in landed_deliveries(ctx) if d.parsed is not None and d.path.is_file()]
    frame = pd.DataFrame(rows, columns=["dataset", "period", "file_name", "mtime"])
    frame = frame.sort_values("mtime").drop_duplicates(["dataset", "period"], keep="last")
    return frame.drop(columns="mtime").sort_values(["dataset", "period"], ignore_index=True)


def backfill_plan(cov: pd.DataFrame, landed: pd.DataFrame, dataset: str, first: str,
                  last: str) -> pd.DataFrame:
    """Of the coverage ``cov`` (``coverage``), the months of ``dataset`` from
    ``first`` to ``last`` that are missing,
    pending or failed, with the landed file that would fill each (None: no
    file yet, nothing to do) and what the backfill does with it."""
    first, last = min(first, last), max(first, last)
    ds = cov[(cov["dataset"] == dataset) & (cov["period"] >= first) & (cov["period"] <= last)]
    ds = ds[ds["state"].isin(BACKFILL_STATES)]
    files = landed[landed["dataset"] == dataset].set_index("period")["file_name"]
    plan = pd.DataFrame({"period": ds["period"].astype(str), "state": ds["state"].astype(str)})
    names = [files.get(p) for p in plan["period"]]
    plan["file_name"] = pd.Series(names, index=plan.index, dtype=object)
    plan["action"] = ["no file in landed/" if f is None else
                      ("process again (forced)" if s in RETRY_STATES else "process")
                      for f, s in zip(names, plan["state"])]
    return plan.sort_values("period", ignore_index=True)

"""The run log: the ``meta`` tables (SPEC §5), the words their status columns
hold, and every query that writes them or reads a month's outcome from them.
The one source of what happened to a month: the stages write here; run,
status, the dashboard and the notebooks ask here.
"""
from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.domain.config import Config
from pipeline.domain.period import month_range
from pipeline.domain.validation import value_text
from pipeline.errors import UsageError, readable
from pipeline.warehouse.engine import write_transaction
from pipeline.warehouse.tables import period_counts


class IngestStatus(StrEnum):
    """meta.ingestion_log.status: the verdict on a file's name and header row."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"


class ValidationStatus(StrEnum):
    """meta.validation_log.status; ``running`` only while a validation is in
    progress (a dead one's row is marked failed at the next start)."""

    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"


class LoadStatus(StrEnum):
    """meta.load_log.status of a period replace: it committed, or nothing changed."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Step(StrEnum):
    """meta.load_log.step: which layer a row of the load log replaced a period of."""

    LOAD_STAGE = "load_stage"
    TRANSFORM = "transform"
    PUBLISH = "publish"
    ROLLBACK = "rollback"  # stage served from an earlier version again


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
    sa.Column("config_sha256", sa.String(64)),  # the dataset config that judged the file
    sa.Column("retryable", sa.Boolean),          # not a verdict on the data: run retries it
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
    sa.Column("rows_dropped", sa.BigInteger),
    sa.Column("rows_warned", sa.BigInteger),
    sa.Column("config_sha256", sa.String(64)),
    sa.Column("retryable", sa.Boolean),
    sa.Column("runner_host", sa.String(255)),   # who holds a 'running' row
    sa.Column("runner_pid", sa.Integer),
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
    sa.Column("header", sa.Text),  # the column's header as the file spells it
    sa.Column("row_key", sa.Text),  # the failing row's primary key as the file gives it
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




corrections = sa.Table(
    "corrections", META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("dataset", sa.String(63), nullable=False),
    sa.Column("period", sa.String(7), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # reload | rollback
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("load_id", sa.Integer),
    sa.Column("rows_before", sa.BigInteger),
    sa.Column("rows_after", sa.BigInteger),
    sa.Column("added", sa.BigInteger),
    sa.Column("removed", sa.BigInteger),
    sa.Column("changed", sa.BigInteger),
    sa.Index("ix_corrections_dataset_period", "dataset", "period"),
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


# --------------------------------------------------------------------------
# validate
# --------------------------------------------------------------------------
def start_validation(engine: Engine, ingestion: Ingestion, config_sha256: str | None = None) -> int:
    """A ``running`` validation row, finished later by finish_validation. It
    names the process holding it, so a row whose process died can be found."""
    with write_transaction(engine) as conn:
        return int(conn.execute(
            sa.insert(validation_log).values(
                ingestion_id=ingestion.id, dataset=ingestion.dataset, period=ingestion.period,
                status=ValidationStatus.RUNNING, started_at=utcnow(), config_sha256=config_sha256,
                runner_host=socket.gethostname()[:255], runner_pid=os.getpid(),
            ).returning(validation_log.c.id)
        ).scalar_one())


@dataclass(frozen=True)
class Counts:
    total: int | None = None
    valid: int | None = None
    invalid: int | None = None
    dropped: int | None = None
    warned: int | None = None


def finish_validation(engine: Engine, validation_id: int, *, status: str, counts: Counts,
                      parquet: Path | None, error: str | None, failures: pd.DataFrame | None,
                      retryable: bool = False, headers: Mapping[str, str] | None = None) -> None:
    with write_transaction(engine) as conn:
        conn.execute(
            sa.update(validation_log).where(validation_log.c.id == validation_id).values(
                status=status, rows_total=counts.total, rows_valid=counts.valid, rows_invalid=counts.invalid,
                rows_dropped=counts.dropped, rows_warned=counts.warned, retryable=retryable,
                parquet_path=str(parquet) if parquet else None, error=error, finished_at=utcnow(),
            )
        )
        if failures is not None and len(failures):
            conn.execute(sa.insert(validation_errors), _error_rows(validation_id, failures, headers or {}))


def _error_rows(validation_id: int, failures: pd.DataFrame, headers: Mapping[str, str]) -> list[dict[str, Any]]:
    keys = failures["row_key"] if "row_key" in failures else [None] * len(failures)
    return [
        {"validation_id": validation_id, "row_number": int(row), "column": column,
         "check": check, "value": value_text(value), "header": headers.get(column) if column else None,
         "row_key": value_text(key)}
        for row, column, check, value, key in zip(failures["row_number"], failures["column"],
                                                  failures["check"], failures["value"], keys)
    ]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, under another user
        return True
    return True


def fail_stale_validations(engine: Engine) -> int:
    """Mark ``running`` validations whose process is gone as failed (cause
    unknown) and retryable; how many. A validation killed by the OS (out of
    memory, SIGKILL, a native crash) never finishes its own row; without this
    the month would show 'running' forever. Rows held by another host are
    left alone (we cannot see its processes); rows without a holder predate
    revision 0003 and cannot still be running code that records one."""
    host = socket.gethostname()[:255]
    with engine.connect() as conn:
        running = conn.execute(
            sa.select(validation_log.c.id, validation_log.c.runner_host, validation_log.c.runner_pid)
            .where(validation_log.c.status == ValidationStatus.RUNNING)
        ).all()
    stale = [r for r in running if r.runner_host is None or r.runner_pid is None
             or (r.runner_host == host and r.runner_pid != os.getpid() and not _process_alive(r.runner_pid))]
    if not stale:
        return 0
    with write_transaction(engine) as conn:
        for r in stale:
            holder = f"process {r.runner_pid} on {r.runner_host}" if r.runner_pid else "its process"
            conn.execute(
                sa.update(validation_log)
                .where(validation_log.c.id == r.id, validation_log.c.status == ValidationStatus.RUNNING)
                .values(status=ValidationStatus.FAILED, retryable=True, finished_at=utcnow(),
                        error=f"validation {r.id} did not finish: {holder} ended without a verdict "
                              "(cause unknown: killed, out of memory or crashed); run retries it")
            )
    return len(stale)


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
def refusal_of(engine: Engine, file_path: Path, sha: str, config_sha256: str | None = None) -> str | None:
    """Why this content of this file is not worth trying again, or None.

    Only a verdict on the data under today's config holds: a refusal that was
    not one (a disk or connection error, a process that died: ``retryable``)
    or that an earlier config gave (``config_sha256`` differs) is retried.
    """
    with engine.connect() as conn:
        last = conn.execute(
            sa.select(ingestion_log)
            .where(ingestion_log.c.file_path == readable(str(file_path.resolve())),
                   ingestion_log.c.file_sha256 == sha)
            .order_by(ingestion_log.c.id.desc()).limit(1)
        ).first()
        if last is None:
            return None
        if last.status == IngestStatus.REJECTED:
            return _verdict("was rejected", last, config_sha256)
        failed = conn.execute(
            sa.select(validation_log).where(validation_log.c.ingestion_id == last.id)
            .order_by(validation_log.c.id.desc()).limit(1)
        ).first()
    if failed is not None and failed.status == ValidationStatus.FAILED:
        return _verdict("failed validation", failed, config_sha256)
    return None


def _verdict(what: str, row: Any, config_sha256: str | None) -> str | None:
    if row.retryable or row.config_sha256 != config_sha256:
        return None
    return f"unchanged since it {what} under the same config (--force to try again): {row.error}"


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


# --------------------------------------------------------------------------
# A month's state (SPEC §10.1): the one derivation status, run's summary,
# the dashboard and the notebooks all use, so they can never disagree.
# --------------------------------------------------------------------------
class MonthState(StrEnum):
    PUBLISHED = "published"                  # the latest accepted delivery, through every stage
    STALE = "stale"                          # served, but a later step or an upstream reload is newer
    FAILED = "failed"                        # nothing served, the latest attempt failed
    FAILED_SERVING_PREVIOUS = "failed_serving_previous"  # latest attempt failed, older rows still served
    PENDING = "pending"                      # a landed file not yet processed (or changed, or re-judgeable)
    MISSING = "missing"                      # a gap month between known ones


@dataclass(frozen=True)
class LandedFile:
    """A file in ``landed/`` with the dataset and period its name gives."""
    dataset: str
    period: str
    path: Path
    sha256: str
    config_sha256: str | None = None  # today's config of its dataset


def iso_utc(value: Any) -> str | None:
    """A log timestamp as ISO 8601 UTC with its offset. SQLite hands back
    naive datetimes; the pipeline wrote them in UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        return str(value)
    value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return value.isoformat(timespec="seconds")


@dataclass
class _Logs:
    """The newest log rows per (dataset, period) that a state needs."""
    ingests: dict[tuple[str, str], Any]
    validations: dict[tuple[str, str], Any]
    last_steps: dict[tuple[str, str], Any]
    loads: dict[tuple[str, str], Any]          # newest succeeded load_stage
    transforms: dict[tuple[str, str], Any]     # newest succeeded transform
    publishes: dict[tuple[str, str], Any]      # newest succeeded publish


def _read_logs(conn: Connection) -> _Logs:
    ok = load_log.c.status == LoadStatus.SUCCEEDED
    return _Logs(
        latest_per_period(conn, ingestion_log), latest_per_period(conn, validation_log),
        latest_per_period(conn, load_log),
        latest_per_period(conn, load_log, ok, load_log.c.step == Step.LOAD_STAGE),
        latest_per_period(conn, load_log, ok, load_log.c.step == Step.TRANSFORM),
        latest_per_period(conn, load_log, ok, load_log.c.step == Step.PUBLISH),
    )


def _attempt(conn: Connection, logs: _Logs, key: tuple[str, str]) -> tuple[Any, Any, Any]:
    """The latest attempt's ingestion, validation and last step (each may be None).

    The newest of the logs by time decides: a validation newer than the
    newest ingestion belongs to the attempt even when it re-used an older
    ingestion row (warehouses written before every attempt was ingested anew).
    """
    ing, val, step = logs.ingests.get(key), logs.validations.get(key), logs.last_steps.get(key)
    if val is not None and ing is not None and val.ingestion_id != ing.id:
        if _after(val.started_at, ing.ingested_at):
            ing = conn.execute(sa.select(ingestion_log).where(ingestion_log.c.id == val.ingestion_id)).first() or ing
        else:
            val = None  # the newest ingestion has no validation (yet)
    if val is None or val.status != ValidationStatus.PASSED or (
            step is not None and not _after(step.started_at, val.started_at)):
        step = None  # the last step ran before this attempt: not part of it
    return ing, val, step


def _after(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is not None
    return _aware(a) >= _aware(b)


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _served(conn: Connection, load: Any) -> tuple[Any, Any]:
    """The validation and ingestion of the delivery the served load came from."""
    if load is None or load.file_sha256 is None:
        return None, None
    v, i = validation_log, ingestion_log
    row = conn.execute(
        sa.select(v.c.rows_dropped, v.c.rows_invalid, v.c.rows_warned, i.c.file_name)
        .select_from(v.join(i, i.c.id == v.c.ingestion_id))
        .where(v.c.dataset == load.dataset, v.c.period == load.period, v.c.status == ValidationStatus.PASSED,
               i.c.file_sha256 == load.file_sha256, v.c.started_at <= load.started_at)
        .order_by(v.c.id.desc()).limit(1)
    ).first()
    return row, row.file_name if row is not None else None


def _pending(conn: Connection, files: Iterable[LandedFile]) -> bool:
    """A landed file whose content was never ingested from that path, or
    whose refusal today's config would judge anew."""
    for f in files:
        last = conn.execute(
            sa.select(ingestion_log).where(
                ingestion_log.c.dataset == f.dataset, ingestion_log.c.period == f.period,
                ingestion_log.c.file_path == str(f.path.resolve()), ingestion_log.c.file_sha256 == f.sha256)
            .order_by(ingestion_log.c.id.desc()).limit(1)
        ).first()
        if last is None:
            return True
        verdict: Any = last
        if last.status == IngestStatus.ACCEPTED:
            verdict = conn.execute(sa.select(validation_log).where(validation_log.c.ingestion_id == last.id)
                                   .order_by(validation_log.c.id.desc()).limit(1)).first()
        if verdict is not None and verdict.status in (IngestStatus.REJECTED, ValidationStatus.FAILED) \
                and not verdict.retryable and verdict.config_sha256 != f.config_sha256:
            return True
    return False


STATE_KEYS = (
    "dataset", "period", "state", "stage_rows", "core_rows", "served_file", "served_sha256", "rows_dropped",
    "rows_warned", "ingestion_status", "validation_status", "load_status", "last_step", "file_name", "error",
    "retryable", "last_ingested_at", "last_loaded_at",
)


def month_states(engine: Engine, config: Config, landed: Iterable[LandedFile] = ()) -> list[dict[str, Any]]:
    """Every (dataset, period) the warehouse, the logs or ``landed/`` know —
    and the gap months between them — with its state and the facts behind it
    (``STATE_KEYS``), sorted by dataset (config order) and period.

    ``state`` (SPEC §10.1): ``pending`` when a landed file of the month was
    never processed, changed since, or was refused under another config;
    else the latest attempt decides — ``failed`` / ``failed_serving_previous``
    when it failed (by whether older rows are still in stage); a served month
    is ``stale`` when transform or publish has not succeeded since its last
    load or since a dataset its transform reads was loaded, else ``published``.
    The ``*_status`` fields and ``error`` describe that latest attempt.
    """
    by_month: dict[tuple[str, str], list[LandedFile]] = {}
    for f in landed:
        by_month.setdefault((f.dataset, f.period), []).append(f)
    out = []
    with engine.connect() as conn:
        logs = _read_logs(conn)
        for name, dataset in config.datasets.items():
            stage = period_counts(conn, "stage", dataset.table)
            core = period_counts(conn, "core", dataset.table)
            upstream = list(dataset.depends_on)
            known = set(stage) | set(core) | {p for (d, p) in (*logs.ingests, *logs.validations, *logs.last_steps,
                                                                 *by_month) if d == name}
            for period in _with_gaps(known):
                key = (name, period)
                if period not in known:
                    out.append(_missing(name, period))
                    continue
                # After a failed transform or publish, stage holds the new
                # delivery: what still serves an earlier load is core.
                row = _month(conn, logs, key, by_month.get(key, []), served=(period in stage, period in core))
                row.update(stage_rows=stage.get(period), core_rows=core.get(period))
                if row["state"] is None:
                    row["state"] = _served_state(logs, key, upstream) if period in stage else MonthState.PENDING
                out.append(row)
    return out


def _with_gaps(known: set[str]) -> list[str]:
    months = sorted(p for p in known if isinstance(p, str) and len(p) == 7 and p[:4].isascii()
                    and p[:4].isdigit() and p[4] == "-" and p[5:].isdigit() and "01" <= p[5:] <= "12")
    others = sorted(p for p in known if p not in months)
    return (month_range(months[0], months[-1]) if months else []) + others


def _missing(dataset: str, period: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(STATE_KEYS)
    row.update(dataset=dataset, period=period, state=MonthState.MISSING.value, rows_warned=None)
    return row


def _month(conn: Connection, logs: _Logs, key: tuple[str, str], files: list[LandedFile], *,
           served: tuple[bool, bool]) -> dict[str, Any]:
    """The facts of one month; ``state`` None when only the served rows can decide."""
    ing, val, step = _attempt(conn, logs, key)
    load = logs.loads.get(key)
    served_val, served_file = _served(conn, load)
    failed = [r for r in (step, val, ing) if r is not None
              and r.status in (IngestStatus.REJECTED, ValidationStatus.FAILED, LoadStatus.FAILED)]
    dropped = None if served_val is None else (
        served_val.rows_dropped if served_val.rows_dropped is not None else served_val.rows_invalid)
    row: dict[str, Any] = dict.fromkeys(STATE_KEYS)
    row.update(
        dataset=key[0], period=key[1],
        served_file=served_file, served_sha256=load.file_sha256 if load is not None else None,
        rows_dropped=dropped, rows_warned=(served_val.rows_warned or 0) if served_val is not None else 0,
        ingestion_status=ing.status if ing is not None else None,
        validation_status=val.status if val is not None else None,
        load_status=step.status if step is not None else None,
        last_step=step.step if step is not None else None,
        file_name=ing.file_name if ing is not None else None,
        error=failed[0].error if failed else None,
        retryable=_retryable(failed[0]) if failed else None,
        last_ingested_at=iso_utc(ing.ingested_at) if ing is not None else None,
        last_loaded_at=iso_utc(load.finished_at) if load is not None else None,
    )
    if _pending(conn, files):
        row["state"] = MonthState.PENDING.value
    elif failed:
        downstream = getattr(failed[0], "step", None) in (Step.TRANSFORM, Step.PUBLISH)
        serving = served[1] if downstream else served[0]
        row["state"] = (MonthState.FAILED_SERVING_PREVIOUS if serving else MonthState.FAILED).value
    elif served[0] and load is not None and ing is not None and ing.file_sha256 != load.file_sha256:
        row["state"] = MonthState.PENDING.value  # a newer delivery is on its way through the stages
    return row


def _retryable(row: Any) -> bool:
    """Whether ``run`` tries the failed attempt again by itself: a failed
    load, transform or publish always (the file was never published)."""
    return bool(row.retryable) if "retryable" in row._fields else True


def _served_state(logs: _Logs, key: tuple[str, str], upstream: list[str]) -> str:
    load = logs.loads.get(key)
    if load is None:  # rows from before the run log (a migrated legacy warehouse)
        return MonthState.PUBLISHED.value
    transform, publish = logs.transforms.get(key), logs.publishes.get(key)
    if transform is None or transform.id < load.id or publish is None or publish.id < transform.id:
        return MonthState.STALE.value
    for other in upstream:
        theirs = logs.loads.get((other, key[1]))
        if theirs is not None and theirs.id > transform.id:
            return MonthState.STALE.value
    return MonthState.PUBLISHED.value


# --------------------------------------------------------------------------
# Versions and corrections
# --------------------------------------------------------------------------
def stage_loads(engine: Engine, dataset: str, period: str) -> list[Any]:
    """The succeeded load_stage and rollback rows of a month, newest first."""
    with engine.connect() as conn:
        return list(conn.execute(
            sa.select(load_log).where(load_log.c.dataset == dataset, load_log.c.period == period,
                                      load_log.c.status == LoadStatus.SUCCEEDED,
                                      load_log.c.step.in_([Step.LOAD_STAGE, Step.ROLLBACK]))
            .order_by(load_log.c.id.desc())
        ))


def log_correction(engine: Engine, **values: Any) -> int:
    """One row of the corrections ledger (who changed a served month, and why)."""
    with write_transaction(engine) as conn:
        return int(conn.execute(
            sa.insert(corrections).values(**values, created_at=utcnow()).returning(corrections.c.id)
        ).scalar_one())


def landed_names(engine: Engine, dataset: str, period: str) -> dict[str, str]:
    """sha256 → the landed file name it was ingested under, for one month."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(ingestion_log.c.file_sha256, ingestion_log.c.file_name)
            .where(ingestion_log.c.dataset == dataset, ingestion_log.c.period == period)
            .order_by(ingestion_log.c.id)
        )
        return {sha: name for sha, name in rows if sha}

"""The whole pipeline per landed file: ingest → validate → load_stage →
transform → publish (``python -m pipeline run`` and ``reload``; the
dashboard's Reload button calls :func:`reload_period`).

``run`` decides "not yet processed" by content: a file is done when the last
successful load of its dataset and period came from a file with the same
sha256 and that period was published after it. A file refused earlier with
unchanged content under the same dataset config is not retried (and not
logged again); a refusal that was no verdict on the data (a disk or
connection error, a process that died) or that another config gave is.
``--force`` retries everything.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from pipeline.context import Context
from pipeline.domain.config import Config, dependency_order, dependents_of
from pipeline.domain.files import ParsedFileName, parse_and_validate_filename
from pipeline.domain.fingerprint import config_sha256
from pipeline.domain.period import parse_cli_period
from pipeline.errors import FileRefused, UsageError, WorkbenchError, readable, unexpected
from pipeline.runners.base import StageRunner
from pipeline.runners.direct import DirectRunner
from pipeline.settings import Settings
from pipeline.warehouse import runlog
from pipeline.warehouse.backends import backend_of
from pipeline.warehouse.query import check_sql_files
from pipeline.warehouse.runlog import IngestStatus, Step, ValidationStatus
from pipeline.warehouse.tables import period_count


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass
class PeriodOutcome:
    file_name: str
    dataset: str | None
    period: str | None
    status: str  # succeeded | failed | skipped
    failed_step: str | None = None
    error: str | None = None
    rows_before: int | None = None
    rows_after: int | None = None
    ingestion_id: int | None = None
    seconds: float = 0.0
    note: str = ""
    rows_dropped: int = 0  # rows left out under on_invalid_rows: drop
    rows_warned: int = 0   # rows kept that failed only severity: warn checks


def stage_rows(ctx: Context, dataset: str, period: str) -> int:
    with ctx.engine.connect() as conn:
        return period_count(conn, "stage", ctx.config.dataset(dataset).table, period)


# --------------------------------------------------------------------------
# One file through every stage
# --------------------------------------------------------------------------
def process_file(path: Path, ctx: Context, *, reuse_ingestion: int | None = None,
                 runner: StageRunner | None = None) -> PeriodOutcome:
    """Every stage for one landed file; a failure stops this file only."""
    runner = runner or DirectRunner()
    clock = time.perf_counter()
    outcome = PeriodOutcome(file_name=readable(path.name), dataset=None, period=None, status=Outcome.FAILED)
    step = "ingest"
    try:
        if reuse_ingestion is None:
            ingested = runner.ingest(path, ctx)
            outcome.ingestion_id = ingested.ingestion_id
            outcome.dataset, outcome.period = ingested.dataset, ingested.period
            if ingested.status != IngestStatus.ACCEPTED:
                raise FileRefused(ingested.error or "rejected at ingest")
        else:
            outcome.ingestion_id = reuse_ingestion
            parsed = parse_and_validate_filename(path.name, ctx.config.datasets)
            outcome.dataset, outcome.period = parsed.dataset, parsed.period
        dataset, period = outcome.dataset, outcome.period
        assert dataset and period

        step = "validate"
        validated = runner.validate(outcome.ingestion_id, ctx)
        if validated.status != ValidationStatus.PASSED or validated.parquet_path is None:
            raise FileRefused(validated.error or "validation failed")
        outcome.rows_dropped = validated.rows_dropped or 0
        outcome.rows_warned = validated.rows_warned or 0

        outcome.rows_before = stage_rows(ctx, dataset, period)
        step = "load_stage"
        runner.load_stage(Path(validated.parquet_path), period, dataset, ctx)
        step = "transform"
        runner.transform(dataset, period, ctx)
        step = "publish"
        runner.publish(dataset, period, ctx)
        outcome.rows_after = stage_rows(ctx, dataset, period)
        step = "refresh dependents"
        refreshed = []
        for other in dependents(ctx, dataset, period):
            runner.transform(other, period, ctx)
            runner.publish(other, period, ctx)
            refreshed.append(f"{other} {period}")
        if refreshed:
            outcome.note = f"refreshed {', '.join(refreshed)}"
        outcome.status = Outcome.SUCCEEDED
    except WorkbenchError as exc:
        outcome.failed_step, outcome.error = step, str(exc)
    except Exception as exc:  # one file's surprise must not stop the others
        outcome.failed_step = step
        outcome.error = unexpected(exc)
    outcome.seconds = time.perf_counter() - clock
    return outcome


def dependents(ctx: Context, dataset: str, period: str) -> list[str]:
    """Datasets that ``depends_on`` this one (directly or through others) and
    whose period is loaded: their core/mart for the period are stale after a
    reload (payments join the same month's citizens)."""
    return [other for other in dependents_of(ctx.config, dataset)
            if runlog.has_succeeded(ctx.engine, Step.LOAD_STAGE, other, period)]


def make_runner(via_notebooks: bool) -> StageRunner:
    if not via_notebooks:
        return DirectRunner()
    from pipeline.runners.notebook import NotebookRunner  # jupyter only when asked for

    return NotebookRunner()


# --------------------------------------------------------------------------
# Which files: run's content-based "not yet processed"
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    path: Path
    parsed: ParsedFileName | None  # None: the name matches no dataset


def landed_deliveries(ctx: Context) -> list[Delivery]:
    """The files in ``landed/`` with their dataset and period, in processing
    order: period first, then dependency order (``depends_on``: citizens
    before the payments that join them; else config order), unparseable
    names last."""
    landed = ctx.settings.landed_dir
    if not landed.is_dir():
        return []
    deliveries = []
    for path in landed.iterdir():
        if path.is_file() and not path.name.startswith((".", "~$")):
            try:
                parsed: ParsedFileName | None = parse_and_validate_filename(path.name, ctx.config.datasets)
            except FileRefused:
                parsed = None
            deliveries.append(Delivery(path, parsed))
    names = dependency_order(ctx.config)
    return sorted(deliveries, key=lambda d: (1, "", 0, d.path.name) if d.parsed is None
                  else (0, d.parsed.period, names.index(d.parsed.dataset), d.path.name))


def config_sha(ctx: Context, delivery: Delivery) -> str | None:
    """The fingerprint of the config that would judge the file today."""
    return None if delivery.parsed is None else config_sha256(ctx.config.dataset(delivery.parsed.dataset))


def already_done(ctx: Context, delivery: Delivery, sha: str) -> str | None:
    """Why the file needs no work (its content was loaded, or refused under
    today's config), or None."""
    refused = runlog.refusal_of(ctx.engine, delivery.path, sha, config_sha(ctx, delivery))
    if refused is not None:
        return refused
    parsed = delivery.parsed
    if parsed is not None and runlog.published_from(ctx.engine, parsed.dataset, parsed.period, sha):
        return "already loaded and published (--force to load it again)"
    return None


def landed_files(ctx: Context) -> list[runlog.LandedFile]:
    """The landed files with a dataset and period, for the month states."""
    out = []
    for d in landed_deliveries(ctx):
        if d.parsed is None:
            continue
        try:
            sha = ctx.file_sha256(d.path)
        except OSError:  # vanished or unreadable since listed: nothing to say it is pending
            continue
        out.append(runlog.LandedFile(d.parsed.dataset, d.parsed.period, d.path, sha, config_sha(ctx, d)))
    return out


def month_states(ctx: Context) -> list[dict[str, Any]]:
    """runlog.month_states for the context's warehouse, config and landed folder."""
    return runlog.month_states(ctx.engine, ctx.config, landed_files(ctx))


def run(
    *,
    dataset: str | None = None,
    period: str | None = None,
    force: bool = False,
    via_notebooks: bool = False,
    ctx: Context | None = None,
    progress: Callable[[int, int, PeriodOutcome], None] | None = None,
) -> list[PeriodOutcome]:
    """Every landed file not yet processed (or all with ``force``), through all stages."""
    ctx = ctx or Context()
    if dataset is not None:
        ctx.config.dataset(dataset)
    # Every .sql file must run on this warehouse before any file is processed.
    check_sql_files(ctx.config, backend_of(ctx.engine))
    runner = make_runner(via_notebooks)
    runlog.fail_stale_validations(ctx.engine)
    selected = [
        d for d in landed_deliveries(ctx)
        # with a filter, a name that matches no dataset belongs to no selection
        if not (dataset or period) or (
            d.parsed is not None and (not dataset or d.parsed.dataset == dataset)
            and (not period or d.parsed.period == period))
    ]
    outcomes = []
    for index, delivery in enumerate(selected, 1):
        reason = None if force else already_done(ctx, delivery, ctx.file_sha256(delivery.path))
        if reason:
            outcome = PeriodOutcome(readable(delivery.path.name), None, None, Outcome.SKIPPED, note=reason)
            if delivery.parsed is not None:
                outcome.dataset, outcome.period = delivery.parsed.dataset, delivery.parsed.period
                outcome.rows_after = stage_rows(ctx, outcome.dataset, outcome.period)
        else:
            outcome = process_file(delivery.path, ctx, runner=runner)
        outcomes.append(outcome)
        if progress:
            progress(index, len(selected), outcome)
    return outcomes


def landed_file_for(ctx: Context, dataset: str, period: str) -> Path:
    """The landed file a reload of ``dataset``/``period`` would process."""
    ctx.config.dataset(dataset)
    period = parse_cli_period(period)
    candidates = [d.path for d in landed_deliveries(ctx)
                  if d.parsed is not None and (d.parsed.dataset, d.parsed.period) == (dataset, period)]
    if not candidates:
        raise UsageError(f"no file for dataset {dataset!r} and period {period} in {ctx.settings.landed_dir}")
    # Two deliveries of one month (say .csv and .xlsx): the newest one wins.
    return max(candidates, key=lambda p: p.stat().st_mtime)


def reload_period(
    dataset: str,
    period: str,
    *,
    settings: Settings | None = None,
    config: Config | None = None,
    engine: Engine | None = None,
    via_notebooks: bool = False,
) -> PeriodOutcome:
    """Process ``dataset``/``period`` again from what is in ``landed/`` now,
    through every stage, ingest included: the log then holds one complete
    attempt (header checked under today's config), and the month's state
    shows it rather than an older ingest of the same content.
    """
    ctx = Context(settings, config, engine)
    check_sql_files(ctx.config, backend_of(ctx.engine))
    path = landed_file_for(ctx, dataset, period)
    runlog.fail_stale_validations(ctx.engine)
    return process_file(path, ctx, runner=make_runner(via_notebooks))

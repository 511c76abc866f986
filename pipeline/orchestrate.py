"""The whole pipeline per landed file: ingest → validate → load_stage →
transform → publish (``python -m pipeline run`` and ``reload``; the
dashboard's Reload button calls :func:`reload_period`).

``run`` decides "not yet processed" by content: a file is done when the last
successful load of its dataset and period came from a file with the same
sha256 and that period was published after it. A file refused earlier with
unchanged content is not retried (and not logged again); ``--force`` retries
everything.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sqlalchemy.engine import Engine

from pipeline.context import Context
from pipeline.domain.config import Config
from pipeline.domain.files import ParsedFileName, parse_and_validate_filename
from pipeline.domain.period import parse_cli_period
from pipeline.errors import FileRefused, UsageError, WorkbenchError, readable, unexpected
from pipeline.io.landed import file_sha256
from pipeline.runners.base import StageRunner
from pipeline.runners.direct import DirectRunner
from pipeline.settings import Settings
from pipeline.warehouse import runlog
from pipeline.warehouse.runlog import IngestStatus, Step, ValidationStatus
from pipeline.warehouse.tables import period_counts


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


def stage_rows(ctx: Context, dataset: str, period: str) -> int:
    with ctx.engine.connect() as conn:
        return period_counts(conn, "stage", ctx.config.dataset(dataset).table).get(period, 0)


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
    """Datasets whose transform reads ``stage.<dataset's table>`` and whose
    period is loaded: their core/mart for the period are stale after a reload
    (payments join the same month's citizens)."""
    table = f"stage.{ctx.config.dataset(dataset).table}"
    out = []
    for other in ctx.config.datasets.values():
        if other.name == dataset or other.transform is None:
            continue
        if table in other.transform.read_text(encoding="utf-8") and runlog.has_succeeded(
                ctx.engine, Step.LOAD_STAGE, other.name, period):
            out.append(other.name)
    return out


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
    order: period first, then the config's dataset order (citizens before the
    payments that join them), unparseable names last."""
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
    names = list(ctx.config.datasets)
    return sorted(deliveries, key=lambda d: (1, "", 0, d.path.name) if d.parsed is None
                  else (0, d.parsed.period, names.index(d.parsed.dataset), d.path.name))


def already_done(ctx: Context, delivery: Delivery, sha: str) -> str | None:
    """Why the file needs no work (its content was loaded or refused before), or None."""
    refused = runlog.refusal_of(ctx.engine, delivery.path, sha)
    if refused is not None:
        return refused
    parsed = delivery.parsed
    if parsed is not None and runlog.published_from(ctx.engine, parsed.dataset, parsed.period, sha):
        return "already loaded and published"
    return None


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
    runner = make_runner(via_notebooks)
    selected = [
        d for d in landed_deliveries(ctx)
        # with a filter, a name that matches no dataset belongs to no selection
        if not (dataset or period) or (
            d.parsed is not None and (not dataset or d.parsed.dataset == dataset)
            and (not period or d.parsed.period == period))
    ]
    outcomes = []
    for index, delivery in enumerate(selected, 1):
        reason = None if force else already_done(ctx, delivery, file_sha256(delivery.path))
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


def reload_period(
    dataset: str,
    period: str,
    *,
    settings: Settings | None = None,
    config: Config | None = None,
    engine: Engine | None = None,
    via_notebooks: bool = False,
) -> PeriodOutcome:
    """Process ``dataset``/``period`` again from what is in ``landed/`` now.

    A new ingestion row is written only when the file changed since its last
    accepted ingest; validate, load, transform and publish always run.
    """
    ctx = Context(settings, config, engine)
    ctx.config.dataset(dataset)
    period = parse_cli_period(period)
    candidates = [d.path for d in landed_deliveries(ctx)
                  if d.parsed is not None and (d.parsed.dataset, d.parsed.period) == (dataset, period)]
    if not candidates:
        raise UsageError(f"no file for dataset {dataset!r} and period {period} in {ctx.settings.landed_dir}")
    # Two deliveries of one month (say .csv and .xlsx): the newest one wins.
    path = max(candidates, key=lambda p: p.stat().st_mtime)
    last = runlog.last_accepted_ingestion(ctx.engine, path)
    reuse = last[0] if last is not None and last[1] == file_sha256(path) else None
    return process_file(path, ctx, reuse_ingestion=reuse, runner=make_runner(via_notebooks))

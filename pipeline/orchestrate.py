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

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline import db
from pipeline.config import Config
from pipeline.context import Context
from pipeline.errors import FileRefused, UsageError, WorkbenchError
from pipeline.settings import Settings
from pipeline.status import period_counts
from pipeline.utils.cli import format_table
from pipeline.utils.parsing import ParsedFileName, parse_and_validate_filename
from pipeline.utils.readers import file_sha256

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
                 runner: "StageRunner | None" = None) -> PeriodOutcome:
    """Every stage for one landed file; a failure stops this file only."""
    runner = runner or DirectRunner()
    clock = time.perf_counter()
    outcome = PeriodOutcome(file_name=path.name, dataset=None, period=None, status="failed")
    step = "ingest"
    try:
        if reuse_ingestion is None:
            ingested = runner.ingest(path, ctx)
            outcome.ingestion_id = ingested.ingestion_id
            outcome.dataset, outcome.period = ingested.dataset, ingested.period
            if ingested.status != "accepted":
                raise FileRefused(ingested.error or "rejected at ingest")
        else:
            outcome.ingestion_id = reuse_ingestion
            parsed = parse_and_validate_filename(path.name, ctx.config.datasets)
            outcome.dataset, outcome.period = parsed.dataset, parsed.period
        dataset, period = outcome.dataset, outcome.period
        assert dataset and period

        step = "validate"
        validated = runner.validate(outcome.ingestion_id, ctx)
        if validated.status != "passed" or validated.parquet_path is None:
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
        outcome.status = "succeeded"
    except WorkbenchError as exc:
        outcome.failed_step, outcome.error = step, str(exc)
    except Exception as exc:  # one file's surprise must not stop the others
        outcome.failed_step = step
        outcome.error = f"unexpected {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    outcome.seconds = time.perf_counter() - clock
    return outcome


def dependents(ctx: Context, dataset: str, period: str) -> list[str]:
    """Datasets whose transform reads ``stage.<dataset's table>`` and whose
    period is loaded: their core/mart for the period are stale after a reload
    (payments join the same month's citizens)."""
    from pipeline.replace_period import has_succeeded

    table = f"stage.{ctx.config.dataset(dataset).table}"
    out = []
    for other in ctx.config.datasets.values():
        if other.name == dataset or other.transform is None:
            continue
        if table in other.transform.read_text(encoding="utf-8") and has_succeeded(
                ctx.engine, "load_stage", other.name, period):
            out.append(other.name)
    return out


class StageRunner:
    """How each stage is executed: in-process calls, or papermill notebooks."""

    def ingest(self, path: Path, ctx: Context):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def validate(self, ingestion_id: int, ctx: Context):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def load_stage(self, parquet: Path, period: str, dataset: str, ctx: Context) -> None:
        raise NotImplementedError

    def transform(self, dataset: str, period: str, ctx: Context) -> None:
        raise NotImplementedError

    def publish(self, dataset: str, period: str, ctx: Context) -> None:
        raise NotImplementedError


class DirectRunner(StageRunner):
    def ingest(self, path, ctx):  # type: ignore[no-untyped-def]
        from pipeline.ingest import ingest_file

        return ingest_file(path, settings=ctx.settings, config=ctx.config, engine=ctx.engine)

    def validate(self, ingestion_id, ctx):  # type: ignore[no-untyped-def]
        from pipeline.validate import validate_ingestion

        return validate_ingestion(ingestion_id, settings=ctx.settings, config=ctx.config, engine=ctx.engine)

    def load_stage(self, parquet, period, dataset, ctx):  # type: ignore[no-untyped-def]
        from pipeline.load_stage import load_stage

        load_stage(parquet, period, dataset, settings=ctx.settings, config=ctx.config, engine=ctx.engine)

    def transform(self, dataset, period, ctx):  # type: ignore[no-untyped-def]
        from pipeline.transform import transform

        transform(dataset, period, settings=ctx.settings, config=ctx.config, engine=ctx.engine)

    def publish(self, dataset, period, ctx):  # type: ignore[no-untyped-def]
        from pipeline.publish import publish

        publish(dataset, period, settings=ctx.settings, config=ctx.config, engine=ctx.engine)


def make_runner(via_notebooks: bool) -> StageRunner:
    if not via_notebooks:
        return DirectRunner()
    from pipeline.notebook_runner import NotebookRunner

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
    path, parsed = delivery.path, delivery.parsed
    il, vl, ll = db.ingestion_log, db.validation_log, db.load_log
    with ctx.engine.connect() as conn:
        refused = conn.execute(
            sa.select(il.c.status, il.c.error, il.c.id)
            .where(il.c.file_path == str(path.resolve()), il.c.file_sha256 == sha)
            .order_by(il.c.id.desc()).limit(1)
        ).first()
        if refused is not None and refused.status == "rejected":
            return f"unchanged since it was rejected: {refused.error}"
        if refused is not None:
            failed = conn.execute(
                sa.select(vl.c.status, vl.c.error).where(vl.c.ingestion_id == refused.id)
                .order_by(vl.c.id.desc()).limit(1)
            ).first()
            if failed is not None and failed.status == "failed":
                return f"unchanged since it failed validation: {failed.error}"
        if parsed is None:
            return None
        last_load = conn.execute(
            sa.select(ll.c.file_sha256, ll.c.id)
            .where(ll.c.step == "load_stage", ll.c.status == "succeeded",
                   ll.c.dataset == parsed.dataset, ll.c.period == parsed.period)
            .order_by(ll.c.id.desc()).limit(1)
        ).first()
        if last_load is None or last_load.file_sha256 != sha:
            return None
        published = conn.execute(
            sa.select(ll.c.status)
            .where(ll.c.step == "publish", ll.c.dataset == parsed.dataset,
                   ll.c.period == parsed.period, ll.c.id > last_load.id)
            .order_by(ll.c.id.desc()).limit(1)
        ).scalar()
        return "already loaded and published" if published == "succeeded" else None


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
            outcome = PeriodOutcome(delivery.path.name, None, None, "skipped", note=reason)
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
    from pipeline.utils.parsing import parse_cli_period

    ctx = Context(settings, config, engine)
    ctx.config.dataset(dataset)
    period = parse_cli_period(period)
    candidates = [d.path for d in landed_deliveries(ctx)
                  if d.parsed is not None and (d.parsed.dataset, d.parsed.period) == (dataset, period)]
    if not candidates:
        raise UsageError(f"no file for dataset {dataset!r} and period {period} in {ctx.settings.landed_dir}")
    # Two deliveries of one month (say .csv and .xlsx): the newest one wins.
    path = max(candidates, key=lambda p: p.stat().st_mtime)
    il = db.ingestion_log
    with ctx.engine.connect() as conn:
        last = conn.execute(
            sa.select(il.c.id, il.c.file_sha256).where(il.c.file_path == str(path.resolve()),
                                                       il.c.status == "accepted")
            .order_by(il.c.id.desc()).limit(1)
        ).first()
    reuse = last.id if last is not None and last.file_sha256 == file_sha256(path) else None
    return process_file(path, ctx, reuse_ingestion=reuse, runner=make_runner(via_notebooks))


# --------------------------------------------------------------------------
# Printing
# --------------------------------------------------------------------------
def progress_line(index: int, total: int, o: PeriodOutcome) -> str:
    width = len(str(total))
    if o.status == "succeeded":
        what = f"loaded {o.rows_after} rows ({o.rows_before} before) in {o.seconds:.1f} s"
        if o.note:
            what += f"; {o.note}"
    elif o.status == "skipped":
        what = f"skipped: {o.note}"
    else:
        what = f"FAILED at {o.failed_step}: {o.error}"
    return f"[{index:>{width}}/{total}] {o.file_name}: {what}"


def summary_table(outcomes: Sequence[PeriodOutcome]) -> str:
    heads = ("file", "dataset", "period", "outcome", "rows")
    cells = [[o.file_name, o.dataset or "-", o.period or "-",
              o.status if o.status != "failed" else f"failed at {o.failed_step}",
              "" if o.rows_after is None else str(o.rows_after)] for o in outcomes]
    lines = format_table(heads, cells, right={4})
    counts = {s: sum(o.status == s for o in outcomes) for s in ("succeeded", "skipped", "failed")}
    lines.append(f"{counts['succeeded']} loaded, {counts['skipped']} skipped, {counts['failed']} failed")
    return "\n".join(lines)


def print_outcomes(outcomes: Sequence[PeriodOutcome]) -> None:
    print(summary_table(outcomes))
    for o in outcomes:
        if o.status == "failed":
            print(f"error: {error_line(o)}", file=sys.stderr)


def error_line(o: PeriodOutcome) -> str:
    """The failure as one line that names the file once."""
    error = o.error or "failed"
    return error if error.startswith(o.file_name) else f"{o.file_name}: {error}"

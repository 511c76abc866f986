"""The dashboard's jobs (workbench/jobs.py): preview a reload, reload with
a reason, roll back, process new files, backfill a range of months — the
same pipeline calls as the CLI, submitted from a button callback and
reported as one line each (a backfill: one line per month).

Every reload or rollback started here is recorded in ``meta.corrections``
with actor ``dashboard``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from pipeline import corrections
from pipeline.context import Context
from pipeline.domain.config import Config
from pipeline.errors import WorkbenchError
from pipeline.io.config_file import load_config
from pipeline.io.landed import file_sha256
from pipeline.orchestrate import PeriodOutcome, landed_file_for, reload_period, run, stage_rows
from pipeline.settings import Settings
from pipeline.warehouse.engine import get_engine
from workbench import data, jobs

ACTOR = "dashboard"


def _drop_caches(_job: jobs.Job) -> None:
    # Counts, states and logs must show what the job changed on every tab.
    st.cache_data.clear()


jobs.on_finish(_drop_caches)


def session_id() -> str | None:
    """The browser tab (Streamlit session) running this script, if any."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def track(job: jobs.Job | None) -> None:
    """Remember a job this tab submitted (None: a repeated click, dropped):
    its outcome is shown first, and the page repaints when it ends even if
    it ends before the page is drawn again."""
    if job is None:
        return
    st.session_state.last_job = job.id
    st.session_state.setdefault("jobs_seen_active", set()).add(job.id)


def outcome_result(outcome: PeriodOutcome) -> jobs.Result:
    text = data.describe_outcome(outcome)
    return jobs.Result(outcome.status == "succeeded", text, note=outcome.note or "", rows_after=outcome.rows_after)


def submit_reload(settings: Settings, config: Config, dataset: str, period: str, reason: str) -> jobs.Job | None:
    """Reload the month from ``landed/`` as a job, recorded with ``reason``."""
    def work() -> jobs.Result:
        ctx = Context(settings, config)
        return outcome_result(corrections.reload_with_reason(ctx, dataset, period, reason, actor=ACTOR))

    return jobs.submit("reload", dataset, period, f"Reload of {dataset} {period}", work,
                       session=session_id(), scope=settings.db_url)


def submit_rollback(settings: Settings, config: Config, dataset: str, period: str, to: int | None,
                    reason: str) -> jobs.Job | None:
    """Serve an earlier version of the month again, as a job."""
    def work() -> jobs.Result:
        ctx = Context(settings, config)
        version, change = corrections.rollback(ctx, dataset, period, to=to, reason=reason, actor=ACTOR)
        rows = stage_rows(ctx, dataset, period)
        deps = corrections.downstream_tables(ctx, ctx.config.dataset(dataset), period)
        return jobs.Result(True, f"Rolled back {dataset} {period} to load {version.load_id}"
                                 f"{f' ({version.file})' if version.file else ''}: stage "
                                 f"{change.rows_before:,} rows → {rows:,} rows.",
                           note=f"rebuilt {', '.join(deps)}" if deps else "", rows_after=rows)

    return jobs.submit("rollback", dataset, period, f"Roll back of {dataset} {period}", work,
                       session=session_id(), scope=settings.db_url)


def submit_process(settings: Settings, config: Config) -> jobs.Job | None:
    """``python -m pipeline run``: every landed file not yet processed."""
    def work() -> jobs.Result:
        outcomes = run(ctx=Context(settings, config))
        return process_result(outcomes)

    return jobs.submit("process", None, None, "Processing new files", work,
                       session=session_id(), scope=settings.db_url)


def process_result(outcomes: list[PeriodOutcome]) -> jobs.Result:
    done = [o for o in outcomes if o.status != "skipped"]
    failed = [o for o in done if o.status != "succeeded"]
    if not done:
        return jobs.Result(True, "No new files to process.")
    names = ", ".join(f"{o.dataset} {o.period}" if o.dataset else o.file_name for o in done)
    text = f"Processed {len(done)} file{'s' if len(done) != 1 else ''} ({names}): {len(done) - len(failed)} loaded"
    if failed:
        text += f", {len(failed)} failed — " + "; ".join(data.describe_outcome(o) for o in failed[:3])
    notes = "; ".join(o.note for o in done if o.note)
    return jobs.Result(not failed, text + ".", note=notes)


def submit_process_month(settings: Settings, config_path: Path, dataset: str, period: str) -> jobs.Job | None:
    """Process the month's landed file again, every stage from ingest, under
    the config as it is on disk now (after the month page accepted header
    aliases into it): ``python -m pipeline reload`` for one month, as a job."""
    def work() -> jobs.Result:
        outcome = reload_period(dataset, period, settings=settings, config=load_config(config_path))
        return process_result([outcome])

    return jobs.submit("process", dataset, period, f"Processing {dataset} {period}", work,
                       session=session_id(), scope=settings.db_url)


# --------------------------------------------------------------------------
# Preview: what a reload would change (reads only)
# --------------------------------------------------------------------------
def landed_sha(ctx: Context, dataset: str, period: str) -> str | None:
    """The content hash of the file a reload of the month would process."""
    try:
        return file_sha256(landed_file_for(ctx, dataset, period))
    except (WorkbenchError, OSError):
        return None


def preview_payload(ctx: Context, dataset: str, period: str) -> dict[str, Any]:
    """corrections.preview as a dict with the landed file's sha256 (so an
    approval can check it still loads what was seen), or ok False and the
    one-line reason (no landed file, a file the reload would refuse)."""
    sha = landed_sha(ctx, dataset, period)
    try:
        return {"ok": True, **corrections.preview(ctx, dataset, period).as_dict(), "sha256": sha}
    except WorkbenchError as exc:
        return {"ok": False, "text": str(exc)}


def submit_preview(settings: Settings, config: Config, dataset: str, period: str) -> jobs.Job | None:
    """The preview as a job in the month's lane: it waits for a reload of
    the month queued before it, and never blocks the page that asked."""
    def work() -> jobs.Result:
        # Read-only engine: a preview never creates or migrates a warehouse.
        ctx = Context(settings, config, get_engine(settings.db_url, migrate=False))
        payload = preview_payload(ctx, dataset, period)
        if not payload["ok"]:
            return jobs.Result(False, f"Preview of {dataset} {period}: {payload['text']}", payload=payload)
        changed = "?" if payload["changed"] is None else f"{payload['changed']:,}"
        return jobs.Result(True, f"Preview of {dataset} {period} from {payload['file_name']}: "
                                 f"{payload['rows_before']:,} rows now → {payload['rows_after']:,} after "
                                 f"(+{payload['added']:,} −{payload['removed']:,} ~{changed}).",
                           payload=payload)

    return jobs.submit("preview", dataset, period, f"Preview of {dataset} {period}", work,
                       session=session_id(), scope=settings.db_url)


# --------------------------------------------------------------------------
# Backfill: a range of missing or failed months, one job
# --------------------------------------------------------------------------
def submit_backfill(settings: Settings, config: Config, dataset: str, months: Sequence[tuple[str, str]],
                    span: tuple[str, str]) -> jobs.Job | None:
    """Process the (period, state) ``months`` of ``dataset`` in order as one
    job: ``python -m pipeline run --dataset D --period P`` each, forced for a
    failed month (its unchanged file would else be skipped as judged)."""
    label = f"Backfill of {dataset} {span[0]}…{span[1]}"

    def work() -> jobs.Result:
        ctx = Context(settings, config)
        outcomes: list[PeriodOutcome] = []
        for index, (period, state) in enumerate(months, 1):
            jobs.report(f"{index} of {len(months)}: {dataset} {period}")
            outcomes += run(ctx=ctx, dataset=dataset, period=period, force=state in data.RETRY_STATES)
        return backfill_result(label, outcomes)

    return jobs.submit("backfill", dataset, None, label, work, session=session_id(), scope=settings.db_url)


def backfill_result(label: str, outcomes: list[PeriodOutcome]) -> jobs.Result:
    """One line for the job, one per month processed."""
    lines = tuple(_month_line(o) for o in outcomes)
    loaded = sum(o.status == "succeeded" for o in outcomes)
    failed = sum(o.status == "failed" for o in outcomes)
    if not outcomes:
        return jobs.Result(True, f"{label}: nothing to process.")
    n = len(outcomes)
    text = f"{label}: {n} month{'s' if n != 1 else ''} processed, {loaded} loaded, {failed} failed."
    notes = "; ".join(o.note for o in outcomes if o.note and o.status == "succeeded")
    return jobs.Result(failed == 0, text, note=notes, details=lines)


def _month_line(o: PeriodOutcome) -> str:
    where = f"{o.period or '?'} ({o.file_name})"
    if o.status == "succeeded":
        rows = "no rows" if o.rows_after is None else f"{o.rows_after:,} rows"
        return f"{where}: loaded, {rows} in stage"
    if o.status == "skipped":
        return f"{where}: skipped, {o.note}"
    return f"{where}: failed at {o.failed_step}: {o.error}"

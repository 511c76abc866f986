"""The dashboard's jobs (workbench/jobs.py): reload with a reason, roll
back, process new files — the same pipeline calls as the CLI, submitted from
a button callback and reported as one line each.

Every reload or rollback started here is recorded in ``meta.corrections``
with actor ``dashboard``.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from pipeline import corrections
from pipeline.context import Context
from pipeline.domain.config import Config
from pipeline.io.config_file import load_config
from pipeline.orchestrate import PeriodOutcome, reload_period, run, stage_rows
from pipeline.settings import Settings
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

"""What every page starts with: the warehouse read once for this run, the
title, and the shared sidebar (where the data comes from, Refresh, Reload).

Each page calls :func:`open_page` first, inside its own run, rather than
``app.py`` drawing these before ``page.run()``: elements drawn outside the
page are lost by Streamlit's AppTest after the first rerun, and the tests
must see the page as a browser does.
"""
from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa
import streamlit as st

from pipeline.errors import WorkbenchError
from pipeline.settings import get_settings
from workbench import data, jobs, tasks, ui
from workbench.ui import CACHE_TTL_S, View, cached_reloadable

log = logging.getLogger("workbench")


def read_view() -> View:
    """The settings, config and per-period status; a bad config or an
    unreadable (or missing) warehouse stops the page with one line and a
    Retry button, no traceback. Checked on every run, uncached, so a
    warehouse that goes away mid-session is noticed at once."""
    settings = get_settings()
    url = settings.db_url
    try:
        mtime = ui.config_mtime(settings.config_path)
        config = ui.get_config(str(settings.config_path), mtime)
        problem = data.warehouse_problem(url)
        if problem is None:
            empty = ui.cached_is_empty(url)
            status, as_of = ui.cached_status(url, str(settings.config_path), mtime)
    except WorkbenchError as exc:
        problem = str(exc)
    except sa.exc.SQLAlchemyError as exc:
        problem = f"Cannot read the warehouse {data.display_url(url)}: {data.first_line(exc)}"
    if problem is not None:
        st.error(problem, icon=":material/error:")
        ui.retry_button("retry_warehouse")
        st.stop()
    return View(settings, url, data.display_url(url), config, status, empty, as_of)


def open_page() -> View:
    """Title, warehouse, shared sidebar: the start of every page."""
    st.title("Period Workbench")
    view = read_view()
    shared_sidebar(view)
    return view


def shared_sidebar(view: View) -> None:
    with st.sidebar:
        st.markdown("### :material/calendar_month: Period Workbench")
        st.caption(f"Warehouse `{view.shown_url}`  \nData `{view.settings.data_dir}`")
        if view.as_of is not None:
            st.caption(f"Data as of {view.as_of:%H:%M:%S} UTC (read again every {CACHE_TTL_S} s, "
                       "after every job, or on Refresh)")
        # A callback, not `if st.button(...)`: it runs before the script, so
        # the run it triggers already reads the warehouse afresh.
        st.button("Refresh", icon=":material/sync:", key="refresh", on_click=st.cache_data.clear,
                  help=f"Read the warehouse again (it is re-read every {CACHE_TTL_S} s anyway)")
        st.divider()
        jobs_panel(view.url)
        if not view.empty:
            with ui.guard("reload panel"):
                reload_panel(view)


def jobs_panel(url: str) -> None:
    """Running and queued jobs of every tab, and the latest outcomes; polls
    itself every 2 s while a job is active (a fragment rerun, not the page)."""
    active = bool(jobs.active_jobs(url))
    st.fragment(run_every=2 if active else None)(_jobs_fragment)(url)


def _jobs_fragment(url: str) -> None:
    active = jobs.active_jobs(url)
    seen = st.session_state.setdefault("jobs_seen_active", set())
    finished_now = {j for j in seen if (job := jobs.get(j)) is not None and not job.active}
    if finished_now:
        # A job this tab watched has ended: repaint the whole page so the
        # counts, states and logs show it (the caches were dropped on finish).
        st.session_state.jobs_seen_active = seen - finished_now
        st.rerun(scope="app")
    seen.update(j.id for j in active)
    with st.container(key="jobs"):
        for job in active:
            since = job.started_at or job.submitted_at
            verb = "running" if job.status == jobs.JobStatus.RUNNING else "queued"
            progress = f" — {job.progress}" if job.progress and verb == "running" else ""
            st.info(f"{job.label}: {verb} since {since:%H:%M:%S} UTC{progress}", icon=":material/hourglass_top:")
        for job in recent_outcomes(url):
            show_outcome(job)


def recent_outcomes(url: str, most: int = 3) -> list[jobs.Job]:
    """This tab's latest job, then the newest other jobs finished in the
    last ten minutes on this warehouse."""
    mine = st.session_state.get("last_job")
    since = data.now_utc() - dt.timedelta(minutes=10)
    # A preview changed nothing: its month page shows it, not the sidebar.
    finished = [j for j in jobs.all_jobs(url) if not j.active and j.result is not None and j.kind != "preview"
                and (j.id == mine or (j.finished_at is not None and j.finished_at >= since))]
    finished.sort(key=lambda j: (j.id != mine, -j.id))
    return finished[:most]


def show_outcome(job: jobs.Job) -> None:
    result = job.result
    if result is None:
        return
    (st.success if result.ok else st.error)(result.message)
    if result.details:  # one line per month of a backfill
        st.markdown("\n".join(f"- {line}" for line in result.details))
    tail = f" · {result.note}" if result.note else ""
    st.caption(f"Finished {job.finished_at:%H:%M:%S} UTC{tail}")


def _submit_reload(view: View) -> None:
    # A callback: it runs once per click, before the script, so a rerun or a
    # refresh never submits the job again.
    dataset = st.session_state.get("reload_dataset")
    period = st.session_state.get("reload_period")
    if not dataset or not period:
        return
    reason = (st.session_state.get("reload_reason") or "").strip() or "reloaded from the dashboard"
    job = tasks.submit_reload(view.settings, view.config, dataset, period, reason)
    tasks.track(job)  # None: this tab's earlier click for the month is still queued or running


def reload_panel(view: View) -> None:
    st.subheader("Reload a period")
    st.caption("Processes the month's file in `landed/` again: ingest → validate → "
               "load stage → transform → publish. Runs as a job: it goes on if you close the tab. "
               "To see what would change first, open the month's page (Preview).")
    choices = cached_reloadable(view.url, tuple(view.config.datasets))
    if choices.empty:
        st.caption("Nothing to reload yet: no file has been accepted.")
        return
    dataset = st.selectbox("Dataset", list(dict.fromkeys(choices["dataset"])), key="reload_dataset")
    st.selectbox("Period", choices.loc[choices["dataset"] == dataset, "period"].tolist(),
                 key="reload_period", help="Only months with an accepted file are offered.")
    st.text_input("Reason", key="reload_reason", placeholder="reloaded from the dashboard",
                  help="Recorded in meta.corrections with actor 'dashboard'")
    st.button("Reload", key="reload", type="primary", icon=":material/refresh:", width="stretch",
              on_click=_submit_reload, args=(view,))

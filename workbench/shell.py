"""What every page starts with: the warehouse read once for this run, the
title, and the shared sidebar (where the data comes from, Refresh, Reload).

Each page calls :func:`open_page` first, inside its own run, rather than
``app.py`` drawing these before ``page.run()``: elements drawn outside the
page are lost by Streamlit's AppTest after the first rerun, and the tests
must see the page as a browser does.
"""
from __future__ import annotations

import logging

import sqlalchemy as sa
import streamlit as st

from pipeline.errors import WorkbenchError
from pipeline.settings import get_settings
from workbench import data, ui
from workbench.reload import ReloadBusy, run_reload, running_reload
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
            status = ui.cached_status(url, str(settings.config_path), mtime)
    except WorkbenchError as exc:
        problem = str(exc)
    except sa.exc.SQLAlchemyError as exc:
        problem = f"Cannot read the warehouse {data.display_url(url)}: {data.first_line(exc)}"
    if problem is not None:
        st.error(problem, icon=":material/error:")
        ui.retry_button("retry_warehouse")
        st.stop()
    return View(settings, url, data.display_url(url), config, status, empty)


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
        # A callback, not `if st.button(...)`: it runs before the script, so
        # the run it triggers already reads the warehouse afresh.
        st.button("Refresh", icon=":material/sync:", key="refresh", on_click=st.cache_data.clear,
                  help=f"Read the warehouse again (it is re-read every {CACHE_TTL_S} s anyway)")
        st.divider()
        if not view.empty:
            with ui.guard("reload panel"):
                reload_panel(view)


def _request_reload() -> None:
    # A click that arrives while a reload of this session is still running is
    # queued by Streamlit and replayed once that run ends; its callback then
    # finds the state 'done' (not 'idle') and is dropped instead of starting
    # a second reload.
    if st.session_state.get("reload_state", "idle") == "idle":
        st.session_state.reload_state = "requested"


def _perform_reload(dataset: str, period: str) -> dict[str, object]:
    """Run the reload; every outcome, even a crash, becomes a message."""
    try:
        outcome = run_reload(dataset, period)
    except ReloadBusy as exc:
        return {"kind": "busy", "text": str(exc)}
    except WorkbenchError as exc:  # e.g. the landed file was removed
        return {"kind": "failed", "text": f"Reload of {dataset} {period} failed: {exc}"}
    except Exception as exc:  # an analyst gets a line; the server log the traceback
        log.exception("reload of %s %s crashed", dataset, period)
        return {"kind": "failed", "text": f"Reload of {dataset} {period} failed unexpectedly: "
                                          f"{type(exc).__name__}: {exc}"}
    return {
        "kind": outcome.status, "text": data.describe_outcome(outcome), "dataset": dataset,
        "period": period, "rows_before": outcome.rows_before, "rows_after": outcome.rows_after,
        "at": data.now_utc(),
    }


def _show_outcome(outcome: dict[str, object]) -> None:
    show = {"succeeded": st.success, "busy": st.warning}.get(str(outcome["kind"]), st.error)
    show(str(outcome["text"]))
    at = outcome.get("at")
    if at is not None:
        st.caption(f"Finished {at:%H:%M:%S} UTC")
    if outcome["kind"] == "succeeded" and outcome.get("rows_after") is not None:
        before = outcome.get("rows_before")
        after = int(str(outcome["rows_after"]))
        st.metric(f"Stage rows {outcome['dataset']} {outcome['period']}", f"{after:,}",
                  delta=None if before is None else after - int(str(before)))


def reload_panel(view: View) -> None:
    st.subheader("Reload a period")
    st.caption("Processes the month's file in `landed/` again: ingest → validate → "
               "load stage → transform → publish.")
    choices = cached_reloadable(view.url, tuple(view.config.datasets))
    if choices.empty:
        st.caption("Nothing to reload yet: no file has been accepted.")
        return
    busy = st.session_state.setdefault("reload_state", "idle") == "requested"
    # Only the button is disabled while a reload runs: Streamlit ignores a new
    # value sent for a disabled widget, which would reload the previous choice.
    dataset = st.selectbox("Dataset", list(dict.fromkeys(choices["dataset"])), key="reload_dataset")
    period = st.selectbox("Period", choices.loc[choices["dataset"] == dataset, "period"].tolist(),
                          key="reload_period", help="Only months with an accepted file are offered.")
    other = running_reload()
    st.button("Reload", key="reload", type="primary", icon=":material/refresh:", width="stretch",
              disabled=busy or other is not None, on_click=_request_reload)
    if busy:
        # The button above is already on the page, disabled, before the
        # (blocking) reload starts. The outcome is stored before any other
        # Streamlit call, because a queued rerun may stop this run at the next one.
        with st.spinner(f"Reloading {dataset} {period}…"):
            try:
                st.session_state.reload_outcome = _perform_reload(dataset, period)
            finally:
                st.session_state.reload_state = "done"
                st.cache_data.clear()  # counts and logs must show the reload
        st.rerun()  # repaint everything (the page above ran before the reload)
    if other is not None:
        st.info(f"Reload of {other.dataset} {other.period} running (started "
                f"{other.started_at:%H:%M:%S} UTC).")
    outcome = st.session_state.get("reload_outcome")
    if outcome:
        _show_outcome(outcome)
    # This run painted the enabled button and the outcome: clicks from now on are new requests.
    st.session_state.reload_state = "idle"

"""Month page: one dataset and period, deep-linkable as
``/month?dataset=citizens&period=2025-02``: its state, every attempt with
durations, the error and the row-level errors, the version history with
Roll back, and Preview → Approve with a reason → Reload (jobs)."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from pipeline.context import Context
from pipeline.warehouse.engine import get_engine
from workbench import data, ui
from workbench.month_actions import corrections_panel
from workbench.shell import open_page

_WHEN = "YYYY-MM-DD HH:mm:ss"
ATTEMPT_COLUMNS: dict[str, Any] = {
    "started_at": st.column_config.DatetimeColumn("Started (UTC)", format=_WHEN),
    "step": "Step", "status": "Status",
    "seconds": st.column_config.NumberColumn("Seconds", format="%.2f"),
    "rows": st.column_config.NumberColumn("Rows", format="localized"),
    "file_name": "File", "error": st.column_config.TextColumn("Error", width="large"),
    "log": "Log", "id": st.column_config.NumberColumn("#", width="small"),
}


def context(view: ui.View) -> Context:
    # Read-only engine: the dashboard never creates or migrates a warehouse.
    return Context(view.settings, view.config, get_engine(view.url, migrate=False))


# --------------------------------------------------------------------------
# Which month: the query string first, then the pickers
# --------------------------------------------------------------------------
def pick_month(view: ui.View) -> tuple[str, str] | None:
    status = view.status
    datasets = [d for d in view.config.datasets if d in set(status["dataset"])]
    if not datasets:
        st.info(data.EMPTY_MESSAGE, icon=":material/inbox:")
        return None
    wanted = (st.query_params.get("dataset"), st.query_params.get("period"))
    if st.session_state.get("month_link") != wanted:  # a (new) link was opened
        st.session_state.month_link = wanted
        if wanted[0] in datasets:
            st.session_state.month_dataset = wanted[0]
            st.session_state.month_period = wanted[1]
    cols = st.columns([2, 2, 5])
    dataset = cols[0].selectbox("Dataset", datasets, key="month_dataset")
    periods = sorted(status.loc[status["dataset"] == dataset, "period"].dropna(), reverse=True)
    if st.session_state.get("month_period") not in periods:
        st.session_state.month_period = periods[0] if periods else None
    period = cols[1].selectbox("Period", periods, key="month_period")
    if period is None:
        return None
    # Keep the address bar on this month, so the page can be shared.
    st.query_params.update({"dataset": dataset, "period": period})
    st.session_state.month_link = (dataset, period)
    return dataset, period


def header(view: ui.View, dataset: str, period: str) -> None:
    row = view.status[(view.status["dataset"] == dataset) & (view.status["period"] == period)]
    rec: dict[str, Any] = row.iloc[0].to_dict() if not row.empty else {}
    state = data.period_state(rec)
    st.markdown(f"### {dataset} · {period}")
    cols = st.columns(5)
    cols[0].metric("State", state)
    cols[1].metric("Stage rows", _count(rec.get("stage_rows")))
    cols[2].metric("Core rows", _count(rec.get("core_rows")))
    # Of the served load's validation: rows left out (on_invalid_rows: drop)
    # and rows kept that failed only severity: warn checks.
    cols[3].metric("Rows dropped", _count(rec.get("rows_dropped")), help="invalid rows left out of the served load")
    cols[4].metric("Rows warned", _count(rec.get("rows_warned")),
                   help="rows served that failed only severity: warn checks (listed in meta.validation_errors)")
    served = rec.get("served_file")
    st.caption(f":{_colour(state)}[:material/circle:] Served file `{served}`" if isinstance(served, str)
               else f":{_colour(state)}[:material/circle:] Nothing served")
    error = rec.get("error")
    if isinstance(error, str) and error:
        st.error(error, icon=":material/error:")


def _colour(state: str) -> str:
    return {"published": "green", "stale": "orange", "pending": "blue", "failed": "red",
            "failed_serving_previous": "violet"}.get(state, "gray")


def _count(value: object) -> str:
    return "—" if value is None or pd.isna(value) else f"{int(str(value)):,}"


def attempts(view: ui.View, dataset: str, period: str) -> None:
    st.markdown("#### Attempts")
    frame = ui.cached_attempts(view.url, dataset, period)
    if frame.empty:
        st.caption("No attempt yet: the month has never been delivered.")
        return
    st.container(key="month_attempts").dataframe(
        ui.styled(frame, ["status"]), hide_index=True, width="stretch", column_config=ATTEMPT_COLUMNS,
        placeholder="—")


def errors(view: ui.View, dataset: str, period: str) -> None:
    validation_id = ui.cached_latest_invalid(view.url, dataset, period)
    if validation_id is None:
        return
    st.markdown(f"#### Invalid rows and warnings (validation {validation_id})")
    totals = ui.cached_check_totals(view.url, validation_id)
    st.container(key="month_checks").dataframe(totals, hide_index=True, width="stretch", column_config={
        "check": "Check", "column": "Column", "header": "Header in the file",
        "errors": st.column_config.NumberColumn("Errors", format="localized")})
    cells = ui.cached_month_errors(view.url, validation_id)
    st.container(key="month_errors").dataframe(cells, hide_index=True, width="stretch", column_config={
        "excel_row": st.column_config.NumberColumn("Row", help="as in Excel: the header is row 1"),
        "key": st.column_config.TextColumn("Key", help="the row's primary key as the file gives it"),
        "column": "Column", "header": "Header", "check": "Check", "value": "Value"})
    st.download_button("Download errors (CSV)", data.errors_csv(cells), key="month_errors_csv",
                       file_name=f"{dataset}_{period}_errors.csv", mime="text/csv")


def render() -> None:
    view = open_page()
    with ui.guard("month"):
        picked = pick_month(view)
        if picked is None:
            return
        dataset, period = picked
        header(view, dataset, period)
        left, right = st.columns([3, 2], gap="large")
        with left:
            attempts(view, dataset, period)
            errors(view, dataset, period)
        with right:
            corrections_panel(view, context(view), dataset, period)


if __name__ == "__main__":  # run by st.navigation (as __main__), not on import
    render()

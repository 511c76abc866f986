"""Overview page: headline numbers, the coverage grid, and per dataset its
row counts as a table and a chart."""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from pipeline.domain.config import Config
from workbench import data, tasks, ui
from workbench.charts import COUNT_VIEWS, counts_chart, coverage_chart
from workbench.shell import open_page

MONTH_PAGE = "views/month.py"
COUNTS_COLUMNS = {
    "period": st.column_config.TextColumn("Period"),
    "state": st.column_config.TextColumn("State"),
    "stage_rows": st.column_config.NumberColumn("Stage rows", format="localized"),
    "core_rows": st.column_config.NumberColumn("Core rows", format="localized"),
    "change": st.column_config.NumberColumn("Change", format="%+.1f %%", help="vs. the previous month with a count"),
}


# --------------------------------------------------------------------------
# Computed once per read of the warehouse, not on every rerun: a rerun (a
# click, a new tab) with 120 months x 5 datasets spent most of its time
# re-deriving these frames and converting six Altair charts to Vega-Lite
# (Altair validates every spec); see tests/benchmarks/bench_dashboard.py.
# --------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=32)
def summaries(status: pd.DataFrame, threshold: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(coverage, row-count changes) of one status frame."""
    return data.coverage(status), data.row_count_changes(status, threshold)


def _vega_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    # Streamlit's own conversion (theme, data as Arrow), so the cached spec
    # draws exactly as st.altair_chart(chart) would. It is private: should a
    # Streamlit release drop it, Altair's plain spec (data inline) draws too.
    try:
        from streamlit.elements.vega_charts import _convert_altair_to_vega_lite_spec
    except ImportError:
        return dict(chart.to_dict())
    return dict(_convert_altair_to_vega_lite_spec(chart))  # type: ignore[arg-type]


@st.cache_data(show_spinner=False, max_entries=32)
def coverage_spec(cov: pd.DataFrame) -> dict[str, Any]:
    return _vega_spec(coverage_chart(cov))


@st.cache_data(show_spinner=False, max_entries=128)
def counts_spec(rows: pd.DataFrame, months: list[str], threshold: float, view: str) -> dict[str, Any]:
    return _vega_spec(counts_chart(rows, months, threshold, view))


def kpis(status: pd.DataFrame, cov: pd.DataFrame) -> None:
    counts = cov["state"].value_counts()

    def months(states: frozenset[str] | set[str]) -> str:
        return f"{int(sum(counts.get(s, 0) for s in states)):,}"

    last = status["last_loaded_at"].dropna().max() if not status.empty else None
    cols = st.columns([2, 2, 2, 2, 3])
    cols[0].metric("Datasets", f"{cov['dataset'].nunique():,}")
    cols[1].metric("Months loaded", months(ui.LOADED_STATES))
    cols[2].metric("Months failed", months(ui.FAILED_STATES))
    cols[3].metric("Months missing", months({data.MISSING}))
    has_last = last is not None and not pd.isna(last)
    cols[4].metric("Last load (UTC)", pd.Timestamp(last).strftime("%d %b %H:%M") if has_last else "—",
                   help=ui.when(last) if has_last else "nothing loaded yet")


def _notes(ds_cov: pd.DataFrame, rows: pd.DataFrame, threshold: float) -> list[str]:
    notes = []
    for state in (data.MISSING, *sorted(ui.FAILED_STATES)):
        periods = ds_cov.loc[ds_cov["state"] == state, "period"].tolist()
        if periods:
            notes.append(f"**{state}:** {ui.listing(periods)}")
    flagged = rows.loc[rows["flagged"], "period"].tolist()
    if flagged:
        notes.append(f"**changed > {threshold:.0%}:** {ui.listing(sorted(flagged))}")
    return notes


def _flagged_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Row backgrounds for the Styler, built at once (not a callback per row)."""
    styles = pd.DataFrame("", index=table.index, columns=table.columns)
    styles.loc[table["flagged"].to_numpy(dtype=bool)] = "background-color: #fff3e0"
    return styles


def counts_table(name: str, rows: pd.DataFrame, threshold: float) -> None:
    table = rows[["period", "state", "stage_rows", "core_rows", "change", "flagged"]].copy()
    table["change"] = table["change"].astype("float") * 100
    styled = table.style.apply(_flagged_rows, axis=None).map(
        lambda v: "" if v == data.MISSING else f"color: {ui.state_color(v)}; font-weight: 600", subset=["state"])
    # Keyed containers name the tables for tests and page styling
    # (st.dataframe's own key is dropped when it has no selection).
    st.container(key=f"counts_{name}").dataframe(
        styled, hide_index=True, width="stretch", height=min(36 + 35 * len(table), 388), placeholder="—",
        column_config={**COUNTS_COLUMNS, "flagged": st.column_config.CheckboxColumn(
            "Flag", help=f"row count moved more than {threshold:.0%}")},
    )


def month_link(name: str, ds_cov: pd.DataFrame) -> None:
    """Pick a month of the dataset and open its page (a real link: shareable)."""
    periods = sorted(ds_cov.loc[ds_cov["state"] != data.MISSING, "period"], reverse=True)
    if not periods:
        return
    states = dict(zip(ds_cov["period"], ds_cov["state"]))  # one lookup per option, not a filter
    cols = st.columns([2, 2, 6], vertical_alignment="bottom")
    period = cols[0].selectbox("Open a month", periods, key=f"open_month_{name}",
                               format_func=lambda p: f"{p} · {states.get(p, data.MISSING)}")
    cols[1].page_link(MONTH_PAGE, label=f"{name} {period}", icon=":material/open_in_new:",
                      query_params={"dataset": name, "period": period})


def new_deliveries(view: ui.View) -> None:
    """Landed files not processed yet, and the button that processes them
    (the same code as ``python -m pipeline run``, as a job)."""
    pending = data.pending_deliveries(view.status, data.landed_months(view.settings, view.config))
    if pending.empty:
        return
    with st.container(border=True):
        st.markdown(f"#### :material/move_to_inbox: New deliveries ({len(pending):,})")
        st.caption("Files in `landed/` that were not processed yet (state **pending**).")
        st.container(key="new_deliveries").dataframe(
            pending, hide_index=True, width="stretch", height=min(36 + 35 * len(pending), 248),
            column_config={"dataset": "Dataset", "period": "Period", "file_name": "File", "state": "State"})
        st.button("Process new files", key="process_new", type="primary", icon=":material/play_arrow:",
                  on_click=_process_new, args=(view,),
                  help="Runs `python -m pipeline run` as a job: every landed file not processed yet")


def _process_new(view: ui.View) -> None:
    job = tasks.submit_process(view.settings, view.config)
    tasks.track(job)


def backfill_panel(view: ui.View, cov: pd.DataFrame) -> None:
    """Pick a dataset and a range of months; the missing, pending and failed
    months in it that have a file in ``landed/`` are processed as ONE job
    (``run`` per month, forced for a failed one)."""
    datasets = sorted(cov["dataset"].unique())
    with st.expander("Backfill a range of months", icon=":material/event_repeat:"):
        cols = st.columns([2, 5], vertical_alignment="bottom")
        # Another dataset has other months: its range starts from all of them.
        dataset = cols[0].selectbox("Dataset", datasets, key="backfill_dataset", bind="query-params",
                                    on_change=lambda: st.session_state.pop("backfill_range", None))
        months = sorted(cov.loc[cov["dataset"] == dataset, "period"].astype(str))
        first, last = cols[1].select_slider("Months", months, value=(months[0], months[-1]),
                                            key="backfill_range") if len(months) > 1 else (months[0],) * 2
        plan = data.backfill_plan(cov, data.landed_months(view.settings, view.config), dataset, first, last)
        todo = plan[plan["file_name"].notna()]
        if plan.empty:
            st.caption(f"No missing, pending or failed month of {dataset} between {first} and {last}.")
            return
        st.container(key="backfill_plan").dataframe(
            plan, hide_index=True, width="stretch", height=min(36 + 35 * len(plan), 248),
            column_config={"period": "Period", "state": "State", "file_name": "File in landed/",
                           "action": "Backfill will"})
        n = len(todo)
        st.button(f"Process {n} month{'s' if n != 1 else ''}", key="backfill", type="primary",
                  icon=":material/play_arrow:", disabled=n == 0, on_click=_backfill,
                  args=(view, dataset, list(zip(todo["period"], todo["state"])), (first, last)),
                  help="One job: `python -m pipeline run --dataset … --period …` per month, in order")


def _backfill(view: ui.View, dataset: str, months: list[tuple[str, str]], span: tuple[str, str]) -> None:
    tasks.track(tasks.submit_backfill(view.settings, view.config, dataset, months, span))


def dataset_section(name: str, cov: pd.DataFrame, changes: pd.DataFrame, config: Config,
                    threshold: float, chart_view: str = COUNT_VIEWS[0]) -> None:
    ds_cov = cov[cov["dataset"] == name]
    rows = changes[changes["dataset"] == name].sort_values("period", ascending=False)
    st.divider()
    st.markdown(f"#### {name}")
    desc = config.datasets[name].description if name in config.datasets else ""
    st.caption(" · ".join(([desc] if desc else []) + _notes(ds_cov, rows, threshold)))
    month_link(name, ds_cov)
    left, right = st.columns([5, 6], gap="large")
    with left:
        counts_table(name, rows, threshold)
    with right:
        months = data.month_range(ds_cov["period"].min(), ds_cov["period"].max())
        st.vega_lite_chart(spec=counts_spec(rows, months, threshold, chart_view), width="stretch")


def render() -> None:
    view = open_page()
    with ui.guard("overview"):
        body(view)


def body(view: ui.View) -> None:
    if view.empty and view.status.empty:
        st.info(data.EMPTY_MESSAGE, icon=":material/inbox:")
        return
    with st.sidebar:
        threshold = st.slider("Flag row-count changes above", 0, 100, 20, step=5, format="%d %%",
                              key="threshold", bind="query-params",
                              help="Share of the previous month's stage rows") / 100
    st.caption("Monthly extracts → validated Parquet → period-partitioned warehouse")
    cov, changes = summaries(view.status, threshold)
    kpis(view.status, cov)
    new_deliveries(view)
    if view.status.empty:
        st.info("Files were ingested but no period is in the warehouse yet.")
        return
    st.markdown("#### Coverage")
    st.caption("Every month between a dataset's first and last delivery. **missing** = no file "
               "arrived; **failed** = the latest file was refused or a step failed; "
               "**pending** = accepted, not loaded yet.")
    st.caption("Years as rows, newest on top; click a cell to open its month.")
    st.container(key="coverage_grid").vega_lite_chart(spec=coverage_spec(cov), width="content")
    backfill_panel(view, cov)
    chart_view = st.segmented_control(
        "Row counts", COUNT_VIEWS, default=COUNT_VIEWS[0], key="counts_view", required=True,
        bind="query-params", help="% change and log scale keep one very large month from "
                                  "flattening the others") or COUNT_VIEWS[0]
    for name in sorted(cov["dataset"].unique()):
        dataset_section(name, cov, changes, view.config, threshold, chart_view)


if __name__ == "__main__":  # run by st.navigation (as __main__), not on import
    render()

"""Period Workbench dashboard: ``streamlit run workbench/app.py``.

Reads the same settings as the pipeline (WORKBENCH_DB_URL, WORKBENCH_CONFIG,
WORKBENCH_DATA_DIR). All queries live in ``workbench/data.py``; this file is
layout only. Views are lazy tabs: only the open one runs its queries.
"""
from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

# `streamlit run workbench/app.py` puts workbench/ itself on sys.path, not the
# project root, and the workbench package is not installed. Importing it as
# `workbench.*` (never as a bare `data`) keeps ONE copy of each module per
# process — which the process-wide reload lock in workbench/reload.py needs.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import altair as alt  # noqa: E402
import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import streamlit as st  # noqa: E402

from pipeline.domain.config import Config  # noqa: E402
from pipeline.errors import WorkbenchError  # noqa: E402
from pipeline.io.config_file import load_config  # noqa: E402
from pipeline.settings import get_settings  # noqa: E402
from pipeline.warehouse.engine import get_engine  # noqa: E402
from workbench import data  # noqa: E402
from workbench.reload import ReloadBusy, run_reload, running_reload  # noqa: E402

log = logging.getLogger("workbench")

# Cached reads expire so runs made from the CLI show up without a click; the
# Refresh button and every reload clear them at once.
CACHE_TTL_S = 30
PAGE_SIZE = data.DEFAULT_PAGE_SIZE
VIEWS = ["Overview", "Ingestion log", "Validation log", "Load log"]
STATE_COLORS = {  # coverage legend: colour-blind-safe, 'missing' recedes
    data.LOADED: "#2e7d32", data.PENDING: "#1e88e5", data.FAILED: "#d81b60", data.MISSING: "#cfd8dc",
}
STATUS_COLORS = {"rejected": "#c62828", "failed": "#c62828", "accepted": "#2e7d32",
                 "passed": "#2e7d32", "succeeded": "#2e7d32"}


# --------------------------------------------------------------------------
# Cached reads (keyed by the URL so two warehouses never share an entry)
# --------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def get_config(path: str, mtime: float) -> Config:
    # mtime in the key: an edited config is read again without a restart.
    return load_config(Path(path))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_status(url: str, config_path: str, mtime: float) -> pd.DataFrame:
    return data.period_status(get_engine(url), get_config(config_path, mtime))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_is_empty(url: str) -> bool:
    return data.warehouse_is_empty(get_engine(url))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_options(url: str, kind: str) -> dict[str, list[str]]:
    return data.log_filter_options(get_engine(url), kind)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_count(url: str, kind: str, dataset: str | None, period: str | None,
                 status: str | None, step: str | None) -> int:
    return data.count_log(get_engine(url), kind, data.LogFilter(dataset, period, status, step))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_log(url: str, kind: str, dataset: str | None, period: str | None, status: str | None,
               step: str | None, offset: int) -> pd.DataFrame:
    flt = data.LogFilter(dataset, period, status, step)
    return data.read_log(get_engine(url), kind, flt, limit=PAGE_SIZE, offset=offset)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_failed(url: str, dataset: str | None, period: str | None) -> pd.DataFrame:
    return data.failed_validations(get_engine(url), data.LogFilter(dataset, period))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_errors(url: str, validation_id: int) -> pd.DataFrame:
    return data.validation_errors(get_engine(url), validation_id)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached_reloadable(url: str, datasets: tuple[str, ...]) -> pd.DataFrame:
    return data.reloadable_periods(get_engine(url), datasets)


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------
def _any(value: str | None) -> str:
    return "All" if value is None else value


def _status_style(value: object) -> str:
    color = STATUS_COLORS.get(str(value))
    return f"color: {color}; font-weight: 600" if color else ""


def _styled(frame: pd.DataFrame, status_cols: list[str]) -> pd.io.formats.style.Styler | pd.DataFrame:
    cols = [c for c in status_cols if c in frame]
    if frame.empty or not cols:
        return frame
    return frame.style.map(_status_style, subset=cols)


def _listing(periods: list[str], most: int = 12) -> str:
    # 100 months of failures must not turn the caption into a wall of text.
    shown = ", ".join(periods[:most])
    return shown if len(periods) <= most else f"{shown} … and {len(periods) - most} more"


def _when(value: object) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------
# Sidebar: settings, refresh, reload
# --------------------------------------------------------------------------
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


def reload_panel(url: str, config: Config) -> None:
    st.subheader("Reload a period")
    st.caption("Processes the month's file in `landed/` again: ingest → validate → "
               "load stage → transform → publish.")
    choices = cached_reloadable(url, tuple(config.datasets))
    if choices.empty:
        st.caption("Nothing to reload yet: no file has been accepted.")
        return
    state = st.session_state.setdefault("reload_state", "idle")
    busy = state == "requested"
    datasets = list(dict.fromkeys(choices["dataset"]))
    # Only the button is disabled while a reload runs: Streamlit ignores a new
    # value sent for a disabled widget, which would reload the previous choice.
    dataset = st.selectbox("Dataset", datasets, key="reload_dataset")
    periods = choices.loc[choices["dataset"] == dataset, "period"].tolist()
    period = st.selectbox("Period", periods, key="reload_period",
                          help="Only months with an accepted file are offered.")
    other = running_reload()
    st.button("Reload", key="reload", type="primary", icon=":material/refresh:", width="stretch",
              disabled=busy or other is not None, on_click=_request_reload)

    if busy:
        # The button above is already on the page, disabled, before the
        # (blocking) reload starts. The outcome is stored before any other
        # Streamlit call, because a queued rerun may stop this run at the
        # next one.
        with st.spinner(f"Reloading {dataset} {period}…"):
            try:
                st.session_state.reload_outcome = _perform_reload(dataset, period)
            finally:
                st.session_state.reload_state = "done"
                st.cache_data.clear()  # counts and logs must show the reload
        st.rerun()  # repaint everything (the overview above ran before the reload)

    if other is not None:
        st.info(f"Reload of {other.dataset} {other.period} running (started "
                f"{other.started_at:%H:%M:%S} UTC).")
    outcome = st.session_state.get("reload_outcome")
    if outcome:
        show = {"succeeded": st.success, "busy": st.warning}.get(str(outcome["kind"]), st.error)
        show(str(outcome["text"]))
        if outcome.get("at") is not None:
            st.caption(f"Finished {outcome['at']:%H:%M:%S} UTC")
        if outcome["kind"] == "succeeded" and outcome.get("rows_after") is not None:
            before = outcome.get("rows_before")
            after = int(outcome["rows_after"])
            st.metric(f"Stage rows {outcome['dataset']} {outcome['period']}", f"{after:,}",
                      delta=None if before is None else after - int(before))
    # This run painted the enabled button and the outcome: clicks from now on are new requests.
    st.session_state.reload_state = "idle"


# --------------------------------------------------------------------------
# Overview
# --------------------------------------------------------------------------
def coverage_chart(cov: pd.DataFrame) -> alt.Chart:
    frame = cov.assign(stage_rows=cov["stage_rows"].astype("float"),
                       file_name=cov["file_name"].astype(object).where(cov["file_name"].notna(), "—"),
                       error=cov["error"].astype(object).where(cov["error"].notna(), ""))
    months = data.month_range(frame["period"].min(), frame["period"].max())
    return (
        alt.Chart(frame)
        .mark_rect(stroke="white", strokeWidth=2, cornerRadius=3)
        .encode(
            x=alt.X("period:O", scale=alt.Scale(domain=months), title=None,
                    axis=alt.Axis(labelAngle=-60 if len(months) > 12 else 0, orient="top")),
            y=alt.Y("dataset:N", title=None),
            color=alt.Color("state:N", title="State",
                            scale=alt.Scale(domain=list(STATE_COLORS), range=list(STATE_COLORS.values())),
                            legend=alt.Legend(orient="bottom", direction="horizontal")),
            tooltip=[alt.Tooltip("dataset:N"), alt.Tooltip("period:O"), alt.Tooltip("state:N"),
                     alt.Tooltip("stage_rows:Q", title="stage rows", format=","),
                     alt.Tooltip("file_name:N", title="file"), alt.Tooltip("error:N")],
        )
        .properties(height=alt.Step(34))
    )


def counts_chart(rows: pd.DataFrame, months: list[str], threshold: float) -> alt.Chart:
    label = f"changed > {threshold:.0%}"
    frame = rows.assign(
        stage_rows=rows["stage_rows"].astype("float"),
        previous_rows=rows["previous_rows"].astype("float"),
        change=rows["change"].astype("float"),
        marker=[label if f else ("latest attempt failed" if s == data.FAILED else "within threshold")
                for f, s in zip(rows["flagged"], rows["state"])],
    )
    domain = ["within threshold", label, "latest attempt failed"]
    colors = ["#90a4ae", "#f57c00", "#d81b60"]
    base = alt.Chart(frame).encode(
        x=alt.X("period:O", scale=alt.Scale(domain=months), title=None,
                axis=alt.Axis(labelAngle=-60 if len(months) > 12 else 0)),
        color=alt.Color("marker:N", title=None, scale=alt.Scale(domain=domain, range=colors),
                        legend=alt.Legend(orient="bottom")),
        tooltip=[alt.Tooltip("period:O"), alt.Tooltip("stage_rows:Q", title="stage rows", format=","),
                 alt.Tooltip("previous_rows:Q", title="previous", format=","),
                 alt.Tooltip("change:Q", format="+.1%"), alt.Tooltip("state:N")],
    )
    bars = base.mark_bar(cornerRadiusTopLeft=2, cornerRadiusTopRight=2).encode(
        y=alt.Y("stage_rows:Q", title="stage rows"))
    # A failed month with nothing in stage has no bar; a marker on the axis
    # keeps it from looking like a quiet month.
    failed = base.transform_filter("!isValid(datum.stage_rows)").mark_point(
        shape="triangle-up", filled=True, size=110, yOffset=-6).encode(y=alt.datum(0))
    return (bars + failed).properties(height=260)


def overview(status: pd.DataFrame, config: Config, threshold: float) -> None:
    cov = data.coverage(status)
    changes = data.row_count_changes(status, threshold)
    st.markdown("#### Coverage")
    st.caption("Every month between a dataset's first and last delivery. **missing** = no file "
               "arrived; **failed** = the latest file was refused or a step failed; "
               "**pending** = accepted, not loaded yet.")
    st.altair_chart(coverage_chart(cov), width="stretch")

    for name in sorted(cov["dataset"].unique()):
        ds_cov = cov[cov["dataset"] == name]
        rows = changes[changes["dataset"] == name].sort_values("period", ascending=False)
        st.divider()
        st.markdown(f"#### {name}")
        desc = config.datasets[name].description if name in config.datasets else ""
        notes = []
        for state in (data.MISSING, data.FAILED):
            periods = ds_cov.loc[ds_cov["state"] == state, "period"].tolist()
            if periods:
                notes.append(f"**{state}:** {_listing(periods)}")
        flagged = rows.loc[rows["flagged"], "period"].tolist()
        if flagged:
            notes.append(f"**changed > {threshold:.0%}:** {_listing(sorted(flagged))}")
        st.caption(" · ".join([desc] + notes) if desc else " · ".join(notes))

        left, right = st.columns([5, 6], gap="large")
        with left:
            table = rows[["period", "state", "stage_rows", "core_rows", "change", "flagged"]].copy()
            table["change"] = table["change"].astype("float") * 100
            styled = table.style.apply(
                lambda r: ["background-color: #fff3e0" if r["flagged"] else ""] * len(r), axis=1
            ).map(lambda v: f"color: {STATE_COLORS[v]}; font-weight: 600" if v in STATE_COLORS
                  and v != data.MISSING else "", subset=["state"])
            # Keyed containers name the tables for tests and page styling
            # (st.dataframe's own key is dropped when it has no selection).
            st.container(key=f"counts_{name}").dataframe(
                styled, hide_index=True, width="stretch", height=min(36 + 35 * len(table), 388), placeholder="—",
                column_config={
                    "period": st.column_config.TextColumn("Period"),
                    "state": st.column_config.TextColumn("State"),
                    "stage_rows": st.column_config.NumberColumn("Stage rows", format="localized"),
                    "core_rows": st.column_config.NumberColumn("Core rows", format="localized"),
                    "change": st.column_config.NumberColumn("Change", format="%+.1f %%",
                                                            help="vs. the previous month with a count"),
                    "flagged": st.column_config.CheckboxColumn(
                        "Flag", help=f"row count moved more than {threshold:.0%}"),
                },
            )
        with right:
            months = data.month_range(ds_cov["period"].min(), ds_cov["period"].max())
            st.altair_chart(counts_chart(rows, months, threshold), width="stretch")


# --------------------------------------------------------------------------
# Logs
# --------------------------------------------------------------------------
LOG_COLUMNS: dict[str, dict[str, object]] = {
    "ingestion": {
        "id": st.column_config.NumberColumn("#", width="small"),
        "ingested_at": st.column_config.DatetimeColumn("Ingested (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "dataset": "Dataset", "period": "Period", "file_name": "File", "status": "Status",
        "error": st.column_config.TextColumn("Error", width="large"),
        "file_size": st.column_config.NumberColumn("Bytes", format="localized"),
        "file_sha256": st.column_config.TextColumn("SHA-256", help="first 12 hex digits"),
    },
    "validation": {
        "id": st.column_config.NumberColumn("#", width="small"),
        "started_at": st.column_config.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "dataset": "Dataset", "period": "Period", "file_name": "File", "status": "Status",
        "rows_total": st.column_config.NumberColumn("Rows", format="localized"),
        "rows_valid": st.column_config.NumberColumn("Valid", format="localized"),
        "rows_invalid": st.column_config.NumberColumn("Invalid", format="localized"),
        "error": st.column_config.TextColumn("Error", width="large"),
        "ingestion_id": st.column_config.NumberColumn("Ingestion #", width="small"),
    },
    "load": {
        "id": st.column_config.NumberColumn("#", width="small"),
        "started_at": st.column_config.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "step": "Step", "dataset": "Dataset", "period": "Period", "status": "Status",
        "rows_deleted": st.column_config.NumberColumn("Deleted", format="localized"),
        "rows_inserted": st.column_config.NumberColumn("Inserted", format="localized"),
        "error": st.column_config.TextColumn("Error", width="large"),
        "source": "Source",
    },
}


def log_view(url: str, kind: str) -> tuple[str | None, str | None]:
    """Filters, a page of the log newest first, and a pager. Returns the
    dataset and period filters (the validation view reuses them)."""
    opts = cached_options(url, kind)
    cols = st.columns(4 if kind == "load" else 3)
    dataset = cols[0].selectbox("Dataset", [None, *opts["dataset"]], format_func=_any, key=f"{kind}_dataset")
    period = cols[1].selectbox("Period", [None, *opts["period"]], format_func=_any, key=f"{kind}_period")
    status = cols[2].selectbox("Status", [None, *opts["status"]], format_func=_any, key=f"{kind}_status")
    step = None
    if kind == "load":
        step = cols[3].selectbox("Step", [None, *opts["step"]], format_func=_any, key="load_step")

    total = cached_count(url, kind, dataset, period, status, step)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = 1
    if pages > 1:
        page = min(st.pagination(pages, key=f"{kind}_page"), pages)
    frame = cached_log(url, kind, dataset, period, status, step, (page - 1) * PAGE_SIZE)
    if "file_sha256" in frame:
        frame = frame.assign(file_sha256=frame["file_sha256"].str[:12])
    if "parquet_path" in frame:
        frame = frame.drop(columns=["parquet_path", "finished_at"])
    if kind == "load":
        frame = frame.drop(columns=["finished_at"])
    first = 0 if total == 0 else (page - 1) * PAGE_SIZE + 1
    st.caption(f"{total:,} entries, newest first — showing {first:,}–{first + len(frame) - 1 if total else 0:,}")
    st.container(key=f"{kind}_table").dataframe(  # type: ignore[call-overload]
        _styled(frame, ["status"]), hide_index=True, width="stretch", placeholder="",
        column_config=LOG_COLUMNS[kind])
    return dataset, period


def validation_errors_view(url: str, dataset: str | None, period: str | None) -> None:
    st.markdown("#### Row-level errors of a failed validation")
    failed = cached_failed(url, dataset, period)
    if failed.empty:
        st.caption("No failed validation matches the dataset and period filters.")
        return
    labels = {
        int(r.id): f"#{r.id} · {r.dataset} {r.period} · {r.file_name or '?'} · "
                   f"{0 if pd.isna(r.rows_invalid) else int(r.rows_invalid):,} invalid rows · {_when(r.started_at)}"
        for r in failed.itertuples()
    }
    chosen = st.selectbox("Failed validation", list(labels), format_func=labels.__getitem__,
                          key="failed_validation", help="Newest first; follows the dataset and period filters.")
    row = failed.loc[failed["id"] == chosen].iloc[0]
    if isinstance(row["error"], str) and row["error"]:
        st.error(row["error"])
    errors = cached_errors(url, int(chosen))
    if errors.empty:
        st.caption("No row-level errors were recorded (the file failed as a whole).")
        return
    more = " (the first 1,000 are kept)" if len(errors) >= data.MAX_ERRORS else ""
    st.caption(f"{len(errors):,} failing cells{more}. Rows are numbered as in Excel: header = row 1.")
    st.container(key="errors_table").dataframe(errors, hide_index=True, width="stretch", column_config={
        "excel_row": st.column_config.NumberColumn("Excel row", format="%d", width="small"),
        "column": "Column", "check": "Check", "value": "Value",
    })
    st.download_button(
        "Download these errors as CSV", data.errors_csv(errors), icon=":material/download:",
        file_name=f"validation_errors_{row['dataset']}_{row['period']}_{chosen}.csv",
        mime="text/csv", key="errors_csv", on_click="ignore",
    )


# --------------------------------------------------------------------------
# Page
# --------------------------------------------------------------------------
def kpis(status: pd.DataFrame) -> None:
    cov = data.coverage(status)
    counts = cov["state"].value_counts()
    last = status["last_loaded_at"].dropna().max() if not status.empty else None
    cols = st.columns([2, 2, 2, 2, 3])
    cols[0].metric("Datasets", f"{cov['dataset'].nunique():,}")
    cols[1].metric("Months loaded", f"{int(counts.get(data.LOADED, 0)):,}")
    cols[2].metric("Months failed", f"{int(counts.get(data.FAILED, 0)):,}")
    cols[3].metric("Months missing", f"{int(counts.get(data.MISSING, 0)):,}")
    has_last = last is not None and not pd.isna(last)
    cols[4].metric("Last load (UTC)", pd.Timestamp(last).strftime("%d %b %H:%M") if has_last else "—",
                   help=_when(last) if has_last else "nothing loaded yet")


def main() -> None:
    st.set_page_config(page_title="Period Workbench", page_icon=":material/calendar_month:", layout="wide")
    settings = get_settings()
    url = settings.db_url
    shown_url = sa.make_url(url).render_as_string(hide_password=True) if "://" in url else url

    st.title("Period Workbench")
    try:
        mtime = settings.config_path.stat().st_mtime if settings.config_path.exists() else 0.0
        config = get_config(str(settings.config_path), mtime)
        get_engine(url)  # connects, and migrates a new warehouse (SPEC §6)
        empty = cached_is_empty(url)
        status = cached_status(url, str(settings.config_path), mtime)
    except WorkbenchError as exc:  # a bad config or URL: one line, no traceback
        st.error(str(exc))
        st.stop()
    except sa.exc.SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0]
        st.error(f"Cannot read the warehouse {shown_url}: {first}")
        st.stop()

    with st.sidebar:
        st.markdown("### :material/calendar_month: Period Workbench")
        st.caption(f"Warehouse `{shown_url}`  \nData `{settings.data_dir}`")
        # A callback, not `if st.button(...)`: it runs before the script, so
        # the run it triggers already reads the warehouse afresh.
        st.button("Refresh", icon=":material/sync:", key="refresh", on_click=st.cache_data.clear,
                  help=f"Read the warehouse again (it is re-read every {CACHE_TTL_S} s anyway)")
        threshold = st.slider("Flag row-count changes above", 0, 100, 20, step=5, format="%d %%",
                              key="threshold", help="Share of the previous month's stage rows") / 100
        st.divider()
        if not empty:
            reload_panel(url, config)

    if empty and status.empty:
        st.info(data.EMPTY_MESSAGE, icon=":material/inbox:")
        return

    st.caption("Monthly extracts → validated Parquet → period-partitioned warehouse")
    kpis(status)
    # Lazy tabs: only the open view queries the warehouse. Bound to the URL
    # (?view=Validation+log) so a view can be bookmarked or linked.
    tabs = st.tabs(VIEWS, key="view", on_change="rerun", bind="query-params")
    views = dict(zip(VIEWS, tabs))
    with views["Overview"]:
        if views["Overview"].open:
            if status.empty:
                st.info("Files were ingested but no period is in the warehouse yet.")
            else:
                overview(status, config, threshold)
    with views["Ingestion log"]:
        if views["Ingestion log"].open:
            log_view(url, "ingestion")
    with views["Validation log"]:
        if views["Validation log"].open:
            dataset, period = log_view(url, "validation")
            st.divider()
            validation_errors_view(url, dataset, period)
    with views["Load log"]:
        if views["Load log"].open:
            log_view(url, "load")


main()

"""Logs page: the ingestion, validation and load logs (newest first,
filtered, paged in SQL) and the row-level errors of a failed validation."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from workbench import data, ui
from workbench.shell import open_page

VIEWS = ["Ingestion log", "Validation log", "Load log"]
_WHEN = "YYYY-MM-DD HH:mm:ss"
# Columns every log shows, then each log's own (the log's table order decides
# the display order; this only labels and formats).
_COMMON: dict[str, object] = {
    "id": st.column_config.NumberColumn("#", width="small"),
    "seconds": st.column_config.NumberColumn("Seconds", format="%.2f", help="how long the step took"),
    "dataset": "Dataset", "period": "Period", "status": "Status",
    "error": st.column_config.TextColumn("Error", width="large"),
}


def _rows(label: str) -> object:
    return st.column_config.NumberColumn(label, format="localized")


LOG_COLUMNS: dict[str, dict[str, object]] = {
    "ingestion": {
        **_COMMON, "file_name": "File",
        "ingested_at": st.column_config.DatetimeColumn("Ingested (UTC)", format=_WHEN),
        "file_size": _rows("Bytes"),
        "file_sha256": st.column_config.TextColumn("SHA-256", help="first 12 hex digits"),
    },
    "validation": {
        **_COMMON, "file_name": "File",
        "started_at": st.column_config.DatetimeColumn("Started (UTC)", format=_WHEN),
        "rows_total": _rows("Rows"), "rows_valid": _rows("Valid"), "rows_invalid": _rows("Invalid"),
        "ingestion_id": st.column_config.NumberColumn("Ingestion #", width="small"),
    },
    "load": {
        **_COMMON, "step": "Step", "source": "Source",
        "started_at": st.column_config.DatetimeColumn("Started (UTC)", format=_WHEN),
        "rows_deleted": _rows("Deleted"), "rows_inserted": _rows("Inserted"),
    },
}


def log_filters(url: str, kind: str) -> data.LogFilter:
    """Dataset, Period (its choices follow the Dataset), Status (and Step).
    Each is kept in the address (?ingestion_status=rejected…) so a link
    reopens the same view; "All" cannot be cleared into an empty filter."""
    opts = ui.cached_options(url, kind)
    cols = st.columns(4 if kind == "load" else 3)
    dataset = _filter(cols[0], "Dataset", opts["dataset"], f"{kind}_dataset")
    periods = ui.cached_log_periods(url, kind, dataset)
    if st.session_state.get(f"{kind}_period") not in (None, *periods):
        st.session_state[f"{kind}_period"] = None  # a month of another dataset: back to All
    period = _filter(cols[1], "Period", periods, f"{kind}_period")
    status = _filter(cols[2], "Status", opts["status"], f"{kind}_status")
    step = _filter(cols[3], "Step", opts["step"], "load_step") if kind == "load" else None
    return data.LogFilter(dataset, period, status, step)


def _filter(where: Any, label: str, options: list[str], key: str) -> str | None:
    return where.selectbox(label, [None, *options], format_func=ui.any_label, key=key, required=True,
                           bind="query-params")


def log_view(url: str, kind: str) -> data.LogFilter:
    """Filters, a page of the log newest first, and a pager. Returns the
    filter (the validation view reuses its dataset and period)."""
    flt = log_filters(url, kind)
    total = ui.cached_count(url, kind, flt.dataset, flt.period, flt.status, flt.step)
    pages = max(1, math.ceil(total / ui.PAGE_SIZE))
    page = min(st.pagination(pages, key=f"{kind}_page"), pages) if pages > 1 else 1
    frame = data.log_table(ui.cached_log(url, kind, flt.dataset, flt.period, flt.status, flt.step,
                                         (page - 1) * ui.PAGE_SIZE), kind)
    first = 0 if total == 0 else (page - 1) * ui.PAGE_SIZE + 1
    shown = f"{first:,}" if len(frame) == 1 else f"{first:,}–{first + len(frame) - 1:,}"
    st.caption(f"{data.entries(total)}, newest first — showing {shown}" if total else
               "No entry matches these filters.")
    st.container(key=f"{kind}_table").dataframe(  # type: ignore[call-overload]
        ui.styled(frame, ["status"]), hide_index=True, width="stretch", placeholder="",
        column_config=LOG_COLUMNS[kind])
    return flt


def _failed_label(r: Any) -> str:
    invalid = 0 if pd.isna(r.rows_invalid) else int(r.rows_invalid)
    return (f"#{r.id} · {r.dataset} {r.period} · {r.file_name or '?'} · "
            f"{data.entries(invalid, 'invalid row', 'invalid rows')} · "
            f"{ui.when(r.started_at)}")


def validation_errors_view(url: str, dataset: str | None, period: str | None) -> None:
    st.markdown("#### Row-level errors of a failed validation")
    failed = ui.cached_failed(url, dataset, period)
    if failed.empty:
        st.caption("No failed validation matches the dataset and period filters.")
        return
    labels = {int(r.id): _failed_label(r) for r in failed.itertuples()}
    chosen = st.selectbox("Failed validation", list(labels), format_func=labels.__getitem__,
                          key="failed_validation", help="Newest first; follows the dataset and period filters.")
    row = failed.loc[failed["id"] == chosen].iloc[0]
    if isinstance(row["error"], str) and row["error"]:
        st.error(row["error"])
    errors_table(ui.cached_errors(url, int(chosen)),
                 f"validation_errors_{row['dataset']}_{row['period']}_{chosen}.csv")


def errors_table(errors: pd.DataFrame, file_name: str) -> None:
    """Row-level errors as a table with a CSV download."""
    if errors.empty:
        st.caption("No row-level errors were recorded (the file failed as a whole).")
        return
    more = " (the first 1,000 are kept)" if len(errors) >= data.MAX_ERRORS else ""
    cells = data.entries(len(errors), "failing cell", "failing cells")
    st.caption(f"{cells}{more}. Rows are numbered as in Excel: header = row 1.")
    st.container(key="errors_table").dataframe(errors, hide_index=True, width="stretch", column_config={
        "excel_row": st.column_config.NumberColumn("Excel row", format="%d", width="small"),
        "key": "Key", "column": "Column", "check": "Check", "value": "Value",
    })
    st.download_button("Download these errors as CSV", data.errors_csv(errors), icon=":material/download:",
                       file_name=file_name, mime="text/csv", key="errors_csv", on_click="ignore")


def render() -> None:
    url = open_page().url
    # Lazy tabs: only the open view queries the warehouse. Bound to the URL
    # (?view=Validation+log) so a view can be bookmarked or linked.
    tabs = dict(zip(VIEWS, st.tabs(VIEWS, key="view", on_change="rerun", bind="query-params")))
    for name, kind in zip(VIEWS, ("ingestion", "validation", "load")):
        with tabs[name]:
            if not tabs[name].open:
                continue
            with ui.guard(name.lower()):
                flt = log_view(url, kind)
                if kind == "validation":
                    st.divider()
                    validation_errors_view(url, flt.dataset, flt.period)


if __name__ == "__main__":  # run by st.navigation (as __main__), not on import
    render()

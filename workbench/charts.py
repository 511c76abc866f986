"""The dashboard's Altair charts, built from ``workbench.data`` frames."""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from workbench import data
from workbench.ui import state_scale


def _axis(months: list[str], **kw: Any) -> alt.Axis:
    return alt.Axis(labelAngle=-60 if len(months) > 12 else 0, **kw)


MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
GRID_COLUMNS = 4  # datasets side by side before the grid wraps


def coverage_chart(cov: pd.DataFrame) -> alt.FacetChart:
    """Per dataset a calendar: years as rows (newest on top) × twelve month
    columns, one coloured cell per month and its state; a click on a cell
    opens the month page (``href``). Its width does not grow with the
    history, so 120 months × 10 datasets fit and the newest month is never
    scrolled or clipped away."""
    grid = data.coverage_grid(cov)
    frame = grid.assign(stage_rows=grid["stage_rows"].astype("float"),
                        file_name=grid["file_name"].astype(object).where(grid["file_name"].notna(), "—"),
                        error=grid["error"].astype(object).where(grid["error"].notna(), ""),
                        month_name=[MONTH_NAMES[m - 1] for m in grid["month"]])
    years = sorted(set(frame["year"]), reverse=True)
    step = 22 if len(years) <= 3 else 15
    domain, colors = state_scale(frame["state"].astype(str).tolist())
    cells = (
        alt.Chart()
        .mark_rect(stroke="white", strokeWidth=1.5 if step > 15 else 1, cornerRadius=2, cursor="pointer")
        .encode(
            x=alt.X("month_name:O", scale=alt.Scale(domain=MONTH_NAMES), title=None,
                    axis=alt.Axis(labelExpr="substring(datum.label, 0, 1)", ticks=False, domain=False,
                                  labelAngle=0)),
            y=alt.Y("year:O", sort=years, scale=alt.Scale(domain=years), title=None,
                    axis=alt.Axis(ticks=False, domain=False, labelOverlap=False, labelFontSize=10)),
            color=alt.Color("state:N", title="State", scale=alt.Scale(domain=domain, range=colors),
                            legend=alt.Legend(orient="bottom", direction="horizontal")),
            href=alt.Href("href:N"),
            tooltip=[alt.Tooltip("dataset:N"), alt.Tooltip("period:O"), alt.Tooltip("state:N"),
                     alt.Tooltip("stage_rows:Q", title="stage rows", format=","),
                     alt.Tooltip("file_name:N", title="file"), alt.Tooltip("error:N")],
        )
        .properties(width=alt.Step(step), height=alt.Step(step))
    )
    return alt.FacetChart(data=frame, spec=cells, facet=alt.Facet("dataset:N", title=None,
                          header=alt.Header(labelFontWeight="bold", labelAnchor="start")),
                          columns=min(GRID_COLUMNS, max(1, frame["dataset"].nunique())),
                          spacing={"row": 12, "column": 28})


COUNT_VIEWS = ("Absolute", "% change", "Log scale")


def counts_chart(rows: pd.DataFrame, months: list[str], threshold: float,
                 view: str = "Absolute") -> alt.LayerChart:
    """Stage rows per month, flagged months in orange, failed months marked.

    ``view`` (COUNT_VIEWS): the counts as they are; the change from the
    previous month with a count, with the threshold as dashed lines; or the
    counts on a log scale (symlog, so an empty month still shows) — either
    keeps one 20,000-row month from flattening all the others."""
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
        x=alt.X("period:O", scale=alt.Scale(domain=months), title=None, axis=_axis(months)),
        color=alt.Color("marker:N", title=None, scale=alt.Scale(domain=domain, range=colors),
                        legend=alt.Legend(orient="bottom")),
        tooltip=[alt.Tooltip("period:O"), alt.Tooltip("stage_rows:Q", title="stage rows", format=","),
                 alt.Tooltip("previous_rows:Q", title="previous", format=","),
                 alt.Tooltip("change:Q", format="+.1%"), alt.Tooltip("state:N")],
    )
    bars = base.mark_bar(cornerRadiusTopLeft=2, cornerRadiusTopRight=2).encode(y=_count_axis(view))
    # A failed month with nothing in stage has no bar; a marker on the axis
    # keeps it from looking like a quiet month.
    failed = base.transform_filter("!isValid(datum.stage_rows)").mark_point(
        shape="triangle-up", filled=True, size=110, yOffset=-6).encode(y=alt.datum(0))
    layers: list[alt.Chart] = [bars, failed]
    if view == "% change":
        bounds = pd.DataFrame({"bound": [threshold, -threshold]})
        layers.append(alt.Chart(bounds).mark_rule(strokeDash=[4, 3], color="#f57c00").encode(y="bound:Q"))
    return alt.LayerChart(layer=layers, height=260)


def _count_axis(view: str) -> alt.Y:
    if view == "% change":
        return alt.Y("change:Q", title="change vs previous month", axis=alt.Axis(format="+%"))
    if view == "Log scale":
        return alt.Y("stage_rows:Q", title="stage rows (log)", scale=alt.Scale(type="symlog"))
    return alt.Y("stage_rows:Q", title="stage rows")

"""The dashboard's Altair charts, built from ``workbench.data`` frames."""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from workbench import data
from workbench.ui import state_scale

GRID_SELECTION = "cell"  # a click on a grid cell selects its (dataset, period)


def _axis(months: list[str], **kw: Any) -> alt.Axis:
    return alt.Axis(labelAngle=-60 if len(months) > 12 else 0, **kw)


def coverage_chart(cov: pd.DataFrame) -> alt.Chart:
    """Datasets × months, one coloured cell per month and its state."""
    frame = cov.assign(stage_rows=cov["stage_rows"].astype("float"),
                       file_name=cov["file_name"].astype(object).where(cov["file_name"].notna(), "—"),
                       error=cov["error"].astype(object).where(cov["error"].notna(), ""))
    months = data.month_range(frame["period"].min(), frame["period"].max())
    domain, colors = state_scale(frame["state"].astype(str).tolist())
    return (
        alt.Chart(frame)
        .mark_rect(stroke="white", strokeWidth=2, cornerRadius=3)
        .encode(
            x=alt.X("period:O", scale=alt.Scale(domain=months), title=None, axis=_axis(months, orient="top")),
            y=alt.Y("dataset:N", title=None),
            color=alt.Color("state:N", title="State", scale=alt.Scale(domain=domain, range=colors),
                            legend=alt.Legend(orient="bottom", direction="horizontal")),
            tooltip=[alt.Tooltip("dataset:N"), alt.Tooltip("period:O"), alt.Tooltip("state:N"),
                     alt.Tooltip("stage_rows:Q", title="stage rows", format=","),
                     alt.Tooltip("file_name:N", title="file"), alt.Tooltip("error:N")],
        )
        .add_params(alt.selection_point(name=GRID_SELECTION, fields=["dataset", "period"], on="click"))
        .properties(height=alt.Step(34))
    )


def counts_chart(rows: pd.DataFrame, months: list[str], threshold: float) -> alt.LayerChart:
    """Stage rows per month, flagged months in orange, failed months marked."""
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
    bars = base.mark_bar(cornerRadiusTopLeft=2, cornerRadiusTopRight=2).encode(
        y=alt.Y("stage_rows:Q", title="stage rows"))
    # A failed month with nothing in stage has no bar; a marker on the axis
    # keeps it from looking like a quiet month.
    failed = base.transform_filter("!isValid(datum.stage_rows)").mark_point(
        shape="triangle-up", filled=True, size=110, yOffset=-6).encode(y=alt.datum(0))
    return (bars + failed).properties(height=260)

"""The baseline of bench_dashboard.py: a bare Streamlit page with the same
widgets as the dashboard's overview, fed by made-up frames built in memory
(no warehouse, no config, no cache): title, sidebar (captions, Refresh,
Reload panel, slider), five metrics, the coverage grid as an Altair rect
chart of ``BENCH_DATASETS`` × ``BENCH_PERIODS`` cells with the same tooltip
fields, and per dataset a month picker, a link, a counts table and a bar
chart. ``streamlit run tests/benchmarks/bare_dashboard.py``.
"""
from __future__ import annotations

import os

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

PERIODS = int(os.environ.get("BENCH_PERIODS", "120"))
DATASETS = int(os.environ.get("BENCH_DATASETS", "5"))

st.set_page_config(page_title="Bare page", layout="wide")
rng = np.random.default_rng(7)
months = [f"{2015 + m // 12:04d}-{m % 12 + 1:02d}" for m in range(PERIODS)]
names = [f"dataset_{i}" for i in range(DATASETS)]
grid = pd.DataFrame([(n, p) for n in names for p in months], columns=["dataset", "period"])
grid["state"] = np.where(rng.random(len(grid)) < 0.9, "published", "failed")
grid["stage_rows"] = rng.integers(30, 50, len(grid)).astype(float)
grid["file_name"] = grid["dataset"] + "_" + grid["period"] + ".xlsx"
grid["error"] = ""

st.title("Period Workbench")
with st.sidebar:
    st.markdown("### Period Workbench")
    st.caption("Warehouse `sqlite:///…`  \nData `data`")
    st.button("Refresh")
    st.divider()
    st.subheader("Reload a period")
    st.selectbox("Dataset", names, key="reload_dataset")
    st.selectbox("Period", months[::-1], key="reload_period")
    st.text_input("Reason", key="reload_reason")
    st.button("Reload", type="primary", width="stretch")
    st.slider("Flag row-count changes above", 0, 100, 20, step=5, format="%d %%")

st.caption("Monthly extracts → validated Parquet → period-partitioned warehouse")
cols = st.columns([2, 2, 2, 2, 3])
for col, (label, value) in zip(cols, [("Datasets", DATASETS), ("Months loaded", len(grid)), ("Months failed", 0),
                                      ("Months missing", 0), ("Last load (UTC)", "03 Dec 12:00")]):
    col.metric(label, value)
st.markdown("#### Coverage")
st.caption("Every month between a dataset's first and last delivery.")
st.altair_chart(
    alt.Chart(grid).mark_rect(stroke="white", strokeWidth=2, cornerRadius=3).encode(
        x=alt.X("period:O", title=None, axis=alt.Axis(orient="top", labelAngle=-60)),
        y=alt.Y("dataset:N", title=None), color=alt.Color("state:N", legend=alt.Legend(orient="bottom")),
        tooltip=["dataset:N", "period:O", "state:N", "stage_rows:Q", "file_name:N", "error:N"],
    ).properties(height=alt.Step(34)),
    width="stretch",
)
for name in names:
    rows = grid[grid["dataset"] == name].sort_values("period", ascending=False)
    st.divider()
    st.markdown(f"#### {name}")
    st.caption("A dataset")
    pick = st.columns([2, 2, 6], vertical_alignment="bottom")
    pick[0].selectbox("Open a month", rows["period"].tolist(), key=f"open_{name}")
    pick[1].link_button(f"{name}", "#")
    left, right = st.columns([5, 6], gap="large")
    table = rows[["period", "state", "stage_rows"]].assign(core_rows=rows["stage_rows"], change=0.0,
                                                           flagged=False)
    left.dataframe(table, hide_index=True, width="stretch", height=388)
    right.altair_chart(alt.Chart(rows).mark_bar().encode(
        x=alt.X("period:O", title=None), y=alt.Y("stage_rows:Q"),
        tooltip=["period:O", "stage_rows:Q", "state:N"]).properties(height=260), width="stretch")

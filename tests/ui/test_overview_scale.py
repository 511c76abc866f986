"""The overview at scale, on SQLite and PostgreSQL: a coverage grid of 120+
months × 10 datasets that keeps the newest month in view and links every
cell to its month page, the counts chart's absolute / % change / log views,
and the range backfill of missing and failed months as one job.

The long history is written through the package's table definitions
(``tables.stage_table``, the run log's ``meta`` tables) —
1,200 real pipeline runs would take far too long; the backfill test uses
real files and the real pipeline.
"""
from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from pipeline.warehouse import runlog, tables
from pipeline.warehouse.engine import write_transaction
from tests.conftest import Workspace
from tests.ui.test_dashboard import (  # noqa: F401  (fixtures)
    APP,
    charts,
    frame,
    fresh_caches,
    loaded,
    stage_counts,
    texts,
)
from workbench import data, jobs

DATASETS = [f"d{i:02d}" for i in range(10)]
MONTHS = data.month_range("2016-01", "2025-12")  # 120 months


def ten_datasets_config() -> str:
    lines = ["datasets:"]
    for name in DATASETS:
        lines += [f"  {name}:",
                  f"    file_pattern: '^{name}_(?P<period>\\d{{4}}-\\d{{2}})\\.csv$'",
                  "    primary_key: [id]",
                  "    columns:",
                  "      id: {type: integer, nullable: false}"]
    return "\n".join(lines) + "\n"


def fill_history(ws: Workspace) -> None:
    """120 served months for each of 10 datasets (1 to 7 rows a month; one
    month of d03 holds 20,000), the newest month of
    d09 refused at ingest, and a landed, unprocessed 2026-01 file of d00."""
    ws.use_config(ten_datasets_config())
    config = ws.config()
    engine = ws.engine  # migrated
    # Flat stage tables (the layout before partitions, which both backends
    # still serve): 1,200 PostgreSQL partitions would take half a minute.
    with write_transaction(engine) as conn:
        for name in DATASETS:
            table = tables.stage_table(config.dataset(name))
            table.create(conn)
            conn.execute(table.insert(), [
                {"id": i, tables.PERIOD_COLUMN: period}
                for m, period in enumerate(MONTHS)
                for i in range(1, (20_000 if (name, period) == ("d03", "2020-06") else 1 + m % 7) + 1)])
    at = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    with write_transaction(engine) as conn:
        conn.execute(runlog.ingestion_log.insert(), [{
            "dataset": "d09", "period": "2026-01", "file_name": "d09_2026-01.csv", "file_path": "/x/d09_2026-01.csv",
            "file_sha256": "0" * 64, "status": "rejected", "error": "d09_2026-01.csv: missing column 'id'",
            "ingested_at": at, "retryable": False}])
    (ws.landed / "d00_2026-01.csv").write_text("id\n1\n2\n", encoding="utf-8")


@pytest.fixture
def long_history(workspace: Workspace) -> Workspace:
    fill_history(workspace)
    return workspace


def open_overview() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.run()
    assert not at.exception, at.exception
    return at


def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def test_grid_of_120_months_by_10_datasets_keeps_the_newest_month(long_history) -> None:  # type: ignore[no-untyped-def]
    at = open_overview()
    specs = chart_specs(at)
    grid_spec = next(s for s in specs if "facet" in s)
    grid = next(c for c in charts(at) if "href" in c)
    assert sorted(set(grid["dataset"])) == DATASETS
    # Every month of every dataset is a cell: 120 each, plus the newest (2026-01) of d00 and d09.
    assert grid.groupby("dataset")["period"].nunique().to_dict() == {
        d: 121 if d in ("d00", "d09") else 120 for d in DATASETS}
    # Twelve month columns whatever the length of the history; years as rows, newest first.
    assert grid_spec["spec"]["encoding"]["x"]["scale"]["domain"] == [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    years = grid_spec["spec"]["encoding"]["y"]["scale"]["domain"]
    assert years[0] == "2026" and years[-1] == "2016" and len(years) == 11
    cells = grid.set_index(["dataset", "period"])
    assert cells.loc[("d09", "2026-01"), "state"] == "failed"
    assert cells.loc[("d00", "2026-01"), "state"] == "pending"  # landed, not processed yet
    assert (cells.loc[("d00", "2026-01"), "year"], cells.loc[("d00", "2026-01"), "month"]) == ("2026", 1)
    assert cells.loc[("d05", "2025-12"), "state"] == "published"
    # Each cell opens its month page.
    assert grid_spec["spec"]["encoding"]["href"]["field"] == "href"
    assert cells.loc[("d09", "2026-01"), "href"] == "month?dataset=d09&period=2026-01"
    assert metrics(at)["Months loaded"] == "1,200"
    # The new delivery is named by its landed file, though never ingested.
    assert frame(at, "new_deliveries").values.tolist() == [["d00", "2026-01", "d00_2026-01.csv", "pending"]]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _counts_spec(at: AppTest, dataset: str) -> dict:
    """The counts chart of ``dataset`` (its layer's data names its periods)."""
    for spec, chart in zip(chart_specs(at), at.get("vega_lite_chart")):
        if "layer" not in spec:
            continue
        for ds in chart.proto.datasets:
            shown = pa.ipc.open_stream(ds.data.data).read_pandas()
            if "marker" in shown and shown["dataset"].eq(dataset).all():
                return spec
    raise AssertionError(f"no counts chart for {dataset}")


def test_counts_chart_switches_to_change_and_log_views(long_history) -> None:  # type: ignore[no-untyped-def]
    at = open_overview()
    bars = _counts_spec(at, "d03")["layer"][0]["encoding"]["y"]
    assert bars["field"] == "stage_rows" and "scale" not in bars
    at.segmented_control(key="counts_view").set_value("% change").run()
    assert not at.exception, at.exception
    spec = _counts_spec(at, "d03")
    assert spec["layer"][0]["encoding"]["y"]["field"] == "change"
    assert any(layer.get("mark", {}).get("type") == "rule" for layer in spec["layer"])  # the threshold
    at.segmented_control(key="counts_view").set_value("Log scale").run()
    y = _counts_spec(at, "d03")["layer"][0]["encoding"]["y"]
    assert y["field"] == "stage_rows" and y["scale"]["type"] == "symlog"


def test_overview_choices_are_restored_from_the_link(long_history) -> None:  # type: ignore[no-untyped-def]
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.query_params["counts_view"] = "Log scale"
    at.query_params["threshold"] = "50"
    at.query_params["backfill_dataset"] = "d07"
    at.run()
    assert not at.exception, at.exception
    assert at.segmented_control(key="counts_view").value == "Log scale"
    assert at.slider(key="threshold").value == 50
    assert at.selectbox(key="backfill_dataset").value == "d07"
    assert _counts_spec(at, "d01")["layer"][0]["encoding"]["y"]["scale"]["type"] == "symlog"


# --------------------------------------------------------------------------
# Range backfill: one job for the missing and failed months of a range
# --------------------------------------------------------------------------
def test_backfill_plan_lists_the_months_to_process(loaded, demo_dir) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    assert loaded.add_demo(demo_dir, "citizens_2025-0[45]*")
    status = data.period_status(loaded.engine, loaded.config(), loaded.settings)
    landed = data.landed_months(loaded.settings, loaded.config())
    plan = data.backfill_plan(data.coverage(status), landed, "citizens", "2025-07", "2025-02")  # either order
    assert plan.values.tolist() == [
        ["2025-04", "pending", "citizens_2025-04.xlsx", "process"],
        ["2025-05", "pending", "citizens_2025-05.xlsx", "process"],
        ["2025-06", "missing", None, "no file in landed/"],
        ["2025-07", "failed", "citizens_2025-07.xlsx", "process again (forced)"],
    ]  # 2025-02 and 2025-03 are published: not part of a backfill


def test_backfill_processes_two_missing_months_as_one_job(loaded, demo_dir) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    assert loaded.add_demo(demo_dir, "citizens_2025-0[45]*")  # 2025-06 stays missing
    at = open_overview()
    at.selectbox(key="backfill_dataset").set_value("citizens").run()
    at.select_slider(key="backfill_range").set_value(("2025-04", "2025-06")).run()
    plan = frame(at, "backfill_plan")
    assert plan[["period", "action"]].values.tolist() == [
        ["2025-04", "process"], ["2025-05", "process"], ["2025-06", "no file in landed/"]]
    assert at.button(key="backfill").label == "Process 2 months"
    at.button(key="backfill").click().run()
    assert not at.exception, at.exception
    assert jobs.wait_all(180), "the backfill did not finish"
    at.run()
    assert not at.exception, at.exception
    done = [j for j in jobs.all_jobs(loaded.settings.db_url) if j.kind == "backfill"]
    assert len(done) == 1 and done[0].result is not None and done[0].result.ok
    assert done[0].progress == "2 of 2: citizens 2025-05"  # what the jobs panel showed last
    counts = stage_counts(loaded, "citizens")
    assert {"2025-04", "2025-05"} <= counts.keys() and "2025-06" not in counts
    assert texts(at.success)[0] == "Backfill of citizens 2025-04…2025-06: 2 months processed, 2 loaded, 0 failed."
    lines = "\n".join(m.value for m in at.markdown)
    for period in ("2025-04", "2025-05"):
        assert f"- {period} (citizens_{period}.xlsx): loaded, {counts[period]:,} rows in stage" in lines
    # The months are loaded now: nothing is left to backfill but the missing one.
    assert frame(at, "backfill_plan")["period"].tolist() == ["2025-06"]
    assert at.button(key="backfill").disabled

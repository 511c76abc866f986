"""The dashboard (workbench/): its data functions against a real warehouse,
and every view through Streamlit's AppTest, on SQLite and PostgreSQL.

Warehouses are filled the way an analyst fills them — demo files in
``landed/`` and ``python -m pipeline run`` — never by mocking the database.
"""
from __future__ import annotations

import io
import shutil
import threading
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from pipeline.stages.ingest import ingest_file
from pipeline.warehouse import runlog
from pipeline.warehouse.engine import dispose_engines, write_transaction
from tests.conftest import reset_postgres
from workbench import data, jobs

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "workbench" / "app.py"


# --------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def fresh_caches():  # type: ignore[no-untyped-def]
    """st.cache_data is shared by the whole test process: without this a test
    would see the counts and logs of the one before."""
    st.cache_data.clear()
    st.cache_resource.clear()
    jobs.forget_finished()  # the job registry is per process, like a server's
    yield
    assert jobs.wait_all(120), "a job outlived its test"
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def loaded(workspace, demo_dir):  # type: ignore[no-untyped-def]
    """citizens 2025-01..03 loaded, 2025-04..06 never delivered (a gap),
    2025-07 with three invalid rows (failed validation), one misnamed file
    (rejected at ingest), and benefit_payments 2025-01 (a second dataset)."""
    for pattern in ("citizens_2025-0[1-3]*", "citizens_2025-07*", "citizens_june_final*",
                    "benefit_payments_2025-01*"):
        assert workspace.add_demo(demo_dir, pattern), pattern
    # In this process, not `python -m pipeline run` (same code and exit status;
    # ~1.4 s less of interpreter start and imports for each of ~50 tests).
    result = workspace.main("pipeline", "run")
    # The bad files make `run` report a failure; the good ones must be loaded.
    assert result.returncode == 1, result.stdout + result.stderr
    assert stage_counts(workspace, "citizens").keys() == {"2025-01", "2025-02", "2025-03"}, result.stdout
    return workspace


def stage_counts(ws, table: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    rows = ws.rows(f"SELECT _data_period, count(*) FROM stage.{table} GROUP BY _data_period")
    return {p: int(n) for p, n in rows}


def open_app(view: str | None = None) -> AppTest:
    """The app on its Overview page, or on the Logs page with the tab ``view`` open."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    if view is not None:
        at.switch_page("views/logs.py")
        at.session_state["view"] = view
        at.run()
        assert not at.exception, at.exception
    return at


def frame(at: AppTest, key: str) -> pd.DataFrame:
    """The data behind the st.dataframe with ``key``."""
    tables = at.get_by_key(key).dataframe
    assert len(tables) == 1, f"{key!r} holds {len(tables)} tables"
    return tables[0].value


def charts(at: AppTest) -> list[pd.DataFrame]:
    """The data of every vega-lite chart on the page (AppTest shows charts
    as UnknownElement; their datasets are Arrow IPC streams)."""
    out = []
    for chart in at.get("vega_lite_chart"):
        for ds in chart.proto.datasets:
            out.append(pa.ipc.open_stream(ds.data.data).read_pandas())
    return out


def texts(elements) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.value for e in elements]


def trim_xlsx(path: Path, data_rows: int) -> None:
    """Keep the header and the first ``data_rows`` rows of the workbook."""
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    ws.delete_rows(data_rows + 2, ws.max_row)
    wb.save(path)


def click_reload(at: AppTest, dataset: str, period: str, *, reason: str = "") -> AppTest:
    """Pick dataset and period, press Reload, wait for the job, look again."""
    # The period choices follow the dataset: pick it first and let the page update.
    at.selectbox(key="reload_dataset").set_value(dataset).run()
    at.selectbox(key="reload_period").set_value(period)
    at.text_input(key="reload_reason").input(reason)
    at.button(key="reload").click()
    at.run()
    assert jobs.wait_all(120), "the reload job did not finish"
    at.run()
    assert not at.exception, at.exception
    return at


# --------------------------------------------------------------------------
# Pure functions
# --------------------------------------------------------------------------
def test_month_range_crosses_years() -> None:
    assert data.month_range("2024-11", "2025-02") == ["2024-11", "2024-12", "2025-01", "2025-02"]
    assert data.month_range("2025-03", "2025-03") == ["2025-03"]


def _status(rows: list[tuple]) -> pd.DataFrame:
    # The state is the run log's (runlog.month_states, tested in
    # tests/integration/test_month_state.py); here it is given.
    recs = [dict(zip(("dataset", "period", "stage_rows", "ingestion_status", "validation_status",
                      "load_status", "state"), (*r, "published") if len(r) == 6 else r), core_rows=None)
            for r in rows]
    return pd.DataFrame.from_records(recs, columns=data.STATUS_COLUMNS)


def test_coverage_shows_the_run_log_state_and_marks_gaps_missing() -> None:
    status = _status([
        ("a", "2025-01", 10, "accepted", "passed", "succeeded", "published"),
        ("a", "2025-04", 12, "accepted", "failed", "succeeded", "failed_serving_previous"),
        ("a", "2025-05", None, "accepted", None, None, "pending"),
        ("b", "2024-12", None, "rejected", None, None, "failed"),
    ])
    cov = data.coverage(status)
    states = dict(zip(zip(cov["dataset"], cov["period"]), cov["state"]))
    assert states == {
        ("a", "2025-01"): data.LOADED, ("a", "2025-02"): "missing", ("a", "2025-03"): "missing",
        ("a", "2025-04"): data.SERVING_PREVIOUS, ("a", "2025-05"): "pending", ("b", "2024-12"): "failed",
    }


def test_row_count_changes_flags_moves_beyond_the_threshold_either_way() -> None:
    status = _status([
        ("a", "2025-01", 100, "accepted", "passed", "succeeded"),
        ("a", "2025-02", 121, "accepted", "passed", "succeeded"),  # +21 %
        ("a", "2025-03", 120, "accepted", "passed", "succeeded"),  # -0.8 %
        # 2025-04 missing: the baseline stays 2025-03
        ("a", "2025-05", 90, "accepted", "passed", "succeeded"),   # -25 % vs 2025-03
        ("a", "2025-06", 90, "accepted", "passed", "succeeded"),
    ])
    out = data.row_count_changes(status, 0.20).set_index("period")
    assert out["flagged"].to_dict() == {
        "2025-01": False, "2025-02": True, "2025-03": False, "2025-05": True, "2025-06": False,
    }
    assert out.loc["2025-05", "previous_rows"] == 120
    assert out.loc["2025-05", "change"] == pytest.approx(-0.25)
    assert pd.isna(out.loc["2025-01", "change"])
    # A higher threshold lets +21 % through but still flags -25 %.
    assert data.row_count_changes(status, 0.22).set_index("period")["flagged"].sum() == 1


def test_errors_csv_opens_in_excel_with_accents() -> None:
    errors = pd.DataFrame({"excel_row": [5], "column": ["last_name"], "check": ["max_length"],
                           "value": ["Åberg"]})
    raw = data.errors_csv(errors)
    assert raw.startswith(b"\xef\xbb\xbf")
    assert pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig").to_dict("records") == errors.to_dict("records")


# --------------------------------------------------------------------------
# Data functions against a real warehouse
# --------------------------------------------------------------------------
def test_logs_page_newest_first_with_filters(workspace, demo_dir) -> None:  # type: ignore[no-untyped-def]
    paths = workspace.add_demo(demo_dir, "citizens_2025-0[1-3]*") + workspace.add_demo(demo_dir, "citizens_june*")
    paths += workspace.add_demo(demo_dir, "benefit_payments_2025-01*")
    for path in paths:
        ingest_file(path, settings=workspace.settings)
    engine = workspace.engine
    everything = data.read_log(engine, "ingestion", limit=100)
    assert len(everything) == 5 == data.count_log(engine, "ingestion")
    assert everything["id"].tolist() == sorted(everything["id"], reverse=True)
    assert everything["ingested_at"].is_monotonic_decreasing
    assert str(everything["ingested_at"].dt.tz) == "UTC"

    page2 = data.read_log(engine, "ingestion", limit=2, offset=2)
    assert page2["id"].tolist() == everything["id"].tolist()[2:4]

    rejected = data.read_log(engine, "ingestion", data.LogFilter(status="rejected"))
    assert rejected["file_name"].tolist() == ["citizens_june_final(2).xlsx"]
    citizens = data.LogFilter(dataset="citizens", period="2025-02")
    assert data.read_log(engine, "ingestion", citizens)["file_name"].tolist() == ["citizens_2025-02.xlsx"]
    assert data.count_log(engine, "ingestion", citizens) == 1

    options = data.log_filter_options(engine, "ingestion")
    assert options["dataset"] == ["benefit_payments", "citizens"]
    assert options["period"] == ["2025-03", "2025-02", "2025-01"]
    assert options["status"] == ["accepted", "rejected"]
    reloadable = data.reloadable_periods(engine, ["citizens"])
    assert list(zip(reloadable["dataset"], reloadable["period"])) == [
        ("citizens", "2025-03"), ("citizens", "2025-02"), ("citizens", "2025-01")]


def test_failed_validation_errors_in_file_order(loaded) -> None:  # type: ignore[no-untyped-def]
    engine = loaded.engine
    failed = data.failed_validations(engine)
    assert failed[["dataset", "period", "file_name"]].values.tolist() == [
        ["citizens", "2025-07", "citizens_2025-07.xlsx"]]
    errors = data.validation_errors(engine, int(failed["id"].iloc[0]))
    # The demo breaks data rows 4, 11 and 18: Excel rows 5, 12, 19.
    assert errors["excel_row"].tolist() == [5, 12, 19]
    # Each names its record: the Citizen ID in that Excel row of the file.
    sheet = pd.read_excel(loaded.landed / "citizens_2025-07.xlsx", dtype=object, engine="calamine")
    assert errors["key"].tolist() == [str(sheet.loc[r - 2, "Citizen ID"]) for r in (5, 12, 19)]
    assert errors["column"].tolist() == ["sex", "monthly_income", "municipality_code"]
    assert errors["value"].tolist()[0] == "Q"


def test_status_counts_match_the_stage_tables(loaded) -> None:  # type: ignore[no-untyped-def]
    status = data.period_status(loaded.engine, loaded.config())
    citizens = status[status["dataset"] == "citizens"].set_index("period")
    counts = stage_counts(loaded, "citizens")
    assert citizens["stage_rows"].dropna().astype(int).to_dict() == counts
    cov = data.coverage(status)
    cit = cov[cov["dataset"] == "citizens"].set_index("period")["state"].to_dict()
    assert cit == {"2025-01": "published", "2025-02": "published", "2025-03": "published", "2025-04": "missing",
                   "2025-05": "missing", "2025-06": "missing", "2025-07": "failed"}


# --------------------------------------------------------------------------
# The app, view by view
# --------------------------------------------------------------------------
def test_missing_warehouse_is_one_line_and_never_created(workspace) -> None:  # type: ignore[no-untyped-def]
    at = open_app()
    assert len(at.error) == 1 and not at.exception
    if workspace.backend == "sqlite":
        path = sa.make_url(workspace.db_url).database
        assert at.error[0].value.startswith(f"No warehouse at {path}: run `python -m pipeline run` first")
        assert not Path(path).exists() and not Path(path).parent.exists()  # nothing created
    else:
        assert "has no Period Workbench tables: run `python -m pipeline migrate`" in at.error[0].value
        raw = sa.create_engine(workspace.db_url)  # workspace.engine would migrate
        with raw.connect() as conn:
            assert conn.exec_driver_sql(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'meta'").scalar() == 0
        raw.dispose()
    assert [b.label for b in at.button] == ["Retry"]
    assert not at.get("vega_lite_chart") and not at.dataframe


def test_empty_warehouse_says_what_to_run(workspace) -> None:  # type: ignore[no-untyped-def]
    assert workspace.main("pipeline", "migrate").returncode == 0
    at = open_app()
    assert texts(at.info) == [data.EMPTY_MESSAGE]
    assert not at.get("vega_lite_chart") and not at.dataframe and not at.error
    assert not at.tabs


def test_warehouse_dropped_mid_session_is_one_line(loaded) -> None:  # type: ignore[no-untyped-def]
    at = open_app()
    assert frame(at, "counts_citizens") is not None
    dispose_engines()
    if loaded.backend == "sqlite":
        for path in Path(sa.make_url(loaded.db_url).database).parent.glob("workbench*.sqlite*"):
            path.unlink()
    else:
        reset_postgres(loaded.db_url)
    at.run()  # the counts are still cached; the warehouse check is not
    assert not at.exception
    assert len(at.error) == 1
    assert at.error[0].value.startswith(("No warehouse at", "The warehouse")), at.error[0].value
    assert not at.get("vega_lite_chart") and not at.metric  # no stale numbers
    assert "Retry" in [b.label for b in at.button]


def test_a_failing_view_is_one_line_with_retry(loaded) -> None:  # type: ignore[no-untyped-def]
    at = open_app("Ingestion log")
    with loaded.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE meta.load_log")
    at.session_state["view"] = "Load log"
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("Cannot show the load log: ")
    assert "Retry" in [b.label for b in at.button]


def test_bad_config_is_one_line_not_a_traceback(workspace) -> None:  # type: ignore[no-untyped-def]
    workspace.use_config("datasets:\n  citizens:\n    file_pattern: '('\n    columns: {a: integer}\n")
    at = open_app()
    assert len(at.error) == 1
    assert "citizens" in at.error[0].value and "file_pattern" in at.error[0].value


def test_overview_counts_coverage_and_charts(loaded) -> None:  # type: ignore[no-untyped-def]
    at = open_app()
    counts = stage_counts(loaded, "citizens")
    table = frame(at, "counts_citizens")
    # Newest first; the never-delivered months are not rows, the failed one is.
    assert table["period"].tolist() == ["2025-07", "2025-03", "2025-02", "2025-01"]
    shown = dict(zip(table["period"], table["stage_rows"]))
    assert {p: int(shown[p]) for p in counts} == counts
    assert pd.isna(shown["2025-07"])
    assert dict(zip(table["period"], table["state"]))["2025-07"] == "failed"

    chart_data = charts(at)
    assert len(at.get("vega_lite_chart")) == 3  # coverage + one per dataset
    coverage = next(c for c in chart_data if "state" in c and "dataset" in c)
    cit = coverage[coverage["dataset"] == "citizens"].set_index("period")["state"].to_dict()
    assert [p for p, s in cit.items() if s == "missing"] == ["2025-04", "2025-05", "2025-06"]
    assert cit["2025-07"] == "failed"
    bars = [c for c in chart_data if "marker" in c]
    assert any(set(c["period"]) == {"2025-01", "2025-02", "2025-03", "2025-07"} for c in bars)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Months missing"] == "3"  # citizens 2025-04..06
    assert metrics["Months failed"] == "1"  # citizens 2025-07 (the misnamed file has no period)
    assert metrics["Months loaded"] == "4"  # citizens 01..03, benefit_payments 01


def test_threshold_slider_highlights_changed_periods(loaded) -> None:  # type: ignore[no-untyped-def]
    counts = stage_counts(loaded, "citizens")
    changes = {p: counts[p] / counts[q] - 1 for q, p in (("2025-01", "2025-02"), ("2025-02", "2025-03"))}
    at = open_app()
    at.slider(key="threshold").set_value(0).run()
    assert not at.exception
    flagged = dict(zip(*(frame(at, "counts_citizens")[c] for c in ("period", "flagged"))))
    assert {p: bool(flagged[p]) for p in changes} == {p: abs(c) > 0 for p, c in changes.items()}
    assert any(flagged.values()), "the demo's months differ in size; at 0 % a change must be flagged"
    assert not flagged["2025-01"]  # nothing to compare the first month with
    at.slider(key="threshold").set_value(100).run()
    assert not frame(at, "counts_citizens")["flagged"].any()


def test_ingestion_log_newest_first_and_filters(loaded) -> None:  # type: ignore[no-untyped-def]
    at = open_app("Ingestion log")
    log = frame(at, "ingestion_table")
    assert len(log) == loaded.scalar("SELECT count(*) FROM meta.ingestion_log") == 6
    assert log["ingested_at"].is_monotonic_decreasing
    assert log["id"].tolist() == sorted(log["id"], reverse=True)

    at.selectbox(key="ingestion_status").set_value("rejected").run()
    log = frame(at, "ingestion_table")
    assert log["file_name"].tolist() == ["citizens_june_final(2).xlsx"]
    assert log["error"].iloc[0].startswith("citizens_june_final(2).xlsx")

    at.selectbox(key="ingestion_status").set_value(None)
    at.selectbox(key="ingestion_dataset").set_value("citizens")
    at.selectbox(key="ingestion_period").set_value("2025-02").run()
    log = frame(at, "ingestion_table")
    assert log[["dataset", "period", "status"]].values.tolist() == [["citizens", "2025-02", "accepted"]]
    assert not at.exception


def test_validation_log_shows_errors_of_a_failed_validation(loaded) -> None:  # type: ignore[no-untyped-def]
    at = open_app("Validation log")
    log = frame(at, "validation_table")
    assert log["started_at"].is_monotonic_decreasing
    assert set(log["status"]) == {"passed", "failed"}

    at.selectbox(key="validation_status").set_value("failed").run()
    log = frame(at, "validation_table")
    assert log[["dataset", "period", "status"]].values.tolist() == [["citizens", "2025-07", "failed"]]
    failed_id = int(log["id"].iloc[0])

    chooser = at.selectbox(key="failed_validation")
    assert chooser.options and chooser.value == failed_id  # newest failure preselected
    errors = frame(at, "errors_table")
    assert errors[["excel_row", "column", "check"]].values.tolist()[0][:2] == [5, "sex"]
    assert errors["excel_row"].tolist() == [5, 12, 19]
    assert [b.label for b in at.get("download_button")] == ["Download these errors as CSV"]

    # A filter that excludes it leaves no failed validation to choose.
    at.selectbox(key="validation_period").set_value("2025-01").run()
    assert not [s for s in at.selectbox if s.key == "failed_validation"]
    with pytest.raises(KeyError):
        at.get_by_key("errors_table")


def test_load_log_filters_by_step(loaded) -> None:  # type: ignore[no-untyped-def]
    at = open_app("Load log")
    log = frame(at, "load_table")
    assert set(log["step"]) == {"load_stage", "transform", "publish"}
    assert log["started_at"].is_monotonic_decreasing
    at.selectbox(key="load_step").set_value("publish").run()
    log = frame(at, "load_table")
    assert set(log["step"]) == {"publish"}
    assert len(log) == loaded.scalar("SELECT count(*) FROM meta.load_log WHERE step = 'publish'")


def test_unreachable_warehouse_is_one_line(workspace, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WORKBENCH_DB_URL", "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere")
    at = open_app()
    assert len(at.error) == 1
    assert at.error[0].value.startswith("Cannot read the warehouse postgresql+psycopg2://postgres@127.0.0.1:1/")


def test_long_logs_are_paged_in_sql(workspace) -> None:  # type: ignore[no-untyped-def]
    start = pd.Timestamp("2024-01-01", tz="UTC")
    with write_transaction(workspace.engine) as conn:
        conn.execute(runlog.ingestion_log.insert(), [
            {"dataset": "citizens", "period": f"2024-{i % 12 + 1:02d}", "file_name": f"f{i}.xlsx",
             "status": "accepted", "ingested_at": (start + pd.Timedelta(minutes=i)).to_pydatetime()}
            for i in range(250)
        ])
    at = open_app("Ingestion log")
    assert at.get("pagination")[0].num_pages == 3
    assert len(frame(at, "ingestion_table")) == data.DEFAULT_PAGE_SIZE
    assert frame(at, "ingestion_table")["file_name"].iloc[0] == "f249.xlsx"
    assert "250 entries, newest first — showing 1–100" in texts(at.caption)
    at.get("pagination")[0].set_value(3).run()
    last = frame(at, "ingestion_table")
    assert last["file_name"].tolist() == [f"f{i}.xlsx" for i in range(49, -1, -1)]
    assert "250 entries, newest first — showing 201–250" in texts(at.caption)


def test_refresh_reads_the_warehouse_again(loaded) -> None:  # type: ignore[no-untyped-def]
    at = open_app("Ingestion log")
    before = len(frame(at, "ingestion_table"))
    ingest_file(loaded.landed / "citizens_2025-01.xlsx", settings=loaded.settings)
    at.run()
    assert len(frame(at, "ingestion_table")) == before  # served from the cache
    at.button(key="refresh").click().run()
    assert len(frame(at, "ingestion_table")) == before + 1
    # The sidebar says when the states were read.
    assert any(c.startswith("Data as of ") and c.endswith("or on Refresh)") for c in texts(at.caption))


# --------------------------------------------------------------------------
# Reload: a background job
# --------------------------------------------------------------------------
def test_reload_after_replacing_the_file_refreshes_the_counts(loaded) -> None:  # type: ignore[no-untyped-def]
    at = open_app()
    before = stage_counts(loaded, "citizens")["2025-02"]
    assert int(dict(zip(*(frame(at, "counts_citizens")[c] for c in ("period", "stage_rows"))))["2025-02"]) == before
    assert before != 10

    trim_xlsx(loaded.landed / "citizens_2025-02.xlsx", 10)
    click_reload(at, "citizens", "2025-02", reason="corrected delivery")

    assert stage_counts(loaded, "citizens")["2025-02"] == 10
    assert texts(at.success) == [
        f"Reloaded citizens 2025-02 from citizens_2025-02.xlsx: stage {before:,} rows → 10 rows."]
    shown = dict(zip(*(frame(at, "counts_citizens")[c] for c in ("period", "stage_rows"))))
    assert int(shown["2025-02"]) == 10  # the cached counts were dropped
    assert int(shown["2025-01"]) == stage_counts(loaded, "citizens")["2025-01"]
    assert at.button(key="reload").disabled is False
    # The correction is recorded with the reason and the dashboard as actor.
    assert loaded.rows("SELECT kind, reason, actor, rows_after FROM meta.corrections") == [
        ("reload", "corrected delivery", "dashboard", 10)]


def test_reload_of_a_file_that_now_fails_shows_the_error(loaded) -> None:  # type: ignore[no-untyped-def]
    before = stage_counts(loaded, "citizens")
    # The file of 2025-02 is replaced by a delivery with invalid rows.
    shutil.copy(loaded.landed / "citizens_2025-07.xlsx", loaded.landed / "citizens_2025-02.xlsx")
    at = click_reload(open_app(), "citizens", "2025-02")
    assert not at.success
    assert len(at.error) == 1
    assert at.error[0].value.startswith("Reload of citizens 2025-02 from citizens_2025-02.xlsx failed at validate")
    assert stage_counts(loaded, "citizens") == before  # stage untouched


def test_reload_without_a_landed_file_is_reported(loaded) -> None:  # type: ignore[no-untyped-def]
    (loaded.landed / "citizens_2025-03.xlsx").unlink()
    at = click_reload(open_app(), "citizens", "2025-03")
    assert len(at.error) == 1 and "no file for dataset 'citizens' and period 2025-03" in at.error[0].value


def test_a_running_job_is_shown_to_every_tab_and_never_rerun(loaded) -> None:  # type: ignore[no-untyped-def]
    stage_loads = "SELECT count(*) FROM meta.load_log WHERE step = 'load_stage' AND period = '2025-01'"
    loads = loaded.scalar(stage_loads)
    gate = threading.Event()
    # A job of another tab that holds its month until the gate opens.
    held = jobs.submit("reload", "citizens", "2025-01", "Reload of citizens 2025-01",
                       lambda: (gate.wait(30), jobs.Result(True, "held job done"))[1],
                       session="other-tab", scope=loaded.settings.db_url)
    assert held is not None
    try:
        at = open_app()
        assert any("Reload of citizens 2025-01: running" in i.value for i in at.info)
        # This tab reloads the same month: queued behind the other tab's job.
        at.selectbox(key="reload_dataset").set_value("citizens").run()
        at.selectbox(key="reload_period").set_value("2025-01")
        at.button(key="reload").click().run()
        assert any("Reload of citizens 2025-01: queued" in i.value for i in at.info)
        # A second click of this tab while its job is queued is dropped.
        at.button(key="reload").click().run()
        assert sum("queued" in i.value for i in at.info) == 1
        assert loaded.scalar(stage_loads) == loads  # nothing ran yet: FIFO
    finally:
        gate.set()
    assert jobs.wait_all(120)
    assert held.finished_at is not None
    mine = [j for j in jobs.all_jobs(loaded.settings.db_url) if j.session != "other-tab"]
    assert len(mine) == 1 and mine[0].started_at is not None and mine[0].started_at >= held.finished_at
    at.run()
    assert loaded.scalar(stage_loads) == loads + 1  # one run for two clicks
    assert texts(at.success)[0].startswith("Reloaded citizens 2025-01")
    # Reruns and refreshes never submit the job again.
    at.run()
    at.button(key="refresh").click().run()
    assert jobs.wait_all(60)
    assert loaded.scalar(stage_loads) == loads + 1


def test_jobs_run_in_order_per_month_and_survive_their_session() -> None:
    order: list[int] = []
    gate = threading.Event()

    def step(n: int) -> jobs.Result:
        if n == 1:
            gate.wait(10)
        order.append(n)
        return jobs.Result(True, f"job {n}")

    lane = [jobs.submit("reload", "x", "2025-01", f"job {n}", lambda n=n: step(n), session=f"s{n}", scope="t")
            for n in (1, 2, 3)]
    other = jobs.submit("reload", "x", "2025-02", "other month", lambda: step(9), session="s1", scope="t")
    assert other is not None and other.done.wait(10)  # another month does not wait
    assert order == [9]
    gate.set()
    assert jobs.wait_all(30)
    assert order == [9, 1, 2, 3]
    assert [j.status for j in lane if j] == [jobs.JobStatus.SUCCEEDED] * 3
    # A crash is one line, not a traceback, and the lane goes on.
    broken = jobs.submit("reload", "x", "2025-01", "Reload of x 2025-01", lambda: 1 / 0, scope="t")
    assert broken is not None and broken.done.wait(10)
    assert broken.status == jobs.JobStatus.FAILED
    assert broken.result is not None
    assert broken.result.message == "Reload of x 2025-01 failed unexpectedly: ZeroDivisionError: division by zero"

"""The month page (workbench/views/month.py), the jobs it submits, and the
New deliveries panel, through Streamlit's AppTest on SQLite and PostgreSQL.

The warehouse is filled by ``python -m pipeline run`` on the demo files
(fixture ``loaded`` in test_dashboard.py); jobs run in real threads and the
tests wait for them like a user waits for the page to refresh.
"""
from __future__ import annotations

import io
import threading

import pandas as pd
from streamlit.testing.v1 import AppTest

from tests.ui.test_dashboard import (  # noqa: F401  (fixtures)
    APP,
    frame,
    fresh_caches,
    loaded,
    stage_counts,
    texts,
    trim_xlsx,
)
from workbench import data, jobs


def open_month(dataset: str, period: str) -> AppTest:
    """The month page opened by its link, ?dataset=…&period=…"""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["dataset"] = dataset
    at.query_params["period"] = period
    at.switch_page("views/month.py")
    at.run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def settle(at: AppTest) -> AppTest:
    """Wait for the jobs, then look again (what the page's polling does)."""
    assert jobs.wait_all(120), "a job did not finish"
    at.run()
    assert not at.exception, at.exception
    return at


def test_month_link_shows_state_attempts_and_row_errors(loaded) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    at = open_month("citizens", "2025-07")
    assert at.selectbox(key="month_dataset").value == "citizens"
    assert at.selectbox(key="month_period").value == "2025-07"
    assert metrics(at)["State"] == "failed"
    assert any("validation" in e.value for e in at.error)  # the month's error, one line
    attempts = frame(at, "month_attempts")
    assert {"ingest", "validate"} <= set(attempts["step"])
    validate = attempts[attempts["step"] == "validate"].iloc[0]
    assert validate["status"] == "failed" and validate["seconds"] >= 0
    vid = int(loaded.scalar("SELECT max(id) FROM meta.validation_log WHERE period = '2025-07'"))
    stored = loaded.rows(f"SELECT row_number, \"column\", \"check\", row_key FROM meta.validation_errors "
                         f"WHERE validation_id = {vid} ORDER BY row_number, id")
    errors = frame(at, "month_errors")
    assert list(errors.columns) == ["excel_row", "key", "column", "header", "check", "value"]
    assert [(int(r), c, k, key) for r, c, k, key in zip(
        errors["excel_row"], errors["column"], errors["check"], errors["key"])] == [
        (int(r), c, k, key) for r, c, k, key in stored]
    # The Key column names the record: the row's citizen_id as the file gives it.
    sheet = pd.read_excel(loaded.landed / "citizens_2025-07.xlsx", dtype=object)
    assert [str(sheet.loc[int(r) - 2, "Citizen ID"]) for r in errors["excel_row"]] == list(errors["key"])
    # the page's CSV download is data.errors_csv of the same frame
    downloaded = pd.read_csv(io.BytesIO(data.errors_csv(data.month_errors(loaded.engine, vid))),
                             encoding="utf-8-sig", dtype=str)
    assert list(downloaded["key"]) == list(errors["key"])
    # The file's own spelling of the header, where it has one (e.g. "Monthly Income").
    assert "Monthly Income" in set(errors["header"])
    # Where the file's header is the column's own name ("Sex" for sex), that
    # name: never an empty cell.
    assert errors["header"].notna().all() and "sex" in set(errors["header"])
    assert frame(at, "month_checks")["header"].notna().all()
    totals = frame(at, "month_checks")
    assert int(totals["errors"].sum()) == len(stored)


def test_month_pickers_follow_the_dataset_and_update_the_link(loaded) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    at = open_month("citizens", "2025-02")
    assert metrics(at)["State"] == "published"
    assert metrics(at)["Stage rows"] == f"{stage_counts(loaded, 'citizens')['2025-02']:,}"
    at.selectbox(key="month_dataset").set_value("benefit_payments").run()
    assert at.selectbox(key="month_period").options == ["2025-01"]
    assert at.query_params["dataset"] == ["benefit_payments"] or at.query_params["dataset"] == "benefit_payments"


def test_preview_approve_reload_then_roll_back(loaded) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    before = stage_counts(loaded, "citizens")["2025-02"]
    trim_xlsx(loaded.landed / "citizens_2025-02.xlsx", 10)
    at = open_month("citizens", "2025-02")
    at.button(key="preview").click().run()
    settle(at)  # the preview is a job
    shown = metrics(at)
    assert (shown["Rows now"], shown["Rows after"], shown["Removed"], shown["Added"]) == (
        f"{before:,}", "10", f"{before - 10:,}", "0")
    assert stage_counts(loaded, "citizens")["2025-02"] == before  # a preview changes nothing
    assert at.button(key="approve").disabled  # no reason yet
    at.text_input(key="approve_reason").input("supplier sent a corrected file").run()
    assert not at.button(key="approve").disabled
    at.button(key="approve").click().run()
    settle(at)
    assert stage_counts(loaded, "citizens")["2025-02"] == 10
    assert metrics(at)["Stage rows"] == "10"  # the page shows the new count
    assert any(s.startswith("Reloaded citizens 2025-02") for s in texts(at.success))
    assert loaded.rows("SELECT kind, reason, actor FROM meta.corrections") == [
        ("reload", "supplier sent a corrected file", "dashboard")]

    versions = frame(at, "month_versions")
    assert len(versions) == 2 and versions["served"].tolist() == [True, False]
    older = int(versions["load_id"].iloc[1])
    assert at.selectbox(key="rollback_to").value == older
    at.text_input(key="rollback_reason").input("the correction was wrong").run()
    at.button(key="rollback").click().run()
    settle(at)
    assert stage_counts(loaded, "citizens")["2025-02"] == before
    assert metrics(at)["Stage rows"] == f"{before:,}"
    assert any(s.startswith(f"Rolled back citizens 2025-02 to load {older}") for s in texts(at.success))
    assert loaded.rows("SELECT kind, reason, actor FROM meta.corrections ORDER BY id")[-1] == (
        "rollback", "the correction was wrong", "dashboard")


def test_approve_refuses_a_file_replaced_after_the_preview(loaded) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    before = stage_counts(loaded, "citizens")["2025-02"]
    trim_xlsx(loaded.landed / "citizens_2025-02.xlsx", 10)
    at = open_month("citizens", "2025-02")
    at.button(key="preview").click().run()
    settle(at)
    assert metrics(at)["Rows after"] == "10"
    trim_xlsx(loaded.landed / "citizens_2025-02.xlsx", 5)  # replaced again after the look
    at.text_input(key="approve_reason").input("corrected").run()
    at.button(key="approve").click().run()
    assert jobs.wait_all(60)
    assert any("changed since the preview" in e.value for e in at.error)
    assert stage_counts(loaded, "citizens")["2025-02"] == before  # nothing reloaded
    assert loaded.scalar("SELECT count(*) FROM meta.corrections") == 0


def test_preview_runs_as_a_job_behind_the_months_reload(loaded) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """The preview reads the whole landed file: a job in the month's lane,
    not work inside the page run. Queued behind a reload of the month, it
    shows its diff once that is done — of the file as it is then."""
    before = stage_counts(loaded, "citizens")["2025-02"]
    trim_xlsx(loaded.landed / "citizens_2025-02.xlsx", 10)
    gate = threading.Event()
    held = jobs.submit("reload", "citizens", "2025-02", "Reload of citizens 2025-02",
                       lambda: (gate.wait(30), jobs.Result(True, "held"))[1], session="other-tab",
                       scope=loaded.settings.db_url)
    assert held is not None
    try:
        at = open_month("citizens", "2025-02")
        at.button(key="preview").click().run()
        assert not at.exception, at.exception
        assert any(i.value.startswith("Preview queued") for i in at.info)
        assert "Rows after" not in metrics(at)  # the page run did not compute it
        preview = next(j for j in jobs.active_jobs(loaded.settings.db_url) if j.kind == "preview")
        assert (preview.dataset, preview.period, preview.status) == ("citizens", "2025-02", jobs.JobStatus.QUEUED)
    finally:
        gate.set()
    settle(at)
    assert preview.result is not None and preview.result.ok
    assert preview.started_at is not None and held.finished_at is not None
    assert preview.started_at >= held.finished_at  # FIFO in the month's lane
    shown = metrics(at)
    assert (shown["Rows now"], shown["Rows after"], shown["Removed"]) == (f"{before:,}", "10", f"{before - 10:,}")
    assert stage_counts(loaded, "citizens")["2025-02"] == before  # a preview changes nothing
    assert not at.button(key="preview").disabled


def test_preview_without_a_landed_file_is_one_line(loaded) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    (loaded.landed / "citizens_2025-03.xlsx").unlink()
    at = open_month("citizens", "2025-03")
    at.button(key="preview").click().run()
    settle(at)
    assert not at.exception
    assert any("no file for dataset 'citizens' and period 2025-03" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "approve"]


def test_new_deliveries_are_listed_and_processed_from_the_page(loaded, demo_dir) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    assert loaded.add_demo(demo_dir, "citizens_2025-04*")
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    pending = frame(at, "new_deliveries")
    assert pending[["dataset", "period"]].values.tolist() == [["citizens", "2025-04"]]
    at.button(key="process_new").click().run()
    settle(at)
    assert "2025-04" in stage_counts(loaded, "citizens")
    assert any(s.startswith("Processed 1 file (citizens 2025-04)") for s in texts(at.success))
    assert not [c for c in at.get("flex_container") if getattr(c, "key", None) == "new_deliveries"]
    counts = frame(at, "counts_citizens")
    shown = dict(zip(counts["period"], counts["stage_rows"]))
    assert not pd.isna(shown["2025-04"])


def test_overview_links_every_month_to_its_page(loaded) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="open_month_citizens").value == "2025-07"  # newest first
    links = [link.proto for link in at.get("page_link")]
    assert any("dataset=citizens" in (p.query_string or "") and "period=2025-07" in (p.query_string or "")
               for p in links), links


# --------------------------------------------------------------------------
# A file refused for renamed headers: the mapping, Accept, the month loads
# --------------------------------------------------------------------------
CUSTOMERS = """\
# Customers: this comment must survive the Accept button.
datasets:
  customers:
    file_pattern: '^customers_(?P<period>\\d{4}-\\d{2})\\.csv$'
    primary_key: [customer_id]
    columns:
      customer_id: {type: integer, nullable: false, header: "Customer ID"}  # the key
      full_name:   {type: string, header: "Full Name"}
      age:         {type: integer, ge: {value: 0, severity: warn}}
"""


def test_accept_mapping_writes_the_aliases_and_loads_the_month(workspace) -> None:  # type: ignore[no-untyped-def]
    config = workspace.use_config(CUSTOMERS)
    (workspace.landed / "customers_2025-01.csv").write_text("Cust ID,Full Name,age\n1,Ann,30\n2,Bob,-1\n")
    assert workspace.main("pipeline", "run").returncode == 1  # refused at ingest: missing columns
    file_id = workspace.scalar("SELECT max(id) FROM meta.ingestion_log")
    dry = workspace.main("pipeline", "accept-headers", "--file-id", str(file_id), "--dry-run")
    printed = [line for line in dry.stdout.splitlines() if line.startswith("customers.")]
    assert printed == ["customers.customer_id: header 'Cust ID'"]

    at = open_month("customers", "2025-01")
    assert metrics(at)["State"] == "failed"
    assert [c.value for c in at.code] == ["\n".join(printed)]  # the CLI's mapping, as it prints it
    at.button(key="accept_headers").click().run()
    assert not at.exception, at.exception
    text = config.read_text()
    assert text.startswith("# Customers: this comment must survive the Accept button.\n")
    assert ('customer_id: {type: integer, nullable: false, header: ["Customer ID", Cust ID]}  # the key'
            in text)
    assert text.replace('["Customer ID", Cust ID]', '"Customer ID"') == CUSTOMERS  # nothing else moved

    settle(at)
    assert workspace.rows("SELECT customer_id, full_name, age FROM stage.customers ORDER BY 1") == [
        (1, "Ann", 30), (2, "Bob", -1)]
    assert any(s.startswith("Processed 1 file (customers 2025-01)") for s in texts(at.success))
    shown = metrics(at)
    assert (shown["State"], shown["Stage rows"], shown["Rows warned"], shown["Rows dropped"]) == (
        "published", "2", "1", "0")
    assert not [c for c in at.get("flex_container") if getattr(c, "key", None) == "header_mapping"]
    assert not at.code  # nothing left to accept
    warned = frame(at, "month_errors")
    assert [(int(r), c, k, v) for r, c, k, v in warned[["excel_row", "column", "check", "value"]].to_numpy()] == [
        (3, "age", "warn: ≥ 0", "-1")]


def test_no_mapping_is_offered_for_a_month_refused_for_another_reason(workspace) -> None:  # type: ignore[no-untyped-def]
    workspace.use_config(CUSTOMERS)
    (workspace.landed / "customers_2025-02.csv").write_text("Customer ID,Full Name,age\n")  # headers fine
    (workspace.landed / "customers_2025-03.csv").write_text("Cust ID,Name,Zebra\n1,Ann,3\n")  # no close match
    workspace.main("pipeline", "run")
    for period in ("2025-02", "2025-03"):
        at = open_month("customers", period)
        assert metrics(at)["State"] == "failed"
        assert not [b for b in at.button if b.key == "accept_headers"], period

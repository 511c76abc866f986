"""The Logs page's conventions, on SQLite and PostgreSQL: filters kept in
the address so a link reopens the same view, the Period filter's choices
following the Dataset, the useful columns first with durations, and
"1 entry" rather than "1 entries"."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.ui.test_dashboard import (  # noqa: F401  (fixtures)
    APP,
    frame,
    fresh_caches,
    loaded,
    texts,
)


def open_logs(**params: str) -> AppTest:
    """The Logs page opened by a link with ``params`` in its query string."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    for name, value in params.items():
        at.query_params[name] = value
    at.switch_page("views/logs.py")
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_link_reopens_the_same_filters(loaded) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    at = open_logs(view="Ingestion log", ingestion_status="rejected")
    assert at.selectbox(key="ingestion_status").value == "rejected"
    log = frame(at, "ingestion_table")
    assert log["file_name"].tolist() == ["citizens_june_final(2).xlsx"]
    assert "1 entry, newest first — showing 1" in texts(at.caption)

    at = open_logs(view="Load log", load_dataset="citizens", load_period="2025-02", load_step="publish")
    assert [at.selectbox(key=k).value for k in ("load_dataset", "load_period", "load_step")] == [
        "citizens", "2025-02", "publish"]
    log = frame(at, "load_table")
    assert log[["dataset", "period", "step"]].values.tolist() == [["citizens", "2025-02", "publish"]]
    # A value the log does not hold is dropped, not an empty page.
    at = open_logs(view="Validation log", validation_period="1999-01")
    assert at.selectbox(key="validation_period").value is None
    assert len(frame(at, "validation_table")) == loaded.scalar("SELECT count(*) FROM meta.validation_log")


def test_period_choices_follow_the_dataset(loaded) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    at = open_logs(view="Ingestion log")
    assert at.selectbox(key="ingestion_period").options == ["All", "2025-07", "2025-03", "2025-02", "2025-01"]
    at.selectbox(key="ingestion_period").set_value("2025-07").run()
    at.selectbox(key="ingestion_dataset").set_value("benefit_payments").run()
    assert not at.exception, at.exception
    # benefit_payments has only 2025-01: its choices, and 2025-07 falls back to All.
    assert at.selectbox(key="ingestion_period").options == ["All", "2025-01"]
    assert at.selectbox(key="ingestion_period").value is None
    log = frame(at, "ingestion_table")
    assert set(log["dataset"]) == {"benefit_payments"} and len(log) == 1
    # "All" is a choice, not a blank the clear button could leave.
    assert all(s.proto.required for s in at.selectbox if s.key.startswith("ingestion_"))


def test_useful_columns_first_with_durations(loaded) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    at = open_logs(view="Ingestion log")
    columns = list(frame(at, "ingestion_table").columns)
    assert columns.index("file_sha256") < columns.index("error") and columns[-1] == "error"
    at = open_logs(view="Validation log")
    validation = frame(at, "validation_table")
    assert list(validation.columns)[:4] == ["id", "started_at", "seconds", "dataset"]
    assert list(validation.columns)[-1] == "error"
    assert (validation["seconds"] >= 0).all()
    at = open_logs(view="Load log")
    load = frame(at, "load_table")
    assert list(load.columns)[-2:] == ["source", "error"]
    assert (load["seconds"] >= 0).all()

"""The validate stage end to end, on SQLite and PostgreSQL: real files in a
throw-away ``landed/``, ingest, validate, the Parquet written and the logs."""
from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.domain.schema import arrow_schema
from pipeline.errors import UsageError
from pipeline.io.parquet import parquet_path_for
from pipeline.stages.ingest import ingest_file
from pipeline.stages.validate import ValidationResult, validate_ingestion

CITIZEN_HEADER = ["Citizen ID", "First Name", "Last Name", "Birth Date", "Sex", "Municipality Code",
                  "Household ID", "Monthly Income"]
PAYMENT_HEADER = ["Payment ID", "Citizen ID", "Benefit Type", "Amount", "Payment Date", "Booked At",
                  "Is Correction"]

THINGS_CONFIG = r"""
datasets:
  things:
    file_pattern: '^things_(?P<period>\d{4}-\d{2})\.(xlsx|csv)$'
    primary_key: [thing_id]
    on_invalid_rows: reject
    columns:
      thing_id: {type: integer, nullable: false, header: "Thing ID"}
      amount:   {type: float}
      code:     {type: string, regex: '\d{4}'}
      day:      {type: date}
      seen_at:  {type: datetime}
      active:   {type: boolean}
  loose:
    file_pattern: '^loose_(?P<period>\d{4}-\d{2})\.csv$'
    on_invalid_rows: drop
    columns:
      n: {type: integer, nullable: false, ge: 0}
"""


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def write_xlsx(path: Path, rows: list[list], sheet: str = "citizens", before: tuple[str, ...] = ()) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name in before:
        wb.create_sheet(name).append(["not the data"])
    ws = wb.create_sheet(sheet)
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def write_csv(path: Path, rows: list[list], encoding: str = "utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as fh:
        csv.writer(fh).writerows(rows)
    return path


def citizen(i: int, **change) -> list:  # type: ignore[no-untyped-def]
    row = {"id": 1000 + i, "first": "Anna", "last": "Berg", "birth": dt.date(1980, 1, 1 + i % 28), "sex": "F",
           "code": "0219", "household": 50 + i, "income": 100.0 + i}
    row.update(change)
    return list(row.values())


def payment(i: int, day: str = "2025-07-15", **change) -> list:  # type: ignore[no-untyped-def]
    row = {"id": i, "citizen": 1000 + i, "type": "disability", "amount": "12.50", "date": day,
           "booked": f"{day} 08:30:00", "correction": "false"}
    row.update(change)
    return list(row.values())


def ingest(ws, path: Path) -> int:  # type: ignore[no-untyped-def]
    result = ingest_file(path, settings=ws.settings, config=ws.config(), engine=ws.engine)
    assert result.status == "accepted", result.error
    return result.ingestion_id


def validate(ws, ingestion_id: int) -> ValidationResult:  # type: ignore[no-untyped-def]
    return validate_ingestion(ingestion_id, settings=ws.settings, config=ws.config(), engine=ws.engine)


def errors(ws, validation_id: int) -> list[tuple]:  # type: ignore[no-untyped-def]
    return ws.rows('SELECT row_number, "column", "check", value FROM meta.validation_errors '
                   "WHERE validation_id = :v ORDER BY id", v=validation_id)


def log_row(ws, validation_id: int) -> tuple:  # type: ignore[no-untyped-def]
    return ws.rows("SELECT status, rows_total, rows_valid, rows_invalid, parquet_path, error, "
                   "started_at IS NOT NULL AND finished_at IS NOT NULL "
                   "FROM meta.validation_log WHERE id = :v", v=validation_id)[0]


# --------------------------------------------------------------------------
# the typed Parquet file
# --------------------------------------------------------------------------
def test_typed_parquet_round_trip_for_every_type(workspace) -> None:  # type: ignore[no-untyped-def]
    workspace.use_config(THINGS_CONFIG)
    path = write_xlsx(workspace.landed / "things_2025-06.xlsx", [
        ["Thing ID", "amount", "code", "day", "seen_at", "active"],
        [1.0, 2.5, "0219", dt.date(2025, 6, 1), dt.datetime(2025, 6, 1, 13, 45, 10), True],
        ["2", "-3", "0007", "2025-06-02", "2025-06-02 08:00", "yes"],
        [3, None, None, "03.06.2025", None, "FALSE"],
        [4, "1e3", 1234, 45838, "30/06/2025 23:59:59", 0],
    ], sheet="Sheet1")
    result = validate(workspace, ingest(workspace, path))
    assert (result.status, result.rows_total, result.rows_valid, result.rows_invalid) == ("passed", 4, 4, 0)
    assert result.parquet_path == workspace.data_dir / "stage/cleaned/things/period=2025-06/part-0.parquet"
    dataset = workspace.config().dataset("things")

    pf = pq.ParquetFile(result.parquet_path)
    assert pf.schema_arrow.remove_metadata() == arrow_schema(dataset)
    assert pf.metadata.row_group(0).column(0).compression == "ZSTD"
    meta = pf.schema_arrow.metadata
    assert meta[b"workbench.dataset"] == b"things" and meta[b"workbench.period"] == b"2025-06"
    assert meta[b"workbench.validation_id"] == str(result.validation_id).encode()
    assert meta[b"workbench.ingestion_id"] == str(result.ingestion_id).encode()
    assert meta[b"workbench.file_sha256"].decode() == workspace.scalar(
        "SELECT file_sha256 FROM meta.ingestion_log WHERE id = :i", i=result.ingestion_id)

    rows = pf.read().to_pylist()
    assert rows == [
        {"thing_id": 1, "amount": 2.5, "code": "0219", "day": dt.date(2025, 6, 1),
         "seen_at": dt.datetime(2025, 6, 1, 13, 45, 10), "active": True},
        {"thing_id": 2, "amount": -3.0, "code": "0007", "day": dt.date(2025, 6, 2),
         "seen_at": dt.datetime(2025, 6, 2, 8, 0), "active": True},
        {"thing_id": 3, "amount": None, "code": None, "day": dt.date(2025, 6, 3), "seen_at": None, "active": False},
        {"thing_id": 4, "amount": 1000.0, "code": "1234", "day": dt.date(2025, 6, 30),
         "seen_at": dt.datetime(2025, 6, 30, 23, 59, 59), "active": False},
    ]
    assert log_row(workspace, result.validation_id)[:5] == ("passed", 4, 4, 0, str(result.parquet_path))
    assert not list(result.parquet_path.parent.glob(".*")), "no temporary file left behind"


def test_integer_3_0_accepted_3_5_refused_with_its_row(workspace) -> None:  # type: ignore[no-untyped-def]
    workspace.use_config(THINGS_CONFIG)
    path = write_xlsx(workspace.landed / "things_2025-06.xlsx", [
        ["Thing ID", "amount", "code", "day", "seen_at", "active"],
        [3.0, 1, "1111", None, None, None], [3.5, 1, "2222", None, None, None], ["4.0", 1, "3333", None, None, None],
    ])
    result = validate(workspace, ingest(workspace, path))
    assert (result.status, result.rows_invalid, result.parquet_path) == ("failed", 1, None)
    assert errors(workspace, result.validation_id) == [(3, "thing_id", "type:integer", "3.5")]
    assert "row 3 '3.5'" in result.error


# --------------------------------------------------------------------------
# invalid rows: reject and drop
# --------------------------------------------------------------------------
def test_reject_logs_exact_rows_and_writes_no_parquet(workspace, demo_dir) -> None:  # type: ignore[no-untyped-def]
    (path,) = workspace.add_demo(demo_dir, "citizens_2025-07.xlsx")  # the demo's file with 3 bad rows
    iid = ingest(workspace, path)
    run = workspace.cli("--file-id", str(iid), module="pipeline.validate")
    assert run.returncode == 1, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert run.stderr.startswith(
        # cells as the file shows them (the number -120, not -120.0), columns
        # named by config name and, where it differs, the file's header
        "error: citizens_2025-07.xlsx: 3 invalid rows: sex isin [M, F, X] (row 5 'Q'), "
        "monthly_income (Monthly Income) ≥ 0 (row 12 '-120'), "
        "municipality_code (Municipality Code) regex ^\\d{4}$ (row 19 '12A4')")
    vid = workspace.scalar("SELECT max(id) FROM meta.validation_log")
    assert errors(workspace, vid) == [(5, "sex", "isin [M, F, X]", "Q"),
                                      (12, "monthly_income", "≥ 0", "-120"),
                                      (19, "municipality_code", "regex ^\\d{4}$", "12A4")]
    status, total, valid, invalid, parquet, error, timed = log_row(workspace, vid)
    assert (status, total, valid, invalid, parquet, timed) == ("failed", 60, 57, 3, None, True)
    assert error in run.stderr
    assert not parquet_path_for(workspace.settings, "citizens", "2025-07").exists()


def test_failed_validation_keeps_the_earlier_parquet(workspace) -> None:  # type: ignore[no-untyped-def]
    path = write_xlsx(workspace.landed / "citizens_2025-06.xlsx",
                      [CITIZEN_HEADER, citizen(1), citizen(2)])
    first = validate(workspace, ingest(workspace, path))
    before = first.parquet_path.read_bytes()
    write_xlsx(path, [CITIZEN_HEADER, citizen(1), citizen(2, sex="Q")])
    second = validate(workspace, ingest(workspace, path))
    assert second.status == "failed" and second.parquet_path is None
    assert first.parquet_path.read_bytes() == before


def test_drop_keeps_valid_rows_and_logs_the_others(workspace) -> None:  # type: ignore[no-untyped-def]
    path = write_csv(workspace.landed / "benefit_payments_2025-07.csv", [
        PAYMENT_HEADER,
        payment(1),                                   # row 2 ok
        payment(2, "2025-06-30"),                     # row 3 paid in June: outside the file's month
        payment(3, amount="-5"),                      # row 4 amount > 0
        payment(4, "2025-07-31"),                     # row 5 ok (last day)
        payment(5, "2025-08-01"),                     # row 6 outside
        payment(6, correction="perhaps"),             # row 7 not a boolean
        payment(7, "2025-07-01"),                     # row 8 ok
    ])
    iid = ingest(workspace, path)
    run = workspace.cli("--file-id", str(iid), module="pipeline.validate")
    assert run.returncode == 0, run.stderr
    parquet = Path(run.stdout.strip().splitlines()[-1])
    assert parquet == parquet_path_for(workspace.settings, "benefit_payments", "2025-07")
    assert pd.read_parquet(parquet)["payment_id"].tolist() == [1, 4, 7]
    vid = workspace.scalar("SELECT max(id) FROM meta.validation_log")
    assert log_row(workspace, vid)[:5] == ("passed", 7, 3, 4, str(parquet))
    assert errors(workspace, vid) == [
        (3, "payment_date", "in period 2025-07", "2025-06-30"),
        (4, "amount", "> 0", "-5"),
        (6, "payment_date", "in period 2025-07", "2025-08-01"),
        (7, "is_correction", "type:boolean", "perhaps"),
    ]


def test_drop_that_leaves_nothing_fails(workspace) -> None:  # type: ignore[no-untyped-def]
    workspace.use_config(THINGS_CONFIG)
    path = write_csv(workspace.landed / "loose_2025-06.csv", [["n"], ["-1"], ["x"]])
    result = validate(workspace, ingest(workspace, path))
    assert (result.status, result.rows_total, result.rows_invalid, result.parquet_path) == ("failed", 2, 2, None)
    assert "all 2 rows are invalid" in result.error


def test_duplicate_primary_key_reports_every_row(workspace) -> None:  # type: ignore[no-untyped-def]
    path = write_xlsx(workspace.landed / "citizens_2025-06.xlsx", [
        CITIZEN_HEADER, citizen(1, id=7), citizen(2), citizen(3, id=7), citizen(4), citizen(5, id=7)])
    result = validate(workspace, ingest(workspace, path))
    assert (result.status, result.rows_invalid) == ("failed", 3)
    assert errors(workspace, result.validation_id) == [
        (2, "citizen_id", "primary_key", "7"), (4, "citizen_id", "primary_key", "7"),
        (6, "citizen_id", "primary_key", "7")]


def test_at_most_1000_errors_are_logged_but_all_rows_counted(workspace) -> None:  # type: ignore[no-untyped-def]
    workspace.use_config(THINGS_CONFIG)
    path = write_csv(workspace.landed / "loose_2025-06.csv", [["n"]] + [["-1"]] * 1100 + [["5"]])
    result = validate(workspace, ingest(workspace, path))
    assert (result.status, result.rows_total, result.rows_valid, result.rows_invalid) == ("passed", 1101, 1, 1100)
    logged = errors(workspace, result.validation_id)
    assert len(logged) == 1000 and logged[0][0] == 2 and logged[-1][0] == 1001


# --------------------------------------------------------------------------
# what is read
# --------------------------------------------------------------------------
def test_named_sheet_leading_zeros_and_dates_as_text(workspace) -> None:  # type: ignore[no-untyped-def]
    path = write_xlsx(workspace.landed / "citizens_2025-06.xlsx", [
        CITIZEN_HEADER,
        citizen(1, code="0219", birth=dt.date(1970, 5, 6)),
        citizen(2, code="0007", birth="1971-02-03", household=None, income=None),
        citizen(3, code="1080", birth="04.03.1972", sex="  "),
    ], before=("Read me", "Pivot"))  # the dataset's sheet is 'citizens', not the first
    result = validate(workspace, ingest(workspace, path))
    assert result.status == "passed", result.error
    frame = pd.read_parquet(result.parquet_path)
    assert frame["municipality_code"].tolist() == ["0219", "0007", "1080"]
    assert frame["birth_date"].tolist() == [dt.date(1970, 5, 6), dt.date(1971, 2, 3), dt.date(1972, 3, 4)]
    assert frame["sex"].isna().tolist() == [False, False, True]  # whitespace-only is a blank cell


def test_empty_sheet_is_refused(workspace) -> None:  # type: ignore[no-untyped-def]
    path = write_xlsx(workspace.landed / "citizens_2025-06.xlsx", [CITIZEN_HEADER])
    result = validate(workspace, ingest(workspace, path))
    assert (result.status, result.rows_total, result.rows_valid, result.parquet_path) == ("failed", 0, 0, None)
    assert result.error == ("citizens_2025-06.xlsx: no data rows (only the header row); "
                            "an empty delivery is not loaded")
    assert log_row(workspace, result.validation_id)[0] == "failed"


def test_csv_in_the_wrong_encoding_is_refused_in_one_line(workspace) -> None:  # type: ignore[no-untyped-def]
    path = write_csv(workspace.landed / "benefit_payments_2025-07.csv",
                     [PAYMENT_HEADER, payment(1), payment(2, type="Åberg")], encoding="latin-1")
    iid = ingest(workspace, path)  # the header row alone decodes fine
    run = workspace.cli("--file-id", str(iid), module="pipeline.validate")
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == ("error: benefit_payments_2025-07.csv: row 3 is not valid utf-8 (byte 0xc5); "
                          "save the file as utf-8\n")
    assert workspace.rows("SELECT status, error FROM meta.validation_log") == [("failed", run.stderr[7:-1])]


# --------------------------------------------------------------------------
# refusals before reading
# --------------------------------------------------------------------------
def test_file_changed_or_gone_since_ingest(workspace) -> None:  # type: ignore[no-untyped-def]
    path = write_xlsx(workspace.landed / "citizens_2025-06.xlsx", [CITIZEN_HEADER, citizen(1)])
    iid = ingest(workspace, path)
    write_xlsx(path, [CITIZEN_HEADER, citizen(1), citizen(2)])
    run = workspace.cli("--file-id", str(iid), module="pipeline.validate")
    assert run.returncode == 1 and run.stderr.count("\n") == 1
    assert "citizens_2025-06.xlsx: file changed since ingest" in run.stderr
    assert workspace.rows("SELECT status, ingestion_id FROM meta.validation_log") == [("failed", iid)]

    os.remove(path)
    result = validate(workspace, iid)
    assert result.status == "failed" and "no longer exists" in result.error


def test_unknown_or_rejected_ingestion_is_a_usage_error(workspace) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match="^no ingestion with id 999 in meta.ingestion_log$"):
        validate(workspace, 999)
    bad = write_xlsx(workspace.landed / "citizens_2025-06.xlsx", [CITIZEN_HEADER[:-1], citizen(1)[:-1]])
    rejected = ingest_file(bad, settings=workspace.settings, config=workspace.config(), engine=workspace.engine)
    run = workspace.cli("--file-id", str(rejected.ingestion_id), module="pipeline.validate")
    assert run.returncode == 2
    assert run.stderr.startswith(f"error: ingestion {rejected.ingestion_id} was rejected at ingest: ")
    assert workspace.scalar("SELECT count(*) FROM meta.validation_log") == 0


# --------------------------------------------------------------------------
# the demo deliveries
# --------------------------------------------------------------------------
def test_all_demo_files_give_one_parquet_per_dataset_and_month(workspace, demo_dir) -> None:  # type: ignore[no-untyped-def]
    good = [p for p in workspace.add_demo(demo_dir) if p.name != "citizens_2025-07.xlsx"]
    results = []
    for path in good:
        got = ingest_file(path, settings=workspace.settings, config=workspace.config(), engine=workspace.engine)
        if got.status == "accepted":
            results.append(validate(workspace, got.ingestion_id))
    assert [r.status for r in results] == ["passed"] * 12
    cleaned = workspace.settings.cleaned_dir
    months = [f"2025-{m:02d}" for m in range(1, 7)]
    for dataset in ("citizens", "benefit_payments"):
        assert sorted(p.name for p in (cleaned / dataset).iterdir()) == [f"period={m}" for m in months]
        frame = pd.read_parquet(cleaned / dataset)
        assert "period" in frame.columns
        assert sorted(frame["period"].astype(str).unique()) == months
    citizens = pd.read_parquet(cleaned / "citizens")
    assert len(citizens) == sum(r.rows_valid for r in results if r.dataset == "citizens")
    assert citizens["municipality_code"].str.fullmatch(r"\d{4}").all()
    assert citizens["municipality_code"].str.startswith("0").any()


KEYED_CONFIG = r"""
datasets:
  pairs:
    file_pattern: '^pairs_(?P<period>\d{4}-\d{2})\.csv$'
    primary_key: [region, seq]
    on_invalid_rows: reject
    columns:
      region: {type: string, header: "Region"}
      seq:    {type: integer}
      n:      {type: integer, ge: 0}
  loose:
    file_pattern: '^loose_(?P<period>\d{4}-\d{2})\.csv$'
    on_invalid_rows: drop
    columns:
      n: {type: integer, nullable: false, ge: 0}
"""


def row_keys(ws, validation_id: int) -> list[tuple]:  # type: ignore[no-untyped-def]
    return ws.rows('SELECT row_number, "column", row_key FROM meta.validation_errors '
                   "WHERE validation_id = :v ORDER BY id", v=validation_id)


def test_each_error_names_its_rows_primary_key_as_the_file_gives_it(workspace) -> None:  # type: ignore[no-untyped-def]
    # an xlsx key cell is a number (1003.0 in the reader): logged as Excel shows it
    path = write_xlsx(workspace.landed / "citizens_2025-06.xlsx", [
        CITIZEN_HEADER, citizen(1), citizen(2, sex="Q"), citizen(3, id=1003.0, income=-1), citizen(4, id=None)])
    result = validate(workspace, ingest(workspace, path))
    assert result.status == "failed"
    assert row_keys(workspace, result.validation_id) == [
        (3, "sex", "1002"), (4, "monthly_income", "1003"),
        (5, "citizen_id", None)]  # the key cell itself is empty: no key to name


def test_a_composite_key_is_named_column_by_column(workspace) -> None:  # type: ignore[no-untyped-def]
    workspace.use_config(KEYED_CONFIG)
    path = write_csv(workspace.landed / "pairs_2025-06.csv", [
        ["Region", "seq", "n"], ["North", "1", "5"], ["North", "2", "-1"], ["South", "x", "3"]])
    result = validate(workspace, ingest(workspace, path))
    assert result.status == "failed"
    assert row_keys(workspace, result.validation_id) == [
        (3, "n", "region=North, seq=2"), (4, "seq", "region=South, seq=x")]  # as delivered, even untypable


def test_a_dataset_without_a_key_logs_no_key(workspace) -> None:  # type: ignore[no-untyped-def]
    workspace.use_config(KEYED_CONFIG)
    path = write_csv(workspace.landed / "loose_2025-06.csv", [["n"], ["-1"], ["4"]])
    result = validate(workspace, ingest(workspace, path))
    assert result.status == "passed"
    assert row_keys(workspace, result.validation_id) == [(2, "n", None)]

"""Pure tests of what the validate stage derives from the config: the pandera
schema, the Arrow schema, the coercion of raw cells, and ``read_table``.
No database here."""
from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pytest

from pipeline.domain.coerce import coerce_column, coerce_frame
from pipeline.domain.config import ColumnConfig, parse_config
from pipeline.domain.schema import arrow_schema, build_schema
from pipeline.domain.validation import check_frame, decide
from pipeline.errors import ConfigError, FileRefused
from pipeline.io.config_file import load_config
from pipeline.io.landed import read_table

REPO = Path(__file__).resolve().parents[2]

ALL_TYPES = {
    "datasets": {
        "things": {
            "file_pattern": r"^things_(?P<period>\d{4}-\d{2})\.(xlsx|csv)$",
            "primary_key": ["thing_id"],
            "columns": {
                "thing_id": {"type": "integer", "nullable": False, "header": "Thing ID"},
                "amount": {"type": "float", "ge": 0, "lt": 1000},
                "code": {"type": "string", "regex": r"\d{4}"},
                "label": {"type": "string", "min_length": 2, "max_length": 5, "isin": ["ab", "abc", "abcdef"]},
                "day": {"type": "date", "nullable": False},
                "seen_at": {"type": "datetime"},
                "active": {"type": "boolean"},
                "serial": {"type": "integer", "unique": True, "gt": 0, "le": 100},
            },
        }
    }
}


def config(raw: dict = ALL_TYPES, tmp: Path = REPO):  # type: ignore[no-untyped-def]
    return parse_config(raw, tmp / "datasets_config.yml")


@pytest.fixture(scope="module")
def things():  # type: ignore[no-untyped-def]
    return config().dataset("things")


@pytest.fixture(scope="module")
def shipped():  # type: ignore[no-untyped-def]
    return load_config(REPO / "datasets_config.yml")


def col(type_: str, **kw) -> ColumnConfig:  # type: ignore[no-untyped-def]
    return ColumnConfig(name="c", type=type_, **kw)


def coerce(type_: str, *values):  # type: ignore[no-untyped-def]
    result = coerce_column(np.array(values, dtype=object), col(type_))
    return list(pd.array(result.values).astype(object)), list(result.bad), list(result.blank)


def typed_frame(dataset, rows: list[dict]) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    raw = pd.DataFrame(rows, dtype=object, index=pd.RangeIndex(2, 2 + len(rows), name="row_number"))
    frame, failures = coerce_frame(raw, dataset)
    assert failures.empty, failures
    return frame


def failures_of(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> set[tuple]:
    with pytest.raises(pa.errors.SchemaErrors) as info:
        schema.validate(frame, lazy=True)
    cases = info.value.failure_cases
    return {(int(i), c, k) for i, c, k in zip(cases["index"], cases["column"], cases["check"])}


# --------------------------------------------------------------------------
# Arrow schema
# --------------------------------------------------------------------------
def test_arrow_schema_types_nullability_and_order(things) -> None:  # type: ignore[no-untyped-def]
    schema = arrow_schema(things)
    assert schema.names == list(things.columns)
    assert [str(f.type) for f in schema] == [
        "int64", "double", "string", "string", "date32[day]", "timestamp[us]", "bool", "int64"]
    assert [f.nullable for f in schema] == [False, True, True, True, False, True, True, True]
    assert "period" not in schema.names and not schema.metadata


def test_arrow_schema_of_shipped_datasets(shipped) -> None:  # type: ignore[no-untyped-def]
    bp = arrow_schema(shipped.dataset("benefit_payments"))
    assert bp.field("payment_date").type == pyarrow.date32()
    assert bp.field("booked_at").type == pyarrow.timestamp("us") and bp.field("booked_at").nullable
    assert bp.field("is_correction").type == pyarrow.bool_() and not bp.field("is_correction").nullable


# --------------------------------------------------------------------------
# pandera schema from the config
# --------------------------------------------------------------------------
GOOD_ROW = {"thing_id": 1, "amount": 1.5, "code": "0219", "label": "abc", "day": dt.date(2025, 6, 1),
            "seen_at": dt.datetime(2025, 6, 1, 12, 30), "active": True, "serial": 5}


def test_valid_frame_passes_with_every_type(things) -> None:  # type: ignore[no-untyped-def]
    frame = typed_frame(things, [GOOD_ROW, {**GOOD_ROW, "thing_id": 2, "serial": 6, "amount": None,
                                            "seen_at": None, "active": None}])
    build_schema(things, "2025-06").validate(frame, lazy=True)
    assert [str(t) for t in frame.dtypes] == [
        "Int64", "float64", "string", "string", "datetime64[us]", "datetime64[us]", "boolean", "Int64"]


def test_every_config_check_reports_its_row(things) -> None:  # type: ignore[no-untyped-def]
    bad = [
        {**GOOD_ROW, "thing_id": 1, "amount": -1, "serial": 1},              # row 2: ge
        {**GOOD_ROW, "thing_id": 2, "amount": 1000, "serial": 2},            # row 3: lt
        {**GOOD_ROW, "thing_id": 3, "code": "02190", "serial": 3},           # row 4: regex is a full match
        {**GOOD_ROW, "thing_id": 4, "label": "a", "serial": 4},              # row 5: min_length + isin
        {**GOOD_ROW, "thing_id": 5, "label": "abcdef", "serial": 0},         # row 6: max_length, gt
        {**GOOD_ROW, "thing_id": 6, "label": "zz", "serial": 101},           # row 7: isin, le
        {**GOOD_ROW, "thing_id": 7, "day": None, "serial": 7},               # row 8: not nullable
        {**GOOD_ROW, "thing_id": 8, "serial": 7},                            # row 9: unique serial
    ]
    got = failures_of(build_schema(things, "2025-06"), typed_frame(things, bad))
    assert got == {
        (2, "amount", "≥ 0"), (3, "amount", "< 1000"), (4, "code", r"regex \d{4}"),
        (5, "label", "min_length 2"), (5, "label", "isin [ab, abc, abcdef]"),
        (6, "label", "max_length 5"), (6, "serial", "> 0"),
        (7, "label", "isin [ab, abc, abcdef]"), (7, "serial", "≤ 100"),
        (8, "day", "not_nullable"),
        (8, "serial", "field_uniqueness"), (9, "serial", "field_uniqueness"),
    }


def test_duplicate_primary_key_reports_every_row(things) -> None:  # type: ignore[no-untyped-def]
    rows = [{**GOOD_ROW, "thing_id": k, "serial": i + 1} for i, k in enumerate([7, 1, 7, 2, 7])]
    got = failures_of(build_schema(things, "2025-06"), typed_frame(things, rows))
    assert got == {(2, "thing_id", "multiple_fields_uniqueness"), (4, "thing_id", "multiple_fields_uniqueness"),
                   (6, "thing_id", "multiple_fields_uniqueness")}


def test_benefit_payments_date_must_fall_in_the_period(shipped) -> None:  # type: ignore[no-untyped-def]
    bp = shipped.dataset("benefit_payments")
    base = {"payment_id": 1, "citizen_id": 1, "benefit_type": "disability", "amount": 10.0,
            "payment_date": "2025-07-01", "booked_at": "", "is_correction": "false"}
    dates = ["2025-07-01", "2025-07-31", "2025-06-30", "2025-08-01", "2024-07-15"]
    rows = [{**base, "payment_id": i + 1, "payment_date": d} for i, d in enumerate(dates)]
    # The shipped config's `rules: [{column: payment_date, within_period: true}]`
    # is a DataFrame-level check of the pandera schema.
    checks = build_schema(bp, "2025-07").checks
    assert [(c.name, c.error) for c in checks] == [("rule[0]", "in period 2025-07")]
    _, failures = check_frame(pd.DataFrame(rows, dtype=object, index=pd.RangeIndex(2, 7)), bp, "2025-07")
    got = sorted(tuple(r) for r in failures[["row_number", "column", "check", "value"]].to_numpy())
    assert got == [(4, "payment_date", "in period 2025-07", "2025-06-30"),
                   (5, "payment_date", "in period 2025-07", "2025-08-01"),
                   (6, "payment_date", "in period 2025-07", "2024-07-15")]
    # The same rows belong to another month's file differently: the rule uses the period.
    _, june = check_frame(pd.DataFrame(rows, dtype=object, index=pd.RangeIndex(2, 7)), bp, "2025-06")
    assert sorted(june["row_number"]) == [2, 3, 5, 6]


SPANS = {"datasets": {"spans": {
    "file_pattern": r"^spans_(?P<period>\d{4}-\d{2})\.csv$",
    "on_invalid_rows": "drop",
    "rules": [{"column": "end_date", "op": ">=", "other": "start_date"},
              {"column": "amount", "op": "<=", "other": "limit", "severity": "warn"}],
    "columns": {"id": "integer", "start_date": "date", "end_date": "date", "amount": {"type": "decimal",
                "precision": 10, "scale": 2}, "limit": {"type": "decimal", "precision": 10, "scale": 2},
                "note": "string"},
}}}


def spans_raw(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame([dict(zip(["id", "start_date", "end_date", "amount", "limit", "note"], r)) for r in rows],
                        dtype=object, index=pd.RangeIndex(2, 2 + len(rows)))


def test_rules_are_pandera_frame_checks_reported_once_per_row() -> None:
    spans = config(SPANS).dataset("spans")
    schema = build_schema(spans, "2025-03")
    assert [(c.name, c.error) for c in schema.checks] == [("rule[0]", ">= start_date"),
                                                          ("rule[1]", "warn: <= limit")]
    raw = spans_raw(("1", "2025-03-01", "2025-03-02", "5.00", "10.00", "ok"),
                    ("2", "2025-03-05", "2025-03-01", "50.00", "10.00", "both rules"),
                    ("3", "2025-03-05", "", "1.00", "", "nulls skip the rules"),
                    ("4", "2025-03-05", "2025-03-04", "1.00", "2.00", "error rule only"))
    # pandera itself lists a sample failing row once per column of the frame, and
    # judges every row in the check's output ...
    with pytest.raises(pa.errors.SchemaErrors) as info:
        schema.validate(coerce_frame(raw, spans)[0], lazy=True)
    cases = info.value.failure_cases
    assert sorted(cases.loc[cases["check"] == ">= start_date", "column"]) == sorted(spans.columns)
    verdict = next(e.check_output for e in info.value.schema_errors if e.check.name == "rule[0]")
    assert verdict.tolist() == [True, False, True, False]
    # ... the failures the log gets name each failing row once per rule, both columns named.
    typed, failures = check_frame(raw, spans, "2025-03")
    assert sorted(tuple(r) for r in failures[["row_number", "column", "check", "value"]].to_numpy()) == [
        (3, "amount", "warn: <= limit", "50.00"),
        (3, "end_date", ">= start_date", "2025-03-01"),
        (5, "end_date", ">= start_date", "2025-03-04"),
    ]
    assert failures["row_key"].isna().all()  # spans has no primary key: no record to name
    # severity: error drops its rows (on_invalid_rows: drop); warn keeps them, counted.
    decision = decide(typed, failures, spans, "spans_2025-03.csv", 1)
    assert decision.passed and decision.rows is not None
    assert list(decision.rows["id"]) == [1, 3] and decision.dropped == 2 and decision.warned == 0


def test_rule_severity_warn_keeps_the_row_and_error_rejects_the_file() -> None:
    spans = config(SPANS).dataset("spans")
    raw = spans_raw(("1", "2025-03-01", "2025-03-02", "50.00", "10.00", "warned"),
                    ("2", "2025-03-01", "2025-03-02", "5.00", "10.00", "fine"))
    typed, failures = check_frame(raw, spans, "2025-03")
    decision = decide(typed, failures, spans, "spans_2025-03.csv", 1)
    assert decision.passed and decision.warned == 1 and decision.counts == (2, 2, 0)
    rejecting = config({"datasets": {"spans": {**SPANS["datasets"]["spans"], "on_invalid_rows": "reject"}}})
    raw = spans_raw(("1", "2025-03-05", "2025-03-01", "5.00", "10.00", "ends before it starts"))
    typed, failures = check_frame(raw, rejecting.dataset("spans"), "2025-03")
    decision = decide(typed, failures, rejecting.dataset("spans"), "spans_2025-03.csv", 7)
    assert not decision.passed and decision.error == (
        "spans_2025-03.csv: 1 invalid row: end_date >= start_date (row 2 '2025-03-01') "
        "(see meta.validation_errors, validation 7)")


def test_python_checks_module_without_the_hook_is_a_config_error(tmp_path: Path) -> None:
    raw = {"datasets": {"x": {**ALL_TYPES["datasets"]["things"], "python_checks": "pipeline.domain.config"}}}
    with pytest.raises(ConfigError, match=r"dataset 'x', key 'python_checks'.*extend_schema"):
        build_schema(config(raw).dataset("x"), "2025-06")


# --------------------------------------------------------------------------
# Coercion of raw cells
# --------------------------------------------------------------------------
def test_integers_whole_floats_accepted_fractions_refused() -> None:
    values, bad, blank = coerce("integer", 3.0, 3, "3", " 4 ", "3.0", 3.5, "3.5", "x", True, "", None, "  ")
    assert values[:5] == [3, 3, 3, 4, 3]
    assert bad == [False] * 5 + [True] * 4 + [False] * 3
    assert blank == [False] * 9 + [True] * 3


def test_large_integer_ids_stay_exact() -> None:
    values, bad, _ = coerce("integer", 2**60 + 1, str(2**60 + 3), "99999999999999999999")
    assert values[:2] == [2**60 + 1, 2**60 + 3] and bad == [False, False, True]


def test_floats_must_be_finite_numbers() -> None:
    values, bad, _ = coerce("float", 1, 2.5, "-120.0", "1e3", "nan", "inf", "1,5", dt.date(2025, 1, 1))
    assert values[:4] == [1.0, 2.5, -120.0, 1000.0]
    assert bad == [False] * 4 + [True] * 4


def test_strings_keep_leading_zeros_and_spaces_blank_is_null() -> None:
    values, bad, blank = coerce("string", "0219", " anna ", 219.0, 2.5, True, dt.date(2025, 1, 2), "   ", "")
    assert values == ["0219", " anna ", "219", "2.5", "TRUE", "2025-01-02", pd.NA, pd.NA]
    assert not any(bad) and blank == [False] * 6 + [True, True]


def test_dates_from_excel_cells_serials_and_text() -> None:
    values, bad, _ = coerce(
        "date", dt.date(2025, 6, 30), dt.datetime(2025, 6, 30), 45838.0, "2025-06-30", " 2025-06-30 ",
        "30.06.2025", "30/06/2025", "1.7.2025", "2025-06-30T00:00:00",
        dt.datetime(2025, 6, 30, 13, 5), "2025-06-31", "June 30", "06/30/2025", 1.5, dt.time(1, 2),
    )
    assert values[:9] == [pd.Timestamp("2025-06-30")] * 7 + [pd.Timestamp("2025-07-01"), pd.Timestamp("2025-06-30")]
    # a time of day in a date column, impossible dates, US order, fractions of a day and bare times are refused
    assert bad == [False] * 9 + [True] * 6


def test_datetimes_keep_the_time() -> None:
    values, bad, _ = coerce("datetime", dt.datetime(2025, 6, 30, 13, 5, 7), "2025-06-30 13:05",
                            "2025-06-30T13:05:07.25", "30.06.2025 13:05:07", "2025-06-30", "2025-06-30 25:00",
                            "2025-06-30T13:05+02:00")
    assert values[:5] == [pd.Timestamp("2025-06-30 13:05:07"), pd.Timestamp("2025-06-30 13:05"),
                          pd.Timestamp("2025-06-30 13:05:07.25"), pd.Timestamp("2025-06-30 13:05:07"),
                          pd.Timestamp("2025-06-30")]
    assert bad == [False] * 5 + [True, True]


def test_booleans_from_cells_numbers_and_words() -> None:
    values, bad, _ = coerce("boolean", True, False, "TRUE", " yes ", "No", "y", "1", "0", 1.0, 0,
                            2, "maybe", dt.date(2025, 1, 1))
    assert values[:10] == [True, False, True, True, False, True, True, False, True, False]
    assert bad == [False] * 10 + [True] * 3


def test_coerce_frame_reports_original_values_with_row_numbers(things) -> None:  # type: ignore[no-untyped-def]
    raw = pd.DataFrame([{**GOOD_ROW, "thing_id": 3.5}, {**GOOD_ROW, "day": "31.02.2025", "active": "maybe"}],
                       dtype=object, index=pd.Index([2, 7], name="row_number"))
    frame, failures = coerce_frame(raw, things)
    assert failures[["row_number", "column", "check"]].values.tolist() == [
        [2, "thing_id", "type:integer"], [7, "day", "type:date"], [7, "active", "type:boolean"]]
    assert failures["value"].tolist() == [3.5, "31.02.2025", "maybe"]
    assert frame["thing_id"].isna().tolist() == [True, False]


# --------------------------------------------------------------------------
# read_table
# --------------------------------------------------------------------------
def write_xlsx(path: Path, sheets: dict[str, list[list]]) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    ws.cell(row=r, column=c, value=value)
    wb.save(path)
    return path


def test_xlsx_named_sheet_row_numbers_and_raw_cells(tmp_path: Path, shipped) -> None:  # type: ignore[no-untyped-def]
    citizens = shipped.dataset("citizens")   # sheet: citizens
    header = ["Citizen ID", "First Name", "Last Name", "Birth Date", "Sex", "Municipality Code",
              "Household ID", "Monthly Income"]
    path = write_xlsx(tmp_path / "citizens_2025-06.xlsx", {
        "About": [["this sheet is not the data"]],
        "citizens": [
            header,
            [1, "Anna", "Berg", dt.date(1980, 1, 2), "F", "0219", 7, 100.5],
            [None] * 8,                                  # a blank row: skipped, its number unused
            [2, " bo ", "Ek", "1990-03-04", "M", "1080", None, "12"],
        ],
    })
    frame, reader = read_table(path, citizens)
    assert reader == "calamine"
    assert list(frame.columns) == list(citizens.columns)
    assert frame.index.tolist() == [2, 4] and frame.index.name == "row_number"
    assert frame.loc[2, "municipality_code"] == "0219" and frame.loc[4, "first_name"] == " bo "
    assert frame.loc[2, "birth_date"] == dt.date(1980, 1, 2) and frame.loc[4, "birth_date"] == "1990-03-04"


def test_xlsx_rows_below_leading_blank_rows_keep_excel_numbers(tmp_path: Path, things) -> None:  # type: ignore[no-untyped-def]
    header = ["Thing ID", "amount", "code", "label", "day", "seen_at", "active", "serial"]
    path = write_xlsx(tmp_path / "things_2025-06.xlsx", {
        "s": [[None], [None], header, [1, 1, "0001", "ab", dt.date(2025, 6, 1), None, True, 1]]})
    frame, _ = read_table(path, things)
    assert frame.index.tolist() == [4]


def test_xlsx_extra_and_missing_columns(tmp_path: Path, shipped, things) -> None:  # type: ignore[no-untyped-def]
    bp = shipped.dataset("benefit_payments")  # extra_columns: ignore
    header = ["Note", "Payment ID", "Citizen ID", "Benefit Type", "Amount", "Payment Date", "Booked At",
              "Is Correction"]
    path = write_xlsx(tmp_path / "benefit_payments_2025-06.xlsx",
                      {"p": [header, ["x", 1, 2, "disability", 3.0, "2025-06-01", None, False]]})
    frame, _ = read_table(path, bp)
    assert list(frame.columns) == list(bp.columns) and frame.loc[2, "payment_id"] == 1
    path = write_xlsx(tmp_path / "things_2025-06.xlsx", {"s": [["Thing ID"], [1]]})
    with pytest.raises(FileRefused, match=r"^things_2025-06\.xlsx: missing columns: 'amount'"):
        read_table(path, things)


def write_csv(path: Path, rows: list[list], encoding: str = "utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as fh:
        csv.writer(fh).writerows(rows)
    return path


BP_HEADER = ["Payment ID", "Citizen ID", "Benefit Type", "Amount", "Payment Date", "Booked At", "Is Correction"]


def test_csv_bom_multiline_fields_and_blank_lines_keep_line_numbers(tmp_path: Path, shipped) -> None:  # type: ignore[no-untyped-def]
    bp = shipped.dataset("benefit_payments")
    path = tmp_path / "benefit_payments_2025-06.csv"
    write_csv(path, [BP_HEADER, [1, 2, "disability", "3.5", "2025-06-01", "", "no"],
                     [2, 3, "two\nlines", "4", "2025-06-02", "", "no"], [],
                     [3, 4, "disability", "5", "2025-06-03", "", "no"]], encoding="utf-8-sig")
    frame, reader = read_table(path, bp)
    assert reader == "csv"
    # line 3 holds a field spanning lines 3–4; line 5 is blank; the next record is on line 6
    assert frame.index.tolist() == [2, 3, 6]
    assert frame.loc[3, "benefit_type"] == "two\nlines" and frame.loc[6, "payment_id"] == "3"
    # Without a multi-line field (the fast path), a blank line still keeps its number.
    write_csv(path, [BP_HEADER, [1, 2, "disability", "3.5", "2025-06-01", "", "no"], [],
                     [3, 4, "disability", "5", "2025-06-03", "", "no"]])
    assert read_table(path, bp)[0].index.tolist() == [2, 4]


def test_csv_in_the_wrong_encoding_names_row_and_encoding(tmp_path: Path, shipped) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "benefit_payments_2025-06.csv"
    write_csv(path, [BP_HEADER, [1, 2, "disability", "3", "2025-06-01", "", "no"],
                     [2, 3, "Åberg", "4", "2025-06-02", "", "no"]], encoding="latin-1")
    with pytest.raises(FileRefused) as info:
        read_table(path, shipped.dataset("benefit_payments"))
    assert str(info.value) == ("benefit_payments_2025-06.csv: row 3 is not valid utf-8 (byte 0xc5); "
                               "save the file as utf-8")


def test_not_a_workbook_and_header_only(tmp_path: Path, things) -> None:  # type: ignore[no-untyped-def]
    fake = tmp_path / "things_2025-06.xlsx"
    fake.write_bytes(b"Thing ID,amount\n1,2\n")
    with pytest.raises(FileRefused, match="not a real .xlsx workbook"):
        read_table(fake, things)
    header = ["Thing ID", "amount", "code", "label", "day", "seen_at", "active", "serial"]
    frame, _ = read_table(write_xlsx(fake, {"s": [header]}), things)
    assert frame.empty and list(frame.columns) == list(things.columns)


def test_openpyxl_fallback_reads_the_same_rows(tmp_path: Path, shipped, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import python_calamine

    citizens = shipped.dataset("citizens")
    header = ["Citizen ID", "First Name", "Last Name", "Birth Date", "Sex", "Municipality Code",
              "Household ID", "Monthly Income"]
    path = write_xlsx(tmp_path / "citizens_2025-06.xlsx", {"citizens": [
        header, [1, "Anna", "Berg", dt.date(1980, 1, 2), "F", "0219", None, 100.5], [None] * 8,
        [2, " bo ", "Ek", "1990-03-04", "  ", "1080", 3, "12"]]})
    by_calamine, reader = read_table(path, citizens)
    assert reader == "calamine"

    class Unreadable:  # calamine refusing a workbook openpyxl can read
        @staticmethod
        def from_filelike(_fh):  # type: ignore[no-untyped-def]
            raise python_calamine.CalamineError("unsupported feature")

    monkeypatch.setattr(python_calamine, "CalamineWorkbook", Unreadable)
    by_openpyxl, reader = read_table(path, citizens)
    assert reader == "openpyxl"
    assert by_openpyxl.index.tolist() == by_calamine.index.tolist() == [2, 4]
    typed_a, failures_a = coerce_frame(by_calamine, citizens)
    typed_b, failures_b = coerce_frame(by_openpyxl, citizens)
    assert failures_a.empty and failures_b.empty
    pd.testing.assert_frame_equal(typed_a, typed_b)

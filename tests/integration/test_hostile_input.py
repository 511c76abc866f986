"""The hostile corpus: bad names, periods, arguments, CSV and workbook
content. Every case asserts the exit status, ONE stderr line (under 500
characters) naming the file or argument at fault, the log row, the warehouse
unchanged (per-period counts and a checksum of every table), the landed file
unchanged and no Parquet written for it.

Both warehouses; one prepared warehouse per backend serves every case (each
case uses its own month), so the corpus stays fast.
"""
from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import Workspace
from tests.integration.hostile import (
    CITIZENS,
    PAYMENTS,
    citizen,
    cleaned_files,
    csv_text,
    payment,
    prepared,
    rewrite_member,
    snapshot,
    write_bomb,
    write_xlsx,
)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def ws(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
       demo_dir: Path) -> Iterator[Workspace]:
    yield from prepared(request, tmp_path_factory, demo_dir)


@dataclass(frozen=True)
class Case:
    id: str
    write: Callable[[Path], Path]          # writes the bad file into landed/, returns its path
    fragment: str                          # what the one stderr line (and the log) must say
    log: str = "ingestion"                 # the log holding the refusal: ingestion | validation


def csv_file(name: str, text: str | bytes) -> Callable[[Path], Path]:
    def write(landed: Path) -> Path:
        path = landed / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path
    return write


def raw_name(name: bytes, text: str) -> Callable[[Path], Path]:
    def write(landed: Path) -> Path:
        raw = os.fsencode(landed) + b"/" + name
        with open(raw, "wb") as fh:
            fh.write(text.encode())
        return Path(os.fsdecode(raw))
    return write


def xlsx_file(name: str, rows: list[list[Any]], change: Callable[[Path], Any] | None = None,
              sheet: str = "citizens") -> Callable[[Path], Path]:
    def write(landed: Path) -> Path:
        path = write_xlsx(landed / name, rows, sheet=sheet)
        if change:
            change(path)
        return path
    return write


GOOD_CSV = csv_text([CITIZENS, citizen(1), citizen(2)])


def _no_cached_value(path: Path) -> None:
    # openpyxl writes "=2*5" as <f>2*5</f><v></v>: a formula with no computed value
    def edit(xml: bytes) -> bytes:
        return xml.replace(b"<v></v>", b"").replace(b"<v />", b"")
    rewrite_member(path, "xl/worksheets/sheet1.xml", edit)


def _error_cells(*refs: str) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        wb = openpyxl.load_workbook(path)
        for ref in refs:
            wb.active[ref].data_type = "e"
        wb.save(path)
    return change


def _encrypt_flag(path: Path) -> None:
    data = bytearray(path.read_bytes())
    at = 0
    while (at := data.find(b"PK\x03\x04", at)) >= 0:
        data[at + 6] |= 1  # general purpose flag bit 0: encrypted
        at += 4
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        data[at + 8] |= 1
        at += 4
    path.write_bytes(bytes(data))


def _corrupt_deflate(path: Path) -> None:
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("xl/worksheets/sheet1.xml")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 2, start + min(info.compress_size, 40)):
        data[i] ^= 0xA5
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _bomb(path: Path) -> None:
    # shared strings that inflate to 1.2 GB from ~3 MB: refused from the zip directory alone
    write_bomb(path, 1_200_000_000)


WIDE = CITIZENS + [f"extra column {i}" for i in range(16_376)]

CASES = [
    # ---- names and periods (ingest) -------------------------------------
    Case("arabic-indic-digits", csv_file("citizens_٢٠٢٥-٠٦.csv", GOOD_CSV), "ASCII digits"),
    Case("full-width-digits", csv_file("citizens_２０２５-０６.csv", GOOD_CSV), "ASCII digits"),
    Case("mixed-digits", csv_file("citizens_2025-0٦.csv", GOOD_CSV), "ASCII digits"),
    Case("devanagari-yyyymm", csv_file("citizens_२०२५०६.csv", GOOD_CSV), "ASCII digits"),
    Case("name-ends-in-newline", csv_file("citizens_2025-06.csv\n", GOOD_CSV), "control character"),
    Case("name-with-tab", csv_file("citizens_2025-06\t.csv", GOOD_CSV), "control character"),
    Case("name-not-utf8", raw_name(b"citizens_2025-06\xff.csv", GOOD_CSV), "not valid UTF-8"),
    Case("name-not-utf8-no-dataset", raw_name(b"\xfe\xff.csv", GOOD_CSV), "not valid UTF-8"),
    Case("month-13", csv_file("citizens_2025-13.csv", GOOD_CSV), "month must be 01–12"),
    Case("month-00", csv_file("citizens_202500.csv", GOOD_CSV), "month must be 01–12"),
    Case("year-0000", csv_file("citizens_0000-06.csv", GOOD_CSV), "year must be 0001"),
    Case("superscript-digits", csv_file("citizens_²⁰²⁵-⁰⁶.csv", GOOD_CSV), "matches no dataset"),
    # ---- CSV content ----------------------------------------------------
    Case("csv-unterminated-quote",
         csv_file("citizens_2031-01.csv", csv_text([CITIZENS, citizen(1)]) + '2,"Bo,Berg,1980-01-02,F,0219,7,1\n'
                  + csv_text([citizen(3), citizen(4)])), "row 3 opens a quoted field", "validation"),
    Case("csv-unterminated-quote-last",
         csv_file("citizens_2031-02.csv", csv_text([CITIZENS, citizen(1)]) + '2,"Bo'), "row 3 opens a quoted",
         "validation"),
    Case("csv-text-after-quote",
         csv_file("citizens_2031-03.csv", csv_text([CITIZENS, citizen(1)]) + '2,"Bo"x,Berg,1980-01-02,F,0219,7,1\n'),
         "row 3 is not valid CSV", "validation"),
    Case("csv-extra-field", csv_file("citizens_2031-04.csv", csv_text([CITIZENS, citizen(1), citizen(2) + ["oops"]])),
         "row 3 has 9 fields, the header has 8", "validation"),
    Case("csv-missing-field", csv_file("citizens_2031-05.csv", csv_text([CITIZENS, citizen(1)[:5], citizen(2)])),
         "row 2 has 5 fields, the header has 8", "validation"),
    Case("csv-truncated-last-record",
         csv_file("citizens_2031-06.csv", csv_text([CITIZENS, citizen(1)]) + "2,Bo,Ber"),
         "row 3 has 3 fields", "validation"),
    Case("csv-many-ragged-rows",
         csv_file("citizens_2031-07.csv", csv_text([CITIZENS] + [citizen(i) + ["x"] for i in range(1, 50)])),
         "48 more rows like it", "validation"),
    Case("csv-bad-byte-cr-only",
         csv_file("citizens_2031-08.csv", csv_text([CITIZENS, citizen(1), citizen(2)], "\r").encode()[:-5]
                  + b"\xff\r"), "row 3 is not valid utf-8", "validation"),
    Case("csv-blank-lines-before-header",
         csv_file("citizens_2031-09.csv", "\n\n" + GOOD_CSV), "no header in row 1 (the first non-empty row is 3)"),
    Case("csv-empty", csv_file("citizens_2031-10.csv", ""), "the file is empty"),
    Case("csv-16384-columns",
         csv_file("citizens_2031-11.csv", csv_text([WIDE, citizen(1) + [""] * 16_376])),
         "16,376 unexpected columns: 'extra column 0'"),
    Case("csv-integer-out-of-range",
         csv_file("citizens_2031-12.csv", csv_text([CITIZENS, citizen(1), citizen(99999999999999999999)])),
         "citizen_id (Citizen ID) type:integer (row 3 '99999999999999999999')", "validation"),
    Case("csv-integer-float-overflow",
         csv_file("citizens_2032-01.csv", csv_text([CITIZENS, citizen(1), citizen(2, Household_ID="1e400")])),
         "household_id (Household ID) type:integer (row 3 '1e400')", "validation"),
    Case("csv-header-only", csv_file("citizens_2032-02.csv", csv_text([CITIZENS])), "no data rows", "validation"),
    Case("csv-bad-header-quote", csv_file("citizens_2032-03.csv", '"Citizen ID"x,' + GOOD_CSV[11:]),
         "row 1 is not valid CSV"),
    # ---- workbook content -----------------------------------------------
    Case("xlsx-formula-without-value",
         xlsx_file("citizens_2033-01.xlsx", [CITIZENS, citizen(1), citizen(2, Household_ID="=2*5")],
                   _no_cached_value), "household_id (Household ID) type:integer (row 3 '=2*5')", "validation"),
    Case("xlsx-na-error-in-integer",
         xlsx_file("citizens_2033-02.xlsx", [CITIZENS, citizen(1), citizen(2, Household_ID="#N/A")],
                   _error_cells("G3")), "household_id (Household ID) type:integer (row 3 '#N/A')", "validation"),
    Case("xlsx-div0-in-float",
         xlsx_file("citizens_2033-03.xlsx", [CITIZENS, citizen(1, Monthly_Income="#DIV/0!")],
                   _error_cells("H2")), "monthly_income (Monthly Income) type:float (row 2 '#DIV/0!')", "validation"),
    Case("xlsx-na-error-in-string",
         xlsx_file("citizens_2033-04.xlsx", [CITIZENS, citizen(1, Last_Name="#N/A")],
                   _error_cells("C2")), "last_name (Last Name) type:string (row 2 '#N/A')", "validation"),
    Case("xlsx-error-in-date",
         xlsx_file("citizens_2033-05.xlsx", [CITIZENS, citizen(1, Birth_Date="#VALUE!")],
                   _error_cells("D2")), "birth_date (Birth Date) type:date (row 2 '#VALUE!')", "validation"),
    Case("xlsx-formula-without-value-in-date",
         xlsx_file("citizens_2033-06.xlsx", [CITIZENS, citizen(1, Birth_Date="=TODAY()")], _no_cached_value),
         "birth_date (Birth Date) type:date (row 2 '=TODAY()')", "validation"),
    Case("xlsx-zip-bomb", xlsx_file("citizens_2033-07.xlsx", [CITIZENS, citizen(1)], _bomb),
         "would take 1,198,785,859 bytes uncompressed (limit 1,073,741,824"),
    Case("xlsx-encrypted-entries", xlsx_file("citizens_2033-08.xlsx", [CITIZENS, citizen(1)], _encrypt_flag),
         "zip entries are encrypted"),
    Case("xlsx-corrupt-deflate", xlsx_file("citizens_2033-09.xlsx", [CITIZENS, citizen(1)], _corrupt_deflate),
         "citizens_2033-09.xlsx: cannot open the workbook"),
    Case("xlsx-truncated", xlsx_file("citizens_2033-10.xlsx", [CITIZENS, citizen(1)], _truncate),
         "citizens_2033-10.xlsx: not a real .xlsx"),
    Case("xlsx-header-on-row-3", xlsx_file("citizens_2033-11.xlsx", [[], [], CITIZENS, citizen(1)]),
         "no header in row 1 (the first non-empty row is 3)"),
    Case("xlsx-empty-sheet", xlsx_file("citizens_2033-12.xlsx", []), "the sheet is empty (no header row)"),
    Case("csv-only-blank-lines", csv_file("citizens_2034-06.csv", "\n \n,,\n"), "only blank lines"),
    Case("xlsx-16384-columns", xlsx_file("citizens_2034-01.xlsx", [WIDE, citizen(1)]),
         "16,376 unexpected columns"),
    Case("xlsx-no-workbook-xml",
         xlsx_file("citizens_2034-02.xlsx", [CITIZENS, citizen(1)],
                   lambda p: rewrite_member(p, "xl/workbook.xml", lambda b: b"<not xml")),
         "cannot open the workbook"),
    Case("xlsx-broken-sheet-xml",
         xlsx_file("citizens_2034-03.xlsx", [CITIZENS, citizen(1)],
                   lambda p: rewrite_member(p, "xl/worksheets/sheet1.xml", lambda b: b[: len(b) // 2])),
         "cannot open the workbook"),
    Case("xlsx-csv-in-disguise", csv_file("citizens_2034-04.xlsx", GOOD_CSV), "not a real .xlsx"),
    Case("xlsx-integer-text-out-of-range",
         xlsx_file("citizens_2034-05.xlsx", [CITIZENS, citizen(1, Citizen_ID="12345678901234567890")]),
         "citizen_id (Citizen ID) type:integer (row 2 '12345678901234567890')", "validation"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_file_is_refused_and_changes_nothing(ws: Workspace, case: Case) -> None:
    before, parquet_before = snapshot(ws), cleaned_files(ws)
    path = case.write(ws.landed)
    content = path.read_bytes()
    try:
        proc = ws.main("pipeline", "run")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert case.fragment in lines[0] and len(lines[0]) < 500, lines[0]
        assert not re.search(r"unexpected [A-Z]\w*:", lines[0]) and "Traceback" not in proc.stderr
        shown = os.fsencode(path.name).decode("utf-8", "backslashreplace").replace("\n", "\\n").replace("\t", "\\t")
        assert shown in lines[0]
        _assert_logged(ws, shown, case)
        assert snapshot(ws) == before
        assert cleaned_files(ws) == parquet_before
        assert path.read_bytes() == content
        # run converges: the refusal is not repeated (nor re-logged) for the same content
        again = ws.main("pipeline", "run")
        assert again.returncode == 0 and again.stderr == "", again.stderr
    finally:
        path.unlink()


def _assert_logged(ws: Workspace, shown: str, case: Case) -> None:
    row = ws.rows("SELECT id, status, error, file_path FROM meta.ingestion_log WHERE file_name = :n "
                  "ORDER BY id DESC", n=shown)[0]
    assert shown in row[3]
    if case.log == "ingestion":
        assert row[1] == "rejected" and case.fragment in row[2], row
        return
    assert row[1] == "accepted"
    status, error = ws.rows("SELECT status, error FROM meta.validation_log WHERE ingestion_id = :i "
                            "ORDER BY id DESC", i=row[0])[0]
    assert status == "failed" and case.fragment in error, error


# --------------------------------------------------------------------------
# Good files the strict reader must still accept
# --------------------------------------------------------------------------
@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr-only"])
def test_every_line_ending_loads(ws: Workspace, eol: str) -> None:
    period = {"\n": "2040-01", "\r\n": "2040-02", "\r": "2040-03"}[eol]
    path = ws.landed / f"citizens_{period}.csv"
    path.write_text(csv_text([CITIZENS, citizen(1), citizen(2, First_Name="multi\nline"), citizen(3)], eol),
                    newline="")
    try:
        proc = ws.main("pipeline", "run", "--period", period)
        assert proc.returncode == 0, proc.stderr
        assert ws.rows("SELECT citizen_id, first_name FROM stage.citizens WHERE _data_period = :p "
                       "ORDER BY citizen_id", p=period) == [(1, "Anna1"), (2, "multi\nline"), (3, "Anna3")]
    finally:
        path.unlink()


def test_big_integers_are_exact_and_huge_fields_accepted(ws: Workspace) -> None:
    path = ws.landed / "benefit_payments_2040-04.csv"
    huge = "y" * 200_000  # over the csv module's default 131,072-character field limit
    path.write_text(csv_text([PAYMENTS + ["Notes"], payment(9007199254740993, "2040-04") + [huge],
                              payment(2, "2040-04") + ["short"]]))
    try:
        proc = ws.main("pipeline", "run", "--period", "2040-04", "--dataset", "benefit_payments")
        assert proc.returncode == 0, proc.stderr
        ids = ws.rows("SELECT payment_id FROM stage.benefit_payments WHERE _data_period = '2040-04' "
                      "ORDER BY payment_id")
        assert ids == [(2,), (9007199254740993,)]
    finally:
        path.unlink()


def test_ragged_rows_are_row_errors_under_drop(ws: Workspace) -> None:
    """benefit_payments drops invalid rows: a row with a missing or an extra
    field is logged as a row error and dropped; the others load."""
    path = ws.landed / "benefit_payments_2040-05.csv"
    path.write_text(csv_text([PAYMENTS, payment(1, "2040-05"), payment(2, "2040-05")[:4],
                              payment(3, "2040-05") + ["surplus"], payment(4, "2040-05")]))
    try:
        proc = ws.main("pipeline", "run", "--period", "2040-05", "--dataset", "benefit_payments")
        assert proc.returncode == 0, proc.stderr
        assert ws.rows("SELECT payment_id FROM stage.benefit_payments WHERE _data_period = '2040-05' "
                       "ORDER BY payment_id") == [(1,), (4,)]
        errors = [e for e in _row_errors(ws, "2040-05") if e[1] == "record:fields"]
        assert errors == [(3, "record:fields", "4 fields, the header has 7"),
                          (4, "record:fields", "8 fields, the header has 7")]
    finally:
        path.unlink()


def _row_errors(ws: Workspace, period: str) -> list[tuple]:
    return ws.rows('SELECT e.row_number, e."check", e.value FROM meta.validation_errors e '
                   "JOIN meta.validation_log v ON v.id = e.validation_id WHERE v.period = :p "
                   "ORDER BY e.row_number", p=period)


# --------------------------------------------------------------------------
# Arguments: exit 2, one line, nothing logged or changed
# --------------------------------------------------------------------------
ARGUMENTS = [
    ("run-period-newline", "pipeline", ["run", "--period", "2025-01\n"], "invalid --period"),
    ("run-period-full-width", "pipeline", ["run", "--period", "２０２５-０１"], "invalid --period"),
    ("run-period-arabic", "pipeline", ["run", "--period", "٢٠٢٥-٠١"], "invalid --period"),
    ("run-period-space", "pipeline", ["run", "--period", " 2025-01"], "invalid --period"),
    ("run-period-short-month", "pipeline", ["run", "--period", "2025-1"], "invalid --period"),
    ("reload-period-newline", "pipeline", ["reload", "--dataset", "citizens", "--period", "2025-01\n"],
     "invalid --period"),
    ("transform-period-13", "pipeline.transform", ["--dataset", "citizens", "--period", "2025-13"],
     "invalid --period"),
    ("load-stage-period-newline", "pipeline.load_stage",
     ["--parquet-path", "x.parquet", "--dataset", "citizens", "--period", "2025-01\n"], "invalid --period"),
    ("load-stage-period-full-width", "pipeline.load_stage",
     ["--parquet-path", "x.parquet", "--dataset", "citizens", "--period", "２０２５-０１"], "invalid --period"),
    ("validate-id-overflow", "pipeline.validate", ["--file-id", "99999999999999999999"], "invalid id"),
    ("validate-id-negative", "pipeline.validate", ["--file-id", "-1"], "invalid id"),
    ("validate-id-zero", "pipeline.validate", ["--file-id", "0"], "invalid id"),
    ("validate-id-arabic-digit", "pipeline.validate", ["--file-id", "٣"], "invalid id"),
]


@pytest.mark.parametrize("module, args, fragment", [a[1:] for a in ARGUMENTS], ids=[a[0] for a in ARGUMENTS])
def test_bad_argument_exits_2_and_changes_nothing(ws: Workspace, module: str, args: list[str],
                                                  fragment: str) -> None:
    before = snapshot(ws)
    logs = [ws.scalar(f"SELECT COUNT(*) FROM meta.{t}") for t in ("ingestion_log", "validation_log", "load_log")]
    proc = ws.main(module, *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and len(lines[0]) < 500, proc.stderr
    assert snapshot(ws) == before
    assert [ws.scalar(f"SELECT COUNT(*) FROM meta.{t}")
            for t in ("ingestion_log", "validation_log", "load_log")] == logs


def test_latin1_config_is_a_config_error_naming_the_file(ws: Workspace, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "datasets_config.yml"
    text = Path(os.environ["WORKBENCH_CONFIG"]).read_text(encoding="utf-8")
    config.write_bytes(text.replace("Monthly snapshot", "Mönthly snapshot").encode("latin-1", "replace"))
    monkeypatch.setenv("WORKBENCH_CONFIG", str(config))
    proc = ws.main("pipeline", "status")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(config) in lines[0] and "not UTF-8" in lines[0], proc.stderr
    assert not re.search(r"unexpected [A-Z]\w*:", lines[0])


# --------------------------------------------------------------------------
# Parquet handed to load_stage
# --------------------------------------------------------------------------
def _good_parquet(ws: Workspace) -> Path:
    return next((ws.data_dir / "stage" / "cleaned" / "citizens" / "period=2025-01").glob("part-0.parquet"))


def _retagged(ws: Workspace, folder: str, period_meta: bytes | None, name: str = "part-0.parquet",
              column: str | None = None) -> Path:
    table = pq.read_table(_good_parquet(ws))
    meta = dict(table.schema.metadata or {})
    if period_meta is not None:
        meta[b"workbench.period"] = period_meta
    if column is not None:
        table = table.append_column("_data_period", pa.array([column] * table.num_rows))
    out = ws.root / "parquet" / folder / name
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(meta), out)
    return out


def _garbage_footer(ws: Workspace) -> Path:
    data = _good_parquet(ws).read_bytes()
    size = int.from_bytes(data[-8:-4], "little")
    out = ws.root / "parquet" / "garbage" / "part-0.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data[: -8 - size] + bytes((i * 37 + 11) % 256 for i in range(size)) + data[-8:])
    return out


PARQUETS = [
    ("metadata-period-differs", lambda ws: _retagged(ws, "x", b"2025-03"), "metadata says period '2025-03'"),
    ("metadata-period-arabic", lambda ws: _retagged(ws, "y", "٢٠٢٥-٠٢".encode()), "metadata says period"),
    ("folder-period-differs", lambda ws: _retagged(ws, "period=2025-03", b"2025-02"), "folder 'period=2025-03'"),
    ("column-period-differs", lambda ws: _retagged(ws, "z", b"2025-02", column="2025-03"),
     "_data_period holds '2025-03'"),
    ("garbage-footer", _garbage_footer, "not a readable Parquet file"),
]


@pytest.mark.parametrize("make, fragment", [p[1:] for p in PARQUETS], ids=[p[0] for p in PARQUETS])
def test_parquet_for_another_period_is_refused(ws: Workspace, make: Callable[[Workspace], Path],
                                               fragment: str) -> None:
    path = make(ws)
    before = snapshot(ws)
    proc = ws.main("pipeline.load_stage", "--parquet-path", str(path), "--period", "2025-02",
                   "--dataset", "citizens")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and len(lines[0]) < 500, proc.stderr
    assert str(path) in lines[0] and lines[0].rstrip()[-1] != "\n"
    assert snapshot(ws) == before
    error = ws.rows("SELECT status, error FROM meta.load_log ORDER BY id DESC")[0]
    assert error[0] == "failed" and fragment in error[1]


def test_parquet_of_the_right_month_loads(ws: Workspace) -> None:
    """The checks above refuse only disagreement: metadata and folder agreeing load."""
    path = _retagged(ws, "period=2041-01", b"2041-01")
    proc = ws.main("pipeline.load_stage", "--parquet-path", str(path), "--period", "2041-01",
                   "--dataset", "citizens")
    assert proc.returncode == 0, proc.stderr
    assert ws.scalar("SELECT COUNT(*) FROM stage.citizens WHERE _data_period = '2041-01'") > 0


def test_write_xlsx_helper_round_trips(tmp_path: Path) -> None:
    """The corpus' writers make what the cases claim (calamine sees "" for both)."""
    import python_calamine

    path = xlsx_file("t.xlsx", [["a", "b", "c"], [1, "=2*5", "#N/A"]], _no_cached_value)(tmp_path)
    _error_cells("C2")(path)
    _no_cached_value(path)
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml")
    assert b"<f>2*5</f></c>" in xml and b't="e"' in xml
    rows = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
    assert rows[1][1:] == ["", ""]
    wb = openpyxl.load_workbook(path, data_only=True)
    assert wb.active["B2"].value is None

"""ingest: every bad input is refused with one clear line, a non-zero exit,
a 'rejected' log row and no other change; good files are accepted in place."""
from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest

from pipeline.demo import CITIZEN_HEADERS
from pipeline.io.landed import OLE_MAGIC, file_sha256
from tests.conftest import Workspace

HEADERS = list(CITIZEN_HEADERS.values())
ROW = [1, "Anna", "Berg", "1980-01-02", "F", "0219", 7, 1000.0]


def workbook(path: Path, headers: list, rows: list[list] = (ROW,), sheet: str = "citizens") -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    if headers:
        ws.append(headers)
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def ingest(ws: Workspace, path: Path | str):  # type: ignore[no-untyped-def]
    return ws.main("pipeline.ingest", "--file-path", str(path))


def log_rows(ws: Workspace) -> list[tuple]:
    return ws.rows("SELECT id, dataset, period, file_name, status, error, file_sha256 "
                   "FROM meta.ingestion_log ORDER BY id")


def assert_refused(ws: Workspace, path: Path, fragment: str, code: int = 1) -> None:
    before = sorted(p.name for p in ws.landed.iterdir())
    proc = ingest(ws, path)
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert fragment in lines[0]
    assert "Traceback" not in proc.stderr
    rows = log_rows(ws)
    assert rows[-1][4] == "rejected" and fragment in rows[-1][5]
    assert proc.stdout.strip().splitlines()[-1] == str(rows[-1][0])
    # nothing copied, moved or written next to the landed files
    assert sorted(p.name for p in ws.landed.iterdir()) == before
    assert not (ws.data_dir / "stage").exists()


def test_good_files_are_accepted_in_place_and_logged(workspace: Workspace, demo_dir: Path) -> None:
    files = workspace.add_demo(demo_dir, "*_2025-0[12].*")
    for path in files:
        proc = ingest(workspace, path)
        assert proc.returncode == 0, proc.stderr
    rows = log_rows(workspace)
    assert [(r[1], r[2], r[4]) for r in rows] == [
        ("benefit_payments", "2025-01", "accepted"), ("benefit_payments", "2025-02", "accepted"),
        ("citizens", "2025-01", "accepted"), ("citizens", "2025-02", "accepted")]
    assert rows[0][6] == file_sha256(files[0])
    assert sorted(p.name for p in workspace.landed.iterdir()) == sorted(p.name for p in files)


def test_relative_path_and_yyyymm_name(workspace: Workspace, demo_dir: Path) -> None:
    src = next(demo_dir.glob("citizens_2025-03.xlsx"))
    shutil.copy(src, workspace.landed / "citizens_202503.xlsx")
    proc = ingest(workspace, "data/landed/citizens_202503.xlsx")
    assert proc.returncode == 0, proc.stderr
    assert log_rows(workspace)[-1][1:5] == ("citizens", "2025-03", "citizens_202503.xlsx", "accepted")


@pytest.mark.parametrize("name, fragment", [
    ("citizens_2025-13.xlsx", "month must be 01–12"),
    ("citizens_2025-00.xlsx", "month must be 01–12"),
    ("citizenz_2025-01.xlsx", "matches no dataset"),
])
def test_bad_names_and_periods(workspace: Workspace, name: str, fragment: str) -> None:
    path = workbook(workspace.landed / name, HEADERS)
    assert_refused(workspace, path, fragment)


def test_missing_unexpected_and_duplicate_headers(workspace: Workspace) -> None:
    assert_refused(workspace, workbook(workspace.landed / "citizens_2025-01.xlsx", HEADERS[:-1]),
                   "missing column: 'Monthly Income'")
    assert_refused(workspace, workbook(workspace.landed / "citizens_2025-02.xlsx", [*HEADERS, "Shoe Size"]),
                   "unexpected column: 'Shoe Size'")
    assert_refused(workspace, workbook(workspace.landed / "citizens_2025-03.xlsx", [*HEADERS, " first NAME "]),
                   "duplicate header for column 'first_name'")


def test_header_case_and_spaces_are_ignored(workspace: Workspace) -> None:
    headers = [f"  {h.upper()} " for h in HEADERS]
    proc = ingest(workspace, workbook(workspace.landed / "citizens_2025-04.xlsx", headers))
    assert proc.returncode == 0, proc.stderr


def test_extra_column_accepted_when_dataset_ignores_them(workspace: Workspace) -> None:
    path = workspace.landed / "benefit_payments_2025-01.csv"
    path.write_text("Payment ID,Citizen ID,Benefit Type,Amount,Payment Date,Booked At,Is Correction,Clerk\n"
                    "1,2,disability,10,2025-01-05,,false,bob\n", encoding="utf-8")
    assert ingest(workspace, path).returncode == 0


def test_empty_files_and_fake_or_broken_workbooks(workspace: Workspace) -> None:
    empty = workspace.landed / "citizens_2025-01.xlsx"
    empty.write_bytes(b"")
    assert_refused(workspace, empty, "the file is empty")

    text = workspace.landed / "citizens_2025-02.xlsx"
    text.write_text("Citizen ID;First Name\n1;Anna\n")
    assert_refused(workspace, text, "not a real .xlsx workbook")

    protected = workspace.landed / "citizens_2025-03.xlsx"
    protected.write_bytes(OLE_MAGIC + b"\x00" * 2048)  # encrypted OOXML lives in an OLE container
    assert_refused(workspace, protected, "password-protected")

    corrupt = workspace.landed / "citizens_2025-04.xlsx"
    with zipfile.ZipFile(corrupt, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    assert_refused(workspace, corrupt, "cannot open the workbook")

    no_rows = workbook(workspace.landed / "citizens_2025-05.xlsx", [], rows=[])
    assert_refused(workspace, no_rows, "is empty (no header row)")

    wrong_sheet = workbook(workspace.landed / "citizens_2025-06.xlsx", HEADERS, sheet="Sheet1")
    assert_refused(workspace, wrong_sheet, "no sheet named 'citizens'")

    empty_csv = workspace.landed / "benefit_payments_2025-01.csv"
    empty_csv.write_text("\n\n")
    assert_refused(workspace, empty_csv, "no header row")


def test_csv_in_the_wrong_encoding_names_row_and_encoding(workspace: Workspace) -> None:
    path = workspace.landed / "benefit_payments_2025-02.csv"
    path.write_bytes("Payment ID,Citizen ID,Benefit Type,Amount,Payment Date,Booked At,Is Correction,Bemerkung ä\n"
                     .encode("latin-1"))
    assert_refused(workspace, path, "row 1 is not valid utf-8")


def test_csv_with_bom_is_accepted(workspace: Workspace) -> None:
    path = workspace.landed / "benefit_payments_2025-03.csv"
    path.write_bytes("\ufeffPayment ID,Citizen ID,Benefit Type,Amount,Payment Date,Booked At,Is Correction\n"
                     .encode("utf-8"))
    assert ingest(workspace, path).returncode == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file regardless of permissions")
def test_unreadable_file(workspace: Workspace) -> None:
    path = workbook(workspace.landed / "citizens_2025-07.xlsx", HEADERS)
    path.chmod(0)
    assert_refused(workspace, path, "cannot read the file")


def test_a_directory_named_like_a_file_is_a_usage_error(workspace: Workspace) -> None:
    folder = workspace.landed / "citizens_2025-08.xlsx"
    folder.mkdir()
    proc = ingest(workspace, folder)
    assert proc.returncode == 2 and "not a regular file" in proc.stderr
    assert log_rows(workspace) == []


def test_usage_errors_are_exit_2_and_not_logged(workspace: Workspace, tmp_path: Path) -> None:
    outside = workbook(tmp_path / "citizens_2025-01.xlsx", HEADERS)
    proc = ingest(workspace, outside)
    assert proc.returncode == 2 and "not inside the landed folder" in proc.stderr
    proc = ingest(workspace, workspace.landed / "citizens_2099-01.xlsx")
    assert proc.returncode == 2 and "no such file" in proc.stderr
    # a link inside landed/ pointing outside it is judged by its real path
    link = workspace.landed / "citizens_2025-02.xlsx"
    link.symlink_to(outside)
    proc = ingest(workspace, link)
    assert proc.returncode == 2 and "not inside the landed folder" in proc.stderr
    proc = ingest(workspace, "data/landed/../../citizens_2025-01.xlsx")
    assert proc.returncode == 2
    assert log_rows(workspace) == []


def test_real_command_line_prints_id_last_and_one_error_line(workspace: Workspace) -> None:
    good = workbook(workspace.landed / "citizens_2025-01.xlsx", HEADERS)
    proc = workspace.cli("--file-path", str(good), module="pipeline.ingest")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(log_rows(workspace)[-1][0])
    bad = workbook(workspace.landed / "citizens_2025-13.xlsx", HEADERS)
    proc = workspace.cli("--file-path", str(bad), module="pipeline.ingest")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_ingest_reads_only_the_header_row(workspace: Workspace) -> None:
    """A workbook whose rows after the header are garbage still passes ingest:
    proof that ingest stops at row 1 (a 100 MB file is not read whole)."""
    src = workbook(workspace.root / "src.xlsx", HEADERS, rows=[ROW] * 50)
    target = workspace.landed / "citizens_2025-09.xlsx"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                head, _, _ = data.partition(b"</row>")
                data = head + b"</row><row r=\"2\"><c r=\"A2\" t=\"s\"><v>9" + b"\x00garbage" * 1000
            zout.writestr(item, data)
    proc = ingest(workspace, target)
    assert proc.returncode == 0, proc.stderr

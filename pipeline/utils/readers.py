"""Low-level reading of landed files: checksums, format sniffing, header rows.

Ingest needs only the header row, so these readers stream: a 100 MB workbook
is never loaded whole here.
"""
from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

from pipeline.config import DatasetConfig
from pipeline.errors import FileRefused

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_kind(path: Path) -> str:
    """``xlsx`` or ``csv`` from the extension, after checking the bytes agree."""
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise FileRefused(f"{path.name}: the file is empty")
    if suffix == ".xlsx":
        with open(path, "rb") as fh:
            head = fh.read(8)
        if head.startswith(OLE_MAGIC):
            raise FileRefused(
                f"{path.name}: the workbook is password-protected (or an old .xls saved as .xlsx); "
                "save it without a password as .xlsx"
            )
        if not head.startswith(ZIP_MAGIC) or not zipfile.is_zipfile(path):
            raise FileRefused(f"{path.name}: not a real .xlsx workbook (the file is not an Excel zip package)")
        return "xlsx"
    if suffix == ".csv":
        return "csv"
    raise FileRefused(f"{path.name}: unsupported file type {suffix!r} (expected .xlsx or .csv)")


def csv_encoding(dataset: DatasetConfig) -> str:
    """UTF-8 files may start with a BOM (Excel writes one); accept it."""
    enc = dataset.encoding.lower().replace("_", "-")
    return "utf-8-sig" if enc in ("utf-8", "utf8") else dataset.encoding


def decode_error_message(path: Path, encoding: str, raw: bytes, exc: UnicodeDecodeError) -> str:
    """Name the text row (header = 1) holding the first undecodable byte."""
    row = raw.count(b"\n", 0, exc.start) + 1
    bad = raw[exc.start:exc.start + 1].hex()
    return f"{path.name}: row {row} is not valid {encoding} (byte 0x{bad}); save the file as {encoding}"


def read_header_row(path: Path, dataset: DatasetConfig) -> list[Any]:
    """The first row of the file (CSV) or of the dataset's sheet (xlsx)."""
    kind = file_kind(path)
    if kind == "csv":
        return _csv_header(path, dataset)
    return _xlsx_header(path, dataset)


def _csv_header(path: Path, dataset: DatasetConfig) -> list[Any]:
    encoding = csv_encoding(dataset)
    with open(path, "rb") as fh:
        first = fh.readline()
    try:
        text = first.decode(encoding)
    except UnicodeDecodeError as exc:
        raise FileRefused(decode_error_message(path, dataset.encoding, first, exc)) from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise FileRefused(f"{path.name}: no header row (the first line is empty)")
    return rows[0]


def open_sheet(workbook: Any, dataset: DatasetConfig, path: Path) -> Any:
    """The dataset's sheet (name or 0-based index; default the first)."""
    names = workbook.sheetnames
    sheet = dataset.sheet
    if sheet is None:
        sheet = 0
    if isinstance(sheet, int):
        if not 0 <= sheet < len(names):
            raise FileRefused(f"{path.name}: no sheet number {sheet} (the workbook has {len(names)})")
        return workbook[names[sheet]]
    if sheet not in names:
        raise FileRefused(f"{path.name}: no sheet named {sheet!r} (sheets: {', '.join(names)})")
    return workbook[sheet]


def _xlsx_header(path: Path, dataset: DatasetConfig) -> list[Any]:
    import openpyxl  # imported here: the CSV path and the CLI start stay fast

    try:
        # read_only streams the sheet XML, so only the first row is parsed.
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken packages
        raise FileRefused(f"{path.name}: cannot open the workbook ({type(exc).__name__}: {exc})") from None
    try:
        ws = open_sheet(workbook, dataset, path)
        for row in ws.iter_rows(min_row=1, max_row=1, values_only=True):
            header = list(row)
            while header and header[-1] is None:
                header.pop()
            if header:
                return header
        raise FileRefused(f"{path.name}: the sheet {ws.title!r} is empty (no header row)")
    except FileRefused:
        raise
    except Exception as exc:
        raise FileRefused(f"{path.name}: cannot read the workbook ({type(exc).__name__}: {exc})") from None
    finally:
        workbook.close()

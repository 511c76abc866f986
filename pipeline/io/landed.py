"""Landed files: where they may be, checksums, format sniffing, header rows, reading.

Ingest needs only the header row, so the header readers stream: a 100 MB
workbook is never loaded whole by them. ``read_table`` (the validate stage)
reads the whole sheet or file.
"""
from __future__ import annotations

import csv
import hashlib
import html
import io
import os
import re
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.domain.coerce import ROW_FAILURES, CellError
from pipeline.domain.config import DatasetConfig
from pipeline.domain.files import validate_headers
from pipeline.errors import FileRefused, UsageError, readable, shorten
from pipeline.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
# A workbook's sheet XML plus shared strings may inflate to at most this many
# bytes (env WORKBENCH_MAX_XLSX_BYTES), or 200 times the file's size when that
# is more: ordinary workbooks inflate 5–20 times, a zip bomb thousands.
DEFAULT_MAX_XLSX_BYTES = 1 << 30
MAX_XLSX_RATIO = 200
LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def resolve_landed_path(file_path: str | Path, settings: Settings) -> Path:
    """The real path of ``file_path`` (relative to the working directory); it
    must be a file inside ``landed/`` once links are resolved."""
    given = Path(file_path)
    if not given.exists():
        raise UsageError(f"no such file: {file_path}")
    real = given.resolve()
    landed = settings.landed_dir.resolve()
    if not real.is_relative_to(landed):
        raise UsageError(f"{file_path}: not inside the landed folder {landed}")
    if not real.is_file():
        raise UsageError(f"{file_path}: not a regular file")
    return real


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    """sha256 of bytes already read (the same digest as :func:`file_sha256`)."""
    return hashlib.sha256(data).hexdigest()


def size_and_mtime(path: Path) -> tuple[int, int]:
    """What tells that a file was written since: its size and mtime (ns)."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


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
    row = sum(1 for _ in LINE_BREAK.finditer(raw, 0, exc.start)) + 1
    bad = raw[exc.start:exc.start + 1].hex()
    return f"{path.name}: row {row} is not valid {encoding} (byte 0x{bad}); save the file as {encoding}"


def read_header_row(path: Path, dataset: DatasetConfig) -> list[Any]:
    """The first row of the file (CSV) or of the dataset's sheet (xlsx)."""
    kind = file_kind(path)
    if kind == "csv":
        return _csv_header(path, dataset)
    return _xlsx_header(path, dataset)


HEADER_SCAN_BYTES = 1 << 20  # how far to look for the first non-empty row


def _first_records(path: Path, limit: int) -> bytes:
    """The file's start up to the end of the first line break outside quotes
    after ``limit`` bytes (or the whole file): whole records, any line ending."""
    out = bytearray()
    quoted = False
    with open(path, "rb") as fh:
        while block := fh.read(1 << 16):
            start = len(out)
            out += block
            for match in re.finditer(rb'["\r\n]', out[start:]):
                if match.group() == b'"':
                    quoted = not quoted
                elif not quoted and start + match.end() >= limit:
                    return bytes(out[:start + match.end()])
    return bytes(out)


def _csv_header(path: Path, dataset: DatasetConfig) -> list[Any]:
    """The first record, whatever the line endings (LF, CRLF or CR only)."""
    encoding = csv_encoding(dataset)
    head = _first_records(path, 1)
    try:
        text = head.decode(encoding)
    except UnicodeDecodeError as exc:
        raise FileRefused(decode_error_message(path, dataset.encoding, head, exc)) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        first = next(reader, [])
    except csv.Error as exc:
        raise FileRefused(f"{path.name}: row 1 is not valid CSV ({exc})") from None
    if not any(cell.strip() for cell in first):
        raise FileRefused(_no_header_message(path, _first_csv_content_row(path, encoding)))
    return first


def _first_csv_content_row(path: Path, encoding: str) -> int | None:
    """The line number of the first non-blank record near the top, if any."""
    text = _first_records(path, HEADER_SCAN_BYTES).decode(encoding, "replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        start = 1
        for record in reader:
            if any(cell.strip() for cell in record):
                return start
            start = reader.line_num + 1
    except csv.Error:
        return None
    return None


def _no_header_message(path: Path, first_row: int | None) -> str:
    if first_row is None:
        nothing = "the file holds only blank lines" if path.suffix.lower() == ".csv" else "the sheet is empty"
        return f"{path.name}: {nothing} (no header row)"
    return f"{path.name}: no header in row 1 (the first non-empty row is {first_row}); the header must be row 1"


def pick_sheet(names: list[str], dataset: DatasetConfig, path: Path) -> str:
    """The dataset's sheet among ``names`` (a name or 0-based index; default the first)."""
    sheet = 0 if dataset.sheet is None else dataset.sheet
    if isinstance(sheet, int):
        if not 0 <= sheet < len(names):
            raise FileRefused(f"{path.name}: no sheet number {sheet} (the workbook has {len(names)})")
        return names[sheet]
    if sheet not in names:
        raise FileRefused(f"{path.name}: no sheet named {sheet!r} (sheets: {', '.join(names)})")
    return sheet


def open_sheet(workbook: Any, dataset: DatasetConfig, path: Path) -> Any:
    """The dataset's sheet of an openpyxl workbook."""
    return workbook[pick_sheet(workbook.sheetnames, dataset, path)]


def _local(tag: str) -> str:
    """An XML tag without its namespace (transitional and strict OOXML differ)."""
    return tag.rsplit("}", 1)[-1]


def _column_index(ref: str) -> int:
    index = 0
    for ch in ref:
        if not ch.isalpha():
            break
        index = index * 26 + (ord(ch.upper()) - 64)
    return index - 1


def _sheet_member(z: zipfile.ZipFile, dataset: DatasetConfig, path: Path) -> str:
    """The zip member holding the dataset's sheet, from workbook.xml and its rels."""
    import xml.etree.ElementTree as ET

    workbook = ET.fromstring(z.read("xl/workbook.xml"))
    sheets = [(el.get("name") or "", next((v for k, v in el.attrib.items() if _local(k) == "id"), ""))
              for el in workbook.iter() if _local(el.tag) == "sheet"]
    name = pick_sheet([n for n, _ in sheets], dataset, path)
    rel_id = dict(sheets)[name]
    rels = ET.fromstring(z.read("xl/_rels/workbook.xml.rels"))
    target = next(el.get("Target") or "" for el in rels.iter()
                  if _local(el.tag) == "Relationship" and el.get("Id") == rel_id)
    return target.lstrip("/") if target.startswith("/") else f"xl/{target}"


def _shared_strings(z: zipfile.ZipFile, wanted: set[int]) -> dict[int, str]:
    """Only the shared strings the header uses, streaming (the table can be huge)."""
    import xml.etree.ElementTree as ET

    found: dict[int, str] = {}
    if not wanted or "xl/sharedStrings.xml" not in z.namelist():
        return found
    last = max(wanted)
    with z.open("xl/sharedStrings.xml") as fh:
        index = 0
        for _, el in ET.iterparse(fh, events=("end",)):
            if _local(el.tag) != "si":
                continue
            if index in wanted:
                # rich text splits a string into runs; phonetic hints (rPh) are not text
                found[index] = "".join(t.text or "" for t in el.iter()
                                       if _local(t.tag) == "t" and t is not None)
            el.clear()
            index += 1
            if index > last:
                break
    return found


def _xlsx_header(path: Path, dataset: DatasetConfig) -> list[Any]:
    """Row 1 of the dataset's sheet, parsed from the sheet XML as a stream:
    the parse stops at the end of the first row, so the size of the sheet does
    not matter (openpyxl's read-only mode scans the whole sheet when the file
    lacks a <dimension>, as many generated files do)."""
    import xml.etree.ElementTree as ET

    first_row: int | None = None
    try:
        with zipfile.ZipFile(path) as z:
            refuse_encrypted(z, path)
            member = _sheet_member(z, dataset, path)
            check_workbook_size(z, member, path, path.stat().st_size)
            cells: dict[int, tuple[str, str]] = {}
            with z.open(member) as fh:
                for number, el in enumerate((el for _, el in ET.iterparse(fh, events=("end",))
                                             if _local(el.tag) == "row"), 1):
                    row_cells = _row_cells(el)
                    here = int(el.get("r") or number)
                    if here == 1 and any(text for _, text in row_cells.values()):
                        cells = row_cells
                        first_row = 1
                        break
                    if any(text for _, text in row_cells.values()) or number > 1000:
                        first_row = here if any(text for _, text in row_cells.values()) else None
                        break
                    el.clear()
            strings = _shared_strings(z, {int(t) for k, t in cells.values() if k == "s" and t.isdigit()})
    except FileRefused:
        raise
    except (KeyError, StopIteration, zipfile.BadZipFile, ET.ParseError, OSError, zlib.error,
            RuntimeError, NotImplementedError, ValueError, EOFError) as exc:
        raise FileRefused(f"{path.name}: cannot open the workbook ({_exc_text(exc)})") from None
    if first_row != 1:
        raise FileRefused(_no_header_message(path, first_row))
    header: list[Any] = [None] * (max(cells) + 1 if cells else 0)
    for column, (kind, text) in cells.items():
        header[column] = strings.get(int(text)) if kind == "s" and text.isdigit() else _header_value(kind, text)
    while header and header[-1] in (None, ""):
        header.pop()
    if not header:
        raise FileRefused(_no_header_message(path, None))
    return header


def _row_cells(row: Any) -> dict[int, tuple[str, str]]:
    """The cells of one <row> element: column index → (type, raw text)."""
    cells: dict[int, tuple[str, str]] = {}
    for position, cell in enumerate(c for c in row if _local(c.tag) == "c"):
        ref = cell.get("r")
        column = _column_index(ref) if ref else position
        kind = cell.get("t") or "n"
        if kind == "inlineStr":
            text = "".join(t.text or "" for t in cell.iter() if _local(t.tag) == "t")
        else:
            text = next((v.text or "" for v in cell if _local(v.tag) == "v"), "")
        cells[column] = (kind, text)
    return cells


def _exc_text(exc: BaseException) -> str:
    """A library's error as a short printable phrase."""
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return shorten(readable(f"{type(exc).__name__}: {text}" if text else type(exc).__name__), 200)


def max_xlsx_bytes(file_size: int) -> int:
    """How far a workbook's sheet and shared strings may inflate (see DEFAULT_MAX_XLSX_BYTES)."""
    configured = os.environ.get("WORKBENCH_MAX_XLSX_BYTES", "").strip()
    if configured:
        try:
            return int(configured)
        except ValueError:
            raise UsageError(f"WORKBENCH_MAX_XLSX_BYTES={shorten(configured, 40)!r}: "
                             "expected a number of bytes") from None
    return max(DEFAULT_MAX_XLSX_BYTES, MAX_XLSX_RATIO * file_size)


def refuse_encrypted(z: zipfile.ZipFile, path: Path) -> None:
    """Zip-level encryption (not Excel's own): no reader can open the entries."""
    if any(info.flag_bits & 0x1 for info in z.infolist()):
        raise FileRefused(f"{path.name}: the workbook's zip entries are encrypted; save it without a password")


def check_workbook_size(z: zipfile.ZipFile, member: str, path: Path, file_size: int) -> None:
    """Refuse, from the zip directory alone, a workbook whose sheet plus
    shared strings would inflate past the limit (a zip bomb would exhaust
    memory in the reader before any check ran)."""
    infos = {info.filename: info for info in z.infolist()}
    inflated = sum(infos[name].file_size for name in (member, "xl/sharedStrings.xml") if name in infos)
    limit = max_xlsx_bytes(file_size)
    if inflated > limit:
        raise FileRefused(
            f"{path.name}: the sheet and its shared strings would take {inflated:,} bytes uncompressed "
            f"(limit {limit:,}; set WORKBENCH_MAX_XLSX_BYTES to allow more)")


def _header_value(kind: str, text: str) -> Any:
    if kind == "n" and text:
        number = float(text)
        return int(number) if number.is_integer() else number
    return text


# --------------------------------------------------------------------------
# Whole tables (the validate stage)
# --------------------------------------------------------------------------
# Why not pd.read_excel: it infers types column by column, so text codes such
# as "0219" come back as 219, and it takes about twice the bare calamine parse
# (4.2 s vs 2.1 s on 200k rows, tests/benchmarks/bench_validate.py). Reading the raw cells with python_calamine keeps
# every cell exactly as stored (text stays text, dates stay dates) and leaves
# the typing to pipeline.domain.coerce.coerce_frame, which reports what it cannot type.
ROW_NUMBER = "row_number"


def read_table(
    path: Path, dataset: DatasetConfig, *, data: bytes | None = None
) -> tuple[pd.DataFrame, str]:
    """Every data row of a landed file, as raw cells, and the reader used.

    Returns ``(frame, reader)``: ``frame`` has one object column per configured
    column (config names, config order; extra columns dropped when the dataset
    says ``extra_columns: ignore``) holding the cells exactly as stored — str,
    float, int, bool, date, datetime, or ``None``/``""`` for an empty cell. Its
    index, named ``row_number``, is the row as the analyst sees it: the header
    is row 1 and the first data row is row 2, for xlsx and csv alike. Rows whose
    cells are all empty are left out (their numbers are simply not used).
    ``reader`` is ``"calamine"``, ``"openpyxl"`` (fallback for workbooks
    calamine cannot open) or ``"csv"``.

    ``data`` is the file's content when the caller has already read it (validate
    hashes the bytes and parses those same bytes, so what is checked is exactly
    what was hashed). Raises FileRefused naming the file for anything unreadable.
    """
    if data is None:
        data = path.read_bytes()
    kind = _kind_of_bytes(path, data)
    ragged: list[tuple[int, str]] = []
    if kind == "csv":
        (rows, ragged), reader = _csv_rows(path, dataset, data), "csv"
    else:
        rows, reader = _xlsx_rows(path, dataset, data)
    # Handed over in a list the callee empties, so the row lists can be freed
    # as soon as they are copied into one array (this frame drops its name).
    holder = [rows]
    del rows
    frame = _rows_to_frame(path, dataset, holder, rectangular=reader == "calamine")
    if ragged:
        # rows that are invalid as records (coerce_frame reports them)
        frame.attrs[ROW_FAILURES] = [(row, what) for row, what in ragged if row in frame.index]
    return frame, reader


def _kind_of_bytes(path: Path, data: bytes) -> str:
    """file_kind() for content already in memory."""
    suffix = path.suffix.lower()
    if not data:
        raise FileRefused(f"{path.name}: the file is empty")
    if suffix == ".xlsx":
        if data.startswith(OLE_MAGIC):
            raise FileRefused(
                f"{path.name}: the workbook is password-protected (or an old .xls saved as .xlsx); "
                "save it without a password as .xlsx"
            )
        if not data.startswith(ZIP_MAGIC):
            raise FileRefused(f"{path.name}: not a real .xlsx workbook (the file is not an Excel zip package)")
        return "xlsx"
    if suffix == ".csv":
        return "csv"
    raise FileRefused(f"{path.name}: unsupported file type {suffix!r} (expected .xlsx or .csv)")


def _xlsx_rows(path: Path, dataset: DatasetConfig, data: bytes) -> tuple[list[list[Any]], str]:
    """All rows of the dataset's sheet from row 1, and the reader used.

    ``skip_empty_area=False`` keeps leading blank rows and columns, so list
    index i is Excel row i + 1 and cell j is column j + 1 — the positions the
    header check and the analyst use. Error cells and formulas without a
    computed value, which both readers turn into empty cells, come back as
    :class:`CellError` (see :func:`_unusable_cells`).
    """
    import python_calamine

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            refuse_encrypted(z, path)
            member = _sheet_member(z, dataset, path)
            check_workbook_size(z, member, path, len(data))
            unusable = _unusable_cells(z, member)
    except FileRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - any broken package is a refusal naming the file
        raise FileRefused(f"{path.name}: cannot open the workbook ({_exc_text(exc)})") from None
    try:
        workbook = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    except python_calamine.PasswordError:
        raise FileRefused(f"{path.name}: the workbook is password-protected; save it without a password") from None
    except Exception:  # calamine refuses some odd-but-valid packages openpyxl reads
        return _mark(_openpyxl_rows(path, dataset, data), unusable), "openpyxl"
    try:
        sheet = pick_sheet(workbook.sheet_names, dataset, path)
        try:
            rows = workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
        except Exception:
            return _mark(_openpyxl_rows(path, dataset, data), unusable), "openpyxl"
    finally:
        workbook.close()
    return _mark(rows, unusable), "calamine"


# An error cell's start tag, and a formula with no computed value after it
# (no <v>, or an empty one) right before the end of its cell.
_ERROR_CELL = re.compile(rb'<(?:\w+:)?c\s[^>]*?\bt="e"[^>]*(?<!/)>\s*'
                         rb'(?:<(?:\w+:)?f\b[^>]*?(?:/>|>[^<]*</(?:\w+:)?f>)\s*)?'
                         rb'<(?:\w+:)?v>([^<]*)</(?:\w+:)?v>')
_BARE_FORMULA = re.compile(rb'<(?:\w+:)?f\b[^>]*?(?:/>|>([^<]*)</(?:\w+:)?f>)\s*'
                           rb'(?:<(?:\w+:)?v\s*/>|<(?:\w+:)?v>\s*</(?:\w+:)?v>)?\s*</(?:\w+:)?c>')
_CELL_START = re.compile(rb'<(?:\w+:)?c\s([^>]*)>')
_ATTR = re.compile(rb'\b(r|t)="([^"]*)"')


def _unusable_cells(z: zipfile.ZipFile, member: str) -> dict[tuple[int, int], CellError]:
    """(row index, column index) → CellError for the sheet's error cells and
    formula cells saved without a value (python_calamine gives "" for both,
    openpyxl None for the second). One streaming pass over the sheet XML; the
    regular expressions run only on stretches that hold such markup at all."""
    found: dict[tuple[int, int], CellError] = {}
    carry = b""
    with z.open(member) as fh:
        while True:
            block = fh.read(1 << 22)
            buffer = carry + block
            cut = len(buffer) if not block else buffer.rfind(b"</row>") + 1
            if cut <= 0:
                carry = buffer
                continue
            region, carry = buffer[:cut], buffer[cut:]
            if b't="e"' in region:
                for match in _ERROR_CELL.finditer(region):
                    _note(found, region[match.start():match.end()], html.unescape(match.group(1).decode()))
            if b"<f" in region or b":f" in region:
                for match in _BARE_FORMULA.finditer(region):
                    # the cell's start tag is the last one before its formula
                    starts = list(_CELL_START.finditer(region, max(0, match.start() - 4096), match.start()))
                    cell = starts[-1] if starts else None
                    attrs = dict(_ATTR.findall(cell.group(1))) if cell else {}
                    if attrs.get(b"t") == b"str" and b"<v" in region[match.start():match.end()]:
                        continue  # a formula that computed the empty string
                    formula = html.unescape((match.group(1) or b"").decode()) or "(shared formula)"
                    _note(found, cell.group(0) if cell else b"", f"={formula}")
            if not block:
                return found


def _note(found: dict[tuple[int, int], CellError], start_tag: bytes, text: str) -> None:
    ref = re.search(rb'\br="([A-Za-z]+)([0-9]+)"', start_tag)
    if ref is not None:
        found[(int(ref.group(2)) - 1, _column_index(ref.group(1).decode()))] = CellError(text)


def _mark(rows: list[list[Any]], unusable: dict[tuple[int, int], CellError]) -> list[list[Any]]:
    for (row, column), cell in unusable.items():
        while len(rows) <= row:
            rows.append([])
        if len(rows[row]) <= column:
            rows[row] = list(rows[row]) + [""] * (column + 1 - len(rows[row]))
        rows[row][column] = cell
    return rows


def _openpyxl_rows(path: Path, dataset: DatasetConfig, data: bytes) -> list[list[Any]]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken packages
        raise FileRefused(f"{path.name}: cannot open the workbook ({_exc_text(exc)})") from None
    try:
        ws = open_sheet(workbook, dataset, path)
        # iter_rows starts at row 1 even when the sheet's data starts lower.
        return [list(row) for row in ws.iter_rows(min_row=1, values_only=True)]
    except FileRefused:
        raise
    except Exception as exc:
        raise FileRefused(f"{path.name}: cannot read the workbook ({_exc_text(exc)})") from None
    finally:
        workbook.close()


def _csv_rows(path: Path, dataset: DatasetConfig, data: bytes) -> tuple[list[list[Any]], list[tuple[int, str]]]:
    """Rows of a CSV file, list index i being text line i + 1 (the line a
    record starts on, as a text editor shows it), and the records whose field
    count differs from the header's: ``(row, what)``.

    Strict: a quote never closed, or text after a closing quote, refuses the
    file naming the row. Under ``on_invalid_rows: reject`` a record with
    missing fields (a truncated row) or extra non-empty fields (a stray
    delimiter) refuses the file; under ``drop`` it is a row error. LF, CRLF
    and CR-only line endings all work; fields of any length are accepted.
    """
    encoding = csv_encoding(dataset)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise FileRefused(decode_error_message(path, dataset.encoding, data, exc)) from None
    if csv.field_size_limit() < len(text) + 1:
        csv.field_size_limit(min(len(text) + 1, 2**31 - 1))  # a valid CSV is valid at any field size
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[list[Any]] = []
    ended = 0  # the text line the previous record ended on
    try:
        for record in reader:
            while len(rows) < ended:
                rows.append([])  # the lines a multi-line record spanned
            rows.append(record)
            ended = reader.line_num
    except csv.Error as exc:
        row = ended + 1
        if "end of data" in str(exc):
            raise FileRefused(f"{path.name}: row {row} opens a quoted field that is never closed "
                              "(the rest of the file would be one cell)") from None
        raise FileRefused(f"{path.name}: row {row} is not valid CSV ({exc})") from None
    return rows, _ragged_records(path, dataset, rows)


def _ragged_records(path: Path, dataset: DatasetConfig, rows: list[list[Any]]) -> list[tuple[int, str]]:
    """Records with fewer fields than the header or extra non-empty ones."""
    start = next((i for i, row in enumerate(rows) if any(c.strip() for c in row)), None)
    if start is None:
        return []
    header = rows[start]
    width = len(header)
    needed = width
    while needed and not header[needed - 1].strip():
        needed -= 1
    ragged = []
    for index in range(start + 1, len(rows)):
        record = rows[index]
        size = len(record)
        if size == width or not record:
            continue
        if size < needed and any(c.strip() for c in record):
            ragged.append((index + 1, f"{size} field{'s' if size != 1 else ''}, the header has {width}"))
        elif size > width and any(c.strip() for c in record[width:]):
            ragged.append((index + 1, f"{size} fields, the header has {width}"))
    if ragged and dataset.on_invalid_rows == "reject":
        row, what = ragged[0]
        more = f" ({len(ragged) - 1:,} more rows like it)" if len(ragged) > 1 else ""
        raise FileRefused(f"{path.name}: row {row} has {what}{more}; a stray delimiter or a cut-off row?")
    return ragged


def _is_blank_cell(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and value != value)


def _rows_to_frame(path: Path, dataset: DatasetConfig, holder: list[list[list[Any]]], *,
                   rectangular: bool) -> pd.DataFrame:
    """The mapped columns of rows[header + 1:], indexed by row number (list index + 1)."""
    import numpy as np
    import pandas as pd

    rows = holder.pop()
    # The header is the first row holding anything: row 1 in every file ingest
    # accepts, but counting from the real first row keeps numbers right anyway.
    start = next((i for i, row in enumerate(rows) if any(not _is_blank_cell(v) for v in row)), None)
    if start is None:
        raise FileRefused(_no_header_message(path, None))
    header = [_header_text(v) for v in rows[start]]
    while header and _is_blank_cell(header[-1]):
        header.pop()
    try:
        positions = validate_headers(header, dataset)
    except FileRefused as exc:
        raise FileRefused(f"{path.name}: {exc}") from None

    first_data_row = start + 2  # list index start + 1, counted from 1
    del rows[:start + 1]
    body = rows
    n = len(body)
    width = max(positions.values()) + 1
    if not rectangular:
        # csv records and openpyxl rows can be ragged; calamine's never are.
        width = max([width, *map(len, body)])
        body = [row if len(row) == width else list(row) + [None] * (width - len(row)) for row in body]
    elif n:
        width = max(width, len(body[0]))
    # One C-level pass over the rectangular rows instead of a Python loop per
    # cell (several times faster than zip(*rows) on 200k rows).
    cells = np.array(body, dtype=object) if n else np.empty((0, width), dtype=object)
    del body, rows
    order = [positions[name] for name in dataset.columns]
    # A copy only when columns are dropped or reordered (it frees the others).
    wanted = cells if order == list(range(width)) else cells[:, order]
    del cells
    row_numbers = np.arange(first_data_row, first_data_row + n, dtype=np.int64)
    # Readers give "" (calamine, csv) or None (openpyxl, short csv records) for
    # an empty cell; a row of nothing but those is not a data row. Only rows
    # whose first column is empty can be blank, so look at the rest only there.
    first = wanted[:, 0] if n else np.empty(0, dtype=object)
    maybe = np.flatnonzero((first == "") | (first == None))  # noqa: E711 (elementwise)
    if len(maybe):
        rest = wanted[maybe]
        blank_rows = maybe[((rest == "") | (rest == None)).all(axis=1)]  # noqa: E711
        if len(blank_rows):
            keep = np.ones(n, dtype=bool)
            keep[blank_rows] = False
            wanted, row_numbers = wanted[keep], row_numbers[keep]
    return pd.DataFrame(wanted, columns=list(dataset.columns), dtype=object, copy=False,
                        index=pd.Index(row_numbers, name=ROW_NUMBER))


def _header_text(value: Any) -> Any:
    # calamine returns a numeric header cell as 2025.0 where openpyxl (which
    # ingest uses) returns 2025; match what ingest saw.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value

"""Helpers for the hostile-input corpus: a prepared warehouse per backend, a
snapshot of everything a refusal must not change, and writers of bad files."""
from __future__ import annotations

import hashlib
import os
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa

from pipeline.demo import CITIZEN_HEADERS, PAYMENT_HEADERS
from pipeline.warehouse.engine import dispose_engines
from tests.conftest import CONFIG_PATH, Workspace, reset_postgres

CITIZENS = list(CITIZEN_HEADERS.values())
PAYMENTS = list(PAYMENT_HEADERS.values())
TABLES = ("stage.citizens", "stage.benefit_payments", "core.citizens", "core.benefit_payments",
          "mart.citizens_by_municipality", "mart.benefits_by_municipality")


def citizen(i: int, **change: Any) -> list[Any]:
    row = {"Citizen ID": i, "First Name": f"Anna{i}", "Last Name": "Berg", "Birth Date": "1980-01-02",
           "Sex": "F", "Municipality Code": "0219", "Household ID": 7, "Monthly Income": 1000.5}
    row.update({k.replace("_", " "): v for k, v in change.items()})
    return list(row.values())


def payment(i: int, period: str = "2025-06", **change: Any) -> list[Any]:
    row = {"Payment ID": i, "Citizen ID": i, "Benefit Type": "child_benefit", "Amount": 120.0,
           "Payment Date": f"{period}-15", "Booked At": f"{period}-15 10:00:00", "Is Correction": "false"}
    row.update({k.replace("_", " "): v for k, v in change.items()})
    return list(row.values())


def csv_text(rows: list[list[Any]], eol: str = "\n") -> str:
    def cell(v: Any) -> str:
        text = "" if v is None else str(v)
        return f'"{text}"' if any(c in text for c in ',"\r\n') else text
    return "".join(",".join(cell(v) for v in row) + eol for row in rows)


def write_xlsx(path: Path, rows: list[list[Any]], sheet: str = "citizens") -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def rewrite_member(path: Path, member: str, change: Any) -> Path:
    """Rewrite one zip member's bytes with ``change(bytes) -> bytes``."""
    with zipfile.ZipFile(path) as z:
        items = [(info, z.read(info.filename)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in items:
            z.writestr(info.filename, change(data) if info.filename == member else data)
    return path


@dataclass
class Snapshot:
    counts: dict[str, dict[str, int]]
    checksum: dict[str, str]


def snapshot(ws: Workspace) -> Snapshot:
    """Per table: rows per period, and a checksum of all its rows."""
    counts, sums = {}, {}
    with ws.engine.connect() as conn:
        for table in TABLES:
            rows = [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]
            counts[table] = dict(conn.execute(sa.text(
                f"SELECT _data_period, COUNT(*) FROM {table} GROUP BY _data_period")).all())
            sums[table] = hashlib.sha256("\n".join(sorted(map(repr, rows))).encode()).hexdigest()
    return Snapshot(counts, sums)


def cleaned_files(ws: Workspace) -> list[str]:
    root = ws.data_dir / "stage"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def prepared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             demo_dir: Path) -> Iterator[Workspace]:
    """A workspace whose warehouse holds January 2025 of both datasets,
    loaded by ``run``: the month every hostile case must leave untouched."""
    root = tmp_path_factory.mktemp(f"hostile-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'data' / 'warehouse' / 'workbench.sqlite'}"
    else:
        url = request.getfixturevalue("pg_database")
        reset_postgres(url)
    dispose_engines()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("WORKBENCH_DATA_DIR", str(root / "data"))
        mp.setenv("WORKBENCH_DB_URL", url)
        mp.setenv("WORKBENCH_CONFIG", str(CONFIG_PATH))
        (root / "data" / "landed").mkdir(parents=True)
        ws = Workspace(root=root, db_url=url)
        ws.add_demo(demo_dir, "*_2025-01.*")
        proc = ws.main("pipeline", "run")
        assert proc.returncode == 0, proc.stderr
        yield ws
    dispose_engines()


def unique() -> str:
    return uuid.uuid4().hex[:6]


def copy(src: Path, dst: Path) -> Path:
    return Path(shutil.copy(src, dst))


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


def write_bomb(path: Path, size: int) -> Path:
    """Make the workbook at ``path`` a zip bomb: its shared strings inflate to
    about ``size`` bytes (honestly declared in the zip directory) from a few
    MB. The deflate stream is one block compressed once and repeated (each
    ends with a full flush, so the copies are identical), which writes a
    1 GB bomb in well under a second."""
    import struct
    import zlib

    with zipfile.ZipFile(path) as z:
        members = [(i.filename, z.read(i.filename)) for i in z.infolist() if i.filename != "xl/sharedStrings.xml"]
    block = b"<si><t>x</t></si>" * 262_144
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    head = b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    tail = b"</sst>"
    copies = max(1, size // len(block))
    crc = zlib.crc32(head)
    for _ in range(copies):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = first.compress(head) + first.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(9, zlib.DEFLATED, -15)
    finish = end.compress(tail) + end.flush()
    bomb = (start, packed, copies, finish, crc, len(head) + copies * len(block) + len(tail))

    out = bytearray()
    central = bytearray()

    def add(name: str, chunks: list[bytes], crc32: int, raw_size: int) -> None:
        encoded = name.encode()
        packed_size = sum(map(len, chunks))
        offset = len(out)
        out.extend(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc32, packed_size, raw_size,
                               len(encoded), 0) + encoded)
        for chunk in chunks:
            out.extend(chunk)
        central.extend(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc32, packed_size,
                                   raw_size, len(encoded), 0, 0, 0, 0, 0, offset) + encoded)

    for name, data in members:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        add(name, [c.compress(data) + c.flush()], zlib.crc32(data), len(data))
    start, packed, copies, finish, crc, raw_size = bomb
    add("xl/sharedStrings.xml", [start, packed * copies, finish], crc, raw_size)
    count = len(members) + 1
    out_size = len(out)
    out.extend(central)
    out.extend(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), out_size, 0))
    path.write_bytes(bytes(out))
    return path

"""The cleaned Parquet files: where they live, how they are written (atomically,
with exactly the dataset's Arrow types) and how a file is checked and read
back for a load.

``<data>/stage/cleaned/<dataset>/period=<YYYY-MM>/part-0.parquet``: no period
column in the file (the folder supplies it when the dataset folder is read),
zstd-compressed, with ``workbench.*`` key/value metadata naming the dataset,
period, ingestion, file sha256 and validation.
"""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.domain.config import DatasetConfig
from pipeline.domain.period import PERIOD_COLUMN
from pipeline.domain.schema import arrow_schema
from pipeline.errors import FileRefused, UsageError, readable, shorten
from pipeline.settings import Settings

PARQUET_NAME = "part-0.parquet"
BATCH_ROWS = 100_000
# The files' key/value metadata (written by validate, read by load_stage):
# workbench.dataset, .period, .ingestion_id, .file_sha256, .validation_id
METADATA_PREFIX = b"workbench."
SHA_KEY = METADATA_PREFIX + b"file_sha256"


def parquet_path_for(settings: Settings, dataset: str, period: str) -> Path:
    """Where the cleaned Parquet of one dataset and period lives."""
    return settings.cleaned_dir / dataset / f"period={period}" / PARQUET_NAME


def write_parquet(frame: pd.DataFrame, dataset: DatasetConfig, path: Path, metadata: dict[str, str]) -> None:
    """Write ``frame`` with exactly the dataset's Arrow types, atomically.

    ``metadata`` keys are stored as ``workbench.<key>`` in the schema metadata.
    """
    schema = arrow_schema(dataset)
    table = pa.Table.from_pandas(frame[list(dataset.columns)], schema=schema, preserve_index=False)
    # Only our own metadata: the file's contract is the Arrow schema, not
    # pandas' description of the frame it came from.
    table = table.replace_schema_metadata({METADATA_PREFIX + k.encode(): v.encode() for k, v in metadata.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    # Hidden name in the same folder: os.replace is atomic only within one
    # file system, and pyarrow/pandas skip dot-files when reading the folder.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _compatible(source: pa.DataType, target: pa.DataType) -> bool:
    """Types a Parquet column may have for a config type (safe casts only)."""
    if source.equals(target) or pa.types.is_null(source):
        return True
    if pa.types.is_integer(target):
        return pa.types.is_integer(source)
    if pa.types.is_floating(target):
        return pa.types.is_integer(source) or pa.types.is_floating(source)
    if pa.types.is_string(target):
        return pa.types.is_string(source) or pa.types.is_large_string(source)
    if pa.types.is_date(target):
        return pa.types.is_date(source)
    if pa.types.is_timestamp(target):
        return pa.types.is_timestamp(source) and source.tz is None
    if pa.types.is_decimal(target):
        # Another decimal whose every value fits: no more fractional digits,
        # no more whole digits (an integer column is exact too).
        if pa.types.is_decimal(source):
            return source.scale <= target.scale and source.precision - source.scale <= target.precision - target.scale
        return pa.types.is_integer(source) and target.precision - target.scale >= 19
    return False


def open_parquet(path: Path, dataset: DatasetConfig, period: str) -> pq.ParquetFile:
    """Check the file against the dataset before the database is touched."""
    if not path.is_file():
        raise UsageError(f"no such Parquet file: {path}")
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (OSError, pa.ArrowException, ValueError, IndexError, UnicodeDecodeError) as exc:
        # A garbage footer gives multi-line, binary-laden messages: keep one printable line.
        first = readable(next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__))
        raise FileRefused(f"{path}: not a readable Parquet file ({shorten(first, 200)})") from None
    _check_period_labels(path, parquet, period)
    target = arrow_schema(dataset)
    missing = [name for name in target.names if name not in schema.names]
    if missing:
        raise FileRefused(f"{path}: missing column{'s' if len(missing) > 1 else ''} "
                          f"{', '.join(missing)} of dataset {dataset.name!r}")
    for field in target:
        source = schema.field(field.name).type
        if not _compatible(source, field.type):
            raise FileRefused(f"{path}: column {field.name!r} is {source}, dataset {dataset.name!r} "
                              f"needs {field.type}")
    if PERIOD_COLUMN in schema.names:
        periods = pc.unique(parquet.read(columns=[PERIOD_COLUMN]).column(0)).to_pylist()
        wrong = sorted(str(p) for p in periods if p != period)
        if wrong:
            raise FileRefused(f"{path}: its {PERIOD_COLUMN} holds {wrong[0]!r}, not the --period {period}")
    return parquet


def _check_period_labels(path: Path, parquet: pq.ParquetFile, period: str) -> None:
    """The period the file says it holds (validate's ``workbench.period``
    metadata, a ``period=YYYY-MM`` folder) must be the --period it is loaded as."""
    said = (parquet.schema_arrow.metadata or {}).get(METADATA_PREFIX + b"period")
    if said is not None and said != period.encode():
        shown = readable(said.decode("utf-8", "replace"))
        raise FileRefused(f"{path}: its metadata says period {shorten(shown, 40)!r}, not the --period {period}")
    folder = path.parent.name
    if folder.startswith("period=") and folder != f"period={period}":
        raise FileRefused(f"{path}: its folder {shorten(readable(folder), 40)!r} is not the --period {period}")


def parquet_batches(parquet: pq.ParquetFile, target: pa.Schema) -> Iterator[pa.RecordBatch]:
    # NOT NULL is the table's to enforce, inside the transaction: a cast to
    # non-nullable fields would fail half-way through with a vaguer message.
    target = pa.schema([field.with_nullable(True) for field in target])
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=target.names):
        yield from pa.Table.from_batches([batch]).select(target.names).cast(target).to_batches()




def file_sha256_of(parquet: pq.ParquetFile) -> str | None:
    """The landed file's sha256 that validate recorded in the Parquet metadata."""
    sha = (parquet.schema_arrow.metadata or {}).get(SHA_KEY)
    return sha.decode() if sha else None


# --------------------------------------------------------------------------
# Versions: every load's rows kept for rollback
# --------------------------------------------------------------------------
def version_path(settings: Settings, dataset: str, period: str, load_id: int) -> Path:
    """``<data>/stage/history/<dataset>/<period>/<load_id>.parquet``: the rows load ``load_id`` served."""
    return settings.history_dir / dataset / period / f"{load_id}.parquet"


def keep_version(settings: Settings, source: Path, dataset: str, period: str, load_id: int) -> Path:
    """Copy a loaded Parquet into the month's history (hard link when the file
    system allows: the cleaned file is replaced by a rename, never rewritten)
    and drop the oldest versions beyond ``settings.keep_versions``."""
    target = version_path(settings, dataset, period, load_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    versions = sorted(target.parent.glob("*.parquet"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1)
    for old in versions[:-settings.keep_versions]:
        old.unlink(missing_ok=True)
    return target

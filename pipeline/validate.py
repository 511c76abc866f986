"""Stage 2 — validate: read an ingested file, type and check every row against
the dataset's schema, write the typed Parquet file and log the outcome.

``python -m pipeline.validate --file-id ID`` (ID from ``meta.ingestion_log``)
writes ``<data>/stage/cleaned/<dataset>/period=<YYYY-MM>/part-0.parquet`` and
prints its path alone on the last stdout line.

How it behaves, and why:

- **Same bytes.** The file is read once; those bytes are hashed and compared
  with the sha256 logged at ingest, and the same bytes are parsed. A file that
  changed (or vanished) since ingest is refused ("file changed since ingest"):
  ingest it again so the log tells the truth about what was loaded.
- **Typing** of cells (blanks and white space, whole numbers, date and
  boolean spellings) is ``pipeline.schemas``' job; see its docstring.
- **Row numbers** are the analyst's: header = row 1, first data row = 2, for
  xlsx (exact even with leading blank rows, read from the cell coordinates)
  and csv (the text line a record starts on). Fully blank rows are skipped and
  not counted; their numbers are not reused.
- **Invalid rows.** Every failing cell is found (pandera ``lazy=True``), at
  most 1,000 are logged in ``meta.validation_errors`` (ordered by row), and
  ``rows_invalid`` counts distinct rows. ``on_invalid_rows: reject`` writes no
  Parquet and fails with one line summarising the first failures;
  ``drop`` writes the valid rows and passes. Every row of a duplicated primary
  key is invalid, so ``drop`` drops them all (we cannot tell which is right).
  A ``drop`` that would leave no row at all fails instead: loading it would
  empty the period.
- **Empty sheet** (a header row but no data rows): refused, logged as
  failed with 0 rows. Loading it would replace the period's rows in
  ``stage`` with nothing, which is far more often a broken export than a
  real month; an empty month is a rare decision a person should take
  explicitly, not a file that slips through.
- **Atomic file.** The Parquet is written to a hidden temporary name beside
  the target (readers of the folder ignore dot-files), fsynced and renamed
  over ``part-0.parquet``; a failed validation never touches an earlier file.
  Its types are exactly ``schemas.arrow_schema(dataset)``, zstd-compressed,
  without a period column (``period=YYYY-MM`` in the path supplies it when the
  dataset folder is read), with ``workbench.*`` key/value metadata naming the
  dataset, period, ingestion, file sha256 and validation.
- **Log.** A ``running`` row is inserted in ``meta.validation_log`` at start
  and always finished as ``passed`` or ``failed`` — also when something
  unexpected breaks, before the error propagates.
"""
from __future__ import annotations

import hashlib
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline import db
from pipeline.config import Config, DatasetConfig
from pipeline.context import Context
from pipeline.errors import FileRefused, UsageError, WorkbenchError
from pipeline.schemas import (
    METADATA_PREFIX, arrow_schema, build_schema, check_label, coerce_frame, empty_failures, value_text,
)
from pipeline.settings import Settings
from pipeline.utils import cli
from pipeline.utils.readers import read_table

PASSED, FAILED, RUNNING = "passed", "failed", "running"
MAX_LOGGED_ERRORS = 1_000
MAX_SUMMARY_GROUPS = 5
SUMMARY_VALUE_CHARS = 40  # the one-line message stays one readable line
PARQUET_NAME = "part-0.parquet"


@dataclass(frozen=True)
class ValidationResult:
    validation_id: int
    ingestion_id: int
    dataset: str
    period: str
    status: str                 # 'passed' | 'failed'
    rows_total: int | None      # None when the file could not be read at all
    rows_valid: int | None
    rows_invalid: int | None
    parquet_path: Path | None   # set only when a Parquet file was written
    error: str | None


@dataclass(frozen=True)
class _Ingestion:
    id: int
    dataset: str
    period: str
    file_name: str
    file_path: Path
    file_sha256: str


def parquet_path_for(settings: Settings, dataset: str, period: str) -> Path:
    """Where the cleaned Parquet of one dataset and period lives."""
    return settings.cleaned_dir / dataset / f"period={period}" / PARQUET_NAME


def validate_ingestion(
    ingestion_id: int,
    *,
    settings: Settings | None = None,
    config: Config | None = None,
    engine: Engine | None = None,
) -> ValidationResult:
    """Validate the file of one accepted ingestion and log the outcome.

    Returns the result, passed or failed; a refused file or invalid rows are
    a ``failed`` result (with ``error`` the one-line reason), not an
    exception. Raises UsageError for an unknown or rejected ingestion (nothing
    is logged then).
    """
    ctx = Context(settings, config, engine)
    settings, config, engine = ctx.settings, ctx.config, ctx.engine
    ingestion = _accepted_ingestion(engine, ingestion_id)
    dataset = config.dataset(ingestion.dataset)

    with db.write_transaction(engine) as conn:
        validation_id = conn.execute(
            sa.insert(db.validation_log).values(
                ingestion_id=ingestion.id, dataset=ingestion.dataset, period=ingestion.period,
                status=RUNNING, started_at=db.utcnow(),
            ).returning(db.validation_log.c.id)
        ).scalar_one()

    def finish(status: str, *, error: str | None = None, counts: tuple[int, int, int] | None = None,
               parquet: Path | None = None, failures: pd.DataFrame | None = None) -> ValidationResult:
        total, valid, invalid = counts if counts else (None, None, None)
        with db.write_transaction(engine) as conn:
            conn.execute(
                sa.update(db.validation_log).where(db.validation_log.c.id == validation_id).values(
                    status=status, rows_total=total, rows_valid=valid, rows_invalid=invalid,
                    parquet_path=str(parquet) if parquet else None, error=error, finished_at=db.utcnow(),
                )
            )
            if failures is not None and len(failures):
                conn.execute(sa.insert(db.validation_errors), _error_rows(validation_id, failures))
        return ValidationResult(validation_id, ingestion.id, ingestion.dataset, ingestion.period, status,
                                total, valid, invalid, parquet, error)

    try:
        data = _read_unchanged(ingestion)
        raw, _reader = read_table(ingestion.file_path, dataset, data=data)
        del data
        if raw.empty:
            return finish(FAILED, counts=(0, 0, 0), error=f"{ingestion.file_name}: no data rows (only the "
                          "header row); an empty delivery is not loaded")
        typed, failures = _check(raw, dataset, ingestion.period)
        del raw
    except FileRefused as exc:
        return finish(FAILED, error=str(exc))
    except WorkbenchError as exc:  # e.g. a python_checks module the config names is broken
        finish(FAILED, error=str(exc))
        raise
    except BaseException as exc:
        # Never leave a 'running' row behind; the CLI still reports the surprise.
        finish(FAILED, error=f"unexpected {type(exc).__name__}: {exc}"[:2000])
        raise

    try:
        total = len(typed)
        invalid_rows = np.unique(failures["row_number"].to_numpy(dtype=np.int64))
        counts = (total, total - len(invalid_rows), len(invalid_rows))
        shown = _sorted_failures(failures, dataset)
        # A failure of a DataFrame-wide check is pinned to the header row: no
        # row can be dropped for it, so it fails the file in either mode.
        whole_file = len(invalid_rows) and invalid_rows[0] < 2
        if len(invalid_rows) and (dataset.on_invalid_rows == "reject" or whole_file):
            return finish(FAILED, error=_summary(ingestion.file_name, len(invalid_rows), shown, validation_id),
                          counts=counts, failures=shown)
        if len(invalid_rows):
            typed = typed[~typed.index.isin(invalid_rows)]
            if typed.empty:
                error = (f"{ingestion.file_name}: all {total} rows are invalid, nothing to load: "
                         + _summary_groups(shown))
                return finish(FAILED, error=error, counts=counts, failures=shown)
        path = parquet_path_for(settings, dataset.name, ingestion.period)
        write_parquet(typed, dataset, path, {
            "dataset": dataset.name, "period": ingestion.period, "ingestion_id": str(ingestion.id),
            "file_sha256": ingestion.file_sha256, "validation_id": str(validation_id),
        })
        return finish(PASSED, counts=counts, parquet=path, failures=shown)
    except BaseException as exc:
        finish(FAILED, error=f"unexpected {type(exc).__name__}: {exc}"[:2000])
        raise


def _accepted_ingestion(engine: Engine, ingestion_id: int) -> _Ingestion:
    log = db.ingestion_log
    with engine.connect() as conn:
        row = conn.execute(sa.select(log).where(log.c.id == ingestion_id)).mappings().first()
    if row is None:
        raise UsageError(f"no ingestion with id {ingestion_id} in meta.ingestion_log")
    if row["status"] != "accepted":
        raise UsageError(f"ingestion {ingestion_id} was rejected at ingest: {row['error']}")
    return _Ingestion(row["id"], row["dataset"], row["period"], row["file_name"],
                      Path(row["file_path"]), row["file_sha256"])


def _read_unchanged(ingestion: _Ingestion) -> bytes:
    """The file's bytes, provided they are still the ones ingest logged."""
    try:
        data = ingestion.file_path.read_bytes()
    except FileNotFoundError:
        raise FileRefused(f"{ingestion.file_name}: the file no longer exists at {ingestion.file_path} "
                          f"(ingestion {ingestion.id}); land and ingest it again") from None
    except OSError as exc:
        raise FileRefused(f"{ingestion.file_name}: cannot read the file ({exc.strerror or exc})") from None
    sha = hashlib.sha256(data).hexdigest()
    if sha != ingestion.file_sha256:
        raise FileRefused(
            f"{ingestion.file_name}: file changed since ingest (ingestion {ingestion.id} logged sha256 "
            f"{ingestion.file_sha256[:12]}…, the file now has {sha[:12]}…); ingest it again"
        )
    return data


def _check(raw: pd.DataFrame, dataset: DatasetConfig, period: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The typed frame and every failure: type errors first, then the schema's."""
    typed, type_failures = coerce_frame(raw, dataset)
    schema = build_schema(dataset, period)
    try:
        schema.validate(typed, lazy=True, inplace=True)
        schema_failures = empty_failures()
    except pa.errors.SchemaErrors as exc:
        schema_failures = _schema_failures(exc.failure_cases)
    if len(type_failures) and len(schema_failures):
        # A cell that could not be typed is null in the typed frame; don't
        # report it a second time as a missing value.
        typed_cells = pd.MultiIndex.from_arrays([type_failures["row_number"], type_failures["column"]])
        cells = pd.MultiIndex.from_arrays([schema_failures["row_number"], schema_failures["column"]])
        again = cells.isin(typed_cells) & (schema_failures["check"] == "not_nullable").to_numpy()
        schema_failures = schema_failures[~again]
    parts = [f for f in (type_failures, schema_failures) if len(f)]
    return typed, (pd.concat(parts, ignore_index=True) if parts else empty_failures())


def _schema_failures(cases: pd.DataFrame) -> pd.DataFrame:
    # A failure without a row index is about the frame, not a row (e.g. a
    # wide check returning one boolean); it cannot be dropped row by row, so
    # it is pinned to the header row, which makes the whole file invalid.
    rows = pd.to_numeric(cases["index"], errors="coerce").fillna(1).astype("int64")
    return pd.DataFrame({
        "row_number": rows.to_numpy(),
        "column": cases["column"].astype(object).where(cases["column"].notna(), None).to_numpy(),
        "check": [check_label(str(c)) for c in cases["check"]],
        "value": cases["failure_case"].astype(object).to_numpy(),
    })


def _sorted_failures(failures: pd.DataFrame, dataset: DatasetConfig) -> pd.DataFrame:
    """The first MAX_LOGGED_ERRORS failures by row, then column order."""
    if failures.empty:
        return failures
    order = {name: i for i, name in enumerate(dataset.columns)}
    keyed = failures.assign(_col=failures["column"].map(order).fillna(len(order)))
    keyed = keyed.sort_values(["row_number", "_col"], kind="stable").head(MAX_LOGGED_ERRORS)
    return keyed.drop(columns="_col").reset_index(drop=True)


def _error_rows(validation_id: int, failures: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"validation_id": validation_id, "row_number": int(row), "column": column,
         "check": check, "value": value_text(value)}
        for row, column, check, value in zip(failures["row_number"], failures["column"],
                                             failures["check"], failures["value"])
    ]


def _summary_groups(failures: pd.DataFrame) -> str:
    """'sex isin [M, F, X] (row 5 'Q'), monthly_income ≥ 0 (row 12 '-120.0'; 2 more rows), …'"""
    groups: dict[tuple[Any, str], list[tuple[int, Any]]] = {}
    for row, column, check, value in zip(failures["row_number"], failures["column"],
                                         failures["check"], failures["value"]):
        groups.setdefault((column, check), []).append((int(row), value))
    parts = []
    for (column, check), hits in list(groups.items())[:MAX_SUMMARY_GROUPS]:
        row, value = hits[0]
        text = value_text(value)
        if text is not None and len(text) > SUMMARY_VALUE_CHARS:
            text = text[:SUMMARY_VALUE_CHARS] + "…"
        shown = "empty" if text is None else repr(text)
        more = f"; {len(hits) - 1} more row{'s' if len(hits) > 2 else ''}" if len(hits) > 1 else ""
        parts.append(f"{column or '(table)'} {check} (row {row} {shown}{more})")
    if len(groups) > MAX_SUMMARY_GROUPS:
        parts.append("…")
    return ", ".join(parts)


def _summary(file_name: str, invalid: int, failures: pd.DataFrame, validation_id: int) -> str:
    return (f"{file_name}: {invalid} invalid row{'s' if invalid != 1 else ''}: {_summary_groups(failures)} "
            f"(see meta.validation_errors, validation {validation_id})")


def write_parquet(frame: pd.DataFrame, dataset: DatasetConfig, path: Path, metadata: dict[str, str]) -> None:
    """Write ``frame`` with exactly the dataset's Arrow types, atomically.

    ``metadata`` keys are stored as ``workbench.<key>`` in the schema metadata.
    """
    schema = arrow_schema(dataset)
    table = pyarrow.Table.from_pandas(frame[list(dataset.columns)], schema=schema, preserve_index=False)
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


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("python -m pipeline.validate",
                   "Type and check every row of an ingested file and write its Parquet file.")
    p.add_argument("--file-id", required=True, type=int, help="the ingestion id printed by ingest")

    def action(args) -> int:  # type: ignore[no-untyped-def]
        result = validate_ingestion(args.file_id)
        if result.status == FAILED:
            print(f"error: {result.error}", file=sys.stderr)
            return 1
        dropped = f", {result.rows_invalid} invalid rows dropped" if result.rows_invalid else ""
        print(f"validated {result.dataset} {result.period}: {result.rows_valid} rows{dropped} "
              f"(validation {result.validation_id})")
        print(result.parquet_path)
        return 0

    return cli.run(p, argv, action)


if __name__ == "__main__":
    sys.exit(main())

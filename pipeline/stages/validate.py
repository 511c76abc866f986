"""Stage 2 — validate: read an ingested file, type and check every row against
the dataset's schema, write the typed Parquet file and log the outcome.

``python -m pipeline.validate --file-id ID`` (ID from ``meta.ingestion_log``)
writes ``<data>/stage/cleaned/<dataset>/period=<YYYY-MM>/part-0.parquet`` and
prints its path alone on the last stdout line.

How it behaves, and why:

- **Same bytes.** The file is read once and those bytes are parsed. They
  must be the ones ingest logged: when this run hashed the file (``run``'s
  check and ingest share one hash per file, ``Context.file_sha256``) and its
  size and modification time are unchanged across the read, they are;
  otherwise the bytes read are hashed and compared with the logged sha256.
  A file that changed (or vanished) since ingest is refused ("file changed
  since ingest"): ingest it again so the log tells the truth about what was
  loaded. (A rewrite to the very same size within the file system's mtime
  tick of the first hash would go unseen; files are landed, not edited in
  place, so the cost of a second full hash per file is not worth it.)
- **Typing** of cells (blanks and white space, whole numbers, date and
  boolean spellings) is ``pipeline.domain.coerce``' job; see its docstring.
- **Row numbers** are the analyst's: header = row 1, first data row = 2, for
  xlsx (exact even with leading blank rows, read from the cell coordinates)
  and csv (the text line a record starts on). Fully blank rows are skipped and
  not counted; their numbers are not reused.
- **Invalid rows** (the rules are ``domain.validation.decide``). Every
  failing cell is found (pandera ``lazy=True``), at most 1,000 are logged
  in ``meta.validation_errors`` (ordered by row), and
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
  Its types are exactly ``domain.schema.arrow_schema(dataset)``, zstd-compressed,
  without a period column (``period=YYYY-MM`` in the path supplies it when the
  dataset folder is read), with ``workbench.*`` key/value metadata naming the
  dataset, period, ingestion, file sha256 and validation.
- **Log.** A ``running`` row is inserted in ``meta.validation_log`` at start
  (naming the host and process holding it, and the sha256 of the dataset's
  config) and always finished as ``passed`` or ``failed`` — also when
  something unexpected breaks, before the error propagates. A failure that
  is no verdict on the data (a disk error, a surprise) is logged
  ``retryable``: ``run`` tries it again without ``--force``. A process killed
  outright cannot finish its row; the next validation marks such rows failed
  (cause unknown, retryable).
- **Counts.** ``rows_invalid`` and every "N more rows" count all failing
  rows; ``rows_dropped`` the rows left out under ``drop``. A failing cell's
  value is logged as the file holds it (CSV text ``0`` stays ``'0'``), with
  the file's header text beside the config's column name.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine

from pipeline.context import Context
from pipeline.domain.config import Config, DatasetConfig
from pipeline.domain.files import validate_headers
from pipeline.domain.fingerprint import config_sha256
from pipeline.domain.validation import Decision, check_frame, decide, empty_file_error
from pipeline.errors import FileRefused, WorkbenchError, unexpected
from pipeline.io import landed
from pipeline.io.landed import read_header_row, read_table
from pipeline.io.parquet import parquet_path_for, write_parquet
from pipeline.settings import Settings
from pipeline.warehouse import runlog
from pipeline.warehouse.runlog import Ingestion, ValidationStatus


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
    rows_dropped: int | None = None  # left out under on_invalid_rows: drop
    rows_warned: int | None = None   # failed only severity: warn checks
    # per (column, check): every failing row counted (the log keeps samples only)
    failure_groups: pd.DataFrame | None = None


class _Run:
    """One validation in progress: its log row, finished exactly once."""

    def __init__(self, ctx: Context, ingestion: Ingestion) -> None:
        self.ctx, self.ingestion = ctx, ingestion
        self.dataset = ctx.config.dataset(ingestion.dataset)
        self.headers: dict[str, str] = {}
        self.id = runlog.start_validation(ctx.engine, ingestion, config_sha256(self.dataset))

    def finish(self, status: str, *, error: str | None = None, counts: runlog.Counts = runlog.Counts(),
               parquet: Path | None = None, failures: pd.DataFrame | None = None,
               retryable: bool = False, groups: pd.DataFrame | None = None) -> ValidationResult:
        runlog.finish_validation(self.ctx.engine, self.id, status=status, counts=counts, parquet=parquet,
                                 error=error, failures=failures, retryable=retryable, headers=self.headers)
        i = self.ingestion
        return ValidationResult(self.id, i.id, i.dataset, i.period, status, counts.total, counts.valid,
                                counts.invalid, parquet, error, counts.dropped, counts.warned, groups)


class Transient(WorkbenchError):
    """A failure that is no verdict on the data (a disk or connection error):
    logged as retryable, so ``run`` tries the file again without --force."""


def validate(ctx: Context, ingestion_id: int) -> ValidationResult:
    """Validate the file of one accepted ingestion and log the outcome.

    Returns the result, passed or failed; a refused file or invalid rows are
    a ``failed`` result (with ``error`` the one-line reason), not an
    exception, and so is a disk error (then logged ``retryable``). Raises
    UsageError for an unknown or rejected ingestion (nothing is logged then).
    A ``running`` row left by a validation whose process died is marked
    failed first.
    """
    ingestion = runlog.accepted_ingestion(ctx.engine, ingestion_id)
    runlog.fail_stale_validations(ctx.engine)
    run = _Run(ctx, ingestion)
    dataset = run.dataset
    try:
        data = _read_unchanged(ctx, ingestion)
        run.headers = _file_headers(ingestion.file_path, dataset)
        raw, _reader = read_table(ingestion.file_path, dataset, data=data)
        del data
        if raw.empty:
            return run.finish(ValidationStatus.FAILED, counts=runlog.Counts(0, 0, 0, 0, 0),
                              error=empty_file_error(ingestion.file_name))
        typed, failures = check_frame(raw, dataset, ingestion.period)
        del raw
        decision = decide(typed, failures, dataset, ingestion.file_name, run.id, run.headers)
        return _conclude(run, decision)
    except FileRefused as exc:  # a verdict on the file
        return run.finish(ValidationStatus.FAILED, error=str(exc))
    except Transient as exc:
        return run.finish(ValidationStatus.FAILED, error=str(exc), retryable=True)
    except OSError as exc:  # the disk, not the data: e.g. writing the Parquet on a full or read-only disk
        where = f" ({exc.filename})" if exc.filename else ""
        return run.finish(ValidationStatus.FAILED, retryable=True,
                          error=f"{ingestion.file_name}: {exc.strerror or exc}{where}; run retries it")
    except WorkbenchError as exc:  # e.g. a python_checks module the config names is broken
        run.finish(ValidationStatus.FAILED, error=str(exc), retryable=True)
        raise
    except BaseException as exc:
        # Never leave a 'running' row behind; the CLI still reports the surprise.
        run.finish(ValidationStatus.FAILED, error=unexpected(exc)[:2000], retryable=True)
        raise


def _file_headers(path: Path, dataset: DatasetConfig) -> dict[str, str]:
    """Each column's header as the file spells it, where the file names it
    differently from the config's name (messages and the error log show both)."""
    try:
        headers = read_header_row(path, dataset)
        positions = validate_headers(headers, dataset)
    except (FileRefused, OSError):
        return {}
    return {column: str(headers[i]).strip() for column, i in positions.items()
            if str(headers[i]).strip().casefold() != column.casefold()}


def _conclude(run: _Run, decision: Decision) -> ValidationResult:
    total, valid, invalid = decision.counts
    counts = runlog.Counts(total, valid, invalid, decision.dropped, decision.warned)
    if not decision.passed or decision.rows is None:
        return run.finish(ValidationStatus.FAILED, error=decision.error, counts=counts, failures=decision.failures,
                          groups=decision.groups)
    i = run.ingestion
    path = parquet_path_for(run.ctx.settings, i.dataset, i.period)
    write_parquet(decision.rows, run.dataset, path, {
        "dataset": i.dataset, "period": i.period, "ingestion_id": str(i.id),
        "file_sha256": i.file_sha256, "validation_id": str(run.id),
    })
    return run.finish(ValidationStatus.PASSED, counts=counts, parquet=path, failures=decision.failures,
                      groups=decision.groups)


def _read_unchanged(ctx: Context, ingestion: Ingestion) -> bytes:
    """The file's bytes, provided they are still the ones ingest logged.

    Hashed again only when needed: if this run hashed the file (ctx) to the
    logged sha256 and its size and mtime were the same before and after this
    read (and the bytes read are that size), they are those bytes."""
    path = ingestion.file_path
    try:
        before = landed.size_and_mtime(path)
        data = path.read_bytes()
        after = landed.size_and_mtime(path)
    except FileNotFoundError:
        raise FileRefused(f"{ingestion.file_name}: the file no longer exists at {ingestion.file_path} "
                          f"(ingestion {ingestion.id}); land and ingest it again") from None
    except OSError as exc:
        raise Transient(f"{ingestion.file_name}: cannot read the file ({exc.strerror or exc})") from None
    known = ctx.known_sha256(path, before) if before == after and len(data) == before[0] else None
    sha = known if known is not None else landed.bytes_sha256(data)
    if sha != ingestion.file_sha256:
        raise FileRefused(
            f"{ingestion.file_name}: file changed since ingest (ingestion {ingestion.id} logged sha256 "
            f"{ingestion.file_sha256[:12]}…, the file now has {sha[:12]}…); ingest it again"
        )
    return data



def validate_ingestion(ingestion_id: int, *, settings: Settings | None = None, config: Config | None = None,
                       engine: Engine | None = None) -> ValidationResult:
    """:func:`validate` for a caller holding the parts of a context, or none."""
    return validate(Context(settings, config, engine), ingestion_id)

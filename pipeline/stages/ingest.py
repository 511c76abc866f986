"""Stage 1 — ingest: check a landed file's name and header row in place and
log the attempt in ``meta.ingestion_log``. Nothing is copied."""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from pipeline.context import Context
from pipeline.domain.config import Config, DatasetConfig
from pipeline.domain.files import parse_and_validate_filename, validate_headers
from pipeline.domain.fingerprint import config_sha256
from pipeline.errors import FileRefused, readable, shorten
from pipeline.io.landed import read_header_row, resolve_landed_path
from pipeline.settings import Settings
from pipeline.warehouse import runlog
from pipeline.warehouse.runlog import IngestStatus


@dataclass(frozen=True)
class IngestResult:
    ingestion_id: int
    status: str
    file_name: str
    dataset: str | None
    period: str | None
    error: str | None
    file_sha256: str | None


def check_headers(path: Path, dataset: DatasetConfig) -> dict[str, int]:
    """The header row maps onto the dataset's columns, or FileRefused naming the file."""
    try:
        return validate_headers(read_header_row(path, dataset), dataset)
    except FileRefused as exc:
        text, name = str(exc), readable(path.name)
        raise FileRefused(text if text.startswith(name) else f"{name}: {text}") from None


def ingest(ctx: Context, file_path: str | Path) -> IngestResult:
    """Check one landed file and log the attempt, accepted or rejected."""
    path = resolve_landed_path(file_path, ctx.settings)
    # A name that is not UTF-8 (or holds a control character) is refused by
    # the name check; the log and the terminal get it escaped (\xff, \n).
    name = readable(path.name)
    dataset = period = sha = error = judged_by = None
    size = None
    status = IngestStatus.ACCEPTED
    retryable = False
    try:
        size = path.stat().st_size
        sha = ctx.file_sha256(path)
        parsed = parse_and_validate_filename(path.name, ctx.config.datasets)
        dataset, period = parsed.dataset, parsed.period
        config = ctx.config.dataset(dataset)
        judged_by = config_sha256(config)
        check_headers(path, config)
    except FileRefused as exc:
        status, error = IngestStatus.REJECTED, str(exc)
    except OSError as exc:  # the disk, not the data: run tries it again
        status, retryable = IngestStatus.REJECTED, True
        error = f"{name}: cannot read the file ({exc.strerror or exc})"
    except (ValueError, RuntimeError, EOFError, LookupError, zlib.error) as exc:
        # a library's complaint about a malformed file: still a refusal naming it
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        status, error = IngestStatus.REJECTED, shorten(
            f"{name}: cannot read the file ({type(exc).__name__}: {readable(first)})")
    ingestion_id = runlog.log_ingestion(
        ctx.engine, dataset=dataset, period=period, file_name=name, file_path=readable(str(path)),
        file_size=size, file_sha256=sha, status=status, error=error, config_sha256=judged_by,
        retryable=retryable,
    )
    return IngestResult(ingestion_id, status, name, dataset, period, error, sha)


def ingest_file(file_path: str | Path, *, settings: Settings | None = None, config: Config | None = None,
                engine: Engine | None = None) -> IngestResult:
    """:func:`ingest` for a caller holding the parts of a context, or none."""
    return ingest(Context(settings, config, engine), file_path)

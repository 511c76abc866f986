"""Stage 1 — ingest: check a landed file's name and header row in place and
log the attempt in ``meta.ingestion_log``. Nothing is copied."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline import db
from pipeline.config import Config, DatasetConfig
from pipeline.context import Context
from pipeline.errors import FileRefused, UsageError
from pipeline.settings import Settings
from pipeline.utils import cli
from pipeline.utils.parsing import parse_and_validate_filename, validate_headers
from pipeline.utils.readers import file_sha256, read_header_row

ACCEPTED, REJECTED = "accepted", "rejected"


@dataclass(frozen=True)
class IngestResult:
    ingestion_id: int
    status: str
    file_name: str
    dataset: str | None
    period: str | None
    error: str | None
    file_sha256: str | None


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


def check_headers(path: Path, dataset: DatasetConfig) -> dict[str, int]:
    """The header row maps onto the dataset's columns, or FileRefused naming the file."""
    try:
        return validate_headers(read_header_row(path, dataset), dataset)
    except FileRefused as exc:
        text = str(exc)
        raise FileRefused(text if text.startswith(path.name) else f"{path.name}: {text}") from None


def ingest_file(
    file_path: str | Path,
    *,
    settings: Settings | None = None,
    config: Config | None = None,
    engine: Engine | None = None,
) -> IngestResult:
    """Check one landed file and log the attempt, accepted or rejected."""
    ctx = Context(settings, config, engine)
    config = ctx.config
    path = resolve_landed_path(file_path, ctx.settings)
    engine = ctx.engine

    dataset = period = sha = error = None
    size = None
    status = ACCEPTED
    try:
        size = path.stat().st_size
        sha = file_sha256(path)
        parsed = parse_and_validate_filename(path.name, config.datasets)
        dataset, period = parsed.dataset, parsed.period
        check_headers(path, config.dataset(dataset))
    except FileRefused as exc:
        status, error = REJECTED, str(exc)
    except OSError as exc:
        status, error = REJECTED, f"{path.name}: cannot read the file ({exc.strerror or exc})"

    with db.write_transaction(engine) as conn:
        ingestion_id = conn.execute(
            sa.insert(db.ingestion_log).values(
                dataset=dataset, period=period, file_name=path.name, file_path=str(path),
                file_size=size, file_sha256=sha, status=status, error=error,
                ingested_at=db.utcnow(),
            ).returning(db.ingestion_log.c.id)
        ).scalar_one()
    return IngestResult(ingestion_id, status, path.name, dataset, period, error, sha)


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("python -m pipeline.ingest", "Check a landed file's name and header row and log it.")
    p.add_argument("--file-path", required=True, help="the file, inside data/landed/")

    def action(args) -> int:  # type: ignore[no-untyped-def]
        result = ingest_file(args.file_path)
        if result.status == REJECTED:
            print(f"error: {result.error}", file=sys.stderr)
        else:
            print(f"accepted {result.file_name}: dataset {result.dataset}, period {result.period}")
        print(result.ingestion_id)
        return 0 if result.status == ACCEPTED else 1

    return cli.run(p, argv, action)


if __name__ == "__main__":
    sys.exit(main())

"""``python -m pipeline accept-headers --file-id ID [--dry-run]``: a file
refused for renamed headers ("Cust ID" where the config says "Customer ID")
is matched to the config's missing columns (pipeline.domain.header_match) and
the matches are written into the config as ``header:`` aliases, keeping its
comments (pipeline.io.config_edit). Nothing is asked; ``--dry-run`` only
prints the mapping.

The dashboard's month page shows the same mapping (``mapping_lines`` of a dry
run of the month's refused file, ``refused_file_id``) with an Accept button."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from pipeline.context import Context
from pipeline.domain.files import validate_headers
from pipeline.domain.header_match import match_headers
from pipeline.errors import ConfigError, FileRefused, UsageError
from pipeline.io.config_edit import add_header_aliases
from pipeline.io.config_file import load_config
from pipeline.io.landed import read_header_row
from pipeline.warehouse.runlog import IngestStatus, ingestion_log


@dataclass(frozen=True)
class Accepted:
    dataset: str
    period: str | None
    file_name: str
    mapping: dict[str, str]   # column → the file's header
    written: bool
    file_id: int = 0          # the ingestion (meta.ingestion_log.id) whose file was read


def logged_file(ctx: Context, file_id: int) -> tuple[str, str | None, Path]:
    """(dataset, period, path) of an ingestion, accepted or refused."""
    with ctx.engine.connect() as conn:
        row = conn.execute(sa.select(ingestion_log.c.dataset, ingestion_log.c.period, ingestion_log.c.file_path)
                           .where(ingestion_log.c.id == file_id)).first()
    if row is None:
        raise UsageError(f"no ingestion with id {file_id} in meta.ingestion_log")
    if not row.dataset:
        raise UsageError(f"ingestion {file_id}: the file name matched no dataset; rename the file first")
    return row.dataset, row.period, Path(row.file_path)


def accept_headers(ctx: Context, file_id: int, *, dry_run: bool = False) -> Accepted:
    """Match and (unless ``dry_run``) write the aliases; the config is checked
    after writing and restored if it no longer loads."""
    name, period, path = logged_file(ctx, file_id)
    dataset = ctx.config.dataset(name)
    if not path.is_file():
        raise UsageError(f"ingestion {file_id}: {path} no longer exists")
    try:
        headers = read_header_row(path, dataset)
        mapping = match_headers(headers, dataset)
    except FileRefused as exc:
        raise FileRefused(f"{path.name}: {exc}") from None
    if not mapping or dry_run:
        return Accepted(name, period, path.name, mapping, False, file_id)
    config_path = ctx.config.path
    before = config_path.read_text(encoding="utf-8")
    add_header_aliases(config_path, name, mapping)
    try:
        validate_headers(headers, load_config(config_path).dataset(name))
    except (ConfigError, FileRefused) as exc:
        config_path.write_text(before, encoding="utf-8")
        raise FileRefused(f"{path.name}: the aliases would not make the file load ({exc}); "
                          "the config is unchanged") from None
    return Accepted(name, period, path.name, mapping, True, file_id)


def mapping_lines(done: Accepted) -> list[str]:
    """The mapping as ``accept-headers`` prints it: ``dataset.column: header 'text'``."""
    return [f"{done.dataset}.{column}: header {header!r}" for column, header in done.mapping.items()]


def refused_file_id(ctx: Context, dataset: str, period: str) -> int | None:
    """The month's latest ingestion when it refused the file (for its name or
    header row, not a disk error that ``run`` retries): the ``--file-id`` to accept."""
    t = ingestion_log
    with ctx.engine.connect() as conn:
        row = conn.execute(sa.select(t.c.id, t.c.status, t.c.retryable)
                           .where(t.c.dataset == dataset, t.c.period == period)
                           .order_by(t.c.id.desc()).limit(1)).first()
    if row is None or row.status != IngestStatus.REJECTED or row.retryable:
        return None
    return int(row.id)

"""Stage 3 — load_stage: make a validated Parquet file the whole content of
one period of ``stage.<table>``, atomically (see pipeline.warehouse.replace)."""
from __future__ import annotations

import contextlib
from pathlib import Path

from sqlalchemy.engine import Engine

from pipeline.context import Context
from pipeline.domain.config import Config
from pipeline.domain.period import parse_cli_period
from pipeline.domain.schema import arrow_schema
from pipeline.errors import FileRefused
from pipeline.io.parquet import file_sha256_of, keep_version, open_parquet, parquet_batches
from pipeline.settings import Settings
from pipeline.warehouse import runlog
from pipeline.warehouse.replace import LoadResult, replace_period
from pipeline.warehouse.runlog import Step
from pipeline.warehouse.tables import stage_table


def load(ctx: Context, parquet_path: str | Path, period: str, dataset_name: str) -> LoadResult:
    """Replace ``period`` of ``stage.<table>`` with the rows of ``parquet_path``."""
    dataset = ctx.config.dataset(dataset_name)
    period = parse_cli_period(period)
    path = Path(parquet_path).absolute()
    try:
        parquet = open_parquet(path, dataset, period)
    except FileRefused as exc:
        runlog.log_load_failure(ctx.engine, step=Step.LOAD_STAGE, dataset=dataset.name, period=period,
                                source=str(path), file_sha256=None, error=str(exc), started=runlog.utcnow())
        raise
    result = replace_period(
        ctx.engine, stage_table(dataset), period, parquet_batches(parquet, arrow_schema(dataset)),
        step=Step.LOAD_STAGE, dataset=dataset.name, source=str(path), file_sha256=file_sha256_of(parquet),
    )
    # The served rows, kept so the month can be rolled back to them later.
    # The load has committed: a full disk here costs that version, not the load.
    with contextlib.suppress(OSError):
        keep_version(ctx.settings, path, dataset.name, period, result.load_id)
    return result


def load_stage(parquet_path: str | Path, period: str, dataset_name: str, *, settings: Settings | None = None,
               config: Config | None = None, engine: Engine | None = None) -> LoadResult:
    """:func:`load` for a caller holding the parts of a context, or none."""
    return load(Context(settings, config, engine), parquet_path, period, dataset_name)

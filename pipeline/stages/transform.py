"""Stage 4 — transform: rebuild one period of ``core.<table>`` from
``stage.<table>``, with the dataset's transform SQL (or a mirror of the stage
period when it has none)."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.context import Context
from pipeline.domain.config import Config
from pipeline.domain.period import PERIOD_COLUMN
from pipeline.settings import Settings
from pipeline.stages.derived import derived_period
from pipeline.warehouse.query import SqlFile, known_types
from pipeline.warehouse.replace import (
    LoadResult,
    ensure_table_once,
    rebuild_period,
)
from pipeline.warehouse.runlog import Step
from pipeline.warehouse.tables import mirror_core_table, stage_table


def transform_period(ctx: Context, dataset_name: str, period: str) -> LoadResult:
    config, engine = ctx.config, ctx.engine
    with derived_period(ctx, Step.TRANSFORM, dataset_name, period) as (dataset, period):
        # A transform may join other datasets' stage tables (benefit payments
        # join citizens); make sure each exists, if empty, so the SQL always runs.
        for other in config.datasets.values():
            ensure_table_once(engine, stage_table(other))
        stage = stage_table(dataset)
        statement: sa.Executable | SqlFile
        if dataset.transform is not None:
            # Prepared (on SQLite translated, or refused) before anything changes.
            statement = ctx.sql_file(dataset.transform)
        else:
            # the mirror's new columns get the config's defaults in old periods
            ensure_table_once(engine, mirror_core_table(dataset))
            statement = sa.select(stage).where(stage.c[PERIOD_COLUMN] == sa.bindparam("period"))
        return rebuild_period(engine, source=stage, target=("core", dataset.table), statement=statement,
                              period=period, types=known_types(config), step=Step.TRANSFORM,
                              dataset=dataset.name, key=dataset.primary_key)


def transform(dataset_name: str, period: str, *, settings: Settings | None = None, config: Config | None = None,
              engine: Engine | None = None) -> LoadResult:
    """:func:`transform_period` for a caller holding the parts of a context, or none."""
    return transform_period(Context(settings, config, engine), dataset_name, period)

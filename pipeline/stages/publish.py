"""Stage 5 — publish: rebuild one period of the dataset's ``mart`` tables from
``core``. Without ``publish`` in the config a dataset gets
``mart.<table>_summary``: one row per period with its row count."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.context import Context
from pipeline.domain.config import Config, DatasetConfig
from pipeline.domain.period import PERIOD_COLUMN
from pipeline.settings import Settings
from pipeline.stages.derived import derived_period
from pipeline.warehouse.query import SqlFile, known_types
from pipeline.warehouse.replace import LoadResult, rebuild_period
from pipeline.warehouse.runlog import Step


def mart_names(dataset: DatasetConfig) -> list[str]:
    """The mart tables publish rebuilds: the config's, else ``<table>_summary``."""
    return list(dataset.publish) if dataset.publish else [f"{dataset.table}_summary"]


def mart_statements(ctx: Context, dataset: DatasetConfig, core: sa.Table) -> dict[str, sa.Executable | SqlFile]:
    """Every mart's statement, all prepared before the first mart is rebuilt."""
    if dataset.publish:
        return {name: ctx.sql_file(path) for name, path in dataset.publish.items()}
    summary = sa.select(
        sa.func.count().label("row_count"),
    ).where(core.c[PERIOD_COLUMN] == sa.bindparam("period"))
    return dict(zip(mart_names(dataset), [summary]))


def publish_period(ctx: Context, dataset_name: str, period: str) -> list[LoadResult]:
    config, engine = ctx.config, ctx.engine
    with derived_period(ctx, Step.PUBLISH, dataset_name, period) as (dataset, period):
        with engine.connect() as conn:
            core = sa.Table(dataset.table, sa.MetaData(), schema="core", autoload_with=conn)
        types = known_types(config)
        return [
            rebuild_period(engine, source=core, target=("mart", name), statement=statement, period=period,
                           types=types, step=Step.PUBLISH, dataset=dataset.name)
            for name, statement in mart_statements(ctx, dataset, core).items()
        ]


def publish(dataset_name: str, period: str, *, settings: Settings | None = None, config: Config | None = None,
            engine: Engine | None = None) -> list[LoadResult]:
    """:func:`publish_period` for a caller holding the parts of a context, or none."""
    return publish_period(Context(settings, config, engine), dataset_name, period)

"""Stage 5 — publish: rebuild one period of the dataset's ``mart`` tables from
``core``. Without ``publish`` in the config a dataset gets
``mart.<table>_summary``: one row per period with its row count."""
from __future__ import annotations

import sys
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline import db
from pipeline.config import Config, DatasetConfig
from pipeline.context import Context
from pipeline.replace_period import LoadResult, failures_logged, rebuild_period, require_loaded
from pipeline.settings import Settings
from pipeline.utils import cli
from pipeline.utils.parsing import parse_cli_period
from pipeline.utils.sql import known_types, read_sql_file


def mart_names(dataset: DatasetConfig) -> list[str]:
    """The mart tables publish rebuilds: the config's, else ``<table>_summary``."""
    return list(dataset.publish) if dataset.publish else [f"{dataset.table}_summary"]


def mart_statements(dataset: DatasetConfig, core: sa.Table) -> dict[str, sa.Executable]:
    if dataset.publish:
        return {name: read_sql_file(path) for name, path in dataset.publish.items()}
    summary = sa.select(
        sa.func.count().label("row_count"),
    ).where(core.c[db.PERIOD_COLUMN] == sa.bindparam("period"))
    return dict(zip(mart_names(dataset), [summary]))


def publish(
    dataset_name: str,
    period: str,
    *,
    settings: Settings | None = None,
    config: Config | None = None,
    engine: Engine | None = None,
) -> list[LoadResult]:
    ctx = Context(settings, config, engine)
    config, dataset = ctx.config, ctx.config.dataset(dataset_name)
    period = parse_cli_period(period)
    engine = ctx.engine
    source = f"core.{dataset.table}"
    with failures_logged(engine, step="publish", dataset=dataset.name, period=period, source=source):
        require_loaded(engine, "transform", dataset.name, period,
                       f"python -m pipeline.transform --dataset {dataset.name} --period {period}")
        with engine.connect() as conn:
            core = sa.Table(dataset.table, sa.MetaData(), schema="core", autoload_with=conn)
        types = known_types(config)
        return [
            rebuild_period(engine, source=core, target=("mart", name), statement=statement, period=period,
                           types=types, step="publish", dataset=dataset.name)
            for name, statement in mart_statements(dataset, core).items()
        ]


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("python -m pipeline.publish", "Rebuild one period of the dataset's mart tables from core.")
    p.add_argument("--period", required=True, help="YYYY-MM")
    p.add_argument("--dataset", required=True)

    def action(args) -> int:  # type: ignore[no-untyped-def]
        for r in publish(args.dataset, args.period):
            print(f"{r.table} period {r.period}: {r.rows_deleted} rows deleted, {r.rows_inserted} inserted")
        return 0

    return cli.run(p, argv, action)


if __name__ == "__main__":
    sys.exit(main())

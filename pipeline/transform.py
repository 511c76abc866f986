"""Stage 4 — transform: rebuild one period of ``core.<table>`` from
``stage.<table>``, with the dataset's transform SQL (or a mirror of the stage
period when it has none)."""
from __future__ import annotations

import sys
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline import db
from pipeline.config import Config
from pipeline.context import Context
from pipeline.replace_period import (
    LoadResult,
    ensure_table_once,
    failures_logged,
    rebuild_period,
    require_loaded,
)
from pipeline.settings import Settings
from pipeline.utils import cli
from pipeline.utils.parsing import parse_cli_period
from pipeline.utils.sql import known_types, read_sql_file


def transform(
    dataset_name: str,
    period: str,
    *,
    settings: Settings | None = None,
    config: Config | None = None,
    engine: Engine | None = None,
) -> LoadResult:
    ctx = Context(settings, config, engine)
    config, dataset = ctx.config, ctx.config.dataset(dataset_name)
    period = parse_cli_period(period)
    engine = ctx.engine
    source = f"stage.{dataset.table}"
    with failures_logged(engine, step="transform", dataset=dataset.name, period=period, source=source):
        require_loaded(engine, "load_stage", dataset.name, period,
                       f"python -m pipeline reload --dataset {dataset.name} --period {period}")
        # A transform may join other datasets' stage tables (benefit payments
        # join citizens); make sure each exists, if empty, so the SQL always runs.
        for other in config.datasets.values():
            ensure_table_once(engine, db.stage_table(other))
        stage = db.stage_table(dataset)
        if dataset.transform is not None:
            statement: sa.Executable = read_sql_file(dataset.transform)
        else:
            statement = sa.select(stage).where(stage.c[db.PERIOD_COLUMN] == sa.bindparam("period"))
        return rebuild_period(engine, source=stage, target=("core", dataset.table), statement=statement,
                              period=period, types=known_types(config), step="transform",
                              dataset=dataset.name, key=dataset.primary_key)


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("python -m pipeline.transform", "Rebuild one period of core.<table> from stage.")
    p.add_argument("--period", required=True, help="YYYY-MM")
    p.add_argument("--dataset", required=True)

    def action(args) -> int:  # type: ignore[no-untyped-def]
        r = transform(args.dataset, args.period)
        print(f"{r.table} period {r.period}: {r.rows_deleted} rows deleted, {r.rows_inserted} inserted")
        return 0

    return cli.run(p, argv, action)


if __name__ == "__main__":
    sys.exit(main())

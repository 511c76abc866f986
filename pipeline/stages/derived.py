"""What transform and publish share: one period of a table derived from the
layer below, refused (and logged) when that period was never built there."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pipeline.context import Context
from pipeline.domain.config import DatasetConfig
from pipeline.domain.period import parse_cli_period
from pipeline.warehouse.replace import failures_logged, require_loaded
from pipeline.warehouse.runlog import Step

# step → (the layer it reads, the step that must have built it, how to build it)
SOURCES = {
    Step.TRANSFORM: ("stage", Step.LOAD_STAGE, "python -m pipeline reload --dataset {d} --period {p}"),
    Step.PUBLISH: ("core", Step.TRANSFORM, "python -m pipeline.transform --dataset {d} --period {p}"),
}


@contextlib.contextmanager
def derived_period(ctx: Context, step: Step, dataset_name: str, period: str) -> Iterator[tuple[DatasetConfig, str]]:
    """The dataset and the checked period; a failure inside is logged as ``step``."""
    dataset = ctx.config.dataset(dataset_name)
    period = parse_cli_period(period)
    layer, needs, hint = SOURCES[step]
    with failures_logged(ctx.engine, step=step, dataset=dataset.name, period=period,
                         source=f"{layer}.{dataset.table}"):
        require_loaded(ctx.engine, needs, dataset.name, period, hint.format(d=dataset.name, p=period))
        yield dataset, period

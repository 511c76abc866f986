"""Preview, correct, roll back: a reload is never a blind overwrite.

- ``preview``: what reloading a month from ``landed/`` would change, computed
  from the landed file (checked and typed in memory, nothing logged or
  written) against the rows the month serves, by primary key.
- ``reload_with_reason``: a reload recorded in ``meta.corrections`` with who,
  why and what it changed.
- Versions: every load_stage keeps the rows it served as
  ``data/stage/history/<dataset>/<period>/<load_id>.parquet`` (the newest
  ``WORKBENCH_KEEP_VERSIONS``, default 3). A file per version works the same on
  both warehouses and costs a hard link when the file system allows.
- ``rollback``: serve an earlier version again through the same period-replace
  protocol (atomic, locked, logged as step ``rollback``), then rebuild core,
  mart and the dependents for that month.
"""
from __future__ import annotations

import getpass
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from pipeline.context import Context
from pipeline.domain.config import DatasetConfig
from pipeline.domain.diff import MonthDiff, diff_month
from pipeline.domain.files import parse_and_validate_filename
from pipeline.domain.period import PERIOD_COLUMN, parse_cli_period
from pipeline.domain.schema import arrow_schema
from pipeline.domain.validation import check_frame, decide, empty_file_error
from pipeline.errors import FileRefused, StepFailed
from pipeline.io.landed import read_table
from pipeline.io.parquet import open_parquet, parquet_batches, version_path
from pipeline.orchestrate import PeriodOutcome, dependents, landed_file_for, reload_period
from pipeline.stages.publish import mart_names, publish_period
from pipeline.stages.transform import transform_period
from pipeline.warehouse import runlog
from pipeline.warehouse.replace import replace_period
from pipeline.warehouse.runlog import Step
from pipeline.warehouse.tables import stage_table, table_exists


@dataclass(frozen=True)
class Preview:
    dataset: str
    period: str
    file_name: str
    diff: MonthDiff
    downstream: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "period": self.period, "file_name": self.file_name,
                **self.diff.as_dict(), "downstream": self.downstream}


@dataclass(frozen=True)
class Version:
    load_id: int
    file: str | None
    sha256: str | None
    rows: int
    loaded_at: Any
    served: bool
    kept: bool  # its rows are still in the history folder (rollback possible)


# --------------------------------------------------------------------------
# Preview
# --------------------------------------------------------------------------
def preview(ctx: Context, dataset_name: str, period: str) -> Preview:
    """The difference a reload would make; changes nothing."""
    dataset = ctx.config.dataset(dataset_name)
    period = parse_cli_period(period)
    path = landed_file_for(ctx, dataset.name, period)
    after = _landed_rows(ctx, dataset, path, period)
    before = served_rows(ctx, dataset, period)
    return Preview(dataset.name, period, path.name, diff_month(before, after, dataset.primary_key),
                   downstream_tables(ctx, dataset, period))


def _landed_rows(ctx: Context, dataset: DatasetConfig, path: Path, period: str) -> pd.DataFrame:
    """The rows validate would write for the landed file, or FileRefused."""
    parse_and_validate_filename(path.name, ctx.config.datasets)
    raw, _reader = read_table(path, dataset)
    if raw.empty:
        raise FileRefused(empty_file_error(path.name))
    typed, failures = check_frame(raw, dataset, period)
    decision = decide(typed, failures, dataset, path.name, 0)
    if decision.rows is None:
        # Nothing was logged, so there is no validation to point at.
        error = re.sub(r" \(see meta\.validation_errors, validation 0\)$", "", decision.error or "")
        raise FileRefused(f"the reload would be refused: {error}")
    table = pa.Table.from_pandas(decision.rows[list(dataset.columns)], schema=arrow_schema(dataset),
                                 preserve_index=False)
    return table.to_pandas()


def served_rows(ctx: Context, dataset: DatasetConfig, period: str) -> pd.DataFrame:
    """The rows ``stage`` serves for the month, typed like the Parquet files.

    Read from the served version's kept Parquet when there is one (it holds
    exactly what was loaded), else from the table."""
    schema = arrow_schema(dataset)
    served = served_load_id(ctx, dataset.name, period)
    if served is not None:
        kept = version_path(ctx.settings, dataset.name, period, served)
        if kept.is_file():
            return open_parquet(kept, dataset, period).read(columns=schema.names).cast(schema).to_pandas()
    table = stage_table(dataset)
    with ctx.engine.connect() as conn:
        if not table_exists(conn, "stage", table.name):
            return schema.empty_table().to_pandas()
        rows = conn.execute(sa.select(*(table.c[n] for n in schema.names))
                            .where(table.c[PERIOD_COLUMN] == period)).all()
    nullable = pa.schema([f.with_nullable(True) for f in schema])
    return pa.Table.from_pylist([dict(r._mapping) for r in rows], schema=nullable).to_pandas()


def downstream_tables(ctx: Context, dataset: DatasetConfig, period: str) -> list[str]:
    """The tables a reload of the month rebuilds after stage."""
    names = [f"core.{dataset.table}", *(f"mart.{m}" for m in mart_names(dataset))]
    for other in dependents(ctx, dataset.name, period):
        ds = ctx.config.dataset(other)
        names += [f"core.{ds.table}", *(f"mart.{m}" for m in mart_names(ds))]
    return names


# --------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------
def served_load_id(ctx: Context, dataset: str, period: str) -> int | None:
    """The load_stage whose rows the month serves (a rollback serves an earlier one)."""
    loads = runlog.stage_loads(ctx.engine, dataset, period)
    if not loads:
        return None
    newest = loads[0]
    if newest.step == Step.ROLLBACK:
        match = re.search(r"(\d+)\.parquet$", newest.source or "")
        return int(match.group(1)) if match else None
    return int(newest.id)


def history(ctx: Context, dataset_name: str, period: str) -> list[Version]:
    """Every load of the month, newest first; one of them is served."""
    dataset = ctx.config.dataset(dataset_name)
    period = parse_cli_period(period)
    served = served_load_id(ctx, dataset.name, period)
    names = runlog.landed_names(ctx.engine, dataset.name, period)
    return [
        Version(load_id=r.id, file=names.get(r.file_sha256) or (Path(r.source).name if r.source else None),
                sha256=r.file_sha256,
                rows=r.rows_inserted, loaded_at=r.finished_at, served=r.id == served,
                kept=version_path(ctx.settings, dataset.name, period, r.id).is_file())
        for r in runlog.stage_loads(ctx.engine, dataset.name, period) if r.step == Step.LOAD_STAGE
    ]


# --------------------------------------------------------------------------
# Corrections: reload with a reason, roll back
# --------------------------------------------------------------------------
def actor_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def reload_with_reason(ctx: Context, dataset: str, period: str, reason: str, *, actor: str | None = None,
                       via_notebooks: bool = False) -> PeriodOutcome:
    """A reload recorded in ``meta.corrections`` when it succeeds.

    The change is measured between the kept versions before and after (both
    Parquet reads), not by validating the landed file a second time as a
    preview would."""
    config = ctx.config.dataset(dataset)
    before = served_rows(ctx, config, period)
    outcome = reload_period(dataset, period, settings=ctx.settings, config=ctx.config, engine=ctx.engine,
                            via_notebooks=via_notebooks)
    if outcome.status == "succeeded":
        change = diff_month(before, served_rows(ctx, config, period), config.primary_key)
        _record(ctx, dataset, period, "reload", reason, actor, served_load_id(ctx, dataset, period), change)
    return outcome


def rollback(ctx: Context, dataset_name: str, period: str, *, to: int | None = None,
             reason: str = "rollback", actor: str | None = None) -> tuple[Version, MonthDiff]:
    """Serve an earlier version of the month again and rebuild what depends on it."""
    dataset = ctx.config.dataset(dataset_name)
    period = parse_cli_period(period)
    target = _rollback_target(history(ctx, dataset.name, period), to, dataset.name, period)
    path = version_path(ctx.settings, dataset.name, period, target.load_id)
    parquet = open_parquet(path, dataset, period)
    before = served_rows(ctx, dataset, period)
    change = diff_month(before, parquet.read().cast(arrow_schema(dataset)).to_pandas(), dataset.primary_key)
    result = replace_period(ctx.engine, stage_table(dataset), period,
                            parquet_batches(parquet, arrow_schema(dataset)), step=Step.ROLLBACK,
                            dataset=dataset.name, source=str(path), file_sha256=target.sha256)
    for name in (dataset.name, *dependents(ctx, dataset.name, period)):
        transform_period(ctx, name, period)
        publish_period(ctx, name, period)
    _record(ctx, dataset.name, period, "rollback", reason, actor, result.load_id, change)
    return target, change


def _rollback_target(versions: list[Version], to: int | None, dataset: str, period: str) -> Version:
    served = next((v for v in versions if v.served), None)
    if to is not None:
        chosen = next((v for v in versions if v.load_id == to), None)
        if chosen is None:
            raise StepFailed(f"{dataset} {period} has no version from load {to} "
                             f"(see: python -m pipeline history --dataset {dataset} --period {period})")
    else:
        older = [v for v in versions if served is None or v.load_id < served.load_id]
        if not older:
            raise StepFailed(f"{dataset} {period} has no earlier version to roll back to; nothing changed")
        chosen = older[0]
    if chosen.served:
        raise StepFailed(f"{dataset} {period} already serves load {chosen.load_id}; nothing changed")
    if not chosen.kept:
        raise StepFailed(f"{dataset} {period}: the rows of load {chosen.load_id} are no longer kept "
                         "(WORKBENCH_KEEP_VERSIONS); nothing changed")
    return chosen


def _record(ctx: Context, dataset: str, period: str, kind: str, reason: str, actor: str | None,
            load_id: int | None, change: MonthDiff | None) -> int:
    counts = change.as_dict() if change is not None else {}
    return runlog.log_correction(
        ctx.engine, dataset=dataset, period=period, kind=kind, reason=reason, actor=actor or actor_name(),
        load_id=load_id, **{k: counts.get(k) for k in ("rows_before", "rows_after", "added", "removed", "changed")},
    )

"""The stages as a monthly-partitioned Dagster asset graph (SPEC §10.6).

``dagster dev -m pipeline.orchestration.dagster`` shows one partition per
month and dataset; ``dagster asset materialize -m pipeline.orchestration.dagster
--select 'citizens/stage' --partition 2025-06`` loads one month.

Per dataset of ``datasets_config.yml``:

- ``<dataset>/stage``: ingest → validate → load_stage of the month's landed
  file, with two blocking asset checks (``file_accepted`` from ingest,
  ``rows_valid`` from validation). A refused file fails its check and the
  run before anything is loaded;
- ``<dataset>/core``: transform of the month (depends on its stage and on the
  stage of every dataset its transform reads);
- ``<dataset>/mart``: publish of the month.

Every materialisation calls the same stage functions as the CLI, the
notebooks and the dashboard, so the per-month locks and the ``meta`` logs are
the product's own: a Dagster run, a CLI reload and the dashboard may act on
the same month at the same time, and the dashboard shows Dagster's loads like
any other. Dagster adds scheduling, parallel runs (one per month) and its UI.

The partitions are read from ``landed/`` when the definitions load: a
dataset's months start at its first landed file (else twelve months back) and
end at the last complete month, or later when files for the current or a
future month are there. A file for a month outside that range needs the code
location reloaded (the sensor says so).
"""
# No `from __future__ import annotations`: Dagster reads the context and
# resource parameters' annotations as real types.
import datetime as dt
import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg

from pipeline.context import Context
from pipeline.domain.config import Config, DatasetConfig
from pipeline.domain.period import Period
from pipeline.errors import WorkbenchError
from pipeline.orchestrate import Delivery, already_done, dependents, landed_deliveries
from pipeline.settings import Settings, get_settings
from pipeline.stages.ingest import ingest
from pipeline.stages.load_stage import load
from pipeline.stages.publish import publish_period
from pipeline.stages.transform import transform_period
from pipeline.stages.validate import ValidationResult, validate
from pipeline.warehouse.runlog import IngestStatus, ValidationStatus

# Months of partitions a dataset with no landed file yet starts with.
DEFAULT_HISTORY_MONTHS = 12
SENSOR_NAME = "landed_files"
LAYERS = ("stage", "core", "mart")


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse, landed files and config: the ``WORKBENCH_*`` settings,
    read when a run or sensor tick starts; any field set here wins."""

    db_url: str | None = None
    data_dir: str | None = None
    config_path: str | None = None

    def settings(self) -> Settings:
        base = get_settings()
        return Settings(
            data_dir=Path(self.data_dir).absolute() if self.data_dir else base.data_dir,
            config_path=Path(self.config_path).absolute() if self.config_path else base.config_path,
            db_url=self.db_url or base.db_url,
        )

    def context(self) -> Context:
        return Context(self.settings())


# --------------------------------------------------------------------------
# Partitions and dependencies, from the config and landed/
# --------------------------------------------------------------------------
def landed_periods(ctx: Context) -> dict[str, list[str]]:
    """The months with a landed file, per dataset, ascending."""
    out: dict[str, set[str]] = {name: set() for name in ctx.config.datasets}
    for delivery in landed_deliveries(ctx):
        if delivery.parsed is not None:
            out[delivery.parsed.dataset].add(delivery.parsed.period)
    return {name: sorted(periods) for name, periods in out.items()}


def _months_from(first: Period, last: Period) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


def partitions_for(dataset: DatasetConfig, periods: list[str], today: dt.date) -> dg.MonthlyPartitionsDefinition:
    """Months from the configured start (a ``first_period`` the config may
    carry), else the first landed month, else a year back; to the last
    complete month, extended so every landed month (the current one, even a
    future one) has its partition."""
    current = Period(today.year, today.month)
    start = getattr(dataset, "first_period", None) or (periods[0] if periods else None)
    if start is None:
        back = current.year * 12 + current.month - 1 - DEFAULT_HISTORY_MONTHS
        start = str(Period(back // 12, back % 12 + 1))
    end_offset = max(0, _months_from(current, Period.of(periods[-1])) + 1) if periods else 0
    return dg.MonthlyPartitionsDefinition(start_date=start, fmt="%Y-%m", end_offset=end_offset)


def upstream_datasets(config: Config, dataset: DatasetConfig) -> list[str]:
    """The other datasets whose stage table the dataset's transform reads:
    its ``depends_on`` when the config has that key, else the same text
    search as ``orchestrate.dependents`` (``stage.<table>`` in the SQL)."""
    declared = getattr(dataset, "depends_on", None)
    if declared is not None:
        return [name for name in declared if name != dataset.name]
    if dataset.transform is None:
        return []
    sql = dataset.transform.read_text(encoding="utf-8")
    return [other.name for other in config.datasets.values()
            if other.name != dataset.name and f"stage.{other.table}" in sql]


def asset_key(dataset: str, layer: str) -> dg.AssetKey:
    return dg.AssetKey([dataset, layer])


# --------------------------------------------------------------------------
# What a materialisation does: the product's stage functions
# --------------------------------------------------------------------------
@contextmanager
def _as_failure() -> Iterator[None]:
    """A refused file or failed step as a Dagster failure with the product's
    one-line message (already logged in meta by the stage)."""
    try:
        yield
    except WorkbenchError as exc:
        raise dg.Failure(description=str(exc)) from None


def landed_file(ctx: Context, dataset: str, period: str) -> Path:
    """The month's landed file; of two deliveries (.csv and .xlsx) the newest,
    as ``reload`` picks."""
    candidates = [d.path for d in landed_deliveries(ctx)
                  if d.parsed is not None and (d.parsed.dataset, d.parsed.period) == (dataset, period)]
    if not candidates:
        raise dg.Failure(description=f"no file for dataset {dataset!r} and period {period} "
                                     f"in {ctx.settings.landed_dir}")
    return max(candidates, key=lambda p: p.stat().st_mtime)


def _validation_metadata(result: ValidationResult, dataset: DatasetConfig) -> dict[str, Any]:
    total, valid, invalid = result.rows_total, result.rows_valid, result.rows_invalid
    passed = result.status == ValidationStatus.PASSED
    dropped = (total - valid) if passed and total is not None and valid is not None else 0
    return {"validation_id": result.validation_id, "rows_total": total, "rows_valid": valid,
            "rows_invalid": invalid, "rows_dropped": dropped, "on_invalid_rows": dataset.on_invalid_rows,
            "error": result.error}


def materialise_stage(ctx: Context, dataset_name: str, period: str) -> Iterator[Any]:
    """ingest → validate → load_stage of the month's file: the checks' results,
    then the materialisation; a refused file raises after its failed check."""
    dataset = ctx.config.dataset(dataset_name)
    key = asset_key(dataset_name, "stage")
    path = landed_file(ctx, dataset_name, period)
    with _as_failure():
        ingested = ingest(ctx, path)
    accepted = ingested.status == IngestStatus.ACCEPTED
    file_meta = {"file": ingested.file_name, "file_sha256": ingested.file_sha256,
                 "ingestion_id": ingested.ingestion_id}
    yield dg.AssetCheckResult(asset_key=key, check_name="file_accepted", passed=accepted,
                              metadata={**file_meta, "error": ingested.error})
    if not accepted:
        raise dg.Failure(description=ingested.error or f"{path.name}: rejected at ingest", metadata=file_meta)
    with _as_failure():
        validated = validate(ctx, ingested.ingestion_id)
    checked = _validation_metadata(validated, dataset)
    passed = validated.status == ValidationStatus.PASSED and validated.parquet_path is not None
    yield dg.AssetCheckResult(asset_key=key, check_name="rows_valid", passed=passed, metadata=checked)
    if not passed:
        raise dg.Failure(description=validated.error or f"{path.name}: validation failed",
                         metadata={**file_meta, **checked})
    assert validated.parquet_path is not None
    with _as_failure():
        loaded = load(ctx, validated.parquet_path, period, dataset_name)
    yield dg.MaterializeResult(asset_key=key, metadata={
        **file_meta, **checked, "table": loaded.table, "load_id": loaded.load_id,
        "rows_deleted": loaded.rows_deleted, "rows_inserted": loaded.rows_inserted,
        "dagster/row_count": loaded.rows_inserted, "parquet": str(validated.parquet_path),
    })


def materialise_core(ctx: Context, dataset_name: str, period: str) -> dg.MaterializeResult:
    with _as_failure():
        result = transform_period(ctx, dataset_name, period)
    return dg.MaterializeResult(metadata={
        "table": result.table, "load_id": result.load_id, "rows_deleted": result.rows_deleted,
        "rows_inserted": result.rows_inserted, "dagster/row_count": result.rows_inserted,
    })


def materialise_mart(ctx: Context, dataset_name: str, period: str) -> dg.MaterializeResult:
    with _as_failure():
        results = publish_period(ctx, dataset_name, period)
    metadata: dict[str, Any] = {"tables": ", ".join(r.table for r in results)}
    for result in results:
        metadata[f"{result.table} rows"] = result.rows_inserted
    return dg.MaterializeResult(metadata=metadata)


# --------------------------------------------------------------------------
# The asset graph
# --------------------------------------------------------------------------
def stage_asset(dataset: DatasetConfig, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    key = asset_key(dataset.name, "stage")
    checks = [
        dg.AssetCheckSpec("file_accepted", asset=key, blocking=True,
                          description="The file's name and header row match the config (ingest)."),
        dg.AssetCheckSpec("rows_valid", asset=key, blocking=True,
                          description="Every row passes the dataset's types and checks, or invalid rows "
                                      "were dropped as the config allows (validate)."),
    ]

    @dg.asset(key=key, partitions_def=partitions, check_specs=checks, group_name=dataset.name, kinds={"python"},
              description=f"stage.{dataset.table}: the month's landed file, validated and loaded. "
                          f"{dataset.description}".strip())
    def _stage(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[Any]:
        yield from materialise_stage(warehouse.context(), dataset.name, context.partition_key)

    return _stage


def _deps(config: Config, dataset: DatasetConfig) -> list[dg.AssetDep]:
    # Another dataset's months may start later: its missing month is no error
    # here (the transform joins what is there, as the CLI does).
    with warnings.catch_warnings():  # the option is marked beta; it is what we mean
        warnings.simplefilter("ignore", dg.BetaWarning)
        others = dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)
    return [dg.AssetDep(asset_key(dataset.name, "stage"))] + [
        dg.AssetDep(asset_key(name, "stage"), partition_mapping=others)
        for name in upstream_datasets(config, dataset)
    ]


def core_and_mart_assets(config: Config, dataset: DatasetConfig,
                         partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    name = dataset.name

    @dg.asset(key=asset_key(name, "core"), deps=_deps(config, dataset), partitions_def=partitions,
              group_name=name, kinds={"sql"}, description=f"core.{dataset.table}: the month transformed.")
    def _core(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        return materialise_core(warehouse.context(), name, context.partition_key)

    @dg.asset(key=asset_key(name, "mart"), deps=[asset_key(name, "core")], partitions_def=partitions,
              group_name=name, kinds={"sql"}, description="The month's mart tables, published from core.")
    def _mart(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        return materialise_mart(warehouse.context(), name, context.partition_key)

    return [_core, _mart]


def month_job_name(dataset: str) -> str:
    return f"{dataset}_month"


# --------------------------------------------------------------------------
# The sensor on landed/
# --------------------------------------------------------------------------
def _fingerprint(delivery: Delivery, seen: dict[str, list[Any]]) -> list[Any]:
    """[size, mtime_ns, sha256]; the file is hashed again only when its size
    or modification time moved, so a tick over many big files stays cheap."""
    stat = delivery.path.stat()
    prior = seen.get(delivery.path.name)
    if prior is not None and prior[:2] == [stat.st_size, stat.st_mtime_ns]:
        return prior
    from pipeline.io.landed import file_sha256

    return [stat.st_size, stat.st_mtime_ns, file_sha256(delivery.path)]


def run_selection(ctx: Context, dataset: str, period: str) -> list[dg.AssetKey]:
    """What ``run`` does for a file, as assets: the dataset's stage, core and
    mart, then core and mart of the loaded datasets whose transform reads it
    (their month is stale after this load)."""
    keys = [asset_key(dataset, layer) for layer in LAYERS]
    for other in dependents(ctx, dataset, period):
        keys += [asset_key(other, "core"), asset_key(other, "mart")]
    return keys


def landed_run_requests(ctx: Context, cursor: str | None, partition_keys: dict[str, set[str]],
                        warn: Callable[[str], None]) -> tuple[list[dg.RunRequest], str]:
    """A run of :func:`run_selection` for every landed file that is new or
    changed since the last tick and not already loaded (or refused) with this
    content according to the meta logs; the new cursor."""
    seen: dict[str, list[Any]] = json.loads(cursor) if cursor else {}
    now: dict[str, list[Any]] = {}
    requests = []
    for delivery in landed_deliveries(ctx):
        parsed = delivery.parsed
        if parsed is None:
            continue
        if parsed.period not in partition_keys.get(parsed.dataset, set()):
            warn(f"{delivery.path.name}: month {parsed.period} is outside the {parsed.dataset} partitions; "
                 f"reload the code location to pick it up")
            continue
        fingerprint = now[delivery.path.name] = _fingerprint(delivery, seen)
        prior = seen.get(delivery.path.name)
        sha = fingerprint[2]
        if (prior is not None and prior[2] == sha) or already_done(ctx, delivery, sha):
            continue
        requests.append(dg.RunRequest(
            run_key=f"{parsed.dataset}|{parsed.period}|{sha}", partition_key=parsed.period,
            asset_selection=run_selection(ctx, parsed.dataset, parsed.period),
            tags={"workbench/file": delivery.path.name},
        ))
    return requests, json.dumps(now, sort_keys=True)


def landed_sensor(partitions: dict[str, dg.PartitionsDefinition]) -> dg.SensorDefinition:
    @dg.sensor(name=SENSOR_NAME, target=dg.AssetSelection.all(), minimum_interval_seconds=60,
               description="Requests a run of the month for every new or changed file in landed/.")
    def _landed(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SensorResult:
        keys = {name: set(p.get_partition_keys()) for name, p in partitions.items()}
        requests, cursor = landed_run_requests(warehouse.context(), context.cursor, keys, context.log.warning)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return _landed


# --------------------------------------------------------------------------
# Definitions
# --------------------------------------------------------------------------
def build_defs(settings: Settings | None = None, *, today: dt.date | None = None) -> dg.Definitions:
    """The definitions for ``settings`` (default: the ``WORKBENCH_*`` environment)."""
    ctx = Context(settings)  # config and landed/ only: the warehouse is not touched here
    today = today or dt.datetime.now(dt.UTC).date()
    periods = landed_periods(ctx)
    assets: list[dg.AssetsDefinition] = []
    jobs = []
    partitions: dict[str, dg.PartitionsDefinition] = {}
    for dataset in ctx.config.datasets.values():
        partitions[dataset.name] = partitions_for(dataset, periods[dataset.name], today)
        layers = [stage_asset(dataset, partitions[dataset.name]),
                  *core_and_mart_assets(ctx.config, dataset, partitions[dataset.name])]
        assets += layers
        jobs.append(dg.define_asset_job(
            month_job_name(dataset.name), selection=dg.AssetSelection.assets(*layers),
            description=f"One month of {dataset.name}: stage, core and mart.",
        ))
    resource = WarehouseResource() if settings is None else WarehouseResource(
        db_url=settings.db_url, data_dir=str(settings.data_dir), config_path=str(settings.config_path))
    return dg.Definitions(assets=assets, jobs=jobs, sensors=[landed_sensor(partitions)],
                          resources={"warehouse": resource})


# Dagster loads the one Definitions object at module scope. DAGSTER_HOME is
# Dagster's own business; the warehouse comes from the WORKBENCH_* settings.
defs = build_defs()

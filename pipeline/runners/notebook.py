"""Run each stage as its papermill notebook (``python -m pipeline run
--via-notebooks`` and ``reload --via-notebooks``). What the notebooks
themselves import is ``pipeline.notebook_helpers``.

Where the executed notebooks go
-------------------------------
Each stage of a file writes ``<runs>/<dataset>/<period>/<NN_stage>.ipynb``
(``<runs>`` is ``settings.runs_dir``, ``data/runs/`` by default), e.g.
``data/runs/citizens/2025-06/03_load_stage.ipynb``. A file whose name matches
no dataset (so it has no dataset or period) goes to
``<runs>/_rejected/<file name>/01_ingest.ipynb``.

A run of a period is the stages the runner executes for it one after the
other, in stage order: usually ingest → publish; validate → publish when
``reload`` reuses the ingestion of an unchanged file; transform → publish when
a reload of citizens refreshes the payments of that month. When a new run of
a period starts, the notebooks of its previous run are moved, untouched, to
``<runs>/<dataset>/<period>/previous/<UTC timestamp>/``, the timestamp being
when that previous run wrote its first notebook (``20250701T093000Z``). So the
folder itself always holds exactly one run — the latest — and nothing is
overwritten. Every previous run is kept: an executed notebook is tens of
kilobytes and the history is the audit trail of what was loaded when; delete
old ``previous/`` folders whenever you like, nothing reads them.

How results come back
---------------------
The notebooks call the package's stages (``pipeline.stages``), which logs every outcome in the
``meta`` tables. The runner reads the result back from there: for ingest the
newest ``meta.ingestion_log`` row of that file written during the notebook,
for validate the newest ``meta.validation_log`` row of that ingestion id. No
output is parsed out of the notebook except on failure.

A failed stage makes its notebook raise the package's error; papermill then
fails with that error's class name and one-line message, which the runner
raises again as the same :class:`~pipeline.errors.WorkbenchError` subclass,
so ``run`` reports a failure with the same words with or without notebooks.
A refused ingest or a failed validation is not an exception of the package
(it returns a result with the error); there the runner returns the logged
result and ``process_file`` reports it, as with the direct runner.

The notebooks' kernel is ``python3``: ipykernel's own kernelspec, installed
into the virtual environment with ipykernel, whose ``python`` jupyter_client
replaces by the running interpreter. :func:`check_kernel` refuses a
``python3`` that points at another interpreter (a hand-installed user
kernelspec, say) instead of silently running the stages elsewhere.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import papermill as pm
import sqlalchemy as sa
import zmq
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_client.manager import AsyncKernelManager
from traitlets import Dict
from traitlets.config import Config as TraitletsConfig

from pipeline import errors
from pipeline.context import Context
from pipeline.domain.files import parse_and_validate_filename
from pipeline.errors import FileRefused, UsageError, WorkbenchError
from pipeline.runners.base import NOTEBOOKS_DIR, STAGE_NOTEBOOKS, STAGES
from pipeline.settings import Settings
from pipeline.stages.ingest import IngestResult
from pipeline.stages.validate import ValidationResult
from pipeline.warehouse import runlog

KERNEL_NAME = "python3"
REJECTED_DIR = "_rejected"
PREVIOUS_DIR = "previous"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"

class NotebookFailed(WorkbenchError):
    """A stage notebook failed with an error that is not the package's own."""


def check_kernel(kernel_name: str = KERNEL_NAME) -> None:
    """Refuse a kernelspec that would not run this interpreter."""
    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise UsageError(f"no Jupyter kernel {kernel_name!r}; reinstall the environment "
                         f"(pip install -e .) or run: {sys.executable} -m ipykernel install --sys-prefix") from None
    program = spec.argv[0] if spec.argv else ""
    # jupyter_client starts 'python'/'python3' as sys.executable itself.
    if program in {"python", "python3", f"python{sys.version_info[0]}"}:
        return
    # Same bin folder = same environment (resolving the interpreter itself
    # would equate every venv built from one system Python).
    if Path(program).parent.resolve() != Path(sys.executable).parent.resolve():
        raise UsageError(f"Jupyter kernel {kernel_name!r} ({spec.resource_dir}) runs {program}, "
                         f"not this interpreter {sys.executable}; remove that kernelspec or run: "
                         f"{sys.executable} -m ipykernel install --sys-prefix")


class StageKernelManager(AsyncKernelManager):
    """The kernel manager of the stage notebooks: the run's settings go into
    the kernel's environment (papermill has no per-notebook environment, and
    changing ``os.environ`` would leak into other threads), and the kernel
    process's own stdout/stderr — ipykernel's log lines, not the notebook's
    output, which travels over ZeroMQ into the executed notebook — are
    discarded so ``run`` prints only its own lines."""

    workbench_env = Dict(config=True, help="variables set in the kernel's environment")

    async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
        kw["env"] = {**os.environ, **kw.get("env", {}), **self.workbench_env}
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        await super().start_kernel(**kw)


def kernel_options(settings: Settings | None = None) -> dict[str, Any]:
    """papermill keywords that start the kernel with ``settings`` (else the
    current environment) and CurveZMQ keys when pyzmq has them, so the local
    kernel traffic is encrypted."""
    options: dict[str, Any] = {}
    if settings is not None:
        options["workbench_env"] = {
            "WORKBENCH_DATA_DIR": str(settings.data_dir),
            "WORKBENCH_CONFIG": str(settings.config_path),
            "WORKBENCH_DB_URL": settings.db_url,
        }
    if zmq.has("curve"):
        options["transport_encryption"] = "auto"
    return {"kernel_manager_class": StageKernelManager,
            "config": TraitletsConfig({"StageKernelManager": options})}


def _error_classes() -> dict[str, type[WorkbenchError]]:
    found: dict[str, type[WorkbenchError]] = {}
    todo: list[type[WorkbenchError]] = [WorkbenchError]
    while todo:
        cls = todo.pop()
        if cls.__module__ == errors.__name__:
            found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def as_package_error(exc: Exception, notebook: Path) -> WorkbenchError:
    """The package error a failed notebook stands for, with its one-line message."""
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = str(getattr(exc, "evalue", exc)).strip()
    cls = _error_classes().get(ename)
    if cls is not None:
        return cls(evalue)
    first = evalue.splitlines()[0] if evalue else ""
    return NotebookFailed(f"unexpected {ename}: {first} (see {notebook})")


def _utc_stamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime(TIMESTAMP_FORMAT)


def retire_previous_run(folder: Path) -> Path | None:
    """Move the notebooks in ``folder`` to ``folder/previous/<UTC timestamp>/``."""
    notebooks = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
    if not notebooks:
        return None
    stamp = _utc_stamp(min(p.stat().st_mtime for p in notebooks))
    target = folder / PREVIOUS_DIR / stamp
    n = 1
    while target.exists():  # two runs within one second
        n += 1
        target = folder / PREVIOUS_DIR / f"{stamp}-{n}"
    target.mkdir(parents=True)
    for path in notebooks:
        shutil.move(str(path), target / path.name)
    return target


class NotebookRunner:
    """Each stage through its notebook in ``notebooks/``, kept under ``runs/``."""

    def __init__(self, notebooks_dir: Path | None = None, kernel_name: str = KERNEL_NAME) -> None:
        self.notebooks_dir = notebooks_dir or NOTEBOOKS_DIR
        self.kernel_name = kernel_name
        self._kernel_checked = False
        self._last: tuple[Path, int] | None = None  # folder and stage index of the last notebook

    def _start_stage(self, stage: str, folder: Path) -> None:
        """Retire the folder's previous run unless ``stage`` continues the run
        in progress there (same folder, a later stage)."""
        index = STAGES.index(stage)
        if self._last is None or self._last[0] != folder or index <= self._last[1]:
            retire_previous_run(folder)
        self._last = (folder, index)

    # -- running one notebook ------------------------------------------------
    def execute(self, stage: str, parameters: Mapping[str, Any], folder: Path, ctx: Context) -> Path:
        """Run ``stage``'s notebook with ``parameters`` into ``folder``; raise
        the package's error when it fails. Returns the executed notebook."""
        source = self.notebooks_dir / STAGE_NOTEBOOKS[stage]
        if not source.is_file():
            raise UsageError(f"stage notebook {source} is missing; "
                             "--via-notebooks needs the project's notebooks/ folder")
        if not self._kernel_checked:
            check_kernel(self.kernel_name)
            self._kernel_checked = True
        self._start_stage(stage, folder)
        folder.mkdir(parents=True, exist_ok=True)
        output = folder / STAGE_NOTEBOOKS[stage]
        try:
            # A dict keeps "2025-06" and paths as str (papermill's -p would
            # turn 202506 into an int).
            pm.execute_notebook(
                str(source), str(output), parameters=dict(parameters),
                kernel_name=self.kernel_name, progress_bar=False, log_output=False,
                **kernel_options(ctx.settings),
            )
        except pm.PapermillExecutionError as exc:
            raise as_package_error(exc, output) from None
        return output

    def _execute_logged(self, stage: str, parameters: dict[str, Any], folder: Path, ctx: Context,
                        log: sa.Table, match: Any) -> tuple[Any, WorkbenchError | None]:
        """Run a stage notebook that logs a row in ``log``; the newest matching
        row it wrote (or None) and the notebook's failure (or None)."""
        before = runlog.max_id(ctx.engine, log)
        failure: WorkbenchError | None = None
        try:
            self.execute(stage, parameters, folder, ctx)
        except WorkbenchError as exc:
            failure = exc
        return runlog.newest_since(ctx.engine, log, before, match), failure

    def _period_folder(self, ctx: Context, dataset: str, period: str) -> Path:
        return ctx.settings.runs_dir / dataset / period

    # -- the stages ----------------------------------------------------------
    def ingest(self, path: Path, ctx: Context) -> IngestResult:
        path = Path(path).absolute()
        try:
            parsed = parse_and_validate_filename(path.name, ctx.config.datasets)
            folder = self._period_folder(ctx, parsed.dataset, parsed.period)
        except FileRefused:
            folder = ctx.settings.runs_dir / REJECTED_DIR / path.name
        log = runlog.ingestion_log
        row, failure = self._execute_logged("ingest", {"file_path": str(path)}, folder, ctx,
                                            log, log.c.file_path == str(path.resolve()))
        # A rejected file is logged and its notebook fails on purpose: hand
        # back the logged result, as ingest_file does. Any other failure (a
        # usage error logs nothing; an accepted file whose notebook broke
        # afterwards) is raised.
        if row is None or (failure is not None and row.status != "rejected"):
            raise failure or NotebookFailed(f"01_ingest logged nothing for {path} (see {folder})")
        return IngestResult(
            ingestion_id=row.id, status=row.status, file_name=row.file_name, dataset=row.dataset,
            period=row.period, error=row.error, file_sha256=row.file_sha256,
        )

    def validate(self, ingestion_id: int, ctx: Context) -> ValidationResult:
        vl = runlog.validation_log
        ingested = runlog.ingestion_period(ctx.engine, ingestion_id)
        if ingested is not None:
            folder = self._period_folder(ctx, *ingested)
        else:  # validate itself reports the unknown id
            folder = ctx.settings.runs_dir / REJECTED_DIR / f"ingestion-{ingestion_id}"
        row, failure = self._execute_logged("validate", {"ingestion_id": int(ingestion_id)}, folder, ctx,
                                            vl, vl.c.ingestion_id == ingestion_id)
        if row is None or (failure is not None and row.status != "failed"):
            raise failure or NotebookFailed(f"02_validate logged nothing for ingestion {ingestion_id} (see {folder})")
        values = {**row._mapping, "validation_id": row.id,
                  "parquet_path": Path(row.parquet_path) if row.parquet_path else None}
        names = {f.name for f in dataclasses.fields(ValidationResult)}
        return ValidationResult(**{k: v for k, v in values.items() if k in names})

    def load_stage(self, parquet: Path, period: str, dataset: str, ctx: Context) -> None:
        self.execute("load_stage", {"parquet_path": str(Path(parquet).absolute()), "period": period,
                                    "dataset": dataset}, self._period_folder(ctx, dataset, period), ctx)

    def transform(self, dataset: str, period: str, ctx: Context) -> None:
        self.execute("transform", {"period": period, "dataset": dataset},
                     self._period_folder(ctx, dataset, period), ctx)

    def publish(self, dataset: str, period: str, ctx: Context) -> None:
        self.execute("publish", {"period": period, "dataset": dataset},
                     self._period_folder(ctx, dataset, period), ctx)

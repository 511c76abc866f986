"""How a stage is executed, one interface for every way (after kedro's
``runner/``): in-process calls (``direct``) or papermill notebooks
(``notebook``). ``orchestrate`` drives a runner through the stages in
:data:`STAGES` order; a Dagster asset graph calls the same stage functions."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pipeline.context import Context
from pipeline.stages.ingest import IngestResult
from pipeline.stages.validate import ValidationResult

# The stages in the order a file goes through them.
STAGES = ("ingest", "validate", "load_stage", "transform", "publish")
# The project's notebooks: one per stage (01_ingest.ipynb …) and the analysts' own.
NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
# 01_ingest.ipynb … 05_publish.ipynb
STAGE_NOTEBOOKS = {stage: f"{i:02d}_{stage}.ipynb" for i, stage in enumerate(STAGES, 1)}


class StageRunner(Protocol):
    def ingest(self, path: Path, ctx: Context) -> IngestResult: ...

    def validate(self, ingestion_id: int, ctx: Context) -> ValidationResult: ...

    def load_stage(self, parquet: Path, period: str, dataset: str, ctx: Context) -> None: ...

    def transform(self, dataset: str, period: str, ctx: Context) -> None: ...

    def publish(self, dataset: str, period: str, ctx: Context) -> None: ...

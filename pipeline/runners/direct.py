"""Every stage as an in-process call (the default runner)."""
from __future__ import annotations

from pathlib import Path

from pipeline.context import Context
from pipeline.stages.ingest import IngestResult, ingest
from pipeline.stages.load_stage import load
from pipeline.stages.publish import publish_period
from pipeline.stages.transform import transform_period
from pipeline.stages.validate import ValidationResult, validate


class DirectRunner:
    def ingest(self, path: Path, ctx: Context) -> IngestResult:
        return ingest(ctx, path)

    def validate(self, ingestion_id: int, ctx: Context) -> ValidationResult:
        return validate(ctx, ingestion_id)

    def load_stage(self, parquet: Path, period: str, dataset: str, ctx: Context) -> None:
        load(ctx, parquet, period, dataset)

    def transform(self, dataset: str, period: str, ctx: Context) -> None:
        transform_period(ctx, dataset, period)

    def publish(self, dataset: str, period: str, ctx: Context) -> None:
        publish_period(ctx, dataset, period)

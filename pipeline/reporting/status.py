"""Per dataset and period: what is in the warehouse and how its last ingest,
validation and load went (``python -m pipeline status``, the dashboard)."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Engine

from pipeline.domain.config import Config
from pipeline.reporting.text import format_table
from pipeline.warehouse.runlog import (
    IngestStatus,
    LoadStatus,
    Step,
    ValidationStatus,
    ingestion_log,
    latest_per_period,
    load_log,
    validation_log,
)
from pipeline.warehouse.tables import period_counts


def collect_status(engine: Engine, config: Config) -> list[dict[str, Any]]:
    """One dict per (dataset, period) seen in the stage tables or the logs."""
    out = []
    with engine.connect() as conn:
        ingests = latest_per_period(conn, ingestion_log)
        validations = latest_per_period(conn, validation_log)
        loads = latest_per_period(conn, load_log, load_log.c.step == Step.LOAD_STAGE)
        # A failed transform or publish after a good load still leaves the
        # period broken downstream: the newest step of any kind decides.
        last_steps = latest_per_period(conn, load_log)
        for name, dataset in config.datasets.items():
            stage = period_counts(conn, "stage", dataset.table)
            core = period_counts(conn, "core", dataset.table)
            periods = set(stage) | set(core) | {
                p for (d, p) in (*ingests, *validations, *loads) if d == name
            }
            for period in sorted(periods):
                ing, val, load = (ingests.get((name, period)), validations.get((name, period)),
                                  loads.get((name, period)))
                last = last_steps.get((name, period))
                if last is not None and last.status == LoadStatus.FAILED:
                    load = last
                errors = [r.error for r in (load, val, ing) if r is not None and r.error]
                out.append({
                    "dataset": name,
                    "period": period,
                    "stage_rows": stage.get(period),
                    "core_rows": core.get(period),
                    "ingestion_status": ing.status if ing else None,
                    "validation_status": val.status if val else None,
                    "load_status": load.status if load else None,
                    "last_step": last.step if last else None,
                    "file_name": ing.file_name if ing else None,
                    "last_ingested_at": _iso(ing.ingested_at) if ing else None,
                    "last_loaded_at": _iso(load.finished_at) if load else None,
                    "error": errors[0] if errors else None,
                })
    return out


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)


def to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2)


def to_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table for the terminal."""
    if not rows:
        return "No data yet — run: python -m pipeline demo && python -m pipeline run"
    columns = ("dataset", "period", "stage_rows", "core_rows", "ingestion_status",
               "validation_status", "load_status", "last_loaded_at")
    heads = ("dataset", "period", "stage", "core", "ingest", "validate", "load", "loaded at")
    cells = [[("" if r[c] is None else str(r[c])) for c in columns] for r in rows]
    out = format_table(heads, cells, right={2, 3})
    failed = [r for r in rows if r["error"] and ValidationStatus.FAILED in (r["load_status"], r["validation_status"])
              or r["ingestion_status"] == IngestStatus.REJECTED]
    for r in failed:
        out.append(f"! {r['dataset']} {r['period']}: {r['error']}")
    return "\n".join(out)

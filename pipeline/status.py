"""Per dataset and period: what is in the warehouse and how its last ingest,
validation and load went (``python -m pipeline status``, the dashboard)."""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline import db
from pipeline.config import Config, load_config
from pipeline.utils.cli import format_table

def period_counts(conn: Connection, schema: str, table: str) -> dict[str, int]:
    """Rows per period of ``schema.table`` ({} when the table does not exist)."""
    if not db.table_exists(conn, schema, table):
        return {}
    t = sa.Table(table, sa.MetaData(), sa.Column(db.PERIOD_COLUMN), schema=schema)
    query = sa.select(t.c[db.PERIOD_COLUMN], sa.func.count()).group_by(t.c[db.PERIOD_COLUMN])
    return {period: count for period, count in conn.execute(query)}


def _latest(conn: Connection, log: sa.Table, *where: Any) -> dict[tuple[str, str], Any]:
    """The newest row of ``log`` per (dataset, period)."""
    newest = (
        sa.select(sa.func.max(log.c.id))
        .where(log.c.dataset.is_not(None), log.c.period.is_not(None), *where)
        .group_by(log.c.dataset, log.c.period)
    )
    rows = conn.execute(sa.select(log).where(log.c.id.in_(newest)))
    return {(r.dataset, r.period): r for r in rows}


def collect_status(engine: Engine | None = None, config: Config | None = None) -> list[dict[str, Any]]:
    """One dict per (dataset, period) seen in the stage tables or the logs."""
    config = config or load_config()
    engine = engine or db.get_engine()
    out = []
    with engine.connect() as conn:
        ingests = _latest(conn, db.ingestion_log)
        validations = _latest(conn, db.validation_log)
        loads = _latest(conn, db.load_log, db.load_log.c.step == "load_stage")
        # A failed transform or publish after a good load still leaves the
        # period broken downstream: the newest step of any kind decides.
        last_steps = _latest(conn, db.load_log)
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
                if last is not None and last.status == "failed":
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
    failed = [r for r in rows if r["error"] and "failed" in (r["load_status"], r["validation_status"])
              or r["ingestion_status"] == "rejected"]
    for r in failed:
        out.append(f"! {r['dataset']} {r['period']}: {r['error']}")
    return "\n".join(out)

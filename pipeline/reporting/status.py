"""Per dataset and period: its state (``pipeline.warehouse.runlog.month_states``,
the one derivation), what is served and how the latest attempt went
(``python -m pipeline status``, the dashboard)."""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy.engine import Engine

from pipeline.domain.config import Config
from pipeline.reporting.text import format_table
from pipeline.warehouse.runlog import LandedFile, MonthState, month_states


def collect_status(engine: Engine, config: Config, landed: Iterable[LandedFile] = ()) -> list[dict[str, Any]]:
    """One dict per (dataset, period) — the keys of ``runlog.STATE_KEYS``.
    ``landed`` are the files in ``landed/`` (orchestrate.landed_files): without
    them no month can be ``pending`` for a file not yet processed."""
    return month_states(engine, config, landed)


def to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2)


def to_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table for the terminal (``dropped``: invalid rows left out
    under ``on_invalid_rows: drop``; ``warned``: rows kept that failed only
    ``severity: warn`` checks); below it one line per month whose latest
    attempt failed, with the reason."""
    if not rows:
        return "No data yet — run: python -m pipeline demo && python -m pipeline run"
    columns = ("dataset", "period", "state", "stage_rows", "core_rows", "rows_dropped", "rows_warned",
               "served_file", "last_loaded_at")
    heads = ("dataset", "period", "state", "stage", "core", "dropped", "warned", "served file", "loaded at")
    cells = [[("" if r[c] is None else str(r[c])) for c in columns] for r in rows]
    out = format_table(heads, cells, right={3, 4, 5, 6})
    for r in rows:
        if r["state"] in (MonthState.FAILED, MonthState.FAILED_SERVING_PREVIOUS) and r["error"]:
            serving = " (still serving the previous load)" if r["state"] == MonthState.FAILED_SERVING_PREVIOUS else ""
            out.append(f"! {r['dataset']} {r['period']}{serving}: {r['error']}")
    return "\n".join(out)

"""What the stage notebooks import to show what a stage did: row counts
before and after, the log rows it wrote, a sample of the rows; and what turns
papermill's parameters into the values the notebooks expect. Display only —
the stages themselves are ``pipeline.stages``. Light on purpose: a notebook
kernel loads this, not the runner that started it."""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.domain.config import Config
from pipeline.domain.period import PERIOD_COLUMN
from pipeline.errors import UsageError
from pipeline.stages.publish import mart_names
from pipeline.warehouse.logview import failing_cells, log_history, log_rows
from pipeline.warehouse.tables import period_counts, table_exists

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"

__all__ = ["count_changes", "list_parameter", "log_history", "log_rows", "parquet_rows", "project_root_as_cwd",
           "row_counts", "sample_rows", "static_charts", "tables_written", "validation_errors"]


def list_parameter(value: Any, name: str) -> list[str] | None:
    """A list parameter as the notebook got it, as a list of strings (None
    stays None). papermill hands ``-y 'periods: [2025-01]'`` and a dict from
    Python over as a list, but ``-p periods '["2025-01", "2025-02"]'`` as the
    JSON text: that is parsed here; one bare value (``-r periods 2025-01``)
    is a list of one. Anything else is one clear error line."""
    if value is None or isinstance(value, list | tuple):
        return None if value is None else [str(v) for v in value]
    if not isinstance(value, str):
        raise UsageError(f"{name}: expected a list, got {value!r}")
    text = value.strip()
    if not text or text == "None":
        return None
    if not text.startswith("["):
        return [text]
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
        raise UsageError(f"{name}: {value!r} is not a JSON list of strings; pass "
                         f"-p {name} '[\"a\", \"b\"]' (double quotes inside) or -y '{name}: [a, b]'")
    return parsed


def static_charts() -> None:
    """Draw altair charts as static SVG (vl-convert renders them in the
    kernel): they show in Jupyter and in a notebook exported to HTML with no
    network, where the default renderer needs vega scripts from a CDN."""
    import altair as alt

    alt.renderers.enable("svg")


def validation_errors(engine: Engine, validation_id: int, limit: int = 1000) -> pd.DataFrame:
    """The failing cells a validation logged, in row order."""
    return failing_cells(engine, validation_id, limit=limit)


def project_root_as_cwd() -> Path:
    """Make the project root the working directory when the kernel was
    started in this project's ``notebooks/`` folder (Jupyter and nbval start
    kernels in the notebook's folder), so the settings' relative defaults
    (``./data``, ``./datasets_config.yml``) mean the same as on the command
    line. Anywhere else (papermill, the runner) nothing changes."""
    if Path.cwd().resolve() == NOTEBOOKS_DIR:
        os.chdir(NOTEBOOKS_DIR.parent)
    return Path.cwd()


def tables_written(config: Config, dataset: str, step: str) -> list[str]:
    """The ``schema.table`` names ``step`` replaces a period of."""
    ds = config.dataset(dataset)
    if step == "load_stage":
        return [f"stage.{ds.table}"]
    if step == "transform":
        return [f"core.{ds.table}"]
    return [f"mart.{name}" for name in mart_names(ds)]


def row_counts(engine: Engine, tables: list[str]) -> dict[tuple[str, str], int]:
    """Rows per (table, period) of ``schema.table`` names (absent tables: none)."""
    out: dict[tuple[str, str], int] = {}
    with engine.connect() as conn:
        for name in tables:
            schema, table = name.split(".", 1)
            out.update({(name, p): n for p, n in period_counts(conn, schema, table).items()})
    return out


def count_changes(before: Mapping[tuple[str, str], int], after: Mapping[tuple[str, str], int],
                  period: str) -> pd.DataFrame:
    """Rows per table and period before and after a stage, and the change;
    ``loaded`` marks the stage's period (every other one should not move)."""
    keys = sorted(set(before) | set(after))
    frame = pd.DataFrame(
        [(t, p, before.get((t, p), 0), after.get((t, p), 0)) for t, p in keys],
        columns=["table", "period", "rows_before", "rows_after"],
    )
    frame["change"] = frame["rows_after"] - frame["rows_before"]
    frame["loaded"] = frame["period"] == period
    return frame


def parquet_rows(path: str | Path | None) -> int | None:
    """Rows of a Parquet file, None when there is none."""
    if path is None or not Path(path).is_file():
        return None
    return pq.ParquetFile(path).metadata.num_rows


def sample_rows(engine: Engine, table: str, period: str, n: int = 5) -> pd.DataFrame:
    """The first ``n`` rows of one period of ``schema.table``."""
    schema, name = table.split(".", 1)
    with engine.connect() as conn:
        if not table_exists(conn, schema, name):
            return pd.DataFrame()
        t = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)
        rows = conn.execute(sa.select(t).where(t.c[PERIOD_COLUMN] == period).limit(n)).all()
    return pd.DataFrame([dict(r._mapping) for r in rows], columns=list(t.c.keys()))

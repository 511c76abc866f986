"""What the stage notebooks import to show what a stage did: row counts
before and after, the log rows it wrote, a sample of the rows, why a month
failed; and what turns papermill's parameters into the values the notebooks
expect. Display only — the stages themselves are ``pipeline.stages``. Light
on purpose: a notebook kernel loads this, not the runner that started it."""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.context import Context
from pipeline.domain.config import Config, DatasetConfig
from pipeline.domain.diff import diff_month
from pipeline.domain.period import PERIOD_COLUMN
from pipeline.domain.schema import arrow_schema
from pipeline.errors import UsageError, WorkbenchError, one_line, shorten
from pipeline.runners.base import NOTEBOOKS_DIR, STAGE_NOTEBOOKS, STAGES
from pipeline.settings import Settings
from pipeline.stages.publish import mart_names
from pipeline.warehouse.logview import failing_cells, log_history, log_rows
from pipeline.warehouse.tables import period_counts, table_exists

__all__ = ["NOTEBOOKS_DIR", "column_summary", "compare_periods", "count_changes", "describe_month", "explain_month",
           "explained_on_failure", "list_parameter", "log_history", "log_rows", "month_state", "months_not_read",
           "parquet_rows", "project_root_as_cwd", "read_cleaned", "row_counts", "sample_rows", "static_charts",
           "tables_written", "validation_errors", "where_to_look"]


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
    if not text.startswith(("[", "{")):  # one bare value
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


# --------------------------------------------------------------------------
# explore_parquet: every month of a dataset's validated Parquet as one table
# --------------------------------------------------------------------------
def read_cleaned(settings: Settings, dataset: DatasetConfig, periods: list[str] | None = None) -> pd.DataFrame:
    """The validated Parquet of ``dataset`` (every period, or ``periods``)
    as one table, the ``period=YYYY-MM`` folder names as a ``period`` column.
    The schema is the config's, so months written before a column was added
    read with that column null (not the first file's columns); hidden files
    (a Parquet being written) are skipped. No Parquet at all: one error line
    saying how to produce it."""
    folder = settings.cleaned_dir / dataset.name
    if not any(folder.glob("period=*/*.parquet")):
        raise FileNotFoundError(
            f"no validated Parquet for {dataset.name!r} in {folder}; produce it with: "
            "python -m pipeline demo && python -m pipeline run  (with WORKBENCH_DATA_DIR set as here)")
    unified = pa.schema([f.with_nullable(True) for f in arrow_schema(dataset)] + [pa.field("period", pa.string())])
    parts = pads.dataset(folder, format="parquet", schema=unified,
                         partitioning=pads.partitioning(pa.schema([("period", pa.string())]), flavor="hive"))
    wanted = pads.field("period").isin(periods) if periods else None
    return parts.to_table(filter=wanted).to_pandas()


def column_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Type, nulls, distinct values, min and max of each column, in the table's order."""
    ordered = [c for c in df.columns if df[c].notna().any() and not str(df[c].dtype).startswith("bool")]
    return pd.DataFrame({
        "type": df.dtypes.astype(str),
        "nulls": df.isna().sum(),
        "distinct": df.nunique(),
        "min": {c: df[c].min() for c in ordered},
        "max": {c: df[c].max() for c in ordered},
    }).reindex(df.columns)


def compare_periods(df: pd.DataFrame, dataset: DatasetConfig, first: str, second: str) -> dict[str, pd.DataFrame]:
    """What changed from ``first`` to ``second`` by the dataset's primary key,
    with ``domain.diff.diff_month`` (the comparison a correction preview
    shows): row counts, changed cells per column, the first added and
    removed rows. Without a primary key: the counts of whole rows only."""
    old, new = (df[df["period"] == p].drop(columns="period") for p in (first, second))
    d = diff_month(old, new, dataset.primary_key)
    counts = {f"in {first}": d.rows_before, f"in {second}": d.rows_after, "added": d.added, "removed": d.removed}
    if d.changed is None or d.unchanged is None:
        return {"rows": pd.DataFrame({"rows": counts})}
    counts.update({"kept": d.changed + d.unchanged, "kept but changed": d.changed})
    key = list(dataset.primary_key)
    old_i, new_i = old.set_index(key), new.set_index(key)
    changed = {c: d.columns_changed.get(c, 0) for c in new_i.columns}
    return {
        "rows": pd.DataFrame({"rows": counts}),
        "changed cells": pd.DataFrame([changed], index=["changed cells"]),
        "added (first 5)": new_i.loc[new_i.index.difference(old_i.index)].head(),
        "removed (first 5)": old_i.loc[old_i.index.difference(new_i.index)].head(),
    }


# --------------------------------------------------------------------------
# Why a month is not there: its state (runlog.month_states, the one
# derivation), the failing attempt's error and where to read more.
# --------------------------------------------------------------------------
def month_state(ctx: Context, dataset: str, period: str) -> dict[str, Any] | None:
    """The month's row of ``orchestrate.month_states`` (the same as
    ``python -m pipeline status`` and the dashboard); None when nothing — no
    log row, no served rows, no landed file — knows that month."""
    return next((m for m in _dataset_months(ctx, dataset) if m["period"] == period), None)


def _failed_stage(month: Mapping[str, Any]) -> str:
    """The stage whose attempt failed (``runlog.month_states`` takes the
    first failed of the last step, the validation, the ingestion)."""
    if month["load_status"] == "failed" and month["last_step"] in STAGES:
        return str(month["last_step"])
    return "validate" if month["validation_status"] == "failed" else "ingest"


def where_to_look(ctx: Context, month: Mapping[str, Any]) -> list[str]:
    """Where the failed attempt of ``month`` is told in full: its log row
    (and every failing cell of a failed validation), the executed stage
    notebook when ``--via-notebooks`` kept one, every month's state."""
    dataset, period, stage = month["dataset"], month["period"], _failed_stage(month)
    log, where = {"ingest": ("ingestion_log", {"status": "rejected"}),
                  "validate": ("validation_log", {"status": "failed"})}.get(
        stage, ("load_log", {"status": "failed", "step": stage}))
    rows = log_history(ctx.engine, log, dataset, period, limit=1, **where)
    log_id = int(rows.loc[0, "id"]) if len(rows) else None
    out = [f"meta.{log}" + (f" id {log_id}" if log_id is not None else "")]
    if stage == "validate" and log_id is not None:
        out.append(f"every failing cell: meta.validation_errors, validation_id {log_id} "
                   f"(here: validation_errors(ctx.engine, {log_id}))")
    kept = ctx.settings.runs_dir / dataset / period / STAGE_NOTEBOOKS[stage]
    if kept.is_file():
        out.append(f"the executed notebook {kept}")
    out.append("every month: python -m pipeline status")
    return out


_NOT_FAILED = {
    "published": "served, through every stage",
    "stale": "served, but transform or publish has not run since its last load (run: python -m pipeline run)",
    "pending": "a landed file not processed yet (run: python -m pipeline run)",
    "missing": "no delivery for this month, between months that have one",
}


def describe_month(ctx: Context, month: Mapping[str, Any]) -> str:
    """A few lines on one row of the month states: for a failed month the
    stage that failed, its error line and where to look (``where_to_look``)."""
    dataset, period, state = month["dataset"], month["period"], str(month["state"])
    if state not in ("failed", "failed_serving_previous"):
        return f"{dataset} {period}: {state} — {_NOT_FAILED.get(state, '')}".rstrip(" —")
    serving = " (the previous load is still served)" if state == "failed_serving_previous" else ""
    error = shorten(str(month["error"] or "no error was logged"))
    lines = [f"{dataset} {period}: {state} at {_failed_stage(month)}{serving} — {error}", "look at:"]
    return "\n".join(lines + [f"  - {w}" for w in where_to_look(ctx, month)])


def explain_month(ctx: Context, dataset: str, period: str) -> str:
    """Why the month is as it is (``describe_month``), or that nothing knows it."""
    month = month_state(ctx, dataset, period)
    if month is None:
        return (f"{dataset} {period}: nothing known — no file of it was ever ingested and "
                f"{ctx.settings.landed_dir} has none")
    return describe_month(ctx, month)


@contextlib.contextmanager
def explained_on_failure(ctx: Context, dataset: str, period: str) -> Iterator[None]:
    """Run a stage; when it fails with the package's error, print the
    month's state first (a refused or failed delivery says so, with its
    error and where to look), then let the error fail the notebook."""
    try:
        yield
    except WorkbenchError:
        print(_explained_or_why_not(lambda: explain_month(ctx, dataset, period)))
        raise


def _explained_or_why_not(explain: Callable[[], str]) -> str:
    try:
        return explain()
    except Exception as exc:  # the warehouse may be what is broken: say so, in one line
        return f"(the month's state could not be read: {one_line(exc)})"


def months_not_read(ctx: Context, dataset: str, wanted: list[str] | None, read: Iterable[str]) -> str:
    """Why months are absent from (or old in) what a notebook read: each
    month of ``wanted`` not in ``read`` — or, when every month was wanted,
    each failed one — explained by ``describe_month``. Empty when all is there."""
    def explain() -> str:
        states = {m["period"]: m for m in _dataset_months(ctx, dataset)}
        got = set(read)
        if wanted is not None:
            asked = [p for p in wanted if p not in got]
        else:
            asked = [p for p, m in states.items() if m["state"] in ("failed", "failed_serving_previous")]
        return "\n".join(describe_month(ctx, states[p]) if p in states else
                         f"{dataset} {p}: nothing known — no file of it was ever ingested" for p in asked)
    return _explained_or_why_not(explain)


def _dataset_months(ctx: Context, dataset: str) -> list[dict[str, Any]]:
    from pipeline.orchestrate import month_states  # the runners' module: loaded only when asked

    return [m for m in month_states(ctx) if m["dataset"] == dataset]

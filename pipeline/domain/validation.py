"""The validate stage's pure rules: check a typed frame, and decide from its
failures whether the file passes, which rows are written, and the one line
that tells the analyst why not.

- ``on_invalid_rows: reject`` (the default): any invalid row fails the file.
- ``drop``: invalid rows are left out; a drop that would leave nothing fails
  (loading it would empty the period).
- A failure of a DataFrame-wide check is pinned to the header row (row 1): no
  row can be dropped for it, so it fails the file in either mode.
- A failure of a ``severity: warn`` check (label "warn: …") fails nothing:
  the row is kept and counted in ``rows_warned``.
- ``rules:`` (column comparisons, ``within_period``) are checked on the
  typed frame and reported once per failing row against the rule's column.
- An empty file (a header but no data rows) fails: far more often a broken
  export than a real month.
"""
from __future__ import annotations

import datetime as dt
import math
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from pipeline.domain.checks import WARN, WARN_PREFIX, is_warning
from pipeline.domain.coerce import coerce_frame, empty_failures
from pipeline.domain.config import DatasetConfig
from pipeline.domain.period import Period
from pipeline.domain.schema import build_schema

MAX_LOGGED_ERRORS = 1_000
MAX_SUMMARY_GROUPS = 5
SUMMARY_VALUE_CHARS = 40  # the one-line message stays one readable line

RULE_OPERATORS: dict[str, Any] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "=": operator.eq, "!=": operator.ne,
}

# pandera's own names for its built-in checks → the names the error log shows.
CHECK_LABELS = {
    "not_nullable": "not_nullable",
    "field_uniqueness": "unique",
    "multiple_fields_uniqueness": "primary_key",
}


@dataclass(frozen=True)
class Decision:
    passed: bool
    rows: pd.DataFrame | None          # the rows to write when passed
    counts: tuple[int, int, int]       # total, valid, invalid rows
    failures: pd.DataFrame             # the failures to log (at most MAX_LOGGED_ERRORS)
    error: str | None
    rows_warned: int = 0               # rows that failed only ``severity: warn`` checks (kept)


def decide(typed: pd.DataFrame, failures: pd.DataFrame, dataset: DatasetConfig, file_name: str,
           validation_id: int) -> Decision:
    """Pass or fail a checked file under the dataset's ``on_invalid_rows``.

    Failures of ``severity: warn`` checks are logged but fail nothing: their
    rows are kept (and valid) unless another check fails them too.
    """
    total = len(typed)
    warning = failures["check"].map(lambda c: is_warning(str(c))).to_numpy(dtype=bool)
    invalid_rows = np.unique(failures["row_number"].to_numpy(dtype=np.int64)[~warning])
    warned = np.setdiff1d(failures["row_number"].to_numpy(dtype=np.int64)[warning], invalid_rows)
    warned_rows = int((warned >= 2).sum())  # a table-wide warning (row 1) warns no row
    counts = (total, total - len(invalid_rows), len(invalid_rows))
    shown = sorted_failures(failures, dataset)
    errors = shown[~shown["check"].map(lambda c: is_warning(str(c))).to_numpy(dtype=bool)]
    if not len(invalid_rows):
        return Decision(True, typed, counts, shown, None, warned_rows)
    whole_file = invalid_rows[0] < 2
    if dataset.on_invalid_rows == "reject" or whole_file:
        return Decision(False, None, counts, shown,
                        summary(file_name, len(invalid_rows), errors, validation_id), warned_rows)
    kept = typed[~typed.index.isin(invalid_rows)]
    if kept.empty:
        error = f"{file_name}: all {total} rows are invalid, nothing to load: " + summary_groups(errors)
        return Decision(False, None, counts, shown, error, warned_rows)
    return Decision(True, kept, counts, shown, None, warned_rows)


def empty_file_error(file_name: str) -> str:
    return f"{file_name}: no data rows (only the header row); an empty delivery is not loaded"


def check_frame(raw: pd.DataFrame, dataset: DatasetConfig, period: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The typed frame and every failure: type errors first, then the schema's."""
    typed, type_failures = coerce_frame(raw, dataset)
    schema = build_schema(dataset, period)
    try:
        schema.validate(typed, lazy=True, inplace=True)
        schema_failures = empty_failures()
    except pa.errors.SchemaErrors as exc:
        schema_failures = failures_of_schema(exc.failure_cases)
    if len(type_failures) and len(schema_failures):
        # A cell that could not be typed is null in the typed frame; don't
        # report it a second time as a missing value.
        typed_cells = pd.MultiIndex.from_arrays([type_failures["row_number"], type_failures["column"]])
        cells = pd.MultiIndex.from_arrays([schema_failures["row_number"], schema_failures["column"]])
        again = cells.isin(typed_cells) & (schema_failures["check"] == "not_nullable").to_numpy()
        schema_failures = schema_failures[~again]
    parts = [f for f in (type_failures, schema_failures, rule_failures(typed, dataset, period)) if len(f)]
    return typed, (pd.concat(parts, ignore_index=True) if parts else empty_failures())


def rule_failures(typed: pd.DataFrame, dataset: DatasetConfig, period: str) -> pd.DataFrame:
    """The failures of the dataset's ``rules:``, one per failing row, against
    the rule's column (value: that column's value). A null on either side is
    left to the column's nullable rule."""
    parts = []
    for rule in dataset.rules:
        left = typed[rule.column]
        if rule.within_period:
            month = Period.of(period)
            start, end = pd.Timestamp(month.start), pd.Timestamp(month.next().start)
            ok, known = (left >= start) & (left < end), left.notna()
            label = f"in period {period}"
        else:
            right = typed[rule.other]
            ok = RULE_OPERATORS[str(rule.op)](left, right)
            known = left.notna() & right.notna()
            label = f"{rule.op} {rule.other}"
        failing = (known & ~ok.fillna(False).astype(bool)).to_numpy(dtype=bool)
        if failing.any():
            parts.append(pd.DataFrame({
                "row_number": typed.index.to_numpy(dtype=np.int64)[failing],
                "column": rule.column,
                "check": (WARN_PREFIX if rule.severity == WARN else "") + label,
                "value": left[failing].astype(object).to_numpy(),
            }))
    return pd.concat(parts, ignore_index=True) if parts else empty_failures()


def failures_of_schema(cases: pd.DataFrame) -> pd.DataFrame:
    # A failure without a row index is about the frame, not a row (e.g. a
    # wide check returning one boolean); it cannot be dropped row by row, so
    # it is pinned to the header row, which makes the whole file invalid.
    rows = pd.to_numeric(cases["index"], errors="coerce").fillna(1).astype("int64")
    return pd.DataFrame({
        "row_number": rows.to_numpy(),
        "column": cases["column"].astype(object).where(cases["column"].notna(), None).to_numpy(),
        "check": [check_label(str(c)) for c in cases["check"]],
        "value": cases["failure_case"].astype(object).to_numpy(),
    })


def sorted_failures(failures: pd.DataFrame, dataset: DatasetConfig) -> pd.DataFrame:
    """The first MAX_LOGGED_ERRORS failures by row, then column order."""
    if failures.empty:
        return failures
    order = {name: i for i, name in enumerate(dataset.columns)}
    keyed = failures.assign(_col=failures["column"].map(order).fillna(len(order)))
    keyed = keyed.sort_values(["row_number", "_col"], kind="stable").head(MAX_LOGGED_ERRORS)
    return keyed.drop(columns="_col").reset_index(drop=True)


def summary_groups(failures: pd.DataFrame) -> str:
    """'sex isin [M, F, X] (row 5 'Q'), monthly_income ≥ 0 (row 12 '-120.0'; 2 more rows), …'"""
    groups: dict[tuple[Any, str], list[tuple[int, Any]]] = {}
    for row, column, check, value in zip(failures["row_number"], failures["column"],
                                         failures["check"], failures["value"]):
        groups.setdefault((column, check), []).append((int(row), value))
    parts = []
    for (column, check), hits in list(groups.items())[:MAX_SUMMARY_GROUPS]:
        row, value = hits[0]
        text = value_text(value)
        if text is not None and len(text) > SUMMARY_VALUE_CHARS:
            text = text[:SUMMARY_VALUE_CHARS] + "…"
        shown = "empty" if text is None else repr(text)
        more = f"; {len(hits) - 1} more row{'s' if len(hits) > 2 else ''}" if len(hits) > 1 else ""
        parts.append(f"{column or '(table)'} {check} (row {row} {shown}{more})")
    if len(groups) > MAX_SUMMARY_GROUPS:
        parts.append("…")
    return ", ".join(parts)


def summary(file_name: str, invalid: int, failures: pd.DataFrame, validation_id: int) -> str:
    return (f"{file_name}: {invalid} invalid row{'s' if invalid != 1 else ''}: {summary_groups(failures)} "
            f"(see meta.validation_errors, validation {validation_id})")



# --------------------------------------------------------------------------
# Failures as text
# --------------------------------------------------------------------------
def value_text(value: Any) -> str | None:
    """A failing value as the error log and messages show it."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        stamp = pd.Timestamp(value)
        if stamp is pd.NaT:
            return None
        return stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat(sep=" ")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (np.integer, np.floating)):
        return str(value.item())
    return str(value)


def check_label(check: str) -> str:
    """pandera's name for a failed check → the name the error log shows."""
    return CHECK_LABELS.get(check, check)

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
- ``rules:`` (column comparisons, ``within_period``) are DataFrame-level
  checks of the pandera schema (``domain.schema.rule_checks``); each failing
  row is logged once (``rule_failures``), against the rule's column, with the
  other column in its check (``end_date`` ``>= start_date``). Its severity
  is its label's, as for any check.
- An empty file (a header but no data rows) fails: far more often a broken
  export than a real month.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.domain.checks import is_warning
from pipeline.domain.coerce import coerce_frame, empty_failures
from pipeline.domain.config import DatasetConfig
from pipeline.domain.schema import RULE_CHECK, build_schema

if TYPE_CHECKING:
    import pandera.pandas as pa

# pandera is imported by check_frame, the one place that runs it: the log views
# (warehouse.runlog) read value_text from here without paying its import.

MAX_LOGGED_ERRORS = 1_000
MAX_SUMMARY_GROUPS = 5
SUMMARY_VALUE_CHARS = 40  # the one-line message stays one readable line

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
    counts: tuple[int, int, int]       # total, valid, invalid rows (every failing row counted)
    failures: pd.DataFrame             # the failures to log (at most MAX_LOGGED_ERRORS samples)
    error: str | None
    groups: pd.DataFrame | None = None  # per (column, check): every failing row counted (failure_groups)
    dropped: int = 0                   # rows left out under ``on_invalid_rows: drop``
    warned: int = 0                    # rows that failed only ``severity: warn`` checks (kept)


def decide(typed: pd.DataFrame, failures: pd.DataFrame, dataset: DatasetConfig, file_name: str,
           validation_id: int, headers: Mapping[str, str] | None = None) -> Decision:
    """Pass or fail a checked file under the dataset's ``on_invalid_rows``.

    Failures of ``severity: warn`` checks are logged but fail nothing: their
    rows are kept (and valid) unless another check fails them too.
    Every count (invalid rows, "N more rows" in the message, the per-check
    totals in ``groups``) comes from the full failure frame; only the samples
    kept for ``meta.validation_errors`` are capped at MAX_LOGGED_ERRORS.
    ``headers`` maps a column to the file's own header text, so messages can
    name both where they differ.
    """
    total = len(typed)
    warning = failures["check"].map(lambda c: is_warning(str(c))).to_numpy(dtype=bool)
    invalid_rows = np.unique(failures["row_number"].to_numpy(dtype=np.int64)[~warning])
    warned = np.setdiff1d(failures["row_number"].to_numpy(dtype=np.int64)[warning], invalid_rows)
    warned_rows = int((warned >= 2).sum())  # a table-wide warning (row 1) warns no row
    counts = (total, total - len(invalid_rows), len(invalid_rows))
    ordered = sorted_failures(failures, dataset, limit=None)
    shown = ordered.head(MAX_LOGGED_ERRORS).reset_index(drop=True)
    groups = failure_groups(ordered)
    # the one-line reason names what failed, not what only warned
    errors = failure_groups(ordered[~ordered["check"].map(lambda c: is_warning(str(c))).to_numpy(dtype=bool)])
    if not len(invalid_rows):
        return Decision(True, typed, counts, shown, None, groups, warned=warned_rows)
    whole_file = invalid_rows[0] < 2
    if dataset.on_invalid_rows == "reject" or whole_file:
        return Decision(False, None, counts, shown,
                        summary(file_name, len(invalid_rows), errors, validation_id, headers), groups,
                        warned=warned_rows)
    kept = typed[~typed.index.isin(invalid_rows)]
    if kept.empty:
        error = (f"{file_name}: all {total:,} rows are invalid, nothing to load: "
                 + summary_groups(errors, headers))
        return Decision(False, None, counts, shown, error, groups, warned=warned_rows)
    return Decision(True, kept, counts, shown, None, groups, dropped=len(invalid_rows), warned=warned_rows)


def empty_file_error(file_name: str) -> str:
    return f"{file_name}: no data rows (only the header row); an empty delivery is not loaded"


def check_frame(raw: pd.DataFrame, dataset: DatasetConfig, period: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The typed frame and every failure: type errors first, then the schema's."""
    import pandera.pandas as pa

    typed, type_failures = coerce_frame(raw, dataset)
    schema = build_schema(dataset, period)
    try:
        schema.validate(typed, lazy=True, inplace=True)
        schema_failures = empty_failures()
    except pa.errors.SchemaErrors as exc:
        cases, rules = rule_failures(exc, schema, dataset, typed)
        parts = [f for f in (failures_of_schema(cases), rules) if len(f)]
        schema_failures = pd.concat(parts, ignore_index=True) if parts else empty_failures()
    if len(type_failures) and len(schema_failures):
        # A cell that could not be typed is null in the typed frame; don't
        # report it a second time as a missing value.
        typed_cells = pd.MultiIndex.from_arrays([type_failures["row_number"], type_failures["column"]])
        cells = pd.MultiIndex.from_arrays([schema_failures["row_number"], schema_failures["column"]])
        again = cells.isin(typed_cells) & (schema_failures["check"] == "not_nullable").to_numpy()
        schema_failures = schema_failures[~again]
    parts = [f for f in (type_failures, schema_failures) if len(f)]
    failures = pd.concat(parts, ignore_index=True) if parts else empty_failures()
    return typed, with_row_keys(as_delivered(failures, raw), raw, dataset)


def rule_failures(exc: pa.errors.SchemaErrors, schema: pa.DataFrameSchema, dataset: DatasetConfig,
                  typed: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pandera's failure cases without the rules' own, the rules' failures).

    A rule's DataFrame-level check reports one sample row, once per column of
    the frame (``domain.schema.rule_checks``); its verdict on every row is
    the check's output, kept on its SchemaError. Each failing row becomes
    one failure against the rule's column (its value is left to
    :func:`as_delivered`: the file's cell of that column). A rule
    that could not run (no output) keeps pandera's case: it fails the file."""
    by_name = {RULE_CHECK.format(index=i): rule for i, rule in enumerate(dataset.rules)}
    names = [getattr(check, "name", None) for check in schema.checks]
    parts, ran = [], set()
    for error in exc.schema_errors:
        name = str(getattr(error.check, "name", ""))
        rule, output = by_name.get(name), error.check_output
        if rule is None or not isinstance(output, pd.Series) or not output.index.equals(typed.index):
            continue
        ran.add(names.index(name))
        failing = ~output.fillna(False).astype(bool).to_numpy()
        # The value is the file's cell of the rule's column: as_delivered fills it.
        parts.append(pd.DataFrame({
            "row_number": typed.index.to_numpy(dtype=np.int64)[failing], "column": rule.column,
            "check": str(error.check.error), "value": None}))
    cases = exc.failure_cases
    theirs = ((cases["schema_context"] == "DataFrameSchema")
              & pd.to_numeric(cases["check_number"], errors="coerce").isin(list(ran))).to_numpy(dtype=bool)
    return cases[~theirs], pd.concat(parts, ignore_index=True) if parts else empty_failures()


def as_delivered(failures: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    """Each failing cell's value as the file holds it: a schema check sees the
    typed value (the CSV text ``0`` became 0.0), the analyst should see ``'0'``.
    Failures not about one cell of ``raw`` (frame-wide checks) keep theirs."""
    if failures.empty:
        return failures
    positions = raw.index.get_indexer(failures["row_number"])
    columns = failures["column"].to_numpy(dtype=object)
    values = failures["value"].to_numpy(dtype=object).copy()
    for column in set(columns[positions >= 0]) & set(raw.columns):
        here = (columns == column) & (positions >= 0)
        values[here] = raw[column].to_numpy(dtype=object)[positions[here]]
    values = [cell_text(v) for v in values]
    return failures.assign(value=pd.Series(values, index=failures.index, dtype=object))


def with_row_keys(failures: pd.DataFrame, raw: pd.DataFrame, dataset: DatasetConfig) -> pd.DataFrame:
    """Each failure with ``row_key``: its row's primary key as the file gives
    it (``1001``; a composite key as ``a=1, b=x``), so the error log
    names the record. None for a dataset without a key, a frame-wide failure
    (no row of ``raw``) and a row whose key cell is empty."""
    keys: list[str | None] = [None] * len(failures)
    key = [c for c in dataset.primary_key if c in raw.columns]
    if key and len(key) == len(dataset.primary_key) and len(failures):
        positions = raw.index.get_indexer(failures["row_number"])
        cells = [raw[c].to_numpy(dtype=object) for c in key]
        for i, pos in enumerate(positions):
            if pos < 0:
                continue
            texts = [cell_text(column[pos]) for column in cells]
            if all(t is not None and t.strip() for t in texts):
                keys[i] = texts[0] if len(key) == 1 else ", ".join(f"{c}={t}" for c, t in zip(key, texts))
    return failures.assign(row_key=pd.Series(keys, index=failures.index, dtype=object))


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


def sorted_failures(failures: pd.DataFrame, dataset: DatasetConfig,
                    limit: int | None = MAX_LOGGED_ERRORS) -> pd.DataFrame:
    """The failures by row, then column order: the first ``limit`` of them
    (all with ``limit=None``)."""
    if failures.empty:
        return failures
    order = {name: i for i, name in enumerate(dataset.columns)}
    keyed = failures.assign(_col=failures["column"].map(order).fillna(len(order)))
    keyed = keyed.sort_values(["row_number", "_col"], kind="stable")
    if limit is not None:
        keyed = keyed.head(limit)
    return keyed.drop(columns="_col").reset_index(drop=True)


GROUP_COLUMNS = ["column", "check", "rows", "first_row", "first_value"]


def failure_groups(ordered: pd.DataFrame) -> pd.DataFrame:
    """Per (column, check), in order of first failure: how many distinct rows
    fail it (all of them, not the samples kept) and the first one with its value.
    ``ordered`` is every failure, sorted as :func:`sorted_failures` sorts."""
    if ordered.empty:
        return pd.DataFrame(columns=GROUP_COLUMNS)
    # groupby drops None keys: a frame-wide failure has no column.
    keyed = ordered.assign(_key=ordered["column"].astype(object).where(ordered["column"].notna(), ""))
    firsts = keyed.drop_duplicates(["_key", "check"], keep="first")
    rows = keyed.groupby(["_key", "check"], sort=False)["row_number"].nunique()
    return pd.DataFrame({
        "column": firsts["column"].astype(object).where(firsts["column"].notna(), None).to_numpy(),
        "check": firsts["check"].to_numpy(),
        "rows": [int(rows[(k, c)]) for k, c in zip(firsts["_key"], firsts["check"])],
        "first_row": firsts["row_number"].astype("int64").to_numpy(),
        "first_value": firsts["value"].to_numpy(),
    })


def column_label(column: Any, headers: Mapping[str, str] | None = None) -> str:
    """A column as messages name it: the config name, and the file's header
    in brackets where it is spelled differently ("monthly_income (Monthly Income)")."""
    if column is None or (isinstance(column, float) and math.isnan(column)):
        return "(table)"
    header = (headers or {}).get(str(column))
    return f"{column} ({header})" if header and header != column else str(column)


def summary_groups(groups: pd.DataFrame, headers: Mapping[str, str] | None = None) -> str:
    """'sex isin [M, F, X] (row 5 'Q'), monthly_income (Monthly Income) ge 0 (row 12 '-120'; 1,499 more rows), …'"""
    parts = []
    for column, check, rows, row, value in list(zip(*(groups[c] for c in GROUP_COLUMNS)))[:MAX_SUMMARY_GROUPS]:
        text = value_text(value)
        if text is not None and len(text) > SUMMARY_VALUE_CHARS:
            text = text[:SUMMARY_VALUE_CHARS] + "…"
        shown = "empty" if text is None else repr(text)
        more = int(rows) - 1
        tail = f"; {more:,} more row{'s' if more > 1 else ''}" if more > 0 else ""
        parts.append(f"{column_label(column, headers)} {check} (row {int(row)} {shown}{tail})")
    if len(groups) > MAX_SUMMARY_GROUPS:
        parts.append("…")
    return ", ".join(parts)


def summary(file_name: str, invalid: int, groups: pd.DataFrame, validation_id: int,
            headers: Mapping[str, str] | None = None) -> str:
    return (f"{file_name}: {invalid:,} invalid row{'s' if invalid != 1 else ''}: {summary_groups(groups, headers)} "
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


def cell_text(value: Any) -> str | None:
    """A raw cell as the analyst sees it: text exactly as delivered; a number
    cell as Excel shows it (a whole float 120.0 as ``120``)."""
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isfinite(number) and number.is_integer() and abs(number) < 2 ** 53:
            return str(int(number))
    return value_text(value)


def check_label(check: str) -> str:
    """pandera's name for a failed check → the name the error log shows."""
    return CHECK_LABELS.get(check, check)

"""Everything the validate stage derives from a dataset's config: the typed
in-memory frame's dtypes, the pandera schema that checks it and the Arrow
schema of the Parquet file (the coercion of raw cells into those types is
``domain.coerce``).

One table of types drives all of them (``PANDAS_DTYPES`` / ``ARROW_TYPES``),
so no column list or type mapping is written twice.

=========  =====================  ========================
config     typed frame (pandas)   Parquet (Arrow)
=========  =====================  ========================
integer    Int64                  int64
float      float64 (NaN = null)   float64
decimal    decimal128(p,s) Arrow  decimal128(p,s) (exact; precision/scale from the config)
string     string[pyarrow]        string
date       datetime64[us]         date32 (midnight values)
datetime   datetime64[us]         timestamp[us] (naive)
boolean    boolean                bool
=========  =====================  ========================

Checks (``build_schema``): ``nullable``, ``unique``, ``isin``, ``regex`` (the
whole value must match, like ``re.fullmatch``), ``ge``/``gt``/``le``/``lt``,
``min_length``/``max_length``, and the dataset's ``primary_key`` unique within
the file, with every row of a duplicated key reported.

Rules (``rule_checks``): each of the dataset's ``rules:`` is a DataFrame-level
pandera check (vectorised over the frame, one boolean per row) named
``rule[i]`` after its place in the config, with the log label as its error
text (``>= start_date``, ``in period 2025-03``; ``warn: `` in front under
``severity: warn``). pandera would report a failing row of such a check once
per column of the frame; ``domain.validation.rule_failures`` logs one
failure per failing row, against the rule's column, from the check's output.

Python checks: a dataset's ``python_checks: some.module`` names a module with

    def extend_schema(schema: pa.DataFrameSchema, period: str) -> pa.DataFrameSchema

which receives the schema built from the config and returns it with its own
checks added (typically ``schema.update_column(col, checks=[...])`` so each
failure is reported per row against that column). Extending the schema rather
than returning loose checks lets a module attach a check to the column it is
about, add a DataFrame-wide check, or tighten anything else. Checks see the
typed frame described above; a check's ``error`` text (pandera falls back
to its ``name``) is what the error log shows as the check.
"""
from __future__ import annotations

import importlib
import operator
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow

from pipeline.domain.checks import WARN, WARN_PREFIX, value_checks
from pipeline.domain.config import ColumnConfig, DatasetConfig, RuleConfig
from pipeline.domain.period import Period
from pipeline.errors import ConfigError

if TYPE_CHECKING:
    import pandera.pandas as pa

# pandera is imported by the functions that build schemas: importing it costs
# ~0.3 s, and the dashboard only needs this module's dtypes.

STRING_DTYPE = pd.StringDtype("pyarrow")
PANDAS_DTYPES: dict[str, Any] = {
    "integer": pd.Int64Dtype(),
    "float": np.dtype("float64"),
    "string": STRING_DTYPE,
    "date": np.dtype("datetime64[us]"),
    "datetime": np.dtype("datetime64[us]"),
    "boolean": pd.BooleanDtype(),
}
ARROW_TYPES: dict[str, pyarrow.DataType] = {
    "integer": pyarrow.int64(),
    "float": pyarrow.float64(),
    "string": pyarrow.string(),
    "date": pyarrow.date32(),
    "datetime": pyarrow.timestamp("us"),
    "boolean": pyarrow.bool_(),
}
EXTENSION_HOOK = "extend_schema"
RULE_CHECK = "rule[{index}]"  # the pandera name of the dataset's rules[index]
RULE_SAMPLES = 1  # failure cases pandera itself keeps of a rule (every row is judged)
RULE_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "=": operator.eq, "!=": operator.ne,
}

# --------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------
def pandas_dtype(column: ColumnConfig) -> Any:
    """The dtype a column has in the typed (validated) frame."""
    if column.type == "decimal":
        return pd.ArrowDtype(arrow_type(column))
    return PANDAS_DTYPES[column.type]


def arrow_type(column: ColumnConfig) -> pyarrow.DataType:
    """The Arrow (Parquet) type of a column."""
    if column.type == "decimal":
        assert column.precision is not None and column.scale is not None  # the config requires both
        return pyarrow.decimal128(column.precision, column.scale)
    return ARROW_TYPES[column.type]


def arrow_schema(dataset: DatasetConfig) -> pyarrow.Schema:
    """The Parquet type contract of a dataset's cleaned files (no metadata).

    Columns in config order; ``nullable: false`` columns are non-nullable
    fields. There is no period column: the ``period=YYYY-MM`` folder holds it.
    """
    return pyarrow.schema(
        [pyarrow.field(c.name, arrow_type(c), nullable=c.nullable) for c in dataset.columns.values()]
    )


# --------------------------------------------------------------------------
# The pandera schema
# --------------------------------------------------------------------------
def build_schema(dataset: DatasetConfig, period: str) -> pa.DataFrameSchema:
    """The pandera schema of one dataset's typed frame for one period.

    Checks are derived from the config, then the dataset's ``python_checks``
    module (if any) extends the schema; ``period`` ('YYYY-MM') is handed to it.
    """
    import pandera.pandas as pa

    pk = tuple(dataset.primary_key)
    columns = {}
    for col in dataset.columns.values():
        columns[col.name] = pa.Column(
            pandas_dtype(col),
            checks=column_checks(col),
            nullable=col.nullable,
            # A one-column key is already checked (and reported) as primary_key.
            unique=col.unique and pk != (col.name,),
            coerce=False,
            required=True,
        )
    schema = pa.DataFrameSchema(
        columns,
        name=dataset.name,
        strict=True,
        coerce=False,
        unique=list(pk) or None,
        report_duplicates="all",
        checks=rule_checks(dataset, period),
    )
    if dataset.python_checks:
        schema = _extend(schema, dataset, period)
    return schema


def column_checks(col: ColumnConfig) -> list[pa.Check]:
    """The value checks of one column (domain.checks); each check's name is its log label.

    Vectorised over the column; pandera leaves nulls out of them (ignore_na):
    nullability is its own check.
    """
    import pandera.pandas as pa

    return [pa.Check(fn, name=label, error=label) for label, fn in value_checks(col.type, col.checks, col.warn)]


def rule_checks(dataset: DatasetConfig, period: str) -> list[pa.Check]:
    """The dataset's ``rules:`` as DataFrame-level checks, in config order.

    Each returns one boolean per row; a null on either side passes (the
    column's ``nullable`` is its own check). pandera's ``ignore_na`` is off:
    on a frame it would only skip rows null in every column. pandera lists
    a failing row once per column of the frame and writes every case into its
    message (1M failing rows of 8 columns: ~97 s here), so it keeps
    RULE_SAMPLES of them; the verdict on every row is the check's output
    (``SchemaError.check_output``), which ``domain.validation`` reads.
    """
    import pandera.pandas as pa

    return [pa.Check(rule_predicate(rule, period), name=RULE_CHECK.format(index=i), error=rule_label(rule, period),
                     ignore_na=False, n_failure_cases=RULE_SAMPLES)
            for i, rule in enumerate(dataset.rules)]


def rule_label(rule: RuleConfig, period: str) -> str:
    """What meta.validation_errors shows as a rule's check (its column is the row's column)."""
    label = f"in period {period}" if rule.within_period else f"{rule.op} {rule.other}"
    return (WARN_PREFIX if rule.severity == WARN else "") + label


def rule_predicate(rule: RuleConfig, period: str) -> Callable[[pd.DataFrame], pd.Series]:
    """True where a row keeps the rule (or a value it compares is null)."""
    if rule.within_period:
        month = Period.of(period)
        start, end = pd.Timestamp(month.start), pd.Timestamp(month.next().start)

        def inside(frame: pd.DataFrame) -> pd.Series:
            value = frame[rule.column]
            return ((value >= start) & (value < end)).fillna(False).astype(bool) | value.isna()
        return inside
    compare = RULE_OPERATORS[str(rule.op)]

    def compared(frame: pd.DataFrame) -> pd.Series:
        left, right = frame[rule.column], frame[str(rule.other)]
        return compare(left, right).fillna(False).astype(bool) | left.isna() | right.isna()
    return compared


def _extend(schema: pa.DataFrameSchema, dataset: DatasetConfig, period: str) -> pa.DataFrameSchema:
    import pandera.pandas as pa

    where = f"dataset {dataset.name!r}, key 'python_checks'"
    if dataset.python_checks_dir is not None and str(dataset.python_checks_dir) not in sys.path:
        # Beside the config: searched after the import path, which wins.
        sys.path.append(str(dataset.python_checks_dir))
    try:
        module = importlib.import_module(dataset.python_checks or "")
    except Exception as exc:
        raise ConfigError(f"{where}: cannot import {dataset.python_checks!r} ({type(exc).__name__}: {exc})") from None
    hook = getattr(module, EXTENSION_HOOK, None)
    if not callable(hook):
        raise ConfigError(f"{where}: module {dataset.python_checks!r} has no function "
                          f"{EXTENSION_HOOK}(schema, period)")
    extended = hook(schema, period)
    if not isinstance(extended, pa.DataFrameSchema):
        raise ConfigError(f"{where}: {dataset.python_checks}.{EXTENSION_HOOK} must return a DataFrameSchema, "
                          f"not {type(extended).__name__}")
    return extended

"""The value checks a column may carry, each declared once.

A check kind names its config key, the column types that take it, how its
YAML value is checked, the label the error log shows, and the vectorised
predicate over a typed column. The config parser (``domain.config``) and the
pandera schema (``domain.schema``) both read this registry, so adding a check
is one entry here. ``nullable`` and ``unique`` are not here: pandera has them
built in (as column options, not checks).
"""
from __future__ import annotations

import decimal
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

NUMERIC_TYPES = ("integer", "float", "decimal")
# ``severity: warn`` (a check's value written as {value: …, severity: warn}):
# its label carries this prefix, and a row failing only such checks is kept.
WARN = "warn"
WARN_PREFIX = "warn: "
Predicate = Callable[[pd.Series], pd.Series]


@dataclass(frozen=True)
class CheckKind:
    key: str
    types: tuple[str, ...] | None         # column types that take it; None: every type
    wrong_type: str                       # why another type may not carry it
    parse: Callable[[Any], Any]           # the YAML value, checked; ValueError(problem) if bad
    label: Callable[[Any], str]           # what meta.validation_errors shows as the check
    predicate: Callable[[Any, str], Predicate]  # (value, column type) → True where valid


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("expected a number")
    return value


def _length(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expected a whole number ≥ 0")
    return value


def _regex(value: Any) -> str:
    try:
        re.compile(value)
    except (re.error, TypeError) as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from None
    return str(value)


def _values(value: Any) -> tuple[Any, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list of allowed values")
    return tuple(value)


def typed_literal(value: Any, column_type: str) -> Any:
    """A value from YAML in the column's in-memory type."""
    if column_type == "string":
        return str(value)
    if column_type in ("date", "datetime"):
        return pd.Timestamp(value)
    if column_type == "decimal":
        # From its text: Decimal(0.1) would be 0.1000000000000000055...
        return decimal.Decimal(str(value))
    return value


def _isin(values: tuple[Any, ...], column_type: str) -> Predicate:
    allowed = [typed_literal(v, column_type) for v in values]
    return lambda s: s.isin(allowed)


def _bound(key: str, symbol: str, op: Callable[[Any, Any], Any]) -> CheckKind:
    return CheckKind(
        key, NUMERIC_TYPES, "only numeric columns take bounds, not {type}", _number,
        lambda bound: f"{symbol} {bound}",
        # The bound is bound as an argument: a closure over a loop variable
        # would see its last value.
        lambda bound, t: lambda s: op(s, typed_literal(bound, t)),
    )


REGISTRY: dict[str, CheckKind] = {kind.key: kind for kind in (
    CheckKind("isin", None, "", _values,
              lambda values: f"isin [{', '.join(str(v) for v in values)}]", _isin),
    CheckKind("regex", ("string",), "only string columns take a regex", _regex,
              lambda pattern: f"regex {pattern}",
              lambda pattern, _t: lambda s: s.str.fullmatch(pattern).astype(bool)),
    _bound("ge", "≥", np.greater_equal),
    _bound("gt", ">", np.greater),
    _bound("le", "≤", np.less_equal),
    _bound("lt", "<", np.less),
    CheckKind("min_length", ("string",), "only string columns take lengths", _length,
              lambda n: f"min_length {n}", lambda n, _t: lambda s: s.str.len() >= n),
    CheckKind("max_length", ("string",), "only string columns take lengths", _length,
              lambda n: f"max_length {n}", lambda n, _t: lambda s: s.str.len() <= n),
)}


def parse_check(key: str, value: Any, column_type: str) -> Any:
    """The checked value of one check key of a column; ValueError(problem) if bad."""
    kind = REGISTRY[key]
    if kind.types is not None and column_type not in kind.types:
        raise ValueError(kind.wrong_type.format(type=column_type))
    return kind.parse(value)


def value_checks(column_type: str, values: dict[str, Any],
                 warn: frozenset[str] = frozenset()) -> list[tuple[str, Predicate]]:
    """(label, predicate) of every check a column carries, in registry order;
    the labels of the checks in ``warn`` start with WARN_PREFIX."""
    return [
        ((WARN_PREFIX if key in warn else "") + kind.label(values[key]), kind.predicate(values[key], column_type))
        for key, kind in REGISTRY.items() if values.get(key) is not None
    ]


def is_warning(label: str) -> bool:
    """Whether a failure's check label is of a ``severity: warn`` check."""
    return label.startswith(WARN_PREFIX)

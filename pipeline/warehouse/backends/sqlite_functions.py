"""The functions translated SQL calls on SQLite (``warehouse.dialect``
writes the calls), with PostgreSQL's behaviour, and the decimal limits they
share with the translator.

Apart from ``dialect.py`` so that opening a SQLite engine (which registers
these on every connection) does not import sqlglot: the dashboard's first
page never translates a file."""
from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
import re
import sqlite3
from typing import Any

# Digits of a numeric SQLite holds exactly, as a scaled 64-bit integer (10**18 < 2**63).
MAX_DECIMAL_DIGITS = 18
_EXACT = decimal.Context(prec=80)


def _one_char(c: str, mapped: str) -> str:
    # PostgreSQL maps case one character at a time (glibc towupper): 'ß' stays.
    return mapped if len(mapped) == 1 else c


def pg_upper(value: str | None) -> str | None:
    return None if value is None else "".join(_one_char(c, c.upper()) for c in str(value))


def pg_lower(value: str | None) -> str | None:
    return None if value is None else "".join(_one_char(c, c.lower()) for c in str(value))


def initcap(value: str | None) -> str | None:
    """PostgreSQL's initcap: the first letter of each run of letters and
    digits upper-case, the rest lower-case ('2x' stays '2x', unlike str.title)."""
    if value is None:
        return None
    out, previous_alnum = [], False
    for c in str(value):
        out.append(_one_char(c, c.lower() if previous_alnum else c.upper()))
        previous_alnum = c.isalnum()
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _like_regex(pattern: str, insensitive: bool) -> re.Pattern[str]:
    parts, chars = [], iter(pattern)
    for c in chars:
        if c == "\\":  # PostgreSQL's default escape character
            escaped = next(chars, None)
            if escaped is None:
                raise ValueError("LIKE pattern must not end with escape character")
            parts.append(re.escape(escaped))
        else:
            parts.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
    return re.compile("".join(parts), re.DOTALL)


def pg_like(value: str | None, pattern: str | None, insensitive: int) -> int | None:
    """``value LIKE pattern`` (or ILIKE when ``insensitive``) as PostgreSQL does it."""
    if value is None or pattern is None:
        return None
    value, pattern = str(value), str(pattern)
    if insensitive:
        value, pattern = pg_lower(value) or "", pg_lower(pattern) or ""
    return int(_like_regex(pattern, bool(insensitive)).fullmatch(value) is not None)


def split_part(value: str | None, delimiter: str | None, field: int | None) -> str | None:
    if value is None or delimiter is None or field is None:
        return None
    if field == 0:
        raise ValueError("field position must not be zero")
    parts = [value] if delimiter == "" else str(value).split(delimiter)
    index = field - 1 if field > 0 else len(parts) + field
    return parts[index] if 0 <= index < len(parts) else ""


def _pad(value: str | None, length: int | None, fill: str | None, left: bool) -> str | None:
    if value is None or length is None or fill is None:
        return None
    # PostgreSQL truncates a longer string to the length, and pads with
    # nothing when the fill is empty.
    value = str(value)[: max(int(length), 0)]
    missing = max(int(length), 0) - len(value)
    if not fill or missing <= 0:
        return value
    pad = (fill * (missing // len(fill) + 1))[:missing]
    return pad + value if left else value + pad


def lpad(value: str | None, length: int | None, fill: str | None = " ") -> str | None:
    return _pad(value, length, fill, left=True)


def rpad(value: str | None, length: int | None, fill: str | None = " ") -> str | None:
    return _pad(value, length, fill, left=False)


def make_date(year: Any, month: Any, day: Any) -> str | None:
    if year is None or month is None or day is None:
        return None
    if not all(isinstance(v, int) for v in (year, month, day)):
        raise TypeError("make_date takes integers")
    return dt.date(year, month, day).isoformat()  # raises on an impossible date, as PostgreSQL does


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date_arith(op: str, a: Any, b: Any) -> Any:
    """PostgreSQL's date - date (days), date +/- integer (a date); any other
    arithmetic on text fails, as it does on PostgreSQL."""
    a_date = isinstance(a, str) and _ISO_DATE.fullmatch(a)
    b_date = isinstance(b, str) and _ISO_DATE.fullmatch(b)
    if op == "-" and a_date and b_date:
        return (dt.date.fromisoformat(a) - dt.date.fromisoformat(b)).days
    if op in "+-" and a_date and isinstance(b, int):
        return (dt.date.fromisoformat(a) + dt.timedelta(days=b if op == "+" else -b)).isoformat()
    if op == "+" and b_date and isinstance(a, int):
        return (dt.date.fromisoformat(b) + dt.timedelta(days=a)).isoformat()
    raise ValueError(f"{a!r} {op} {b!r} cannot be computed on SQLite as PostgreSQL would "
                     "(only date - date and date +/- integer are, on text)")


def pg_arith(op: str, a: Any, b: Any) -> Any:
    """a <op> b for operands of unknown type, as PostgreSQL computes it."""
    if a is None or b is None:
        return None
    if isinstance(a, (str, bytes)) or isinstance(b, (str, bytes)):
        return _date_arith(op, a, b)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if b == 0:
        raise ZeroDivisionError("division by zero")  # SQLite would return NULL
    both_int = isinstance(a, int) and isinstance(b, int)
    if op == "/":
        if not both_int:
            return a / b
        quotient = abs(a) // abs(b)  # integer division truncates towards zero
        return quotient if (a >= 0) == (b > 0) else -quotient
    if both_int:  # op == "%": the result takes the dividend's sign
        return (abs(a) % abs(b)) * (1 if a >= 0 else -1)
    return math.fmod(a, b)


class PgStringAgg:
    """string_agg(value, separator ORDER BY keys): called as
    pg_string_agg(value, separator, 'af,dl', key1, key2) where each spec is
    a(sc)/d(esc) and nulls f(irst)/l(ast)."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, Any, tuple[Any, ...]]] = []
        self.spec: list[str] = []

    def step(self, value: Any, separator: Any, spec: str, *keys: Any) -> None:
        self.spec = spec.split(",")
        if value is not None:  # PostgreSQL skips NULL values and their separators
            self.rows.append((value, separator, keys))

    def finalize(self) -> str | None:
        if not self.rows:
            return None
        ordered = sorted(self.rows, key=functools.cmp_to_key(self._compare))
        out = str(ordered[0][0])
        for value, separator, _ in ordered[1:]:
            out += ("" if separator is None else str(separator)) + str(value)
        return out

    def _compare(self, left: tuple, right: tuple) -> int:
        for spec, a, b in zip(self.spec, left[2], right[2]):
            if a is None or b is None:
                if a is None and b is None:
                    continue
                return (-1 if a is None else 1) * (1 if spec[1] == "f" else -1)
            if a != b:
                return (-1 if a < b else 1) * (1 if spec[0] == "a" else -1)
        return 0


_INT64 = 2 ** 63


def _stored(value: Any) -> int:
    """A numeric operand: the scaled integer the warehouse stores (warehouse.backends.sqlite)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"a numeric (decimal) value is stored as an integer, not {value!r}: rebuild the table")


def _checked(value: int) -> int:
    if not -_INT64 <= value < _INT64:
        raise ValueError("numeric value out of range: SQLite holds a numeric of at most 18 digits")
    return value


def pg_dec_arith(op: str, a: Any, b: Any) -> int | None:
    """+, - or * of two numerics (scaled integers, aligned by the translation);
    an error on overflow where SQLite alone would turn to a double."""
    if a is None or b is None:
        return None
    a, b = _stored(a), _stored(b)
    return _checked(a + b if op == "+" else a - b if op == "-" else a * b)


def pg_dec_scale(value: Any, places: int) -> int | None:
    """A numeric of scale s as one of scale s + places (exact)."""
    return None if value is None else _checked(_stored(value) * 10 ** places)


def pg_dec_round(value: Any, scale: int, places: int, precision: int) -> int | None:
    """round(value, places), or CAST(value AS numeric(precision, places)) when
    ``precision`` > 0: half away from zero, as PostgreSQL rounds a numeric.
    ``value`` is a numeric of ``scale`` (an integer) or text to parse."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and places <= scale:
        # Integer arithmetic (the common case, and 4x faster than Decimal).
        unit = 10 ** (scale - places)
        quotient, rest = divmod(abs(value), unit)
        rounded_int = (quotient + (2 * rest >= unit)) * (1 if value >= 0 else -1)
        if precision and abs(rounded_int) >= 10 ** precision:
            raise ValueError(f"numeric field overflow: {value} (scale {scale}) does not fit "
                             f"numeric({precision},{places})")
        return _checked(rounded_int)
    if isinstance(value, str):
        try:
            number = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            raise ValueError(f"invalid input syntax for type numeric: {value!r}") from None
    else:
        number = decimal.Decimal(_stored(value)).scaleb(-scale, context=_EXACT)
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a number SQLite can hold")
    rounded = number.quantize(decimal.Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_UP, context=_EXACT)
    if precision and abs(rounded) >= decimal.Decimal(10) ** (precision - places):
        raise ValueError(f"numeric field overflow: {number} does not fit numeric({precision},{places})")
    return _checked(int(rounded.scaleb(places, context=_EXACT)))


def pg_dec_text(value: Any, scale: int) -> str | None:
    """A numeric as exact text with its scale ('12.30')."""
    return None if value is None else format(decimal.Decimal(_stored(value)).scaleb(-scale, context=_EXACT), "f")


def pg_dec_float(value: Any, scale: int) -> float | None:
    """CAST(numeric AS double precision): the nearest double, as PostgreSQL."""
    return None if value is None else float(decimal.Decimal(_stored(value)).scaleb(-scale, context=_EXACT))


_SCALAR_FUNCTIONS: dict[str, tuple[int, Any]] = {
    "pg_upper": (1, pg_upper), "pg_lower": (1, pg_lower), "initcap": (1, initcap),
    "pg_like": (3, pg_like), "split_part": (3, split_part), "lpad": (-1, lpad), "rpad": (-1, rpad),
    "make_date": (3, make_date), "pg_arith": (3, pg_arith), "pg_dec_arith": (3, pg_dec_arith),
    "pg_dec_scale": (2, pg_dec_scale), "pg_dec_round": (4, pg_dec_round), "pg_dec_text": (2, pg_dec_text),
    "pg_dec_float": (2, pg_dec_float),
}


def register_sqlite_functions(dbapi_conn: sqlite3.Connection) -> None:
    """Register on a raw sqlite3 connection the functions translated SQL
    calls: all deterministic, so SQLite may use them in indexes and plans."""
    for name, (n_args, function) in _SCALAR_FUNCTIONS.items():
        dbapi_conn.create_function(name, n_args, function, deterministic=True)
    # sqlite3 offers no deterministic flag for aggregates (they are per group).
    dbapi_conn.create_aggregate("pg_string_agg", -1, PgStringAgg)  # type: ignore[arg-type]

"""Run the project's PostgreSQL-dialect .sql files on SQLite, or refuse them.

Transform and publish SQL is written for PostgreSQL. On SQLite it is parsed
with sqlglot, checked construct by construct against what this module knows
how to translate *exactly*, rewritten, and generated as SQLite SQL. Anything
else is refused with one line naming the file, the line and the construct:
a refused file is a clear error, a silently different result is a wrong
report.

Values on SQLite follow the warehouse's storage (SQLAlchemy types): dates
are 'YYYY-MM-DD' text, timestamps 'YYYY-MM-DD HH:MM:SS[.ffffff]' text,
booleans 0/1. The translations below rely on that.

sqlglot alone is not enough: with ErrorLevel.RAISE it still emits SQL that
SQLite runs with another meaning (CAST(ts AS DATE), LIKE, EXTRACT,
TIMESTAMP_TRUNC, intervals), so only an allow-list of constructs passes.
"""
from __future__ import annotations

import datetime as dt
import functools
import math
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import sqlglot
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError, TokenError

from pipeline.errors import SqlNotPortable

DIALECTS = ("postgresql", "sqlite")


class _WorkbenchPostgres(Postgres):
    """PostgreSQL as sqlglot reads it, except that to_char stays a plain
    call: sqlglot rewrites its format into strftime codes and drops what it
    does not know, which would hide patterns we must refuse."""

    class Parser(Postgres.Parser):  # type: ignore[valid-type,misc]
        FUNCTIONS: ClassVar[dict[str, Any]] = {k: v for k, v in Postgres.Parser.FUNCTIONS.items() if k != "TO_CHAR"}


# Kinds of value, as far as they can be known without the tables' schema.
TEXT, INT, NUM, DATE, TS = "text", "int", "num", "date", "ts"
NUMERIC_KINDS = (INT, NUM)


@dataclass
class _Source:
    """What a refusal needs to name its place: file name and original text."""

    name: str
    text: str

    def refuse(self, node: exp.Expression | None, construct: str, why: str) -> SqlNotPortable:
        line = _line_of(node, construct, self.text)
        return SqlNotPortable(
            f"{self.name}: line {line}: {construct} cannot be run on SQLite faithfully ({why})"
        )


def translate(sql: str, *, source: Path | str, dialect: str) -> str:
    """``sql`` (PostgreSQL) for ``dialect``: unchanged for "postgresql" once
    it parses, translated for "sqlite"; raises SqlNotPortable otherwise."""
    src = _Source(Path(source).name, sql)
    if dialect not in DIALECTS:
        raise SqlNotPortable(f"{src.name}: unknown warehouse dialect {dialect!r} (use one of {', '.join(DIALECTS)})")
    statements = _parse(src)
    if dialect == "postgresql":
        return sql
    out = []
    for statement in statements:
        translated = _Translator(src, statement).statement()
        try:
            out.append(translated.sql(dialect="sqlite", unsupported_level=ErrorLevel.RAISE, pretty=True))
        except SqlglotError as exc:  # the generator's own refusals
            raise src.refuse(statement, "statement", _first_line(exc)) from None
    return ";\n".join(out)


def check_file(path: Path, dialect: str) -> None:
    """Read a .sql file and raise SqlNotPortable if it cannot run on ``dialect``."""
    translate(Path(path).read_text(encoding="utf-8"), source=path, dialect=dialect)


def _parse(src: _Source) -> list[exp.Expression]:
    try:
        parsed = sqlglot.parse(src.text, read=_WorkbenchPostgres, error_level=ErrorLevel.RAISE)
    except ParseError as exc:
        errors = exc.errors[0] if exc.errors else {}
        line = errors.get("line") or 1
        why = errors.get("description") or _first_line(exc)
        raise SqlNotPortable(f"{src.name}: line {line}: SQL cannot be parsed as PostgreSQL ({why})") from None
    except TokenError as exc:
        raise SqlNotPortable(f"{src.name}: line 1: SQL cannot be parsed as PostgreSQL ({_first_line(exc)})") from None
    statements = [s for s in parsed if s is not None]
    if not statements:
        raise SqlNotPortable(f"{src.name}: line 1: the file holds no SQL statement")
    return statements  # type: ignore[return-value]


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _line_of(node: exp.Expression | None, construct: str, text: str) -> int:
    """The line of ``node`` in the original text. sqlglot records positions
    on identifiers, literals and named calls only, so fall back to the
    earliest position inside the node, then to the construct's keyword."""
    if node is not None:
        lines = [n.meta["line"] for n in node.walk() if isinstance(n, exp.Expression) and "line" in n.meta]
        if "line" in node.meta:
            return int(node.meta["line"])
        if lines:
            return int(min(lines))
    word = construct.split("(")[0].split()[0].lower() if construct.strip() else ""
    for number, line in enumerate(text.splitlines(), start=1):
        code = line.split("--")[0].lower()
        if word and word in code:
            return number
    return 1


def kind_of_type(data_type: exp.DataType) -> str | None:
    """The kind a CAST target produces on SQLite after translation."""
    t = exp.DataType.Type
    return {
        t.DATE: DATE, t.TIMESTAMP: TS, t.INT: INT, t.BIGINT: INT, t.SMALLINT: INT,
        t.DECIMAL: NUM, t.DOUBLE: NUM, t.TEXT: TEXT, t.VARCHAR: TEXT,
    }.get(data_type.this)


def literal_value(node: Any) -> Any:
    """A literal's Python value (string or number), else None."""
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        value = literal_value(node.this)
        return -value if value is not None else None
    if not isinstance(node, exp.Literal):
        return None
    if node.is_string:
        return node.this
    try:
        return int(node.this)
    except ValueError:
        return float(node.this)


# --------------------------------------------------------------------------
# Building SQLite expressions
# --------------------------------------------------------------------------
def _call(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _s(value: str) -> exp.Expression:
    return exp.Literal.string(value)


def _cat(*parts: exp.Expression) -> exp.Expression:
    out = parts[0]
    for part in parts[1:]:
        out = exp.DPipe(this=out, expression=part, safe=True)
    return exp.Paren(this=out)


def _cast(node: exp.Expression, sqlite_type: str) -> exp.Expression:
    return exp.Cast(this=node, to=exp.DataType.build(sqlite_type))


def _fraction(x: exp.Expression) -> exp.Expression:
    """The '.ffffff' tail of a stored timestamp ('' when there is none):
    SQLite's own date functions keep milliseconds only."""
    has_dot = exp.GT(this=_call("instr", x.copy(), _s(".")), expression=exp.Literal.number(0))
    tail = _call("substr", x.copy(), _call("instr", x.copy(), _s(".")))
    return exp.Case(ifs=[exp.If(this=has_dot, true=tail)], default=_s(""))


def _timestamp_text(x: exp.Expression, *modifiers: exp.Expression) -> exp.Expression:
    """'YYYY-MM-DD HH:MM:SS' plus the original fraction, like a stored timestamp."""
    return _cat(_call("strftime", _s("%Y-%m-%d %H:%M:%S"), x.copy(), *modifiers), _fraction(x))


def _int_part(fmt: str, x: exp.Expression) -> exp.Expression:
    return _cast(_call("strftime", _s(fmt), x.copy()), "INTEGER")


# to_char patterns mapped to strftime; longer tokens first so that SSSS,
# DDD and HH24 are not read as SS, DD and HH.
_TO_CHAR_TOKENS = ("SSSSS", "SSSS", "HH24", "YYYY", "DDD", "MM", "DD", "MI", "SS")
_TO_CHAR_MAP = {"YYYY": "%Y", "MM": "%m", "DD": "%d", "HH24": "%H", "MI": "%M", "SS": "%S"}
_TO_CHAR_LITERALS = set(" -/:.,_")


def to_char_strftime(pattern: str) -> str | None:
    """The strftime format meaning exactly ``pattern``, or None."""
    out, i = [], 0
    while i < len(pattern):
        token = next((t for t in _TO_CHAR_TOKENS if pattern.startswith(t, i)), None)
        if token is not None and token in _TO_CHAR_MAP:
            out.append(_TO_CHAR_MAP[token])
            i += len(token)
        elif token is None and pattern[i] in _TO_CHAR_LITERALS:
            out.append(pattern[i])
            i += 1
        else:  # a pattern we do not map (Mon, Day, FM, HH, SSSS, digits...)
            return None
    return "".join(out)


_TRUNC_FORMATS = {
    "year": "%Y-01-01 00:00:00", "month": "%Y-%m-01 00:00:00", "day": "%Y-%m-%d 00:00:00",
    "hour": "%Y-%m-%d %H:00:00", "minute": "%Y-%m-%d %H:%M:00", "second": "%Y-%m-%d %H:%M:%S",
}
_EXTRACT_FORMATS = {"year": "%Y", "month": "%m", "day": "%d", "hour": "%H", "minute": "%M", "doy": "%j", "dow": "%w"}
_INTERVAL_UNITS = {"day": ("days", 1), "week": ("days", 7), "hour": ("hours", 1),
                   "minute": ("minutes", 1), "second": ("seconds", 1), "month": ("months", 1),
                   "year": ("months", 12)}
_ARITH_OPS = {exp.Add: "+", exp.Sub: "-", exp.Div: "/", exp.Mod: "%"}


def _unit(node: Any) -> str:
    """A date part's name, lower-case and singular ('MONTHS' -> 'month')."""
    name = node.name if isinstance(node, exp.Expression) else str(node or "")
    name = name.lower()
    return name[:-1] if name.endswith("s") and name not in ("s",) else name


# --------------------------------------------------------------------------
# The translator: checks each construct against what it can translate
# exactly, and rewrites it in place (children first).
# --------------------------------------------------------------------------
# Constructs that mean the same on SQLite as sqlglot writes them, once their
# children are translated; the value is the kind they produce (None: unknown).
_PASS: dict[type, str | None] = {
    **dict.fromkeys((exp.Select, exp.From, exp.Where, exp.Group, exp.Having, exp.Order,
                     exp.Ordered, exp.Limit, exp.Offset, exp.Join, exp.Alias, exp.TableAlias,
                     exp.Tuple, exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE,
                     exp.LT, exp.LTE, exp.Is, exp.In, exp.Between, exp.Case, exp.If,
                     exp.Coalesce, exp.Nullif, exp.Min, exp.Max, exp.Window, exp.WindowSpec,
                     exp.Lag, exp.Lead, exp.FirstValue, exp.LastValue, exp.Filter, exp.With,
                     exp.CTE, exp.Subquery, exp.Union, exp.Except, exp.Intersect, exp.Exists,
                     exp.Abs, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Column, exp.Table,
                     exp.Identifier, exp.Star, exp.Null, exp.Boolean, exp.Placeholder,
                     exp.Mul)),
    **dict.fromkeys((exp.Count, exp.RowNumber, exp.Rank, exp.DenseRank, exp.Length,
                     exp.StrPosition), INT),
    **dict.fromkeys((exp.Sum, exp.Avg), NUM),
    **dict.fromkeys((exp.DPipe, exp.Replace, exp.Trim), TEXT),
}
# Leaves: nothing below them needs translating.
_LEAVES = (exp.Column, exp.Table, exp.Identifier, exp.Star, exp.Null, exp.Boolean, exp.Placeholder)
_STATEMENTS = (exp.Select, exp.Union, exp.Except, exp.Intersect)


class _Translator:
    """One statement: ``statement()`` returns its SQLite form or raises."""

    def __init__(self, src: _Source, root: exp.Expression) -> None:
        self.src, self.root = src, root
        # Line of every original node, computed before anything is replaced
        # (replacements carry no positions). Keep the nodes alive so that
        # their ids stay unique.
        self.nodes = list(root.walk())
        self.lines: dict[int, int] = {}
        for node in reversed(self.nodes):  # children before parents
            lines = [self.lines[id(c)] for c in node.iter_expressions() if id(c) in self.lines]
            if "line" in node.meta:
                lines.append(int(node.meta["line"]))
            if lines:
                self.lines[id(node)] = min(lines)

    def refuse(self, node: exp.Expression, construct: str, why: str) -> SqlNotPortable:
        line = self.lines.get(id(node)) or _line_of(None, construct, self.src.text)
        return SqlNotPortable(
            f"{self.src.name}: line {line}: {construct} cannot be run on SQLite faithfully ({why})"
        )

    def statement(self) -> exp.Expression:
        if not isinstance(self.root, _STATEMENTS):
            raise self.refuse(self.root, f"{self.root.key.upper()} statement",
                              "only queries (SELECT, WITH, UNION) are translated")
        return self.tr(self.root)[0]

    def tr(self, node: exp.Expression) -> tuple[exp.Expression, str | None]:
        """(SQLite form of ``node``, its kind)."""
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            return handler(self, node)
        if type(node) in _PASS:
            return self.children(node), _PASS[type(node)]
        if isinstance(node, exp.Literal):
            return node, _literal_kind(node)
        raise self.refuse(node, _construct(node), "not among the constructs translated for SQLite")

    def children(self, node: exp.Expression) -> exp.Expression:
        """Translate ``node``'s children in place."""
        if isinstance(node, _LEAVES):
            return node
        for key, value in list(node.args.items()):
            if isinstance(value, exp.Expression):
                node.set(key, self.tr(value)[0])
            elif isinstance(value, list) and any(isinstance(v, exp.Expression) for v in value):
                node.set(key, [self.tr(v)[0] if isinstance(v, exp.Expression) else v for v in value])
        return node


def _literal_kind(node: exp.Literal) -> str:
    if node.is_string:
        return TEXT
    return INT if isinstance(literal_value(node), int) else NUM


def _construct(node: exp.Expression) -> str:
    """How a refusal names a construct: a function by its name, else its SQL."""
    if isinstance(node, exp.Anonymous):
        return f"{node.name}()"
    if isinstance(node, exp.Func) and not isinstance(node, (exp.Binary, exp.Unary)):
        return f"{node.sql_name().lower()}()"
    text = " ".join(node.sql(dialect="postgres").split())
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------
# Handlers: one per construct that needs a check or a rewrite.
# --------------------------------------------------------------------------
Result = tuple[exp.Expression, Any]


def _h_cast(t: _Translator, node: exp.Cast) -> Result:
    to = node.to
    target = kind_of_type(to)
    name = f"CAST(... AS {to.sql(dialect='postgres')})"
    if target is None or to.expressions:
        raise t.refuse(node, name, "SQLite has no such type, or would not apply its length/precision")
    x, kind = t.tr(node.this)
    value = literal_value(node.this)
    if target == DATE:
        if isinstance(value, str) and _call_value("date", value) is None:
            raise t.refuse(node, name, f"{value!r} is not an ISO date SQLite can read")
        return _call("date", x), DATE
    if target == TS:
        return _timestamp_text(x), TS
    if target == INT:
        if kind == INT:
            return x, INT
        if kind != TEXT:
            raise t.refuse(node, name, "PostgreSQL rounds a fractional value, SQLite truncates it; "
                                       "cast text or integer expressions only")
        return _cast(x, "INTEGER"), INT
    if target == NUM:
        # SQLite's NUMERIC affinity turns 7.0 into the integer 7 (then 7/2 = 3).
        return _cast(x, "REAL"), NUM
    if kind not in (TEXT, INT, DATE):  # target TEXT
        raise t.refuse(node, name, "numbers and timestamps are written as text differently")
    return _cast(x, "TEXT"), TEXT


def _call_value(function: str, value: str) -> Any:
    """Evaluate one SQLite built-in on a literal, to check it at translate time."""
    conn = sqlite3.connect(":memory:")
    try:
        return conn.execute(f"SELECT {function}(?)", (value,)).fetchone()[0]
    finally:
        conn.close()


def _h_arith(t: _Translator, node: Any) -> Result:  # an exp.Binary
    op = _ARITH_OPS[type(node)]
    right = node.expression
    if isinstance(right, exp.Interval) and op in "+-":
        return _interval_arith(t, node, op)
    if isinstance(node.this, exp.Interval) or isinstance(right, exp.Interval):
        raise t.refuse(node, "interval arithmetic", "only <date or timestamp> +/- INTERVAL '<n> <unit>' is translated")
    a, ka = t.tr(node.this)
    b, kb = t.tr(right)
    divisor = literal_value(right)
    safe_divisor = op not in "/%" or (isinstance(divisor, (int, float)) and divisor != 0)
    if ka in NUMERIC_KINDS and kb in NUMERIC_KINDS and safe_divisor and op != "%":
        node.set("this", a)
        node.set("expression", b)
        return node, INT if ka == kb == INT else NUM
    # Operands of unknown type may be dates ('2018-01-31' - 1 is 2017 on
    # SQLite) and a zero divisor gives NULL on SQLite: pg_arith does what
    # PostgreSQL does, or fails the statement.
    return _call("pg_arith", _s(op), a, b), None


def _interval_arith(t: _Translator, node: Any, op: str) -> Result:  # an exp.Binary
    interval = node.expression
    text = f"{interval.this.name} {interval.text('unit')}".strip().lower()
    parts = text.split()
    construct = f"INTERVAL '{text}'"
    if len(parts) != 2 or not parts[0].lstrip("-").isdigit() or _unit(parts[1]) not in _INTERVAL_UNITS:
        raise t.refuse(node, construct, "only one whole number of days, weeks, hours, minutes, "
                                        "seconds, months or years is translated")
    unit, factor = _INTERVAL_UNITS[_unit(parts[1])]
    n = int(parts[0]) * factor * (1 if op == "+" else -1)
    x, _ = t.tr(node.this)
    if unit != "months":
        return _timestamp_text(x, _s(f"{n:+d} {unit}")), TS
    # PostgreSQL keeps the day of month, clamped to the target month's last
    # day ('2018-01-31' + 1 month = '2018-02-28'); SQLite would overflow
    # into March, so take the smaller of the two candidate dates.
    day_offset = _cat(_s("+"), exp.Paren(this=exp.Sub(this=_int_part("%d", x), expression=exp.Literal.number(1))),
                      _s(" days"))
    kept = _call("date", x.copy(), _s("start of month"), _s(f"{n:+d} months"), day_offset)
    last = _call("date", x.copy(), _s("start of month"), _s(f"{n + 1:+d} months"), _s("-1 day"))
    return _cat(_call("min", kept, last), _call("strftime", _s(" %H:%M:%S"), x.copy()), _fraction(x)), TS


def _h_like(t: _Translator, node: exp.Like | exp.ILike) -> Result:
    # SQLite's LIKE ignores ASCII case and only ASCII case: PostgreSQL's LIKE
    # is case-sensitive, its ILIKE folds all letters.
    a, _ = t.tr(node.this)
    b, _ = t.tr(node.expression)
    out = _call("pg_like", a, b, exp.Literal.number(1 if isinstance(node, exp.ILike) else 0))
    return (exp.Not(this=out) if node.args.get("negate") else out), None


def _h_anonymous(t: _Translator, node: exp.Anonymous) -> Result:
    name = node.name.lower()
    if name == "to_char":
        return _to_char(t, node)
    if name == "make_date" and len(node.expressions) == 3:
        return _call("make_date", *(t.tr(a)[0] for a in node.expressions)), DATE
    why = {"age": "SQLite has no interval type for its years/months/days result"}.get(
        name, "SQLite has no such function and it is not among those translated")
    raise t.refuse(node, f"{name}()", why)


def _to_char(t: _Translator, node: exp.Anonymous) -> Result:
    args = node.expressions
    pattern = literal_value(args[1]) if len(args) == 2 else None
    if not isinstance(pattern, str):
        raise t.refuse(node, "to_char()", "only to_char(<date or timestamp>, '<literal pattern>') is translated")
    fmt = to_char_strftime(pattern)
    if fmt is None:
        raise t.refuse(node, f"to_char pattern '{pattern}'", "only YYYY, MM, DD, HH24, MI, SS and "
                                                         "the separators - / : . , _ space are mapped exactly")
    return _call("strftime", _s(fmt), t.tr(args[0])[0]), TEXT


def _h_text_function(t: _Translator, node: exp.Func) -> Result:
    """Functions registered by register_sqlite_functions with PostgreSQL's
    behaviour (SQLite's upper/lower only know ASCII; it lacks the others)."""
    if isinstance(node, exp.Pad):
        name = "lpad" if node.args.get("is_left") else "rpad"
        args = [node.this, node.expression] + ([node.args["fill_pattern"]] if node.args.get("fill_pattern") else [])
    elif isinstance(node, exp.SplitPart):
        name, args = "split_part", [node.this, node.args["delimiter"], node.args["part_index"]]
    else:
        name = {exp.Upper: "pg_upper", exp.Lower: "pg_lower", exp.Initcap: "initcap"}[type(node)]
        args = [node.this]
    return _call(name, *(t.tr(a)[0] for a in args)), TEXT


def _h_substring(t: _Translator, node: exp.Substring) -> Result:
    start, length = literal_value(node.args.get("start")), node.args.get("length")
    count = literal_value(length) if length is not None else 0
    if not (isinstance(start, int) and start >= 1 and isinstance(count, int) and count >= 0):
        raise t.refuse(node, "substring()", "SQLite counts a start below 1 from the end of the string; "
                                            "only literal start >= 1 and length >= 0 are translated")
    args = [t.tr(node.this)[0], exp.Literal.number(start)] + ([exp.Literal.number(count)] if length is not None else [])
    return _call("substr", *args), TEXT


def _h_trunc(t: _Translator, node: exp.Expression) -> Result:
    unit = _unit(node.args.get("unit"))
    x, _ = t.tr(node.this)
    if unit in _TRUNC_FORMATS:
        return _call("strftime", _s(_TRUNC_FORMATS[unit]), x), TS
    if unit == "week":  # PostgreSQL weeks start on Monday ('weekday 1' moves forward)
        return _call("strftime", _s("%Y-%m-%d 00:00:00"), x, _s("-6 days"), _s("weekday 1")), TS
    if unit == "quarter":
        month = exp.Add(this=exp.Mul(this=exp.Div(this=exp.Paren(this=exp.Sub(
            this=_int_part("%m", x), expression=exp.Literal.number(1))), expression=exp.Literal.number(3), typed=True),
            expression=exp.Literal.number(3)), expression=exp.Literal.number(1))
        return _cat(_call("strftime", _s("%Y-"), x.copy()), _call("printf", _s("%02d"), month),
                    _s("-01 00:00:00")), TS
    raise t.refuse(node, f"date_trunc('{unit}')", "only year, quarter, month, week, day, hour, "
                                                  "minute and second are translated")


def _h_extract(t: _Translator, node: exp.Extract) -> Result:
    field = _unit(node.this)
    x, _ = t.tr(node.expression)
    if field in _EXTRACT_FORMATS:
        return _int_part(_EXTRACT_FORMATS[field], x), INT
    if field == "quarter":
        month_plus_2 = exp.Paren(this=exp.Add(this=_int_part("%m", x), expression=exp.Literal.number(2)))
        return exp.Paren(this=exp.Div(this=month_plus_2, expression=exp.Literal.number(3), typed=True)), INT
    if field == "isodow":
        return exp.Paren(this=exp.Add(this=exp.Mod(this=exp.Paren(this=exp.Add(
            this=_int_part("%w", x), expression=exp.Literal.number(6))), expression=exp.Literal.number(7)),
            expression=exp.Literal.number(1))), INT
    if field in ("second", "epoch"):
        # Whole seconds from strftime plus the stored fraction, read as one
        # number so that microseconds are kept (SQLite's %f keeps milliseconds).
        whole = _call("strftime", _s("%S" if field == "second" else "%s"), x)
        return _cast(_cat(whole, _fraction(x)), "REAL"), NUM
    raise t.refuse(node, f"EXTRACT({field.upper()})", "only year, quarter, month, day, hour, minute, second, "
                                                      "dow, isodow, doy and epoch are translated")


def _h_round(t: _Translator, node: exp.Round) -> Result:
    places = node.args.get("decimals")
    n = literal_value(places) if places is not None else None
    if not isinstance(n, int) or n < 0:
        raise t.refuse(node, "round()", "PostgreSQL rounds double precision half to even and accepts negative "
                                        "places, SQLite does neither; write round(<numeric>, <places >= 0>)")
    return _call("round", t.tr(node.this)[0], exp.Literal.number(n)), NUM


def _h_string_agg(t: _Translator, node: exp.GroupConcat) -> Result:
    order = node.this if isinstance(node.this, exp.Order) else None
    if order is None or isinstance(node.parent, exp.Window):
        raise t.refuse(node, "string_agg()", "the order of the parts is unspecified: "
                                             "write string_agg(<value>, <separator> ORDER BY ...)")
    if isinstance(order.this, exp.Distinct):
        raise t.refuse(node, "string_agg(DISTINCT ...)", "not translated")
    keys, spec = [], []
    for ordered in order.expressions:
        desc = bool(ordered.args.get("desc"))
        nulls_first = ordered.args.get("nulls_first")
        nulls_first = desc if nulls_first is None else bool(nulls_first)  # PostgreSQL's default
        spec.append(("d" if desc else "a") + ("f" if nulls_first else "l"))
        keys.append(t.tr(ordered.this)[0])
    value = t.tr(order.this)[0]
    separator = t.tr(node.args["separator"])[0] if node.args.get("separator") else exp.Null()
    return _call("pg_string_agg", value, separator, _s(",".join(spec)), *keys), TEXT


def _h_greatest(t: _Translator, node: exp.Greatest | exp.Least) -> Result:
    # PostgreSQL ignores NULL arguments; SQLite's multi-argument max/min
    # return NULL if any is NULL. COALESCE(arg_i, the others) is arg_i when
    # it is not NULL and some other non-NULL argument otherwise.
    args = [t.tr(a)[0] for a in [node.this, *node.expressions]]
    if len(args) == 1:
        return args[0], None
    firsts = [exp.Coalesce(this=a.copy(), expressions=[o.copy() for o in args if o is not a]) for a in args]
    return _call("max" if isinstance(node, exp.Greatest) else "min", *firsts), None


def _h_distinct(t: _Translator, node: exp.Distinct) -> Result:
    if node.args.get("on") is not None:
        raise t.refuse(node, "DISTINCT ON", "SQLite has no DISTINCT ON; use row_number() OVER (PARTITION BY ...)")
    return t.children(node), None


def _h_wrap(t: _Translator, node: exp.Paren | exp.Neg) -> Result:
    """( x ) and -x: the kind of x."""
    x, kind = t.tr(node.this)
    node.set("this", x)
    return node, kind


def _h_refuse(why: str, construct: str | None = None) -> Any:
    def handler(t: _Translator, node: exp.Expression) -> Result:
        raise t.refuse(node, construct or _construct(node), why)
    return handler


_HANDLERS: dict[type, Any] = {
    exp.Cast: _h_cast, exp.Add: _h_arith, exp.Sub: _h_arith, exp.Div: _h_arith, exp.Mod: _h_arith,
    exp.Like: _h_like, exp.ILike: _h_like, exp.Anonymous: _h_anonymous, exp.Upper: _h_text_function,
    exp.Lower: _h_text_function, exp.Initcap: _h_text_function, exp.Pad: _h_text_function,
    exp.SplitPart: _h_text_function, exp.Substring: _h_substring, exp.TimestampTrunc: _h_trunc,
    exp.DateTrunc: _h_trunc, exp.Extract: _h_extract, exp.Round: _h_round,
    exp.GroupConcat: _h_string_agg, exp.Greatest: _h_greatest, exp.Least: _h_greatest,
    exp.Distinct: _h_distinct, exp.Paren: _h_wrap, exp.Neg: _h_wrap,
    exp.Escape: _h_refuse("custom LIKE escape characters are not translated", "LIKE ... ESCAPE"),
    exp.Interval: _h_refuse("only <date or timestamp> +/- INTERVAL '<n> <unit>' is translated"),
    exp.CurrentDate: _h_refuse("depends on the session time zone", "current_date"),
    exp.CurrentTimestamp: _h_refuse("depends on the session time zone", "now()"),
}


# --------------------------------------------------------------------------
# Functions the translated SQL calls on SQLite, with PostgreSQL's behaviour
# --------------------------------------------------------------------------
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


_SCALAR_FUNCTIONS: dict[str, tuple[int, Any]] = {
    "pg_upper": (1, pg_upper), "pg_lower": (1, pg_lower), "initcap": (1, initcap),
    "pg_like": (3, pg_like), "split_part": (3, split_part), "lpad": (-1, lpad), "rpad": (-1, rpad),
    "make_date": (3, make_date), "pg_arith": (3, pg_arith),
}


def register_sqlite_functions(dbapi_conn: sqlite3.Connection) -> None:
    """Register on a raw sqlite3 connection the functions translated SQL
    calls: all deterministic, so SQLite may use them in indexes and plans."""
    for name, (n_args, function) in _SCALAR_FUNCTIONS.items():
        dbapi_conn.create_function(name, n_args, function, deterministic=True)
    # sqlite3 offers no deterministic flag for aggregates (they are per group).
    dbapi_conn.create_aggregate("pg_string_agg", -1, PgStringAgg)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Result column types, as PostgreSQL would type them
# --------------------------------------------------------------------------
def output_types(sql: str, schema: dict[str, dict[str, dict[str, str]]]) -> dict[str, exp.DataType | None]:
    """The type of each output column of the (last) query in ``sql``, by
    name, annotated by sqlglot from ``schema`` ({schema: {table: {column:
    type}}}); None where it cannot tell. The same for both warehouses, since
    it is read from the SQL, not from what a driver returns."""
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify

    try:
        statements = [s for s in sqlglot.parse(sql, read=_WorkbenchPostgres) if s is not None]
        if not statements or not isinstance(statements[-1], exp.Query):
            return {}
        tables: dict[str, object] = dict(schema)
        tree = qualify(statements[-1], schema=tables, dialect="postgres", validate_qualify_columns=False)
        tree = annotate_types(tree, schema=tables, dialect="postgres")
    except Exception:  # noqa: BLE001 - typing is best effort: the values still type the columns
        return {}
    out: dict[str, exp.DataType | None] = {}
    for select in tree.selects:
        data_type = select.type
        known = data_type is not None and data_type.this not in (exp.DataType.Type.UNKNOWN, exp.DataType.Type.NULL)
        out[select.alias_or_name] = data_type if known else None
    return out


def type_name(data_type: exp.DataType | None) -> str:
    """A type as the .sql files' own dialect (PostgreSQL) spells it."""
    return data_type.sql(dialect="postgres") if data_type is not None else "UNKNOWN"


def tables_read(sql: str, schema: str) -> set[str]:
    """The tables of ``schema`` a PostgreSQL query reads (by the parser, so a
    comment, a string or ``stage.citizens_archive`` never counts as
    ``stage.citizens``, and ``stage."citizens"`` does)."""
    found: set[str] = set()
    for statement in sqlglot.parse(sql, read="postgres"):
        if statement is not None:
            found |= {t.name for t in statement.find_all(exp.Table) if t.db == schema}
    return found

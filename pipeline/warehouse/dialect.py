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

import decimal
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import sqlglot
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError, TokenError

from pipeline.errors import SqlNotPortable
from pipeline.warehouse.backends.sqlite_functions import (  # noqa: F401 (names this module has always offered)
    _EXACT,
    _SCALAR_FUNCTIONS,
    MAX_DECIMAL_DIGITS,
    register_sqlite_functions,
)

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


@dataclass(frozen=True)
class Dec:
    """The kind of a numeric (decimal) expression on SQLite: a 64-bit
    integer counting units of 10**-scale, as the warehouse stores a
    ``decimal(p,s)`` column (warehouse.backends.sqlite.SqliteDecimal)."""

    scale: int


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


Schema = dict[str, dict[str, dict[str, str]]]  # {schema: {table: {column: PostgreSQL type}}}


def translate(sql: str, *, source: Path | str, dialect: str, schema: Schema | None = None) -> str:
    """``sql`` (PostgreSQL) for ``dialect``: unchanged for "postgresql" once
    it parses, translated for "sqlite"; raises SqlNotPortable otherwise.

    ``schema`` gives the column types of the tables the SQL reads: a
    statement reading a ``decimal`` column is typed with it (sqlglot's
    qualify and annotate_types) so that decimals stay exact on SQLite."""
    src = _Source(Path(source).name, sql)
    if dialect not in DIALECTS:
        raise SqlNotPortable(f"{src.name}: unknown warehouse dialect {dialect!r} (use one of {', '.join(DIALECTS)})")
    statements = _parse(src)
    if dialect == "postgresql":
        return sql
    out = []
    for statement in statements:
        translated = _Translator(src, statement, schema).statement()
        try:
            out.append(translated.sql(dialect="sqlite", unsupported_level=ErrorLevel.RAISE, pretty=True))
        except SqlglotError as exc:  # the generator's own refusals
            raise src.refuse(statement, "statement", _first_line(exc)) from None
    return ";\n".join(out)


def check_file(path: Path, dialect: str, schema: Schema | None = None) -> None:
    """Read a .sql file and raise SqlNotPortable if it cannot run on ``dialect``."""
    translate(Path(path).read_text(encoding="utf-8"), source=path, dialect=dialect, schema=schema)


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

    def __init__(self, src: _Source, root: exp.Expression, schema: Schema | None = None) -> None:
        self.typed = bool(schema) and (_reads_decimals(root, schema or {}) or _makes_decimals(root))
        # Outputs without an alias, by position: qualify names them _col_0...;
        # they get the name PostgreSQL gives them instead.
        self.unnamed: dict[int, str] = {}
        if self.typed and isinstance(root, exp.Select) and not any(
                isinstance(e, exp.Star) or isinstance(e, exp.Column) and isinstance(e.this, exp.Star)
                for e in root.expressions):
            self.unnamed = {i: _pg_output_name(e) for i, e in enumerate(root.expressions)
                            if not isinstance(e, (exp.Alias, exp.Column))}
        if self.typed:
            root = _annotated(src, root, schema or {})
        self.src, self.root = src, root
        # Typed statements: output kinds of each SELECT, columns of each
        # derived table (CTE or subquery) by alias, output aliases in scope.
        self.outputs: dict[int, list[tuple[str, Any]]] = {}
        self.derived: dict[str, dict[str, Any]] = {}
        self.scopes: list[dict[str, Any]] = []
        self.aliases = {t.alias_or_name: t.name for t in root.find_all(exp.Table) if not t.db}
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
        out = self.tr(self.root)[0]
        if isinstance(out, exp.Select):
            _decimal_outputs_as_text(self, out)
            _name_outputs(out, self.unnamed)
        return out

    def output_kinds(self) -> list[tuple[str, Any]]:
        """The kinds of the statement's output columns (after statement())."""
        return self.outputs.get(id(self.root), [])

    def tr(self, node: exp.Expression) -> tuple[exp.Expression, Any]:
        """(SQLite form of ``node``, its kind)."""
        out, kind = self._tr(node)
        parent = node.parent
        if isinstance(kind, Dec) and isinstance(parent, exp.Expression) and not isinstance(parent, _DEC_PARENTS):
            raise self.refuse(parent, _construct(parent), "a numeric (decimal) operand is not translated here")
        return out, kind

    def _tr(self, node: exp.Expression) -> tuple[exp.Expression, Any]:
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            return handler(self, node)
        if type(node) in _PASS:
            kinds: dict[str, Any] = {}
            out, kind = self.children(node, kinds), _PASS[type(node)]
            if isinstance(kinds.get("this"), Dec) and isinstance(node, _DEC_PROPAGATE):
                if isinstance(node, (exp.Lag, exp.Lead)) and node.args.get("default") is not None:
                    raise self.refuse(node, _construct(node), "a default for a numeric (decimal) is not translated")
                kind = kinds["this"]
            if isinstance(node, exp.Alias) and self.typed:
                kind = kinds.get("this")
            return out, kind
        if isinstance(node, exp.Literal):
            return node, _literal_kind(node)
        raise self.refuse(node, _construct(node), "not among the constructs translated for SQLite")

    def children(self, node: exp.Expression, kinds: dict[str, Any] | None = None) -> exp.Expression:
        """Translate ``node``'s children in place (their kinds into ``kinds``)."""
        if isinstance(node, _LEAVES):
            return node
        for key, value in list(node.args.items()):
            if isinstance(value, exp.Expression):
                out, kind = self.tr(value)
                node.set(key, out)
                if kinds is not None:
                    kinds[key] = kind
            elif isinstance(value, list) and any(isinstance(v, exp.Expression) for v in value):
                node.set(key, [self.tr(v)[0] if isinstance(v, exp.Expression) else v for v in value])
        return node

    def column_kind(self, node: exp.Column) -> Any:
        """A column's kind in a typed statement: decimal and integer columns
        of the schema's tables, and the kinds of derived tables' outputs."""
        if not self.typed:
            return None
        if not node.table:  # an output alias (ORDER BY total)
            for outputs in reversed(self.scopes):
                if node.name in outputs:
                    return outputs[node.name]
        source = self.derived.get(node.table) or self.derived.get(self.aliases.get(node.table, ""))
        kind = _type_kind(node.type)
        if source is not None:  # a CTE or subquery: what the translation made of it
            return source.get(node.name) or (kind if kind == INT else None)
        return kind


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
    if to.this == exp.DataType.Type.DECIMAL and len(to.expressions) in (1, 2):
        return _cast_to_decimal(t, node, name)
    if target is None or to.expressions:
        raise t.refuse(node, name, "SQLite has no such type, or would not apply its length/precision")
    x, kind = t.tr(node.this)
    if isinstance(kind, Dec):
        return _cast_decimal(t, node, name, x, kind)
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
    if isinstance(ka, Dec) or isinstance(kb, Dec):
        return _decimal_arith(t, node, op, (a, ka), (b, kb))
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
    x, kind = t.tr(node.this)
    if isinstance(kind, Dec):
        return _round_decimal(t, node, x, kind)
    n = literal_value(places) if places is not None else None
    if not isinstance(n, int) or n < 0:
        raise t.refuse(node, "round()", "PostgreSQL rounds double precision half to even and accepts negative "
                                        "places, SQLite does neither; write round(<numeric>, <places >= 0>)")
    return _call("round", x, exp.Literal.number(n)), NUM


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
    originals = [node.this, *node.expressions]
    translated = [t.tr(a) for a in originals]
    args, kind = [x for x, _ in translated], None
    if any(isinstance(k, Dec) for _, k in translated):
        args, kind = _align(t, node, originals, translated)
    if len(args) == 1:
        return args[0], kind
    firsts = [exp.Coalesce(this=a.copy(), expressions=[o.copy() for o in args if o is not a]) for a in args]
    return _call("max" if isinstance(node, exp.Greatest) else "min", *firsts), kind


def _h_distinct(t: _Translator, node: exp.Distinct) -> Result:
    if node.args.get("on") is not None:
        raise t.refuse(node, "DISTINCT ON", "SQLite has no DISTINCT ON; use row_number() OVER (PARTITION BY ...)")
    kinds = [t.tr(e) for e in node.expressions]
    node.set("expressions", [x for x, _ in kinds])
    return node, kinds[0][1] if len(kinds) == 1 else None


def _h_wrap(t: _Translator, node: exp.Paren | exp.Neg) -> Result:
    """( x ) and -x: the kind of x."""
    x, kind = t.tr(node.this)
    node.set("this", x)
    return node, kind


def _h_refuse(why: str, construct: str | None = None) -> Any:
    def handler(t: _Translator, node: exp.Expression) -> Result:
        raise t.refuse(node, construct or _construct(node), why)
    return handler


# --------------------------------------------------------------------------
# Decimals (numeric) on SQLite: scaled 64-bit integers. Each expression of
# kind Dec(s) holds value * 10**s; the translator aligns scales where
# PostgreSQL compares or adds numerics, and refuses what it cannot compute
# with PostgreSQL's exact result (division, avg, numeric to text).
# --------------------------------------------------------------------------
def _is_decimal_type(type_text: str) -> bool:
    return type_text.strip().upper().startswith(("DECIMAL", "NUMERIC"))


def _reads_decimals(root: exp.Expression, schema: Schema) -> bool:
    """Whether the statement reads a table of ``schema`` with a decimal column."""
    for table in root.find_all(exp.Table):
        columns = schema.get(table.db, {}).get(table.name, {})
        if any(_is_decimal_type(str(t)) for t in columns.values()):
            return True
    return False


def _makes_decimals(root: exp.Expression) -> bool:
    """Whether the statement casts to numeric(p,s) (a decimal of its own)."""
    return any(c.to.this == exp.DataType.Type.DECIMAL and c.to.expressions for c in root.find_all(exp.Cast))


def _annotated(src: _Source, root: exp.Expression, schema: Schema) -> exp.Expression:
    """The statement qualified (every column names its table, outputs are
    aliased) and typed by sqlglot from ``schema``."""
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify

    tables: dict[str, object] = dict(schema)
    try:
        # Identifiers stay unquoted: SQLite reads an unknown "column" as a string.
        tree = qualify(root, schema=tables, dialect="postgres", validate_qualify_columns=False,
                       quote_identifiers=False)
        return annotate_types(tree, schema=tables, dialect="postgres")
    except SqlglotError as exc:
        raise src.refuse(root, "statement", f"its column types cannot be determined: {_first_line(exc)}") from None


def _type_kind(data_type: exp.DataType | None) -> Any:
    """The kind of a schema column of type ``data_type`` (decimals and integers only)."""
    if data_type is None:
        return None
    t = exp.DataType.Type
    if data_type.this == t.DECIMAL:
        params = [int(p.this.this) for p in data_type.expressions if isinstance(p.this, exp.Literal)]
        return Dec(params[1] if len(params) == 2 else 0)
    return INT if data_type.this in (t.SMALLINT, t.INT, t.BIGINT) else None


def _exact_number(node: exp.Expression) -> decimal.Decimal | None:
    """A number literal's exact value (1.50 is Decimal('1.50')), else None."""
    if isinstance(node, exp.Neg):
        inner = _exact_number(node.this)
        return -inner if inner is not None else None
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return decimal.Decimal(node.this)
        except decimal.InvalidOperation:
            return None
    return None


def _scale_of(t: _Translator, node: exp.Expression, original: exp.Expression, kind: Any) -> int | None:
    """The scale an operand brings to a decimal operation (None: NULL)."""
    if isinstance(kind, Dec):
        return kind.scale
    number = _exact_number(original)
    if number is not None:
        return max(-int(number.as_tuple().exponent), 0)
    if kind == INT:
        return 0
    if isinstance(original, exp.Null):
        return None
    raise t.refuse(node, _construct(node), "a numeric (decimal) value is only combined with numerics, "
                                           "integers and number literals")


def _at_scale(original: exp.Expression, x: exp.Expression, kind: Any, scale: int | None, target: int) -> exp.Expression:
    """``x`` (of ``scale``) as an integer count of 10**-target."""
    number = _exact_number(original)
    if scale is None or scale == target and number is None:
        return x
    if number is not None and not isinstance(kind, Dec):
        return exp.Literal.number(int(number.scaleb(target, context=_EXACT)))
    return _call("pg_dec_scale", x, exp.Literal.number(target - scale))


def _align(t: _Translator, node: exp.Expression, originals: list[exp.Expression],
           translated: list[tuple[exp.Expression, Any]]) -> tuple[list[exp.Expression], Dec]:
    """Operands of a comparison, CASE, coalesce...: all at the largest scale."""
    scales = [_scale_of(t, node, o, k) for o, (_, k) in zip(originals, translated)]
    target = max([s for s in scales if s is not None] or [0])
    return [_at_scale(o, x, k, s, target) for o, (x, k), s in zip(originals, translated, scales)], Dec(target)


def _decimal_arith(t: _Translator, node: Any, op: str, a: tuple[exp.Expression, Any],
                   b: tuple[exp.Expression, Any]) -> Result:
    if op in "/%":
        raise t.refuse(node, f"numeric {op}", "PostgreSQL chooses the scale of a numeric quotient itself; "
                                              "use +, -, * and round(), or CAST to double precision first")
    originals = [node.this, node.expression]
    if op == "*":
        scales = [_scale_of(t, node, o, k) for o, (_, k) in zip(originals, (a, b))]
        if None in scales:
            return exp.Null(), Dec(0)
        operands = [_at_scale(o, x, k, s, s or 0) for o, (x, k), s in zip(originals, (a, b), scales)]
        return _call("pg_dec_arith", _s(op), *operands), Dec(sum(s or 0 for s in scales))
    operands, kind = _align(t, node, originals, [a, b])
    return _call("pg_dec_arith", _s(op), *operands), kind


def _h_mul(t: _Translator, node: exp.Mul) -> Result:
    a, b = t.tr(node.this), t.tr(node.expression)
    if isinstance(a[1], Dec) or isinstance(b[1], Dec):
        return _decimal_arith(t, node, "*", a, b)
    node.set("this", a[0])
    node.set("expression", b[0])
    return node, None


def _round_decimal(t: _Translator, node: exp.Round, x: exp.Expression, kind: Dec) -> Result:
    places = node.args.get("decimals")
    n = literal_value(places) if places is not None else 0
    if not isinstance(n, int) or n < 0:
        raise t.refuse(node, "round()", "only round(<numeric>) and round(<numeric>, <literal places >= 0>) "
                                        "are translated")
    if n >= kind.scale:  # PostgreSQL pads: round(1.25, 3) = 1.250
        return _at_scale(node.this, x, kind, kind.scale, n), Dec(n)
    return _call("pg_dec_round", x, exp.Literal.number(kind.scale), exp.Literal.number(n),
                 exp.Literal.number(0)), Dec(n)


def _cast_to_decimal(t: _Translator, node: exp.Cast, name: str) -> Result:
    """CAST(x AS numeric(p[,s])): rounded half away from zero to the scale,
    an error beyond the precision, as in PostgreSQL."""
    params = [int(p.this.this) for p in node.to.expressions if isinstance(p.this, exp.Literal)]
    precision, scale = params[0], params[1] if len(params) == 2 else 0
    if precision > MAX_DECIMAL_DIGITS:
        raise t.refuse(node, name, f"SQLite holds at most {MAX_DECIMAL_DIGITS} digits of a numeric")
    x, kind = t.tr(node.this)
    number = _exact_number(node.this)
    if number is not None:
        x, source = _s(str(number)), 0
    elif isinstance(kind, Dec):
        source = kind.scale
    elif kind in (INT, TEXT):
        source = 0
    else:
        raise t.refuse(node, name, "only numerics, integers, text and number literals are cast to numeric(p,s) "
                                   "(PostgreSQL converts a double precision value through 15 digits)")
    return _call("pg_dec_round", x, exp.Literal.number(source), exp.Literal.number(scale),
                 exp.Literal.number(precision)), Dec(scale)


def _cast_decimal(t: _Translator, node: exp.Cast, name: str, x: exp.Expression, kind: Dec) -> Result:
    """CAST of a numeric (decimal) to another type."""
    to = node.to.this
    types = exp.DataType.Type
    if to == types.DECIMAL:  # numeric without precision: the same value
        return x, kind
    if to in (types.INT, types.BIGINT, types.SMALLINT):  # PostgreSQL rounds half away from zero
        return _call("pg_dec_round", x, exp.Literal.number(kind.scale), exp.Literal.number(0),
                     exp.Literal.number(0)), INT
    if to == types.DOUBLE:
        return _call("pg_dec_float", x, exp.Literal.number(kind.scale)), NUM
    raise t.refuse(node, name, "a numeric (decimal) is cast to numeric, integer or double precision only "
                               "(PostgreSQL writes each numeric value as text with its own scale)")


def _decimal_outputs_as_text(t: _Translator, select: exp.Select) -> None:
    """The statement's decimal outputs as exact text ('12.30'): the reader
    types the column (query.py); an ORDER BY on such an output still sorts
    the numbers."""
    by_alias, by_position, outputs = {}, {}, []
    for i, (output, (name, kind)) in enumerate(zip(select.expressions, t.output_kinds()), start=1):
        if isinstance(kind, Dec):
            inner = output.this if isinstance(output, exp.Alias) else output
            by_alias[name], by_position[i] = inner, inner
            text = _call("pg_dec_text", inner.copy(), exp.Literal.number(kind.scale))
            output = exp.alias_(text, name, quoted=True)
        outputs.append(output)
    select.set("expressions", outputs)
    order = select.args.get("order")
    for ordered in order.expressions if order is not None else []:
        key = ordered.this
        position = literal_value(key) if isinstance(key, exp.Literal) else None
        if isinstance(key, exp.Column) and not key.table and key.name in by_alias:
            ordered.set("this", by_alias[key.name].copy())
        elif isinstance(position, int) and position in by_position:
            ordered.set("this", by_position[position].copy())


_PG_TYPE_NAMES = {exp.DataType.Type.DECIMAL: "numeric", exp.DataType.Type.INT: "int4", exp.DataType.Type.BIGINT: "int8",
                  exp.DataType.Type.DOUBLE: "float8", exp.DataType.Type.TEXT: "text", exp.DataType.Type.DATE: "date",
                  exp.DataType.Type.TIMESTAMP: "timestamp", exp.DataType.Type.VARCHAR: "varchar"}


def _pg_output_name(node: exp.Expression) -> str:
    """The name PostgreSQL gives an output without an alias (FigureColname):
    a function's name, a cast's operand's name, 'case', else '?column?'."""
    if isinstance(node, exp.Cast):
        inner = _pg_output_name(node.this)
        return inner if inner != "?column?" else _PG_TYPE_NAMES.get(node.to.this, inner)
    if isinstance(node, exp.Column):
        return node.name
    if isinstance(node, exp.Case):
        return "case"
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc)):
        return "date_trunc"
    if isinstance(node, exp.GroupConcat):
        return "string_agg"
    if isinstance(node, exp.Func) and not isinstance(node, (exp.Binary, exp.Unary)):
        return node.sql_name().lower()
    return "?column?"


def _name_outputs(select: exp.Select, names: dict[int, str]) -> None:
    """Give outputs that had no alias PostgreSQL's name; an ORDER BY on one
    names its expression instead."""
    order = select.args.get("order")
    for i, name in names.items():
        output = select.expressions[i] if i < len(select.expressions) else None
        if not isinstance(output, exp.Alias):
            continue
        for ordered in order.expressions if order is not None else []:
            key = ordered.this
            if isinstance(key, exp.Column) and not key.table and key.name == output.alias:
                inner = output.this
                if isinstance(inner, exp.Anonymous) and inner.name == "pg_dec_text":
                    inner = inner.expressions[0]
                ordered.set("this", inner.copy())
        output.set("alias", exp.to_identifier(name, quoted=True))


def _h_column(t: _Translator, node: exp.Column) -> Result:
    return node, t.column_kind(node)


def _h_select(t: _Translator, node: exp.Select) -> Result:
    """A SELECT: its sources first (their columns' kinds), then its outputs,
    whose aliases ORDER BY may name. Untyped statements too: a cast to
    numeric(p,s) makes a decimal there."""
    for key in ("with_", "from_", "joins"):
        value = node.args.get(key)
        if isinstance(value, exp.Expression):
            node.set(key, t.tr(value)[0])
        elif isinstance(value, list):
            node.set(key, [t.tr(v)[0] for v in value])
    outputs, translated = [], []
    for output in list(node.expressions):
        name = output.alias_or_name if isinstance(output, (exp.Alias, exp.Column)) else _pg_output_name(output)
        x, kind = t.tr(output)
        translated.append(x)
        outputs.append((name, kind))
    node.set("expressions", translated)
    t.outputs[id(node)] = outputs
    t.scopes.append(dict(outputs))
    try:
        for key, value in list(node.args.items()):
            if key in ("with_", "from_", "joins", "expressions"):
                continue
            if isinstance(value, exp.Expression):
                node.set(key, t.tr(value)[0])
            elif isinstance(value, list) and any(isinstance(v, exp.Expression) for v in value):
                node.set(key, [t.tr(v)[0] if isinstance(v, exp.Expression) else v for v in value])
    finally:
        t.scopes.pop()
    return node, None


def _h_derived(t: _Translator, node: exp.Subquery | exp.CTE) -> Result:
    """A CTE or subquery: its outputs' kinds become its columns' kinds; a
    scalar subquery has the kind of its one output."""
    t.children(node)
    outputs = t.outputs.get(id(node.this), [])
    if node.alias and not t.typed and any(isinstance(k, Dec) for _, k in outputs):
        raise t.refuse(node, "numeric(p,s) out of a subquery or CTE", "translated only with the tables' schema "
                                                                     "(as the pipeline and check give it)")
    if node.alias:
        t.derived[node.alias] = dict(outputs)
        return node, None
    return node, outputs[0][1] if isinstance(node, exp.Subquery) and len(outputs) == 1 else None


def _h_set_operation(t: _Translator, node: exp.Union | exp.Except | exp.Intersect) -> Result:
    t.children(node)
    for side in (node.this, node.expression):
        if any(isinstance(k, Dec) for _, k in t.outputs.get(id(side), [])):
            raise t.refuse(node, node.key.upper(), "numeric (decimal) columns of a set operation are not translated")
    t.outputs[id(node)] = t.outputs.get(id(node.this), [])
    return node, None


def _h_compare(t: _Translator, node: exp.Expression) -> Result:
    """=, <>, <, <=, >, >=, IS [NOT] DISTINCT FROM, BETWEEN, IN (list)."""
    keys = [k for k in ("this", "expression", "low", "high") if isinstance(node.args.get(k), exp.Expression)]
    originals = [node.args[k] for k in keys] + list(node.expressions)
    translated = [t.tr(o) for o in originals]
    if isinstance(node, exp.In) and node.args.get("query") is not None:
        node.set("query", t.tr(node.args["query"])[0])
    if any(isinstance(k, Dec) for _, k in translated):
        if isinstance(node, exp.In) and node.args.get("query") is not None:
            raise t.refuse(node, "IN (subquery)", "a numeric (decimal) IN a subquery is not translated")
        values, _ = _align(t, node, originals, translated)
    else:
        values = [x for x, _ in translated]
    for key, value in zip(keys, values):
        node.set(key, value)
    if node.expressions:
        node.set("expressions", values[len(keys):])
    return node, None


def _h_choice(t: _Translator, node: exp.Expression) -> Result:
    """coalesce, nullif and CASE: the values at one scale when one is a decimal."""
    if isinstance(node, exp.Case):
        if node.args.get("this") is not None:
            x, kind = t.tr(node.this)
            node.set("this", x)
            if isinstance(kind, Dec):
                raise t.refuse(node, "CASE <numeric> WHEN", "write CASE WHEN <numeric> = ... THEN")
        for branch in node.args.get("ifs") or []:
            branch.set("this", t.tr(branch.this)[0])
        slots: list[tuple[exp.Expression, str | tuple[str, int]]] = [(b, "true") for b in node.args.get("ifs") or []]
        slots.append((node, "default"))
    else:
        slots = [(node, "this"), (node, "expression")]
        slots += [(node, ("expressions", i)) for i in range(len(node.expressions))]
    present = [(owner, key) for owner, key in slots if _slot(owner, key) is not None]
    originals = [_slot(owner, key) for owner, key in present]
    translated = [t.tr(o) for o in originals]
    values, kind = [x for x, _ in translated], None
    if any(isinstance(k, Dec) for _, k in translated):
        values, kind = _align(t, node, originals, translated)
    listed = [v for (_, key), v in zip(present, values) if isinstance(key, tuple)]
    for (owner, key), value in zip(present, values):
        if not isinstance(key, tuple):
            owner.set(key, value)
    if listed:
        node.set("expressions", listed)
    return node, kind


def _slot(owner: exp.Expression, key: str | tuple[str, int]) -> Any:
    if isinstance(key, tuple):
        return owner.expressions[key[1]]
    value = owner.args.get(key)
    return value if isinstance(value, exp.Expression) else None


def _h_sum_avg(t: _Translator, node: exp.Sum | exp.Avg) -> Result:
    x, kind = t.tr(node.this)
    node.set("this", x)
    if isinstance(kind, Dec) and isinstance(node, exp.Avg):
        raise t.refuse(node, "avg()", "PostgreSQL chooses the scale of a numeric average itself; "
                                      "use sum() and count(), or avg(CAST(... AS double precision))")
    return node, kind if isinstance(kind, Dec) else NUM


# Parents that know what a decimal operand means (anything else refuses it).
_DEC_PARENTS = (
    exp.Alias, exp.Paren, exp.Neg, exp.Abs, exp.Min, exp.Max, exp.Sum, exp.Avg, exp.Count, exp.Distinct,
    exp.Filter, exp.Window, exp.Lag, exp.Lead, exp.FirstValue, exp.LastValue, exp.Subquery, exp.Ordered,
    exp.Group, exp.Select, exp.Cast, exp.Round, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.EQ, exp.NEQ,
    exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Between, exp.In, exp.Coalesce,
    exp.Nullif, exp.Case, exp.If, exp.Greatest, exp.Least, exp.Is,
)
# Pass-through constructs whose value is their first argument's.
_DEC_PROPAGATE = (exp.Alias, exp.Abs, exp.Min, exp.Max, exp.Filter, exp.Window, exp.Lag, exp.Lead,
                  exp.FirstValue, exp.LastValue)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
                exp.Between, exp.In)


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
    exp.Column: _h_column, exp.Select: _h_select, exp.Subquery: _h_derived, exp.CTE: _h_derived,
    exp.Union: _h_set_operation, exp.Except: _h_set_operation, exp.Intersect: _h_set_operation,
    exp.Coalesce: _h_choice, exp.Nullif: _h_choice, exp.Case: _h_choice, exp.Sum: _h_sum_avg,
    exp.Avg: _h_sum_avg, exp.Mul: _h_mul, **dict.fromkeys(_COMPARISONS, _h_compare),
}




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
    for name, scale in decimal_scales(sql, schema).items():
        out[name] = exp.DataType.build(f"DECIMAL(38, {scale})")
    return out


def decimal_scales(sql: str, schema: Schema) -> dict[str, int]:
    """The scale of each numeric (decimal) output of the (last) query, by
    PostgreSQL's rules (a sum keeps its scale, a product adds the scales,
    round(x, n) has n): what the translation computes on SQLite. {} when
    the query reads no decimal or cannot be translated."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=_WorkbenchPostgres) if s is not None]
        translator = _Translator(_Source("query.sql", sql), statements[-1], schema)  # type: ignore[arg-type]
        if not translator.typed:
            return {}
        translator.statement()
    except Exception:  # noqa: BLE001 - typing is best effort, as in output_types; translating refuses
        return {}
    return {name: kind.scale for name, kind in translator.output_kinds() if isinstance(kind, Dec)}


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

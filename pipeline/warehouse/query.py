"""Running a period's SELECT (a dataset's .sql file or a generated query) and
turning its result into Arrow, typed the same on PostgreSQL and SQLite.

A dataset's .sql file is PostgreSQL SQL; the warehouse's backend prepares it
(on SQLite: translated by ``warehouse.dialect``, or refused). Result columns
are typed, in this order, by the config column of the same name, by the type
PostgreSQL gives the expression (read from the SQL by ``dialect.output_types``,
so the same on both warehouses), and only then by the values returned.
"""
from __future__ import annotations

import decimal
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.domain.config import Config, DatasetConfig
from pipeline.domain.period import PERIOD_COLUMN, Period
from pipeline.domain.schema import arrow_schema
from pipeline.errors import ConfigError, SqlNotPortable, StepFailed, one_line
from pipeline.warehouse.backends import Backend, backend_of

if TYPE_CHECKING:
    from sqlglot import exp

# warehouse.dialect (and sqlglot) is imported by the functions that read SQL:
# the dashboard's pages import this module but never translate a file.

# Precision of a derived decimal column (a SUM can outgrow its input's).
DERIVED_DECIMAL_PRECISION = 38


@dataclass(frozen=True)
class SqlFile:
    """A dataset's .sql file as the warehouse runs it."""

    path: Path
    text: str                                   # prepared for the warehouse
    types: Mapping[str, pa.DataType] = field(default_factory=dict)  # output columns, from the SQL

    def clause(self) -> sa.TextClause:
        return sa.text(self.text)

    def error(self, exc: BaseException, backend: Backend) -> StepFailed:
        """A database error while running this file, naming it (and the line)."""
        line = backend.sql_error_line(exc, self.text)
        where = f"{self.path.name}: line {line}" if line else self.path.name
        return StepFailed(f"{where}: {one_line(exc)}")


def _prepared(text: str, path: Path, backend: Backend,
              schema: dict[str, dict[str, dict[str, str]]] | None = None) -> str:
    # ``schema`` types the statement, so decimals translate exactly on SQLite.
    try:
        return backend.prepare_sql(text, path, schema)
    except SqlNotPortable as exc:
        raise StepFailed(str(exc)) from None


class PreparedSql:
    """The config's .sql files prepared for one warehouse, each translated
    and typed once while its text stays the same (one per Context, so once
    per run instead of once per file and stage: parsing the SQL and typing
    its result cost more than the transform of a 10k-row month)."""

    def __init__(self, config: Config, backend: Backend) -> None:
        self.config, self.backend = config, backend
        self._files: dict[Path, tuple[str, object, SqlFile]] = {}
        self._schema: tuple[tuple[str, ...], dict[str, dict[str, dict[str, str]]]] | None = None

    def get(self, path: Path) -> SqlFile:
        text = path.read_text(encoding="utf-8")
        schema = self._sql_schema()
        hit = self._files.get(path)
        if hit is not None and hit[0] == text and hit[1] is schema:
            return hit[2]
        sql_file = SqlFile(path, _prepared(text, path, self.backend, schema),
                           result_types(text, self.config, schema))
        self._files[path] = (text, schema, sql_file)
        return sql_file

    def _schema_key(self) -> tuple[str, ...]:
        # core and mart tables' types follow the transform and publish files' text
        return tuple(sql.read_text(encoding="utf-8") for sql in sql_files(self.config))

    def _sql_schema(self) -> dict[str, dict[str, dict[str, str]]]:
        key = self._schema_key()
        if self._schema is None or self._schema[0] != key:
            self._schema = (key, sql_schema(self.config))
        return self._schema[1]


def sql_files(config: Config) -> list[Path]:
    """Every transform and publish .sql file of the config, once each."""
    paths: list[Path] = []
    for dataset in config.datasets.values():
        for path in ([dataset.transform] if dataset.transform else []) + list(dataset.publish.values()):
            if path not in paths:
                paths.append(path)
    return paths


def check_sql_files(config: Config, backend: Backend) -> list[Path]:
    """Prepare every .sql file (and check every decimal column) for
    ``backend``; raises SqlNotPortable at the first that cannot run."""
    for dataset in config.datasets.values():
        for col in dataset.columns.values():
            if col.type == "decimal" and (col.precision or 0) > backend.max_decimal_digits:
                raise SqlNotPortable(
                    f"{config.path.name}: dataset {dataset.name!r}, column {col.name!r}: decimal({col.precision},"
                    f"{col.scale}) cannot be stored exactly on {backend.name} (at most "
                    f"{backend.max_decimal_digits} digits)")
    paths = sql_files(config)
    schema = sql_schema(config)
    for path in paths:
        backend.prepare_sql(path.read_text(encoding="utf-8"), path, schema)
    check_declared_reads(config)
    return paths


def check_declared_reads(config: Config) -> None:
    """Every other dataset's stage table a transform reads is in its
    ``depends_on`` (which orders ``run`` and refreshes dependents): a
    ConfigError naming the dataset and key otherwise."""
    owner = {d.table: d.name for d in config.datasets.values()}
    for dataset in config.datasets.values():
        if dataset.transform is None:
            continue
        from pipeline.warehouse.dialect import tables_read

        read = tables_read(dataset.transform.read_text(encoding="utf-8"), "stage")
        missing = sorted(owner[t] for t in read if t in owner and owner[t] != dataset.name
                         and owner[t] not in dataset.depends_on)
        if missing:
            raise ConfigError(f"{config.path.name}: dataset {dataset.name!r}, key 'depends_on': its transform "
                              f"{dataset.transform.name} reads stage tables of {', '.join(map(repr, missing))}; "
                              f"add them to depends_on")


# --------------------------------------------------------------------------
# Types of result columns
# --------------------------------------------------------------------------
def known_types(config: Config) -> dict[str, pa.DataType]:
    """Arrow types of the config's columns, by name, so a query result gets
    dates and booleans back even where SQLite returns them as text or 0/1."""
    types: dict[str, pa.DataType] = {}
    for dataset in config.datasets.values():
        for f in arrow_schema(dataset):
            types.setdefault(f.name, f.type)
    return types


_SQL_TYPES = {"integer": "BIGINT", "float": "DOUBLE PRECISION", "string": "TEXT", "date": "DATE",
              "datetime": "TIMESTAMP", "boolean": "BOOLEAN"}


def _table_schema(dataset: DatasetConfig) -> dict[str, str]:
    columns = {c.name: (f"DECIMAL({c.precision},{c.scale})" if c.type == "decimal" else _SQL_TYPES[c.type])
               for c in dataset.columns.values()}
    return {**columns, PERIOD_COLUMN: "VARCHAR(7)"}


def sql_schema(config: Config) -> dict[str, dict[str, dict[str, str]]]:
    """The tables .sql files read, with their column types: stage tables from
    the config, core tables from their transform's own output types, mart
    tables from their publish file's."""
    stage = {d.table: _table_schema(d) for d in config.datasets.values()}
    # A result column named like a config column takes that column's type
    # (query_period with known_types): on SQLite that decides the scale a
    # decimal is stored at, which the translation of later files relies on.
    named: dict[str, str] = {}
    for d in config.datasets.values():
        for column, sql_type in _table_schema(d).items():
            named.setdefault(column, sql_type)

    def typed(sql: Path, tables: dict[str, dict[str, dict[str, str]]]) -> dict[str, str]:
        from pipeline.warehouse.dialect import output_types, type_name

        annotated = output_types(sql.read_text(encoding="utf-8"), tables)
        return {n: named.get(n, type_name(t)) for n, t in annotated.items()}

    core = {}
    for d in config.datasets.values():
        core[d.table] = typed(d.transform, {"stage": stage}) if d.transform is not None else {}
        core[d.table] = core[d.table] or dict(stage[d.table])
        core[d.table].setdefault(PERIOD_COLUMN, "VARCHAR(7)")
    mart = {name: {**typed(path, {"stage": stage, "core": core}), PERIOD_COLUMN: "VARCHAR(7)"}
            for d in config.datasets.values() for name, path in d.publish.items()}
    return {"stage": stage, "core": core, "mart": mart}


def result_types(sql: str, config: Config,
                 schema: dict[str, dict[str, dict[str, str]]] | None = None) -> dict[str, pa.DataType]:
    """Arrow types of a query's output columns, as far as the SQL tells
    (``schema``: :func:`sql_schema` of the config, when the caller has it)."""
    from pipeline.warehouse.dialect import output_types

    out = {}
    for name, data_type in output_types(sql, schema if schema is not None else sql_schema(config)).items():
        arrow = arrow_type_of(data_type) if data_type is not None else None
        if arrow is not None:
            out[name] = arrow
    return out


def arrow_type_of(data_type: exp.DataType) -> pa.DataType | None:
    """The Arrow type for a SQL type (PostgreSQL's, as sqlglot names it).

    SUM of integers is BIGINT and AVG double precision on both warehouses
    (PostgreSQL itself says NUMERIC); SUM of decimals stays decimal."""
    from sqlglot import exp

    t = exp.DataType.Type
    kind = data_type.this
    if kind in (t.TINYINT, t.SMALLINT, t.INT, t.BIGINT):
        return pa.int64()
    if kind in (t.FLOAT, t.DOUBLE):
        return pa.float64()
    if kind == t.DECIMAL:
        params = [int(p.this.this) for p in data_type.expressions if isinstance(p.this, exp.Literal)]
        if len(params) == 2:
            return pa.decimal128(DERIVED_DECIMAL_PRECISION, params[1])
        return pa.float64()  # CAST(x AS numeric): double precision on SQLite (warehouse.dialect)
    if kind == t.BOOLEAN:
        return pa.bool_()
    if kind == t.DATE:
        return pa.date32()
    if kind == t.TIMESTAMP:
        return pa.timestamp("us")
    if kind in (t.TEXT, t.VARCHAR, t.CHAR):
        return pa.string()
    return None


def _decimals(values: list[Any], scale: int) -> list[decimal.Decimal | None]:
    # Decimals come as Decimal (PostgreSQL, or a SQLite decimal column read
    # through its type) or as exact text (a translated query's numeric
    # output on SQLite, warehouse.dialect); a double only from a float
    # expression, taken through its shortest repr.
    quantum = decimal.Decimal(1).scaleb(-scale)
    return [None if v is None else decimal.Decimal(repr(v) if isinstance(v, float) else str(v)).quantize(
        quantum, rounding=decimal.ROUND_HALF_EVEN) for v in values]


def _column(values: list[Any], known: pa.DataType | None) -> pa.Array:
    if known is not None and pa.types.is_decimal(known):
        return pa.array(_decimals(values, known.scale), type=known)
    array = pa.array(values, from_pandas=True)
    if known is not None and not array.type.equals(known):
        return array.cast(known)
    if pa.types.is_decimal(array.type):
        # NUMERIC of unknown origin on PostgreSQL: whole numbers as SQLite gives them.
        whole = all(v is None or v == v.to_integral_value() for v in values)
        return array.cast(pa.int64() if whole else pa.float64())
    if pa.types.is_null(array.type):
        return array.cast(pa.string())
    return array


def query_period(conn: Connection, statement: sa.Executable | SqlFile, period: str,
                 types: Mapping[str, pa.DataType]) -> pa.Table:
    """Run ``statement`` for ``period`` on ``conn``; the result as an Arrow
    table without ``_data_period`` (the writer adds the period itself)."""
    sql_file = statement if isinstance(statement, SqlFile) else None
    clause = sql_file.clause() if sql_file is not None else statement
    assert isinstance(clause, sa.Executable)
    wanted = set(clause.compile(dialect=conn.dialect).params)  # type: ignore[attr-defined]
    params = {k: v for k, v in Period.of(period).params().items() if k in wanted}
    try:
        result = conn.execute(clause, params)
        keys = list(result.keys())
        rows = result.fetchall()
    except sa.exc.DBAPIError as exc:
        if sql_file is None:
            raise
        raise sql_file.error(exc, backend_of(conn)) from exc
    names = [n for n in keys if n != PERIOD_COLUMN]
    positions = {name: i for i, name in enumerate(keys)}
    typed = {**(sql_file.types if sql_file is not None else {}), **types}
    arrays = [_column([row[positions[n]] for row in rows], typed.get(n)) for n in names]
    return pa.table(arrays, names=names) if names else pa.table({})


@dataclass(frozen=True)
class PeriodSelect:
    """A period's SELECT as a subquery the database runs itself."""

    query: sa.Subquery
    names: list[str]                            # output columns, _data_period left out
    params: dict[str, Any]
    declared: dict[str, pa.DataType]            # types the SQL (or the expressions) declare
    sql_file: SqlFile | None = None

    def failed(self, exc: sa.exc.DBAPIError, conn: Connection) -> Exception:
        return exc if self.sql_file is None else self.sql_file.error(exc, backend_of(conn))


def period_select(conn: Connection, statement: sa.Executable | SqlFile, period: str) -> PeriodSelect:
    """``statement`` for ``period`` as a subquery, with its output column names
    (a .sql file's are read from a ``LIMIT 0`` run of it)."""
    sql_file = statement if isinstance(statement, SqlFile) else None
    try:
        if sql_file is not None:
            text = sql_file.text.strip().rstrip(";")
            params = _params(conn, sa.text(text), period)
            keys = list(conn.execute(sa.text(f"SELECT * FROM ({text}) AS q LIMIT 0"), params).keys())
            query = sa.text(text).columns(*(sa.column(k) for k in keys)).subquery("q")
            declared = dict(sql_file.types)
        else:
            assert isinstance(statement, sa.Select)
            query = statement.subquery("q")
            keys, params = list(query.c.keys()), _params(conn, statement, period)
            declared = {k: t for k in keys if (t := arrow_type_of_column(query.c[k].type)) is not None}
    except sa.exc.DBAPIError as exc:
        if sql_file is None:
            raise
        raise sql_file.error(exc, backend_of(conn)) from exc
    names = [k for k in keys if k != PERIOD_COLUMN]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        where = sql_file.path.name if sql_file is not None else "the query"
        raise StepFailed(f"{where}: column {twice[0]!r} appears twice in the result; give each column its own name")
    return PeriodSelect(query, names, params, declared, sql_file)


def result_schema(conn: Connection, select: PeriodSelect, types: Mapping[str, pa.DataType],
                  existing: Collection[str] = ()) -> pa.Schema | None:
    """The Arrow types of the result's columns, the same on both warehouses:
    the config column of the same name, else the type the SQL declares, else
    the type the database gives the column (``Backend.probe_types``).
    Columns in ``existing`` (the table has them) keep their type and need
    none (null here). None when a new column's type stays unknown."""
    typed = {**select.declared, **types}
    found: dict[str, pa.DataType | None] = {n: typed.get(n) for n in select.names}
    unknown = [n for n, t in found.items() if t is None and n not in existing]
    if unknown:
        probe = sa.select(*(select.query.c[n] for n in unknown))
        try:
            found.update(backend_of(conn).probe_types(conn, probe, select.params))
        except sa.exc.DBAPIError as exc:
            raise select.failed(exc, conn) from exc
    if any(t is None and n not in existing for n, t in found.items()):
        return None
    return pa.schema([(n, pa.null() if t is None else t) for n, t in found.items()])


def arrow_type_of_column(column_type: sa.types.TypeEngine[Any]) -> pa.DataType | None:
    """The Arrow type of a SQLAlchemy column type (a generated query's columns)."""
    for kind, arrow in ((sa.Boolean, pa.bool_()), (sa.Integer, pa.int64()), (sa.Float, pa.float64()),
                        (sa.DateTime, pa.timestamp("us")), (sa.Date, pa.date32()), (sa.String, pa.string())):
        if isinstance(column_type, kind):
            return arrow
    if isinstance(column_type, sa.Numeric) and column_type.scale is not None:
        return pa.decimal128(column_type.precision or DERIVED_DECIMAL_PRECISION, column_type.scale)
    return None


def insert_period(conn: Connection, select: PeriodSelect, period: str, into: sa.Table) -> int:
    """``INSERT INTO into (…, _data_period) SELECT …, :period FROM (<statement>)``:
    the period's rows go from the query into ``into`` without leaving the
    database; each value as the backend stores it in ``into``'s column."""
    backend = backend_of(conn)
    names = select.names
    values = [backend.stored_value(select.query.c[n], into.c[n].type).label(n) for n in names]
    query = sa.select(*values, sa.literal(period, sa.String(7)).label(PERIOD_COLUMN))
    try:
        return int(conn.execute(sa.insert(into).from_select([*names, PERIOD_COLUMN], query), select.params).rowcount)
    except sa.exc.DBAPIError as exc:
        raise select.failed(exc, conn) from exc


def _params(conn: Connection, clause: sa.Executable, period: str) -> dict[str, Any]:
    wanted = set(clause.compile(dialect=conn.dialect).params)  # type: ignore[attr-defined]
    return {k: v for k, v in Period.of(period).params().items() if k in wanted}

"""Running a period's SELECT (a dataset's .sql file or a generated query) and
turning its result into Arrow, typed the same on PostgreSQL and SQLite."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.domain.config import Config
from pipeline.domain.period import PERIOD_COLUMN, Period
from pipeline.domain.schema import arrow_schema


def read_sql_file(path: Path) -> sa.TextClause:
    return sa.text(path.read_text(encoding="utf-8"))


def known_types(config: Config) -> dict[str, pa.DataType]:
    """Arrow types of the config's columns, by name, so a query result gets
    dates and booleans back even where SQLite returns them as text or 0/1."""
    types: dict[str, pa.DataType] = {}
    for dataset in config.datasets.values():
        for field in arrow_schema(dataset):
            types.setdefault(field.name, field.type)
    return types


def _column(values: list[Any], known: pa.DataType | None) -> pa.Array:
    array = pa.array(values, from_pandas=True)
    if known is not None and not array.type.equals(known):
        return array.cast(known)
    if pa.types.is_decimal(array.type):
        return array.cast(pa.float64())  # NUMERIC aggregates (AVG, SUM) on PostgreSQL
    if pa.types.is_null(array.type):
        return array.cast(pa.string())
    return array


def query_period(conn: Connection, statement: sa.Executable, period: str,
                 types: Mapping[str, pa.DataType]) -> pa.Table:
    """Run ``statement`` for ``period`` on ``conn``; the result as an Arrow
    table without ``_data_period`` (the writer adds the period itself)."""
    wanted = set(statement.compile(dialect=conn.dialect).params)  # type: ignore[attr-defined]
    params = {k: v for k, v in Period.of(period).params().items() if k in wanted}
    result = conn.execute(statement, params)
    names = [n for n in result.keys() if n != PERIOD_COLUMN]
    positions = {name: i for i, name in enumerate(result.keys())}
    rows = result.fetchall()
    arrays = [_column([row[positions[n]] for row in rows], types.get(n)) for n in names]
    return pa.table(arrays, names=names) if names else pa.table({})

"""Conformance of the PostgreSQL -> SQLite translation (pipeline.warehouse.dialect).

Each expression analysts use runs on the same rows twice: as written on a
real PostgreSQL database, and translated on a real SQLite file (tables made
by SQLAlchemy with the warehouse's own column types, so values are stored as
the warehouse stores them). The results must be identical, or the
translation must refuse the expression with one clear line.

Normalisation (representation only, applied to both sides alike):
- Decimal -> float, bool -> int (SQLite has neither);
- a tz-aware datetime -> naive, after converting it to UTC (the session
  time zone is set to UTC);
- text that is an ISO date or timestamp -> date / datetime (SQLite stores
  dates as text), so '2018-01-11 08:30:00.000000' and datetime(2018, 1, 11,
  8, 30) are equal, but a date never equals a datetime;
- numbers compare with a relative tolerance of 1e-12 (numeric becomes
  double precision on SQLite); 3 and 3.5 still differ.

Decimal columns (``stage.money``, typed ``decimal(p,s)`` as the warehouse
types them: NUMERIC on PostgreSQL, scaled 64-bit integers on SQLite) are
translated with the tables' schema and compared EXACTLY: every value as a
Python Decimal, no tolerance.
"""
from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipeline.errors import SqlNotPortable, UsageError
from pipeline.warehouse import dialect
from pipeline.warehouse.backends import decimal_type
from pipeline.warehouse.dialect import check_file, register_sqlite_functions, translate

D = decimal.Decimal

PARAMS = {"period": "2018-01", "period_start": "2018-01-01", "period_end": "2018-01-31"}
ROWS = [
    {"id": 1, "name": "  søren ås ", "grp": "a", "code": "0101-x-7", "amount": 2.675, "qty": 7,
         "d": dt.date(2018, 1, 31), "ts": dt.datetime(2018, 1, 11, 8, 30, 15, 123456), "flag": True},
    {"id": 2, "name": "ÆBLEGÅRD o'neil-smith", "grp": "a", "code": "12-34", "amount": -1.5, "qty": 2,
         "d": dt.date(2020, 2, 29), "ts": dt.datetime(2018, 1, 14, 23, 59, 59), "flag": False},
    {"id": 3, "name": "2x test_case", "grp": "b", "code": "", "amount": 10.0, "qty": -7,
         "d": dt.date(2018, 12, 31), "ts": dt.datetime(2017, 12, 31, 0, 0, 0, 500000), "flag": True},
    {"id": 4, "name": None, "grp": "b", "code": None, "amount": None, "qty": None, "d": None, "ts": None, "flag": None},
    {"id": 5, "name": "Zoe", "grp": "c", "code": "a-b-c", "amount": 0.5, "qty": 3,
         "d": dt.date(2018, 1, 1), "ts": dt.datetime(2018, 1, 1, 0, 0), "flag": False},
]


def _sample_table(metadata: sa.MetaData) -> sa.Table:
    # The warehouse's column types (pipeline.db.column_type).
    return sa.Table(
        "sample", metadata,
        sa.Column("id", sa.BigInteger(), primary_key=True), sa.Column("name", sa.Text()),
        sa.Column("grp", sa.Text()), sa.Column("code", sa.Text()), sa.Column("amount", sa.Double()),
        sa.Column("qty", sa.BigInteger()), sa.Column("d", sa.Date()), sa.Column("ts", sa.DateTime()),
        sa.Column("flag", sa.Boolean()), schema="stage",
    )


# Decimal money: many 0.10/0.20 (a double sum drifts), ties for rounding,
# negative values, a NULL, and amounts near 10**15.
MONEY_ROWS = [
    {"id": 1, "grp": "a", "amount": D("0.10"), "rate": D("1.2500"), "qty": 3, "big": D("999999999999999.99")},
    {"id": 2, "grp": "a", "amount": D("0.20"), "rate": D("0.3333"), "qty": 1, "big": D("0.01")},
    {"id": 3, "grp": "b", "amount": D("2.25"), "rate": D("-0.0050"), "qty": -2, "big": D("-5.00")},
    {"id": 4, "grp": "b", "amount": D("-2.25"), "rate": D("0.0001"), "qty": 0, "big": D("123456789012345.67")},
    {"id": 5, "grp": "c", "amount": None, "rate": None, "qty": None, "big": None},
    {"id": 6, "grp": "c", "amount": D("0.05"), "rate": D("10.0000"), "qty": 7, "big": D("0.00")},
    {"id": 7, "grp": "a", "amount": D("0.30"), "rate": D("0.5000"), "qty": 2, "big": D("0.30")},
] + [{"id": i, "grp": "m", "amount": D("0.10") if i % 2 else D("0.20"), "rate": D("0.0100"), "qty": 1,
      "big": D("999999999999.99")} for i in range(100, 400)]
MONEY_SCHEMA = {"stage": {"money": {"id": "BIGINT", "grp": "TEXT", "amount": "DECIMAL(14,2)",
                                    "rate": "DECIMAL(6,4)", "qty": "BIGINT", "big": "DECIMAL(18,2)"},
                          "sample": {"id": "BIGINT", "name": "TEXT", "grp": "TEXT", "code": "TEXT",
                                     "amount": "DOUBLE PRECISION", "qty": "BIGINT", "d": "DATE", "ts": "TIMESTAMP",
                                     "flag": "BOOLEAN"}}}


def _money_table(metadata: sa.MetaData) -> sa.Table:
    # The warehouse's decimal type on each database (backends.decimal_type).
    return sa.Table(
        "money", metadata, sa.Column("id", sa.BigInteger(), primary_key=True), sa.Column("grp", sa.Text()),
        sa.Column("amount", decimal_type(14, 2)), sa.Column("rate", decimal_type(6, 4)),
        sa.Column("qty", sa.BigInteger()), sa.Column("big", decimal_type(18, 2)), schema="stage",
    )


def _create_tables(conn: sa.Connection) -> None:
    metadata = sa.MetaData()
    for table, rows in ((_sample_table(metadata), ROWS), (_money_table(metadata), MONEY_ROWS)):
        table.create(conn)
        conn.execute(table.insert(), rows)


@pytest.fixture(scope="module")
def pg_conn(pg_database: str) -> Any:
    # The session's database is shared with the workspace tests: start from
    # no schemas, and leave none behind (nor a transaction holding locks).
    from tests.conftest import reset_postgres

    reset_postgres(pg_database)
    engine = sa.create_engine(pg_database)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS stage")
        conn.exec_driver_sql("DROP TABLE IF EXISTS stage.sample, stage.money")
        _create_tables(conn)
    with engine.connect() as conn:
        conn.exec_driver_sql("SET TIME ZONE 'UTC'")
        yield conn
    engine.dispose()
    reset_postgres(pg_database)


@pytest.fixture(scope="module")
def sqlite_conn(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A SQLite warehouse like the real one: schema 'stage' is an attached file."""
    folder = tmp_path_factory.mktemp("sqlite")
    engine = sa.create_engine(f"sqlite:///{folder / 'main.sqlite'}")

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.execute("ATTACH DATABASE ? AS stage", (str(folder / "stage.sqlite"),))
        register_sqlite_functions(dbapi_conn)

    with engine.begin() as conn:
        _create_tables(conn)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


# ---------------------------------------------------------------- normalising
_ISO_TS = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _norm(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, str) and _ISO_TS.fullmatch(value):
        return dt.datetime.fromisoformat(value)
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return dt.date.fromisoformat(value)
    return value


def _same(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return type(a) is type(b) and a == b


def _rows(conn: sa.Connection, sql: str) -> list[tuple]:
    params = {k: v for k, v in PARAMS.items() if f":{k}" in sql}
    return [tuple(_norm(v) for v in row) for row in conn.execute(sa.text(sql), params)]


def _assert_same(pg: list[tuple], lite: list[tuple]) -> None:
    assert len(pg) == len(lite), (pg, lite)
    for p_row, l_row in zip(pg, lite):
        assert len(p_row) == len(l_row) and all(_same(p, q) for p, q in zip(p_row, l_row)), (p_row, l_row)


# ---------------------------------------------------------------- the corpus
T = "FROM stage.sample ORDER BY id"
SAME = {
    # to_char with the patterns that map exactly
    "to_char_yyyy": f"SELECT to_char(ts, 'YYYY') {T}",
    "to_char_yyyy_mm": f"SELECT to_char(ts, 'YYYY-MM'), to_char(d, 'YYYY-MM') {T}",
    "to_char_date_time": f"SELECT to_char(ts, 'YYYY-MM-DD HH24:MI:SS') {T}",
    "to_char_compact": f"SELECT to_char(d, 'YYYYMMDD'), to_char(d, 'DD/MM/YYYY') {T}",
    "to_char_time_of_date": f"SELECT to_char(d, 'HH24:MI') {T}",
    # date_trunc
    "date_trunc_month": f"SELECT date_trunc('month', ts) {T}",
    "date_trunc_week": f"SELECT date_trunc('week', ts), date_trunc('week', d) {T}",
    "date_trunc_day_hour": f"SELECT date_trunc('day', ts), date_trunc('hour', ts) {T}",
    "date_trunc_year_quarter": f"SELECT date_trunc('year', ts), date_trunc('quarter', d) {T}",
    # EXTRACT / date_part
    "extract_year_month_day": f"SELECT EXTRACT(year FROM ts), EXTRACT(month FROM d), EXTRACT(day FROM ts) {T}",
    "extract_dow_isodow": f"SELECT EXTRACT(dow FROM ts), EXTRACT(isodow FROM d), EXTRACT(doy FROM d) {T}",
    "extract_hour_minute": f"SELECT EXTRACT(hour FROM ts), EXTRACT(minute FROM ts), EXTRACT(quarter FROM d) {T}",
    "extract_second": f"SELECT EXTRACT(second FROM ts) {T}",
    "extract_epoch": f"SELECT EXTRACT(epoch FROM ts), date_part('epoch', d) {T}",
    "date_part": f"SELECT date_part('year', d), date_part('month', ts) {T}",
    # casts
    "cast_date": f"SELECT CAST(ts AS DATE), ts::date, CAST('2018-03-04' AS DATE) {T}",
    "cast_timestamp": f"SELECT CAST(d AS TIMESTAMP), ts::timestamp {T}",
    "cast_numeric_division": f"SELECT CAST(qty AS NUMERIC) / 2, qty::double precision / 4 {T}",
    "cast_text_to_int": f"SELECT CAST(to_char(d, 'YYYYMMDD') AS INTEGER), CAST('42' AS BIGINT) {T}",
    # interval and date arithmetic
    "interval_day_hour": f"SELECT ts + interval '1 day', ts - interval '3 hours', d + interval '1 week' {T}",
    "interval_month_clamps": f"SELECT d + interval '1 month', d - interval '1 month', d + interval '1 year' {T}",
    "interval_month_timestamp": f"SELECT ts + interval '2 months' {T}",
    "date_minus_date": f"SELECT d - DATE '2018-01-01', d - CAST(:period_start AS DATE) {T}",
    "date_plus_integer": f"SELECT d + 7, d - 1 {T}",
    "make_date": f"SELECT make_date(2018, 2, 28), make_date(CAST(EXTRACT(year FROM d) AS INTEGER), 1, 1) {T}",
    # aggregates
    "string_agg_ordered": "SELECT grp, string_agg(name, ', ' ORDER BY name DESC) FROM stage.sample GROUP BY grp ORDER BY grp",
    "string_agg_nulls_first": "SELECT string_agg(code, '|' ORDER BY amount NULLS FIRST, id) FROM stage.sample",
    "count_distinct": "SELECT COUNT(DISTINCT grp), COUNT(*), COUNT(code) FROM stage.sample",
    "filter_where": "SELECT COUNT(*) FILTER (WHERE qty > 2), SUM(amount) FILTER (WHERE flag) FROM stage.sample",
    "sum_avg_min_max": "SELECT grp, SUM(qty), AVG(qty), MIN(ts), MAX(d) FROM stage.sample GROUP BY grp ORDER BY grp",
    # null handling
    "coalesce_nullif": f"SELECT COALESCE(name, 'none'), NULLIF(qty, 7), COALESCE(amount, 0) {T}",
    "greatest_least": f"SELECT greatest(qty, 3, NULL), least(amount, qty), greatest(d, DATE '2018-06-01') {T}",
    # strings
    "ilike": f"SELECT name ILIKE '%ås%', name ILIKE 'æble%', name NOT ILIKE 'z%' {T}",
    "like_is_case_sensitive": f"SELECT name LIKE 'zoe', name LIKE 'Z_e', code LIKE '%-%' {T}",
    "split_part": f"SELECT split_part(code, '-', 2), split_part(code, '-', -1), split_part(code, '', 1) {T}",
    "lpad_rpad": f"SELECT lpad(code, 6, '0'), rpad(grp, 3, 'xy'), lpad(code, 2), rpad(code, 7) {T}",
    "initcap": f"SELECT initcap(name), initcap(trim(name)) {T}",
    "upper_lower_length": f"SELECT upper(name), lower(name), length(name), char_length(code) {T}",
    "substring_position": f"SELECT substring(name from 3 for 4), substring(code, 2), position('-' in code), strpos(name, 'a') {T}",
    "replace_trim_concat": f"SELECT replace(code, '-', '/'), trim(name), ltrim(name), rtrim(name), grp || '-' || code {T}",
    # numbers
    "round_numeric": f"SELECT round(CAST(amount AS NUMERIC), 2), round(amount::numeric, 0), round(CAST(qty AS NUMERIC) / 3, 3) {T}",
    "integer_division": f"SELECT 7 / 2, -7 / 2, qty / 2, qty % 3, amount / 2, abs(qty) {T}",
    # windows
    "row_number": "SELECT id, row_number() OVER (PARTITION BY grp ORDER BY ts DESC) FROM stage.sample ORDER BY id",
    "sum_over_partition": "SELECT id, SUM(amount) OVER (PARTITION BY grp), SUM(qty) OVER (ORDER BY id) FROM stage.sample ORDER BY id",
    "lag_lead": "SELECT id, lag(qty) OVER (ORDER BY id), lead(code, 1, 'end') OVER (ORDER BY id) FROM stage.sample ORDER BY id",
    "rank_nulls_order": "SELECT id, rank() OVER (ORDER BY amount), dense_rank() OVER (ORDER BY grp DESC) FROM stage.sample ORDER BY id",
    # structure
    "cte": "WITH g AS (SELECT grp, COUNT(*) AS n FROM stage.sample GROUP BY grp) SELECT grp, n FROM g WHERE n > 1 ORDER BY grp",
    "case_boolean": f"SELECT CASE WHEN qty > 2 THEN 'big' WHEN qty IS NULL THEN 'none' ELSE 'small' END, flag IS TRUE, qty > 2 AND flag, NOT flag {T}",
    "distinct_from_between_in": f"SELECT qty IS DISTINCT FROM 7, qty BETWEEN 2 AND 3, grp IN ('a', 'c') {T}",
    "bound_parameters": f"SELECT to_char(ts, 'YYYY-MM') = :period, d >= CAST(:period_start AS DATE), d <= CAST(:period_end AS DATE) {T}",
    "order_by_nulls": "SELECT id FROM stage.sample ORDER BY amount, id",
}

REFUSED = {
    "to_char_mon": ("SELECT to_char(ts, 'Mon YYYY') FROM stage.sample", "to_char pattern 'Mon YYYY'"),
    "to_char_month": ("SELECT to_char(ts, 'Month') FROM stage.sample", "to_char pattern 'Month'"),
    "to_char_fm": ("SELECT to_char(ts, 'FMDD') FROM stage.sample", "to_char pattern 'FMDD'"),
    "to_char_hh12": ("SELECT to_char(ts, 'HH12:MI AM') FROM stage.sample", "to_char pattern 'HH12:MI AM'"),
    "to_char_number": ("SELECT to_char(amount, '999D99') FROM stage.sample", "to_char pattern '999D99'"),
    "age": ("SELECT age(ts) FROM stage.sample", "age()"),
    "distinct_on": ("SELECT DISTINCT ON (grp) grp, id FROM stage.sample ORDER BY grp, id", "DISTINCT ON"),
    "string_agg_unordered": ("SELECT string_agg(name, ',') FROM stage.sample", "string_agg()"),
    "round_double": ("SELECT round(amount) FROM stage.sample", "round()"),
    "cast_column_to_int": ("SELECT CAST(amount AS INTEGER) FROM stage.sample", "CAST(... AS INT)"),
    "cast_numeric_scale": ("SELECT CAST(amount AS NUMERIC(10, 2)) FROM stage.sample", "CAST(... AS DECIMAL(10, 2))"),
    "timestamptz": ("SELECT ts::timestamptz FROM stage.sample", "CAST(... AS TIMESTAMPTZ)"),
    "interval_compound": ("SELECT ts + interval '1 day 2 hours' FROM stage.sample", "INTERVAL '1 day 2 hours'"),
    "extract_week": ("SELECT EXTRACT(week FROM ts) FROM stage.sample", "EXTRACT(WEEK)"),
    "date_trunc_ms": ("SELECT date_trunc('milliseconds', ts) FROM stage.sample", "date_trunc('millisecond')"),
    "now": ("SELECT now() FROM stage.sample", "now()"),
    "current_date": ("SELECT current_date FROM stage.sample", "current_date"),
    "regex": ("SELECT name ~ 'a' FROM stage.sample", "name ~ 'a'"),
    "substring_negative": ("SELECT substring(name, -1, 3) FROM stage.sample", "substring()"),
    "like_escape": ("SELECT name LIKE 'a!%' ESCAPE '!' FROM stage.sample", "LIKE ... ESCAPE"),
    "unknown_function": ("SELECT regexp_replace(name, 'a', 'b') FROM stage.sample", "regexp_replace()"),
    "insert": ("INSERT INTO stage.sample (id) VALUES (9)", "INSERT statement"),
}


@pytest.mark.postgres
@pytest.mark.parametrize("case", sorted(SAME))
def test_same_result_on_both(case: str, pg_conn: sa.Connection, sqlite_conn: sa.Connection) -> None:
    sql = SAME[case]
    pg = _rows(pg_conn, sql)
    lite = _rows(sqlite_conn, translate(sql, source="sample.sql", dialect="sqlite"))
    _assert_same(pg, lite)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_one_line(case: str) -> None:
    sql, construct = REFUSED[case]
    with pytest.raises(SqlNotPortable) as info:
        translate(sql, source=Path("/x/sample.sql"), dialect="sqlite")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"sample.sql: line 1: {construct} cannot be run on SQLite faithfully ("), message


@pytest.mark.postgres
@pytest.mark.parametrize("case", ["to_char_mon", "age", "distinct_on", "string_agg_unordered"])
def test_refused_sql_runs_on_postgresql(case: str, pg_conn: sa.Connection) -> None:
    """The refusals are of valid PostgreSQL, which the postgresql dialect passes."""
    sql = REFUSED[case][0]
    assert translate(sql, source="sample.sql", dialect="postgresql") == sql
    _rows(pg_conn, sql)


def test_corpus_is_large_enough() -> None:
    assert len(SAME) + len(REFUSED) >= 40
    assert len(DEC_SAME) + len(DEC_REFUSED) >= 20


def test_line_of_the_construct_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "monthly.sql"
    path.write_text("SELECT\n    id,\n    to_char(ts, 'Mon') AS month_name\nFROM stage.sample\n", encoding="utf-8")
    with pytest.raises(SqlNotPortable, match=r"^monthly\.sql: line 3: to_char pattern 'Mon' cannot be run"):
        check_file(path, "sqlite")
    check_file(path, "postgresql")  # valid PostgreSQL


def test_line_of_a_keyword_construct(tmp_path: Path) -> None:
    # sqlglot keeps no position for these; the keyword is found outside comments.
    sql = "-- refreshed now and then\nSELECT DISTINCT\n  ON (grp) grp\nFROM stage.sample\nWHERE ts < now()\n"
    with pytest.raises(SqlNotPortable, match=r"^q\.sql: line 3: DISTINCT ON "):
        translate(sql, source="q.sql", dialect="sqlite")
    with pytest.raises(SqlNotPortable, match=r"^q\.sql: line 5: now\(\) "):
        translate(sql.replace("DISTINCT\n  ON (grp) ", "\n"), source="q.sql", dialect="sqlite")


def test_bound_parameters_survive() -> None:
    sql = "SELECT * FROM stage.sample\nWHERE _data_period = :period AND d BETWEEN :period_start AND :period_end"
    out = translate(sql, source="p.sql", dialect="sqlite")
    assert sorted(sa.text(out).compile().params) == ["period", "period_end", "period_start"]
    assert translate(sql, source="p.sql", dialect="postgresql") == sql


def test_parse_error_refused_on_both_dialects() -> None:
    for name in ("postgresql", "sqlite"):
        with pytest.raises(SqlNotPortable, match=r"^bad\.sql: line 2: SQL cannot be parsed"):
            translate("SELECT 1\nFROM (SELECT", source="bad.sql", dialect=name)


def test_not_portable_is_a_usage_error() -> None:
    assert issubclass(SqlNotPortable, UsageError) and SqlNotPortable.exit_code == 2


def test_shipped_sql_files_translate() -> None:
    for path in sorted((Path(__file__).resolve().parents[2] / "sql").rglob("*.sql")):
        check_file(path, "sqlite")


# --------------------------------------------- the registered functions alone
@pytest.fixture
def lite() -> Any:
    conn = sqlite3.connect(":memory:")
    register_sqlite_functions(conn)
    yield conn
    conn.close()


def test_pg_arith_fails_where_postgresql_fails(lite: sqlite3.Connection) -> None:
    assert lite.execute("SELECT pg_arith('/', -7, 2), pg_arith('%', -7, 3), pg_arith('-', '2018-03-01', '2018-02-01')").fetchone() == (-3, -1, 28)
    for sql in ("SELECT pg_arith('/', 1, 0)", "SELECT pg_arith('-', '2018-01-11 08:00:00', '2018-01-10')",
                "SELECT pg_arith('+', 'abc', 1)"):
        with pytest.raises(sqlite3.OperationalError, match="user-defined function raised exception"):
            lite.execute(sql).fetchone()


def test_make_date_and_split_part_reject_what_postgresql_rejects(lite: sqlite3.Connection) -> None:
    for sql in ("SELECT make_date(2018, 2, 30)", "SELECT split_part('a-b', '-', 0)", "SELECT pg_like('a', 'a\\', 0)"):
        with pytest.raises(sqlite3.OperationalError):
            lite.execute(sql).fetchone()


def test_functions_are_deterministic_and_minimal(lite: sqlite3.Connection) -> None:
    # Deterministic functions may be used in an index expression.
    lite.execute("CREATE TABLE t (x TEXT)")
    lite.execute("CREATE INDEX i ON t (pg_upper(x), initcap(x), split_part(x, '-', 1))")
    assert set(dialect._SCALAR_FUNCTIONS) == {
        "pg_upper", "pg_lower", "initcap", "pg_like", "split_part", "lpad", "rpad", "make_date", "pg_arith",
        "pg_dec_arith", "pg_dec_scale", "pg_dec_round", "pg_dec_text", "pg_dec_float",
    }


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(SqlNotPortable, match="unknown warehouse dialect 'mysql'"):
        translate("SELECT 1", source="x.sql", dialect="mysql")


# ------------------------------------------------------- decimals, exactly
M = "FROM stage.money"
MO = f"{M} ORDER BY id"
DEC_SAME = {
    "sum_by_group": f"SELECT grp, SUM(amount) AS total, SUM(big) AS big_total {M} GROUP BY grp ORDER BY grp",
    "sum_ordered_by_alias": f"SELECT grp, SUM(amount) AS total {M} GROUP BY grp ORDER BY total DESC, grp",
    "sum_everything": f"SELECT SUM(amount) AS amount, SUM(big) AS big, SUM(rate) AS rate, COUNT(amount) AS n {M}",
    "add_sub": f"SELECT id, amount + 1.5 AS a, amount - rate AS b, amount + qty AS c, -amount AS d, abs(amount) AS e {MO}",
    "mul": f"SELECT id, amount * 3 AS a, amount * qty AS b, amount * rate AS c, amount * 1.25 AS d, 2 * big AS e {MO}",
    "round": f"SELECT id, round(amount, 1) AS a, round(rate, 2) AS b, round(amount) AS c, round(amount, 3) AS d, "
             f"round(amount * rate, 2) AS e {MO}",
    "compare_literals": f"SELECT id, amount > 0.125 AS a, amount = 0.3 AS b, amount BETWEEN 0.1 AND 0.2 AS c, "
                        f"amount IN (0.1, 0.30) AS d, amount > qty AS e, amount IS DISTINCT FROM 0.05 AS f {MO}",
    "where_and_order": f"SELECT id, amount {M} WHERE amount >= 0.2 AND rate < 1 AND grp <> 'm' ORDER BY amount DESC, id",
    "casts": f"SELECT id, CAST(amount AS NUMERIC(10, 1)) AS a, CAST(qty AS NUMERIC(8, 2)) AS b, "
             f"CAST('12.345' AS NUMERIC(8, 2)) AS c, CAST(amount AS INTEGER) AS d, "
             f"CAST(amount AS DOUBLE PRECISION) AS e, amount::numeric AS f {MO}",
    "min_max": f"SELECT grp, MIN(amount) AS lo, MAX(amount) AS hi, MAX(big) AS top {M} GROUP BY grp ORDER BY grp",
    "window_sum": f"SELECT id, SUM(amount) OVER (PARTITION BY grp ORDER BY id) AS running {M} WHERE grp <> 'm' ORDER BY id",
    "coalesce_case": f"SELECT id, COALESCE(amount, 0) AS a, CASE WHEN qty > 2 THEN amount ELSE 0.005 END AS b, "
                     f"NULLIF(amount, 0.3) AS c, greatest(amount, 0.2) AS d, least(amount, rate) AS e {MO}",
    "cte_of_sums": f"WITH t AS (SELECT grp, SUM(amount) AS s {M} GROUP BY grp) "
                   "SELECT x.grp, x.s * 2 AS doubled, x.s - 1 AS less FROM t AS x WHERE x.s > 0.25 ORDER BY x.grp",
    "filter_distinct": f"SELECT SUM(amount) FILTER (WHERE qty > 1) AS a, SUM(DISTINCT amount) AS b, "
                       f"COUNT(DISTINCT amount) AS c {M}",
    "scalar_subquery": f"SELECT id {M} WHERE amount > (SELECT MIN(amount) + 0.3 {M}) ORDER BY id",
    "subquery_in_from": f"SELECT q.grp, q.amount * q.qty AS line {M.replace('stage.money', '(SELECT grp, amount, qty FROM stage.money WHERE id < 10) AS q')} ORDER BY q.grp, line",
    # No decimal column read, but casts make numerics: still exact.
    "casts_of_literals": "SELECT id, CAST('2.675' AS NUMERIC(6, 2)) * 2 AS x, CAST(7 AS NUMERIC(4, 1)), "
                         "CAST('-0.5' AS NUMERIC(3)) AS half FROM stage.sample ORDER BY 2, 1",
    "cast_in_a_cte": "WITH c AS (SELECT id, CAST(qty AS NUMERIC(6, 2)) AS x FROM stage.sample) "
                     "SELECT id, x, x * 2 AS y, x + 0.125 AS z FROM c WHERE x > 2.5 OR x IS NULL ORDER BY id",
}
DEC_REFUSED = {
    "avg": (f"SELECT avg(amount) {M}", "avg()"),
    "division": (f"SELECT amount / 2 {M}", "numeric /"),
    "modulo": (f"SELECT amount % 2 {M}", "numeric %"),
    "to_text": (f"SELECT CAST(amount AS TEXT) {M}", "CAST(... AS TEXT)"),
    "concatenation": (f"SELECT 'x' || amount {M}", "'x' || "),
    "precision_19": (f"SELECT CAST(amount AS NUMERIC(20, 2)) {M}", "CAST(... AS DECIMAL(20, 2))"),
    "with_double": (f"SELECT amount + 1.5e0::double precision {M}", "money.amount + CAST("),
    "union": (f"SELECT amount {M} UNION SELECT rate {M}", "UNION"),
    "lag_default": (f"SELECT lag(amount, 1, 0) OVER (ORDER BY id) {M}", "lag()"),
}


def _exact(value: Any) -> Any:
    """A value as a Python Decimal where it is a number (text included: a
    translated numeric arrives as its exact text); bools as 0/1."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            return D(value)
        except decimal.InvalidOperation:
            return value
    if isinstance(value, int):
        return D(value)
    return value


def _exact_rows(conn: sa.Connection, sql: str) -> list[tuple]:
    return [tuple(_exact(v) for v in row) for row in conn.execute(sa.text(sql))]


@pytest.mark.postgres
@pytest.mark.parametrize("case", sorted(DEC_SAME))
def test_decimals_exactly_the_same_on_both(case: str, pg_conn: sa.Connection, sqlite_conn: sa.Connection) -> None:
    sql = DEC_SAME[case]
    pg = _exact_rows(pg_conn, sql)
    lite = _exact_rows(sqlite_conn, translate(sql, source="money.sql", dialect="sqlite", schema=MONEY_SCHEMA))
    assert pg == lite
    assert pg and any(v is not None for row in pg for v in row)


@pytest.mark.postgres
def test_decimal_sums_equal_python_decimal(pg_conn: sa.Connection, sqlite_conn: sa.Connection) -> None:
    expected = (sum((r["amount"] for r in MONEY_ROWS if r["amount"] is not None), D(0)),
                sum((r["big"] for r in MONEY_ROWS if r["big"] is not None), D(0)))
    sql = DEC_SAME["sum_everything"]
    lite_sql = translate(sql, source="money.sql", dialect="sqlite", schema=MONEY_SCHEMA)
    for conn, text in ((pg_conn, sql), (sqlite_conn, lite_sql)):
        [row] = _exact_rows(conn, text)
        assert (row[0], row[1]) == expected == (D("45.65"), D("1423456789012337.97"))
    # A double sum of the same amounts is not exact: the test can fail.
    assert sum(float(r["amount"]) for r in MONEY_ROWS if r["amount"] is not None) != 45.65


@pytest.mark.parametrize("case", sorted(DEC_REFUSED))
def test_decimal_constructs_refused_with_one_line(case: str) -> None:
    sql, construct = DEC_REFUSED[case]
    with pytest.raises(SqlNotPortable) as info:
        translate(sql, source=Path("/x/money.sql"), dialect="sqlite", schema=MONEY_SCHEMA)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"money.sql: line 1: {construct}") and " cannot be run on SQLite faithfully (" in message, message


@pytest.mark.postgres
@pytest.mark.parametrize("case", ["avg", "division", "to_text", "union"])
def test_refused_decimal_sql_runs_on_postgresql(case: str, pg_conn: sa.Connection) -> None:
    sql = DEC_REFUSED[case][0]
    assert translate(sql, source="money.sql", dialect="postgresql", schema=MONEY_SCHEMA) == sql
    _exact_rows(pg_conn, sql)


def test_a_refused_decimal_construct_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "money_mart.sql"
    path.write_text("SELECT grp,\n       SUM(amount) AS total,\n       avg(amount) AS mean\n"
                    "FROM stage.money\nGROUP BY grp\n", encoding="utf-8")
    with pytest.raises(SqlNotPortable, match=r"^money_mart\.sql: line 3: avg\(\) cannot be run on SQLite faithfully"):
        check_file(path, "sqlite", MONEY_SCHEMA)
    check_file(path, "postgresql", MONEY_SCHEMA)


def test_decimal_output_scales_follow_postgresql() -> None:
    sql = ("SELECT SUM(amount) AS total, amount * rate AS product, round(amount, 1) AS r, amount + 1.125 AS s, "
           "MAX(big) AS top, COUNT(*) AS n FROM stage.money GROUP BY amount, rate")
    assert dialect.decimal_scales(sql, MONEY_SCHEMA) == {"total": 2, "product": 6, "r": 1, "s": 3, "top": 2}
    types = dialect.output_types(sql, MONEY_SCHEMA)
    assert dialect.type_name(types["product"]) == "DECIMAL(38, 6)"


def test_decimal_functions_are_exact_and_fail_rather_than_overflow(lite: sqlite3.Connection) -> None:
    row = lite.execute("SELECT pg_dec_round(225, 2, 1, 0), pg_dec_round(-225, 2, 1, 0), pg_dec_round('12.345', 0, 2, 4), "
                       "pg_dec_text(5, 2), pg_dec_text(-5, 2), pg_dec_text(123456789012345678, 2), "
                       "pg_dec_arith('*', 999999999, 3), pg_dec_scale(7, 3), pg_dec_float(10, 1)").fetchone()
    assert row == (23, -23, 1235, "0.05", "-0.05", "1234567890123456.78", 2999999997, 7000, 1.0)
    assert lite.execute("SELECT pg_dec_round(99994, 2, 1, 4), pg_dec_round(-5, 1, 0, 0)").fetchone() == (9999, -1)
    for sql in ("SELECT pg_dec_arith('+', 9223372036854775807, 1)", "SELECT pg_dec_scale(922337203685477581, 2)",
                "SELECT pg_dec_round('12345.6', 0, 2, 6)", "SELECT pg_dec_round('abc', 0, 2, 6)",
                "SELECT pg_dec_round(99995, 2, 1, 4)",  # 999.95 rounds to 1000.0: not numeric(4,1)
                "SELECT pg_dec_text(1.5, 2)"):
        with pytest.raises(sqlite3.OperationalError, match="user-defined function raised exception"):
            lite.execute(sql).fetchone()


@pytest.mark.postgres
def test_outputs_without_an_alias_are_named_as_postgresql_names_them(
        pg_conn: sa.Connection, sqlite_conn: sa.Connection) -> None:
    sql = (f"SELECT COUNT(*), SUM(amount), amount * 2, round(amount, 1), CAST(amount AS INTEGER), "
           f"coalesce(amount, 0), CASE WHEN qty > 1 THEN amount END, max(rate), grp {M} "
           f"GROUP BY grp, amount, qty ORDER BY 2, 1, 3, grp")
    lite_sql = translate(sql, source="money.sql", dialect="sqlite", schema=MONEY_SCHEMA)
    pg, lite = pg_conn.execute(sa.text(sql)), sqlite_conn.execute(sa.text(lite_sql))
    assert list(lite.keys()) == list(pg.keys()) == [
        "count", "sum", "?column?", "round", "amount", "coalesce", "case", "max", "grp"]
    with pytest.raises(SqlNotPortable, match=r"^s\.sql: line 1: numeric\(p,s\) out of a subquery or CTE "):
        translate("WITH c AS (SELECT CAST('1.5' AS NUMERIC(4, 2)) AS x) SELECT x FROM c", source="s.sql",
                  dialect="sqlite")  # no schema: the outer x cannot be typed
    untyped = "SELECT CAST('1.5' AS NUMERIC(4, 2)), CAST(2 AS NUMERIC(3, 1)) FROM stage.sample"
    lite_result = sqlite_conn.execute(sa.text(translate(untyped, source="s.sql", dialect="sqlite")))
    pg_result = pg_conn.execute(sa.text(untyped))
    assert list(lite_result.keys()) == list(pg_result.keys()) == ["numeric", "numeric"]
    assert _exact(lite_result.first()[0]) == pg_result.first()[0] == D("1.50")
    assert [tuple(_exact(v) for v in r) for r in lite] == [tuple(_exact(v) for v in r) for r in pg]

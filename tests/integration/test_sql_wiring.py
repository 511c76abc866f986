"""Transform and publish SQL on the active warehouse (issue 13): `check`,
refusals before any data changes, run-time errors naming their file, exact
decimals, and derived column types that agree between the warehouses."""
from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import Workspace

SALES = """
datasets:
  sales:
    file_pattern: '^sales_(?P<period>\\d{{4}}-\\d{{2}})\\.csv$'
    primary_key: [id]
    on_invalid_rows: drop
    transform: {transform}
    publish:
      sales_total: total.sql
    columns:
      id: {{type: integer, nullable: false}}
      sold_at: {{type: datetime}}
      amount: {{type: decimal, precision: 12, scale: 2, gt: 0, le: 9999999999.99}}
"""
TRANSFORM = "SELECT id, sold_at, amount, _data_period FROM stage.sales WHERE _data_period = :period\n"
TOTAL = ("SELECT COUNT(*) AS sales, SUM(amount) AS amount_total, MAX(amount) AS amount_max\n"
         "FROM core.sales\nWHERE _data_period = :period\n")
# On SQLite to_char's 'Mon' has no exact translation; PostgreSQL runs it.
NOT_ON_SQLITE = ("SELECT id, sold_at, amount,\n       to_char(sold_at, 'Mon YYYY') AS month_name,\n"
                 "       _data_period\nFROM stage.sales WHERE _data_period = :period\n")
UNPARSEABLE = "SELECT id, amount, _data_period\nFROM stage.sales WHERE (_data_period = :period\n"


def sales_workspace(ws: Workspace, transform: str = TRANSFORM) -> None:
    (ws.root / "transform.sql").write_text(transform, encoding="utf-8")
    (ws.root / "total.sql").write_text(TOTAL, encoding="utf-8")
    ws.use_config(SALES.format(transform="transform.sql"))


def refused_sql(ws: Workspace) -> str:
    """A transform this warehouse refuses: untranslatable on SQLite, unparseable on PostgreSQL."""
    return NOT_ON_SQLITE if ws.backend == "sqlite" else UNPARSEABLE


def write_sales(ws: Workspace, period: str, rows: list[str]) -> None:
    (ws.landed / f"sales_{period}.csv").write_text("id,sold_at,amount\n" + "\n".join(rows) + "\n",
                                                   encoding="utf-8")


def test_check_passes_the_shipped_config_on_both_warehouses(workspace: Workspace) -> None:
    for args in ((), ("--warehouse", "sqlite"), ("--warehouse", "postgresql")):
        proc = workspace.main("pipeline", "check", *args)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("OK: datasets_config.yml (2 datasets) and 4 SQL files")
    assert workspace.main("pipeline", "check", "--warehouse", "oracle").returncode == 2


def test_check_refuses_a_file_with_one_line_naming_file_line_and_construct(workspace: Workspace) -> None:
    sales_workspace(workspace, NOT_ON_SQLITE)
    proc = workspace.cli("check", "--warehouse", "sqlite")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: transform.sql: line 2: to_char pattern 'Mon YYYY' cannot be run on SQLite faithfully "
        "(only YYYY, MM, DD, HH24, MI, SS and the separators - / : . , _ space are mapped exactly)"]
    assert workspace.main("pipeline", "check", "--warehouse", "postgresql").returncode == 0
    (workspace.root / "transform.sql").write_text(UNPARSEABLE, encoding="utf-8")
    for warehouse in ("sqlite", "postgresql"):
        proc = workspace.main("pipeline", "check", "--warehouse", warehouse)
        assert proc.returncode == 2
        assert proc.stderr.startswith("error: transform.sql: line 2: SQL cannot be parsed as PostgreSQL")


def test_run_checks_every_sql_file_before_processing_any(workspace: Workspace) -> None:
    sales_workspace(workspace, refused_sql(workspace))
    write_sales(workspace, "2025-01", ["1,2025-01-05 10:00:00,10.00"])
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 2 and "transform.sql: line " in proc.stderr
    assert "[1/1]" not in proc.stdout
    assert workspace.scalar("SELECT count(*) FROM meta.ingestion_log") == 0


def test_an_untranslatable_transform_is_refused_before_data_changes(workspace: Workspace) -> None:
    sales_workspace(workspace)
    write_sales(workspace, "2025-01", ["1,2025-01-05 10:00:00,10.00", "2,2025-01-06 11:00:00,20.50"])
    assert workspace.main("pipeline", "run").returncode == 0
    before = workspace.rows("SELECT id, amount FROM core.sales ORDER BY id")
    (workspace.root / "transform.sql").write_text(refused_sql(workspace), encoding="utf-8")
    proc = workspace.main("pipeline.transform", "--dataset", "sales", "--period", "2025-01")
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: transform.sql: line 2: ")
    assert workspace.rows("SELECT id, amount FROM core.sales ORDER BY id") == before
    assert workspace.scalar("SELECT count(*) FROM stage.sales") == 2
    status, error = workspace.rows("SELECT status, error FROM meta.load_log WHERE step = 'transform' "
                                   "ORDER BY id DESC")[0]
    assert status == "failed" and error == line.removeprefix("error: ")


def test_a_sql_error_at_run_time_names_the_file_and_line(workspace: Workspace) -> None:
    sales_workspace(workspace, "SELECT id,\n       no_such_column,\n       _data_period\n"
                               "FROM stage.sales WHERE _data_period = :period\n")
    write_sales(workspace, "2025-01", ["1,2025-01-05 10:00:00,10.00"])
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 1
    where = "transform.sql: line 2: " if workspace.backend == "postgresql" else "transform.sql: "
    assert f"{where}" in proc.stderr and "no_such_column" in proc.stderr
    [error] = workspace.rows("SELECT error FROM meta.load_log WHERE step = 'transform'")[0]
    assert where in error


def typed_rows(ws: Workspace, table: str, *columns: str) -> list[tuple]:
    """Rows as the workbench reads them (a reflected table: on SQLite a
    decimal column reads back as Decimal, not as the integer it stores)."""
    schema, name = table.split(".")
    with ws.engine.connect() as conn:
        t = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)
        query = sa.select(*(t.c[c] for c in columns)).order_by(*(t.c[c] for c in columns))
        return [tuple(r) for r in conn.execute(query)]


def test_a_decimal_money_mart_sums_exactly_on_both_warehouses(workspace: Workspace) -> None:
    sales_workspace(workspace)
    amounts = ["0.10", "0.20", "0.30"] * 400 + ["1234567.89", "0.01", "9999999999.99"]
    rows = [f"{i},2025-01-05 10:00:00,{a}" for i, a in enumerate(amounts, 1)]
    rows += [f"{len(amounts) + 1},2025-01-05 10:00:00,1.555"]  # 3 decimals: a type failure, dropped
    write_sales(workspace, "2025-01", rows)
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    expected = sum((Decimal(a) for a in amounts), Decimal(0))
    [(count, total, top)] = typed_rows(workspace, "mart.sales_total", "sales", "amount_total", "amount_max")
    assert count == len(amounts)
    assert total == expected == Decimal("10001234807.89")
    assert top == Decimal("9999999999.99")
    assert workspace.scalar("SELECT count(*) FROM meta.validation_errors WHERE \"check\" = 'type:decimal'") == 1
    core = [v for (_, v) in typed_rows(workspace, "core.sales", "id", "amount")]
    assert core == [Decimal(a) for a in amounts]


MONEY_MART = """SELECT COUNT(*) AS sales,
       SUM(amount) AS amount_total,
       round(SUM(amount), 1) AS total_1,
       SUM(amount * 3) AS tripled,
       SUM(amount) FILTER (WHERE amount > 0.15) AS above_15_cents,
       MAX(amount) - MIN(amount) AS spread
FROM core.sales
WHERE _data_period = :period
"""


def test_a_money_mart_near_ten_to_the_fifteen_is_exact_on_both_warehouses(workspace: Workspace) -> None:
    sales_workspace(workspace)
    workspace.use_config(SALES.format(transform="transform.sql").replace(
        "precision: 12, scale: 2, gt: 0, le: 9999999999.99", "precision: 14, scale: 2, gt: 0"))
    (workspace.root / "total.sql").write_text(MONEY_MART, encoding="utf-8")
    amounts = ["0.10", "0.20"] * 500 + ["999999999999.99"] * 1000 + ["0.05", "123456789.01"]
    write_sales(workspace, "2025-01", [f"{i},2025-01-05 10:00:00,{a}" for i, a in enumerate(amounts, 1)])
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    values = [Decimal(a) for a in amounts]
    total = sum(values, Decimal(0))
    assert total == Decimal("1000000123456929.06")  # near 10**15; a double sum would lose the cents
    assert float(total) != total
    [row] = typed_rows(workspace, "mart.sales_total", "sales", "amount_total", "total_1", "tripled",
                       "above_15_cents", "spread")
    assert row == (len(values), total, Decimal("1000000123456929.1"), total * 3,
                   sum((v for v in values if v > Decimal("0.15")), Decimal(0)),
                   Decimal("999999999999.99") - Decimal("0.05"))
    types = column_types(workspace, "mart", "sales_total")
    assert types["amount_total"] == "numeric(38,2)" and types["total_1"] == "numeric(38,1)"
    # What a notebook shows of the mart: the same Decimals.
    from pipeline.notebook_helpers import sample_rows
    frame = sample_rows(workspace.engine, "mart.sales_total", "2025-01")
    assert frame.loc[0, "amount_total"] == total and frame.loc[0, "total_1"] == Decimal("1000000123456929.1")


def test_check_refuses_an_inexact_decimal_construct_with_one_line(workspace: Workspace) -> None:
    sales_workspace(workspace)
    (workspace.root / "total.sql").write_text("SELECT COUNT(*) AS sales,\n       avg(amount) AS mean\n"
                                              "FROM core.sales WHERE _data_period = :period\n", encoding="utf-8")
    proc = workspace.main("pipeline", "check", "--warehouse", "sqlite")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: total.sql: line 2: avg() cannot be run on SQLite faithfully (PostgreSQL chooses the scale of a "
        "numeric average itself; use sum() and count(), or avg(CAST(... AS double precision)))"]
    assert workspace.main("pipeline", "check", "--warehouse", "postgresql").returncode == 0


def column_types(ws: Workspace, schema: str, table: str) -> dict[str, str]:
    """A table's column types in one vocabulary for both warehouses."""
    families = {"bigint": "bigint", "integer": "bigint", "double precision": "double", "float": "double",
                "double": "double", "real": "double", "text": "text", "character varying": "text",
                "varchar": "text", "date": "date", "timestamp without time zone": "timestamp",
                "datetime": "timestamp", "boolean": "boolean", "numeric": "numeric"}
    columns = sa.inspect(ws.engine).get_columns(table, schema=schema)
    out = {}
    for c in columns:
        name = c["type"].compile(dialect=ws.engine.dialect).lower()
        base = name.split("(")[0].strip()
        out[c["name"]] = families.get(base, base) + (name[len(base):].replace(" ", "") if base in ("numeric", "decimal") else "")
    return out


def test_core_and_mart_column_types_are_the_same_on_both_warehouses(
        pg_database: str, demo_dir: Path, tmp_path: Path) -> None:
    from pipeline import orchestrate
    from pipeline.context import Context
    from pipeline.settings import Settings
    from pipeline.warehouse.engine import dispose_engines
    from tests.conftest import CONFIG_PATH, reset_postgres

    reset_postgres(pg_database)
    types = {}
    for backend, url in (("sqlite", f"sqlite:///{tmp_path / 'wh' / 'workbench.sqlite'}"), ("postgres", pg_database)):
        data = tmp_path / backend
        (data / "landed").mkdir(parents=True)
        for src in demo_dir.glob("*_2025-03.*"):
            shutil.copy(src, data / "landed" / src.name)
        ctx = Context(Settings(data_dir=data, config_path=CONFIG_PATH, db_url=url))
        assert {o.status for o in orchestrate.run(ctx=ctx)} == {"succeeded"}
        ws = Workspace(root=tmp_path, db_url=url)
        types[backend] = {f"{s}.{t}": column_types(ws, s, t) for s, t in (
            ("core", "citizens"), ("core", "benefit_payments"),
            ("mart", "citizens_by_municipality"), ("mart", "benefits_by_municipality"))}
        dispose_engines()
    assert types["sqlite"] == types["postgres"]
    assert types["postgres"]["mart.citizens_by_municipality"]["women"] == "bigint"
    assert types["postgres"]["mart.citizens_by_municipality"]["avg_monthly_income"] == "double"
    assert types["postgres"]["mart.benefits_by_municipality"]["payments"] == "bigint"


def test_check_refuses_a_decimal_sqlite_cannot_store_exactly(workspace: Workspace) -> None:
    sales_workspace(workspace)
    workspace.use_config(SALES.format(transform="transform.sql").replace("precision: 12", "precision: 19"))
    proc = workspace.main("pipeline", "check", "--warehouse", "sqlite")
    assert proc.returncode == 2
    assert proc.stderr == ("error: datasets_config.yml: dataset 'sales', column 'amount': decimal(19,2) cannot be "
                           "stored exactly on sqlite (at most 18 digits)\n")
    assert workspace.main("pipeline", "check", "--warehouse", "postgresql").returncode == 0
    workspace.use_config(SALES.format(transform="transform.sql").replace("precision: 12", "precision: 18"))
    assert workspace.main("pipeline", "check", "--warehouse", "sqlite").returncode == 0


def test_decimal_expressions_in_core_keep_their_scale_into_the_mart(workspace: Workspace) -> None:
    """A transform's round() and product land in core at the scale the next
    file is translated with (amount keeps its config type, scale 2)."""
    sales_workspace(workspace, "SELECT id, sold_at, round(amount, 1) AS amount, amount * 3 AS tripled,\n"
                               "       amount > 0.15 AS big, _data_period\n"
                               "FROM stage.sales WHERE _data_period = :period\n")
    (workspace.root / "total.sql").write_text(
        "SELECT SUM(amount) AS amount_total, SUM(tripled) AS tripled_total,\n"
        "       COUNT(*) FILTER (WHERE big) AS bigs, MAX(tripled) - 0.005 AS top\n"
        "FROM core.sales WHERE _data_period = :period\n", encoding="utf-8")
    amounts = ["0.10", "0.25", "0.35", "1.05", "0.15"] * 40
    write_sales(workspace, "2025-01", [f"{i},2025-01-05 10:00:00,{a}" for i, a in enumerate(amounts, 1)])
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    values = [Decimal(a) for a in amounts]
    rounded = [v.quantize(Decimal("0.1"), rounding="ROUND_HALF_UP") for v in values]
    assert typed_rows(workspace, "core.sales", "id", "amount")[:5] == [
        (1, Decimal("0.10")), (2, Decimal("0.30")), (3, Decimal("0.40")), (4, Decimal("1.10")), (5, Decimal("0.20"))]
    assert typed_rows(workspace, "mart.sales_total", "amount_total", "tripled_total", "bigs", "top") == [
        (sum(rounded, Decimal(0)), sum(values, Decimal(0)) * 3, 120, Decimal("3.145"))]

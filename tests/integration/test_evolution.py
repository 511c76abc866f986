"""The config evolves (SPEC §10.4), on both warehouses: columns added after
months are loaded, destructive changes refused, depends_on order and
refreshes, warn severity, dataset rules, and accept-headers."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipeline.domain.schema import arrow_schema
from pipeline.io.config_file import load_config
from tests.conftest import Workspace

BASE = """\
datasets:
  things:
    file_pattern: '^things_(?P<period>\\d{4}-\\d{2})\\.csv$'
    primary_key: [id]
    columns:
      id: {type: integer, nullable: false}
      amount: {type: float}
"""
ADDED = BASE + """\
      colour: {type: string}
      score: {type: integer, nullable: false, default: 7}
"""


def land(ws: Workspace, name: str, text: str) -> Path:
    path = ws.landed / name
    path.write_text(text, encoding="utf-8")
    return path


def two_months(ws: Workspace) -> None:
    ws.use_config(BASE)
    land(ws, "things_2025-01.csv", "id,amount\n1,1.5\n2,2.5\n")
    land(ws, "things_2025-02.csv", "id,amount\n1,3.0\n")
    proc = ws.main("pipeline", "run")
    assert proc.returncode == 0, proc.stderr


def columns(ws: Workspace, schema: str, table: str) -> list[str]:
    return [c["name"] for c in sa.inspect(ws.engine).get_columns(table, schema=schema)]


def stage_rows(ws: Workspace) -> list[tuple]:
    return ws.rows("SELECT * FROM stage.things ORDER BY _data_period, id")


# --------------------------------------------------------------------------
# Additive evolution
# --------------------------------------------------------------------------
def test_added_column_is_added_by_the_next_load_old_months_null(workspace: Workspace) -> None:
    two_months(workspace)
    workspace.use_config(ADDED)
    land(workspace, "things_2025-03.csv", "id,amount,colour,score\n5,1.0,red,3\n")
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "1 loaded, 2 skipped, 0 failed" in proc.stdout
    for schema in ("stage", "core"):
        rows = workspace.rows(f"SELECT _data_period, id, colour, score FROM {schema}.things ORDER BY 1, 2")
        assert rows == [("2025-01", 1, None, 7), ("2025-01", 2, None, 7), ("2025-02", 1, None, 7),
                        ("2025-03", 5, "red", 3)], schema

    # The Parquet of all months reads as one table with the config's schema,
    # as notebooks/explore_parquet.ipynb reads it: old months null.
    config = load_config(workspace.config_path).dataset("things")
    unified = pa.schema([f.with_nullable(True) for f in arrow_schema(config)] + [pa.field("period", pa.string())])
    parts = pads.dataset(workspace.settings.cleaned_dir / "things", format="parquet", schema=unified,
                         partitioning=pads.partitioning(pa.schema([("period", pa.string())]), flavor="hive"))
    df = parts.to_table().to_pandas().sort_values(["period", "id"])
    assert list(df.columns) == ["id", "amount", "colour", "score", "period"]
    assert df["colour"].isna().tolist() == [True, True, True, False]
    assert df["period"].tolist() == ["2025-01", "2025-01", "2025-02", "2025-03"]


def test_migrate_adds_the_column_to_stage_and_core(workspace: Workspace) -> None:
    two_months(workspace)
    workspace.use_config(ADDED)
    proc = workspace.main("pipeline", "migrate")
    assert proc.returncode == 0, proc.stderr
    assert "added column stage.things.colour" in proc.stdout
    assert "added column core.things.score" in proc.stdout
    for schema in ("stage", "core"):
        assert columns(workspace, schema, "things")[-3:] == ["_data_period", "colour", "score"]
    assert workspace.rows("SELECT id, colour, score FROM stage.things ORDER BY _data_period, id") == [
        (1, None, 7), (2, None, 7), (1, None, 7)]
    again = workspace.main("pipeline", "migrate")
    assert again.returncode == 0 and "added column" not in again.stdout


def refused(ws: Workspace, config: str, column: str, why: str) -> None:
    two_months(ws)
    before = (columns(ws, "stage", "things"), stage_rows(ws))
    ws.use_config(config)
    proc = ws.main("pipeline", "migrate")
    assert proc.returncode == 1
    line = proc.stderr.strip()
    assert "\n" not in line and "dataset 'things'" in line and f"column {column!r}" in line and why in line, line
    assert "nothing changed" in line
    header = ",".join(load_config(ws.config_path).dataset("things").columns)
    land(ws, "things_2025-03.csv", header + "\n" + ",".join("1" for _ in header.split(",")) + "\n")
    proc = ws.main("pipeline", "run")
    assert proc.returncode == 1 and why in proc.stderr
    assert (columns(ws, "stage", "things"), stage_rows(ws)) == before


def test_removed_column_is_refused(workspace: Workspace) -> None:
    refused(workspace, BASE.replace("      amount: {type: float}\n", ""), "amount", "no longer in the config")


def test_type_change_is_refused(workspace: Workspace) -> None:
    refused(workspace, BASE.replace("amount: {type: float}", "amount: {type: string}"), "amount",
            "is float in stage.things but string in the config")


def test_new_not_null_column_without_default_is_refused(workspace: Workspace) -> None:
    refused(workspace, BASE + "      size: {type: integer, nullable: false}\n", "size",
            "nullable: false without a default")


def test_transform_result_gains_a_column(workspace: Workspace) -> None:
    """core from a transform: a new column in the SQL's result is added."""
    sql = workspace.root / "t.sql"
    sql.write_text("SELECT id, amount, _data_period FROM stage.things WHERE _data_period = :period")
    workspace.use_config(BASE.replace("    primary_key", "    transform: t.sql\n    primary_key"))
    land(workspace, "things_2025-01.csv", "id,amount\n1,1.5\n")
    assert workspace.main("pipeline", "run").returncode == 0
    sql.write_text("SELECT id, amount, amount * 2 AS twice, _data_period FROM stage.things "
                   "WHERE _data_period = :period")
    land(workspace, "things_2025-02.csv", "id,amount\n1,3.0\n")
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 0, proc.stderr
    assert workspace.rows("SELECT _data_period, twice FROM core.things ORDER BY 1") == [
        ("2025-01", None), ("2025-02", 6.0)]
    sql.write_text("SELECT id, _data_period FROM stage.things WHERE _data_period = :period")
    proc = workspace.main("pipeline", "reload", "--dataset", "things", "--period", "2025-02")
    assert proc.returncode == 1
    assert "column 'amount' of core.things is no longer in the result of its SQL" in proc.stderr


# --------------------------------------------------------------------------
# depends_on
# --------------------------------------------------------------------------
DEPENDS = """\
datasets:
  b:
    file_pattern: '^b_(?P<period>\\d{4}-\\d{2})\\.csv$'
    transform: b.sql
    depends_on: [a]
    columns:
      id: {type: integer}
  a:
    file_pattern: '^a_(?P<period>\\d{4}-\\d{2})\\.csv$'
    columns:
      id: {type: integer}
  c:
    file_pattern: '^c_(?P<period>\\d{4}-\\d{2})\\.csv$'
    transform: c.sql
    columns:
      id: {type: integer}
"""


def test_depends_on_orders_run_and_reload_refreshes_dependents(workspace: Workspace) -> None:
    (workspace.root / "b.sql").write_text(
        "SELECT b.id, a.id AS a_id, b._data_period FROM stage.b b LEFT JOIN stage.a a "
        "ON a.id = b.id AND a._data_period = b._data_period WHERE b._data_period = :period")
    # c's SQL mentions stage.a in a comment but does not depend on it
    (workspace.root / "c.sql").write_text(
        "-- not reading stage.a\nSELECT id, _data_period FROM stage.c WHERE _data_period = :period")
    workspace.use_config(DEPENDS)
    for name in ("a", "b", "c"):
        land(workspace, f"{name}_2025-01.csv", "id\n1\n")
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 0, proc.stderr
    order = [line.split("] ")[1].split(":")[0] for line in proc.stdout.splitlines() if line.startswith("[")]
    assert order == ["a_2025-01.csv", "b_2025-01.csv", "c_2025-01.csv"]
    assert workspace.rows("SELECT id, a_id FROM core.b") == [(1, 1)]

    land(workspace, "a_2025-01.csv", "id\n2\n")
    proc = workspace.main("pipeline", "reload", "--dataset", "a", "--period", "2025-01")
    assert proc.returncode == 0, proc.stderr
    assert "refreshed b 2025-01" in proc.stdout and "c 2025-01" not in proc.stdout
    assert workspace.rows("SELECT id, a_id FROM core.b") == [(1, None)]


def test_reload_of_citizens_refreshes_benefit_payments(workspace: Workspace, demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, "*_2025-01.*")
    assert workspace.main("pipeline", "run").returncode == 0
    proc = workspace.main("pipeline", "reload", "--dataset", "citizens", "--period", "2025-01")
    assert proc.returncode == 0, proc.stderr
    assert "refreshed benefit_payments 2025-01" in proc.stdout


# --------------------------------------------------------------------------
# severity: warn and rules
# --------------------------------------------------------------------------
RULES = """\
datasets:
  spans:
    file_pattern: '^spans_(?P<period>\\d{4}-\\d{2})\\.csv$'
    on_invalid_rows: ON_INVALID
    rules:
      - {column: end_date, op: ">=", other: start_date}
      - {column: start_date, within_period: true, severity: warn}
    columns:
      id: {type: integer}
      start_date: {type: date}
      end_date: {type: date}
      hours: {type: integer, ge: {value: 0, severity: warn}, le: 24}
"""
SPANS = """id,start_date,end_date,hours
1,2025-03-01,2025-03-02,5
2,2025-03-05,2025-03-01,-1
3,2025-02-27,2025-03-01,4
4,2025-03-09,2025-03-09,-2
5,2025-03-09,2025-03-08,30
"""


def validate_spans(ws: Workspace, mode: str) -> tuple:
    ws.use_config(RULES.replace("ON_INVALID", mode))
    path = land(ws, "spans_2025-03.csv", SPANS)
    assert ws.main("pipeline.ingest", "--file-path", str(path)).returncode == 0
    iid = ws.scalar("SELECT max(id) FROM meta.ingestion_log")
    proc = ws.main("pipeline.validate", "--file-id", str(iid))
    vid = ws.scalar("SELECT max(id) FROM meta.validation_log")
    errors = ws.rows('SELECT row_number, "column", "check", value FROM meta.validation_errors '
                     "WHERE validation_id = :v ORDER BY row_number, id", v=vid)
    return proc, errors, vid


def test_warn_rows_are_kept_and_rules_report_per_row(workspace: Workspace) -> None:
    proc, errors, vid = validate_spans(workspace, "drop")
    assert proc.returncode == 0, proc.stderr
    # Each failing row of a rule (a pandera DataFrame-level check) is logged
    # once, against the rule's column, the other column named in the check;
    # row 4 starts in February: the within_period rule only warns.
    assert errors == [
        (3, "end_date", ">= start_date", "2025-03-01"),
        (3, "hours", "warn: ≥ 0", "-1"),
        (4, "start_date", "warn: in period 2025-03", "2025-02-27"),
        (5, "hours", "warn: ≥ 0", "-2"),
        (6, "end_date", ">= start_date", "2025-03-08"),
        (6, "hours", "≤ 24", "30"),
    ]
    # rows 4 and 5 failed only warnings: kept; 3 and 6 dropped
    assert "2 invalid rows dropped, 2 rows with warnings kept" in proc.stdout
    parquet = Path(proc.stdout.strip().splitlines()[-1])
    assert pq.read_table(parquet).column("id").to_pylist() == [1, 3, 4]
    assert workspace.rows("SELECT rows_total, rows_valid, rows_invalid FROM meta.validation_log "
                          "WHERE id = :v", v=vid) == [(5, 3, 2)]


def test_run_and_status_show_the_rows_with_warnings(workspace: Workspace) -> None:
    workspace.use_config(RULES.replace("ON_INVALID", "drop"))
    land(workspace, "spans_2025-03.csv", SPANS)
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 0, proc.stderr
    assert "dropped 2 invalid rows, kept 2 rows with warnings" in proc.stdout
    table = workspace.main("pipeline", "status").stdout.splitlines()
    heads = table[0].split()
    row = next(line.split() for line in table if line.startswith("spans"))
    assert dict(zip(heads, row))["warned"] == "2" and dict(zip(heads, row))["dropped"] == "2"


def test_rule_with_error_severity_rejects_the_file(workspace: Workspace) -> None:
    proc, errors, _ = validate_spans(workspace, "reject")
    assert proc.returncode == 1
    line = proc.stderr.strip()
    assert "2 invalid rows" in line and "end_date >= start_date (row 3 '2025-03-01'; 1 more row)" in line
    assert "warn:" not in line


# --------------------------------------------------------------------------
# accept-headers
# --------------------------------------------------------------------------
CUSTOMERS = """\
# Customers config: this comment must survive accept-headers.
datasets:
  customers:
    file_pattern: '^customers_(?P<period>\\d{4}-\\d{2})\\.csv$'
    columns:
      customer_id: {type: integer, nullable: false, header: "Customer ID"}  # the key
      full_name:   {type: string, header: "Full Name"}
      city: string
"""


def test_accept_headers_writes_aliases_keeping_comments(workspace: Workspace) -> None:
    config = workspace.use_config(CUSTOMERS)
    land(workspace, "customers_2025-01.csv", "Cust ID,Full Name,Cty\n1,Ann,Oslo\n")
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 1 and "missing columns" in proc.stderr
    iid = workspace.scalar("SELECT max(id) FROM meta.ingestion_log")

    dry = workspace.cli("accept-headers", "--file-id", str(iid), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "customers.customer_id: header 'Cust ID'" in dry.stdout
    assert "customers.city: header 'Cty'" in dry.stdout and "dry run" in dry.stdout
    assert config.read_text() == CUSTOMERS

    proc = workspace.cli("accept-headers", "--file-id", str(iid))
    assert proc.returncode == 0, proc.stderr
    text = config.read_text()
    assert "# Customers config: this comment must survive accept-headers." in text
    assert "# the key" in text
    assert 'customer_id: {type: integer, nullable: false, header: ["Customer ID", Cust ID]}  # the key' in text
    assert "city: {type: string, header: Cty}" in text
    columns_ = load_config(config).dataset("customers").columns
    assert columns_["customer_id"].header_names == ("Customer ID", "Cust ID", "customer_id")
    assert columns_["city"].header_names == ("Cty", "city")

    proc = workspace.main("pipeline", "reload", "--dataset", "customers", "--period", "2025-01")
    assert proc.returncode == 0, proc.stderr
    assert workspace.rows("SELECT customer_id, full_name, city FROM stage.customers") == [(1, "Ann", "Oslo")]


def test_accept_headers_refuses_a_guess(workspace: Workspace) -> None:
    config = workspace.use_config(CUSTOMERS)
    land(workspace, "customers_2025-01.csv", "Customer ID,Full Name,Zebra\n1,Ann,Oslo\n")
    workspace.main("pipeline", "run")
    iid = workspace.scalar("SELECT max(id) FROM meta.ingestion_log")
    proc = workspace.cli("accept-headers", "--file-id", str(iid))
    assert proc.returncode == 1
    assert "no header close enough to column 'city'" in proc.stderr and "'Zebra'" in proc.stderr
    assert config.read_text() == CUSTOMERS


@pytest.mark.slow
def test_explore_notebook_reads_old_and_new_months(workspace: Workspace) -> None:
    """notebooks/explore_parquet.ipynb itself, under papermill, after a column
    was added: one table over all months, the new column null in old ones."""
    import papermill as pm

    from pipeline.notebook_helpers import NOTEBOOKS_DIR
    from pipeline.runners.notebook import kernel_options

    if workspace.backend != "sqlite":
        pytest.skip("reads Parquet only; the warehouse plays no part")
    two_months(workspace)
    workspace.use_config(ADDED)
    land(workspace, "things_2025-03.csv", "id,amount,colour,score\n5,1.0,red,3\n")
    assert workspace.main("pipeline", "run").returncode == 0
    out = pm.execute_notebook(str(NOTEBOOKS_DIR / "explore_parquet.ipynb"), str(workspace.root / "out.ipynb"),
                              parameters={"dataset": "things"}, kernel_name="python3", progress_bar=False,
                              **kernel_options())
    shown = "\n".join(o.get("text", "") for c in out.cells for o in c.get("outputs", []))
    assert "4 rows, 3 periods, columns: id, amount, colour, score, period" in shown

"""The Dagster asset graph (pipeline.orchestration.dagster, SPEC §10.6) with
Dagster's own test API (``materialize``, ``build_sensor_context``) and its
command line, on real SQLite and PostgreSQL warehouses.

Needs the ``dagster`` extra: without it the module is skipped with the reason,
except under CI=true, where that is a failure (as for PostgreSQL).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CONFIG_PATH, Workspace

try:
    import dagster as dg
except ImportError as exc:  # pragma: no cover - depends on the install
    reason = f"dagster is not installed ({exc}); pip install -e '.[dagster]'"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: under CI the Dagster tests must run", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

# The module builds its `defs` from the environment when imported; give it the
# shipped config whatever the current directory is.
with pytest.MonkeyPatch.context() as _mp:
    _mp.setenv("WORKBENCH_CONFIG", str(CONFIG_PATH))
    from pipeline.orchestration import dagster as orchestration

LAYERS = ("stage", "core", "mart")
CITIZENS_TABLES = ("stage.citizens", "core.citizens", "mart.citizens_by_municipality")


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
def resource(ws: Workspace) -> orchestration.WarehouseResource:
    return orchestration.WarehouseResource(db_url=ws.db_url, data_dir=str(ws.data_dir),
                                           config_path=str(ws.config_path))


def materialise(ws: Workspace, dataset: str, period: str, layers: tuple[str, ...] = LAYERS,
                **kwargs: Any) -> dg.ExecuteInProcessResult:
    defs = orchestration.build_defs(ws.settings)
    assets = [defs.get_assets_def(dg.AssetKey([dataset, layer])) for layer in layers]
    return dg.materialize(assets, partition_key=period, resources={"warehouse": resource(ws)},
                          instance=dg.DagsterInstance.ephemeral(), **kwargs)


def counts(ws: Workspace, table: str) -> dict[str, int]:
    return {p: int(n) for p, n in ws.rows(f"SELECT _data_period, count(*) FROM {table} GROUP BY _data_period")}


def digest(ws: Workspace, table: str) -> str:
    rows = sorted(repr(tuple(r)) for r in ws.rows(f"SELECT * FROM {table}"))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def status(ws: Workspace) -> dict[tuple[str, str], dict[str, Any]]:
    proc = ws.main("pipeline", "status", "--json")
    assert proc.returncode == 0, proc.stderr
    return {(r["dataset"], r["period"]): r for r in json.loads(proc.stdout)}


def checks(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def tick(ws: Workspace, cursor: str | None, defs: dg.Definitions | None = None) -> dg.SensorResult:
    defs = defs or orchestration.build_defs(ws.settings)
    sensor = defs.resolve_sensor_def(orchestration.SENSOR_NAME)
    context = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), cursor=cursor,
                                      resources={"warehouse": resource(ws)})
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------
# Definitions
# --------------------------------------------------------------------------
def test_defs_list_the_assets_and_the_landed_months(workspace: Workspace, demo_dir: Path) -> None:
    workspace.add_demo(demo_dir)  # 2025-01..06 both datasets, bad 2025-07 files, a misnamed file
    defs = orchestration.build_defs(workspace.settings, today=dt.date(2025, 7, 15))
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {f"{d}/{layer}" for d in ("citizens", "benefit_payments") for layer in LAYERS}
    months = [f"2025-0{m}" for m in range(1, 8)]  # the current month has files: it is there
    for dataset in ("citizens", "benefit_payments"):
        for layer in LAYERS:
            partitions = defs.get_assets_def(dg.AssetKey([dataset, layer])).partitions_def
            assert partitions is not None
            assert partitions.get_partition_keys(current_time=dt.datetime(2025, 7, 15)) == months
    # payments' transform joins the month's citizens: a dependency between datasets
    assert graph.get(dg.AssetKey(["benefit_payments", "core"])).parent_keys == {
        dg.AssetKey(["benefit_payments", "stage"]), dg.AssetKey(["citizens", "stage"])}
    assert graph.get(dg.AssetKey(["citizens", "core"])).parent_keys == {dg.AssetKey(["citizens", "stage"])}
    assert graph.get(dg.AssetKey(["citizens", "mart"])).parent_keys == {dg.AssetKey(["citizens", "core"])}
    assert {c.name for c in graph.get(dg.AssetKey(["citizens", "stage"])).check_keys} == {
        "file_accepted", "rows_valid"}
    assert defs.resolve_sensor_def("landed_files")
    assert defs.resolve_job_def("citizens_month")

    # Later, with no file for the current month, partitions end at the last complete month.
    later = orchestration.build_defs(workspace.settings, today=dt.date(2025, 9, 2))
    keys_later = later.get_assets_def(dg.AssetKey(["citizens", "stage"])).partitions_def.get_partition_keys(
        current_time=dt.datetime(2025, 9, 2))
    assert keys_later[0] == "2025-01" and keys_later[-1] == "2025-08"


def test_defs_without_landed_files_start_a_year_back(workspace: Workspace) -> None:
    defs = orchestration.build_defs(workspace.settings, today=dt.date(2026, 3, 10))
    keys = defs.get_assets_def(dg.AssetKey(["citizens", "stage"])).partitions_def.get_partition_keys(
        current_time=dt.datetime(2026, 3, 10))
    assert keys[0] == "2025-03" and keys[-1] == "2026-02" and len(keys) == 12


CUSTOM_CONFIG = """\
datasets:
  sales:
    file_pattern: '^sales_(?P<period>\\d{4}-\\d{2})\\.csv$'
    primary_key: [sale_id]
    columns:
      sale_id: {type: integer, nullable: false, ge: 1}
      amount:  {type: float, nullable: false, ge: 0}
"""


def test_a_custom_config_gets_its_own_assets_and_loads(workspace: Workspace) -> None:
    workspace.use_config(CUSTOM_CONFIG)
    (workspace.landed / "sales_2024-11.csv").write_text("sale_id,amount\n1,10.5\n2,3\n3,0\n", encoding="utf-8")
    defs = orchestration.build_defs(workspace.settings, today=dt.date(2025, 1, 5))
    assert {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()} == {
        "sales/stage", "sales/core", "sales/mart"}
    assert defs.get_assets_def(dg.AssetKey(["sales", "stage"])).partitions_def.get_partition_keys(
        current_time=dt.datetime(2025, 1, 5)) == ["2024-11", "2024-12"]
    result = materialise(workspace, "sales", "2024-11")
    assert result.success
    assert counts(workspace, "stage.sales") == counts(workspace, "core.sales") == {"2024-11": 3}
    assert workspace.rows("SELECT _data_period, row_count FROM mart.sales_summary") == [("2024-11", 3)]


# --------------------------------------------------------------------------
# Materialising a month
# --------------------------------------------------------------------------
def test_materialising_a_month_loads_what_the_cli_loads(workspace: Workspace, demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, "*_2025-0[1-6].*")
    result = materialise(workspace, "citizens", "2025-03")
    assert result.success
    rows = counts(workspace, "stage.citizens")
    assert list(rows) == ["2025-03"]  # exactly that month, nothing else
    n = rows["2025-03"]
    assert counts(workspace, "core.citizens") == {"2025-03": n}
    assert set(counts(workspace, "mart.citizens_by_municipality")) == {"2025-03"}
    # checks and metadata carry the validation outcome and the row counts
    found = checks(result)
    assert found["file_accepted"].passed and found["rows_valid"].passed
    meta = found["rows_valid"].metadata
    assert (meta["rows_total"].value, meta["rows_invalid"].value, meta["rows_dropped"].value) == (n, 0, 0)
    [stage] = result.asset_materializations_for_node("citizens__stage")
    assert stage.metadata["rows_inserted"].value == n and stage.metadata["rows_deleted"].value == 0
    # the product's logs: the dashboard and status see a Dagster load like any other
    assert workspace.rows("SELECT step, status, rows_inserted FROM meta.load_log "
                          "WHERE dataset = 'citizens' AND step = 'load_stage'") == [("load_stage", "succeeded", n)]
    row = status(workspace)[("citizens", "2025-03")]
    assert (row["stage_rows"], row["core_rows"], row["load_status"], row["validation_status"]) == (
        n, n, "succeeded", "passed")
    assert row["last_step"] == "publish" and row["file_name"] == "citizens_2025-03.xlsx"

    # The CLI reload of the same month afterwards (same locks, another process)
    # replaces it with exactly the same content.
    before = {t: digest(workspace, t) for t in CITIZENS_TABLES}
    proc = workspace.cli("reload", "--dataset", "citizens", "--period", "2025-03")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert {t: digest(workspace, t) for t in CITIZENS_TABLES} == before
    assert workspace.rows("SELECT rows_deleted, rows_inserted FROM meta.load_log WHERE step = 'load_stage' "
                          "ORDER BY id DESC LIMIT 1") == [(n, n)]
    assert status(workspace)[("citizens", "2025-03")]["stage_rows"] == n


def test_a_refused_file_fails_the_check_and_the_run_and_changes_nothing(workspace: Workspace,
                                                                       demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, "citizens_2025-0[67].*")
    assert materialise(workspace, "citizens", "2025-06").success
    before = {t: digest(workspace, t) for t in CITIZENS_TABLES}
    loads = workspace.scalar("SELECT count(*) FROM meta.load_log")

    # citizens_2025-07.xlsx has three invalid rows and the dataset rejects such files
    result = materialise(workspace, "citizens", "2025-07", raise_on_error=False)
    assert not result.success
    found = checks(result)
    assert found["file_accepted"].passed
    assert not found["rows_valid"].passed
    assert found["rows_valid"].metadata["rows_invalid"].value == 3
    assert not result.get_asset_materialization_events()
    assert {t: digest(workspace, t) for t in CITIZENS_TABLES} == before
    assert workspace.scalar("SELECT count(*) FROM meta.load_log") == loads
    [(state, error)] = workspace.rows("SELECT status, error FROM meta.validation_log WHERE period = '2025-07'")
    assert state == "failed" and "citizens_2025-07.xlsx" in error
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "citizens_2025-07.xlsx" in failure.event_specific_data.error.message  # type: ignore[union-attr]


def test_dropped_rows_pass_the_check_and_are_counted(workspace: Workspace, demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, "citizens_2025-01.*")
    lines = (demo_dir / "benefit_payments_2025-01.csv").read_text(encoding="utf-8").splitlines()
    cells = lines[1].split(",")
    cells[3] = "-5"  # Amount must be > 0; benefit_payments drops such rows
    lines[1] = ",".join(cells)
    (workspace.landed / "benefit_payments_2025-01.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = materialise(workspace, "benefit_payments", "2025-01", ("stage",))
    assert result.success
    meta = checks(result)["rows_valid"].metadata
    assert checks(result)["rows_valid"].passed
    assert (meta["rows_invalid"].value, meta["rows_dropped"].value) == (1, 1)
    assert meta["rows_total"].value == len(lines) - 1
    assert counts(workspace, "stage.benefit_payments") == {"2025-01": len(lines) - 2}


def test_a_file_refused_at_ingest_fails_the_file_check(workspace: Workspace, demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, "benefit_payments_2025-07.*")  # the Amount column is missing
    result = materialise(workspace, "benefit_payments", "2025-07", ("stage",), raise_on_error=False)
    assert not result.success
    found = checks(result)
    assert not found["file_accepted"].passed and "rows_valid" not in found
    assert "Amount" in found["file_accepted"].metadata["error"].value
    assert workspace.rows("SELECT status FROM meta.ingestion_log") == [("rejected",)]
    assert workspace.scalar("SELECT count(*) FROM meta.load_log") == 0


def test_a_month_without_a_file_fails_with_one_line(workspace: Workspace, demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, "citizens_2025-01.*")
    defs = orchestration.build_defs(workspace.settings, today=dt.date(2025, 4, 1))
    assets = [defs.get_assets_def(dg.AssetKey(["citizens", "stage"]))]
    result = dg.materialize(assets, partition_key="2025-02", resources={"warehouse": resource(workspace)},
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "no file for dataset 'citizens' and period 2025-02" in failure.event_specific_data.error.message  # type: ignore[union-attr]


def test_a_dagster_run_racing_a_cli_reload_ends_with_one_files_rows(workspace: Workspace,
                                                                   demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, "citizens_2025-0[45].*")
    assert materialise(workspace, "citizens", "2025-04").success
    n = counts(workspace, "stage.citizens")["2025-04"]
    cli = subprocess.Popen([sys.executable, "-m", "pipeline", "reload", "--dataset", "citizens",
                            "--period", "2025-04"], cwd=workspace.root, env=os.environ.copy(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = [materialise(workspace, "citizens", "2025-04") for _ in range(2)]
    out, err = cli.communicate(timeout=300)
    assert cli.returncode == 0, err + out
    assert all(r.success for r in results)
    assert counts(workspace, "stage.citizens") == {"2025-04": n}
    assert counts(workspace, "core.citizens") == {"2025-04": n}
    # every load of the month replaced the whole month
    inserted = workspace.rows("SELECT rows_inserted FROM meta.load_log WHERE step = 'load_stage'")
    assert len(inserted) == 4 and {r[0] for r in inserted} == {n}


# --------------------------------------------------------------------------
# The sensor on landed/
# --------------------------------------------------------------------------
def test_the_sensor_requests_new_and_changed_files_only(workspace: Workspace, demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, "*_2025-0[12].*")
    first = tick(workspace, None)
    by_key = {r.run_key: r for r in first.run_requests or []}
    landed = sorted(workspace.landed.iterdir())
    assert set(by_key) == {f"{p.name.rsplit('_', 1)[0]}|{p.stem[-7:]}|{sha(p)}" for p in landed}
    request = by_key[f"citizens|2025-01|{sha(workspace.landed / 'citizens_2025-01.xlsx')}"]
    assert request.partition_key == "2025-01"
    assert request.asset_selection == [dg.AssetKey(["citizens", layer]) for layer in LAYERS]

    assert not tick(workspace, first.cursor).run_requests  # nothing changed
    os.utime(workspace.landed / "citizens_2025-02.xlsx")  # touched, same bytes
    assert not tick(workspace, first.cursor).run_requests

    # A month loaded (by Dagster here, the CLI alike) is not requested again,
    # even by a sensor with no memory; a refused file neither.
    for dataset in ("citizens", "benefit_payments"):
        assert materialise(workspace, dataset, "2025-01").success
    fresh = tick(workspace, None)
    assert {r.partition_key for r in fresh.run_requests or []} == {"2025-02"}

    # a changed file: requested with the dependents that read it
    shutil.copy(demo_dir / "citizens_2025-03.xlsx", workspace.landed / "citizens_2025-01.xlsx")
    changed = tick(workspace, fresh.cursor)
    [request] = changed.run_requests or []
    assert request.run_key == f"citizens|2025-01|{sha(workspace.landed / 'citizens_2025-01.xlsx')}"
    assert request.asset_selection == [dg.AssetKey(["citizens", layer]) for layer in LAYERS] + [
        dg.AssetKey(["benefit_payments", "core"]), dg.AssetKey(["benefit_payments", "mart"])]

    # a new file, and one whose month lies outside the partitions of these defs
    defs = orchestration.build_defs(workspace.settings)
    workspace.add_demo(demo_dir, "citizens_2025-03.*")
    (workspace.landed / "citizens_2019-01.xlsx").write_bytes((demo_dir / "citizens_2025-03.xlsx").read_bytes())
    new = tick(workspace, changed.cursor, defs)
    assert [r.partition_key for r in new.run_requests or []] == ["2025-03"]
    assert not tick(workspace, new.cursor, defs).run_requests


def test_the_sensor_skips_a_refused_file_until_it_changes(workspace: Workspace, demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, "citizens_2025-07.*")
    assert not materialise(workspace, "citizens", "2025-07", raise_on_error=False).success
    assert not tick(workspace, None).run_requests
    shutil.copy(demo_dir / "citizens_2025-06.xlsx", workspace.landed / "citizens_2025-07.xlsx")
    assert [r.partition_key for r in tick(workspace, None).run_requests or []] == ["2025-07"]


# --------------------------------------------------------------------------
# The dashboard and the command line
# --------------------------------------------------------------------------
def test_the_dashboard_shows_dagster_loads(workspace: Workspace, demo_dir: Path) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    workspace.add_demo(demo_dir, "citizens_2025-02.*")
    assert materialise(workspace, "citizens", "2025-02").success
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "workbench" / "app.py"), default_timeout=60)
    at.run()  # the Overview page first, as a browser opens it
    at.switch_page("views/logs.py")
    at.session_state["view"] = "Load log"
    at.run()
    assert not at.exception, at.exception
    [log] = at.get_by_key("load_table").dataframe
    frame = log.value
    assert set(zip(frame["step"], frame["period"], frame["status"])) == {
        (step, "2025-02", "succeeded") for step in ("load_stage", "transform", "publish")}
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.mark.slow  # Dagster's CLI loads the code location and launches the run: ≈ 50 s here
def test_dagster_asset_materialize_command_loads_a_month(tmp_path: Path, demo_dir: Path) -> None:
    """The README's command, as a user types it (SQLite)."""
    landed = tmp_path / "data" / "landed"
    landed.mkdir(parents=True)
    shutil.copy(demo_dir / "citizens_2025-01.xlsx", landed)
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "WORKBENCH_DATA_DIR": str(tmp_path / "data"), "WORKBENCH_CONFIG": str(CONFIG_PATH),
           "DAGSTER_HOME": str(home)}
    env.pop("WORKBENCH_DB_URL", None)
    clock = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "pipeline.orchestration.dagster",
         "--select", "citizens/stage", "--partition", "2025-01"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    seconds = time.perf_counter() - clock
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = subprocess.run([sys.executable, "-m", "pipeline", "status", "--json"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    [row] = json.loads(shown.stdout)
    assert (row["dataset"], row["period"], row["load_status"], row["last_step"]) == (
        "citizens", "2025-01", "succeeded", "load_stage")
    assert row["stage_rows"] > 0 and row["core_rows"] is None  # only the stage asset was selected
    print(f"dagster asset materialize took {seconds:.1f} s")

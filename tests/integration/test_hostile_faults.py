"""Faults rather than bad files: a zip bomb under a memory cap, PostgreSQL
dropping the connection mid-COPY, and `run` killed at random moments."""
from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipeline.domain.schema import arrow_schema
from tests.conftest import Workspace
from tests.integration.hostile import CITIZENS, citizen, cleaned_files, snapshot, write_bomb, write_xlsx

CAP_MB = 1000  # where calamine aborts on the bomb, and a normal validate runs comfortably
CAPPED = """
import resource, sys
cap = int(sys.argv[1]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from pipeline.validate import main
sys.exit(main(["--file-id", sys.argv[2]]))
"""


def capped_validate(ws: Workspace, ingestion_id: int, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CAPPED, str(CAP_MB), str(ingestion_id)], cwd=ws.root,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=300)


def accepted(ws: Workspace, path: Path) -> int:
    # a generous limit at ingest, so that validate's own check is what is tested
    proc = ws.cli("--file-path", str(path), module="pipeline.ingest")
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_zip_bomb_is_refused_under_a_memory_cap_where_a_normal_file_passes(
        workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    normal = write_xlsx(workspace.landed / "citizens_2025-07.xlsx", [CITIZENS, citizen(1), citizen(2)])
    bomb = write_bomb(write_xlsx(workspace.landed / "citizens_2025-08.xlsx", [CITIZENS, citizen(1)]),
                      1_200_000_000)
    monkeypatch.setenv("WORKBENCH_MAX_XLSX_BYTES", str(10 * 2**30))
    normal_id, bomb_id = accepted(workspace, normal), accepted(workspace, bomb)
    monkeypatch.delenv("WORKBENCH_MAX_XLSX_BYTES")

    ok = capped_validate(workspace, normal_id)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().splitlines()[-1].endswith("period=2025-07/part-0.parquet")

    refused = capped_validate(workspace, bomb_id)
    assert refused.returncode == 1, refused.stderr[-2000:]
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "citizens_2025-08.xlsx" in lines[0] and "1,198,785,859 bytes" in lines[0]
    assert "limit 1,073,741,824" in lines[0], lines[0]
    assert workspace.rows("SELECT status FROM meta.validation_log WHERE ingestion_id = :i", i=bomb_id) == [
        ("failed",)]
    assert not (workspace.data_dir / "stage" / "cleaned" / "citizens" / "period=2025-08").exists()


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_memory_cap_is_real_without_the_size_check(workspace: Workspace,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The control for the test above: with the limit lifted, the same capped
    child cannot read the bomb (it dies, as the issue reported)."""
    bomb = write_bomb(write_xlsx(workspace.landed / "citizens_2025-08.xlsx", [CITIZENS, citizen(1)]),
                      1_200_000_000)
    monkeypatch.setenv("WORKBENCH_MAX_XLSX_BYTES", str(10 * 2**30))
    proc = capped_validate(workspace, accepted(workspace, bomb))
    assert proc.returncode != 0


# --------------------------------------------------------------------------
# PostgreSQL drops the connection in the middle of a COPY
# --------------------------------------------------------------------------
def _big_parquet(ws: Workspace, period: str, rows: int) -> Path:
    schema = arrow_schema(ws.config().dataset("citizens"))
    table = pa.table({
        "citizen_id": pa.array(range(1, rows + 1), pa.int64()),
        "first_name": pa.array(["Anna"] * rows), "last_name": pa.array(["Berg"] * rows),
        "birth_date": pa.array([dt.date(1980, 1, 2)] * rows), "sex": pa.array(["F"] * rows),
        "municipality_code": pa.array(["0219"] * rows), "household_id": pa.array([7] * rows, pa.int64()),
        "monthly_income": pa.array([1000.5] * rows),
    }).cast(schema)
    path = ws.root / "big" / f"period={period}" / "part-0.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table.replace_schema_metadata({b"workbench.period": period.encode()}), path)
    return path


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_lost_connection_mid_copy_logs_the_servers_reason(workspace: Workspace, demo_dir: Path) -> None:
    workspace.add_demo(demo_dir, "*_2025-01.*")
    assert workspace.main("pipeline", "run").returncode == 0
    path = _big_parquet(workspace, "2025-02", 400_000)
    before = snapshot(workspace)
    admin = sa.create_engine(workspace.db_url, isolation_level="AUTOCOMMIT")
    killed = threading.Event()

    def kill_copy() -> None:
        deadline = time.monotonic() + 120
        with admin.connect() as conn:
            while not killed.is_set() and time.monotonic() < deadline:
                # Only this test's database: parallel workers and other
                # sessions share the server and their COPYs must live.
                if conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        "WHERE query LIKE 'COPY %' AND pid <> pg_backend_pid() "
                                        "AND datname = current_database()")).first():
                    killed.set()
                time.sleep(0.01)

    killer = threading.Thread(target=kill_copy)
    killer.start()
    try:
        proc = workspace.main("pipeline.load_stage", "--parquet-path", str(path), "--period", "2025-02",
                              "--dataset", "citizens")
    finally:
        killed.set()
        killer.join()
        admin.dispose()
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "terminating connection due to administrator command" in lines[0], lines[0]
    assert snapshot(workspace) == before
    status, error = workspace.rows("SELECT status, error FROM meta.load_log ORDER BY id DESC")[0]
    assert status == "failed" and "terminating connection due to administrator command" in error


# --------------------------------------------------------------------------
# `run` killed at random moments converges on the next plain `run`
# --------------------------------------------------------------------------
def _counts(ws: Workspace) -> dict[str, dict[str, int]]:
    return snapshot(ws).counts


def test_run_killed_at_random_moments_converges(workspace: Workspace, demo_dir: Path,
                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    files = workspace.add_demo(demo_dir, "*_2025-0[12].*")
    assert len(files) == 4, files
    # the kills are aimed at run's work, not at the first-use migration
    assert workspace.main("pipeline", "migrate").returncode == 0
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    started = time.monotonic()
    probe = subprocess.Popen([sys.executable, "-m", "pipeline", "run"], cwd=workspace.root,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    delay = rng.uniform(0.5, 4.0)
    time.sleep(delay)
    probe.send_signal(signal.SIGKILL)
    probe.wait()
    kills = [delay]
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run"], cwd=workspace.root,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = rng.uniform(0.5, 8.0)
        kills.append(delay)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    final = workspace.cli("run")
    assert final.returncode == 0, f"seed {seed}, kills {kills}: {final.stdout}{final.stderr}"
    assert all(p.suffix == ".parquet" and pq.ParquetFile(workspace.data_dir / "stage" / p).metadata
               for p in map(Path, cleaned_files(workspace)) if not p.name.startswith("."))
    got = _counts(workspace)
    expected_stage = {"2025-01", "2025-02"}
    for table in ("stage.citizens", "stage.benefit_payments", "core.citizens", "core.benefit_payments"):
        assert set(got[table]) == expected_stage, (seed, kills, table, got[table])
    # the same as a clean run of the same files
    assert got["stage.citizens"] == got["core.citizens"], (seed, kills)
    valid = dict(workspace.rows(
        "SELECT v.period, v.rows_valid FROM meta.validation_log v WHERE v.status = 'passed' "
        "AND v.dataset = 'citizens' AND v.id IN (SELECT MAX(id) FROM meta.validation_log "
        "WHERE status = 'passed' GROUP BY dataset, period)"))
    assert got["stage.citizens"] == valid, (seed, kills)
    again = workspace.cli("run")
    assert again.returncode == 0 and "0 loaded, 4 skipped, 0 failed" in again.stdout, again.stdout
    assert time.monotonic() - started < 600

"""A month's state is always true (SPEC §10.1, issue 12), on both warehouses:
status, run's summary and the dashboard read one derivation of the run log."""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipeline.io.parquet import parquet_path_for
from pipeline.warehouse.runlog import utcnow, validation_log
from tests.conftest import Workspace

CONFIG = """
datasets:
  sales:
    file_pattern: '^sales_(?P<period>\\d{{4}}-\\d{{2}})\\.csv$'
    primary_key: [id]
    on_invalid_rows: {mode}
    columns:
      id: {{type: integer, nullable: false, header: "ID"}}
      amount: {{type: float, gt: 0, header: "{amount_header}"}}
"""
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")


def use(workspace: Workspace, mode: str = "reject", amount_header: str = "Amount") -> None:
    workspace.use_config(CONFIG.format(mode=mode, amount_header=amount_header))


def land(workspace: Workspace, period: str, rows: list[tuple[Any, Any]], header: str = "ID,Amount") -> Path:
    path = workspace.landed / f"sales_{period}.csv"
    path.write_text(header + "\n" + "".join(f"{a},{b}\n" for a, b in rows), encoding="utf-8")
    return path


def status(workspace: Workspace) -> dict[str, dict[str, Any]]:
    proc = workspace.main("pipeline", "status", "--json")
    assert proc.returncode == 0, proc.stderr
    return {r["period"]: r for r in json.loads(proc.stdout)}


def good(n: int, start: int = 1) -> list[tuple[Any, Any]]:
    return [(i, 10 + i) for i in range(start, start + n)]


def test_bad_redelivery_serves_the_previous_rows_and_a_good_reload_is_published(workspace: Workspace) -> None:
    use(workspace)
    path = land(workspace, "2025-01", good(5))
    good_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert workspace.main("pipeline", "run").returncode == 0
    first = status(workspace)["2025-01"]
    assert (first["state"], first["stage_rows"], first["served_file"]) == ("published", 5, path.name)
    assert first["served_sha256"] == good_sha

    land(workspace, "2025-01", good(3), header="ID,Amount (EUR)")  # a broken re-delivery
    proc = workspace.main("pipeline", "reload", "--dataset", "sales", "--period", "2025-01")
    assert proc.returncode == 1
    # the refusal lists the headers the file has, in its own spelling
    assert "missing column: 'Amount'; the header row has 'ID', 'Amount (EUR)'" in proc.stderr
    month = status(workspace)["2025-01"]
    assert month["state"] == "failed_serving_previous"
    assert (month["stage_rows"], month["served_file"], month["served_sha256"]) == (5, path.name, good_sha)
    assert month["ingestion_status"] == "rejected" and "missing column" in month["error"]
    assert "still serving the previous load" in workspace.main("pipeline", "status").stdout

    land(workspace, "2025-01", good(5))  # the good file is back
    assert workspace.main("pipeline", "reload", "--dataset", "sales", "--period", "2025-01").returncode == 0
    month = status(workspace)["2025-01"]
    assert month["state"] == "published"
    assert (month["ingestion_status"], month["validation_status"], month["load_status"]) == (
        "accepted", "passed", "succeeded")
    assert month["error"] is None and month["stage_rows"] == 5
    stamps = [month[k] for k in ("last_ingested_at", "last_loaded_at")]
    assert all(isinstance(s, str) and ISO_UTC.match(s) for s in stamps), stamps


def test_counts_are_of_every_failing_row_not_of_the_samples(workspace: Workspace) -> None:
    use(workspace)
    land(workspace, "2025-02", [(i, 0) for i in range(1, 1501)])  # CSV text 0 fails amount > 0
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 1
    assert "1,500 invalid rows: amount > 0 (row 2 '0'; 1,499 more rows)" in proc.stderr
    invalid, vid = workspace.rows("SELECT rows_invalid, id FROM meta.validation_log")[0]
    assert invalid == 1500
    samples = workspace.scalar("SELECT count(*) FROM meta.validation_errors WHERE validation_id = :v", v=vid)
    assert samples == 1000
    assert workspace.rows("SELECT DISTINCT value FROM meta.validation_errors") == [("0",)]


def test_dropped_rows_are_counted_in_run_status_and_the_log(workspace: Workspace) -> None:
    use(workspace, mode="drop")
    land(workspace, "2025-03", [*good(7), (8, -1), (9, 0), (10, "x")])
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 0, proc.stderr
    assert "loaded 7 rows (0 before), dropped 3 invalid rows" in proc.stdout
    assert workspace.scalar("SELECT rows_dropped FROM meta.validation_log") == 3
    month = status(workspace)["2025-03"]
    assert (month["state"], month["rows_dropped"], month["rows_warned"]) == ("published", 3, 0)


def test_a_config_fix_is_retried_by_a_plain_run(workspace: Workspace) -> None:
    use(workspace)
    land(workspace, "2025-04", good(4), header="ID,Amount (EUR)")
    assert workspace.main("pipeline", "run").returncode == 1
    again = workspace.main("pipeline", "run")
    assert again.returncode == 0
    assert "skipped: unchanged since it was rejected under the same config (--force to try again)" in again.stdout
    assert status(workspace)["2025-04"]["state"] == "failed"

    use(workspace, amount_header="Amount (EUR)")  # the alias the file uses
    assert status(workspace)["2025-04"]["state"] == "pending"  # today's config would judge it anew
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 0, proc.stderr
    assert "loaded 4 rows" in proc.stdout
    assert status(workspace)["2025-04"]["state"] == "published"


def test_a_disk_error_is_retried_by_a_plain_run_once_fixed(workspace: Workspace) -> None:
    use(workspace)
    land(workspace, "2025-05", good(3))
    # A real OSError: the Parquet folder's path is taken by a regular file.
    blocker = parquet_path_for(workspace.settings, "sales", "2025-05").parents[1]
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 1 and "FAILED at validate" in proc.stdout
    assert workspace.rows("SELECT status, retryable FROM meta.validation_log") == [("failed", True)]
    month = status(workspace)["2025-05"]
    assert (month["state"], month["retryable"]) == ("failed", True)
    assert workspace.main("pipeline", "run").returncode == 1  # tried again, not skipped

    blocker.unlink()
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 0, proc.stderr
    assert "loaded 3 rows" in proc.stdout
    assert status(workspace)["2025-05"]["state"] == "published"


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_validation_whose_process_died_is_marked_failed_at_the_next_start(workspace: Workspace) -> None:
    use(workspace)
    land(workspace, "2025-06", good(2))
    engine = workspace.engine
    with engine.begin() as conn:
        def running(**holder: Any) -> int:
            return int(conn.execute(sa.insert(validation_log).values(
                dataset="sales", period="2025-06", status="running", started_at=utcnow(), **holder,
            ).returning(validation_log.c.id)).scalar_one())
        dead = running(runner_host=socket.gethostname(), runner_pid=dead_pid())
        legacy = running()
        alive = running(runner_host=socket.gethostname(), runner_pid=os.getppid())
    assert workspace.main("pipeline", "run").returncode == 0
    rows = dict(workspace.rows("SELECT id, status FROM meta.validation_log WHERE id IN (:a, :b, :c)",
                               a=dead, b=legacy, c=alive))
    assert rows == {dead: "failed", legacy: "failed", alive: "running"}
    error, retryable = workspace.rows("SELECT error, retryable FROM meta.validation_log WHERE id = :i", i=dead)[0]
    assert "cause unknown" in error and bool(retryable)


def test_a_landed_file_not_yet_processed_is_pending_everywhere(workspace: Workspace) -> None:
    from workbench import data

    use(workspace)
    land(workspace, "2025-07", good(2))
    land(workspace, "2025-09", good(2))
    months = status(workspace)
    assert {p: m["state"] for p, m in months.items()} == {
        "2025-07": "pending", "2025-08": "missing", "2025-09": "pending"}
    frame = data.period_status(workspace.engine, workspace.config(), workspace.settings)
    assert dict(zip(frame["period"], frame["state"])) == {
        "2025-07": "pending", "2025-08": "missing", "2025-09": "pending"}
    assert workspace.main("pipeline", "run").returncode == 0
    (workspace.landed / "sales_2025-07.csv").write_text("ID,Amount\n1,99\n", encoding="utf-8")  # changed since
    states = {p: m["state"] for p, m in status(workspace).items()}
    assert states == {"2025-07": "pending", "2025-08": "missing", "2025-09": "published"}
    cov = data.coverage(data.period_status(workspace.engine, workspace.config(), workspace.settings))
    assert dict(zip(cov["period"], cov["state"])) == states


def test_a_step_not_run_since_the_last_load_makes_the_month_stale(workspace: Workspace) -> None:
    use(workspace)
    land(workspace, "2025-10", good(2))
    assert workspace.main("pipeline", "run").returncode == 0
    parquet = parquet_path_for(workspace.settings, "sales", "2025-10")
    proc = workspace.main("pipeline.load_stage", "--parquet-path", str(parquet), "--period", "2025-10",
                          "--dataset", "sales")
    assert proc.returncode == 0, proc.stderr
    assert status(workspace)["2025-10"]["state"] == "stale"


def test_run_prints_each_failure_once(workspace: Workspace) -> None:
    use(workspace)
    land(workspace, "2025-11", [(1, 0)])
    land(workspace, "2025-12", good(1), header="ID,Amt")
    proc = workspace.main("pipeline", "run")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 2 and proc.stderr.count("error: ") == 2
    for cause in ("amount > 0 (row 2 '0')", "missing column: 'Amount'"):
        assert (proc.stdout + proc.stderr).count(cause) == 1, (cause, proc.stdout, proc.stderr)


def test_status_into_a_closed_pipe_exits_quietly(workspace: Workspace) -> None:
    use(workspace)
    for month in range(1, 13):
        land(workspace, f"2024-{month:02d}", good(1))
    # The reader is gone before status writes (what `| head -1` leads to).
    read, write = os.pipe()
    os.close(read)
    proc = subprocess.run([sys.executable, "-m", "pipeline", "status"], stdout=write, stderr=subprocess.PIPE,
                          text=True, cwd=workspace.root, env=os.environ.copy(), timeout=120)
    os.close(write)
    assert proc.stderr == "" and proc.returncode == 0
    shell = subprocess.run(f"'{sys.executable}' -m pipeline status | head -1", shell=True, capture_output=True,
                           text=True, cwd=workspace.root, env=os.environ.copy(), timeout=120)
    assert shell.stderr == "" and shell.stdout.startswith("dataset")

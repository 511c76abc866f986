"""The notebooks: the committed files, the stage notebooks under papermill on
both backends (through ``run``/``reload --via-notebooks``), their failures,
the kernel they run on, and nbval over every notebook.

Every notebook execution starts a kernel and imports the package (a few
seconds on two cores), so each test runs as few notebooks as it needs.
"""
from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill as pm
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from papermill.cli import papermill as papermill_cli

from pipeline.context import Context
from pipeline.errors import StepFailed, UsageError
from pipeline.notebook_helpers import NOTEBOOKS_DIR, project_root_as_cwd
from pipeline.runners.direct import DirectRunner
from pipeline.runners.notebook import (
    PREVIOUS_DIR,
    STAGE_NOTEBOOKS,
    NotebookRunner,
    check_kernel,
    kernel_options,
    retire_previous_run,
)
from pipeline.warehouse.engine import dispose_engines
from tests.conftest import CONFIG_PATH

# Every test here starts Jupyter kernels (≈1 s each): `-m "not slow"` skips them.
pytestmark = pytest.mark.slow

STAGE_FILES = sorted(STAGE_NOTEBOOKS.values())
ALL_NOTEBOOKS = [*STAGE_FILES, "06_correction_review.ipynb", "explore_parquet.ipynb"]
PARAMETERS = {
    "01_ingest.ipynb": ["file_path"],
    "02_validate.ipynb": ["ingestion_id"],
    "03_load_stage.ipynb": ["parquet_path", "period", "dataset"],
    "04_transform.ipynb": ["period", "dataset"],
    "05_publish.ipynb": ["period", "dataset"],
    "06_correction_review.ipynb": ["dataset", "period"],
    "explore_parquet.ipynb": ["dataset", "periods", "measure", "compare"],
}
STAMP_RE = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def errors_in(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(o.ename, o.evalue) for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.output_type == "error"]


def text_of(nb: nbformat.NotebookNode) -> str:
    """Everything the executed notebook shows, as plain text."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                parts.append(out.data.get("text/plain", ""))
            elif out.output_type == "error":
                parts.append(f"{out.ename}: {out.evalue}")
    return "\n".join(parts)


# --------------------------------------------------------------------------
# The committed notebooks
# --------------------------------------------------------------------------
def test_notebook_folder_holds_the_stage_and_exploration_notebooks() -> None:
    assert sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")) == sorted(ALL_NOTEBOOKS)


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_committed_notebook_is_clean_and_parameterized(name: str) -> None:
    nb = read(NOTEBOOKS_DIR / name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), \
        f"{name} carries outputs or execution counts: clear them before committing"
    assert "papermill" not in nb.metadata, f"{name} is an executed copy, not the source notebook"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name} needs exactly one cell tagged 'parameters'"
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert nb.metadata.kernelspec.name == "python3"
    # every parameter is typed and explained on its own line
    assigned = [line for line in tagged[0].source.splitlines() if re.match(r"^\w+\s*:", line)]
    assert [line.split(":")[0] for line in assigned] == PARAMETERS[name]
    for line in assigned:
        assert re.match(r"^\w+: [\w\[\], ]+ = .+  # \w", line), line


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_help_notebook_shows_each_parameter_with_its_comment(name: str) -> None:
    path = NOTEBOOKS_DIR / name
    result = CliRunner().invoke(papermill_cli, ["--help-notebook", str(path)])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    source = next(c for c in read(path).cells if "parameters" in c.metadata.get("tags", [])).source
    for line in source.splitlines():
        if re.match(r"^\w+\s*:", line):
            param, comment = line.split(":")[0], line.split("#", 1)[1].strip()
            assert f"{param}: " in flat, f"{param} missing from --help-notebook of {name}"
            assert " ".join(comment.split()) in flat, f"the comment of {param} is not shown for {name}"


# --------------------------------------------------------------------------
# The kernel
# --------------------------------------------------------------------------
def test_python3_kernel_runs_this_environment(tmp_path: Path) -> None:
    check_kernel("python3")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.prefix)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    out = pm.execute_notebook(nb, str(tmp_path / "out.ipynb"), kernel_name="python3",
                              progress_bar=False, **kernel_options())
    assert out.cells[0].outputs[0].text.strip() == sys.prefix


def test_a_python3_kernelspec_of_another_interpreter_is_refused(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        '{"argv": ["/opt/elsewhere/bin/python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],'
        ' "display_name": "other", "language": "python"}', encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))  # searched before every other kernel folder
    with pytest.raises(UsageError, match="runs /opt/elsewhere/bin/python3, not this interpreter"):
        check_kernel("python3")


# --------------------------------------------------------------------------
# run / reload --via-notebooks (every stage notebook, on each backend)
# --------------------------------------------------------------------------
def assert_executed_stages(workspace, dataset: str, period: str, names: list[str]) -> None:  # type: ignore[no-untyped-def]
    """The period's folder holds exactly ``names``, executed without error,
    showing what their stage did."""
    folder = workspace.data_dir / "runs" / dataset / period
    assert sorted(p.name for p in folder.glob("*.ipynb")) == names
    for name in names:
        nb = read(folder / name)
        assert nb.metadata.papermill.exception is None and not errors_in(nb), f"{period}/{name}"
        # parameters went in as the strings they are (never 202501 the int)
        assert all(isinstance(v, (str, int)) for v in nb.metadata.papermill.parameters.values())
        if "period" in nb.metadata.papermill.parameters:
            assert nb.metadata.papermill.parameters["period"] == period
    stage_rows = workspace.scalar("SELECT count(*) FROM stage.citizens WHERE _data_period = :p", p=period)
    assert stage_rows > 0
    if "03_load_stage.ipynb" in names:
        shown = text_of(read(folder / "03_load_stage.ipynb"))
        assert re.search(rf"stage\.citizens {period}: \d+ rows deleted, {stage_rows} inserted", shown)
        assert "rows_after" in shown and "load_stage" in shown  # the counts table and the log row
    if "01_ingest.ipynb" in names:
        shown = text_of(read(folder / "01_ingest.ipynb"))
        assert f"citizens_{period}.xlsx" in shown and "accepted" in shown


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_run_via_notebooks_on_postgres(workspace, demo_dir: Path) -> None:  # type: ignore[no-untyped-def]
    workspace.add_demo(demo_dir, "citizens_2025-01*")
    result = workspace.cli("run", "--via-notebooks")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_executed_stages(workspace, "citizens", "2025-01", STAGE_FILES)
    assert workspace.scalar("SELECT count(*) FROM core.citizens") == workspace.scalar(
        "SELECT count(*) FROM stage.citizens")
    assert workspace.scalar("SELECT count(DISTINCT _data_period) FROM mart.citizens_by_municipality") == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_run_and_reload_via_notebooks(workspace, demo_dir: Path) -> None:  # type: ignore[no-untyped-def]
    assert len(workspace.add_demo(demo_dir, "citizens_2025-0[12]*")) == 2
    result = workspace.cli("run", "--via-notebooks")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 loaded, 0 skipped, 0 failed" in result.stdout
    assert "without encryption" not in result.stderr  # the kernels stay quiet

    runs = workspace.data_dir / "runs"
    assert sorted(p.relative_to(runs).parent.as_posix() for p in runs.rglob("*.ipynb")) == sorted(
        [f"citizens/{period}" for period in ("2025-01", "2025-02") for _ in STAGE_FILES])
    for period in ("2025-01", "2025-02"):
        assert_executed_stages(workspace, "citizens", period, STAGE_FILES)
    core = workspace.rows("SELECT _data_period, count(*) FROM core.citizens GROUP BY _data_period ORDER BY 1")
    assert [p for p, _ in core] == ["2025-01", "2025-02"]

    # reload of an unchanged file: a whole new run, ingest included (every
    # reload is one complete attempt in the log); the previous run moves,
    # untouched, to previous/<UTC timestamp>/
    folder = runs / "citizens" / "2025-01"
    first_run = {p.name: p.read_bytes() for p in folder.glob("*.ipynb")}
    result = workspace.cli("reload", "--dataset", "citizens", "--period", "2025-01", "--via-notebooks")
    assert result.returncode == 0, result.stdout + result.stderr
    kept = list((folder / PREVIOUS_DIR).iterdir())
    assert len(kept) == 1 and STAMP_RE.match(kept[0].name), kept
    assert {p.name: p.read_bytes() for p in kept[0].glob("*.ipynb")} == first_run
    assert_executed_stages(workspace, "citizens", "2025-01", STAGE_FILES)
    assert not (runs / "citizens" / "2025-02" / PREVIOUS_DIR).exists()
    load_log = workspace.rows("SELECT period, count(*) FROM meta.load_log WHERE step = 'load_stage' "
                              "AND status = 'succeeded' GROUP BY period ORDER BY period")
    assert load_log == [("2025-01", 2), ("2025-02", 1)]


# --------------------------------------------------------------------------
# Failures
# --------------------------------------------------------------------------
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_refused_files_fail_their_notebook_and_run_reports_the_logged_reason(
        workspace, demo_dir: Path) -> None:  # type: ignore[no-untyped-def]
    workspace.add_demo(demo_dir, "citizens_june_final(2).xlsx")  # a name no dataset matches
    workspace.add_demo(demo_dir, "citizens_2025-07.xlsx")  # three invalid rows

    result = workspace.cli("run", "--via-notebooks")
    assert result.returncode == 1
    runs = workspace.data_dir / "runs"

    rejected = workspace.rows("SELECT error FROM meta.ingestion_log WHERE status = 'rejected'")
    assert rejected == [("citizens_june_final(2).xlsx: the name matches no dataset's file_pattern",)]
    nb = read(runs / "_rejected" / "citizens_june_final(2).xlsx" / "01_ingest.ipynb")
    assert errors_in(nb) == [("FileRefused", rejected[0][0])]

    failed = workspace.scalar("SELECT error FROM meta.validation_log WHERE status = 'failed'")
    assert "3 invalid rows" in failed
    nb = read(runs / "citizens" / "2025-07" / "02_validate.ipynb")
    assert errors_in(nb) == [("FileRefused", failed)]
    assert sorted(p.name for p in (runs / "citizens" / "2025-07").glob("*.ipynb")) == STAGE_FILES[:2]

    # the same lines as without notebooks: the file named once, then the logged reason
    assert f"error: {rejected[0][0]}" in result.stderr.splitlines()
    assert f"error: {failed}" in result.stderr.splitlines()
    assert workspace.scalar("SELECT count(*) FROM meta.load_log") == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_failing_stage_fails_papermill_and_the_runner_raises_the_package_error(
        workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    ctx = Context(workspace.settings)
    with pytest.raises(StepFailed) as direct:
        DirectRunner().transform("citizens", "2025-03", ctx)

    # papermill itself fails, and the executed notebook shows the one-line message
    out = tmp_path / "out.ipynb"
    with pytest.raises(pm.PapermillExecutionError) as failed:
        pm.execute_notebook(str(NOTEBOOKS_DIR / "04_transform.ipynb"), str(out),
                            parameters={"period": "2025-03", "dataset": "citizens"},
                            kernel_name="python3", progress_bar=False, **kernel_options())
    assert failed.value.ename == "StepFailed" and failed.value.evalue == str(direct.value)
    assert errors_in(read(out)) == [("StepFailed", str(direct.value))]

    # the runner turns it back into the package's error, with the same words;
    # the kernel gets the context's settings, whatever this process's environment says
    monkeypatch.setenv("WORKBENCH_DB_URL", "postgresql+psycopg2://nobody@127.0.0.1:9/nowhere")
    with pytest.raises(StepFailed) as via_notebook:
        NotebookRunner().transform("citizens", "2025-03", ctx)
    assert str(via_notebook.value) == str(direct.value)
    kept = workspace.data_dir / "runs" / "citizens" / "2025-03" / "04_transform.ipynb"
    assert errors_in(read(kept)) == [("StepFailed", str(direct.value))]


def test_kernels_started_in_the_notebooks_folder_work_from_the_project_root(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(NOTEBOOKS_DIR)  # where Jupyter and nbval start a notebook's kernel
    assert project_root_as_cwd() == NOTEBOOKS_DIR.parent and Path.cwd() == NOTEBOOKS_DIR.parent
    monkeypatch.chdir(tmp_path)  # anywhere else (papermill, the runner): left alone
    assert project_root_as_cwd() == tmp_path


def test_retiring_a_run_moves_its_notebooks_and_never_overwrites(tmp_path: Path) -> None:
    folder = tmp_path / "citizens" / "2025-01"
    assert retire_previous_run(folder) is None  # nothing to keep yet
    for round_ in ("a", "b"):
        folder.mkdir(parents=True, exist_ok=True)
        for name in STAGE_FILES[:2]:
            (folder / name).write_text(round_)
            os.utime(folder / name, (1_750_000_000, 1_750_000_000))  # both rounds: the same second
        retire_previous_run(folder)
    kept = sorted(p.name for p in (folder / PREVIOUS_DIR).iterdir())
    assert kept == ["20250615T150640Z", "20250615T150640Z-2"]
    assert (folder / PREVIOUS_DIR / kept[1] / STAGE_FILES[0]).read_text() == "b"
    assert list(folder.glob("*.ipynb")) == []


# --------------------------------------------------------------------------
# What an analyst reads: charts offline, failed months, list parameters
# --------------------------------------------------------------------------
def run_notebook(name: str, out: Path, parameters: dict, *, fails: bool = False) -> nbformat.NotebookNode:
    """Execute ``name`` under papermill as an analyst would; the executed notebook."""
    try:
        pm.execute_notebook(str(NOTEBOOKS_DIR / name), str(out), parameters=parameters,
                            kernel_name="python3", progress_bar=False, **kernel_options())
    except pm.PapermillExecutionError:
        assert fails, text_of(read(out))[-3000:]
    else:
        assert not fails, f"{name} did not fail"
    return read(out)


def external_scripts(html: str) -> set[str]:
    return set(re.findall(r"""<script[^>]*\ssrc=["']?(https?://[^"'\s>]+)""", html))


def test_every_notebook_that_charts_draws_static_charts() -> None:
    for name in ALL_NOTEBOOKS:
        source = "\n".join(c.source for c in read(NOTEBOOKS_DIR / name).cells if c.cell_type == "code")
        if "altair" in source or ".plot(" in source:
            assert "static_charts()" in source, f"{name} draws charts that need a CDN when exported"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_explore_chart_renders_offline_in_exported_html(workspace, demo_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from nbconvert import HTMLExporter

    workspace.add_demo(demo_dir, "citizens_2025-0[12]*")
    assert workspace.main("pipeline", "run").returncode == 0
    nb = run_notebook("explore_parquet.ipynb", workspace.root / "explore.ipynb", {"dataset": "citizens"})
    charts = [o for c in nb.cells for o in c.get("outputs", []) if "image/svg+xml" in o.get("data", {})]
    assert len(charts) == 1 and "mean monthly_income" in charts[0].data["image/svg+xml"]

    html, _ = HTMLExporter().from_notebook_node(nb)
    # the chart is drawn in the page itself (nbconvert embeds an SVG output as a data: image) ...
    images = re.findall(r'<img[^>]*\ssrc="data:image/svg\+xml;base64,([^"]+)"', html)
    svgs = [base64.b64decode(data).decode() for data in images]
    assert any("mean monthly_income" in svg and "total monthly_income" in svg for svg in svgs)
    # ... and nothing loads vega from the network: the only scripts from
    # elsewhere are those nbconvert's template puts in every page (require.js,
    # MathJax), which an empty notebook's export has too
    assert not re.search(r"https?://[^\s\"'<>]*vega", html), "the export still names vega on the network"
    assert "cdn.jsdelivr.net" not in html
    empty, _ = HTMLExporter().from_notebook_node(nbformat.v4.new_notebook())
    assert external_scripts(html) <= external_scripts(empty)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_failed_month_explains_itself_in_the_notebooks(workspace, demo_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from pipeline.notebook_helpers import explain_month

    workspace.add_demo(demo_dir, "citizens_2025-01*")
    workspace.add_demo(demo_dir, "*_2025-07*")  # citizens: 3 invalid rows; payments: a column missing
    assert workspace.main("pipeline", "run").returncode == 1
    (failed_id, failed), = workspace.rows("SELECT id, error FROM meta.validation_log WHERE status = 'failed'")
    (rejected_id, rejected), = workspace.rows("SELECT id, error FROM meta.ingestion_log WHERE status = 'rejected'")
    reason = f"citizens 2025-07: failed at validate — {failed}"
    cells = f"meta.validation_errors, validation_id {failed_id}"

    # a stage notebook run for that month: the month's reason and where to look, then the stage's error
    nb = run_notebook("03_load_stage.ipynb", workspace.root / "load.ipynb",
                      {"dataset": "citizens", "period": "2025-07"}, fails=True)
    shown = text_of(nb)
    assert reason in shown and cells in shown and "python -m pipeline status" in shown
    assert shown.index(reason) < shown.index("UsageError: no such Parquet file")

    # explore asked for that month alone fails with the reason, not "0 rows, 0 periods"
    nb = run_notebook("explore_parquet.ipynb", workspace.root / "explore-failed.ipynb",
                      {"dataset": "citizens", "periods": ["2025-07"]}, fails=True)
    shown = text_of(nb)
    assert "0 rows, 0 periods" not in shown
    assert errors_in(nb)[0][0] == "FileNotFoundError" and reason in errors_in(nb)[0][1] and cells in shown

    # every month: what could be read, then why 2025-07 is not there
    nb = run_notebook("explore_parquet.ipynb", workspace.root / "explore.ipynb", {"dataset": "citizens"})
    shown = text_of(nb)
    read_rows = workspace.scalar("SELECT count(*) FROM stage.citizens")
    assert f"{read_rows} rows, 1 periods" in shown and reason in shown and not errors_in(nb)

    # a file refused at ingest: its header line, and its log row
    explained = explain_month(Context(workspace.settings), "benefit_payments", "2025-07")
    assert explained.startswith(f"benefit_payments 2025-07: failed at ingest — {rejected}")
    assert f"meta.ingestion_log id {rejected_id}" in explained


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_list_parameters_pass_as_json_with_p(workspace, demo_dir: Path) -> None:  # type: ignore[no-untyped-def]
    workspace.add_demo(demo_dir, "citizens_2025-0[123]*")
    assert workspace.main("pipeline", "run").returncode == 0
    out = workspace.root / "explore.ipynb"
    # the README's command line: papermill -p hands the list over as JSON text
    result = CliRunner().invoke(papermill_cli, [
        str(NOTEBOOKS_DIR / "explore_parquet.ipynb"), str(out), "--no-progress-bar",
        "-p", "periods", '["2025-01", "2025-03"]', "-p", "compare", '["2025-01", "2025-03"]'])
    assert result.exit_code == 0, result.output
    nb = read(out)
    assert nb.metadata.papermill.parameters["periods"] == '["2025-01", "2025-03"]'
    shown = text_of(nb)
    read_rows = workspace.scalar("SELECT count(*) FROM stage.citizens WHERE _data_period IN ('2025-01', '2025-03')")
    assert f"{read_rows} rows, 2 periods" in shown
    rows_per_period = next(o.data["text/plain"] for c in nb.cells if "groupby(\"period\").size()" in c.source
                           for o in c.outputs if o.output_type == "execute_result")
    assert "2025-01" in rows_per_period and "2025-03" in rows_per_period and "2025-02" not in rows_per_period
    assert "in 2025-01" in shown and "in 2025-03" in shown  # compared those two

    # not a JSON list: one clear line
    result = CliRunner().invoke(papermill_cli, [
        str(NOTEBOOKS_DIR / "explore_parquet.ipynb"), str(out), "--no-progress-bar", "-p", "periods", "[2025-01"])
    assert result.exit_code != 0
    assert errors_in(read(out))[0] == ("UsageError", "periods: '[2025-01' is not a JSON list of strings; pass "
                                       """-p periods '["a", "b"]' (double quotes inside) or -y 'periods: [a, b]'""")


# --------------------------------------------------------------------------
# nbval: every notebook with its default parameters on a demo workspace
# --------------------------------------------------------------------------
def test_notebooks_pass_nbval_on_a_demo_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.__main__ import main

    # the embedded SQLite default under the data dir, as on an analyst's machine
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WORKBENCH_CONFIG", str(CONFIG_PATH))
    # what an analyst does first: python -m pipeline demo && python -m pipeline run
    try:
        assert main(["demo", "--months", "2", "--rows", "40"]) == 0
        assert main(["run"]) == 0
    finally:
        dispose_engines()

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", str(NOTEBOOKS_DIR), "-p", "no:cacheprovider",
         "-v", "--no-header"],
        # wide "terminal": -v prints each notebook cell's full test id
        cwd=tmp_path, env={**os.environ, "COLUMNS": "1000"}, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    for name in ALL_NOTEBOOKS:  # nbval names a cell notebooks/<stem>::ipynb::Cell N
        assert f"notebooks/{name.removesuffix('.ipynb')}:" in result.stdout, f"nbval did not run {name}"
    # the notebooks worked on that warehouse: 01_ingest logged the file again
    try:
        with Context().engine.connect() as conn:
            ingests = conn.execute(sa.text(
                "SELECT status FROM meta.ingestion_log WHERE file_name = 'citizens_2025-01.xlsx'")).all()
    finally:
        dispose_engines()
    assert [s for (s,) in ingests] == ["accepted", "accepted"]  # by run, then by 01_ingest under nbval

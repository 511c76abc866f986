"""The evolving config's keys (SPEC §10.4): depends_on, severity, rules,
default, header lists, python_checks beside the config; and the header
matching behind accept-headers."""
from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from pipeline.context import Context
from pipeline.domain.config import dependency_order, dependents_of
from pipeline.domain.header_match import match_headers, similarity
from pipeline.domain.validation import check_frame, decide
from pipeline.errors import ConfigError, FileRefused
from pipeline.io.config_file import load_config
from pipeline.orchestrate import landed_deliveries
from pipeline.settings import Settings
from pipeline.warehouse.query import check_declared_reads
from tests.conftest import CONFIG_PATH


def dataset(name: str, **extra: Any) -> dict[str, Any]:
    return {"file_pattern": rf"^{name}_(?P<period>\d{{4}}-\d{{2}})\.csv$",
            "columns": {"id": {"type": "integer"}, "start": {"type": "date"}, "end": {"type": "date"},
                        "n": {"type": "integer"}},
            **extra}


def load(tmp_path: Path, datasets: dict[str, Any]) -> Any:
    path = tmp_path / "conf" / "datasets_config.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"datasets": datasets}, sort_keys=False))
    return load_config(path)


# --------------------------------------------------------------------------
# depends_on
# --------------------------------------------------------------------------
def test_dependency_order_puts_dependencies_first(tmp_path: Path) -> None:
    config = load(tmp_path, {"c": dataset("c", depends_on=["b"]), "b": dataset("b", depends_on=["a"]),
                             "a": dataset("a"), "d": dataset("d")})
    assert dependency_order(config) == ["a", "b", "c", "d"]
    assert dependents_of(config, "a") == ["b", "c"]
    assert dependents_of(config, "d") == []


@pytest.mark.parametrize("datasets, fragment", [
    ({"a": dataset("a", depends_on=["nope"])}, "dataset 'a', key 'depends_on': 'nope' is not a dataset"),
    ({"a": dataset("a", depends_on=["a"])}, "dataset 'a', key 'depends_on': a dataset cannot depend on itself"),
    ({"a": dataset("a", depends_on=["b"]), "b": dataset("b", depends_on=["c"]),
      "c": dataset("c", depends_on=["a"])}, "key 'depends_on': cycle a → b → c → a"),
    ({"a": dataset("a", depends_on="b c")}, "'b c' is not a dataset"),
    ({"a": dataset("a", depends_on=[1])}, "key 'depends_on': expected a list of dataset names"),
])
def test_bad_depends_on_is_a_config_error(tmp_path: Path, datasets: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        load(tmp_path, datasets)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_shipped_config_declares_payments_after_citizens() -> None:
    config = load_config(CONFIG_PATH)
    assert config.dataset("benefit_payments").depends_on == ("citizens",)
    assert config.dataset("benefit_payments").rules[0].within_period


def test_run_order_is_period_then_dependency_order(tmp_path: Path) -> None:
    config = load(tmp_path, {"b": dataset("b", depends_on=["a"]), "a": dataset("a")})
    landed = tmp_path / "data" / "landed"
    landed.mkdir(parents=True)
    for name in ("b_2025-02.csv", "a_2025-02.csv", "b_2025-01.csv", "a_2025-01.csv"):
        (landed / name).write_text("id\n")
    ctx = Context(Settings(data_dir=tmp_path / "data", config_path=config.path, db_url="sqlite://"), config)
    assert [d.path.name for d in landed_deliveries(ctx)] == [
        "a_2025-01.csv", "b_2025-01.csv", "a_2025-02.csv", "b_2025-02.csv"]


# --------------------------------------------------------------------------
# severity, rules, default, header lists
# --------------------------------------------------------------------------
@pytest.mark.parametrize("change, fragment", [
    (lambda d: d["columns"]["n"].update(ge={"value": 0, "severity": "loud"}), "'columns.n.ge.severity'"),
    (lambda d: d["columns"]["n"].update(ge={"severity": "warn"}), "'columns.n.ge'"),
    (lambda d: d.update(rules=[{"column": "end", "op": "=>", "other": "start"}]), "'rules[0].op'"),
    (lambda d: d.update(rules=[{"column": "end", "op": ">=", "other": "nope"}]), "'rules[0].other'"),
    (lambda d: d.update(rules=[{"column": "nope", "within_period": True}]), "'rules[0].column'"),
    (lambda d: d.update(rules=[{"column": "n", "within_period": True}]), "is integer, not a date"),
    (lambda d: d.update(rules=[{"column": "n", "op": "<", "other": "start"}]), "cannot be compared"),
    (lambda d: d.update(rules=[{"column": "n", "op": "<", "other": "id", "colour": 1}]), "'rules[0].colour'"),
    (lambda d: d["columns"]["n"].update(default="seven"), "'columns.n.default'"),
    (lambda d: d["columns"]["start"].update(default="someday"), "'columns.start.default'"),
    (lambda d: d["columns"]["n"].update(header=[]), "'columns.n.header'"),
])
def test_bad_evolution_keys_are_config_errors(tmp_path: Path, change: Any, fragment: str) -> None:
    spec = copy.deepcopy(dataset("x"))
    change(spec)
    with pytest.raises(ConfigError) as info:
        load(tmp_path, {"x": spec})
    assert f"dataset 'x', key {fragment}" in str(info.value) or fragment in str(info.value)


def test_warn_failures_keep_their_rows(tmp_path: Path) -> None:
    spec = dataset("x", rules=[{"column": "end", "op": ">=", "other": "start", "severity": "warn"}],
                   on_invalid_rows="reject")
    spec["columns"]["n"].update(ge={"value": 0, "severity": "warn"}, le=10, default=0)
    ds = load(tmp_path, {"x": spec}).dataset("x")
    assert ds.columns["n"].warn == {"ge"} and ds.columns["n"].default == 0
    raw = pd.DataFrame({"id": ["1", "2", "3"], "start": ["2025-01-02", "2025-01-05", "2025-01-01"],
                        "end": ["2025-01-03", "2025-01-01", "2025-01-01"], "n": ["-1", "1", "5"]},
                       index=pd.RangeIndex(2, 5), dtype=object)
    typed, failures = check_frame(raw, ds, "2025-01")
    assert sorted(zip(failures["row_number"], failures["check"])) == [(2, "warn: ≥ 0"), (3, "warn: >= start")]
    decision = decide(typed, failures, ds, "x_2025-01.csv", 1)
    assert decision.passed and decision.rows is not None and len(decision.rows) == 3
    assert decision.counts == (3, 3, 0) and decision.warned == 2


def test_header_list_adds_aliases(tmp_path: Path) -> None:
    spec = dataset("x")
    spec["columns"]["id"]["header"] = ["Customer ID", "Cust ID"]
    col = load(tmp_path, {"x": spec}).dataset("x").columns["id"]
    assert col.header == "Customer ID" and col.header_names == ("Customer ID", "Cust ID", "id")


def test_python_checks_beside_the_config_without_pythonpath(tmp_path: Path) -> None:
    module = f"beside_{uuid.uuid4().hex[:8]}"
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / f"{module}.py").write_text(
        "import pandera.pandas as pa\n"
        "def extend_schema(schema, period):\n"
        "    return schema.update_column('n', checks=[pa.Check(lambda s: s != 13, error='not 13')])\n")
    ds = load(tmp_path, {"x": dataset("x", python_checks=module)}).dataset("x")
    raw = pd.DataFrame({"id": ["1"], "start": [""], "end": [""], "n": ["13"]}, index=pd.RangeIndex(2, 3), dtype=object)
    _, failures = check_frame(raw, ds, "2025-01")
    assert list(zip(failures["row_number"], failures["column"], failures["check"])) == [(2, "n", "not 13")]


def test_python_checks_found_nowhere_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"key 'python_checks': module 'no_such_mod_x' cannot be found"):
        load(tmp_path, {"x": dataset("x", python_checks="no_such_mod_x")})


# --------------------------------------------------------------------------
# accept-headers' matching
# --------------------------------------------------------------------------
def test_header_matching(tmp_path: Path) -> None:
    spec = dataset("x")
    spec["columns"] = {"customer_id": {"type": "integer", "header": "Customer ID"},
                       "amount": {"type": "float"}, "city": {"type": "string"}}
    ds = load(tmp_path, {"x": spec}).dataset("x")
    assert similarity("Cust ID", "Customer ID") >= 0.9
    assert match_headers(["Cust. ID", "AMOUNT", "Cty"], ds) == {"customer_id": "Cust. ID", "city": "Cty"}
    assert match_headers(["Customer ID", "amount", "city"], ds) == {}
    with pytest.raises(FileRefused, match="no header close enough to column 'city'"):
        match_headers(["Customer ID", "amount", "Region"], ds)
    with pytest.raises(FileRefused, match="equally close"):
        match_headers(["Customer ID", "amount", "Cityx", "Cityy"], ds)


def test_a_transform_reading_an_undeclared_dataset_is_refused(tmp_path: Path) -> None:
    (tmp_path / "b.sql").write_text(
        "-- stage.c in a comment does not count, nor 'stage.c' in a string\n"
        "SELECT b.id, 'stage.c' AS note FROM stage.b AS b JOIN stage.\"a\" AS a ON a.id = b.id "
        "WHERE b._data_period = :period\n")
    text = """
datasets:
  a: {file_pattern: '^a_(?P<period>\\\\d{4}-\\\\d{2})\\\\.csv$', columns: {id: integer}}
  c: {file_pattern: '^c_(?P<period>\\\\d{4}-\\\\d{2})\\\\.csv$', columns: {id: integer}}
  b: {file_pattern: '^b_(?P<period>\\\\d{4}-\\\\d{2})\\\\.csv$', columns: {id: integer}, transform: b.sql%s}
"""
    path = tmp_path / "datasets_config.yml"
    path.write_text(text % "")
    with pytest.raises(ConfigError, match=r"dataset 'b', key 'depends_on'.*reads stage tables of 'a'; add"):
        check_declared_reads(load_config(path))
    path.write_text(text % ", depends_on: [a]")
    check_declared_reads(load_config(path))  # declared: fine, and stage.c (comment, string) is not a read

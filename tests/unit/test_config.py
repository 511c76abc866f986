"""The datasets config: the shipped one loads; a bad one fails with one line
naming the dataset and the key."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.errors import ConfigError
from pipeline.io.config_file import load_config
from tests.conftest import CONFIG_PATH, REPO

GOOD = {"datasets": {"sales": {
    "file_pattern": r"^sales_(?P<period>\d{4}-\d{2})\.csv$",
    "columns": {"id": {"type": "integer", "nullable": False}, "amount": {"type": "float", "ge": 0}},
}}}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "datasets_config.yml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_shipped_config_has_both_datasets_with_aliases() -> None:
    config = load_config(CONFIG_PATH)
    assert set(config.datasets) >= {"citizens", "benefit_payments"}
    citizens = config.dataset("citizens")
    assert citizens.columns["citizen_id"].header == "Citizen ID"
    assert citizens.primary_key == ("citizen_id",)
    assert citizens.table == "citizens"


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d["sales"]["columns"]["amount"].update(type="money"), "'columns.amount.type'"),
    (lambda d: d["sales"].update(file_pattern="^sales_(\\d+).csv$"), "'file_pattern'"),
    (lambda d: d["sales"].update(file_pattern="(unclosed"), "'file_pattern'"),
    (lambda d: d["sales"].update(on_invalid_rows="ignore"), "'on_invalid_rows'"),
    (lambda d: d["sales"].update(primary_key=["nope"]), "'primary_key'"),
    (lambda d: d["sales"].update(table="Sales; DROP TABLE x"), "'table'"),
    (lambda d: d["sales"].update(colour="blue"), "'colour'"),
    (lambda d: d["sales"]["columns"]["id"].update(regex="^\\d+$"), "'columns.id.regex'"),
    (lambda d: d["sales"]["columns"]["amount"].update(max_length=3), "'columns.amount.max_length'"),
    (lambda d: d["sales"].update(transform="missing.sql"), "'transform'"),
    (lambda d: d["sales"].update(encoding="klingon"), "'encoding'"),
    (lambda d: d["sales"]["columns"].update(_data_period={"type": "string"}), "_data_period"),
    (lambda d: d["sales"]["columns"].update(period={"type": "string"}), "'columns.period'"),
])
def test_bad_config_names_dataset_and_key(tmp_path: Path, mutate, fragment: str) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    mutate(data["datasets"])
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, data))
    message = str(info.value)
    assert "\n" not in message
    assert fragment in message


def test_bad_dataset_name_and_bad_yaml(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    data["datasets"]["Bad-Name"] = data["datasets"].pop("sales")
    with pytest.raises(ConfigError, match="'Bad-Name'"):
        load_config(write(tmp_path, data))
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(write(tmp_path, "datasets:\n  a: [\n"))


def test_cli_reports_a_bad_config_in_one_line_with_exit_2(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    data["datasets"]["sales"]["columns"]["amount"]["type"] = "money"
    path = write(tmp_path, data)
    (tmp_path / "data" / "landed").mkdir(parents=True)
    f = tmp_path / "data" / "landed" / "sales_2025-01.csv"
    f.write_text("id,amount\n1,2\n")
    env = {"WORKBENCH_CONFIG": str(path), "WORKBENCH_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin"}
    proc = subprocess.run([sys.executable, "-m", "pipeline.ingest", "--file-path", str(f)],
                          cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "'columns.amount.type'" in proc.stderr
    assert "Traceback" not in proc.stderr

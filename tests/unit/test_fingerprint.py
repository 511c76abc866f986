"""The config fingerprint decides whether ``run`` retries an earlier refusal."""
from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.domain.fingerprint import config_sha256
from pipeline.io.config_file import load_config

ROOT = Path(__file__).resolve().parents[2]


def _copy_project(dest: Path) -> Path:
    shutil.copy(ROOT / "datasets_config.yml", dest / "datasets_config.yml")
    shutil.copytree(ROOT / "sql", dest / "sql")
    return dest / "datasets_config.yml"


def test_moving_the_project_folder_keeps_every_fingerprint(tmp_path: Path) -> None:
    first = load_config(_copy_project(_mk(tmp_path / "a")))
    moved = load_config(_copy_project(_mk(tmp_path / "elsewhere" / "b")))
    assert {n: config_sha256(d) for n, d in first.datasets.items()} == {
        n: config_sha256(d) for n, d in moved.datasets.items()
    }


def test_a_changed_rule_changes_the_fingerprint(tmp_path: Path) -> None:
    path = _copy_project(_mk(tmp_path / "a"))
    before = {n: config_sha256(d) for n, d in load_config(path).datasets.items()}
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("citizens_", "residents_", 1), encoding="utf-8")
    after = {n: config_sha256(d) for n, d in load_config(path).datasets.items()}
    assert [n for n in before if before[n] != after[n]], "a changed file pattern must change a fingerprint"


def _mk(path: Path) -> Path:
    path.mkdir(parents=True)
    return path

"""environment.yml (for conda users, not solvable on this machine) must name
the same dependencies as pyproject.toml."""
from __future__ import annotations

import tomllib

import yaml

from tests.conftest import REPO


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]).union(*project["optional-dependencies"].values())
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {d for d in pip_section if not d.startswith("-e")}
    assert listed == wanted
    assert "-e ." in pip_section
    assert any(str(d).startswith("python>=3.11") for d in env["dependencies"])

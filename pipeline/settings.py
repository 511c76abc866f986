"""Settings from the environment (SPEC §3), read at call time so tests and
subprocesses see the same values."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    config_path: Path
    db_url: str

    @property
    def landed_dir(self) -> Path:
        return self.data_dir / "landed"

    @property
    def cleaned_dir(self) -> Path:
        return self.data_dir / "stage" / "cleaned"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"


def get_settings() -> Settings:
    data_dir = Path(os.environ.get("WORKBENCH_DATA_DIR", "data")).absolute()
    config_path = Path(os.environ.get("WORKBENCH_CONFIG", "datasets_config.yml")).absolute()
    db_url = os.environ.get("WORKBENCH_DB_URL") or (
        f"sqlite:///{data_dir / 'warehouse' / 'workbench.sqlite'}"
    )
    return Settings(data_dir=data_dir, config_path=config_path, db_url=db_url)

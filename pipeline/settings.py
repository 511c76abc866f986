"""Settings from the environment (SPEC §3), read at call time so tests and
subprocesses see the same values."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UsageError


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    config_path: Path
    db_url: str
    # Earlier versions of a month kept for rollback (data/stage/history/).
    keep_versions: int = 3

    @property
    def landed_dir(self) -> Path:
        return self.data_dir / "landed"

    @property
    def cleaned_dir(self) -> Path:
        return self.data_dir / "stage" / "cleaned"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def history_dir(self) -> Path:
        return self.data_dir / "stage" / "history"


def get_settings() -> Settings:
    data_dir = Path(os.environ.get("WORKBENCH_DATA_DIR", "data")).absolute()
    config_path = Path(os.environ.get("WORKBENCH_CONFIG", "datasets_config.yml")).absolute()
    db_url = os.environ.get("WORKBENCH_DB_URL") or (
        f"sqlite:///{data_dir / 'warehouse' / 'workbench.sqlite'}"
    )
    keep = os.environ.get("WORKBENCH_KEEP_VERSIONS", "3")
    if not keep.isascii() or not keep.isdigit() or int(keep) < 1:
        raise UsageError(f"WORKBENCH_KEEP_VERSIONS={keep!r}: expected a whole number ≥ 1")
    return Settings(data_dir=data_dir, config_path=config_path, db_url=db_url, keep_versions=int(keep))

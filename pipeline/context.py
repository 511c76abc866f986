"""What every stage works with: settings, the validated config and the
warehouse engine — passed in by a caller that has them (run, the dashboard,
tests), read from the environment otherwise."""
from __future__ import annotations

from sqlalchemy.engine import Engine

from pipeline.domain.config import Config
from pipeline.io.config_file import load_config
from pipeline.settings import Settings, get_settings
from pipeline.warehouse.engine import get_engine


class Context:
    def __init__(self, settings: Settings | None = None, config: Config | None = None,
                 engine: Engine | None = None) -> None:
        self.settings = settings or get_settings()
        self.config = config or load_config(self.settings.config_path)
        self._engine = engine

    @property
    def engine(self) -> Engine:
        # Connected (and migrated) only when first needed, so a usage error
        # found before that never touches the warehouse.
        if self._engine is None:
            self._engine = get_engine(self.settings.db_url)
        return self._engine

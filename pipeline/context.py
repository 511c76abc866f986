"""What every stage works with: settings, the validated config and the
warehouse engine — passed in by a caller that has them (run, the dashboard,
tests), read from the environment otherwise."""
from __future__ import annotations

from sqlalchemy.engine import Engine

from pipeline import db
from pipeline.config import Config, load_config
from pipeline.settings import Settings, get_settings


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
            self._engine = db.get_engine(self.settings.db_url)
        return self._engine

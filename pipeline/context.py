"""What every stage works with: settings, the validated config and the
warehouse engine — passed in by a caller that has them (run, the dashboard,
tests), read from the environment otherwise."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from pipeline.domain.config import Config
from pipeline.io import landed
from pipeline.io.config_file import load_config
from pipeline.settings import Settings, get_settings
from pipeline.warehouse.backends import backend_of
from pipeline.warehouse.engine import get_engine
from pipeline.warehouse.query import PreparedSql, SqlFile


class Context:
    def __init__(self, settings: Settings | None = None, config: Config | None = None,
                 engine: Engine | None = None) -> None:
        self.settings = settings or get_settings()
        self.config = config or load_config(self.settings.config_path)
        self._engine = engine
        self._sql: PreparedSql | None = None
        # landed file → (size, mtime in ns, sha256) when it was hashed
        self._hashes: dict[Path, tuple[int, int, str]] = {}

    @property
    def engine(self) -> Engine:
        # Connected (and migrated) only when first needed, so a usage error
        # found before that never touches the warehouse.
        if self._engine is None:
            self._engine = get_engine(self.settings.db_url)
        return self._engine

    def sql_file(self, path: Path) -> SqlFile:
        """A transform or publish .sql file prepared for this warehouse:
        translated and typed once per context (one run) while its text stays
        the same. A file that cannot run here is a StepFailed."""
        if self._sql is None:
            self._sql = PreparedSql(self.config, backend_of(self.engine))
        return self._sql.get(path)

    def file_sha256(self, path: Path) -> str:
        """sha256 of a landed file, hashed once per context (one run): run's
        "already done" check, ingest and validate share it while the file's
        size and modification time stay the ones it was hashed with."""
        stamp = landed.size_and_mtime(path)
        known = self.known_sha256(path, stamp)
        if known is not None:
            return known
        sha = landed.file_sha256(path)
        if landed.size_and_mtime(path) == stamp:  # not written while it was read
            self._hashes[path.absolute()] = (*stamp, sha)
        return sha

    def known_sha256(self, path: Path, stamp: tuple[int, int]) -> str | None:
        """The sha256 this context hashed the file to, if its (size, mtime) is still ``stamp``."""
        size, mtime, sha = self._hashes.get(path.absolute(), (-1, -1, ""))
        return sha if (size, mtime) == stamp else None

"""Shared fixtures: a throw-away workspace (data dir, config, warehouse) on
each backend.

Database tests take ``workspace`` (or ``db_url``), which is parametrized over
the embedded SQLite file and a real PostgreSQL database created for this test
session and dropped after it. Without a reachable PostgreSQL those tests skip
with the reason, except under CI=true, where that is a failure.

The suite runs in parallel (pytest-xdist, ``bash scripts/test.sh`` passes
``-n``): every worker is its own pytest session, so ``pg_database`` is one
database per worker (the worker id is in its name) and ``tmp_path`` is per
worker already. A test must not share anything else between processes: take
a TCP port from ``free_port`` (fixture or function), never a fixed one, and
write only under ``tmp_path``. Tests marked ``browser`` all run on one worker
(one Chromium at a time on two cores); give a test that must not run beside
another ``@pytest.mark.xdist_group("name")``.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipeline.domain.config import Config
from pipeline.io.config_file import load_config
from pipeline.settings import Settings
from pipeline.warehouse.engine import dispose_engines, get_engine

REPO = Path(__file__).resolve().parents[1]
CONFIG_PATH = REPO / "datasets_config.yml"
PG_ADMIN_URL = os.environ.get(
    "WORKBENCH_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
DEMO_ROWS = 60
# The id of this pytest-xdist worker ("gw0", "gw1", ...), "main" without xdist.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests share one worker (``--dist loadgroup``): two Chromiums and
    two Streamlit servers at once on two cores only make each time out."""
    for item in items:
        if item.get_closest_marker("browser") and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group("browser"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now (the kernel's pick, so parallel
    workers never get the same one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(name="free_port")
def free_port_fixture() -> int:
    return free_port()


@pytest.fixture(scope="session")
def pg_database() -> Any:
    """A PostgreSQL database for this test session, dropped at the end."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        conn = admin.connect()
    except sa.exc.OperationalError as exc:
        reason = f"PostgreSQL not reachable at {PG_ADMIN_URL} ({str(exc).splitlines()[0]})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; under CI the PostgreSQL tests must run", pytrace=False)
        pytest.skip(f"{reason}; start it or set WORKBENCH_TEST_PG_URL")
    # One per xdist worker: each worker is a session of its own.
    name = f"workbench_test_{WORKER}_{uuid.uuid4().hex[:12]}"
    conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        dispose_engines()
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()
        admin.dispose()


def reset_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS meta, stage, core, mart, raw CASCADE")
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """An empty warehouse: a fresh SQLite file, or the session's PostgreSQL
    database with its schemas dropped."""
    dispose_engines()
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'warehouse' / 'workbench.sqlite'}"
    else:
        url = request.getfixturevalue("pg_database")
        reset_postgres(url)
    yield url
    dispose_engines()


@dataclass
class Workspace:
    root: Path
    db_url: str

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def landed(self) -> Path:
        return self.data_dir / "landed"

    @property
    def config_path(self) -> Path:
        return Path(os.environ["WORKBENCH_CONFIG"])

    @property
    def backend(self) -> str:
        return sa.make_url(self.db_url).get_backend_name()

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, config_path=self.config_path, db_url=self.db_url)

    @property
    def engine(self) -> sa.Engine:
        return get_engine(self.db_url)

    def config(self) -> Config:
        return load_config(self.config_path)

    def use_config(self, text: str) -> Path:
        """Write a config of the test's own (its .sql paths are relative to it)."""
        path = self.root / "datasets_config.yml"
        path.write_text(text, encoding="utf-8")
        os.environ["WORKBENCH_CONFIG"] = str(path)
        return path

    def cli(self, *args: str, module: str = "pipeline", timeout: float = 300) -> subprocess.CompletedProcess:
        """Run ``python -m <module> args`` as a user would, in the workspace."""
        return subprocess.run(
            [sys.executable, "-m", module, *args], cwd=self.root, env=os.environ.copy(),
            capture_output=True, text=True, timeout=timeout,
        )

    def main(self, module: str, *args: str) -> subprocess.CompletedProcess:
        """Call ``<module>.main(args)`` in this process (much faster than a
        subprocess); same exit status and output as the command line."""
        import contextlib
        import importlib
        import io

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = importlib.import_module(module if module != "pipeline" else "pipeline.__main__").main(list(args))
        return subprocess.CompletedProcess([module, *args], code, out.getvalue(), err.getvalue())

    def rows(self, sql: str, **params: Any) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def wait_until_blocked_on_lock(self, proc: subprocess.Popen, timeout: float = 60) -> None:
        """Return once a session of this PostgreSQL database waits for an
        advisory lock (``proc`` reached the lock a test holds); fail if
        ``proc`` exits first or nothing waits within ``timeout`` seconds.
        Polling instead of a fixed sleep: as soon as it waits, and never a
        pass because ``proc`` was still starting."""
        import time

        deadline = time.monotonic() + timeout
        while not self.scalar(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()"):
            assert proc.poll() is None, f"exited ({proc.returncode}) instead of waiting for the lock"
            assert time.monotonic() < deadline, f"nothing waited for the lock within {timeout} s"
            time.sleep(0.05)

    def add_demo(self, demo_dir: Path, pattern: str = "*") -> list[Path]:
        self.landed.mkdir(parents=True, exist_ok=True)
        out = []
        for src in sorted(demo_dir.glob(pattern)):
            out.append(Path(shutil.copy2(src, self.landed / src.name)))
        return out


@pytest.fixture
def workspace(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A throw-away project folder whose settings every CLI call inherits."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WORKBENCH_DB_URL", db_url)
    monkeypatch.setenv("WORKBENCH_CONFIG", str(CONFIG_PATH))
    (tmp_path / "data" / "landed").mkdir(parents=True)
    return Workspace(root=tmp_path, db_url=db_url)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo deliveries (6 months, both datasets, plus the bad files), written
    once per session: copying is much cheaper than writing workbooks."""
    from pipeline.demo import write_demo

    out = tmp_path_factory.mktemp("demo")
    write_demo(out, rows=DEMO_ROWS, with_bad_files=True)
    return out

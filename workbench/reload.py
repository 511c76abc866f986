"""The dashboard's Reload action, guarded so one server process runs at
most one reload at a time.

Why a process-level lock on top of the per-session guard in ``app.py``:
Streamlit serves every browser tab (session) from one process, each session
running the script in its own thread. The session guard (a session_state
flag and a disabled button) stops a double click in one tab; it cannot see
another tab. A module-level ``threading.Lock`` can — this module is imported
once per process, unlike ``app.py``, which Streamlit re-executes on every run
(a lock defined there would be a new lock each time).

The lock is taken *non-blocking*: a second request is answered at once with
"a reload is already running" instead of parking a script thread behind the
first one with a spinner that explains nothing. It is only about the
dashboard's own behaviour. Correctness across processes (the CLI, another
dashboard, a scheduled run) does not depend on it: the pipeline serialises
writers of one table and period itself (advisory lock on PostgreSQL,
BEGIN IMMEDIATE on SQLite, SPEC §7), so two reloads of the same period from
anywhere end with the rows of the one that committed last.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.domain.config import Config
from pipeline.orchestrate import PeriodOutcome, reload_period
from pipeline.settings import Settings

_LOCK = threading.Lock()
_running: RunningReload | None = None


@dataclass(frozen=True)
class RunningReload:
    dataset: str
    period: str
    started_at: dt.datetime


class ReloadBusy(Exception):
    """Another reload is running in this process; this one was not started."""

    def __init__(self, running: RunningReload | None) -> None:
        self.running = running
        if running is None:
            text = "A reload is already running in this dashboard; try again when it has finished."
        else:
            text = (
                f"A reload of {running.dataset} {running.period} (started "
                f"{running.started_at:%H:%M:%S} UTC) is still running; try again when it has finished."
            )
        super().__init__(text)


def running_reload() -> RunningReload | None:
    """The reload this process is running now, if any."""
    return _running


@contextlib.contextmanager
def reload_slot(dataset: str, period: str) -> Iterator[RunningReload]:
    """Hold the process's one reload slot, or raise :class:`ReloadBusy` at once."""
    global _running
    if not _LOCK.acquire(blocking=False):
        raise ReloadBusy(_running)
    try:
        _running = RunningReload(dataset, period, dt.datetime.now(dt.UTC))
        yield _running
    finally:
        _running = None
        _LOCK.release()


def run_reload(dataset: str, period: str, *, settings: Settings | None = None,
               config: Config | None = None) -> PeriodOutcome:
    """``python -m pipeline reload`` for one period, unless one is running already.

    Raises :class:`ReloadBusy` when the slot is taken, and whatever
    ``reload_period`` raises (``UsageError`` when no landed file matches).
    """
    with reload_slot(dataset, period):
        return reload_period(dataset, period, settings=settings, config=config)

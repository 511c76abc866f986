"""Background jobs of the dashboard: a reload, a rollback or "process new
files" runs in a worker thread owned by the server process, not in the
script run of the tab that asked for it.

Why: a blocking call inside a script run dies with the run's tab (Stop, a
closed tab) or is replayed by a queued rerun. A job here is submitted once,
from a button callback (a refresh or rerun never submits one), keeps running
when its tab goes away, and every tab of this server sees it.

- One registry per server process: this module is imported once, unlike the
  page scripts that Streamlit re-executes on every run.
- One worker thread per job; jobs of one lane run one at a time in the order
  they were submitted (FIFO). A lane is a (dataset, period); "process new
  files" has its own lane. Different months run side by side: the pipeline
  itself serialises writers of one table and period (SPEC §7).
- The same session submitting the same job for a month while its earlier one
  is still queued or running is dropped (a double click reloads once).

Test hook (off by default): with ``WORKBENCH_TEST_JOB_GATE=<path>`` in the
server's environment, a job that starts running waits while that file
exists (at most 120 s) before its work, so the browser tests can close a
tab, refresh, or queue a second reload while a reload is deterministically
in progress, and then let it finish by deleting the file. Unset, it costs
nothing; nothing in the product sets it.
"""
from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pipeline.errors import WorkbenchError

log = logging.getLogger("workbench")

KEEP_FINISHED = 50  # finished jobs kept for the pages to show
GATE_ENV = "WORKBENCH_TEST_JOB_GATE"  # test hook, see the module docstring
GATE_MAX_S = 120.0


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})


@dataclass(frozen=True)
class Result:
    """What a job's work returns: succeeded or not, one line, the dependent
    refreshes (PeriodOutcome.note) and the stage rows after, if any; a job
    of several months lists one line per month in ``details``; ``payload``
    carries what a page shows when the job is done (a preview's diff)."""

    ok: bool
    message: str
    note: str = ""
    rows_after: int | None = None
    details: tuple[str, ...] = ()
    payload: dict[str, Any] | None = None


Work = Callable[[], Result]


@dataclass
class Job:
    id: int
    kind: str                  # reload | rollback | process
    dataset: str | None
    period: str | None
    label: str                 # "Reload citizens 2025-02"
    session: str | None
    scope: str | None          # the warehouse it writes to: pages show their warehouse's jobs
    work: Work = field(repr=False)
    status: JobStatus = JobStatus.QUEUED
    submitted_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    result: Result | None = None
    progress: str | None = None  # "2 of 5: citizens 2025-03", set by the work through report()
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def lane(self) -> tuple[str | None, str | None]:
        return (self.dataset, self.period)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


_lock = threading.Condition()
_ids = itertools.count(1)
_jobs: dict[int, Job] = {}
_lanes: dict[tuple[str | None, str | None], deque[Job]] = {}
_listeners: list[Callable[[Job], None]] = []
_current = threading.local()  # the job a worker thread runs, for report()


def report(progress: str) -> None:
    """Called by a job's work: how far it got, shown while it runs (a no-op
    outside a job)."""
    job = getattr(_current, "job", None)
    if job is not None:
        with _lock:
            job.progress = progress


def on_finish(listener: Callable[[Job], None]) -> None:
    """Call ``listener(job)`` after every job ends (e.g. to drop caches)."""
    with _lock:
        if listener not in _listeners:
            _listeners.append(listener)


def submit(kind: str, dataset: str | None, period: str | None, label: str, work: Work,
           *, session: str | None = None, scope: str | None = None) -> Job | None:
    """Queue ``work`` in its lane and start its worker; None when the same
    session already has this job queued or running (a repeated click)."""
    with _lock:
        for job in _jobs.values():
            if (job.active and session is not None and job.session == session
                    and (job.kind, job.dataset, job.period) == (kind, dataset, period)):
                return None
        job = Job(next(_ids), kind, dataset, period, label, session, scope, work)
        _jobs[job.id] = job
        _lanes.setdefault(job.lane, deque()).append(job)
        _forget_old()
    threading.Thread(target=_worker, args=(job,), name=f"workbench-job-{job.id}", daemon=True).start()
    return job


def _worker(job: Job) -> None:
    lane = _lanes[job.lane]
    with _lock:
        _lock.wait_for(lambda: lane[0] is job)  # FIFO within the lane
        job.status, job.started_at = JobStatus.RUNNING, dt.datetime.now(dt.UTC)
    _current.job = job
    try:
        _test_gate()
        result = job.work()
    except WorkbenchError as exc:  # e.g. the landed file was removed
        result = Result(False, f"{job.label} failed: {exc}")
    except Exception as exc:  # the analyst gets a line; the server log the traceback
        log.exception("%s crashed", job.label)
        result = Result(False, f"{job.label} failed unexpectedly: {type(exc).__name__}: {exc}")
    _current.job = None
    with _lock:
        job.result = result
        job.status = JobStatus.SUCCEEDED if result.ok else JobStatus.FAILED
        job.finished_at = dt.datetime.now(dt.UTC)
        lane.popleft()
        listeners = list(_listeners)
        _lock.notify_all()
    for listener in listeners:
        try:
            listener(job)
        except Exception:
            log.exception("job listener failed")
    job.done.set()


def _test_gate() -> None:
    """Wait while ``$WORKBENCH_TEST_JOB_GATE`` names an existing file (tests only; unset: no-op)."""
    gate = os.environ.get(GATE_ENV)
    if not gate:
        return
    deadline = time.monotonic() + GATE_MAX_S
    while os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.05)


def _forget_old() -> None:
    finished = sorted((j for j in _jobs.values() if not j.active), key=lambda j: j.id)
    for job in finished[:-KEEP_FINISHED] if len(finished) > KEEP_FINISHED else []:
        del _jobs[job.id]


def forget_finished() -> None:
    """Drop every finished job from the registry (a fresh start in tests)."""
    with _lock:
        for job in [j for j in _jobs.values() if not j.active]:
            del _jobs[job.id]


def all_jobs(scope: str | None = None) -> list[Job]:
    """Every job this server knows (of one warehouse when ``scope`` is given), newest first."""
    with _lock:
        return sorted((j for j in _jobs.values() if scope is None or j.scope == scope),
                      key=lambda j: j.id, reverse=True)


def active_jobs(scope: str | None = None) -> list[Job]:
    """Queued and running jobs, oldest first (the order they will run)."""
    return [j for j in reversed(all_jobs(scope)) if j.active]


def get(job_id: int) -> Job | None:
    with _lock:
        return _jobs.get(job_id)


def wait_all(timeout: float = 120.0) -> bool:
    """Block until no job is queued or running (tests, shutdown)."""
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=timeout)
    for job in active_jobs():
        left = (deadline - dt.datetime.now(dt.UTC)).total_seconds()
        if left <= 0 or not job.done.wait(left):
            return False
    return not active_jobs() or wait_all(max(0.0, (deadline - dt.datetime.now(dt.UTC)).total_seconds()))

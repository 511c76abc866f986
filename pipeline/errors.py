"""The project's own errors.

Every expected failure is one of these; the CLI turns it into one stderr line
and the exit status it carries (SPEC §6): 1 = the data was refused or a step
failed, 2 = wrong usage.
"""
from __future__ import annotations


class WorkbenchError(Exception):
    """A refused file or a failed step (exit status 1)."""

    exit_code = 1


class FileRefused(WorkbenchError):
    """A landed file failed a check (name, period, header, encoding, content)."""


class StepFailed(WorkbenchError):
    """A database step (load, transform, publish) failed and was rolled back."""


class UsageError(WorkbenchError):
    """The caller asked for something impossible (exit status 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """The datasets config is invalid; the message names the dataset and key."""


class SqlNotPortable(UsageError):
    """A .sql file that cannot run faithfully on the active warehouse."""


def one_line(exc: BaseException) -> str:
    """An exception as one line: a database's own message without
    SQLAlchemy's SQL dump, the first two lines of anything else."""
    orig = getattr(exc, "orig", None)  # sqlalchemy.exc.DBAPIError keeps the driver's error
    text = str(orig if orig is not None else exc)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return "; ".join(lines[:2]) if lines else type(exc).__name__


def unexpected(exc: BaseException) -> str:
    """A surprise as one line: its type and the first line of its message."""
    text = str(exc).strip()
    return f"unexpected {type(exc).__name__}: {text.splitlines()[0] if text else ''}"

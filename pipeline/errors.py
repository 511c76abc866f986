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

"""The project's own errors.

Every expected failure is one of these; the CLI turns it into one stderr line
and the exit status it carries (SPEC §6): 1 = the data was refused or a step
failed, 2 = wrong usage.
"""
from __future__ import annotations

# Every message a user sees is one line of at most this many characters.
MAX_LINE = 500


def shorten(text: str, limit: int = MAX_LINE) -> str:
    """``text`` on one line (line breaks become "; ") and at most ``limit`` characters."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    flat = "; ".join(lines)
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


class WorkbenchError(Exception):
    """A refused file or a failed step (exit status 1)."""

    exit_code = 1


class FileRefused(WorkbenchError):
    """A landed file failed a check (name, period, header, encoding, content).

    Its message is what the user reads and the log keeps: one line, at most
    MAX_LINE characters (lists are summarised where they are built)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(shorten(message))


class StepFailed(WorkbenchError):
    """A database step (load, transform, publish) failed and was rolled back."""


class UsageError(WorkbenchError):
    """The caller asked for something impossible (exit status 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """The datasets config is invalid; the message names the dataset and key."""


class SqlNotPortable(UsageError):
    """A .sql file that cannot run faithfully on the active warehouse."""


def readable(text: str) -> str:
    """A file name or path as printable, storable text: bytes that are not
    UTF-8 (surrogate-escaped by the OS layer) become ``\\xff``, control
    characters such as a newline become ``\\n``. Identity for ordinary names."""
    if text.isprintable():
        return text
    raw = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in raw)


def count_list(items: list[str], noun: str, room: int = 300) -> str:
    """"missing columns: 'a', 'b', 'c'" — the whole list when it fits in about
    ``room`` characters, else as many as fit: "16,379 unexpected columns: 'a',
    'b', 'c' … and 16,376 more" (so the line stays short)."""
    plural = noun if len(items) == 1 else noun + "s"
    shown: list[str] = []
    used = 0
    for item in items:
        text = repr(shorten(item, 60))
        if shown and used + len(text) + 2 > room:
            break
        shown.append(text)
        used += len(text) + 2
    head = ", ".join(shown)
    if len(shown) == len(items):
        return f"{plural}: {head}"
    return f"{len(items):,} {plural}: {head} … and {len(items) - len(shown):,} more"


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the errors it was raised from or while handling, in order."""
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not e for e in out) and len(out) < 20:
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


def one_line(exc: BaseException) -> str:
    """An exception as one line: the server's reason for a lost connection
    when one was noted (warehouse.replace), else a database's own message
    without SQLAlchemy's SQL dump, the first two lines of anything else."""
    chain = _chain(exc)
    noted = next((e.server_reason for e in chain if getattr(e, "server_reason", None)), None)  # type: ignore[attr-defined]
    if noted:
        return shorten(str(noted))
    orig = getattr(exc, "orig", None)  # sqlalchemy.exc.DBAPIError keeps the driver's error
    text = str(orig if orig is not None else exc)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return shorten("; ".join(lines[:2])) if lines else type(exc).__name__


def unexpected(exc: BaseException) -> str:
    """A surprise as one line: its type and the first line of its message."""
    text = str(exc).strip()
    return shorten(f"unexpected {type(exc).__name__}: {text.splitlines()[0] if text else ''}")

"""A month of data: the one place that parses, prints and counts periods.

Everything else passes periods around as their canonical text ``YYYY-MM``
(the value of every ``_data_period`` column, log row and folder name); this
module turns text into a :class:`Period` and back, so month arithmetic is
written once.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pipeline.errors import FileRefused, UsageError, shorten

# The column every stage, core and mart table carries: the period of its rows.
PERIOD_COLUMN = "_data_period"
# In a file name: YYYY-MM or YYYYMM. On the command line: YYYY-MM only.
# Always used with fullmatch and ASCII [0-9]: ``\d`` also matches Arabic-Indic
# or full-width digits and ``$`` accepts a trailing newline, and either would
# make a second, differently spelled partition of the same month.
FILE_PERIOD_RE = re.compile(r"([0-9]{4})-?([0-9]{2})")
CLI_PERIOD_RE = re.compile(r"([0-9]{4})-([0-9]{2})")
# The canonical text of a period (``_data_period``, log rows, folder names).
PERIOD_RE = CLI_PERIOD_RE


@dataclass(frozen=True, order=True)
class Period:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or self.year < 1 or self.year > 9999:
            raise ValueError(f"not a month: {self.year}-{self.month}")

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @classmethod
    def of(cls, text: str) -> Period:
        """A canonical ``YYYY-MM`` (from the log or a table); ValueError for anything else."""
        match = PERIOD_RE.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"not a period (YYYY-MM): {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def end(self) -> dt.date:
        """The last day of the month."""
        return dt.date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def next(self) -> Period:
        return Period(self.year + 1, 1) if self.month == 12 else Period(self.year, self.month + 1)

    def params(self) -> dict[str, Any]:
        """The bound parameters every period query may use."""
        end = self.end
        return {
            "period": str(self),
            "period_start": self.start.isoformat(),
            "period_end": end.isoformat(),
            "period_end_key": end.year * 10_000 + end.month * 100 + end.day,
        }


def month_range(first: str, last: str) -> list[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last`` inclusive."""
    return [str(p) for p in _walk(Period.of(first), Period.of(last))]


def month_sequence(start: str, count: int) -> list[str]:
    """``count`` consecutive months from ``start``."""
    out, period = [], Period.of(start)
    for _ in range(count):
        out.append(str(period))
        period = period.next()
    return out


def _walk(first: Period, last: Period) -> Iterator[Period]:
    period = first
    while period <= last:
        yield period
        period = period.next()


def is_period(text: object) -> bool:
    """Whether ``text`` is exactly a canonical period: ASCII ``YYYY-MM``, month 01–12."""
    if not isinstance(text, str) or PERIOD_RE.fullmatch(text) is None:
        return False
    return 1 <= int(text[5:7]) <= 12 and int(text[:4]) >= 1


def check_month(year: str, month: str, shown: str) -> str:
    """``YYYY-MM`` for a year and month read from a file name, or FileRefused."""
    if not (re.fullmatch("[0-9]{4}", year) and re.fullmatch("[0-9]{2}", month)):
        raise FileRefused(f"invalid period {shown!r}: expected ASCII digits YYYY-MM or YYYYMM")
    if not 1 <= int(month) <= 12:
        raise FileRefused(f"invalid period {shown!r}: the month must be 01–12")
    if int(year) < 1:
        raise FileRefused(f"invalid period {shown!r}: the year must be 0001 or later")
    return f"{year}-{month}"


def normalise_period(text: str) -> str:
    """``YYYY-MM`` or ``YYYYMM`` (a file name's period) → ``YYYY-MM``; else FileRefused."""
    match = FILE_PERIOD_RE.fullmatch(text)
    if not match:
        raise FileRefused(f"invalid period {text!r}: expected YYYY-MM or YYYYMM in ASCII digits")
    return check_month(match.group(1), match.group(2), text)


def parse_cli_period(text: str) -> str:
    """A ``--period`` argument: ``YYYY-MM`` only, month 01–12 (a usage error otherwise)."""
    if not is_period(text):
        raise UsageError(f"invalid --period {shorten(repr(text), 60)}: expected YYYY-MM "
                         "(ASCII digits, a month 01–12, nothing before or after)")
    return text

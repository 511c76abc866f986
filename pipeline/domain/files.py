"""Pure checks of a landed file's name and header row (the plan's Task 1.1)."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.domain.config import DatasetConfig
from pipeline.domain.period import check_month, normalise_period
from pipeline.errors import FileRefused, count_list, readable


@dataclass(frozen=True)
class ParsedFileName:
    dataset: str
    period: str  # always YYYY-MM


def parse_and_validate_filename(
    file_name: str, datasets: Mapping[str, DatasetConfig]
) -> ParsedFileName:
    """Find the dataset whose ``file_pattern`` matches ``file_name`` and its period.

    Raises FileRefused when no dataset matches, several do, or the period is
    not a real month.
    """
    check_name(file_name)
    matches = [(ds, m) for ds in datasets.values() if (m := ds.file_pattern.match(file_name))]
    if not matches:
        raise FileRefused(f"{file_name}: the name matches no dataset's file_pattern")
    if len(matches) > 1:
        names = ", ".join(ds.name for ds, _ in matches)
        raise FileRefused(f"{file_name}: the name matches several datasets ({names})")
    ds, match = matches[0]
    groups = match.groupdict()
    if groups.get("period") is not None:
        try:
            period = normalise_period(groups["period"])
        except FileRefused as exc:
            raise FileRefused(f"{file_name}: {exc}") from None
    else:
        year, month = groups.get("year") or "", groups.get("month") or ""
        # ASCII digits only: a pattern's \d also matches other scripts' digits
        if not (re.fullmatch("[0-9]{4}", year) and re.fullmatch("[0-9]{1,2}", month)):
            raise FileRefused(f"{file_name}: invalid period year={year!r} month={month!r}")
        try:
            period = check_month(year, month.zfill(2), f"{year}-{month.zfill(2)}")
        except FileRefused as exc:
            raise FileRefused(f"{file_name}: {exc}") from None
    return ParsedFileName(dataset=ds.name, period=period)


def check_name(file_name: str) -> None:
    """Refuse a name no log or terminal can show faithfully: bytes that are
    not UTF-8 (the OS hands them over surrogate-escaped) or control
    characters such as a trailing newline (a pattern's ``$`` accepts one)."""
    if any("\udc80" <= ch <= "\udcff" for ch in file_name):
        raise FileRefused(f"{readable(file_name)}: the file name is not valid UTF-8; rename the file")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in file_name):
        raise FileRefused(f"{readable(file_name)}: the file name contains a control character "
                          "(such as a line break); rename the file")


def _header_key(value: Any) -> str:
    return "" if value is None else str(value).strip().casefold()


MAX_HEADERS_SHOWN = 30
HEADER_CHARS = 60


def headers_found(headers: Sequence[Any]) -> str:
    """The file's header texts, as spelled there, for a refusal: an analyst
    who sees 'Monthly income (EUR)' beside the missing 'Monthly Income' knows
    which alias to add. Long rows are summarised to keep the message one line."""
    texts = [str(h).strip() for h in headers if _header_key(h)]
    if not texts:
        return "no header texts"
    shown = [repr(t if len(t) <= HEADER_CHARS else t[:HEADER_CHARS] + "…") for t in texts[:MAX_HEADERS_SHOWN]]
    rest = len(texts) - len(shown)
    return ", ".join(shown) + (f" … and {rest:,} more" if rest else "")


def validate_headers(headers: Sequence[Any], dataset: DatasetConfig) -> dict[str, int]:
    """Map each configured column to its position in the file's header row.

    Header texts match a column's ``header`` or its name, ignoring case and
    surrounding white space. Missing, duplicate and (unless the dataset says
    ``extra_columns: ignore``) unexpected headers are refused, each named.
    """
    lookup = {
        _header_key(text): col.name for col in dataset.columns.values() for text in col.header_names
    }
    positions: dict[str, int] = {}
    extra: list[str] = []
    for index, raw in enumerate(headers):
        key = _header_key(raw)
        if key == "":
            # Trailing empty cells are common in spreadsheets; only a blank
            # header in front of real ones is an unnamed column.
            if any(_header_key(h) for h in headers[index + 1:]):
                extra.append(f"(blank header in column {index + 1})")
            continue
        column = lookup.get(key)
        if column is None:
            extra.append(str(raw).strip())
            continue
        if column in positions:
            first = headers[positions[column]]
            raise FileRefused(
                f"duplicate header for column {column!r}: {str(first).strip()!r} "
                f"(column {positions[column] + 1}) and {str(raw).strip()!r} (column {index + 1})"
            )
        positions[column] = index
    missing = [c for c in dataset.columns if c not in positions]
    if missing:
        raise FileRefused(count_list([dataset.columns[c].header or c for c in missing], "missing column")
                          + f"; the header row has {headers_found(headers)}")
    if extra and dataset.extra_columns == "reject":
        raise FileRefused(count_list(extra, "unexpected column"))
    return positions

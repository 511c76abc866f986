"""Matching a refused file's unknown headers to the config columns it lacks
(``python -m pipeline accept-headers``): pure text similarity, no files.

Headers are compared normalised (case, punctuation and spacing ignored) by
``difflib``'s ratio, and a header whose words abbreviate a column's header
words in order ("Cust ID" for "Customer ID") counts as a near-certain match.
A match must reach ``CUTOFF`` and clearly beat the runner-up; otherwise the
mapping is refused rather than guessed.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any

from pipeline.domain.config import DatasetConfig
from pipeline.errors import FileRefused

CUTOFF = 0.6          # below this a header is not taken for a column
MARGIN = 0.05         # the best match must beat the runner-up by this much
ABBREVIATION = 0.95   # the score of a word-by-word abbreviation


def normalise(text: Any) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", str(text).casefold()).split())


def similarity(header: str, known: str) -> float:
    """How alike a file's header and a column's header text are, 0..1."""
    a, b = normalise(header), normalise(known)
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    words_a, words_b = a.split(), b.split()
    if len(words_a) == len(words_b) and all(y.startswith(x) or x.startswith(y) for x, y in zip(words_a, words_b)):
        return ABBREVIATION
    return difflib.SequenceMatcher(None, a, b).ratio()


def unmatched(headers: Sequence[Any], dataset: DatasetConfig) -> tuple[list[str], list[str]]:
    """(config columns no header names, non-blank headers no column takes)."""
    known = {normalise(t): col.name for col in dataset.columns.values() for t in col.header_names}
    taken = {known[normalise(h)] for h in headers if normalise(h) in known}
    unknown = [str(h).strip() for h in headers if normalise(h) and normalise(h) not in known]
    return [c for c in dataset.columns if c not in taken], unknown


def match_headers(headers: Sequence[Any], dataset: DatasetConfig) -> dict[str, str]:
    """Column → the file's header for each column the file lacks; FileRefused
    (one line) when a column has no close header or the choice is ambiguous."""
    missing, unknown = unmatched(headers, dataset)
    mapping: dict[str, str] = {}
    for name in missing:
        col = dataset.columns[name]
        scored = sorted(((max(similarity(h, t) for t in col.header_names), h) for h in unknown), reverse=True)
        shown = ", ".join(repr(h) for h in unknown) or "none"
        if not scored or scored[0][0] < CUTOFF:
            raise FileRefused(f"no header close enough to column {name!r} ({col.header or name!r}); "
                              f"unknown headers: {shown}")
        if len(scored) > 1 and scored[0][0] - scored[1][0] < MARGIN:
            raise FileRefused(f"column {name!r}: {scored[0][1]!r} and {scored[1][1]!r} are equally close; "
                              f"add the header: alias to the config yourself")
        mapping[name] = scored[0][1]
    taken: dict[str, str] = {}
    for name, header in mapping.items():
        if header in taken:
            raise FileRefused(f"header {header!r} is the closest to both column {taken[header]!r} and {name!r}; "
                              "add the header: aliases to the config yourself")
        taken[header] = name
    return mapping

"""The sha256 of a dataset's effective config: what judged a file.

A refusal (missing header, invalid rows) is a verdict of the config as it
was; once the config changes (a header alias added, a check relaxed) the
same file deserves a new verdict, so the run log keeps this fingerprint with
every ingest and validation and ``run`` retries a refusal whose fingerprint
differs from today's.

The canonical form is JSON with sorted keys of every field of the
``DatasetConfig`` (walked generically, so fields added later are covered
without touching this module): patterns by their text, paths by their file
name (the parser anchors them at the config's folder, so their full text
would change the verdict whenever the project folder moves), tuples as
lists, and a ``python_checks`` module by its name.
Anything else JSON cannot hold is written as its ``repr``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import PurePath
from typing import Any

from pipeline.domain.config import DatasetConfig


def canonical(value: Any) -> Any:
    """``value`` as plain JSON data, the same for equal configs."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, re.Pattern):
        return {"pattern": value.pattern, "flags": value.flags}
    if isinstance(value, PurePath):
        return value.name
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [canonical(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def config_sha256(dataset: DatasetConfig) -> str:
    """The fingerprint of one dataset's config (64 hex digits)."""
    text = json.dumps(canonical(dataset), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

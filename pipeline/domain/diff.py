"""What a reload would change: the served rows of a month against the rows a
new delivery would load, compared by the dataset's primary key (or, without
one, as multisets of whole rows). Vectorised in pandas: no Python loop per row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

SAMPLE_KEYS = 10


@dataclass(frozen=True)
class MonthDiff:
    rows_before: int
    rows_after: int
    added: int
    removed: int
    changed: int | None          # None without a primary key
    unchanged: int | None
    columns_changed: dict[str, int] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)  # changed keys: {key…, column: [old, new]}

    def as_dict(self) -> dict[str, Any]:
        return {"rows_before": self.rows_before, "rows_after": self.rows_after, "added": self.added,
                "removed": self.removed, "changed": self.changed, "unchanged": self.unchanged,
                "columns_changed": self.columns_changed, "sample": self.sample}


def diff_month(before: pd.DataFrame, after: pd.DataFrame, key: tuple[str, ...]) -> MonthDiff:
    """Compare two frames with the same columns (``before`` = served rows)."""
    columns = list(after.columns)
    before = _canonical(before[columns])
    after = _canonical(after[columns])
    if not key:
        return _multiset_diff(before, after)
    old = before.set_index(list(key))
    new = after.set_index(list(key))
    common = old.index.intersection(new.index)
    values = [c for c in columns if c not in key]
    old_c, new_c = old.loc[common, values], new.loc[common, values]
    # Equal, or both null: a null never differs from a null.
    differs = ~((old_c == new_c) | (old_c.isna() & new_c.isna())).fillna(False)
    changed_rows = differs.any(axis=1)
    counts = differs.sum()
    return MonthDiff(
        rows_before=len(before), rows_after=len(after),
        added=int((~new.index.isin(old.index)).sum()), removed=int((~old.index.isin(new.index)).sum()),
        changed=int(changed_rows.sum()), unchanged=int((~changed_rows).sum()),
        columns_changed={c: int(n) for c, n in counts.items() if n},
        sample=_sample(old_c, new_c, differs[changed_rows], key),
    )


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Nullable dtypes on both sides, so that equality and nulls compare alike
    (callers hand in frames built from the same Arrow schema)."""
    return frame.convert_dtypes()


def _multiset_diff(before: pd.DataFrame, after: pd.DataFrame) -> MonthDiff:
    columns = list(after.columns)
    old = before.astype(str).value_counts(subset=columns, dropna=False)
    new = after.astype(str).value_counts(subset=columns, dropna=False)
    both = pd.concat([old.rename("old"), new.rename("new")], axis=1).fillna(0)
    delta = both["new"] - both["old"]
    return MonthDiff(rows_before=len(before), rows_after=len(after), added=int(delta.clip(lower=0).sum()),
                     removed=int((-delta).clip(lower=0).sum()), changed=None, unchanged=None)


def _sample(old: pd.DataFrame, new: pd.DataFrame, differs: pd.DataFrame,
            key: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for index in differs.index[:SAMPLE_KEYS]:
        keys = index if isinstance(index, tuple) else (index,)
        entry: dict[str, Any] = {k: _plain(v) for k, v in zip(key, keys)}
        for column in differs.columns[differs.loc[index].to_numpy(dtype=bool)]:
            entry[column] = [_plain(old.at[index, column]), _plain(new.at[index, column])]
        out.append(entry)
    return out


def _plain(value: Any) -> Any:
    """A JSON-friendly scalar."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value

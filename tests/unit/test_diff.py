"""The month diff behind `reload --dry-run`, on frames (no database)."""
from __future__ import annotations

import pandas as pd

from pipeline.domain.diff import diff_month


def frame(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["id", "name", "amount"])


def test_by_key_counts_added_removed_changed_and_nulls_are_equal() -> None:
    before = frame([(1, "a", 1.0), (2, "b", None), (3, "c", 3.0), (4, "d", 4.0)])
    after = frame([(1, "a", 1.0), (2, "b", None), (3, "C", 3.5), (5, "e", 5.0)])
    d = diff_month(before, after, ("id",))
    assert (d.added, d.removed, d.changed, d.unchanged) == (1, 1, 1, 2)
    assert d.columns_changed == {"name": 1, "amount": 1}
    assert d.sample == [{"id": 3, "name": ["c", "C"], "amount": [3.0, 3.5]}]


def test_null_to_value_is_a_change() -> None:
    d = diff_month(frame([(1, None, 1.0)]), frame([(1, "x", 1.0)]), ("id",))
    assert (d.changed, d.columns_changed) == (1, {"name": 1})


def test_without_a_key_rows_compare_as_multisets() -> None:
    before = frame([(1, "a", 1.0), (1, "a", 1.0), (2, "b", 2.0)])
    after = frame([(1, "a", 1.0), (2, "b", 2.0), (2, "b", 2.0), (3, "c", None)])
    d = diff_month(before, after, ())
    assert (d.rows_before, d.rows_after, d.added, d.removed) == (3, 4, 2, 1)
    assert d.changed is None and d.unchanged is None

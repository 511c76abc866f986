"""On-demand benchmark: the cost of dataset ``rules:`` in the validate stage's
checks (``domain.validation.check_frame``: typing, the pandera schema, the
failures as logged), never part of the suite.

    .venv/bin/python tests/benchmarks/bench_rules.py [--rows 1000000] [--repeat 2]

An 8-column frame of raw text cells (as read from a file), checked for the
period 2025-03, in five cases:

1. no rules (the floor);
2. two rules (``end_date >= start_date`` and ``start_date`` within the
   period), no row failing;
3. the same, 1 % of rows failing the comparison;
4. every row failing the comparison;
5. every row failing ``within_period`` (a file delivered for the wrong month);

and, for reference, a column check (``ge``) failing every row. Rules are
pandera DataFrame-level checks; pandera would list a failing row once per
column of the frame and format every case into its message (1M failing
rows: ~97 s measured here before ``n_failure_cases`` capped that), so the
figure to watch is 4 and 5 against the column check. Best of ``--repeat``
(the machine is shared).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pipeline.domain.config import parse_config  # noqa: E402
from pipeline.domain.validation import check_frame  # noqa: E402

RULES = [{"column": "end_date", "op": ">=", "other": "start_date"}, {"column": "start_date", "within_period": True}]


def dataset(rules: list[dict[str, Any]], amount: dict[str, Any] | None = None) -> Any:
    spec = {"file_pattern": r"^s_(?P<period>\d{4}-\d{2})\.csv$", "on_invalid_rows": "drop", "rules": rules,
            "columns": {"id": "integer", "start_date": "date", "end_date": "date",
                        "amount": amount or {"type": "float"}, "b": "float", "c": "string", "d": "string",
                        "e": "integer"}}
    return parse_config({"datasets": {"s": spec}}, REPO / "bench.yml").dataset("s")


def raw_frame(rows: int, failing: float, month_start: str = "2025-03-01") -> pd.DataFrame:
    rng = np.random.default_rng(0)
    start = pd.Timestamp(month_start) + pd.to_timedelta(rng.integers(0, 28, rows), unit="D")
    end = start + pd.to_timedelta(np.where(rng.random(rows) < failing, -1, 1), unit="D")
    return pd.DataFrame({"id": np.arange(rows).astype(str), "start_date": start.strftime("%Y-%m-%d"),
                         "end_date": end.strftime("%Y-%m-%d"), "amount": "1.5", "b": "2.5", "c": "x", "d": "y",
                         "e": "3"}, dtype=object, index=pd.RangeIndex(2, rows + 2))


def best(raw: pd.DataFrame, ds: Any, repeat: int) -> tuple[float, int]:
    times, failures = [], 0
    for _ in range(repeat):
        clock = time.perf_counter()
        _, found = check_frame(raw, ds, "2025-03")
        times.append(time.perf_counter() - clock)
        failures = len(found)
    return min(times), failures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    n = args.rows
    cases = [
        ("no rules", raw_frame(n, 0), dataset([])),
        ("2 rules, none failing", raw_frame(n, 0), dataset(RULES)),
        ("2 rules, 1 % failing >=", raw_frame(n, 0.01), dataset(RULES)),
        ("2 rules, every row failing >=", raw_frame(n, 1), dataset(RULES)),
        ("2 rules, every row outside the period", raw_frame(n, 0, "2025-04-01"), dataset(RULES)),
        ("column check ge failing every row", raw_frame(n, 0), dataset([], {"type": "float", "ge": 5})),
    ]
    print(f"check_frame on {n:,} rows x 8 columns (best of {args.repeat})")
    for label, raw, ds in cases:
        seconds, failures = best(raw, ds, args.repeat)
        print(f"  {label:<40} {seconds:6.2f} s  {failures:>10,} failures logged")


if __name__ == "__main__":
    main()

"""Benchmark of exact decimals on SQLite (run on demand).

    .venv/bin/python tests/benchmarks/bench_sqlite_decimal.py [--rows 1000000] [--repeat 3]

Not collected by pytest. Builds a SQLite file with one table of ``--rows``
rows: ``amount`` decimal(14,2) as the warehouse stores it (scaled 64-bit
integers, warehouse.backends.sqlite.SqliteDecimal) and ``amount_f`` the same
values as a double. Prints, in seconds (best of --repeat, the machine is
shared), the translated query (warehouse.dialect with the table's schema):

- ``SUM(amount)``: SQLite's own integer sum, exact;
- ``SUM(amount * 3)`` and ``SUM(round(amount, 1))``: one registered Python
  function call per row (pg_dec_arith / pg_dec_round), exact;
- ``SUM(amount_f)``: the double sum, for reference — and whether it equals
  the exact total.
"""
from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pipeline.warehouse.dialect import register_sqlite_functions, translate  # noqa: E402

SCHEMA = {"stage": {"money": {"id": "BIGINT", "amount": "DECIMAL(14,2)", "amount_f": "DOUBLE PRECISION"}}}
QUERIES = {
    "SUM(amount)": "SELECT SUM(amount) AS total FROM stage.money",
    "SUM(amount * 3)": "SELECT SUM(amount * 3) AS total FROM stage.money",
    "SUM(round(amount, 1))": "SELECT SUM(round(amount, 1)) AS total FROM stage.money",
    "SUM(amount_f) (double)": "SELECT SUM(amount_f) AS total FROM stage.money",
}


def build(folder: Path, rows: int) -> sqlite3.Connection:
    conn = sqlite3.connect(folder / "main.sqlite")
    conn.execute("ATTACH DATABASE ? AS stage", (str(folder / "stage.sqlite"),))
    register_sqlite_functions(conn)
    conn.execute("CREATE TABLE stage.money (id INTEGER, amount NUMERIC(14, 2), amount_f DOUBLE)")
    rng = random.Random(13)
    cents = [rng.randrange(1, 100_000_000) for _ in range(rows)]
    conn.executemany("INSERT INTO stage.money VALUES (?, ?, ?)",
                     ((i, c, c / 100) for i, c in enumerate(cents)))
    conn.commit()
    exact = sum(cents)
    print(f"{rows:,} rows; exact total {Decimal(exact).scaleb(-2)}")
    return conn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        conn = build(Path(tmp), args.rows)
        for label, sql in QUERIES.items():
            lite = translate(sql, source="bench.sql", dialect="sqlite", schema=SCHEMA)
            best, value = float("inf"), None
            for _ in range(args.repeat):
                start = time.perf_counter()
                value = conn.execute(lite).fetchone()[0]
                best = min(best, time.perf_counter() - start)
            print(f"{label:<24} {best:7.3f} s  -> {value}")
        conn.close()


if __name__ == "__main__":
    main()

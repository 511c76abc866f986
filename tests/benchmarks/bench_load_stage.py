"""On-demand benchmark of load_stage on PostgreSQL (never part of the suite).

    .venv/bin/python tests/benchmarks/bench_load_stage.py [--rows 1000000] [--repeat 3]

Same 1,000,000-row Parquet (10 mixed columns), in one run:
  1. ``psql \\copy`` of the equivalent CSV (the floor: no Python at all);
  2. our ``load_stage`` (Parquet → Arrow batches → CSV → COPY, with the delete);
  3. pandas ``to_sql(if_exists="append")`` — the plan's original step — timed
     on 100k rows and scaled up.
Then the cost of reloading one 100k-row period with 1 and with 36 other
100k-row periods in the table. Prints seconds, rows/s and the ratios.
Targets (issue 4): load_stage ≤ 1.10 × psql \\copy; ≥ 20 × faster than to_sql;
reload ratio 36 vs 1 other periods ≤ 1.2.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pipeline.io.config_file import load_config  # noqa: E402
from pipeline.stages.load_stage import load_stage  # noqa: E402
from pipeline.warehouse import tables  # noqa: E402
from pipeline.warehouse.engine import dispose_engines, get_engine  # noqa: E402
from tests.benchmarks.pg_database import ADMIN, timed  # noqa: E402

CONFIG = """
datasets:
  bench:
    file_pattern: '^bench_(?P<period>\\d{4}-\\d{2})\\.csv$'
    columns:
      id:       {type: integer, nullable: false}
      qty:      {type: integer}
      price:    {type: float}
      discount: {type: float}
      name:     {type: string}
      code:     {type: string, max_length: 8}
      day:      {type: date}
      stamp:    {type: datetime}
      flag:     {type: boolean}
      note:     {type: string}
"""


def make_table(n: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
    return pa.table({
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "qty": pa.array(rng.integers(0, 1000, n)),
        "price": pa.array(rng.random(n) * 1000),
        "discount": pa.array(rng.random(n)),
        "name": pa.array(words[rng.integers(0, 8, n)]).cast(pa.string()),
        "code": pa.array(np.char.zfill(rng.integers(0, 9999, n).astype(str), 4)).cast(pa.string()),
        "day": pa.array((np.datetime64("2020-01-01") + rng.integers(0, 2000, n)).astype("datetime64[D]")),
        "stamp": pa.array((np.datetime64("2020-01-01T00:00:00") + rng.integers(0, 10**8, n)).astype("datetime64[us]")),
        "flag": pa.array(rng.random(n) < 0.5),
        "note": pa.array(np.where(rng.random(n) < 0.1, None, "some free text, with a comma")),
    })


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_load_"))
    (work / "datasets_config.yml").write_text(CONFIG)
    config = load_config(work / "datasets_config.yml")
    dataset = config.dataset("bench")

    name = f"workbench_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(ADMIN).set(database=name)
    engine = get_engine(url.render_as_string(hide_password=False))
    try:
        n = args.rows
        table = make_table(n)
        parquet = work / "bench.parquet"
        pq.write_table(table, parquet, compression="zstd")
        csv = work / "bench.csv"
        with_period = table.append_column("_data_period", pa.array(["2025-06"] * n))
        pacsv.write_csv(with_period, csv, pacsv.WriteOptions(include_header=False))
        stage = tables.stage_table(dataset)
        with engine.begin() as conn:
            stage.create(conn)
        cols = ", ".join(c.name for c in stage.columns)
        psql_url = url.set(drivername="postgresql").render_as_string(hide_password=False)

        def truncate() -> None:
            with engine.begin() as conn:
                conn.exec_driver_sql("TRUNCATE stage.bench")

        def psql_copy() -> None:
            subprocess.run(["psql", "-q", psql_url, "-c",
                            f"\\copy stage.bench ({cols}) FROM '{csv}' WITH (FORMAT csv)"], check=True)

        def ours() -> None:
            load_stage(parquet, "2025-06", "bench", config=config, engine=engine)

        psql_times, our_times = [], []
        for _ in range(args.repeat):  # interleaved, so drift on a noisy machine hits both
            truncate()
            psql_times.append(timed(psql_copy))
            truncate()
            our_times.append(timed(ours))
        psql_s, our_s = statistics.median(psql_times), statistics.median(our_times)


        sample = 100_000 if n > 100_000 else n
        frame = with_period.slice(0, sample).to_pandas()
        plain = sa.create_engine(url)
        to_sql_s = timed(lambda: frame.to_sql("bench_to_sql", plain, schema="stage",
                                              if_exists="append", index=False)) * (n / sample)
        plain.dispose()

        print(f"rows: {n:,}; median of {args.repeat} interleaved runs")
        label = "psql \\copy"
        print(f"{label:<28}{psql_s:8.2f} s  {n / psql_s:12,.0f} rows/s")
        print(f"{'load_stage (COPY)':<28}{our_s:8.2f} s  {n / our_s:12,.0f} rows/s")
        print(f"{'to_sql (scaled from 100k)':<28}{to_sql_s:8.2f} s  {n / to_sql_s:12,.0f} rows/s")
        print(f"load_stage / psql \\copy  = {our_s / psql_s:.2f}   (target ≤ 1.10)")
        print(f"to_sql / load_stage      = {to_sql_s / our_s:.1f}   (target ≥ 20)")

        # Reload one 100k-row period with 1 vs 36 other periods in the table.
        period_rows = 100_000
        small = work / "period.parquet"
        pq.write_table(make_table(period_rows, seed=2), small)
        truncate()

        def reload_time() -> float:
            return statistics.median(timed(lambda: load_stage(small, "2030-01", "bench", config=config,
                                                              engine=engine)) for _ in range(args.repeat))

        load_stage(small, "2024-01", "bench", config=config, engine=engine)
        load_stage(small, "2030-01", "bench", config=config, engine=engine)
        one = reload_time()
        for month in range(2, 13):
            load_stage(small, f"2024-{month:02d}", "bench", config=config, engine=engine)
        for year in (2025, 2026):
            for month in range(1, 13):
                load_stage(small, f"{year}-{month:02d}", "bench", config=config, engine=engine)
        with engine.connect() as conn:
            others = conn.exec_driver_sql(
                "SELECT count(DISTINCT _data_period) - 1 FROM stage.bench").scalar()
        many = reload_time()
        print(f"reload 100k-row period, 1 other period:   {one:6.2f} s")
        print(f"reload 100k-row period, {others} other periods: {many:6.2f} s")
        print(f"ratio = {many / one:.2f}   (target ≤ 1.2)")
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()

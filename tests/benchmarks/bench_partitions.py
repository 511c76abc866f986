"""On-demand benchmark: replacing a month on PostgreSQL partitions, and the
cost of previewing a correction (never part of the suite).

    .venv/bin/python tests/benchmarks/bench_partitions.py [--rows 1000000] [--reloads 5]

1. Reload of a month that already holds N rows (load_stage: build the new
   partition with COPY … FREEZE, CHECK, indexes at ATTACH, swap) vs the anchor
   ``psql \\copy`` of the same rows into an empty table with the same indexes.
   Target (issue 14): ≤ 1.3×.
2. Size of the table after 1 and after ``--reloads`` reloads of that month.
   Target: ≤ 1.15×.
3. ``reload --dry-run`` of a landed CSV month with 1% of rows edited vs the
   reload itself (ingest → validate → load → transform → publish).
   Target (issue 15): ≤ 2×.
Prints the figures and the ratios.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pipeline.context import Context  # noqa: E402
from pipeline.corrections import preview  # noqa: E402
from pipeline.io.config_file import load_config  # noqa: E402
from pipeline.orchestrate import reload_period  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.stages.load_stage import load_stage  # noqa: E402
from pipeline.warehouse.engine import dispose_engines, get_engine  # noqa: E402
from tests.benchmarks.pg_database import throwaway_database, timed  # noqa: E402

CONFIG = """
datasets:
  bench:
    file_pattern: '^bench_(?P<period>\\d{4}-\\d{2})\\.csv$'
    primary_key: [id]
    columns:
      id:       {type: integer, nullable: false}
      qty:      {type: integer}
      price:    {type: float}
      name:     {type: string}
      code:     {type: string, max_length: 8}
      day:      {type: date}
      flag:     {type: boolean}
      note:     {type: string}
"""
PERIOD = "2025-06"


def make_table(n: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
    return pa.table({
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "qty": pa.array(rng.integers(0, 1000, n)),
        "price": pa.array(np.round(rng.random(n) * 1000, 2)),
        "name": pa.array(words[rng.integers(0, 8, n)]).cast(pa.string()),
        "code": pa.array(np.char.zfill(rng.integers(0, 9999, n).astype(str), 4)).cast(pa.string()),
        "day": pa.array((np.datetime64("2025-06-01") + rng.integers(0, 30, n)).astype("datetime64[D]")),
        "flag": pa.array(rng.random(n) < 0.5),
        "note": pa.array(np.where(rng.random(n) < 0.1, None, "some free text, with a comma")),
    })


def table_bytes(engine: sa.Engine, schema: str, name: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s AND "
            "(c.relname = :t OR c.oid IN (SELECT inhrelid FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = :t))"), {"s": schema, "t": name}).scalar())


def psql_anchor(url: sa.URL, engine: sa.Engine, csv: Path, columns: str, repeat: int) -> float:
    """psql \\copy into an empty flat table carrying the same indexes."""
    psql_url = url.set(drivername="postgresql").render_as_string(hide_password=False)
    times = []
    for _ in range(repeat):
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS public.anchor")
            conn.exec_driver_sql("CREATE TABLE public.anchor (LIKE stage.bench INCLUDING DEFAULTS)")
            conn.exec_driver_sql("CREATE INDEX ON public.anchor (_data_period)")
            conn.exec_driver_sql("CREATE UNIQUE INDEX ON public.anchor (_data_period, id)")
        times.append(timed(lambda: subprocess.run(
            ["psql", "-q", psql_url, "-c", f"\\copy public.anchor ({columns}) FROM '{csv}' WITH (FORMAT csv)"],
            check=True)))
    return statistics.median(times)


def reloads(parquet: Path, settings: Settings, count: int, engine: sa.Engine) -> tuple[list[float], int, int]:
    config = load_config(settings.config_path)
    first = timed(lambda: load_stage(parquet, PERIOD, "bench", settings=settings, config=config, engine=engine))
    size_one = table_bytes(engine, "stage", "bench")
    times = [timed(lambda: load_stage(parquet, PERIOD, "bench", settings=settings, config=config, engine=engine))
             for _ in range(count)]
    print(f"first load of {PERIOD}: {first:.2f} s")
    return times, size_one, table_bytes(engine, "stage", "bench")


def dry_run_vs_reload(work: Path, table: pa.Table, settings: Settings, engine: sa.Engine) -> tuple[float, float]:
    landed = settings.landed_dir
    landed.mkdir(parents=True, exist_ok=True)
    csv_options = pacsv.WriteOptions(include_header=True)
    pacsv.write_csv(table, landed / f"bench_{PERIOD}.csv", csv_options)
    ctx = Context(settings, load_config(settings.config_path), engine)
    reload_period("bench", PERIOD, settings=settings, config=ctx.config, engine=engine)
    edited = table.to_pandas()
    edited.loc[edited.index[:: 100], "price"] += 1  # a 1 % correction
    pacsv.write_csv(pa.Table.from_pandas(edited, preserve_index=False), landed / f"bench_{PERIOD}.csv", csv_options)
    dry = timed(lambda: preview(ctx, "bench", PERIOD))
    real = timed(lambda: reload_period("bench", PERIOD, settings=settings, config=ctx.config, engine=engine))
    return dry, real


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reloads", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_partitions_"))
    (work / "datasets_config.yml").write_text(CONFIG)
    with throwaway_database(dispose_engines) as url:
        run(args, work, url)


def run(args: argparse.Namespace, work: Path, url: sa.URL) -> None:
    settings = Settings(data_dir=work / "data", config_path=work / "datasets_config.yml",
                        db_url=url.render_as_string(hide_password=False), keep_versions=1)
    engine = get_engine(settings.db_url)
    table = make_table(args.rows)
    parquet = work / "bench.parquet"
    pq.write_table(table, parquet, compression="zstd")
    csv = work / "bench.csv"
    pacsv.write_csv(table.append_column("_data_period", pa.array([PERIOD] * args.rows)), csv,
                    pacsv.WriteOptions(include_header=False))
    times, size_one, size_many = reloads(parquet, settings, args.reloads, engine)
    anchor = psql_anchor(url, engine, csv, ", ".join([*table.schema.names, "_data_period"]), args.repeat)
    reload_median = statistics.median(times)
    print(f"reload of a {args.rows:,}-row month (median of {len(times)}): {reload_median:.2f} s")
    print(f"psql \\copy into an empty table with the same indexes: {anchor:.2f} s")
    print(f"ratio reload ÷ anchor: {reload_median / anchor:.2f}  (target ≤ 1.3)")
    print(f"table size after 1 load: {size_one / 2**20:.0f} MB, after {args.reloads} reloads: "
          f"{size_many / 2**20:.0f} MB, ratio {size_many / size_one:.2f}  (target ≤ 1.15)")
    dry, real = dry_run_vs_reload(work, table, settings, engine)
    print(f"reload --dry-run of a 1 % correction: {dry:.2f} s; the reload itself: {real:.2f} s; "
          f"ratio {dry / real:.2f}  (target ≤ 2)")


if __name__ == "__main__":
    main()

"""How long the dashboard takes to paint with a big history (run on demand).

    .venv/bin/python tests/benchmarks/bench_dashboard.py [--db-url URL] [--log-rows 10000] [--periods 100]

Fills a throw-away warehouse (a temporary SQLite file unless --db-url names
an empty PostgreSQL database) with ``--periods`` months of two datasets and
``--log-rows`` rows in each meta log, then times ``AppTest.run()`` of
``workbench/app.py`` for every view: cold (empty st.cache_data, so every
query runs) and warm (served from the cache, as on most reruns).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from pipeline.domain.config import Config
from pipeline.io.config_file import load_config  # noqa: E402
from pipeline.warehouse import runlog, tables  # noqa: E402
from pipeline.warehouse.engine import dispose_engines, get_engine, write_transaction  # noqa: E402

APP = REPO / "workbench" / "app.py"
VIEWS = ["Overview", "Ingestion log", "Validation log", "Load log"]


def _value(col, i: int, period: str):  # type: ignore[no-untyped-def]
    """A value of the column's type that passes its checks."""
    year, month = int(period[:4]), int(period[5:7])
    if col.type == "integer":
        return i + 1
    if col.type == "float":
        return float(100 + i % 50)
    if col.type == "date":
        return dt.date(year, month, 1 + i % 28)
    if col.type == "datetime":
        return dt.datetime(year, month, 1 + i % 28, 12, 0)
    if col.type == "boolean":
        return i % 7 == 0
    if col.isin:
        return col.isin[i % len(col.isin)]
    if col.regex:
        return f"{i % 10000:04d}"
    return f"v{i}"


def fill_warehouse(engine: sa.Engine, config: Config, *, periods: int = 100, log_rows: int = 10_000,
                   rows_per_period: int = 40, seed: int = 7) -> None:
    """``periods`` loaded months per dataset plus filler history so each meta
    log holds ``log_rows`` rows (rejected re-deliveries, failed validations
    with row errors, failed loads)."""
    rng = random.Random(seed)
    start = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
    months = [f"{2015 + m // 12:04d}-{m % 12 + 1:02d}" for m in range(periods)]
    names = list(config.datasets)
    ing, val, err, load = [], [], [], []
    clock = start

    def tick() -> dt.datetime:
        nonlocal clock
        clock += dt.timedelta(minutes=rng.randint(1, 90))
        return clock

    with write_transaction(engine) as conn:
        for name in names:
            table = tables.stage_table(config.dataset(name))
            tables.ensure_table(conn, table)
            for period in months:
                n = rows_per_period + rng.randint(-5, 5) * (3 if rng.random() < 0.1 else 1)
                conn.execute(table.insert(), [
                    {**{c.name: _value(c, i, period) for c in config.dataset(name).columns.values()},
                     tables.PERIOD_COLUMN: period}
                    for i in range(n)
                ])
        next_id = 1
        while len(ing) < log_rows:
            name = names[next_id % len(names)]
            period = months[(next_id // len(names)) % len(months)]
            accepted = len(ing) < periods * len(names) or rng.random() < 0.7
            at = tick()
            ing.append({"id": next_id, "dataset": name, "period": period, "file_name": f"{name}_{period}.xlsx",
                        "file_path": f"/landed/{name}_{period}.xlsx", "file_size": 20_000 + next_id,
                        "file_sha256": f"{next_id:064x}", "status": "accepted" if accepted else "rejected",
                        "error": None if accepted else f"{name}_{period}.xlsx: missing column 'amount'",
                        "ingested_at": at})
            if accepted:
                failed = len(val) >= periods * len(names) and rng.random() < 0.3
                val.append({"id": next_id, "ingestion_id": next_id, "dataset": name, "period": period,
                            "status": "failed" if failed else "passed", "rows_total": 40,
                            "rows_valid": 37 if failed else 40, "rows_invalid": 3 if failed else 0,
                            "parquet_path": None, "error": "3 rows failed their checks" if failed else None,
                            "started_at": at, "finished_at": at + dt.timedelta(seconds=2)})
                if failed:
                    err += [{"validation_id": next_id, "row_number": r, "column": "sex", "check": "isin",
                             "value": "Q"} for r in (5, 12, 19)]
            next_id += 1
        # The load log: one row per step, cycling until it is as long as the others.
        lid = 1
        while len(load) < log_rows:
            name, period = names[lid % len(names)], months[(lid // len(names)) % len(months)]
            step = ("load_stage", "transform", "publish")[lid % 3]
            at = tick()
            load.append({"id": lid, "step": step, "dataset": name, "period": period, "status": "succeeded",
                         "source": f"stage.{name}", "rows_deleted": 40, "rows_inserted": 40, "error": None,
                         "started_at": at, "finished_at": at + dt.timedelta(seconds=1)})
            lid += 1
        conn.execute(runlog.ingestion_log.insert(), ing)
        conn.execute(runlog.validation_log.insert(), val)
        if err:
            conn.execute(runlog.validation_errors.insert(), err)
        conn.execute(runlog.load_log.insert(), load)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:  # explicit ids: move the sequences past them
            for t in (runlog.ingestion_log, runlog.validation_log, runlog.load_log):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('meta.{t.name}', 'id'), "
                    f"(SELECT max(id) FROM meta.{t.name}))")


def paint_times(repeat: int = 3) -> tuple[float, dict[str, tuple[float, float]]]:
    """The first run in this process, then per view: (cold, warm median)
    seconds of ``AppTest.run()``. The first run pays one-off costs a server
    pays once at start-up (imports, AppTest's component scan); "cold" is a
    run with st.cache_data cleared, so every query of the view runs."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=60)
    t0 = time.perf_counter()
    at.run()
    first = time.perf_counter() - t0
    assert not at.exception, at.exception
    out = {}
    for view in VIEWS:
        if view != "Overview":  # the logs are tabs of the Logs page
            at.switch_page("views/logs.py")
            at.session_state["view"] = view
        st.cache_data.clear()
        t0 = time.perf_counter()
        at.run()
        cold = time.perf_counter() - t0
        assert not at.exception, at.exception
        warm = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            at.run()
            warm.append(time.perf_counter() - t0)
        out[view] = (cold, statistics.median(warm))
    return first, out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db-url", help="an EMPTY warehouse to fill (default: a temporary SQLite file)")
    p.add_argument("--log-rows", type=int, default=10_000)
    p.add_argument("--periods", type=int, default=100)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db_url or f"sqlite:///{tmp}/warehouse/workbench.sqlite"
        os.environ.update(WORKBENCH_DB_URL=url, WORKBENCH_DATA_DIR=str(Path(tmp) / "data"),
                          WORKBENCH_CONFIG=os.environ.get("WORKBENCH_CONFIG", str(REPO / "datasets_config.yml")))
        config = load_config(os.environ["WORKBENCH_CONFIG"])
        engine = get_engine(url)
        t0 = time.perf_counter()
        fill_warehouse(engine, config, periods=args.periods, log_rows=args.log_rows)
        print(f"filled {engine.dialect.name} warehouse: {args.periods} periods x {len(config.datasets)} datasets, "
              f"{args.log_rows:,} rows per meta log ({time.perf_counter() - t0:.1f} s)")
        first, times = paint_times()
        print(f"first AppTest.run() in this process (imports, component scan, cold cache): {first:.2f} s")
        for view, (cold, warm) in times.items():
            print(f"{view:<15} AppTest.run(): cold {cold:.2f} s, warm {warm:.2f} s")
        dispose_engines()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How long the dashboard takes to paint with a big history, in a real
browser, side by side with a bare Streamlit page (run on demand).

    .venv/bin/python tests/benchmarks/bench_dashboard.py [--periods 120] [--datasets 5] [--log-rows 10000]
                                                         [--rounds 7] [--restarts 3] [--db-url URL]

Fills a throw-away warehouse (a temporary SQLite file unless --db-url names
an empty PostgreSQL database) with ``--periods`` months of ``--datasets``
datasets (the shipped two plus copies of citizens) and ``--log-rows`` rows
in each meta log. Then it serves ``workbench/app.py`` and the bare page
``tests/benchmarks/bare_dashboard.py`` (the same widgets over made-up
in-memory frames) from two streamlit servers and loads each in headless
Debian Chromium, alternating, timing from navigation start until the
overview's grid and KPIs are in the page ("first paint"):

- first visit: each server freshly started (``--restarts`` times), so the
  app's caches are cold and its page modules are imported by that visit;
- repeat visits: ``--rounds`` new sessions each, alternating which page
  goes first (the app's st.cache_data is warm, as for most visitors).

Prints medians and the ratio app/bare (issue 17's target: ≤ 1.5×), then
where the app's first run spends its time (the data functions, in process).
"""
from __future__ import annotations

import argparse
import contextlib
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
import yaml  # noqa: E402

from pipeline.domain.config import Config  # noqa: E402
from pipeline.io.config_file import load_config  # noqa: E402
from pipeline.warehouse import runlog, tables  # noqa: E402
from pipeline.warehouse.engine import dispose_engines, get_engine, write_transaction  # noqa: E402
from tests.ui import browser_support as bs  # noqa: E402

APP = REPO / "workbench" / "app.py"
VIEWS = ["Overview", "Ingestion log", "Validation log", "Load log"]
BARE = REPO / "tests" / "benchmarks" / "bare_dashboard.py"
# Painted: five KPIs and the coverage grid's cells (Vega's SVG marks carry
# aria-labels built from the tooltip, which names the dataset).
PAINTED_JS = """
const done = arguments[arguments.length - 1];
const ready = () => document.querySelectorAll("[data-testid='stMetric']").length >= 5
    && document.querySelector("[data-testid='stVegaLiteChart'] path[aria-label*='dataset: ']");
(function poll() { if (ready()) done(performance.now() / 1000); else setTimeout(poll, 10); })();
"""


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


def bench_config(out: Path, datasets: int) -> Path:
    """The shipped config plus copies of citizens (no transform) up to
    ``datasets`` datasets; .sql paths made absolute."""
    spec = yaml.safe_load((REPO / "datasets_config.yml").read_text(encoding="utf-8"))
    for ds in spec["datasets"].values():
        if ds.get("transform"):
            ds["transform"] = str(REPO / ds["transform"])
        ds["publish"] = {k: str(REPO / v) for k, v in (ds.get("publish") or {}).items()}
    extra = ["households", "addresses", "employment", "pensions", "schools", "vehicles", "permits", "taxes"]
    base = spec["datasets"]["citizens"]
    for name in extra[:max(0, datasets - len(spec["datasets"]))]:
        spec["datasets"][name] = {**base, "description": f"Copy of citizens named {name}",
                                  "file_pattern": rf"^{name}_(?P<period>\d{{4}}-?\d{{2}})\.(xlsx|csv)$",
                                  "transform": None, "publish": {}}
    spec["datasets"] = dict(list(spec["datasets"].items())[:datasets])
    path = out / "datasets_config.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def first_paint(driver, url: str) -> float:  # type: ignore[no-untyped-def]
    """Seconds from navigation start until the KPIs and grid are in the page (a new session)."""
    driver.get("about:blank")
    driver.get(url)
    return float(driver.execute_async_script(PAINTED_JS))


def browser_times(env: dict[str, str], tmp: Path, rounds: int, restarts: int) -> dict[str, dict[str, list[float]]]:
    """{"app"|"bare": {"first": [...], "repeat": [...]}} in seconds."""
    pages = {"app": APP, "bare": BARE}
    out: dict[str, dict[str, list[float]]] = {k: {"first": [], "repeat": []} for k in pages}
    driver = bs.new_driver()
    driver.set_script_timeout(180)
    try:
        for restart in range(restarts):
            with contextlib.ExitStack() as stack:
                servers = {k: stack.enter_context(bs.running_server(p, tmp, tmp / f"{k}.log", env))
                           for k, p in pages.items()}
                order = ["app", "bare"] if restart % 2 == 0 else ["bare", "app"]
                for k in order:
                    out[k]["first"].append(first_paint(driver, servers[k].url))
                if restart:
                    continue
                for r in range(rounds):
                    for k in (order if r % 2 else order[::-1]):
                        out[k]["repeat"].append(first_paint(driver, servers[k].url))
    finally:
        driver.quit()
    return out


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


def bare_run_time(repeat: int = 3) -> tuple[float, float]:
    """The bare page's AppTest.run(): first, then the median of ``repeat``."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(BARE), default_timeout=60)
    t0 = time.perf_counter()
    at.run()
    first = time.perf_counter() - t0
    warm = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - t0)
    return first, statistics.median(warm)


def stopwatch(label: str, fn, *args, **kw):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    result = fn(*args, **kw)
    print(f"  {label:<42} {time.perf_counter() - t0:6.3f} s")
    return result


def profile_first_run(url: str, config_path: Path) -> None:
    """Where the overview's first run spends its time: each data function it
    calls, timed in this process on a cold engine."""
    from workbench import charts, data

    dispose_engines()
    config = load_config(config_path)
    print("the overview's first run, step by step (in process, cold):")
    stopwatch("warehouse_problem (connect, meta tables)", data.warehouse_problem, url)
    engine = get_engine(url, migrate=False)
    stopwatch("warehouse_is_empty", data.warehouse_is_empty, engine)
    status = stopwatch("period_status (month states)", data.period_status, engine, config)
    cov = stopwatch("coverage", data.coverage, status)
    changes = stopwatch("row_count_changes", data.row_count_changes, status, 0.2)
    stopwatch("reloadable_periods", data.reloadable_periods, engine, tuple(config.datasets))
    stopwatch("pending_deliveries", data.pending_deliveries, status)
    stopwatch("coverage_chart → Vega-Lite spec", lambda: charts.coverage_chart(cov).to_dict())
    months = data.month_range(cov["period"].min(), cov["period"].max())
    stopwatch(f"counts_chart × {len(config.datasets)} → specs", lambda: [
        charts.counts_chart(changes[changes["dataset"] == n], months, 0.2).to_dict() for n in config.datasets])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db-url", help="an EMPTY warehouse to fill (default: a temporary SQLite file)")
    p.add_argument("--periods", type=int, default=120)
    p.add_argument("--datasets", type=int, default=5)
    p.add_argument("--log-rows", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=7, help="repeat visits per page (alternating)")
    p.add_argument("--restarts", type=int, default=3, help="fresh servers, for the first-visit figure")
    args = p.parse_args()
    if bs.missing_browser():
        print(bs.missing_browser(), file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = args.db_url or f"sqlite:///{tmp}/data/warehouse/workbench.sqlite"
        config_path = bench_config(tmp, args.datasets)
        (tmp / "data" / "landed").mkdir(parents=True)
        os.environ.update(WORKBENCH_DB_URL=url, WORKBENCH_DATA_DIR=str(tmp / "data"),
                          WORKBENCH_CONFIG=str(config_path))
        config = load_config(config_path)
        engine = get_engine(url)
        t0 = time.perf_counter()
        fill_warehouse(engine, config, periods=args.periods, log_rows=args.log_rows)
        dispose_engines()
        print(f"filled {engine.dialect.name} warehouse: {args.periods} periods x {len(config.datasets)} datasets, "
              f"{args.log_rows:,} rows per meta log ({time.perf_counter() - t0:.1f} s)")
        env = {**os.environ, "BENCH_PERIODS": str(args.periods), "BENCH_DATASETS": str(len(config.datasets)),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        times = browser_times(env, tmp, args.rounds, args.restarts)
        print("first paint in Chromium (navigation start → KPIs and grid shown), median of n, seconds:")
        for kind in ("first", "repeat"):
            app, bare = median(times["app"][kind]), median(times["bare"][kind])
            what = "first visit, fresh server" if kind == "first" else "repeat visit, new session"
            print(f"  {what:<27} app {app:5.2f} (n={len(times['app'][kind])})   bare {bare:5.2f}   "
                  f"ratio {app / bare:4.2f}x   [app {', '.join(f'{t:.2f}' for t in times['app'][kind])}; "
                  f"bare {', '.join(f'{t:.2f}' for t in times['bare'][kind])}]")
        profile_first_run(url, config_path)
        first, per_view = paint_times()
        bare_first, bare_warm = bare_run_time()
        print("server side, AppTest.run() in process (no browser), seconds:")
        print(f"  first run in this process (imports, cold cache): app {first:.2f}, bare page {bare_first:.2f}")
        for view, (cold, warm) in per_view.items():
            print(f"  {view:<15} cold {cold:.2f}, warm {warm:.2f}" + (
                f"   (bare page: {bare_warm:.2f})" if view == "Overview" else ""))
        dispose_engines()
    return 0


if __name__ == "__main__":
    sys.exit(main())

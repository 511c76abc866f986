"""Benchmark of the validate stage on a large citizens workbook (run on demand).

    .venv/bin/python tests/benchmarks/bench_validate.py [--rows 200000] [--repeat 3]
                                                        [--skip-openpyxl] [--profile]

Not collected by pytest (the name does not match test_*.py). The workbook is
generated once with openpyxl's write-only mode (~40 s for 200k rows) and
cached under the system temp folder; later runs reuse it.

Prints, in seconds (best of --repeat where repeated, as the machine is shared):

- bare ``python_calamine`` read of the sheet (``to_python``): the floor;
- ``pd.read_excel(engine="calamine", dtype=object)`` and
  ``pd.read_excel(engine="openpyxl")`` for reference;
- ingest (header check, logged) and ``validate_ingestion`` (read, type, check,
  write Parquet, log) into a temporary SQLite warehouse, and validate ÷ bare
  calamine (target ≤ 1.5), by wall clock and by CPU time of the process
  (steadier when other jobs share the cores);
- validate's peak memory, measured in a fresh process as the rise of the
  peak resident set size over the RSS just before the call (all of the
  process: Python objects, numpy, Arrow and calamine's Rust buffers), and as
  ``tracemalloc``'s peak (Python and numpy allocations only), against the
  memory of the typed DataFrame validate builds (``memory_usage(deep=True)``)
  — target ≤ 3× — and of the object DataFrame ``pd.read_excel`` decodes. The
  same is measured for the bare calamine read, the floor any reader of
  the workbook pays.

The peak RSS is Linux's VmHWM, reset just before the call by writing 5 to
/proc/self/clear_refs. ``resource.getrusage().ru_maxrss`` is not used: in a
child process it starts at the parent's RSS at fork time (measured here: a
child of a 500 MB parent reports ru_maxrss = 512 MB on its first line).
"""
from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
CACHE = Path(tempfile.gettempdir()) / "workbench-bench"
PERIOD = "2025-06"


def cached_workbook(rows: int) -> Path:
    """A citizens workbook of ``rows`` rows, generated once (demo generator)."""
    from pipeline.demo import _new_citizen, write_citizens_xlsx

    path = CACHE / f"citizens_{rows}.xlsx"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"generating {path} ({rows:,} rows, once) …", flush=True)
        started = time.perf_counter()
        rng = random.Random(7)
        on = dt.date.fromisoformat(f"{PERIOD}-01")
        write_citizens_xlsx(path, [_new_citizen(rng, 100_000 + i, on) for i in range(rows)])
        print(f"  written in {time.perf_counter() - started:.1f} s", flush=True)
    return path


def workspace(source: Path) -> Path:
    """A throw-away data folder with the workbook landed and a SQLite warehouse."""
    root = Path(tempfile.mkdtemp(prefix="bench-validate-"))
    landed = root / "data" / "landed"
    landed.mkdir(parents=True)
    shutil.copyfile(source, landed / f"citizens_{PERIOD}.xlsx")
    os.environ["WORKBENCH_DATA_DIR"] = str(root / "data")
    os.environ["WORKBENCH_CONFIG"] = str(REPO / "datasets_config.yml")
    os.environ["WORKBENCH_DB_URL"] = f"sqlite:///{root / 'data' / 'warehouse' / 'workbench.sqlite'}"
    return root


def bare_calamine(path: Path) -> list:
    import python_calamine

    return python_calamine.CalamineWorkbook.from_path(path).get_sheet_by_name("citizens").to_python()


def timed(fn):  # type: ignore[no-untyped-def]
    """(wall seconds, CPU seconds of this process, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def proc_status(key: str) -> int:
    """A /proc/self/status memory figure in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} in /proc/self/status (Linux only)")


def reset_peak_rss() -> int:
    """Reset VmHWM to the current RSS and return that RSS."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return proc_status("VmRSS")


def peak_rise(fn) -> int:  # type: ignore[no-untyped-def]
    before = reset_peak_rss()
    fn()
    return proc_status("VmHWM") - before


def measure_memory(ingestion_id: int, mode: str) -> None:
    """Child process: validate once and print the memory figures as JSON."""
    import tracemalloc

    import pandas  # noqa: F401  (imports are not the stage's memory)

    from pipeline.domain.coerce import coerce_frame
    from pipeline.io.config_file import load_config
    from pipeline.io.landed import read_table
    from pipeline.settings import get_settings
    from pipeline.stages.validate import validate_ingestion
    from pipeline.warehouse.engine import get_engine

    settings = get_settings()
    config = load_config(settings.config_path)
    engine = get_engine(settings.db_url)
    out: dict[str, float] = {}
    if mode == "rss":
        import pyarrow.parquet  # noqa: F401
        import python_calamine

        landed = Path(settings.landed_dir / f"citizens_{PERIOD}.xlsx")
        # The floor: calamine's own parse, in the same process, first.
        out["calamine_peak_rise"] = peak_rise(lambda: python_calamine.CalamineWorkbook.from_path(landed)
                                              .get_sheet_by_name("citizens").to_python())
        results = []
        out["peak_rss_delta"] = peak_rise(lambda: results.append(
            validate_ingestion(ingestion_id, settings=settings, config=config, engine=engine)))
        assert results[0].status == "passed", results[0].error
        dataset = config.dataset("citizens")
        raw, _ = read_table(landed, dataset)
        typed, _ = coerce_frame(raw, dataset)
        out["typed_frame"] = int(typed.memory_usage(deep=True).sum())
        out["raw_frame"] = int(raw.memory_usage(deep=True).sum())
    else:
        tracemalloc.start()
        validate_ingestion(ingestion_id, settings=settings, config=config, engine=engine)
        out["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
    print(json.dumps(out))


def child(ingestion_id: int, mode: str) -> dict[str, float]:
    run = subprocess.run([sys.executable, __file__, "--child", mode, "--ingestion-id", str(ingestion_id)],
                         capture_output=True, text=True, env=os.environ.copy(), check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--skip-openpyxl", action="store_true", help="skip pd.read_excel(engine='openpyxl') (slow)")
    p.add_argument("--profile", action="store_true", help="print where validate's time goes")
    p.add_argument("--child", choices=("rss", "tracemalloc"), help=argparse.SUPPRESS)
    p.add_argument("--ingestion-id", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        measure_memory(args.ingestion_id, args.child)
        return 0

    import pandas as pd

    from pipeline.stages.ingest import ingest_file
    from pipeline.stages.validate import validate_ingestion

    source = cached_workbook(args.rows)
    root = workspace(source)
    landed = root / "data" / "landed" / f"citizens_{PERIOD}.xlsx"
    print(f"workbook: {args.rows:,} rows, {landed.stat().st_size / 1e6:.1f} MB; warehouse: SQLite in {root}")

    t_ingest, _, ingested = timed(lambda: ingest_file(landed))
    assert ingested.status == "accepted", ingested.error

    calamine, validate = [], []
    result = None
    for _ in range(args.repeat):  # interleaved, so both see the same machine load
        wall, cpu, rows = timed(lambda: bare_calamine(landed))
        calamine.append((wall, cpu))
        del rows
        wall, cpu, result = timed(lambda: validate_ingestion(ingested.ingestion_id))
        assert result.status == "passed", result.error
        validate.append((wall, cpu))
    t_cal, t_val = min(w for w, _ in calamine), min(w for w, _ in validate)
    c_cal, c_val = min(c for _, c in calamine), min(c for _, c in validate)
    paired = sorted(v[0] / c[0] for v, c in zip(validate, calamine))

    t_pd_cal, _, frame = timed(lambda: pd.read_excel(landed, sheet_name="citizens", engine="calamine",
                                                     dtype=object))
    decoded = int(frame.memory_usage(deep=True).sum())
    del frame
    t_pd_opx = None
    if not args.skip_openpyxl:
        t_pd_opx, _, _ = timed(lambda: pd.read_excel(landed, sheet_name="citizens", engine="openpyxl"))

    rss = child(ingested.ingestion_id, "rss")
    traced = child(ingested.ingestion_id, "tracemalloc")
    mb = 1e6
    print()
    def runs(pairs):  # type: ignore[no-untyped-def]
        return ", ".join(f"{w:.2f}/{c:.2f}" for w, c in pairs)

    print("seconds: best wall-clock of the runs (each run shown as wall/CPU)")
    print(f"bare python_calamine read        {t_cal:7.2f} s   CPU {c_cal:5.2f} s   (runs: {runs(calamine)})")
    print(f"pd.read_excel calamine (object)  {t_pd_cal:7.2f} s")
    if t_pd_opx is not None:
        print(f"pd.read_excel openpyxl           {t_pd_opx:7.2f} s")
    print(f"ingest (header check + log)      {t_ingest:7.2f} s")
    print(f"validate_ingestion               {t_val:7.2f} s   CPU {c_val:5.2f} s   (runs: {runs(validate)})")
    print(f"ratio validate ÷ bare calamine   {t_val / t_cal:7.2f}     best wall ÷ best wall (target ≤ 1.5)")
    print(f"                                 {c_val / c_cal:7.2f}     best CPU ÷ best CPU (steadier on a shared machine)")
    print(f"                                 {paired[len(paired) // 2]:7.2f}     median of the paired runs' wall ratios")
    print(f"ratio (ingest + validate) ÷ bare {(t_ingest + t_val) / t_cal:7.2f}")
    print()
    print(f"typed DataFrame (deep)           {rss['typed_frame'] / mb:7.1f} MB")
    print(f"raw cells DataFrame (deep)       {rss['raw_frame'] / mb:7.1f} MB")
    print(f"pd.read_excel object frame       {decoded / mb:7.1f} MB")
    print(f"bare calamine peak, RSS rise     {rss['calamine_peak_rise'] / mb:7.1f} MB   "
          f"= {rss['calamine_peak_rise'] / rss['typed_frame']:.1f}× typed frame")
    print(f"validate peak, RSS rise (VmHWM)  {rss['peak_rss_delta'] / mb:7.1f} MB   "
          f"= {rss['peak_rss_delta'] / rss['typed_frame']:.1f}× typed frame (target ≤ 3), "
          f"{rss['peak_rss_delta'] / decoded:.1f}× read_excel frame")
    print(f"validate peak, tracemalloc       {traced['tracemalloc_peak'] / mb:7.1f} MB   "
          f"= {traced['tracemalloc_peak'] / rss['typed_frame']:.1f}× typed frame")

    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(validate_ingestion, ingested.ingestion_id)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    print(f"\nParquet: {result.parquet_path}")
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

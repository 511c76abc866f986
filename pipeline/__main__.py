"""``python -m pipeline <command>``: the orchestrating CLI (SPEC §6)."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from sqlalchemy.engine import Engine

from pipeline import cli
from pipeline.context import Context
from pipeline.domain.period import parse_cli_period


def _migrate(args: argparse.Namespace) -> int:
    from pipeline.warehouse.engine import get_engine
    from pipeline.warehouse.migrate import migrate

    engine = get_engine(migrate=False)
    revision = migrate(engine)
    print(f"warehouse {engine.url.render_as_string(hide_password=True)} is at revision {revision}")
    _sync_columns(engine)
    return 0


def _sync_columns(engine: Engine) -> None:
    """The config's new columns into the existing tables (SPEC §10.4)."""
    from pipeline.warehouse.migrate import sync_config_columns

    for column in sync_config_columns(engine, Context(engine=engine).config):
        print(f"added column {column}")


def _demo(args: argparse.Namespace) -> int:
    from pipeline.demo import write_demo
    from pipeline.settings import get_settings

    landed = get_settings().landed_dir
    paths = write_demo(landed, months=args.months, start=parse_cli_period(args.start),
                       rows=args.rows, seed=args.seed, with_bad_files=args.with_bad_files)
    for path in paths:
        print(f"wrote {path}")
    print(f"{len(paths)} demo files in {landed}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from pipeline import orchestrate
    from pipeline.reporting import text

    period = parse_cli_period(args.period) if args.period else None
    ctx = Context()

    def progress(index: int, total: int, outcome: orchestrate.PeriodOutcome) -> None:
        print(text.progress_line(index, total, outcome), flush=True)
        text.print_failure(outcome)  # each failure's reason once, as it happens

    outcomes = orchestrate.run(dataset=args.dataset, period=period, force=args.force,
                               via_notebooks=args.via_notebooks, ctx=ctx, progress=progress)
    if not outcomes:
        print(f"no files to process in {ctx.settings.landed_dir}")
        return 0
    print()
    print(text.summary_table(outcomes, orchestrate.month_states(ctx)))
    return 1 if any(o.status == orchestrate.Outcome.FAILED for o in outcomes) else 0


def _reload(args: argparse.Namespace) -> int:
    from pipeline import corrections, orchestrate
    from pipeline.reporting import text

    if args.dry_run:
        found = corrections.preview(Context(), args.dataset, args.period)
        print(json.dumps(found.as_dict(), indent=2) if args.json else "\n".join(text.preview_lines(found)))
        return 0
    if args.reason:
        outcome = corrections.reload_with_reason(Context(), args.dataset, args.period, args.reason,
                                                 via_notebooks=args.via_notebooks)
    else:
        outcome = orchestrate.reload_period(args.dataset, args.period, via_notebooks=args.via_notebooks)
    print(text.progress_line(1, 1, outcome), flush=True)
    text.print_failure(outcome)
    return 1 if outcome.status == orchestrate.Outcome.FAILED else 0


def _history(args: argparse.Namespace) -> int:
    from pipeline import corrections
    from pipeline.reporting import text

    versions = corrections.history(Context(), args.dataset, args.period)
    if args.json:
        print(json.dumps([text.version_dict(v) for v in versions], indent=2))
    else:
        print("\n".join(text.history_lines(versions)))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from pipeline import corrections

    version, change = corrections.rollback(Context(), args.dataset, args.period, to=args.to, reason=args.reason)
    print(f"{args.dataset} {args.period} serves load {version.load_id} ({version.file}) again: "
          f"{change.rows_before} → {change.rows_after} rows; core and mart rebuilt")
    return 0


def _check(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from pipeline.io.config_file import load_config
    from pipeline.settings import get_settings
    from pipeline.warehouse.backends import backend_for_url, backend_named
    from pipeline.warehouse.query import check_sql_files

    settings = get_settings()
    config = load_config(settings.config_path)
    # No connection: checking needs only to know which warehouse it is.
    backend = backend_named(args.warehouse) if args.warehouse else backend_for_url(sa.make_url(settings.db_url))
    paths = check_sql_files(config, backend)
    print(f"OK: {config.path.name} ({len(config.datasets)} datasets) and {len(paths)} SQL files "
          f"are ready to run on {backend.name}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from pipeline import orchestrate
    from pipeline.reporting import status

    ctx = Context()
    rows = status.collect_status(ctx.engine, ctx.config, orchestrate.landed_files(ctx))
    print(status.to_json(rows) if args.json else status.to_table(rows))
    return 0


def _accept_headers(args: argparse.Namespace) -> int:
    from pipeline.accept_headers import accept_headers, mapping_lines

    ctx = Context()
    done = accept_headers(ctx, args.file_id, dry_run=args.dry_run)
    if not done.mapping:
        print(f"{done.file_name}: every column of {done.dataset} has its header; nothing to accept")
        return 0
    for line in mapping_lines(done):
        print(line)
    if done.written:
        print(f"wrote {len(done.mapping)} header alias{'es' if len(done.mapping) > 1 else ''} into "
              f"{ctx.config.path}; load it with: python -m pipeline reload --dataset {done.dataset} "
              f"--period {done.period}")
    else:
        print("dry run: the config is unchanged")
    return 0


def _add_correction_commands(sub: argparse._SubParsersAction[cli.Parser]) -> None:
    h = sub.add_parser("history", help="the versions of one month, newest first")
    h.add_argument("--dataset", required=True)
    h.add_argument("--period", required=True, help="YYYY-MM")
    h.add_argument("--json", action="store_true", help="print a JSON array")
    h.set_defaults(func=_history)

    rb = sub.add_parser("rollback", help="serve an earlier version of one month again")
    rb.add_argument("--dataset", required=True)
    rb.add_argument("--period", required=True, help="YYYY-MM")
    rb.add_argument("--to", type=int, metavar="LOAD_ID", help="the version to serve (default: the previous one)")
    rb.add_argument("--reason", default="rollback", help="recorded in meta.corrections")
    rb.set_defaults(func=_rollback)


def build_parser() -> cli.Parser:
    p = cli.parser("python -m pipeline", "Period Workbench: monthly extracts into a period-partitioned warehouse.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=cli.Parser)

    m = sub.add_parser("migrate", help="bring the warehouse to the current schema")
    m.set_defaults(func=_migrate)

    d = sub.add_parser("demo", help="write realistic sample files into data/landed/")
    d.add_argument("--months", type=int, default=6, help="consecutive months (default 6)")
    d.add_argument("--start", default="2025-01", help="first month, YYYY-MM (default 2025-01)")
    d.add_argument("--rows", type=int, default=400, help="citizens per month (default 400)")
    d.add_argument("--seed", type=int, default=2025)
    d.add_argument("--with-bad-files", action="store_true",
                   help="also write a misnamed file, one missing a column and one with invalid rows")
    d.set_defaults(func=_demo)

    r = sub.add_parser("run", help="every landed file not yet processed, through all stages")
    r.add_argument("--dataset", help="only this dataset")
    r.add_argument("--period", help="only this period, YYYY-MM")
    r.add_argument("--force", action="store_true", help="process files even if their content was loaded")
    r.add_argument("--via-notebooks", action="store_true",
                   help="run each stage as its papermill notebook, kept under data/runs/")
    r.set_defaults(func=_run)

    rl = sub.add_parser("reload", help="process one period again from what is in landed/ now")
    rl.add_argument("--dataset", required=True)
    rl.add_argument("--period", required=True, help="YYYY-MM")
    rl.add_argument("--via-notebooks", action="store_true")
    rl.add_argument("--dry-run", action="store_true",
                    help="report what the reload would change; change nothing")
    rl.add_argument("--json", action="store_true", help="with --dry-run: print the difference as JSON")
    rl.add_argument("--reason", help="record the reload in meta.corrections with this reason")
    rl.set_defaults(func=_reload)

    _add_correction_commands(sub)

    c = sub.add_parser("check", help="parse the config and every .sql file for the warehouse (exit 2 if not)")
    c.add_argument("--warehouse", help="check for this warehouse instead of the active one: sqlite or postgresql")
    c.set_defaults(func=_check)

    st = sub.add_parser("status", help="row counts and last outcomes per dataset and period")
    st.add_argument("--json", action="store_true", help="print a JSON array")
    st.set_defaults(func=_status)

    ah = sub.add_parser("accept-headers",
                        help="write header: aliases for a file refused for renamed headers")
    ah.add_argument("--file-id", required=True, type=int, help="the refused file's ingestion id")
    ah.add_argument("--dry-run", action="store_true", help="only print the mapping")
    ah.set_defaults(func=_accept_headers)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = build_parser()
    return cli.run(p, argv, lambda args: int(args.func(args)))


if __name__ == "__main__":
    sys.exit(main())

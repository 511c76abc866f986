"""``python -m pipeline <command>``: the orchestrating CLI (SPEC §6)."""
from __future__ import annotations

import sys
from typing import Sequence

from pipeline.utils import cli


def _migrate(args) -> int:  # type: ignore[no-untyped-def]
    from pipeline import db

    engine = db.get_engine(migrate=False)
    revision = db.migrate(engine)
    print(f"warehouse {engine.url.render_as_string(hide_password=True)} is at revision {revision}")
    return 0


def _demo(args) -> int:  # type: ignore[no-untyped-def]
    from pipeline.demo import write_demo
    from pipeline.settings import get_settings
    from pipeline.utils.parsing import parse_cli_period

    landed = get_settings().landed_dir
    paths = write_demo(landed, months=args.months, start=parse_cli_period(args.start),
                       rows=args.rows, seed=args.seed, with_bad_files=args.with_bad_files)
    for path in paths:
        print(f"wrote {path}")
    print(f"{len(paths)} demo files in {landed}")
    return 0


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

    for command in _extra_commands:
        command(sub)
    return p


# Later stages register their subcommands here (run, reload, status).
_extra_commands: list = []


def main(argv: Sequence[str] | None = None) -> int:
    p = build_parser()
    return cli.run(p, argv, lambda args: args.func(args))


if __name__ == "__main__":
    sys.exit(main())

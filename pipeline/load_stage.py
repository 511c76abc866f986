"""``python -m pipeline.load_stage --parquet-path P --period YYYY-MM --dataset NAME``
(stage: pipeline.stages.load_stage)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipeline import cli
from pipeline.context import Context
from pipeline.stages.load_stage import load


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("python -m pipeline.load_stage",
                   "Replace one period of stage.<table> with a Parquet file, in one transaction.")
    p.add_argument("--parquet-path", required=True)
    p.add_argument("--period", required=True, help="YYYY-MM")
    p.add_argument("--dataset", required=True)

    def action(args: argparse.Namespace) -> int:
        result = load(Context(), args.parquet_path, args.period, args.dataset)
        print(f"{result.table} period {result.period}: {result.rows_deleted} rows deleted, "
              f"{result.rows_inserted} inserted in {result.seconds:.2f} s (load {result.load_id})")
        return 0

    return cli.run(p, argv, action)


if __name__ == "__main__":
    sys.exit(main())

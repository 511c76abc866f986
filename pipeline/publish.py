"""``python -m pipeline.publish --period YYYY-MM --dataset NAME`` (stage: pipeline.stages.publish)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipeline import cli
from pipeline.context import Context
from pipeline.stages.publish import publish_period


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("python -m pipeline.publish", "Rebuild one period of the dataset's mart tables from core.")
    p.add_argument("--period", required=True, help="YYYY-MM")
    p.add_argument("--dataset", required=True)

    def action(args: argparse.Namespace) -> int:
        for r in publish_period(Context(), args.dataset, args.period):
            print(cli.replaced_line(r))
        return 0

    return cli.run(p, argv, action)


if __name__ == "__main__":
    sys.exit(main())

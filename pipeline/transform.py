"""``python -m pipeline.transform --period YYYY-MM --dataset NAME`` (stage: pipeline.stages.transform)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipeline import cli
from pipeline.context import Context
from pipeline.stages.transform import transform_period


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("python -m pipeline.transform", "Rebuild one period of core.<table> from stage.")
    p.add_argument("--period", required=True, help="YYYY-MM")
    p.add_argument("--dataset", required=True)

    def action(args: argparse.Namespace) -> int:
        r = transform_period(Context(), args.dataset, args.period)
        print(cli.replaced_line(r))
        return 0

    return cli.run(p, argv, action)


if __name__ == "__main__":
    sys.exit(main())

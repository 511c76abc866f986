"""``python -m pipeline.validate --file-id ID`` (stage: pipeline.stages.validate)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipeline import cli
from pipeline.context import Context
from pipeline.stages.validate import validate
from pipeline.warehouse.runlog import ValidationStatus


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("python -m pipeline.validate",
                   "Type and check every row of an ingested file and write its Parquet file.")
    p.add_argument("--file-id", required=True, type=cli.row_id, help="the ingestion id printed by ingest")

    def action(args: argparse.Namespace) -> int:
        result = validate(Context(), args.file_id)
        if result.status == ValidationStatus.FAILED:
            print(cli.error_line(result.error), file=sys.stderr)
            return 1
        dropped = f", {result.rows_invalid} invalid rows dropped" if result.rows_invalid else ""
        if result.rows_warned:
            dropped += f", {result.rows_warned} rows with warnings kept"
        print(f"validated {result.dataset} {result.period}: {result.rows_valid} rows{dropped} "
              f"(validation {result.validation_id})")
        print(result.parquet_path)
        return 0

    return cli.run(p, argv, action)


if __name__ == "__main__":
    sys.exit(main())

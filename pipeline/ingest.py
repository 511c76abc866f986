"""``python -m pipeline.ingest --file-path PATH`` (stage: pipeline.stages.ingest)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipeline import cli
from pipeline.context import Context
from pipeline.stages.ingest import ingest
from pipeline.warehouse.runlog import IngestStatus


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("python -m pipeline.ingest", "Check a landed file's name and header row and log it.")
    p.add_argument("--file-path", required=True, help="the file, inside data/landed/")

    def action(args: argparse.Namespace) -> int:
        result = ingest(Context(), args.file_path)
        if result.status == IngestStatus.REJECTED:
            print(cli.error_line(result.error), file=sys.stderr)
        else:
            print(f"accepted {result.file_name}: dataset {result.dataset}, period {result.period}")
        print(result.ingestion_id)
        return 0 if result.status == IngestStatus.ACCEPTED else 1

    return cli.run(p, argv, action)


if __name__ == "__main__":
    sys.exit(main())

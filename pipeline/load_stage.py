"""Stage 3 — load_stage: make a validated Parquet file the whole content of
one period of ``stage.<table>``, atomically (see pipeline.replace_period)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy.engine import Engine

from pipeline import db
from pipeline.config import Config, DatasetConfig
from pipeline.context import Context
from pipeline.errors import FileRefused, UsageError
from pipeline.replace_period import LoadResult, log_failure, replace_period
from pipeline.schemas import SHA_KEY, arrow_schema
from pipeline.settings import Settings
from pipeline.utils import cli
from pipeline.utils.parsing import parse_cli_period

BATCH_ROWS = 100_000


def _compatible(source: pa.DataType, target: pa.DataType) -> bool:
    """Types a Parquet column may have for a config type (safe casts only)."""
    if source.equals(target) or pa.types.is_null(source):
        return True
    if pa.types.is_integer(target):
        return pa.types.is_integer(source)
    if pa.types.is_floating(target):
        return pa.types.is_integer(source) or pa.types.is_floating(source)
    if pa.types.is_string(target):
        return pa.types.is_string(source) or pa.types.is_large_string(source)
    if pa.types.is_date(target):
        return pa.types.is_date(source)
    if pa.types.is_timestamp(target):
        return pa.types.is_timestamp(source) and source.tz is None
    return False


def open_parquet(path: Path, dataset: DatasetConfig, period: str) -> pq.ParquetFile:
    """Check the file against the dataset before the database is touched."""
    if not path.is_file():
        raise UsageError(f"no such Parquet file: {path}")
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise FileRefused(f"{path.name}: not a readable Parquet file ({exc})") from None
    schema = parquet.schema_arrow
    target = arrow_schema(dataset)
    missing = [name for name in target.names if name not in schema.names]
    if missing:
        raise FileRefused(f"{path}: missing column{'s' if len(missing) > 1 else ''} "
                          f"{', '.join(missing)} of dataset {dataset.name!r}")
    for field in target:
        source = schema.field(field.name).type
        if not _compatible(source, field.type):
            raise FileRefused(f"{path}: column {field.name!r} is {source}, dataset {dataset.name!r} "
                              f"needs {field.type}")
    if db.PERIOD_COLUMN in schema.names:
        periods = pc.unique(parquet.read(columns=[db.PERIOD_COLUMN]).column(0)).to_pylist()
        wrong = sorted(str(p) for p in periods if p != period)
        if wrong:
            raise FileRefused(f"{path}: its {db.PERIOD_COLUMN} holds {wrong[0]!r}, not the --period {period}")
    return parquet


def parquet_batches(parquet: pq.ParquetFile, target: pa.Schema) -> Iterator[pa.RecordBatch]:
    # NOT NULL is the table's to enforce, inside the transaction: a cast to
    # non-nullable fields would fail half-way through with a vaguer message.
    target = pa.schema([field.with_nullable(True) for field in target])
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=target.names):
        yield from pa.Table.from_batches([batch]).select(target.names).cast(target).to_batches()


def load_stage(
    parquet_path: str | Path,
    period: str,
    dataset_name: str,
    *,
    settings: Settings | None = None,
    config: Config | None = None,
    engine: Engine | None = None,
) -> LoadResult:
    """Replace ``period`` of ``stage.<table>`` with the rows of ``parquet_path``."""
    ctx = Context(settings, config, engine)
    dataset = ctx.config.dataset(dataset_name)
    period = parse_cli_period(period)
    path = Path(parquet_path).absolute()
    engine = ctx.engine
    try:
        parquet = open_parquet(path, dataset, period)
    except FileRefused as exc:
        log_failure(engine, step="load_stage", dataset=dataset.name, period=period, source=str(path),
                    file_sha256=None, error=str(exc), started=db.utcnow())
        raise
    sha = (parquet.schema_arrow.metadata or {}).get(SHA_KEY)
    return replace_period(
        engine, db.stage_table(dataset), period, parquet_batches(parquet, arrow_schema(dataset)),
        step="load_stage", dataset=dataset.name, source=str(path),
        file_sha256=sha.decode() if sha else None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("python -m pipeline.load_stage",
                   "Replace one period of stage.<table> with a Parquet file, in one transaction.")
    p.add_argument("--parquet-path", required=True)
    p.add_argument("--period", required=True, help="YYYY-MM")
    p.add_argument("--dataset", required=True)

    def action(args) -> int:  # type: ignore[no-untyped-def]
        result = load_stage(args.parquet_path, args.period, args.dataset)
        print(f"{result.table} period {result.period}: {result.rows_deleted} rows deleted, "
              f"{result.rows_inserted} inserted in {result.seconds:.2f} s (load {result.load_id})")
        return 0

    return cli.run(p, argv, action)


if __name__ == "__main__":
    sys.exit(main())

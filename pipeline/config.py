"""Load and validate ``datasets_config.yml`` (SPEC §4).

The config is the single source of truth: headers, pandera schemas, Parquet
types and table DDL are all derived from the objects built here. Every problem
is reported as one :class:`ConfigError` line naming the dataset and the key.
"""
from __future__ import annotations

import codecs
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError, UsageError

TYPES = ("integer", "float", "string", "date", "datetime", "boolean")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# PostgreSQL truncates identifiers at 63 bytes; refusing longer names keeps
# both backends addressing the same table.
MAX_IDENTIFIER = 63

DATASET_KEYS = {
    "description", "file_pattern", "sheet", "table", "primary_key", "on_invalid_rows",
    "extra_columns", "encoding", "columns", "transform", "publish", "python_checks",
}
COLUMN_KEYS = {
    "type", "nullable", "unique", "isin", "regex", "ge", "gt", "le", "lt",
    "min_length", "max_length", "header", "description",
}
NUMERIC_TYPES = {"integer", "float"}
BOUND_KEYS = ("ge", "gt", "le", "lt")
LENGTH_KEYS = ("min_length", "max_length")


@dataclass(frozen=True)
class ColumnConfig:
    name: str
    type: str
    nullable: bool = True
    unique: bool = False
    isin: tuple[Any, ...] | None = None
    regex: str | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    header: str | None = None
    description: str | None = None

    @property
    def header_names(self) -> tuple[str, ...]:
        """Texts accepted in a file's header row for this column."""
        return (self.name,) if self.header is None else (self.header, self.name)


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    file_pattern: re.Pattern[str]
    columns: dict[str, ColumnConfig]
    description: str = ""
    sheet: str | int | None = None
    table: str = ""
    primary_key: tuple[str, ...] = ()
    on_invalid_rows: str = "reject"
    extra_columns: str = "reject"
    encoding: str = "utf-8"
    transform: Path | None = None
    publish: dict[str, Path] = field(default_factory=dict)
    python_checks: str | None = None


@dataclass(frozen=True)
class Config:
    path: Path
    datasets: dict[str, DatasetConfig]

    def dataset(self, name: str) -> DatasetConfig:
        """The dataset called ``name``; an unknown name is a usage error."""
        try:
            return self.datasets[name]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self.datasets))
            raise UsageError(f"unknown dataset {name!r} (known: {known})") from None


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate the datasets config; raises ConfigError on any problem."""
    if path is None:
        from pipeline.settings import get_settings

        path = get_settings().config_path
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the datasets config ({exc.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ConfigError(f"{path.name}: not valid YAML{line}") from None
    return parse_config(raw, path)


def parse_config(raw: Any, path: Path) -> Config:
    if not isinstance(raw, dict) or not isinstance(raw.get("datasets"), dict) or not raw["datasets"]:
        raise ConfigError(f"{path.name}: expected a top-level 'datasets' mapping with at least one dataset")
    unknown = set(raw) - {"datasets"}
    if unknown:
        raise ConfigError(f"{path.name}: unknown top-level key {sorted(unknown)[0]!r}")
    datasets: dict[str, DatasetConfig] = {}
    tables: dict[str, str] = {}
    for name, spec in raw["datasets"].items():
        ds = _parse_dataset(str(name), spec, path)
        if ds.table in tables:
            raise ConfigError(
                f"{path.name}: dataset {name!r}, key 'table': {ds.table!r} is already used by "
                f"dataset {tables[ds.table]!r}"
            )
        tables[ds.table] = ds.name
        datasets[ds.name] = ds
    return Config(path=path, datasets=datasets)


def _fail(path: Path, dataset: str, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{path.name}: dataset {dataset!r}, key {key!r}: {problem}")


def _identifier(value: Any, path: Path, dataset: str, key: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value) or len(value) > MAX_IDENTIFIER:
        raise _fail(path, dataset, key, f"{value!r} must match [a-z][a-z0-9_]* (at most 63 characters)")
    return value


def _parse_dataset(name: str, spec: Any, path: Path) -> DatasetConfig:
    _identifier(name, path, name, "name")
    if not isinstance(spec, dict):
        raise _fail(path, name, "datasets", "expected a mapping of settings")
    unknown = set(spec) - DATASET_KEYS
    if unknown:
        raise _fail(path, name, sorted(unknown)[0], "unknown key")

    pattern_text = spec.get("file_pattern")
    if not isinstance(pattern_text, str):
        raise _fail(path, name, "file_pattern", "required, a regular expression")
    try:
        pattern = re.compile(pattern_text)
    except re.error as exc:
        raise _fail(path, name, "file_pattern", f"not a valid regular expression ({exc})") from None
    groups = set(pattern.groupindex)
    if "period" not in groups and not {"year", "month"} <= groups:
        raise _fail(path, name, "file_pattern", "needs a named group 'period', or the groups 'year' and 'month'")

    columns_raw = spec.get("columns")
    if not isinstance(columns_raw, dict) or not columns_raw:
        raise _fail(path, name, "columns", "required, a mapping of column name to settings")
    columns = {str(col): _parse_column(name, str(col), cspec, path) for col, cspec in columns_raw.items()}
    for reserved, why in (("_data_period", "the period column of every table"),
                          ("period", "the period=YYYY-MM folder of the Parquet files")):
        if reserved in columns:
            raise _fail(path, name, f"columns.{reserved}", f"is reserved for {why}")
    headers: dict[str, str] = {}
    for col in columns.values():
        for text in col.header_names:
            key = text.strip().casefold()
            if key in headers and headers[key] != col.name:
                raise _fail(path, name, f"columns.{col.name}.header",
                            f"{text!r} is also a header of column {headers[key]!r}")
            headers[key] = col.name

    table = _identifier(spec.get("table", name), path, name, "table")
    pk_raw = spec.get("primary_key", [])
    if isinstance(pk_raw, str):
        pk_raw = [pk_raw]
    if not isinstance(pk_raw, list):
        raise _fail(path, name, "primary_key", "expected a list of column names")
    for col in pk_raw:
        if col not in columns:
            raise _fail(path, name, "primary_key", f"{col!r} is not one of the dataset's columns")

    choices = {"on_invalid_rows": ("reject", "drop"), "extra_columns": ("reject", "ignore")}
    chosen = {}
    for key, allowed in choices.items():
        value = spec.get(key, allowed[0])
        if value not in allowed:
            raise _fail(path, name, key, f"{value!r} must be one of {', '.join(allowed)}")
        chosen[key] = value

    sheet = spec.get("sheet")
    if sheet is not None and not isinstance(sheet, (str, int)) or isinstance(sheet, bool):
        raise _fail(path, name, "sheet", "expected a sheet name or a 0-based index")

    encoding = spec.get("encoding", "utf-8")
    try:
        codecs.lookup(str(encoding))
    except LookupError:
        raise _fail(path, name, "encoding", f"unknown encoding {encoding!r}") from None

    base = path.parent
    transform = None
    if spec.get("transform") is not None:
        transform = _sql_file(spec["transform"], base, path, name, "transform")
    publish_raw = spec.get("publish") or {}
    if not isinstance(publish_raw, dict):
        raise _fail(path, name, "publish", "expected a mapping of mart table name to .sql file")
    publish = {
        _identifier(mart, path, name, f"publish.{mart}"): _sql_file(sql, base, path, name, f"publish.{mart}")
        for mart, sql in publish_raw.items()
    }

    checks = spec.get("python_checks")
    if checks is not None:
        if not isinstance(checks, str) or not re.match(r"^[A-Za-z_][\w.]*$", checks):
            raise _fail(path, name, "python_checks", "expected a dotted module name")
        if importlib.util.find_spec(checks.split(".")[0]) is None:
            raise _fail(path, name, "python_checks", f"module {checks!r} cannot be found")

    return DatasetConfig(
        name=name,
        description=str(spec.get("description", "")),
        file_pattern=pattern,
        sheet=sheet,
        table=table,
        primary_key=tuple(pk_raw),
        on_invalid_rows=chosen["on_invalid_rows"],
        extra_columns=chosen["extra_columns"],
        encoding=str(encoding),
        columns=columns,
        transform=transform,
        publish=publish,
        python_checks=checks,
    )


def _sql_file(value: Any, base: Path, path: Path, dataset: str, key: str) -> Path:
    if not isinstance(value, str) or not value.endswith(".sql"):
        raise _fail(path, dataset, key, "expected the path of a .sql file, relative to the config")
    sql_path = (base / value).resolve()
    if not sql_path.is_file():
        raise _fail(path, dataset, key, f"file {value!r} does not exist")
    return sql_path


def _parse_column(dataset: str, name: str, spec: Any, path: Path) -> ColumnConfig:
    key = f"columns.{name}"
    _identifier(name, path, dataset, key)
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict):
        raise _fail(path, dataset, key, "expected a mapping such as {type: string}")
    unknown = set(spec) - COLUMN_KEYS
    if unknown:
        raise _fail(path, dataset, f"{key}.{sorted(unknown)[0]}", "unknown key")
    ctype = spec.get("type")
    if ctype not in TYPES:
        raise _fail(path, dataset, f"{key}.type", f"{ctype!r} must be one of {', '.join(TYPES)}")
    for flag in ("nullable", "unique"):
        if flag in spec and not isinstance(spec[flag], bool):
            raise _fail(path, dataset, f"{key}.{flag}", "expected true or false")
    for bound in BOUND_KEYS:
        if bound in spec:
            if ctype not in NUMERIC_TYPES:
                raise _fail(path, dataset, f"{key}.{bound}", f"only numeric columns take bounds, not {ctype}")
            if isinstance(spec[bound], bool) or not isinstance(spec[bound], (int, float)):
                raise _fail(path, dataset, f"{key}.{bound}", "expected a number")
    for length in LENGTH_KEYS:
        if length in spec:
            if ctype != "string":
                raise _fail(path, dataset, f"{key}.{length}", "only string columns take lengths")
            if isinstance(spec[length], bool) or not isinstance(spec[length], int) or spec[length] < 0:
                raise _fail(path, dataset, f"{key}.{length}", "expected a whole number ≥ 0")
    isin = spec.get("isin")
    if isin is not None and (not isinstance(isin, list) or not isin):
        raise _fail(path, dataset, f"{key}.isin", "expected a non-empty list of allowed values")
    regex = spec.get("regex")
    if regex is not None:
        if ctype != "string":
            raise _fail(path, dataset, f"{key}.regex", "only string columns take a regex")
        try:
            re.compile(regex)
        except (re.error, TypeError) as exc:
            raise _fail(path, dataset, f"{key}.regex", f"not a valid regular expression ({exc})") from None
    header = spec.get("header")
    if header is not None and (not isinstance(header, str) or not header.strip()):
        raise _fail(path, dataset, f"{key}.header", "expected the header text")
    return ColumnConfig(
        name=name,
        type=ctype,
        nullable=spec.get("nullable", True),
        unique=spec.get("unique", False),
        isin=tuple(isin) if isin is not None else None,
        regex=regex,
        ge=spec.get("ge"), gt=spec.get("gt"), le=spec.get("le"), lt=spec.get("lt"),
        min_length=spec.get("min_length"),
        max_length=spec.get("max_length"),
        header=header,
        description=spec.get("description"),
    )


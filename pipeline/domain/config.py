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

from pipeline.domain.checks import REGISTRY, parse_check
from pipeline.errors import ConfigError, UsageError

TYPES = ("integer", "float", "decimal", "string", "date", "datetime", "boolean")
MAX_DECIMAL_PRECISION = 38  # Arrow's decimal128
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# PostgreSQL truncates identifiers at 63 bytes; refusing longer names keeps
# both backends addressing the same table.
MAX_IDENTIFIER = 63

DATASET_KEYS = {
    "description", "file_pattern", "sheet", "table", "primary_key", "on_invalid_rows",
    "extra_columns", "encoding", "columns", "transform", "publish", "python_checks",
}
COLUMN_KEYS = {"type", "nullable", "unique", "header", "description", "precision", "scale", *REGISTRY}
CHOICES = {"on_invalid_rows": ("reject", "drop"), "extra_columns": ("reject", "ignore")}


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
    precision: int | None = None  # decimal only: digits in all
    scale: int | None = None      # decimal only: digits after the point

    @property
    def checks(self) -> dict[str, Any]:
        """The values of the column's registered checks (domain.checks), by key."""
        return {key: getattr(self, key) for key in REGISTRY if getattr(self, key) is not None}

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


def parse_config(raw: Any, path: Path) -> Config:
    """The validated config from its parsed YAML; ``path`` names it in errors
    and anchors its relative .sql paths."""
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
    columns = _parse_columns(name, spec.get("columns"), path)
    choices = {key: _choice(spec, key, allowed, path, name) for key, allowed in CHOICES.items()}
    transform, publish = _sql_files(spec, path, name)
    return DatasetConfig(
        name=name,
        description=str(spec.get("description", "")),
        file_pattern=_file_pattern(spec.get("file_pattern"), path, name),
        sheet=_sheet(spec.get("sheet"), path, name),
        table=_identifier(spec.get("table", name), path, name, "table"),
        primary_key=_primary_key(spec.get("primary_key", []), columns, path, name),
        on_invalid_rows=choices["on_invalid_rows"],
        extra_columns=choices["extra_columns"],
        encoding=_encoding(spec.get("encoding", "utf-8"), path, name),
        columns=columns,
        transform=transform,
        publish=publish,
        python_checks=_python_checks(spec.get("python_checks"), path, name),
    )


def _file_pattern(text: Any, path: Path, name: str) -> re.Pattern[str]:
    if not isinstance(text, str):
        raise _fail(path, name, "file_pattern", "required, a regular expression")
    try:
        pattern = re.compile(text)
    except re.error as exc:
        raise _fail(path, name, "file_pattern", f"not a valid regular expression ({exc})") from None
    groups = set(pattern.groupindex)
    if "period" not in groups and not {"year", "month"} <= groups:
        raise _fail(path, name, "file_pattern", "needs a named group 'period', or the groups 'year' and 'month'")
    return pattern


def _parse_columns(name: str, raw: Any, path: Path) -> dict[str, ColumnConfig]:
    if not isinstance(raw, dict) or not raw:
        raise _fail(path, name, "columns", "required, a mapping of column name to settings")
    columns = {str(col): _parse_column(name, str(col), cspec, path) for col, cspec in raw.items()}
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
    return columns


def _primary_key(raw: Any, columns: dict[str, ColumnConfig], path: Path, name: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise _fail(path, name, "primary_key", "expected a list of column names")
    for col in raw:
        if col not in columns:
            raise _fail(path, name, "primary_key", f"{col!r} is not one of the dataset's columns")
    return tuple(raw)


def _choice(spec: dict[str, Any], key: str, allowed: tuple[str, ...], path: Path, name: str) -> str:
    value = spec.get(key, allowed[0])
    if value not in allowed:
        raise _fail(path, name, key, f"{value!r} must be one of {', '.join(allowed)}")
    return str(value)


def _sheet(sheet: Any, path: Path, name: str) -> str | int | None:
    if sheet is not None and not isinstance(sheet, (str, int)) or isinstance(sheet, bool):
        raise _fail(path, name, "sheet", "expected a sheet name or a 0-based index")
    return sheet


def _encoding(encoding: Any, path: Path, name: str) -> str:
    try:
        codecs.lookup(str(encoding))
    except LookupError:
        raise _fail(path, name, "encoding", f"unknown encoding {encoding!r}") from None
    return str(encoding)


def _sql_files(spec: dict[str, Any], path: Path, name: str) -> tuple[Path | None, dict[str, Path]]:
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
    return transform, publish


def _python_checks(checks: Any, path: Path, name: str) -> str | None:
    if checks is None:
        return None
    if not isinstance(checks, str) or not re.match(r"^[A-Za-z_][\w.]*$", checks):
        raise _fail(path, name, "python_checks", "expected a dotted module name")
    if importlib.util.find_spec(checks.split(".")[0]) is None:
        raise _fail(path, name, "python_checks", f"module {checks!r} cannot be found")
    return checks


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
    checks: dict[str, Any] = {}
    for check in REGISTRY:
        if spec.get(check) is not None:
            try:
                checks[check] = parse_check(check, spec[check], ctype)
            except ValueError as exc:
                raise _fail(path, dataset, f"{key}.{check}", str(exc)) from None
    header = spec.get("header")
    if header is not None and (not isinstance(header, str) or not header.strip()):
        raise _fail(path, dataset, f"{key}.header", "expected the header text")
    precision, scale = _decimal_digits(spec, ctype, path, dataset, key)
    return ColumnConfig(
        name=name, type=ctype, nullable=spec.get("nullable", True), unique=spec.get("unique", False),
        header=header, description=spec.get("description"), precision=precision, scale=scale, **checks,
    )


def _decimal_digits(spec: dict[str, Any], ctype: str, path: Path, dataset: str,
                    key: str) -> tuple[int | None, int | None]:
    """A decimal column's required ``precision`` and ``scale``; no other type takes them."""
    if ctype != "decimal":
        for digits in ("precision", "scale"):
            if digits in spec:
                raise _fail(path, dataset, f"{key}.{digits}", "only decimal columns take precision and scale")
        return None, None
    values: list[int] = []
    for digits, low in (("precision", 1), ("scale", 0)):
        value = spec.get(digits)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, dataset, f"{key}.{digits}", f"required for a decimal column, a whole number "
                                                           f"(got {value!r})")
        high = MAX_DECIMAL_PRECISION if digits == "precision" else values[0]
        if not low <= value <= high:
            raise _fail(path, dataset, f"{key}.{digits}", f"{value} must be between {low} and {high}")
        values.append(value)
    return values[0], values[1]

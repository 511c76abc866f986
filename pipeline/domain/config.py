"""Load and validate ``datasets_config.yml`` (SPEC §4).

The config is the single source of truth: headers, pandera schemas, Parquet
types and table DDL are all derived from the objects built here. Every problem
is reported as one :class:`ConfigError` line naming the dataset and the key.
"""
from __future__ import annotations

import codecs
import datetime as dt
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.domain.checks import REGISTRY, WARN, parse_check
from pipeline.errors import ConfigError, UsageError

TYPES = ("integer", "float", "decimal", "string", "date", "datetime", "boolean")
MAX_DECIMAL_PRECISION = 38  # Arrow's decimal128
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# PostgreSQL truncates identifiers at 63 bytes; refusing longer names keeps
# both backends addressing the same table.
MAX_IDENTIFIER = 63
# Keys of the evolving config (SPEC §10.4), parsed by the functions at the end.
EVOLUTION_DATASET_KEYS = ("depends_on", "rules")
EVOLUTION_COLUMN_KEYS = ("default",)
RULE_OPS = ("<", "<=", ">", ">=", "=", "!=")
SEVERITIES = ("error", "warn")

DATASET_KEYS = {
    "description", "file_pattern", "sheet", "table", "primary_key", "on_invalid_rows",
    "extra_columns", "encoding", "columns", "transform", "publish", "python_checks",
    *EVOLUTION_DATASET_KEYS,
}
COLUMN_KEYS = {"type", "nullable", "unique", "header", "description", "precision", "scale", *REGISTRY,
               *EVOLUTION_COLUMN_KEYS}
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
    aliases: tuple[str, ...] = ()          # further header texts (a list under ``header:``)
    default: Any = None                    # fills existing rows when the column is added
    warn: frozenset[str] = frozenset()     # check keys with ``severity: warn``
    precision: int | None = None  # decimal only: digits in all
    scale: int | None = None      # decimal only: digits after the point

    @property
    def checks(self) -> dict[str, Any]:
        """The values of the column's registered checks (domain.checks), by key."""
        return {key: getattr(self, key) for key in REGISTRY if getattr(self, key) is not None}

    @property
    def header_names(self) -> tuple[str, ...]:
        """Texts accepted in a file's header row for this column."""
        return (self.name,) if self.header is None else (self.header, *self.aliases, self.name)


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
    python_checks_dir: Path | None = None  # the config's folder, searched after the import path
    depends_on: tuple[str, ...] = ()
    rules: tuple[RuleConfig, ...] = ()


@dataclass(frozen=True)
class RuleConfig:
    """A dataset-level rule: ``column op other``, or ``column`` within the file's month."""
    column: str
    op: str | None = None
    other: str | None = None
    within_period: bool = False
    severity: str = "error"


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
    check_dependencies(datasets, path)
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
    python_checks, checks_dir = _python_checks(spec.get("python_checks"), path, name)
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
        python_checks=python_checks,
        python_checks_dir=checks_dir,
        depends_on=_depends_on(spec.get("depends_on"), path, name),
        rules=_rules(spec.get("rules"), columns, path, name),
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


def _python_checks(checks: Any, path: Path, name: str) -> tuple[str | None, Path | None]:
    """The module name, and the config's folder when the module is found there
    (so a checks module can live beside the config without PYTHONPATH)."""
    if checks is None:
        return None, None
    if not isinstance(checks, str) or not re.match(r"^[A-Za-z_][\w.]*$", checks):
        raise _fail(path, name, "python_checks", "expected a dotted module name")
    top = checks.split(".")[0]
    folder = path.parent.resolve()
    if (folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file():
        return checks, folder
    if importlib.util.find_spec(top) is None:
        raise _fail(path, name, "python_checks",
                    f"module {checks!r} cannot be found on the import path or in {folder}")
    return checks, None


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
    warn: set[str] = set()
    for check in REGISTRY:
        if spec.get(check) is not None:
            value, severity = _severity(spec[check], path, dataset, f"{key}.{check}")
            try:
                checks[check] = parse_check(check, value, ctype)
            except ValueError as exc:
                raise _fail(path, dataset, f"{key}.{check}", str(exc)) from None
            if severity == WARN:
                warn.add(check)
    headers = _headers(spec.get("header"), path, dataset, key)
    precision, scale = _decimal_digits(spec, ctype, path, dataset, key)
    return ColumnConfig(
        name=name, type=ctype, nullable=spec.get("nullable", True), unique=spec.get("unique", False),
        header=headers[0] if headers else None, aliases=headers[1:], description=spec.get("description"),
        default=_default(spec, ctype, path, dataset, key), warn=frozenset(warn), precision=precision,
        scale=scale, **checks,
    )


# --------------------------------------------------------------------------
# The evolving config (SPEC §10.4): header lists, column defaults, check
# severities, dataset rules and depends_on.
# --------------------------------------------------------------------------
def _headers(raw: Any, path: Path, dataset: str, key: str) -> tuple[str, ...]:
    """``header: "Text"`` or ``header: ["Text", "Older text"]`` (accept-headers
    appends to the list when a delivery renames a header again)."""
    if raw is None:
        return ()
    texts = raw if isinstance(raw, list) else [raw]
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise _fail(path, dataset, f"{key}.header", "expected the header text, or a list of header texts")
    return tuple(texts)


def _severity(raw: Any, path: Path, dataset: str, key: str) -> tuple[Any, str]:
    """A check's value and severity: ``ge: 0`` or ``ge: {value: 0, severity: warn}``."""
    if not isinstance(raw, dict):
        return raw, "error"
    unknown = set(raw) - {"value", "severity"}
    if unknown or "value" not in raw:
        raise _fail(path, dataset, key, "expected the check's value, or {value: …, severity: warn}")
    severity = raw.get("severity", "error")
    if severity not in SEVERITIES:
        raise _fail(path, dataset, f"{key}.severity", f"{severity!r} must be one of {', '.join(SEVERITIES)}")
    return raw["value"], str(severity)


def _default(spec: dict[str, Any], ctype: str, path: Path, dataset: str, key: str) -> Any:
    """``default:``, the value rows already loaded get when the column is added."""
    value = spec.get("default")
    if value is None:
        return None
    kinds: dict[str, tuple[type, ...]] = {
        "integer": (int,), "float": (int, float), "decimal": (int, float, str), "string": (str,),
        "boolean": (bool,),
        "date": (str, dt.date), "datetime": (str, dt.date),
    }
    wanted = kinds.get(ctype, (str, int, float))
    if isinstance(value, bool) != (ctype == "boolean") or not isinstance(value, wanted):
        raise _fail(path, dataset, f"{key}.default", f"{value!r} is not a {ctype} value")
    if ctype in ("date", "datetime"):
        try:
            value = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise _fail(path, dataset, f"{key}.default", f"{value!r} is not an ISO {ctype}") from None
        return value.date() if ctype == "date" else value
    return value


def _depends_on(raw: Any, path: Path, name: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(d, str) for d in raw):
        raise _fail(path, name, "depends_on", "expected a list of dataset names")
    if name in raw:
        raise _fail(path, name, "depends_on", "a dataset cannot depend on itself")
    return tuple(dict.fromkeys(raw))


def check_dependencies(datasets: dict[str, DatasetConfig], path: Path) -> None:
    """Every ``depends_on`` names a dataset, and no chain of them loops."""
    for ds in datasets.values():
        for other in ds.depends_on:
            if other not in datasets:
                raise _fail(path, ds.name, "depends_on", f"{other!r} is not a dataset of this config")
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for other in datasets[name].depends_on:
            if state.get(other) == 1:
                cycle = " → ".join([*trail[trail.index(other):], other])
                raise _fail(path, other, "depends_on", f"cycle {cycle}")
            if other not in state:
                visit(other, [*trail, other])
        state[name] = 2

    for name in datasets:
        if name not in state:
            visit(name, [name])


def dependency_order(config: Config) -> list[str]:
    """Dataset names, each after the ones it depends on; otherwise in config order."""
    done: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        for other in config.datasets[name].depends_on:
            visit(other)
        done.append(name)

    for name in config.datasets:
        visit(name)
    return done


def dependents_of(config: Config, name: str) -> list[str]:
    """Datasets that depend on ``name``, directly or through others, in dependency order."""
    reached = {name}
    out = []
    for other in dependency_order(config):
        if reached & set(config.datasets[other].depends_on):
            reached.add(other)
            out.append(other)
    return out


def _rules(raw: Any, columns: dict[str, ColumnConfig], path: Path, name: str) -> tuple[RuleConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(path, name, "rules", "expected a list of rules such as {column: a, op: '>=', other: b}")
    return tuple(_rule(item, columns, path, name, f"rules[{i}]") for i, item in enumerate(raw))


def _rule(raw: Any, columns: dict[str, ColumnConfig], path: Path, name: str, key: str) -> RuleConfig:
    if not isinstance(raw, dict):
        raise _fail(path, name, key, "expected {column: a, op: '>=', other: b} or {column: a, within_period: true}")
    unknown = set(raw) - {"column", "op", "other", "within_period", "severity"}
    if unknown:
        raise _fail(path, name, f"{key}.{sorted(unknown)[0]}", "unknown key")
    column = raw.get("column")
    if column not in columns:
        raise _fail(path, name, f"{key}.column", f"{column!r} is not one of the dataset's columns")
    severity = raw.get("severity", "error")
    if severity not in SEVERITIES:
        raise _fail(path, name, f"{key}.severity", f"{severity!r} must be one of {', '.join(SEVERITIES)}")
    ctype = columns[column].type
    if raw.get("within_period") is not None:
        if raw["within_period"] is not True or "op" in raw or "other" in raw:
            raise _fail(path, name, f"{key}.within_period", "expected true, without op and other")
        if ctype not in ("date", "datetime"):
            raise _fail(path, name, f"{key}.within_period", f"column {column!r} is {ctype}, not a date or datetime")
        return RuleConfig(column, within_period=True, severity=severity)
    op, other = raw.get("op"), raw.get("other")
    if op not in RULE_OPS:
        raise _fail(path, name, f"{key}.op", f"{op!r} must be one of {', '.join(RULE_OPS)}")
    if other not in columns:
        raise _fail(path, name, f"{key}.other", f"{other!r} is not one of the dataset's columns")
    kinds = {"integer": "number", "float": "number", "decimal": "number", "date": "time", "datetime": "time"}
    if kinds.get(ctype, ctype) != kinds.get(columns[other].type, columns[other].type):
        raise _fail(path, name, f"{key}.other", f"{column!r} ({ctype}) cannot be compared with "
                                                f"{other!r} ({columns[other].type})")
    return RuleConfig(column, op=op, other=other, severity=severity)


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

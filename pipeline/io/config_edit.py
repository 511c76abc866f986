"""Editing ``datasets_config.yml`` in place, keeping its comments, order,
quoting and alignment: ``accept-headers`` adds ``header:`` aliases.

ruamel.yaml (round-trip) reads the file and says where each column's value
is; a column written on one line (``name: {type: …}`` or ``name: integer``)
has just that value re-rendered in place, so every other byte of the file
stays as it was. Other layouts fall back to ruamel's round-trip dump, which
keeps comments but may re-space the file.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

# ruamel.yaml is imported where a file is edited, not when the dashboard starts.


def _yaml() -> YAML:
    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _with_alias(spec: Any, header: str) -> CommentedMap:
    """The column's settings (a fresh flow mapping) with ``header`` added:
    a second text turns ``header`` into a list, so the old header still loads."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    out = CommentedMap([("type", spec)]) if isinstance(spec, str) else CommentedMap(spec.items())
    out.fa.set_flow_style()
    old = out.get("header")
    if old is None:
        out["header"] = header
    else:
        seq = CommentedSeq([*(old if isinstance(old, list) else [old]), header])
        seq.fa.set_flow_style()
        out["header"] = seq
    return out


def _one_line(yaml: YAML, value: CommentedMap) -> str:
    out = io.StringIO()
    yaml.dump(value, out)
    return out.getvalue().strip().removesuffix("...").strip()


def _value_end(line: str, start: int) -> int | None:
    """Where the one-line value starting at ``start`` ends (a flow mapping's
    closing brace, or a plain scalar before any comment); None if it spans lines."""
    if line[start:start + 1] not in ("{", "["):
        hash_at = line.find(" #", start)
        return len(line[:hash_at].rstrip()) if hash_at >= 0 else len(line.rstrip())
    depth, quote, i = 0, "", start
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def add_header_aliases(path: Path, dataset: str, aliases: dict[str, str]) -> None:
    """Add each ``column → header text`` to the column's ``header:``."""
    from ruamel.yaml.comments import CommentedMap

    yaml = _yaml()
    text = path.read_text(encoding="utf-8")
    data = yaml.load(text)
    try:
        columns = data["datasets"][dataset]["columns"]
    except (KeyError, TypeError):
        raise ConfigError(f"{path.name}: dataset {dataset!r} has no columns mapping to edit") from None
    lines = text.splitlines(keepends=True)
    in_place = True
    for column, header in aliases.items():
        spec = columns[column]
        new = _with_alias(spec, header)
        line_no, col = columns.lc.value(column)
        line = lines[line_no]
        block = isinstance(spec, CommentedMap) and not spec.fa.flow_style()
        end = None if block else _value_end(line, col)
        if end is None:
            in_place = False
            if block:  # keep the block mapping (and its comments); only its header changes
                spec["header"] = new["header"]
            else:
                columns[column] = new
        else:
            lines[line_no] = line[:col] + _one_line(yaml, new) + line[end:]
            columns[column] = new
    if in_place:
        result = "".join(lines)
    else:
        out = io.StringIO()
        yaml.dump(data, out)
        result = out.getvalue()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(result, encoding="utf-8")
    os.replace(tmp, path)  # a reader never sees half a config

"""The layout's rules, checked on the source (README "Layout"): no import
cycles (imports inside functions count), a pure domain, one place that names
the databases, short functions."""
from __future__ import annotations

import ast
from collections.abc import Iterator

import pytest

from tests.conftest import REPO

PACKAGES = ("pipeline", "workbench")
MAX_FUNCTION_LINES = 60
# The translator and the backends are where dialects are named; everything
# else asks a backend.
DIALECT_MODULES = ("pipeline.warehouse.backends", "pipeline.warehouse.dialect")
DIALECT_NAMES = {"postgresql", "sqlite", "postgres"}
# What the domain may import from the project: only itself and the errors.
DOMAIN_MAY_IMPORT = ("pipeline.domain", "pipeline.errors")
DOMAIN_MAY_NOT_IMPORT = ("sqlalchemy", "psycopg2", "sqlite3", "streamlit", "papermill")


def modules() -> dict[str, ast.Module]:
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return out


def imported(name: str, tree: ast.Module, known: set[str]) -> Iterator[str]:
    """Every module ``tree`` imports, anywhere in it (functions included)."""
    package = name if (REPO / name.replace(".", "/")).is_dir() else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            yield base
            # `from pipeline.warehouse import runlog` imports the module runlog
            yield from (f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known)


def graph() -> dict[str, set[str]]:
    trees = modules()
    known = set(trees)
    return {name: {m for m in imported(name, tree, known) if m in known and m != name}
            for name, tree in trees.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_among_project_modules() -> None:
    assert cycles(graph()) == []


def test_the_domain_is_pure() -> None:
    trees = modules()
    for name, tree in trees.items():
        if not name.startswith("pipeline.domain"):
            continue
        for target in imported(name, tree, set(trees)):
            project = target.split(".")[0] in PACKAGES
            assert not (project and not target.startswith(DOMAIN_MAY_IMPORT)), f"{name} imports {target}"
            assert not target.startswith(DOMAIN_MAY_NOT_IMPORT), f"{name} imports {target}"


def test_only_the_backends_name_a_database() -> None:
    for name, tree in modules().items():
        if name.startswith(DIALECT_MODULES):
            continue
        for node in ast.walk(tree):
            asks_name = (isinstance(node, ast.Attribute) and node.attr == "name"
                         and isinstance(node.value, ast.Attribute) and node.value.attr == "dialect")
            asks_url = isinstance(node, ast.Attribute) and node.attr == "get_backend_name"
            if asks_name or asks_url:
                pytest.fail(f"{name} line {node.lineno} asks which database it is; ask its backend")
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value.lower() not in DIALECT_NAMES, f"{name} line {node.lineno} names {node.value!r}"


def test_functions_are_short() -> None:
    long = [
        f"{name}.{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for name, tree in modules().items() for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.end_lineno or node.lineno) - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []

"""The code's shape, checked: what issue #9 asked of the structure stays true.

- Every SQL statement file is named by exactly one function of ``sysdb`` (its door), and no
  code outside ``sysdb`` names a statement: callers speak typed functions, not strings. The
  runners that take a statement's name are private (``SystemDatabase._execute`` and friends).
- No module of the packages is over 400 lines, and no function over 60.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sysdb", "runtime", "cluster")
SQL_DIR = ROOT / "sysdb" / "sql"
STATEMENTS = {p.stem for p in SQL_DIR.glob("*.sql")}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _outermost_functions(tree: ast.Module) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Module-level functions and methods, by qualified name (nested helpers belong to them)."""
    found: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append((node.name, node))
        elif isinstance(node, ast.ClassDef):
            found += [(f"{node.name}.{m.name}", m) for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return found


def _statement_names_by_function(path: Path) -> dict[str, set[str]]:
    """Which statement names each function of a module passes to a call as a string literal."""
    named: dict[str, set[str]] = defaultdict(set)
    for qualname, function in _outermost_functions(ast.parse(path.read_text())):
        for node in ast.walk(function):
            if isinstance(node, ast.Call):
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and arg.value in STATEMENTS:
                        named[arg.value].add(f"{path.relative_to(ROOT)}:{qualname}")
    return named


def test_every_statement_is_named_by_exactly_one_sysdb_function() -> None:
    doors: dict[str, set[str]] = defaultdict(set)
    for path in _modules("sysdb"):
        for name, functions in _statement_names_by_function(path).items():
            doors[name] |= functions
    unnamed = sorted(STATEMENTS - set(doors))
    shared = {name: sorted(fns) for name, fns in doors.items() if len(fns) > 1}
    assert not unnamed, f"statement files no sysdb function runs: {unnamed}"
    assert not shared, f"statements named by more than one function (one door each): {shared}"


def test_no_code_outside_sysdb_names_a_statement() -> None:
    found = {}
    for path in _modules("runtime", "cluster"):
        for name, functions in _statement_names_by_function(path).items():
            found[name] = sorted(functions)
    assert not found, f"statement names used outside sysdb (call its door instead): {found}"


def test_the_statement_runners_are_private() -> None:
    from sysdb import SystemDatabase
    from sysdb.session import DedicatedSession

    public = [
        f"{cls.__name__}.{name}"
        for cls in (SystemDatabase, DedicatedSession)
        for name in vars(cls)
        if name.startswith(("execute", "query"))
    ]
    assert not public, f"statement runners reachable outside sysdb by name: {public}"


@pytest.mark.parametrize("path", _modules(*PACKAGES), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    source = path.read_text()
    lines = len(source.splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_MODULE_LINES})"
    long = {
        f.name: f.end_lineno - f.lineno + 1
        for f in _functions(ast.parse(source))
        if f.end_lineno is not None and f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES
    }
    assert not long, f"{path.relative_to(ROOT)}: functions over {MAX_FUNCTION_LINES} lines: {long}"

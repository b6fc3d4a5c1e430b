"""The allocator core stays pure: nothing under `models/mm/` imports simpy, pandas or `sim`,
and every module's `__all__` (where present) names only things it defines."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

MM = Path(__file__).resolve().parents[1] / "models" / "mm"
MODULES = sorted(p for p in MM.glob("*.py"))
FORBIDDEN = ("simpy", "pandas", "sim")


def _dynamic_import(node: ast.AST) -> str | None:
    """The module named by `importlib.import_module("x")` or `__import__("x")`, if literal."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    named = ((isinstance(func, ast.Attribute) and func.attr == "import_module")
             or (isinstance(func, ast.Name) and func.id == "__import__"))
    arg = node.args[0]
    if named and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    return None


def _imported_roots(tree: ast.AST) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (name := _dynamic_import(node)) is not None:
            roots.add(name.split(".")[0])
    return roots


def test_core_modules_found() -> None:
    names = {p.stem for p in MODULES}
    assert {"buddy", "alloc", "machine", "state", "invariants"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_forbidden_imports(path: Path) -> None:
    roots = _imported_roots(ast.parse(path.read_text(), filename=str(path)))
    assert not roots & set(FORBIDDEN), f"{path.name} imports {sorted(roots & set(FORBIDDEN))}"


def test_scanner_sees_imports() -> None:
    src = ("import simpy\nfrom sim.replay import x\nimport pandas as pd\n"
           "importlib.import_module('sim')\n__import__('numpy')")
    assert _imported_roots(ast.parse(src)) == {"simpy", "sim", "pandas", "numpy"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_all_names_exist(path: Path) -> None:
    module = importlib.import_module(f"models.mm.{path.stem}")
    names = getattr(module, "__all__", None)
    if path.name == "__init__.py":
        return  # the package itself exports nothing
    assert names is not None, f"{path.name} has no __all__"
    assert len(set(names)) == len(names), f"{path.name}: __all__ repeats a name"
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{path.name}: __all__ names missing attributes {missing}"

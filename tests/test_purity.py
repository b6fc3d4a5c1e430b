"""The allocator core stays pure: nothing under `models/mm/` imports simpy, pandas, the engine
(`fragsim.sim`), the agents, experiments or analysis, and every module's `__all__` (where
present) names only things it defines."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

MM = Path(__file__).resolve().parents[1] / "models" / "mm"
MODULES = sorted(p for p in MM.glob("*.py"))
FORBIDDEN = ("simpy", "pandas", "fragsim.sim", "fragsim.analysis", "fragsim.experiments",
             "fragsim.models.agents")


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


def _imported_modules(tree: ast.AST) -> set[str]:
    """Every module name an import in `tree` names (relative imports count as forbidden)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif (name := _dynamic_import(node)) is not None:
            names.add(name)
    return names


def _forbidden(names: set[str]) -> set[str]:
    """The names that are, or lie under, a forbidden module; relative imports are refused
    outright (the core imports itself as `fragsim.models.mm`)."""
    return {n for n in names if n.startswith(".")
            or any(n == f or n.startswith(f + ".") for f in FORBIDDEN)}


def test_core_modules_found() -> None:
    names = {p.stem for p in MODULES}
    assert {"buddy", "alloc", "machine", "state", "invariants"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_forbidden_imports(path: Path) -> None:
    bad = _forbidden(_imported_modules(ast.parse(path.read_text(), filename=str(path))))
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_scanner_sees_imports() -> None:
    src = ("import simpy\nfrom fragsim.sim.replay import x\nimport pandas as pd\n"
           "importlib.import_module('fragsim.sim')\n__import__('numpy')\n"
           "from fragsim.models.mm import buddy\nfrom . import y\n"
           "import fragsim.simulation\n")
    names = _imported_modules(ast.parse(src))
    assert names == {"simpy", "fragsim.sim.replay", "pandas", "fragsim.sim", "numpy",
                     "fragsim.models.mm", ".", "fragsim.simulation"}
    assert _forbidden(names) == {"simpy", "fragsim.sim.replay", "pandas", "fragsim.sim", "."}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_all_names_exist(path: Path) -> None:
    module = importlib.import_module(f"fragsim.models.mm.{path.stem}")
    names = getattr(module, "__all__", None)
    if path.name == "__init__.py":
        return  # the package itself exports nothing
    assert names is not None, f"{path.name} has no __all__"
    assert len(set(names)) == len(names), f"{path.name}: __all__ repeats a name"
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{path.name}: __all__ names missing attributes {missing}"

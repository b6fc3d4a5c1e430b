"""Packaging: one import name, `fragsim`, whose subpackages are the repository's folders."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import fragsim
from fragsim.sim.cli import main

ROOT = Path(__file__).resolve().parents[1]


FOLDERS = ("sim", "models", "experiments", "analysis")


def test_fragsim_links_every_top_level_folder() -> None:
    for name in FOLDERS:
        link = ROOT / "fragsim" / name
        assert link.is_symlink() and link.resolve() == (ROOT / name).resolve(), name


def test_setuptools_finds_only_fragsim() -> None:
    with open(ROOT / "pyproject.toml", "rb") as f:
        find = tomllib.load(f)["tool"]["setuptools"]["packages"]["find"]
    assert find["include"] == ["fragsim*"]


def test_modules_load_through_the_fragsim_folder() -> None:
    """One path per module, whatever the working directory: numba's cache is keyed by it."""
    import fragsim.models.mm.machine as machine

    assert Path(machine.__file__ or "") == ROOT / "fragsim" / "models" / "mm" / "machine.py"


def test_version() -> None:
    assert fragsim.__version__ and fragsim.__version__ != "0+unknown"


def test_cli_version(capsys: object) -> None:
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert out.strip() == f"fragsim {fragsim.__version__}"


def test_no_top_level_models_or_sim_outside_the_checkout(tmp_path: Path) -> None:
    """Installed, fragsim does not put `models`, `sim` or `analysis` on the import path."""
    code = ("import importlib.util, fragsim.models.mm.machine, fragsim.sim.cli; "
            "print([n for n in ('models', 'sim', 'analysis', 'experiments') "
            "if importlib.util.find_spec(n)])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"

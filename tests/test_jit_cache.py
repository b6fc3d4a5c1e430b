"""The compiled core's cache: one signature per function, keyed by the sources' content, shared
by every checkout of the same sources (`models.mm.jit`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fragsim.models.mm import alloc, buddy, jit
from fragsim.models.mm.machine import Machine, MachineConfig

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("models", "sim", "experiments", "analysis")

#: In a child: boot a machine (compiling or loading the boot functions), print what compiled.
CHILD = """
import sys
from numba.core import event
compiled = []
class Count(event.Listener):
    def on_start(self, ev):
        pass
    def on_end(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__qualname__)
event.register("numba:compile", Count())
import fragsim
from fragsim.models.mm.machine import Machine, MachineConfig
Machine(MachineConfig(memory=16 << 20))
print(fragsim.__file__, len(compiled))
"""


def checkout_copy(into: Path) -> Path:
    """The package's sources copied to `into` (the `fragsim/` links kept), as a clone has them."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.trace")
    shutil.copytree(ROOT / "fragsim", into / "fragsim", symlinks=True, ignore=ignore)
    for name in FOLDERS:
        shutil.copytree(ROOT / name, into / name, ignore=ignore)
    return into


def boot_in(checkout: Path, cache: Path) -> int:
    """How many functions a fresh process compiles booting a machine from `checkout`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT", "PYTHONPATH")}
    env.update(XDG_CACHE_HOME=str(cache), PYTHONPATH=str(checkout))
    proc = subprocess.run([sys.executable, "-c", CHILD], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    where, count = proc.stdout.split()
    assert Path(where) == checkout / "fragsim" / "__init__.py"
    return int(count)


@pytest.mark.skipif(jit.DISABLE_JIT, reason="needs the JIT")
def test_a_second_checkout_compiles_nothing_and_an_edit_compiles_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    a = checkout_copy(tmp_path / "a")
    b = checkout_copy(tmp_path / "elsewhere" / "b")
    assert boot_in(a, cache) > 0
    assert boot_in(b, cache) == 0  # another path, same sources: everything comes from the cache
    with open(b / "models" / "mm" / "geometry.py", "a") as f:
        f.write("# an edit anywhere under models/ changes the key\n")
    assert boot_in(b, cache) > 0
    assert boot_in(a, cache) == 0  # the first checkout's entries are still there


def test_source_hash_depends_on_content_not_place(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("one", "two"):
        (tmp_path / name / "models" / "agents").mkdir(parents=True)
        (tmp_path / name / "models" / "mm.py").write_text("X = 1\n")
        (tmp_path / name / "models" / "agents" / "walk.py").write_text("Y = 2\n")
    hashes: list[str] = []
    for name in ("one", "two", "two"):
        if len(hashes) == 2:
            (tmp_path / "two" / "models" / "agents" / "walk.py").write_text("Y = 3\n")
        jit.source_hash.cache_clear()
        monkeypatch.setattr(jit, "_package_dir", lambda n=name: tmp_path / n)
        hashes.append(jit.source_hash("models"))
    jit.source_hash.cache_clear()
    assert hashes[0] == hashes[1] != hashes[2]


def test_keys_cover_models_and_the_own_folder() -> None:
    models_key = jit.cache_key("fragsim.models.mm.alloc")
    assert models_key == jit.cache_key("fragsim.models.agents.walker")
    sim_key = jit.cache_key("fragsim.sim.replay")
    assert sim_key != models_key and sim_key == jit.cache_key("fragsim.sim.trace")


@pytest.mark.skipif(jit.DISABLE_JIT, reason="needs the JIT")
def test_core_functions_use_the_source_keyed_locator() -> None:
    cache = getattr(alloc.alloc_one, "_cache")  # noqa: B009 (numba's, untyped)
    assert isinstance(cache._impl.locator, jit.SourceTreeLocator)
    assert Path(cache.cache_path) == jit.cache_dir("fragsim.models.mm.alloc")
    assert jit.cache_key("fragsim.models.mm.alloc") in cache.cache_path
    assert cache._impl.locator.get_source_stamp() == jit.cache_key("fragsim.models.mm.alloc")


@pytest.mark.skipif(jit.DISABLE_JIT, reason="needs the JIT")
def test_one_signature_per_function_whatever_the_caller_passes() -> None:
    m = Machine(MachineConfig(memory=16 << 20))
    m.free(m.alloc(0))
    m.free_batch(m.alloc_many(0, 8))
    (z,) = m.populated_zones()
    zone = m.zones[z]
    # Python ints and numpy int32 scalars: both run the one int64 version.
    assert buddy.zone_of_pfn(m.zones, np.int32(5)) == z  # type: ignore[arg-type]
    assert buddy.zone_of_pfn(m.zones, 5) == z
    assert buddy.move_freepages_block(m.pages, zone, 0, 1, 9) >= 0
    for fn in (alloc.alloc_one, alloc.free_one, alloc.alloc_batch, alloc.free_batch,
               buddy.zone_of_pfn, buddy.move_freepages_block):
        assert len(getattr(fn, "signatures")) == 1, fn  # noqa: B009
    # Functions only called from compiled code are compiled when a caller is (not when the
    # caller comes from the cache), and then for their one signature too.
    for module in (alloc, buddy):
        for name in module.__all__:
            fn = getattr(module, name)
            if isinstance(fn, jit._Compiled):
                assert len(fn.signatures) <= 1, name
    with pytest.raises(TypeError, match="No matching definition"):
        buddy.zone_of_pfn(m.pages, 5)


def test_signatures_are_checked_at_decoration() -> None:
    with pytest.raises(TypeError, match="2 parameters, signature 'int' has 1 types"):
        jit.compiled("int")(lambda a, b: a)
    if not jit.DISABLE_JIT:
        with pytest.raises(TypeError, match="unknown types"):
            jit.compiled("int, complex")(lambda a, b: a)


def test_install_reports_a_missing_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jit, "_impl_class", lambda: None)
    assert jit.install_cache_locator() is False

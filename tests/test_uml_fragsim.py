"""The fragsim side of experiments/uml: the `uml-load` scenario (`models.agents.umlload`), the
boot replay, `run_fragsim.py`'s tables and `compare.py`'s, without booting UML."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from fragsim.models.agents.umlload import (
    STAGES,
    BootSnapshot,
    UmlLoadParams,
    ext2_metadata_blocks,
    replay_boot,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.procfs import buddyinfo, pagetypeinfo
from fragsim.models.mm.procparse import Buddyinfo, Pagetypeinfo, parse_proc
from fragsim.models.mm.profiles import machine_config

ROOT = Path(__file__).resolve().parent.parent
UML = ROOT / "experiments" / "uml"
RESULTS = UML / "results"
BOOTS = sorted((RESULTS / "boots").glob("run-*"))


def load_script(name: str) -> ModuleType:
    """A script of experiments/uml (outside the package) as a module."""
    path = UML / f"{name}.py"
    if name in sys.modules and getattr(sys.modules[name], "__file__", "") == str(path):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def uml_machine(kernel: str = "6.1") -> Machine:
    """The guest's geometry as fragsim-load.toml gives it: 256 MiB, one Normal zone,
    MAX_ORDER 11, pageblock_order 10."""
    return Machine(machine_config(kernel, memory=256 * MiB, profile="x86", layout="flat"))


def snapshot(path: Path) -> BootSnapshot:
    pti = parse_proc(path.read_text())
    assert isinstance(pti, Pagetypeinfo)
    return BootSnapshot(free=dict(pti.zones[0].free), pageblocks=dict(pti.zones[0].pageblocks))


@pytest.mark.parametrize("boot", BOOTS, ids=[b.name for b in BOOTS])
def test_replay_reproduces_the_real_boot(boot: Path) -> None:
    """After the replay the model's /proc files say what the real guest's said at boot."""
    m = uml_machine()
    replay_boot(m, snapshot(boot / "boot" / "pagetypeinfo"))
    real = parse_proc((boot / "boot" / "pagetypeinfo").read_text())
    got = parse_proc(pagetypeinfo(m))
    assert isinstance(real, Pagetypeinfo) and isinstance(got, Pagetypeinfo)
    assert got.pageblock_order == real.pageblock_order == 10
    zr, zg = real.zones[0], got.zones[0]
    for t in real.block_types:
        assert zg.pageblocks[t] == zr.pageblocks[t], t
        assert zg.free[t] == zr.free[t], t
    assert zg.pageblocks["Isolate"] == 0
    rb, gb = parse_proc((boot / "boot" / "buddyinfo").read_text()), parse_proc(buddyinfo(m))
    assert isinstance(rb, Buddyinfo) and isinstance(gb, Buddyinfo)
    assert gb.zones[0].nr_free == rb.zones[0].nr_free


def test_replay_refuses_a_snapshot_of_another_machine() -> None:
    snap = snapshot(BOOTS[0] / "boot" / "pagetypeinfo")
    small = Machine(machine_config("6.1", memory=128 * MiB, profile="x86", layout="flat"))
    with pytest.raises(ValueError, match="64 pageblocks of 1024 pages are not the machine's"):
        replay_boot(small, snap)
    crowded = BootSnapshot(free={**snap.free, "Unmovable": (0,) * 9 + (30, 0)},
                           pageblocks=snap.pageblocks)
    with pytest.raises(ValueError, match="no room for a free Unmovable block of order 9"):
        replay_boot(uml_machine(), crowded)


def test_ext2_metadata_blocks_follow_the_block_map() -> None:
    p = UmlLoadParams()
    kib = 1024
    # One directory block and one inode-table block (16 inodes of 256 bytes fit in one).
    assert ext2_metadata_blocks(np.array([4 * kib] * 16), p) == 2
    assert ext2_metadata_blocks(np.array([4 * kib] * 17), p) == 3
    # 12 direct blocks need no indirect block; the 13th needs one; past 12 + 1024 a
    # double-indirect block and a second indirect block.
    assert ext2_metadata_blocks(np.array([48 * kib]), p) == 2
    assert ext2_metadata_blocks(np.array([48 * kib + 1]), p) == 3
    assert ext2_metadata_blocks(np.array([(12 + 1024) * 4 * kib]), p) == 3
    assert ext2_metadata_blocks(np.array([(12 + 1024) * 4 * kib + 1]), p) == 5


def test_tree_sizes_are_the_files_make_tree_writes(tmp_path: Path) -> None:
    driver = load_script("run_uml")
    n = driver.make_tree(tmp_path / "tree", 3, 0)
    sizes = sorted((f.name, f.stat().st_size) for f in (tmp_path / "tree").rglob("f*"))
    assert n == len(sizes) > 10
    assert [s for _, s in sizes] == driver.tree_sizes(3, 0)


@pytest.fixture(scope="module")
def seed0(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The fragsim side, one seed (the boot of run-1), the load's default sizes."""
    fs = load_script("run_fragsim")
    out = tmp_path_factory.mktemp("fragsim")
    return fs.run_all("6.1", [0], fs.Load(), out)


def test_fragsim_table_has_the_guests_schema(seed0: pd.DataFrame) -> None:
    real = pd.read_csv(RESULTS / "stages.csv")
    assert list(seed0.columns) == [*real.columns, "pageblocks_isolate"]
    assert tuple(seed0["stage"]) == STAGES
    assert (seed0["zone"] == "Normal").all() and (seed0["pageblock_order"] == 10).all()
    assert seed0["high_order_free_share"].between(0, 1).all()
    assert (seed0.filter(like="pageblocks_").sum(axis=1) == 64).all()
    assert (seed0["free_pages"] <= 65536).all()
    assert seed0["uptime_s"].is_monotonic_increasing


def test_fragsim_boot_row_is_the_replayed_boot(seed0: pd.DataFrame) -> None:
    driver = load_script("run_uml")
    zones, _ = driver.stage_rows(1, BOOTS[0])
    real = zones[0]
    boot = seed0.iloc[0]
    assert boot["free_pages"] == real["free_pages"]
    assert boot["high_order_free_share"] == pytest.approx(real["high_order_free_share"])
    for t in ("unmovable", "movable", "reclaimable", "highatomic"):
        assert boot[f"pageblocks_{t}"] == real[f"pageblocks_{t}"]


def test_fragsim_seed_reproduces_the_committed_table(seed0: pd.DataFrame) -> None:
    committed = pd.read_csv(RESULTS / "fragsim-6.1" / "stages.csv")
    want = committed[committed["run"] == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(seed0.reset_index(drop=True), want, check_dtype=False)


def test_compare_reproduces_the_committed_comparison() -> None:
    cmp = load_script("compare")
    real = pd.read_csv(RESULTS / "stages.csv")
    fragsim = {k: pd.read_csv(RESULTS / f"fragsim-{k}" / "stages.csv") for k in ("6.1", "2.6.24")}
    got = cmp.comparison(real, fragsim)
    want = pd.read_csv(RESULTS / "comparison.csv")
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert set(got["side"]) == {"linux", "fragsim-6.1", "fragsim-2.6.24"}
    assert (got["min"] <= got["mean"] + 1e-12).all() and (got["mean"] <= got["max"] + 1e-12).all()
    assert cmp.markdown(got) == (RESULTS / "comparison.md").read_text()


def test_the_load_draws_no_random_numbers(seed0: pd.DataFrame,
                                          tmp_path: Path) -> None:
    """Seed 5 replays the same boot as seed 0 (5 boots): the same table, so the fragsim
    spread in the comparison is the boots' alone."""
    fs = load_script("run_fragsim")
    seed5 = fs.run_all("6.1", [5], fs.Load(), tmp_path)
    assert (seed5["run"] == 5).all()
    pd.testing.assert_frame_equal(seed5.drop(columns="run"), seed0.drop(columns="run"))


def test_readme_shows_the_committed_comparison() -> None:
    """experiments/uml/README.md quotes comparison.md whole (rerun compare.py, then paste)."""
    table = (RESULTS / "comparison.md").read_text()
    assert table in (UML / "README.md").read_text()

"""Transparent huge page faults: the GFP masks of `vma_thp_gfp_mask`, the kernel facade's
`thp_fault`, processes faulting and freeing huge pages, the config checks, and THP off leaving
every result as it was.

No kernel preset has THP yet (the presets stop at 2.6.35; THP came in 2.6.38), so the tests
that run THP add a stand-in preset, `thp-test`: 2.6.35's allocator with `thp: True`, through
`monkeypatch.setitem` on `KERNEL_PROFILES`, the dict the config check and the engine consult.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import simpy

from fragsim.models.agents.processes import Processes, TaskParams
from fragsim.models.mm.constants import (
    ALLOC_NO_WATERMARKS,
    KIND_ANON,
    KIND_KERNEL,
    MIGRATE_MOVABLE,
    PG_HEAD,
)
from fragsim.models.mm.gfp import GFP, GFP_HIGHUSER_MOVABLE
from fragsim.models.mm.huge_memory import (
    GFP_TRANSHUGE,
    GFP_TRANSHUGE_LIGHT,
    thp_fault_enabled,
    vma_thp_gfp_mask,
)
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.lru import LRU_ACTIVE
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.profiles import KERNEL_PROFILES, machine_config
from fragsim.models.mm.reclaim import free_lru_pages
from fragsim.models.mm.state import KIND_SHIFT
from fragsim.sim.config import load_workload
from fragsim.sim.kernel import Kernel
from fragsim.sim.recorder import Recorder
from fragsim.sim.run import run_workload
from fragsim.sim.streams import Streams
from tests.conftest_tiny import drive, tiny

MiB = 1 << 20


@pytest.fixture
def thp_preset(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(KERNEL_PROFILES, "thp-test", {**KERNEL_PROFILES["2.6.35"], "thp": True})
    return "thp-test"


def _kernel(enabled: str, defrag: str, memory: int = 64 * MiB) -> Kernel:
    m = Machine(machine_config("2.6.35", memory=memory, layout="flat", swap=0, thp=True,
                               thp_enabled=enabled, thp_defrag=defrag))
    return Kernel(simpy.Environment(), m, Recorder(), Streams(0))




def _fragment(k: Kernel) -> None:
    """Fill memory with anonymous LRU pages down to about the MIN watermark, then free every
    other one: plenty of free memory, no free block of order 9."""
    m = k.machine
    n = m.free_pages() - 2 * int(m.zones["watermark"][:, 2].sum())
    pfns = drive(k, k.alloc(n, 0, int(GFP_HIGHUSER_MOVABLE), 1 << 20, KIND_ANON,
                           lru=LRU_ACTIVE))
    pfns = np.sort(pfns[pfns >= 0])
    # What is left of order 9 and up (the MIGRATE_RESERVE block) is pinned by the kernel.
    while int(m.zones["nr_free"][:, 9:].sum()):
        assert m.alloc(9, migratetype=MIGRATE_MOVABLE, kind=KIND_KERNEL,
                       alloc_flags=ALLOC_NO_WATERMARKS) >= 0
    free_lru_pages(m, pfns[::2])
    assert int(m.zones["nr_free"][:, 9:].sum()) == 0


def _stats(m: Machine, *names: str) -> tuple[int, ...]:
    return tuple(m.stat(n) for n in names)


# --- the masks ------------------------------------------------------------------------------
def test_gfp_masks_follow_vma_thp_gfp_mask() -> None:
    light = GFP_TRANSHUGE_LIGHT
    assert light & GFP_HIGHUSER_MOVABLE & ~GFP.WAIT == GFP_HIGHUSER_MOVABLE & ~GFP.WAIT
    assert not light & GFP.WAIT and light & GFP.NO_KSWAPD and light & GFP.NOWARN
    assert light | GFP.WAIT == GFP_TRANSHUGE
    assert vma_thp_gfp_mask("always", True) == GFP_TRANSHUGE
    assert vma_thp_gfp_mask("always", False) == GFP_TRANSHUGE | GFP.NORETRY
    assert vma_thp_gfp_mask("defer", True) == light & ~GFP.NO_KSWAPD
    assert vma_thp_gfp_mask("defer+madvise", True) == light | GFP.WAIT
    assert vma_thp_gfp_mask("defer+madvise", False) == light & ~GFP.NO_KSWAPD
    assert vma_thp_gfp_mask("madvise", True) == light | GFP.WAIT
    assert vma_thp_gfp_mask("madvise", False) == light
    assert vma_thp_gfp_mask("never", True) == light
    assert thp_fault_enabled("always", False) and thp_fault_enabled("madvise", True)
    assert not thp_fault_enabled("madvise", False) and not thp_fault_enabled("never", True)


# --- config ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("sets", "words"), [
    (["kernel.thp_enabled=sometimes"], ["kernel.thp_enabled", "always, madvise, never"]),
    (["kernel.thp_defrag=hard"], ["kernel.thp_defrag",
                                  "always, defer, defer+madvise, madvise, never"]),
    (["kernel.version=2.6.35", "kernel.thp_enabled=always"], ["kernel 2.6.35", "2.6.38"]),
    (["kernel.version=2.6.20", "kernel.thp_enabled=madvise"], ["kernel 2.6.20"]),
    (["kernel.watermark_scale_factor=20"], ["kernel 2.6.24", "4.6", "allowed is -1"]),
    (["kernel.version=6.1", "kernel.watermark_scale_factor=0"], ["1..3000"]),
])
def test_config_errors_are_one_line(sets: list[str], words: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        load_workload("desktop", sets=sets)
    msg = str(err.value)
    assert "\n" not in msg
    for word in words:
        assert word in msg


def test_machine_config_refuses_thp_on_a_kernel_without_it() -> None:
    with pytest.raises(ValueError, match="has no transparent huge pages"):
        MachineConfig(memory=64 * MiB, thp_enabled="always").resolved()
    with pytest.raises(ValueError, match="allowed are always, defer"):
        MachineConfig(memory=64 * MiB, thp=True, thp_defrag="sometimes").resolved()


def test_thp_preset_is_accepted_and_defaults_keep_config_ids(thp_preset: str) -> None:
    w = load_workload("desktop", sets=[f"kernel.version={thp_preset}",
                                       "kernel.thp_enabled=always"])
    assert w.kernel.thp_enabled == "always" and w.kernel.thp_defrag == "madvise"
    plain = load_workload("desktop")
    explicit = load_workload("desktop", sets=["kernel.thp_enabled=never",
                                              "kernel.thp_defrag=madvise",
                                              "tasks.thp_madvise_share=0"])
    assert plain.config_id() == explicit.config_id()
    assert "kernel.thp_enabled" in plain.flat()
    other = load_workload("desktop", sets=["kernel.thp_defrag=always"])
    assert other.config_id() != plain.config_id()


# --- the facade -----------------------------------------------------------------------------
def test_plenty_of_memory_faults_are_order_9_blocks() -> None:
    k = _kernel("always", "never")
    m = k.machine
    before = m.free_pages()
    pfn = drive(k, k.thp_fault(1 << 25, False))
    assert pfn >= 0 and pfn % 512 == 0
    assert m.pages["order"][pfn] == 9 and m.pages["flags"][pfn] & PG_HEAD
    assert m.pages["mt"][pfn] >> KIND_SHIFT == KIND_ANON
    assert m.free_pages() == before - 512
    assert _stats(m, "thp_fault_alloc", "thp_fault_fallback") == (1, 0)
    assert m.vmstat()["thp_fault_alloc"] == 1
    check_invariants(m)


def test_fragmented_defrag_never_falls_back_without_reclaim_or_kswapd() -> None:
    k = _kernel("always", "never")
    m = k.machine
    _fragment(k)
    names = ("compact_stall", "allocstall", "pgscan_kswapd", "pgscan_direct")
    before = _stats(m, *names)
    m.kswapd_order = [-1] * len(m.kswapd_order)
    pfn = drive(k, k.thp_fault(1 << 25, True))
    assert pfn == -1
    assert _stats(m, "thp_fault_alloc", "thp_fault_fallback") == (0, 1)
    assert _stats(m, *names) == before
    assert max(m.kswapd_order) == -1
    assert not (k.recorder.events_frame().get("event", pd.Series([])) ==
                "page_allocation_failure").any()  # __GFP_NOWARN


def test_fragmented_defrag_always_compacts_directly() -> None:
    k = _kernel("always", "always")
    m = k.machine
    _fragment(k)
    stall, allocstall = _stats(m, "compact_stall", "allocstall")
    migrated = m.stat("pgmigrate_success")
    pfn = drive(k, k.thp_fault(1 << 25, False))
    # Direct compaction (2.6.35 runs it before direct reclaim) migrates the LRU pages away.
    assert m.stat("compact_stall") == stall + 1 and m.stat("pgmigrate_success") > migrated
    assert m.stat("allocstall") == allocstall
    assert pfn >= 0 and m.pages["order"][pfn] == 9
    assert _stats(m, "thp_fault_alloc", "thp_fault_fallback") == (1, 0)
    check_invariants(m)


def test_defrag_defer_wakes_kswapd_and_does_not_stall() -> None:
    k = _kernel("always", "defer")
    m = k.machine
    _fragment(k)
    stall, allocstall = _stats(m, "compact_stall", "allocstall")
    m.kswapd_order = [-1] * len(m.kswapd_order)
    gen = k.thp_fault(1 << 25, False)
    try:  # the non-sleeping path yields nothing: drive it by hand to look before kswapd runs
        next(gen)
    except StopIteration as stop:
        assert stop.value == -1
    assert max(m.kswapd_order) == 9
    assert _stats(m, "compact_stall", "allocstall") == (stall, allocstall)


# --- processes ------------------------------------------------------------------------------
def _procs(k: Kernel, share: float = 0.0) -> Processes:
    return Processes(k, None, TaskParams(thp_madvise_share=share))  # type: ignore[arg-type]


def test_grow_faults_huge_pages_then_order_0_and_exit_frees_them() -> None:
    k = _kernel("always", "never")
    m = k.machine
    procs = _procs(k)
    slot = drive(k, procs.spawn())
    free0 = m.free_pages()
    got = drive(k, procs.grow(slot, 4 * 512 + 100))
    assert got == 4 * 512 + 100 and procs.anon[slot] == got
    anon = procs.anon_pages(slot)
    orders = m.pages["order"][anon]
    assert (orders == 9).sum() == 4 and (orders == 0).sum() == 100
    assert m.stat("thp_fault_alloc") == 4
    freed = procs.shrink(slot, 600, np.random.default_rng(0))
    left = procs.anon_pages(slot)
    huge_left = int((m.pages["order"][left] == 9).sum())
    assert huge_left < 4  # a huge page is unmapped whole
    assert freed == (4 - huge_left) * 512 + (100 - int((m.pages["order"][left] == 0).sum()))
    assert procs.anon[slot] == got - freed
    procs.exit(slot)
    assert m.free_pages() >= free0  # page tables and anonymous memory all back
    check_invariants(m)


def test_madvise_mode_uses_only_the_madvised_share() -> None:
    for share, attempts in ((0.0, 0), (0.5, 2)):
        k = _kernel("madvise", "madvise")
        procs = _procs(k, share)
        slot = drive(k, procs.spawn())
        drive(k, procs.grow(slot, 4 * 512))
        m = k.machine
        assert m.stat("thp_fault_alloc") + m.stat("thp_fault_fallback") == attempts


def test_fragmented_fallback_faults_order_0_pages() -> None:
    k = _kernel("always", "never")
    m = k.machine
    procs = _procs(k)
    slot = drive(k, procs.spawn())
    _fragment(k)
    got = drive(k, procs.grow(slot, 2 * 512))
    assert m.stat("thp_fault_fallback") == 2 and m.stat("thp_fault_alloc") == 0
    anon = procs.anon_pages(slot)
    assert got == 1024 and (m.pages["order"][anon] == 0).all() and anon.shape[0] == 1024


# --- runs -----------------------------------------------------------------------------------
def _tables(r: Any) -> list[pd.DataFrame]:
    runs = r.runs.drop(columns=["wall_s", "run_id", "config_id"])
    return [runs, r.samples.drop(columns=["run_id"]), r.events.drop(columns=["run_id"])]


def test_thp_never_leaves_results_identical(thp_preset: str) -> None:
    base = run_workload(tiny("desktop", {"kernel.version": "2.6.35", "run.seed": 2}))
    never = run_workload(tiny("desktop", {"kernel.version": "2.6.35", "run.seed": 2},
                              ["kernel.thp_enabled=never", "kernel.thp_defrag=always"]))
    # A kernel that has THP but with enabled=never behaves as 2.6.35 does.
    stand_in = run_workload(tiny("desktop", {"kernel.version": thp_preset, "run.seed": 2}))
    for a, b in zip(_tables(base), _tables(never), strict=True):
        pd.testing.assert_frame_equal(a, b)
    for a, b in zip(_tables(base)[1:], _tables(stand_in)[1:], strict=True):
        pd.testing.assert_frame_equal(a.drop(columns=["kernel"]), b.drop(columns=["kernel"]))
    assert "thp_fault_alloc" not in base.runs.columns
    assert not base.samples["metric"].isin(["thp_fault_alloc"]).any()


def test_desktop_with_thp_always_records_the_counters(thp_preset: str) -> None:
    r = run_workload(tiny("desktop", {"kernel.version": thp_preset, "run.seed": 2},
                          ["kernel.thp_enabled=always", "kernel.thp_defrag=defer"]))
    row = r.runs.iloc[0]
    assert row["status"] == "ok", row.get("traceback")
    assert row["thp_fault_alloc"] > 0
    assert row["thp_fault_alloc"] + row["thp_fault_fallback"] > 0
    s = r.samples
    last = s[s["metric"] == "thp_fault_alloc"]["value"].iloc[-1]
    assert last == row["thp_fault_alloc"]

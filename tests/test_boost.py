"""Watermark boosting and ALLOC_NOFRAGMENT (5.0) as 6.1 has them, beside the kernels without.

Expected values are derived in the comments from 6.1 `mm/page_alloc.c` and `mm/vmscan.c`
(6.1.y, unifreq/linux-6.1.y 07badeaa), not from running the model.

Geometry "B": 64 MiB flat x86_64 (MAX_ORDER 11, pageblock_order 9: 32 pageblocks of 512
pages, 16 max-order blocks), 6.1 preset: min_free_kbytes int_sqrt(65536 * 16) = 1024, so
pages_min 256; watermark_scale_factor 10: gap max(256 >> 2, 16384 * 10 // 10000) = 64, low
320, high 384. watermark_boost_factor 15000: max_boost = max(512, mult_frac(384, 15000,
10000) = 576) = 576.
"""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from fragsim.models.mm import reclaim, slowpath
from fragsim.models.mm.alloc import WMARK_RULE_6_1, zone_watermark_fast, zone_watermark_ok
from fragsim.models.mm.boost import alloc_flags_nofragment, boost_watermark
from fragsim.models.mm.constants import (
    ALLOC_HARDER,
    ALLOC_KSWAPD,
    ALLOC_NO_WATERMARKS,
    ALLOC_NOFRAGMENT,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MIN,
    KIND_FILE,
    KIND_KERNEL,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    PG_DIRTY,
    PG_WRITEBACK,
    ZONE_BOOSTED_WATERMARK,
    ZONE_DMA,
    ZONE_DMA32,
    ZONE_NORMAL,
)
from fragsim.models.mm.geometry import GiB, MiB
from fragsim.models.mm.gfp import GFP, GFP_HIGHUSER_MOVABLE, GFP_KERNEL
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.profiles import machine_config
from fragsim.models.mm.reclaim_state import reclaim_state
from fragsim.models.mm.state import ZONE_DTYPE, new_node
from fragsim.sim.config import load_workload
from fragsim.sim.engine import Environment
from fragsim.sim.kernel import Kernel
from fragsim.sim.recorder import Recorder
from fragsim.sim.streams import Streams
from tests.conftest_tiny import drive, tiny
from tests.test_buddy_golden import free_list, last_extfrag

UNMOV, RECL, MOV = MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE
N = ZONE_NORMAL
NOWM = ALLOC_NO_WATERMARKS


def _b(**kw: object) -> Machine:
    return Machine(machine_config("6.1", memory=64 * MiB, **kw))


def _small_movable_blocks(m: Machine) -> None:
    """B with every free page in pageblock 30, in blocks below pageblock_order: 15 MOVABLE
    order-10 allocations take pfns 0..15359 (boot's FPI_TO_TAIL leaves the lowest block at the
    head), a MOVABLE order-0 page splits the last block (15360: expand leaves o9 15872, o8
    15616, ..., o0 15361), and a MOVABLE order-9 request takes 15872. Free: o0..o8 of
    pageblock 30, 511 pages, all MOVABLE."""
    assert (m.alloc_many(10, 15, migratetype=MOV, alloc_flags=NOWM) >= 0).all()
    assert m.alloc(0, migratetype=MOV, alloc_flags=NOWM) == 15360
    assert m.alloc(9, migratetype=MOV, alloc_flags=NOWM) == 15872
    assert [free_list(m, o, MOV) for o in range(11)] == [[15360 + (1 << o)] for o in range(9)] \
        + [[], []]


# --- boost_watermark and ZONE_BOOSTED_WATERMARK ----------------------------------------------

def test_steal_from_a_foreign_pageblock_boosts_up_to_max_boost() -> None:
    m = _b()
    assert tuple(m.zones[N]["watermark"]) == (256, 320, 384)
    _small_movable_blocks(m)
    # 1. UNMOVABLE order 0 (ALLOC_KSWAPD): no UNMOVABLE page; __rmqueue_fallback's largest is
    #    MOVABLE o8 15616, below pageblock_order: steal_suitable_fallback boosts (0 + 512,
    #    max_boost 576) and sets ZONE_BOOSTED_WATERMARK; can_steal: the 511 free pages move
    #    and alike = 512 - 511 = 1, 512 >= 256: pageblock 30 is claimed. __rmqueue_smallest
    #    takes UNMOVABLE o0 15361. rmqueue's `out:` sees the flag, clears it and wakes kswapd
    #    for the zone (order 0): in this same call.
    flags = NOWM | ALLOC_KSWAPD
    assert m.alloc(0, migratetype=UNMOV, alloc_flags=flags) == 15361
    zone = m.zones[N]
    assert int(zone["watermark_boost"]) == 512
    assert int(zone["flags"]) & ZONE_BOOSTED_WATERMARK == 0
    assert int(m.node[0]["boost_wake"]) == 1 << N
    assert m.pageblock_type[30] == UNMOV
    assert last_extfrag(m)["fallback_order"] == 8
    # The Python side turns the record into wakeup_kswapd(zone, 0, 0, zone_idx(zone)).
    assert m.kswapd_order == [-1] * 5
    assert slowpath.boost_wakeups(m)
    assert m.kswapd_order == [-1, -1, 0, -1, -1]  # Normal and below; DMA, DMA32 are empty
    assert int(m.node[0]["boost_wake"]) == 0 and not slowpath.boost_wakeups(m)
    # 2. RECLAIMABLE order 0 without ALLOC_KSWAPD: the largest fallback is UNMOVABLE o8 15616
    #    (now in an UNMOVABLE pageblock, foreign to the request): the boost goes to
    #    min(512 + 512, 576) = 576, but no flag, no wake-up. (The 510 free pages move and the
    #    pageblock becomes RECLAIMABLE; __rmqueue_smallest splits o1 15362.)
    assert m.alloc(0, migratetype=RECL, alloc_flags=NOWM) == 15362
    assert last_extfrag(m)["fallback_migratetype"] == UNMOV
    assert int(zone["watermark_boost"]) == 576
    assert int(zone["flags"]) == 0 and int(m.node[0]["boost_wake"]) == 0
    # 3. A flag left set (a steal whose rmqueue has not reached `out:`) wakes kswapd at the
    #    zone's next rmqueue, even one that fails.
    zone["flags"] |= ZONE_BOOSTED_WATERMARK
    assert m.alloc(10, migratetype=MOV, alloc_flags=NOWM) == -1
    assert int(zone["flags"]) == 0 and int(m.node[0]["boost_wake"]) == 1 << N
    check_invariants(m)


def test_no_boost_without_the_sysctl_or_on_a_kernel_without_it() -> None:
    # The same steal with watermark_boost_factor 0 (the sysctl) and on MachineConfig without
    # the option (a kernel before 5.0's rules): the boost stays 0 and nothing wakes kswapd.
    for m in (_b(watermark_boost_factor=0),
              Machine(MachineConfig(memory=64 * MiB, policy="mobility-6.1"))):
        _small_movable_blocks(m)
        assert m.alloc(0, migratetype=UNMOV, alloc_flags=NOWM | ALLOC_KSWAPD) == 15361
        assert int(m.zones[N]["watermark_boost"]) == 0
        assert int(m.node[0]["boost_wake"]) == 0


def test_boost_watermark_edge_cases() -> None:
    # Direct calls: "(pageblock_nr_pages * 4) > zone_managed_pages(zone)": no boost in a zone
    # of fewer than 4 pageblocks; max_boost 0 (no high watermark yet): none; a small high
    # watermark still allows a whole pageblock (max(pageblock_nr_pages, max_boost)).
    nd = new_node()[0]
    nd["pageblock_order"] = 9
    nd["watermark_boost_factor"] = 15000
    zone = np.zeros(1, dtype=ZONE_DTYPE)[0]
    zone["present_pages"] = 2047
    zone["watermark"] = (16, 20, 24)
    assert not boost_watermark(zone, nd) and zone["watermark_boost"] == 0
    zone["present_pages"] = 2048
    zone["watermark"] = (0, 0, 0)
    assert not boost_watermark(zone, nd)
    zone["watermark"] = (16, 20, 24)  # mult_frac(24, 15000, 10000) = 36 < 512
    assert boost_watermark(zone, nd) and zone["watermark_boost"] == 512
    assert boost_watermark(zone, nd) and zone["watermark_boost"] == 512
    nd["watermark_boost_factor"] = 0
    zone["watermark_boost"] = 0
    assert not boost_watermark(zone, nd) and zone["watermark_boost"] == 0


# --- wmark_pages: the boosted watermark -------------------------------------------------------

def test_boosted_watermark_fails_a_check_that_passes_without_it() -> None:
    # B, 420 pages left free: LOW (320) passes; with watermark_boost 512 the allocator's mark
    # is wmark_pages = 320 + 512 = 832 and the one zone fails: no page.
    m = _b()
    n = m.free_pages() - 420
    assert (m.alloc_many(0, n, migratetype=MOV, alloc_flags=NOWM) >= 0).all()
    probe = m.copy()
    assert probe.alloc(0, migratetype=UNMOV) >= 0
    m.zones[N]["watermark_boost"] = 512
    assert m.alloc(0, migratetype=UNMOV) == -1
    # zone_watermark_fast: a GFP_ATOMIC (here ALLOC_HARDER) order-0 request at MIN is checked
    # again against the unboosted _watermark[WMARK_MIN] (256, less a quarter): it gets a page;
    # the same at MIN without ALLOC_HARDER (min 768) does not, nor ALLOC_HARDER at order 1.
    assert m.alloc(0, migratetype=UNMOV, alloc_flags=ALLOC_WMARK_MIN) == -1
    assert m.alloc(1, migratetype=UNMOV, alloc_flags=ALLOC_WMARK_MIN | ALLOC_HARDER) == -1
    assert m.alloc(0, migratetype=UNMOV, alloc_flags=ALLOC_WMARK_MIN | ALLOC_HARDER) >= 0


def test_zone_watermark_fast_ignores_the_boost_only_for_atomic_order_0_at_min() -> None:
    z = np.zeros(1, dtype=ZONE_DTYPE)
    z[0]["wmark_rule"] = WMARK_RULE_6_1
    z[0]["free_pages"] = 100
    z[0]["nr_free"][0] = z[0]["nr_free_mt"][0, MOV] = 100
    z[0]["watermark"] = (80, 100, 120)
    z[0]["watermark_boost"] = 100
    zone = z[0]
    # MIN + ALLOC_HARDER at the boosted 180: min 180 - 45 = 135 >= 100 fails; at the unboosted
    # 80: 60 < 100 passes.
    min_boosted = 80 + 100
    assert not zone_watermark_ok(zone, 0, min_boosted, 2, ALLOC_WMARK_MIN | ALLOC_HARDER)
    assert zone_watermark_fast(zone, 0, min_boosted, 2, ALLOC_WMARK_MIN | ALLOC_HARDER)
    assert not zone_watermark_fast(zone, 0, min_boosted, 2, ALLOC_WMARK_MIN)
    assert not zone_watermark_fast(zone, 0, 100 + 100, 2, ALLOC_WMARK_LOW | ALLOC_HARDER)
    assert not zone_watermark_fast(zone, 1, min_boosted, 2, ALLOC_WMARK_MIN | ALLOC_HARDER)
    z[0]["watermark_boost"] = 0
    assert not zone_watermark_fast(zone, 0, min_boosted, 2, ALLOC_WMARK_MIN | ALLOC_HARDER)


# --- kswapd: boosted reclaim ------------------------------------------------------------------

def _lru_machine(free: int, dirty: int = 16) -> Machine:
    """1 GiB flat 6.1 (262144 pages; pages_min 1024, gap max(256, 262) = 262: high 1548;
    max_boost max(512, 1548 * 1.5 = 2322) = 2322) with 1 GiB swap: `dirty` dirty page-cache
    pages first (the oldest, at the inactive tail), then clean ones until `free` pages are
    left. At DEF_PRIORITY 6.1's get_scan_count (cache_trim_mode: plenty of inactive file, no
    deactivation, so SCAN_FILE) targets about 250000 >> 12 = 61 inactive file pages."""
    m = Machine(machine_config("6.1", memory=1 * GiB, swap=1 * GiB))
    reclaim.alloc_lru_pages(m, dirty, KIND_FILE, owner=1, dirty=True, alloc_flags=NOWM)
    reclaim.alloc_lru_pages(m, m.free_pages() - free, KIND_FILE, owner=1, alloc_flags=NOWM)
    assert m.free_pages() == free
    return m


def _writeback_pages(m: Machine) -> int:
    return int(np.count_nonzero(m.pages["flags"] & PG_WRITEBACK))


def test_boosted_kswapd_reclaims_without_writeback_and_resets_the_boost() -> None:
    # 12000 free: balanced even at high + boost = 1548 + 2322 = 3870. balance_pgdat: the node
    # is balanced and nr_boost_reclaim = 2322: boosted reclaim, may_writepage = may_swap = 0,
    # so the dirty pages at the inactive tail are kept (keep_locked), never written; clean
    # pages are reclaimed until nr_boost_reclaim is used up, then (still balanced) out: the
    # boost is taken back (2322 - min(2322, 2322) = 0) and kcompactd woken at pageblock_order
    # for the highest zone.
    m = _lru_machine(12000)
    m.zones[N]["watermark_boost"] = 2322
    got = reclaim.balance_pgdat(m, 0, highest_zoneidx=N)
    assert got >= 2322
    assert m.free_pages() >= 12000 + 2322
    assert _writeback_pages(m) == 0 and m.stat("pswpout") == 0
    assert int(np.count_nonzero(m.pages["flags"] & PG_DIRTY)) == 16
    assert int(m.zones[N]["watermark_boost"]) == 0
    assert m.kcompactd_order == 9
    check_invariants(m)


def test_boosted_kswapd_stops_when_it_makes_no_progress() -> None:
    # 8192 dirty pages at the inactive tail: DEF_PRIORITY's 61 scanned pages are all dirty and
    # activated (6.1 reclaim writes no page cache), nothing is reclaimed: "If reclaim made no
    # progress for a boost, stop reclaim as IO cannot be queued". The node is balanced, so
    # nothing else runs; the boost is still taken back and kcompactd woken.
    m = _lru_machine(12000, dirty=8192)
    m.zones[N]["watermark_boost"] = 2322
    assert reclaim.balance_pgdat(m, 0, highest_zoneidx=N) == 0
    assert m.free_pages() == 12000 and _writeback_pages(m) == 0
    assert int(m.zones[N]["watermark_boost"]) == 0 and m.kcompactd_order == 9


def test_unbalanced_boosted_kswapd_restarts_as_normal_reclaim() -> None:
    # 2000 free: below high + boost (3870): "If the pgdat is imbalanced then ignore boosting
    # ... and restart": normal reclaim (6.1 balance_pgdat) up to the boosted high watermark.
    # It meets the 16 dirty tail pages with may_writepage set, but 6.1 shrink_folio_list
    # writes page cache only from kswapd, for a PG_reclaim page on a PGDAT_DIRTY node: it
    # flags them PG_reclaim and activates them ("Immediately reclaim when written back"), and
    # starts no writeback. The boost is reset all the same.
    m = _lru_machine(2000)
    m.zones[N]["watermark_boost"] = 2322
    activated = m.stat("pgactivate")
    reclaim.balance_pgdat(m, 0, highest_zoneidx=N)
    assert m.free_pages() >= 3870
    assert _writeback_pages(m) == 0 and m.stat("pgactivate") - activated == 16
    dirty = np.flatnonzero(m.pages["flags"] & PG_DIRTY)
    assert sorted(reclaim_state(m).reclaim_dirty) == dirty.tolist() and dirty.shape[0] == 16
    assert int(m.zones[N]["watermark_boost"]) == 0
    assert m.kcompactd_order == 9
    # Without a boost nothing calls kcompactd.
    n = _lru_machine(2000)
    reclaim.balance_pgdat(n, 0, highest_zoneidx=N)
    assert n.kcompactd_order == 0  # 6.1 kcompactd(): kcompactd_max_order starts at 0


# --- ALLOC_NOFRAGMENT -------------------------------------------------------------------------

def test_alloc_flags_nofragment_follows_the_preferred_zone() -> None:
    # CONFIG_ZONE_DMA32 (x86_64): ALLOC_NOFRAGMENT when the preferred zone is ZONE_NORMAL,
    # ALLOC_KSWAPD unless __GFP_NO_KSWAPD. A 1 GiB x86_64 machine has no Normal zone (DMA32
    # preferred): never; the flat layout's lone Normal zone: always (on UMA 6.1 assumes DMA32
    # is populated); x86 (no ZONE_DMA32): never; 2.6.35: never.
    big = Machine(machine_config("6.1", memory=4 * GiB + 64 * MiB, layout="zones"))
    small = Machine(machine_config("6.1", memory=1 * GiB, layout="zones"))
    flat = _b()
    x86 = Machine(machine_config("6.1", memory=2 * GiB, profile="x86", layout="zones"))
    old = Machine(machine_config("2.6.35", memory=4 * GiB + 64 * MiB, layout="zones"))

    def flags(m: Machine, gfp: int) -> int:
        return alloc_flags_nofragment(m.zones, m.node, m.resolve(gfp)[0], gfp)

    assert flags(big, int(GFP_KERNEL)) == ALLOC_KSWAPD | ALLOC_NOFRAGMENT
    assert flags(big, int(GFP_HIGHUSER_MOVABLE | GFP.NO_KSWAPD)) == ALLOC_NOFRAGMENT
    assert flags(big, int(GFP.DMA32 | GFP_KERNEL)) == ALLOC_KSWAPD
    assert flags(small, int(GFP_KERNEL)) == ALLOC_KSWAPD
    assert flags(flat, int(GFP_KERNEL)) == ALLOC_KSWAPD | ALLOC_NOFRAGMENT
    assert flags(x86, int(GFP_KERNEL)) == ALLOC_KSWAPD
    assert flags(old, int(GFP_KERNEL)) == ALLOC_KSWAPD


@pytest.mark.parametrize("nofragment", [True, False])
def test_nofragment_takes_a_whole_dma32_pageblock_instead_of_stealing_in_normal(
        nofragment: bool) -> None:
    # 4 GiB + 64 MiB x86_64: DMA 0..4096, DMA32 4096..1048576, Normal 1048576..1064960 (32
    # pageblocks). Normal is filled with MOVABLE order-0 pages, then every other page of its
    # first two pageblocks is freed: 512 free order-0 MOVABLE blocks, above Normal's low
    # watermark (pages_min 31, low 47). An UNMOVABLE order-0 fast-path request (GFP_KERNEL,
    # preferred zone Normal):
    # - ALLOC_NOFRAGMENT (6.1's first attempt): Normal has no UNMOVABLE page and no fallback
    #   block of order >= 9: rmqueue fails there; DMA32 passes its watermark, has no UNMOVABLE
    #   page either, and falls back to its MOVABLE order-10 head, 4096: change_pageblock_range
    #   makes pageblocks 8 and 9 UNMOVABLE, no boost; the page is 4096.
    # - without it (the slow path's flags): Normal's fallback steals its MOVABLE order-0 head,
    #   boosting Normal by 512 (max(512, mult_frac(63, 15000, 10000))), and claims that
    #   pageblock (256 free + 256 alike >= 256); DMA32 is untouched.
    m = Machine(machine_config("6.1", memory=4 * GiB + 64 * MiB, layout="zones"))
    start, end = int(m.zones[N]["start_pfn"]), int(m.zones[N]["end_pfn"])
    assert (start, end) == (1048576, 1064960)
    assert tuple(m.zones[N]["watermark"][:2]) == (31, 47)
    got = m.alloc_many(0, end - start, migratetype=MOV, alloc_flags=NOWM)
    assert got.min() == start and got.max() == end - 1
    freed = np.arange(start, start + 1024, 2)
    m.free_batch(freed)
    head = free_list(m, 0, MOV, N)[0]
    fast = alloc_flags_nofragment(m.zones, m.node, N, int(GFP_KERNEL))
    flags = ALLOC_WMARK_LOW | (fast if nofragment else ALLOC_KSWAPD)
    pfn = m.alloc(0, migratetype=UNMOV, alloc_flags=flags)
    dma32_blocks = m.pageblock_type[8:10].tolist()
    normal_block = int(m.pageblock_type[head >> 9])
    if nofragment:
        assert pfn == 4096
        assert dma32_blocks == [UNMOV, UNMOV] and normal_block == MOV
        assert int(m.zones[N]["watermark_boost"]) == 0
        assert last_extfrag(m)["fallback_order"] == 10
        assert m.node[0]["pgalloc_zone"][ZONE_DMA32] == 1
    else:
        assert start <= pfn < start + 1024 and pfn % 2 == 0
        assert dma32_blocks == [MOV, MOV] and normal_block == UNMOV
        assert int(m.zones[N]["watermark_boost"]) == 512
        assert last_extfrag(m)["fallback_order"] == 0
        assert int(m.node[0]["boost_wake"]) == 1 << N
    assert int(m.zones[ZONE_DMA]["watermark_boost"]) == 0
    check_invariants(m)


def test_nofragment_retries_without_the_flag_when_every_zone_failed() -> None:
    # Flat B with only pageblock 30's small MOVABLE blocks free: the first pass (NOFRAGMENT)
    # finds no block of order >= 9 in the one zone and fails; "reset and try again" without
    # the flag steals o8 15616 as test_steal_... does and returns 15361.
    m = _b()
    _small_movable_blocks(m)
    assert m.alloc(0, migratetype=UNMOV, alloc_flags=NOWM | ALLOC_NOFRAGMENT) == 15361
    assert last_extfrag(m)["fallback_order"] == 8


# --- the sysctl -------------------------------------------------------------------------------

def test_watermark_boost_factor_key() -> None:
    base = tiny("desktop", {"kernel.version": "6.1"})
    assert base.config_id() == tiny("desktop", {"kernel.version": "6.1",
                                                "kernel.watermark_boost_factor": -1}).config_id()
    assert Environment(base).machine.node[0]["watermark_boost_factor"] == 15000
    off = tiny("desktop", {"kernel.version": "6.1", "kernel.watermark_boost_factor": 0})
    assert off.config_id() != base.config_id()
    assert Environment(off).machine.node[0]["watermark_boost_factor"] == 0
    assert machine_config("6.1", memory=128 << 20).watermark_boost_factor == 15000
    assert machine_config("2.6.35", memory=128 << 20).watermark_boost_factor is None
    with pytest.raises(ValueError, match="kernel 2.6.35 has no watermark boosting"):
        load_workload("desktop", sets=["kernel.version=2.6.35",
                                       "kernel.watermark_boost_factor=15000"])
    with pytest.raises(ValueError, match="watermark_boost_factor -2 is out of range"):
        load_workload("desktop", sets=["kernel.version=6.1", "kernel.watermark_boost_factor=-2"])
    with pytest.raises(ValueError, match="watermark_boost_factor -1 is out of range"):
        MachineConfig(memory=64 * MiB, watermark_boost_factor=-1).resolved()


# --- the simulated kernel ---------------------------------------------------------------------

def test_kernel_wakes_kswapd_for_a_boosted_zone() -> None:
    # B behind the SimPy kernel: one GFP_KERNEL page with only pageblock 30's small MOVABLE
    # blocks free. The fast path (LOW | ALLOC_KSWAPD | ALLOC_NOFRAGMENT, the flat Normal zone)
    # finds no whole pageblock, retries without NOFRAGMENT and steals o8 15616: boost 512,
    # ZONE_BOOSTED_WATERMARK, and rmqueue wakes kswapd at order 0 though the request never
    # left the fast path (511 free > low 320). kswapd runs: the node is not balanced at
    # high + boost (384 + 512), so normal reclaim, which finds nothing to reclaim here; the
    # boost is taken back and kcompactd woken at pageblock_order.
    k = Kernel(simpy.Environment(), _b(), Recorder(), Streams(0))
    m = k.machine
    _small_movable_blocks(m)
    pfns = drive(k, k.alloc(1, 0, int(GFP_KERNEL), 1 << 20, KIND_KERNEL))
    assert pfns.tolist() == [15361]
    assert k.kswapd.runs == 1
    assert int(m.zones[N]["watermark_boost"]) == 0
    # kcompactd0 was woken at pageblock_order, ran once and took the request (6.1 resets
    # kcompactd_max_order to 0 after kcompactd_do_work).
    assert m.stat("compact_daemon_wake") == 1 and m.kcompactd_order == 0
    assert m.kswapd_order == [-1] * 5

"""The slow path (`__alloc_pages` 2.6.24, direct compaction 2.6.35), hand-worked end to end."""

from __future__ import annotations

import numpy as np

from fragsim.models.mm import reclaim
from fragsim.models.mm.constants import KIND_ANON, KIND_FILE, ZONE_NORMAL
from fragsim.models.mm.gfp import GFP, GFP_ATOMIC, GFP_HIGHUSER_MOVABLE, GFP_KERNEL
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.profiles import machine_config
from fragsim.models.mm.slowpath import MAX_RETRY_ROUNDS, alloc_pages

MiB = 1 << 20


def fill_with_cache(m: Machine) -> None:
    """Clean page cache until the LOW watermark refuses more."""
    while True:
        pfns = reclaim.alloc_lru_pages(m, 4096, KIND_FILE, owner=1)
        if (pfns < 0).any():
            return


def test_fast_path_needs_no_reclaim() -> None:
    m = Machine(machine_config("2.6.24", memory=64 * MiB))
    a = alloc_pages(m, 0, GFP_KERNEL)
    assert a.success and a.fast_path and a.reclaim_rounds == 0
    assert m.kswapd_order == [-1] * 5


def test_low_watermark_failure_wakes_kswapd_and_reclaims() -> None:
    m = Machine(machine_config("2.6.24", memory=64 * MiB))
    fill_with_cache(m)
    low = int(m.zones[ZONE_NORMAL]["watermark"][1])
    assert m.free_pages() <= low + 1
    # Take the pages between MIN and LOW so that the MIN retry fails too.
    while alloc_pages(m, 0, GFP_KERNEL).fast_path is False and m.free_pages() > 0:
        if m.zones[ZONE_NORMAL]["free_pages"] <= m.zones[ZONE_NORMAL]["watermark"][0]:
            break
    a = alloc_pages(m, 0, GFP_KERNEL)
    assert a.success and not a.fast_path
    assert m.kswapd_order[ZONE_NORMAL] == 0
    check_invariants(m)


def test_atomic_request_never_reclaims() -> None:
    m = Machine(machine_config("2.6.24", memory=64 * MiB))
    fill_with_cache(m)
    before = m.stat("pgsteal")
    for _ in range(2000):
        a = alloc_pages(m, 0, GFP_ATOMIC)
        assert a.reclaim_rounds == 0
        if not a.success:
            break
    assert not a.success
    assert m.stat("pgsteal") == before
    # ALLOC_HIGH | ALLOC_HARDER: an atomic request digs below pages_min (min/2 - min/8).
    zmin = int(m.zones[ZONE_NORMAL]["watermark"][0])
    assert m.zones[ZONE_NORMAL]["free_pages"] <= zmin - zmin // 2 - (zmin - zmin // 2) // 4 + 1


def test_huge_page_gets_one_round_and_lumpy_makes_the_difference() -> None:
    results = {}
    for lumpy in (False, True):
        m = Machine(machine_config("2.6.24", memory=64 * MiB, lumpy_reclaim=lumpy))
        fill_with_cache(m)
        fails = m.stat("alloc_fail")
        a = alloc_pages(m, 9, GFP_HIGHUSER_MOVABLE)
        # order 9 > PAGE_ALLOC_COSTLY_ORDER and no __GFP_REPEAT: one round of direct reclaim.
        assert a.reclaim_rounds == 1
        assert m.stat("alloc_fail") == fails + (0 if a.success else 1)
        results[lumpy] = a.success
        check_invariants(m)
    # Plain LRU reclaim frees 32 scattered pages; lumpy frees the whole aligned block.
    assert results == {False: False, True: True}


def test_repeat_retries_up_to_the_cap() -> None:
    m = Machine(machine_config("2.6.24", memory=64 * MiB, lumpy_reclaim=False))
    fill_with_cache(m)
    a = alloc_pages(m, 9, GFP_HIGHUSER_MOVABLE | GFP.REPEAT)
    assert 1 < a.reclaim_rounds <= MAX_RETRY_ROUNDS
    # congestion_wait(HZ/50) between rounds: none after the round that succeeds.
    assert a.congestion_waits == a.reclaim_rounds - (1 if a.success else 0)


def test_direct_compaction_runs_before_reclaim() -> None:
    results = {}
    for kernel in ("2.6.24", "2.6.35"):
        # Anonymous memory and no swap: reclaim can free nothing, only compaction helps.
        m = Machine(machine_config(kernel, memory=64 * MiB))
        pfns = reclaim.alloc_lru_pages(m, m.nr_pages, KIND_ANON, owner=3)
        pfns = np.sort(pfns[pfns >= 0])
        reclaim.free_lru_pages(m, pfns[::2])  # every other page: order-0 holes only
        assert m.zones[ZONE_NORMAL]["nr_free"][9:].sum() == 0
        a = alloc_pages(m, 9, GFP_HIGHUSER_MOVABLE)
        results[kernel] = (a.success, a.compaction_runs)
        check_invariants(m)
    assert results["2.6.35"] == (True, 1)
    assert results["2.6.24"][1] == 0

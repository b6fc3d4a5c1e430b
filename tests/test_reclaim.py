"""Page reclaim (2.6.24 mm/vmscan.c): hand-worked cases on small machines."""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.mm import reclaim, reclaim_6_1, slab, writeback
from fragsim.models.mm.constants import (
    KIND_ANON,
    KIND_FILE,
    KIND_KERNEL,
    MIGRATE_UNMOVABLE,
    PG_ACTIVE,
    PG_DIRTY,
    PG_HEAD,
    PG_LRU,
    PG_REFERENCED,
    PG_WRITEBACK,
    WMARK_HIGH,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.gfp import GFP_HIGHUSER_MOVABLE, GFP_KERNEL, GFP_NOIO
from fragsim.models.mm.lru import LRU_ACTIVE, LRU_INACTIVE
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.reclaim_state import DEF_PRIORITY, reclaim_state
from fragsim.models.mm.state import LRU_INACTIVE_FILE
from tests.conftest import MakeMachine

OWNER = 7


def invariants(m: Machine) -> None:
    from fragsim.models.mm import invariants as inv
    inv.check_invariants(m)


def zone_of(m: Machine) -> int:
    return m.populated_zones()[0]


def fill_file(m: Machine, dirty: bool = False) -> np.ndarray:
    """Clean (or dirty) page cache until the fast path fails at the LOW watermark."""
    pfns = reclaim.alloc_lru_pages(m, m.nr_pages, KIND_FILE, OWNER, dirty=dirty)
    return pfns[pfns >= 0]


def reclaimed_rows(m: Machine) -> np.ndarray:
    return m.take_notifications()[1]


def test_direct_reclaim_stops_at_swap_cluster_max(make_machine: MakeMachine) -> None:
    m = make_machine(64 * MiB)
    fill_file(m)
    free0 = m.free_pages()
    got = reclaim.try_to_free_pages(m, 0, int(GFP_HIGHUSER_MOVABLE), zone_of(m))
    assert reclaim.SWAP_CLUSTER_MAX <= got <= 4 * reclaim.SWAP_CLUSTER_MAX
    assert m.free_pages() == free0 + got
    vm = m.vmstat()
    assert vm["allocstall"] == 1 and vm["pgsteal"] == got and vm["pgscan_direct"] >= got
    assert vm["pgscan_kswapd"] == 0 and vm["kswapd_steal"] == 0
    rows = reclaimed_rows(m)
    assert rows.shape == (got, 3)
    assert (rows[:, 1] == OWNER).all() and (rows[:, 2] == KIND_FILE).all()
    assert not (m.pages["flags"][rows[:, 0]] & PG_HEAD).any()
    assert reclaim_state(m).last_progress == 1
    invariants(m)


@pytest.mark.parametrize("order", [0, 2])
def test_kswapd_stops_at_high_watermark(make_machine: MakeMachine, order: int) -> None:
    m = make_machine(64 * MiB, policy="vanilla")
    fill_file(m)
    z = zone_of(m)
    high = int(m.zones[z]["watermark"][WMARK_HIGH])
    assert not reclaim.zone_ok(m, z, order)
    got = reclaim.balance_pgdat(m, order)
    assert reclaim.zone_ok(m, z, order)
    if order == 0:
        # Not far beyond: the last pass stops within a few SWAP_CLUSTER_MAX batches.
        assert high < m.free_pages() <= high + 4 * reclaim.SWAP_CLUSTER_MAX
    vm = m.vmstat()
    assert vm["pageoutrun"] >= 1 and vm["kswapd_steal"] == got == vm["pgsteal"]
    assert vm["pgscan_kswapd"] >= got and vm["pgscan_direct"] == 0 and vm["allocstall"] == 0
    invariants(m)
    # Already balanced: another run does nothing.
    assert reclaim.balance_pgdat(m, order) == 0


def test_second_chance_referenced_inactive_page_is_activated(make_machine: MakeMachine) -> None:
    m = make_machine(16 * MiB, swap=16 * MiB)
    z = zone_of(m)
    pfns = reclaim.alloc_lru_pages(m, 8, KIND_ANON, OWNER)
    assert (m.pages["flags"][pfns] & (PG_ACTIVE | PG_DIRTY) == PG_ACTIVE | PG_DIRTY).all()
    sc = reclaim.scan_control(m, 0, int(GFP_KERNEL), kswapd=False)
    # Mapped pages leave the active list only under pressure (reclaim_mapped): force it.
    m.zones[z]["pages_scanned"] = 10**6
    reclaim.shrink_active_list(m, z, 32, DEF_PRIORITY, sc)
    assert m.zones[z]["nr_lru"][LRU_INACTIVE] == 8
    hot = int(pfns[0])  # the inactive tail: the first page scanned
    m.pages["flags"][hot] |= PG_REFERENCED
    freed = reclaim.shrink_inactive_list(m, z, 32, sc)
    assert freed == 0  # the others went to swap writeback
    assert m.pages["flags"][hot] & (PG_ACTIVE | PG_LRU) == PG_ACTIVE | PG_LRU
    assert not m.pages["flags"][hot] & (PG_REFERENCED | PG_WRITEBACK)
    others = pfns[1:]
    assert (m.pages["flags"][others] & PG_WRITEBACK).all()
    assert m.stat("pgactivate") == 1 and m.stat("pswpout") == 7
    assert writeback.swap_pages(m) == (4096, 4096 - 7)
    # The swap writes complete: the pages are rotated to the inactive tail and freed next.
    m.now += m.config.writeback_delay
    assert writeback.complete_writeback(m) == 7
    assert m.stat("pgrotated") == 7
    assert m.zones[z]["lru_tail"][LRU_INACTIVE] in set(others.tolist())
    assert reclaim.shrink_inactive_list(m, z, 32, sc) == 7
    assert m.pages["flags"][hot] & PG_HEAD
    rows = reclaimed_rows(m)
    assert sorted(rows[:, 0].tolist()) == sorted(others.tolist())
    assert (rows[:, 2] == KIND_ANON).all()
    assert writeback.swap_pages(m)[1] == 4096 - 7  # the data lives in swap
    writeback.swap_free(m, 7)
    assert writeback.swap_pages(m)[1] == 4096
    invariants(m)


def test_unmapped_page_cache_is_use_once(make_machine: MakeMachine) -> None:
    """2.6.24: a referenced but unmapped page-cache page is reclaimed (its second chance is
    mark_page_accessed promoting it on a second use)."""
    m = make_machine(16 * MiB)
    z = zone_of(m)
    pfns = reclaim.alloc_lru_pages(m, 4, KIND_FILE, OWNER)
    m.pages["flags"][pfns[0]] |= PG_REFERENCED
    sc = reclaim.scan_control(m, 0, int(GFP_KERNEL), kswapd=False)
    assert reclaim.shrink_inactive_list(m, z, 32, sc) == 4


def test_dirty_page_goes_to_writeback_then_is_reclaimed(make_machine: MakeMachine) -> None:
    m = make_machine(16 * MiB, writeback_delay=2.0)
    z = zone_of(m)
    pfns = reclaim.alloc_lru_pages(m, 3, KIND_FILE, OWNER, dirty=True)
    sc = reclaim.scan_control(m, 0, int(GFP_KERNEL), kswapd=True)
    assert reclaim.shrink_inactive_list(m, z, 32, sc) == 0
    assert (m.pages["flags"][pfns] & (PG_WRITEBACK | PG_DIRTY | PG_LRU)
            == PG_WRITEBACK | PG_LRU).all()
    # Under writeback: skipped by the next scan.
    assert reclaim.shrink_inactive_list(m, z, 32, sc) == 0
    assert writeback.nr_writeback(m) == 3
    assert writeback.complete_writeback(m, 1.0) == 0  # not due yet
    assert writeback.complete_writeback(m, 2.0) == 3
    assert not (m.pages["flags"][pfns] & (PG_WRITEBACK | PG_DIRTY)).any()
    assert reclaim.shrink_inactive_list(m, z, 32, sc) == 3
    assert m.stat("pswpout") == 0 and m.stat("kswapd_steal") == 3
    invariants(m)


def test_no_fs_caller_does_not_write(make_machine: MakeMachine) -> None:
    m = make_machine(16 * MiB)
    pfns = reclaim.alloc_lru_pages(m, 3, KIND_FILE, OWNER, dirty=True)
    sc = reclaim.scan_control(m, 0, int(GFP_NOIO), kswapd=False)
    assert reclaim.shrink_inactive_list(m, zone_of(m), 32, sc) == 0
    assert (m.pages["flags"][pfns] & PG_DIRTY).all()
    assert writeback.nr_writeback(m) == 0


def test_anon_pages_are_not_reclaimed_without_swap(make_machine: MakeMachine) -> None:
    m = make_machine(16 * MiB)
    z = zone_of(m)
    pfns = reclaim.alloc_lru_pages(m, m.nr_pages, KIND_ANON, OWNER)
    pfns = pfns[pfns >= 0]
    free0 = m.free_pages()
    assert reclaim.try_to_free_pages(m, 0, int(GFP_HIGHUSER_MOVABLE), z) == 0
    assert m.free_pages() == free0 and m.stat("pswpout") == 0
    assert (m.pages["flags"][pfns] & (PG_HEAD | PG_LRU | PG_ACTIVE)
            == PG_HEAD | PG_LRU | PG_ACTIVE).all()
    # Even when they reach the inactive list, add_to_swap fails and they are activated.
    sc = reclaim.scan_control(m, 0, int(GFP_KERNEL), kswapd=False)
    m.zones[z]["pages_scanned"] = 10**6
    m.node[0]["total_swap_pages"] = 1  # let shrink_active_list deactivate them...
    reclaim.shrink_active_list(m, z, 32, DEF_PRIORITY, sc)
    m.node[0]["total_swap_pages"] = 0  # ...but there is no free slot
    assert m.zones[z]["nr_lru"][LRU_INACTIVE] == 32
    assert reclaim.shrink_inactive_list(m, z, 32, sc) == 0
    assert m.zones[z]["nr_lru"][LRU_ACTIVE] == pfns.shape[0]
    assert m.stat("pgactivate") == 32
    invariants(m)


def test_anon_pages_swap_out_when_swap_is_free(make_machine: MakeMachine) -> None:
    m = make_machine(16 * MiB, swap=64 * MiB)
    z = zone_of(m)
    reclaim.alloc_lru_pages(m, m.nr_pages, KIND_ANON, OWNER)
    got = 0
    for _ in range(20):
        got += reclaim.try_to_free_pages(m, 0, int(GFP_HIGHUSER_MOVABLE), z)
        m.now += 1.0
    assert got > 0 and m.stat("pswpout") >= got
    assert writeback.swap_pages(m)[1] <= writeback.swap_pages(m)[0] - got
    invariants(m)


def test_drop_caches(make_machine: MakeMachine) -> None:
    m = make_machine(16 * MiB)
    clean = reclaim.alloc_lru_pages(m, 100, KIND_FILE, OWNER)
    dirty = reclaim.alloc_lru_pages(m, 10, KIND_FILE, OWNER, dirty=True)
    anon = reclaim.alloc_lru_pages(m, 10, KIND_ANON, OWNER)
    kernel = m.alloc_many(0, 5, migratetype=MIGRATE_UNMOVABLE, owner=OWNER, kind=KIND_KERNEL)
    dentry = slab.kmem_cache_create(m, "dentry", 32)
    objs = dentry.alloc(m, 320)  # 10 pages
    dentry.put(objs[:288])  # 9 pages' worth unused
    with pytest.raises(ValueError):
        reclaim.drop_caches(m, 4)
    free0 = m.free_pages()
    assert reclaim.drop_caches(m, 1) == 100
    assert not (m.pages["flags"][clean] & PG_HEAD).any()
    for kept in (dirty, anon, kernel):
        assert (m.pages["flags"][kept] & PG_HEAD).all()
    assert m.free_pages() == free0 + 100
    assert dentry.objects() == (32, 288)
    # 2: slab. drop_slab shrinks in SHRINK_BATCH batches while the shrinker reports progress.
    freed = reclaim.drop_caches(m, 2)
    assert freed == 9 and dentry.nr_pages == 1
    assert dentry.objects() == (32, 0)
    assert m.stat("drop_pagecache") == 1 and m.stat("drop_slab") == 1
    rows = reclaimed_rows(m)
    assert rows.shape[0] == 109
    invariants(m)


def test_reclaim_on_a_copy_leaves_the_original_alone(make_machine: MakeMachine) -> None:
    m = make_machine(16 * MiB)
    reclaim.alloc_lru_pages(m, 50, KIND_FILE, OWNER, dirty=True)
    cache = slab.kmem_cache_create(m, "inode", 8)
    cache.put(cache.alloc(m, 800))
    st = reclaim_state(m)
    probe = m.copy()
    reclaim.drop_caches(probe, 2)
    sc = reclaim.scan_control(probe, 0, int(GFP_KERNEL), kswapd=True)
    reclaim.shrink_inactive_list(probe, zone_of(probe), 32, sc)
    assert writeback.nr_writeback(probe) == 32 and len(reclaim_state(probe).writeback) == 1
    assert reclaim_state(m) is st and st.writeback == []
    assert cache.objects() == (0, 800) and reclaim_state(probe).caches[0] is not cache
    assert writeback.nr_writeback(m) == 0


def _inactive_list(m: Machine, z: int, lru: int = LRU_INACTIVE) -> list[int]:
    """The zone's inactive list from head (newest) to tail (scanned first)."""
    out = []
    pfn = int(m.zones[z]["lru_head"][lru])
    while pfn >= 0:
        out.append(pfn)
        pfn = int(m.pages[pfn]["next"])
    return out


def test_flusher_writeback_is_not_rotated(make_machine: MakeMachine) -> None:
    """2.6.24 `end_page_writeback`: only PG_reclaim pages (written by `pageout()`) are rotated by
    `rotate_reclaimable_page`; a flusher's writeback leaves the page where it is on the LRU."""
    m = make_machine(16 * MiB)
    z = zone_of(m)
    pfns = reclaim.alloc_lru_pages(m, 8, KIND_FILE, OWNER, dirty=True)
    before = _inactive_list(m, z)
    assert before[-1] == int(pfns[0])  # the oldest is at the tail
    # The flusher writes the four newest pages; they complete and stay where they are.
    assert writeback.start_writeback(m, pfns[4:]) == 4
    m.now += m.config.writeback_delay
    assert writeback.complete_writeback(m) == 4
    assert m.stat("pgrotated") == 0
    assert _inactive_list(m, z) == before
    assert not (m.pages["flags"][pfns] & PG_WRITEBACK).any()
    assert not (m.pages["flags"][pfns[4:]] & PG_DIRTY).any()
    # Reclaim writes the four old dirty ones itself (pageout: PG_reclaim), and keeps the four
    # clean ones it frees; the written pages come back at the tail when their I/O ends.
    sc = reclaim.scan_control(m, 0, int(GFP_KERNEL), kswapd=False)
    assert reclaim.shrink_inactive_list(m, z, 32, sc) == 4
    assert (m.pages["flags"][pfns[:4]] & PG_WRITEBACK).all()
    m.now += m.config.writeback_delay
    assert writeback.complete_writeback(m) == 4
    assert m.stat("pgrotated") == 4
    assert set(_inactive_list(m, z)) == set(pfns[:4].tolist())
    invariants(m)


@pytest.mark.parametrize("policy", ["mobility", "mobility-6.1", "mobility-6.15"])
def test_reclaim_meeting_flusher_writeback(make_machine: MakeMachine, policy: str) -> None:
    """A page reclaim meets under a flusher's writeback. 2.6.24 `shrink_page_list` keeps it on
    the inactive list, unflagged, and its completion leaves it there. 6.1 `shrink_folio_list`
    (global reclaim, cases 1-2) sets PG_reclaim and activates it; `folio_end_writeback` ->
    `folio_rotate_reclaimable` -> `lru_move_tail_fn` then deactivates it to the inactive tail
    (pgrotated), where the next scan frees it."""
    m = make_machine(16 * MiB, policy=policy)
    z = zone_of(m)
    pfns = reclaim.alloc_lru_pages(m, 8, KIND_FILE, OWNER, dirty=True)
    assert writeback.start_writeback(m, pfns) == 8  # the flusher writes them all
    activations = m.stat("pgactivate")
    modern = policy != "mobility"
    if modern:  # 6.1's scanner, on the split LRU's inactive file list
        sc61 = reclaim_6_1.scan_control(m, 0, int(GFP_KERNEL), kswapd=True)
        got = reclaim_6_1.shrink_inactive_list(m, z, LRU_INACTIVE_FILE, 32, sc61)
    else:
        sc = reclaim.scan_control(m, 0, int(GFP_KERNEL), kswapd=True)
        got = reclaim.shrink_inactive_list(m, z, 32, sc)
    assert got == 0  # all under writeback
    flags = m.pages["flags"][pfns]
    assert ((flags & PG_ACTIVE) != 0).all() == modern
    assert m.stat("pgactivate") - activations == (8 if modern else 0)
    (batch,) = reclaim_state(m).writeback
    assert (batch.flagged is not None and batch.flagged.all()) == modern
    m.now += m.config.writeback_delay
    assert writeback.complete_writeback(m) == 8
    assert m.stat("pgrotated") == (8 if modern else 0)
    # All eight back on the inactive list: 6.1 moved them to its tail in completion order
    # (the oldest, pfns[0], ends up nearest the head); 2.6.24 left them as they were.
    inactive = _inactive_list(m, z, LRU_INACTIVE_FILE if modern else LRU_INACTIVE)
    assert sorted(inactive) == sorted(pfns.tolist())
    assert inactive == (pfns.tolist() if modern else pfns[::-1].tolist())
    assert not (m.pages["flags"][pfns] & (PG_ACTIVE | PG_WRITEBACK)).any()
    invariants(m)

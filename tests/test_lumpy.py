"""Lumpy reclaim (2.6.23-3.4, as in 2.6.24 isolate_lru_pages): hand-worked order-4 blocks.

On a fresh vanilla machine order-0 allocations come out in increasing pfn order, so 64 page-cache
pages fill four order-4 blocks and the first one allocated is the inactive list's tail.
"""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.mm import reclaim, slab, writeback
from fragsim.models.mm.constants import (
    KIND_ANON,
    KIND_FILE,
    KIND_KERNEL,
    MIGRATE_UNMOVABLE,
    PG_ACTIVE,
    PG_BUDDY,
    PG_HEAD,
    PG_REFERENCED,
    PG_WRITEBACK,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.gfp import GFP_KERNEL
from fragsim.models.mm.lru import LRU_INACTIVE, mark_accessed_batch
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.reclaim_state import reclaim_state
from tests.conftest import MakeMachine

ORDER = 4
BLOCK = 1 << ORDER


def invariants(m: Machine) -> None:
    from fragsim.models.mm import invariants as inv
    inv.check_invariants(m)


def setup(make_machine: MakeMachine, lumpy: bool = True,
          **kwargs: object) -> tuple[Machine, int, np.ndarray]:
    m = make_machine(16 * MiB, policy="vanilla", lumpy_reclaim=lumpy, **kwargs)
    pfns = reclaim.alloc_lru_pages(m, 4 * BLOCK, KIND_FILE, 1)
    assert (np.diff(pfns) == 1).all() and pfns[0] % BLOCK == 0
    z = m.populated_zones()[0]
    assert m.zones[z]["lru_tail"][LRU_INACTIVE] == pfns[0]
    return m, z, pfns


def one_isolation(m: Machine, z: int, *, kswapd: bool = False,
                  sync_writeback: bool = True) -> int:
    """One `isolate_lru_pages` of one tail page for an order-4 reclaimer, and its shrink."""
    sc = reclaim.scan_control(m, ORDER, int(GFP_KERNEL), kswapd=kswapd,
                              sync_writeback=sync_writeback)
    sc.swap_cluster_max = 1
    return reclaim.shrink_inactive_list(m, z, 1, sc)


def block_is_free(m: Machine, start: int) -> bool:
    f = m.pages["flags"][start]
    return bool(f & PG_BUDDY) and int(m.pages["order"][start]) >= ORDER


def replace_page(m: Machine, pfn: int, alloc: object) -> None:
    """Free `pfn` and let `alloc()` take it back (vanilla free lists are LIFO)."""
    assert m.free(pfn) == 0
    got = alloc()  # type: ignore[operator]
    assert got == pfn


def test_lumpy_frees_the_aligned_block_of_lru_pages(make_machine: MakeMachine) -> None:
    m, z, pfns = setup(make_machine)
    assert one_isolation(m, z) == BLOCK
    assert block_is_free(m, int(pfns[0]))
    assert m.stat("lumpy_isolated") == BLOCK - 1 and m.stat("lumpy_block_failed") == 0
    assert (m.pages["flags"][pfns[BLOCK:]] & PG_HEAD).all()
    rows = m.take_notifications()[1]
    assert sorted(rows[:, 0].tolist()) == pfns[:BLOCK].tolist()
    invariants(m)


@pytest.mark.parametrize("kind", ["slab", "kernel"])
def test_one_unmovable_page_ruins_the_block(make_machine: MakeMachine, kind: str) -> None:
    m, z, pfns = setup(make_machine)
    bad = int(pfns[5])
    if kind == "slab":
        cache = slab.kmem_cache_create(m, "dentry", 16)
        replace_page(m, bad, lambda: (cache.alloc(m, 1), int(cache.pfns()[0]))[1])
    else:
        replace_page(m, bad, lambda: m.alloc(0, migratetype=MIGRATE_UNMOVABLE, owner=2,
                                             kind=KIND_KERNEL))
    # 2.6.24 still takes (and frees) the other pages; the block just never comes free.
    assert one_isolation(m, z) == BLOCK - 1
    assert m.stat("lumpy_isolated") == BLOCK - 2 and m.stat("lumpy_block_failed") == 1
    assert m.pages["flags"][bad] & PG_HEAD
    assert not block_is_free(m, int(pfns[0]))
    assert not (m.pages["flags"][pfns[BLOCK:]] & PG_BUDDY).any()
    invariants(m)


def test_without_lumpy_only_the_tail_page_goes(make_machine: MakeMachine) -> None:
    m, z, pfns = setup(make_machine, lumpy=False)
    assert one_isolation(m, z) == 1
    assert m.stat("lumpy_isolated") == 0 and not block_is_free(m, int(pfns[0]))


def test_lumpy_takes_active_and_referenced_pages(make_machine: MakeMachine) -> None:
    """ISOLATE_BOTH above PAGE_ALLOC_COSTLY_ORDER, references ignored; the direct reclaimer's
    synchronous pass waits for the anonymous page's swap write."""
    m, z, pfns = setup(make_machine, swap=16 * MiB)
    active = pfns[3:4]
    mark_accessed_batch(m.pages, m.zones, active)
    mark_accessed_batch(m.pages, m.zones, active)
    assert m.pages["flags"][active[0]] & PG_ACTIVE
    anon = int(pfns[6])
    replace_page(m, anon, lambda: int(reclaim.alloc_lru_pages(m, 1, KIND_ANON, 3)[0]))
    m.pages["flags"][anon] |= PG_REFERENCED
    assert one_isolation(m, z) == BLOCK
    assert block_is_free(m, int(pfns[0]))
    assert m.stat("pgdeactivate") >= 2 and m.stat("pswpout") == 1
    assert reclaim_state(m).congestion_waits == 1
    assert m.stat("pgactivate") == 0
    invariants(m)


@pytest.mark.parametrize("kswapd, sync", [(True, True), (False, False)])
def test_dirty_page_in_block_without_sync_pass(make_machine: MakeMachine, kswapd: bool,
                                               sync: bool) -> None:
    m, z, pfns = setup(make_machine)
    dirty = int(pfns[9])
    m.pages["flags"][dirty] |= 0x20  # PG_DIRTY: written, not yet written back
    assert one_isolation(m, z, kswapd=kswapd, sync_writeback=sync) == BLOCK - 1
    assert m.pages["flags"][dirty] & PG_WRITEBACK
    assert not block_is_free(m, int(pfns[0]))
    assert reclaim_state(m).congestion_waits == 0
    # Once written, the page goes on the next scan (it was rotated to the tail).
    m.now += m.config.writeback_delay
    assert writeback.complete_writeback(m) == 1
    assert m.zones[z]["lru_tail"][LRU_INACTIVE] == dirty
    sc = reclaim.scan_control(m, 0, int(GFP_KERNEL), kswapd=True)
    sc.swap_cluster_max = 1
    assert reclaim.shrink_inactive_list(m, z, 1, sc) == 1 and block_is_free(m, int(pfns[0]))


def test_dirty_page_in_block_with_sync_pass(make_machine: MakeMachine) -> None:
    m, z, pfns = setup(make_machine)
    m.pages["flags"][pfns[9]] |= 0x20
    assert one_isolation(m, z) == BLOCK and block_is_free(m, int(pfns[0]))
    assert reclaim_state(m).congestion_waits == 1


def _share_at_first_block(lumpy: bool) -> float:
    """A 32 MiB mobility machine of page cache and 3% kernel pages, LRU order shuffled by
    churn: the share of memory reclaimed before the first free order-9 block."""
    from fragsim.models.mm.machine import MachineConfig

    m = Machine(MachineConfig(memory=32 * MiB, policy="mobility", lumpy_reclaim=lumpy))
    rng = np.random.default_rng(5)
    n = m.nr_pages
    kinds = np.where(rng.random(n) < 0.03, KIND_KERNEL, KIND_FILE)
    for k in kinds:
        if k == KIND_KERNEL:
            m.alloc(0, migratetype=MIGRATE_UNMOVABLE, kind=KIND_KERNEL, alloc_flags=0x01)
        else:
            reclaim.alloc_lru_pages(m, 1, KIND_FILE, 1, alloc_flags=0x01)
    for _ in range(3):
        lru = np.flatnonzero(((m.pages["mt"] >> 3) == KIND_FILE) & ((m.pages["flags"] & PG_HEAD)
                                                                    != 0))
        gone = rng.choice(lru, lru.shape[0] // 2, replace=False)
        m.free_batch(gone)
        reclaim.alloc_lru_pages(m, gone.shape[0], KIND_FILE, 1, alloc_flags=0x01)
    z = m.populated_zones()[0]
    freed = 0
    while int(m.zones[z]["nr_free"][9:].sum()) == 0:
        got = reclaim.try_to_free_pages(m, 9, int(GFP_KERNEL), z)
        if got == 0:
            return 1.0
        freed += got
    return freed / n


def test_whitcroft_lumpy_needs_far_less_reclaim() -> None:
    plain = _share_at_first_block(False)
    lumpy = _share_at_first_block(True)
    assert plain > 0.8 and lumpy < 0.2

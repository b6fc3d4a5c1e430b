"""Slab caches and the 2.6.24 shrinker: pages freed with their last object, oldest unused first."""

from __future__ import annotations

import numpy as np

from fragsim.models.mm import slab
from fragsim.models.mm.constants import (
    KIND_KERNEL,
    KIND_SLAB,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    PG_HEAD,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.gfp import GFP_KERNEL, GFP_NOFS
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.reclaim_state import reclaim_state
from fragsim.models.mm.state import page_kinds, page_migratetypes
from tests.conftest import MakeMachine


def invariants(m: Machine) -> None:
    from fragsim.models.mm import invariants as inv
    inv.check_invariants(m)


def allocated(m: Machine, pfns: np.ndarray) -> np.ndarray:
    return (m.pages["flags"][pfns] & PG_HEAD) != 0


def test_pages_are_typed_and_owned(mobility_machine: Machine) -> None:
    m = mobility_machine
    dentry = slab.kmem_cache_create(m, "dentry", 16)
    kmalloc = slab.kmem_cache_create(m, "kmalloc-256", 16, reclaimable=False)
    dentry.alloc(m, 20)
    kmalloc.alloc(m, 20)
    st = reclaim_state(m)
    assert st.caches == [dentry, kmalloc] and st.shrinkers == [dentry]
    d, k = dentry.pfns(), kmalloc.pfns()
    assert d.shape == (2,) and k.shape == (2,)
    assert (page_kinds(m.pages[d]) == KIND_SLAB).all()
    assert (page_migratetypes(m.pages[d]) == MIGRATE_RECLAIMABLE).all()
    assert (page_kinds(m.pages[k]) == KIND_KERNEL).all()
    assert (page_migratetypes(m.pages[k]) == MIGRATE_UNMOVABLE).all()
    assert (m.pages["owner"][d] == dentry.owner).all() and dentry.owner != kmalloc.owner
    # page->inuse
    assert sorted(m.pages["next"][d].tolist()) == [4, 16]
    invariants(m)


def test_partial_pages_are_filled_first(mobility_machine: Machine) -> None:
    m = mobility_machine
    cache = slab.kmem_cache_create(m, "inode", 4)
    objs = cache.alloc(m, 10)  # pages of 4 + 4 + 2
    assert cache.nr_pages == 3
    first_page = int(objs[0]) // 4
    assert [int(h) & 0xFFFFFFFF for h in objs[:4]] == [4 * first_page + i for i in range(4)]
    cache.free(m, objs[[1, 5]])
    again = cache.alloc(m, 4)  # two freed slots and the last page's two: no new page
    assert cache.nr_pages == 3 and cache.objects() == (12, 0)
    assert {int(h) & 0xFFFFFFFF for h in again} >= {int(objs[1]) & 0xFFFFFFFF,
                                                   int(objs[5]) & 0xFFFFFFFF}
    assert cache.alloc(m, 1).shape == (1,) and cache.nr_pages == 4


def test_slab_page_freed_only_with_its_last_object(mobility_machine: Machine) -> None:
    m = mobility_machine
    cache = slab.kmem_cache_create(m, "dentry", 8)
    objs = cache.alloc(m, 16)
    pfns = cache.pfns()
    first = objs[:8]  # one page's objects
    page = m.pages["owner"][pfns] == cache.owner
    assert page.all()
    free0 = m.free_pages()
    cache.put(first[:3])  # unused but cached: the page stays
    assert cache.free(m, first[:7]) == 0
    assert m.free_pages() == free0 and allocated(m, pfns).all()
    assert cache.free(m, first[7:]) == 1
    assert m.free_pages() == free0 + 1 and allocated(m, pfns).sum() == 1
    assert cache.objects() == (8, 0) and cache.nr_pages == 1
    # Stale handles do nothing.
    assert cache.free(m, first) == 0 and not cache.get(first).any()
    invariants(m)


def test_shrinker_frees_oldest_unused_first(mobility_machine: Machine) -> None:
    m = mobility_machine
    cache = slab.kmem_cache_create(m, "dentry", 32)
    objs = cache.alloc(m, 320)
    order = np.random.default_rng(1).permutation(320)
    for chunk in np.array_split(order, 10):  # unused in this order
        cache.put(objs[chunk])
    cache.get(objs[order[:5]])  # looked up again: in use, off the LRU
    cache.put(objs[order[:5]])  # and unused again: now the newest
    assert cache.shrinker_count(100) == 300
    cache.shrink_objects(m, 100)
    gone = order[5:105]
    alive = np.concatenate([order[:5], order[105:]])
    assert not cache.get(objs[gone]).any()
    assert cache.get(objs[alive]).all()
    assert cache.objects() == (220, 0)


def test_shrink_slab_hand_worked(mobility_machine: Machine) -> None:
    """2.6.24 shrink_slab(): delta = 4*scanned/seeks * max_pass / (lru_pages+1), batches of 128."""
    m = mobility_machine
    cache = slab.kmem_cache_create(m, "dentry", 10)
    objs = cache.alloc(m, 1000)
    cache.put(objs)
    # max_pass = (1000/100)*100 = 1000; delta = 400/2 * 1000 / 1000 = 200: one batch of 128.
    ret, pages = slab.shrink_slab(m, 100, int(GFP_KERNEL), 999)
    assert m.stat("slabs_scanned") == 128 and cache.nr == 72
    assert cache.objects() == (0, 872)
    assert ret == 1000 - 800 and pages == 12  # 128 oldest objects: pages 0..11 and 8 of 12
    assert not cache.get(objs[:128]).any() and cache.get(objs[128:130]).all()
    cache.put(objs[128:130])
    # Without __GFP_FS the dcache shrinker bails out: the scan carries over.
    ret, pages = slab.shrink_slab(m, 100, int(GFP_NOFS), 999)
    assert (ret, pages) == (0, 0) and cache.nr == 72 + 160
    rows = m.take_notifications()[1]
    assert rows.shape == (12, 3) and (rows[:, 1] == cache.owner).all()
    assert (rows[:, 2] == KIND_SLAB).all()
    invariants(m)


def test_small_caches_are_not_shrunk(make_machine: MakeMachine) -> None:
    """`(nr_unused / 100) * vfs_cache_pressure` is 0 below 100 unused objects."""
    m = make_machine(16 * MiB)
    cache = slab.kmem_cache_create(m, "dentry", 10)
    cache.put(cache.alloc(m, 99))
    assert slab.shrink_slab(m, 10**6, int(GFP_KERNEL), 0) == (0, 0)
    assert slab.drop_slab(m) == 0 and cache.objects() == (0, 99)


def test_alloc_failure_returns_minus_one(make_machine: MakeMachine) -> None:
    m = make_machine(16 * MiB)
    cache = slab.kmem_cache_create(m, "dentry", 1, reclaimable=False)
    objs = cache.alloc(m, m.nr_pages)
    assert (objs == -1).any() and (objs >= 0).sum() == cache.nr_pages
    invariants(m)

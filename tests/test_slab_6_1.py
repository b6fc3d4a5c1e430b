"""Hand-worked cases through 6.1's slab shrinking (`models.mm.slab_6_1`), beside 2.6.24's
(`models.mm.slab`) where the two kernels differ. Expected values are derived in the comments
from 6.1 `mm/vmscan.c` (`do_shrink_slab`, `shrink_slab`, `drop_slab_node`), `fs/super.c`
(`super_cache_count`, `super_cache_scan`, `alloc_super`: seeks 2, batch 1024) and
`include/linux/math.h` (`mult_frac(x, n, d) = (x / d) * n + ((x % d) * n) / d`) of
unifreq/linux-6.1.y, not from running the model.

Caches are filled in order and every object is put unused in allocation order, so the LRU's
oldest objects are the first slots of the first pages: freeing the k oldest of a cache with p
objects a page empties k // p pages.
"""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from fragsim.models.agents.files import FileSystem, FileSystemParams
from fragsim.models.mm import slab
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.gfp import GFP_KERNEL, GFP_NOFS
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.profiles import machine_config
from fragsim.models.mm.reclaim_state import reclaim_state
from fragsim.models.mm.slab_6_1 import (
    SHRINK_EMPTY,
    SHRINK_STOP,
    SuperBlock,
    do_shrink_slab,
    drop_slab_6_1,
    mult_frac,
    register_super,
    shrink_slab_6_1,
    shrinker_list_6_1,
)
from fragsim.sim.kernel import Kernel
from fragsim.sim.recorder import Recorder
from fragsim.sim.streams import Streams

KERNEL, NOFS = int(GFP_KERNEL), int(GFP_NOFS)


def machine() -> Machine:
    return Machine(MachineConfig(memory=64 * MiB, policy="mobility-6.1"))


def filled(m: Machine, name: str, objs_per_page: int, n: int) -> tuple[slab.SlabCache,
                                                                         np.ndarray]:
    cache = slab.kmem_cache_create(m, name, objs_per_page)
    objs = cache.alloc(m, n)
    assert (objs >= 0).all()
    cache.put(objs)
    return cache, objs


def with_super(m: Machine) -> tuple[slab.SlabCache, slab.SlabCache, SuperBlock]:
    """3000 unused dentries (20 a page: 150 pages), 2000 unused inodes (5 a page: 400 pages)."""
    dcache, _ = filled(m, "dentry", 20, 3000)
    icache, _ = filled(m, "ext3_inode_cache", 5, 2000)
    return dcache, icache, register_super(m, dcache, icache)


def test_mult_frac() -> None:
    # (1024 / 5001) * 3000 + ((1024 % 5001) * 3000) / 5001 = 0 + 3072000 / 5001 = 614
    assert mult_frac(1024, 3000, 5001) == 614
    # vfs_pressure_ratio(4096) at vfs_cache_pressure 10: 40 * 10 + (96 * 10) / 100 = 409
    assert mult_frac(4096, 10, 100) == 409


def test_small_cache_untouched_at_def_priority_scanned_at_priority_0() -> None:
    m = machine()
    cache, objs = filled(m, "dentry", 10, 3000)  # 300 pages
    # Priority 12: freeable = vfs_pressure_ratio(3000) = 3000; delta = (3000 >> 12) * 4 / 2
    # = 0; total_scan = (0 >> 12) + 0 = 0: no batch (0 < 128, 0 < 3000); next_deferred 0.
    assert shrink_slab_6_1(m, KERNEL, 12) == (0, 0)
    assert cache.nr_deferred == 0 and m.stat("slabs_scanned") == 0
    # Priority 10: delta = (3000 >> 10) * 4 / 2 = 4; total_scan 4: no batch; deferred 4.
    assert shrink_slab_6_1(m, KERNEL, 10) == (0, 0) and cache.nr_deferred == 4
    # Priority 0: nr = 4; delta = 3000 * 4 / 2 = 6000; total_scan = 4 + 6000, capped at
    # 2 * 3000 = 6000; 46 batches of 128 (5888), then 112 < 128 and 112 < 3000 stop. The first
    # 24 batches free all 3000 objects (300 pages). next_deferred = 4 + 6000 - 5888 = 116.
    assert shrink_slab_6_1(m, KERNEL, 0) == (3000, 300)
    assert m.stat("slabs_scanned") == 5888 and cache.nr_deferred == 116
    assert cache.objects() == (0, 0) and not cache.get(objs).any()
    # Empty now: SHRINK_EMPTY, counted as 0, and the deferred count is left alone.
    assert do_shrink_slab(m, shrinker_list_6_1(m)[0], KERNEL, 0) == (SHRINK_EMPTY, 0)
    assert shrink_slab_6_1(m, KERNEL, 0) == (0, 0) and cache.nr_deferred == 116
    check_invariants(m)


def test_contrast_with_2_6_24_shrink_slab() -> None:
    # The same 3000 unused objects. 2.6.24 at a priority-12-sized scan of 32 pages of a
    # 1000-page LRU: max_pass = (3000 / 100) * 100 = 3000; delta = 4 * 32 / 2 = 64,
    # 64 * 3000 / 1001 = 191; one batch of 128 (12 pages), nr 63 carried;
    # return 3000 - (2872 / 100) * 100 = 200. 6.1 at priority 12 scans nothing (above).
    old, new = machine(), machine()
    c_old, _ = filled(old, "dentry", 10, 3000)
    c_new, _ = filled(new, "dentry", 10, 3000)
    assert slab.shrink_slab(old, 32, KERNEL, 1000) == (200, 12)
    assert old.stat("slabs_scanned") == 128 and c_old.nr == 63
    assert shrink_slab_6_1(new, KERNEL, 12) == (0, 0)
    assert new.stat("slabs_scanned") == 0 and c_new.objects() == (0, 3000)
    # 6.1's deferral is its own count: 2.6.24's shrinker->nr is untouched, and back.
    assert c_new.nr == 0 and c_old.nr_deferred == 0


def test_super_defers_caps_and_splits() -> None:
    m = machine()
    dcache, icache, sb = with_super(m)
    # super_cache_count: vfs_pressure_ratio(3000 + 2000) = 5000.
    assert sb.count_objects(100) == 5000
    # Priority 12: delta = (5000 >> 12) * 4 / 2 = 2; total_scan 2 (< 1024, < 5000): no batch;
    # next_deferred = 0 + 2 - 0 = 2. Twice more: nr >> 12 = 0, deferred 4, then 6.
    for deferred in (2, 4, 6):
        assert shrink_slab_6_1(m, KERNEL, 12) == (0, 0) and sb.nr_deferred == deferred
    # No __GFP_FS at priority 0: delta = 5000 * 4 / 2 = 10000; total_scan = 6 + 10000 capped
    # at 10000; the first super_cache_scan returns SHRINK_STOP: scanned 0; next_deferred
    # = min(6 + 10000 - 0, 2 * 5000) = 10000.
    assert shrink_slab_6_1(m, NOFS, 0) == (0, 0)
    assert sb.nr_deferred == 10000 and m.stat("slabs_scanned") == 0
    # Priority 12 with a full deferral: total_scan = (10000 >> 12) + 2 = 4: still no batch;
    # next_deferred = 10000 + 2 - 0 capped at 10000.
    assert shrink_slab_6_1(m, KERNEL, 12) == (0, 0) and sb.nr_deferred == 10000
    # Priority 3: delta = (5000 >> 3) * 4 / 2 = 1250; total_scan = (10000 >> 3) + 1250 = 2500;
    # two batches of 1024, then 452 < 1024 and 452 < 5000 stop; next_deferred = 10000 + 1250
    # - 2048 = 9202.
    # Batch 1: total_objects = 3000 + 2000 + 1 = 5001; dentries mult_frac(1024, 3000, 5001)
    # = 614, so prune_dcache_sb walks 615; inodes 2048000 / 5001 = 409, walks 410.
    # Batch 2: 2385 + 1590 + 1 = 3976; 1024 * 2385 / 3976 = 614 -> 615;
    # 1024 * 1590 / 3976 = 409 -> 410. Freed 2 * (615 + 410) = 2050 objects: the 1230 oldest
    # dentries (61 whole pages of 20) and the 820 oldest inodes (164 pages of 5).
    assert shrink_slab_6_1(m, KERNEL, 3) == (2050, 61 + 164)
    assert m.stat("slabs_scanned") == 2048 and sb.nr_deferred == 9202
    assert dcache.objects() == (0, 3000 - 1230) and icache.objects() == (0, 2000 - 820)
    # The super's caches are not shrinkers of their own under 6.1, and the per-cache deferred
    # counts stay 0.
    assert shrinker_list_6_1(m) == [sb] and dcache.nr_deferred == icache.nr_deferred == 0
    check_invariants(m)


def test_super_scan_walks_at_least_one_of_each() -> None:
    m = machine()
    dcache, icache, sb = with_super(m)
    # super_cache_scan(nr_to_scan 1): 1 * 3000 / 5001 = 0 and 1 * 2000 / 5001 = 0, but each
    # walk is + 1: one dentry and one inode go.
    assert sb.scan_objects(m, 1, KERNEL) == (2, 0)
    assert dcache.objects() == (0, 2999) and icache.objects() == (0, 1999)
    # Without __GFP_FS: SHRINK_STOP, nothing freed.
    assert sb.scan_objects(m, 1024, NOFS) == (SHRINK_STOP, 0) and dcache.objects() == (0, 2999)


def test_inodes_freed_newest_first() -> None:
    # dispose_list takes inodes off the head of the list inode_lru_isolate pushed them onto:
    # the walk's newest first, so the oldest one is freed last and its slot is reused first
    # (the model's slot stack is last-freed-first). Dentries (shrink_dentry_list from the
    # tail) go oldest first: the newest walked slot is reused first.
    m = machine()
    icache, iobjs = filled(m, "inode", 4, 10)
    dcache, dobjs = filled(m, "dentry", 4, 10)
    assert icache.prune(m, 3, newest_first=True) == (3, 0)
    assert dcache.prune(m, 3) == (3, 0)
    assert int(icache.alloc(m, 1)[0]) & 0xFFFFFFFF == int(iobjs[0]) & 0xFFFFFFFF
    assert int(dcache.alloc(m, 1)[0]) & 0xFFFFFFFF == int(dobjs[2]) & 0xFFFFFFFF


def test_super_scan_frees_dentries_oldest_first_inodes_newest_first() -> None:
    m = machine()
    dcache, icache, sb = with_super(m)
    # Both caches fill their pages exactly: no free slots before the scan.
    # super_cache_scan(nr_to_scan 6): 6 * 3000 / 5001 = 3 -> 4 dentries (slots 0..3) and
    # 6 * 2000 / 5001 = 2 -> 3 inodes (slots 0..2); no page empties (20 and 5 a page).
    assert sb.scan_objects(m, 6, KERNEL) == (7, 0)
    # The last freed slot is handed out first: dentry 3 (freed oldest first), inode 0 (freed
    # newest first).
    assert int(dcache.alloc(m, 1)[0]) & 0xFFFFFFFF == 3
    assert int(icache.alloc(m, 1)[0]) & 0xFFFFFFFF == 0


def test_drop_slab_6_1_stops_on_the_shift() -> None:
    m = machine()
    cache, _ = filled(m, "dentry", 10, 1000)
    reclaim_state(m).vfs_cache_pressure = 1
    # drop_slab_node: shrink_slab(GFP_KERNEL, 0, NULL, 0) while (freed >> shift++) > 1.
    # Each call at priority 0: freeable F = mult_frac(unused, 1, 100), delta = 2F,
    # total_scan = min(nr + 2F, 2F) = 2F < 128 but >= F: one batch of 2F; nr_deferred 0.
    #   unused 1000: F 10, frees 20; 20 >> 0 = 20 > 1
    #   unused  980: F  9, frees 18; 18 >> 1 =  9 > 1
    #   unused  962: F  9, frees 18; 18 >> 2 =  4 > 1
    #   unused  944: F  9, frees 18; 18 >> 3 =  2 > 1
    #   unused  926: F  9, frees 18; 18 >> 4 =  1: stop.
    # 92 oldest objects: 9 whole pages of 10.
    assert drop_slab_6_1(m) == 9
    assert cache.objects() == (0, 908) and m.stat("slabs_scanned") == 92
    assert cache.nr_deferred == 0
    # 2.6.24 drop_slab on the same cache: max_pass = (1000 / 100) * 1 = 10; delta
    # = 4 * 1000 / 2 * 10 / 1001 = 19 < 128: no batch, returns 0 <= 10 at once.
    old = machine()
    c_old, _ = filled(old, "dentry", 10, 1000)
    reclaim_state(old).vfs_cache_pressure = 1
    assert slab.drop_slab(old) == 0 and c_old.objects() == (0, 1000)


def test_drop_slab_6_1_empties_a_super() -> None:
    m = machine()
    dcache, icache, sb = with_super(m)
    # Call 1: F 5000, delta 10000, total_scan 10000: 9 batches of 1024 (9216), 784 left stops.
    # Each batch walks its share + 1 of each LRU, and once dentries + inodes <= 1023 a batch
    # walks every entry; everything goes (150 + 400 pages). next_deferred = 10000 - 9216
    # = 784. freed 5000 >> 0 > 1: call 2 finds both LRUs empty (SHRINK_EMPTY, freed 0,
    # deferred untouched) and 0 >> 1 stops it.
    assert drop_slab_6_1(m) == 550
    assert dcache.objects() == icache.objects() == (0, 0)
    assert m.stat("slabs_scanned") == 9216 and sb.nr_deferred == 784
    check_invariants(m)


def test_no_pressure_counts_nothing() -> None:
    # vfs_cache_pressure 0: super_cache_count = vfs_pressure_ratio(5000) = 0, do_shrink_slab
    # returns 0 before taking the deferred count.
    m = machine()
    _, _, sb = with_super(m)
    sb.nr_deferred = 7
    reclaim_state(m).vfs_cache_pressure = 0
    assert shrink_slab_6_1(m, KERNEL, 0) == (0, 0) and sb.nr_deferred == 7


def test_shrinker_list_in_registration_order() -> None:
    m = machine()
    a, _ = filled(m, "a", 10, 10)
    d, _ = filled(m, "dentry", 10, 10)
    i, _ = filled(m, "inode", 10, 10)
    sb = register_super(m, d, i)
    b, _ = filled(m, "b", 10, 10)
    order = [getattr(s, "cache", s) for s in shrinker_list_6_1(m)]  # a cache's own, or a super
    assert order == [a, sb, b]
    # 2.6.24's list is unchanged.
    assert reclaim_state(m).shrinkers == [a, d, i, b]
    with pytest.raises(ValueError, match="already belongs"):
        register_super(m, d, b)
    with pytest.raises(ValueError, match="both"):
        register_super(m, b, b)


def test_filesystem_registers_its_super() -> None:
    env = simpy.Environment()
    m = Machine(machine_config("6.1", memory=64 << 20, layout="zones", swap=16 << 20))
    fs = FileSystem(Kernel(env, m, Recorder(), Streams(0)), FileSystemParams())
    st = reclaim_state(m)
    assert len(st.supers) == 1
    sb = st.supers[0]
    assert isinstance(sb, SuperBlock) and (sb.dcache, sb.icache) == (fs.dcache, fs.icache)
    assert sb in shrinker_list_6_1(m) and fs.dcache in st.shrinkers


def test_clone_carries_supers_and_deferred_counts() -> None:
    m = machine()
    dcache, icache, sb = with_super(m)
    lone, _ = filled(m, "lone", 10, 100)
    sb.nr_deferred, lone.nr_deferred = 10000, 5
    probe = m.copy()
    pst = reclaim_state(probe)
    psb = pst.supers[0]
    assert isinstance(psb, SuperBlock) and psb is not sb
    assert psb.dcache is pst.caches[0] and psb.icache is pst.caches[1]
    assert psb.dcache is not dcache and psb.nr_deferred == 10000
    plone = pst.caches[2]
    assert isinstance(plone, slab.SlabCache) and plone is not lone and plone.nr_deferred == 5
    # Shrinking the probe leaves the original alone.
    # Priority 0, the super first: nr 10000 + delta 10000 capped at 10000: 9 batches of
    # 1024 free all 5000; then the lone cache: 5 + 200 capped at 200: one batch of 128 frees
    # its 100 (72 left: < 128, < 100).
    freed, _ = shrink_slab_6_1(probe, KERNEL, 0)
    assert freed == 5100 and psb.dcache.objects() == (0, 0)
    assert probe.stat("slabs_scanned") == 9216 + 128 and m.stat("slabs_scanned") == 0
    assert psb.nr_deferred == 10000 and plone.nr_deferred == 5 + 200 - 128
    assert dcache.objects() == (0, 3000) and sb.nr_deferred == 10000 and lone.nr_deferred == 5

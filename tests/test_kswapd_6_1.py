"""6.1 kswapd (`models.mm.kswapd_6_1`, `models.agents.daemons.Kswapd`): `pgdat_balanced`, the
order-0 fallback, `kswapd_failures`, `wakeup_kswapd`'s early exits and defrag_mode's wake-up
order, derived from 6.1 `mm/vmscan.c` (unifreq/linux-6.1.y 07badeaa) and 6.15's defrag_mode
patches, beside the 2.6.24 loop they replace on the 6.1 and 6.15 presets."""

from __future__ import annotations

import numpy as np
import simpy

from fragsim.models.mm import compaction_6_1 as c61
from fragsim.models.mm import reclaim, slowpath
from fragsim.models.mm.constants import (
    ALLOC_NO_WATERMARKS,
    KIND_FILE,
    MIGRATE_MOVABLE,
    MIGRATE_UNMOVABLE,
    WMARK_HIGH,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.kswapd_6_1 import (
    MAX_RECLAIM_RETRIES,
    balance_pgdat_6_1,
    kswapd_hopeless,
    pgdat_balanced,
    prepare_kswapd_sleep,
)
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.profiles import machine_config
from fragsim.models.mm.reclaim_state import reclaim_state
from fragsim.sim.kernel import Kernel
from fragsim.sim.recorder import Recorder
from fragsim.sim.streams import Streams

NOWM = ALLOC_NO_WATERMARKS


def _fill_kernel(m: Machine, free: int) -> None:
    """Unmovable, unreclaimable pages until `free` pages are left."""
    n = m.free_pages() - free
    pfns = m.alloc_many(0, n, migratetype=MIGRATE_UNMOVABLE, alloc_flags=NOWM)
    assert (pfns >= 0).all() and m.free_pages() == free


def _zones_machine(kernel: str) -> Machine:
    """64 MiB x86_64 laid out as the profile's zones: DMA (the first 16 MiB) and DMA32."""
    m = Machine(machine_config(kernel, memory=64 * MiB, layout="zones"))
    assert len(m.populated_zones()) == 2
    return m


def test_pgdat_balanced_needs_one_eligible_zone() -> None:
    # 6.1 pgdat_balanced: "Returns true if there is an eligible zone balanced for the request
    # order", bottom up. DMA (the lower zone) is emptied below its high watermark; DMA32 stays
    # far above its own. 6.1: balanced; 2.6.24's test (every zone OK): not.
    m = _zones_machine("6.1")
    dma, dma32 = m.populated_zones()
    n = int(m.zones[dma]["free_pages"])
    full = np.full
    pfns = m.alloc_batch(full(n, 0), full(n, dma), full(n, MIGRATE_MOVABLE), full(n, NOWM),
                         full(n, 1), full(n, 0))
    assert (pfns >= 0).all() and int(m.zones[dma]["free_pages"]) == 0
    assert int(m.zones[dma32]["free_pages"]) > 2 * int(m.zones[dma32]["watermark"][WMARK_HIGH])
    assert pgdat_balanced(m, 0, dma32)
    assert not reclaim.pgdat_balanced(m, 0)
    # Only DMA eligible (highest_zoneidx = DMA): not balanced.
    assert not pgdat_balanced(m, 0, dma)


def test_pgdat_balanced_counts_the_boost() -> None:
    # high_wmark_pages(zone) = _watermark[WMARK_HIGH] + watermark_boost.
    m = Machine(machine_config("6.1", memory=64 * MiB))
    (z,) = m.populated_zones()
    high = int(m.zones[z]["watermark"][WMARK_HIGH])
    _fill_kernel(m, high + 100)
    assert pgdat_balanced(m, 0, z)
    m.zones[z]["watermark_boost"] = 200
    assert not pgdat_balanced(m, 0, z)


def test_kswapd_failures_make_the_node_hopeless_and_progress_revives_it() -> None:
    # Nothing reclaimable and below the high watermark: each balance_pgdat runs its priorities
    # down to 1 and reclaims nothing: "if (!sc.nr_reclaimed) pgdat->kswapd_failures++".
    m = Machine(machine_config("6.1", memory=64 * MiB))
    (z,) = m.populated_zones()
    _fill_kernel(m, int(m.zones[z]["watermark"][WMARK_HIGH]) // 2)
    for i in range(MAX_RECLAIM_RETRIES):
        assert not kswapd_hopeless(m)
        assert not prepare_kswapd_sleep(m, 0, z)
        assert balance_pgdat_6_1(m, 0, z) == (0, 0)
        assert reclaim_state(m).kswapd_failures == i + 1
    # "Hopeless node, leave it to direct reclaim": kswapd may sleep though unbalanced.
    assert kswapd_hopeless(m) and prepare_kswapd_sleep(m, 0, z)
    assert m.stat("pageoutrun") == MAX_RECLAIM_RETRIES
    # A direct reclaim that frees something resets the count ("A successful direct reclaim
    # run will revive a dormant kswapd").
    reclaim.alloc_lru_pages(m, 64, KIND_FILE, owner=1, alloc_flags=NOWM)
    assert reclaim.try_to_free_pages(m, 0, 0xD0, z) > 0
    assert reclaim_state(m).kswapd_failures == 0 and not kswapd_hopeless(m)
    check_invariants(m)


def test_a_balanced_node_is_left_at_once() -> None:
    # "if (!nr_boost_reclaim && balanced) goto out": no reclaim, no failure counted, and the
    # order is returned unchanged.
    m = Machine(machine_config("6.1", memory=64 * MiB))
    (z,) = m.populated_zones()
    reclaim.alloc_lru_pages(m, 1000, KIND_FILE, owner=1, alloc_flags=NOWM)
    assert balance_pgdat_6_1(m, 0, z) == (0, 0)
    assert m.stat("pgscan_kswapd") == 0 and reclaim_state(m).kswapd_failures == 0


def _kernel(m: Machine) -> Kernel:
    return Kernel(simpy.Environment(), m, Recorder(), Streams(0))


def test_hopeless_kswapd_ignores_wake_ups() -> None:
    # wakeup_kswapd: "if (pgdat->kswapd_failures >= MAX_RECLAIM_RETRIES ...) return": the order
    # is recorded but kswapd stays asleep, so no balance_pgdat runs (pageoutrun unchanged).
    m = Machine(machine_config("6.1", memory=64 * MiB))
    (z,) = m.populated_zones()
    _fill_kernel(m, int(m.zones[z]["watermark"][WMARK_HIGH]) // 2)
    reclaim_state(m).kswapd_failures = MAX_RECLAIM_RETRIES
    k = _kernel(m)
    k.env.run(until=1.0)
    assert k.kswapd.sleeping and m.stat("pageoutrun") == 0
    k.wake_kswapd(0, z)
    k.env.run(until=2.0)
    assert k.kswapd.sleeping and m.stat("pageoutrun") == 0 and k.kswapd.runs == 0
    assert max(m.kswapd_order) == 0  # still recorded, as pgdat->kswapd_order is
    # Revived: the next wake-up runs balance_pgdat for the recorded order.
    reclaim_state(m).kswapd_failures = 0
    k.wake_kswapd(0, z)
    k.env.run(until=3.0)
    assert k.kswapd.runs >= 1 and m.stat("pageoutrun") >= 1


def test_balanced_node_wake_up_does_not_run_kswapd() -> None:
    # wakeup_kswapd: "pgdat_balanced(pgdat, order, highest_zoneidx) &&
    # !pgdat_watermark_boosted(...)": kswapd is not woken.
    m = Machine(machine_config("6.1", memory=64 * MiB))
    (z,) = m.populated_zones()
    k = _kernel(m)
    k.env.run(until=1.0)
    k.wake_kswapd(0, z)
    k.env.run(until=2.0)
    assert k.kswapd.runs == 0 and m.stat("pageoutrun") == 0
    # Boosted, it runs (the boosted reclaim of balance_pgdat).
    m.zones[z]["watermark_boost"] = 64
    k.wake_kswapd(0, z)
    k.env.run(until=3.0)
    assert k.kswapd.runs == 1 and m.stat("pageoutrun") == 1
    assert int(m.zones[z]["watermark_boost"]) == 0


def test_defrag_mode_wakes_kswapd_for_a_pageblock() -> None:
    # 6.15 wake_all_kswapds: "if (defrag_mode) reclaim_order = max(order, pageblock_order)".
    on = Machine(machine_config("6.15", memory=64 * MiB, defrag_mode=True))
    off = Machine(machine_config("6.15", memory=64 * MiB))
    for m, want in ((on, on.pageblock_order), (off, 0)):
        (z,) = m.populated_zones()
        slowpath.wake_all_kswapds(m, 0, z)
        assert max(m.kswapd_order) == want
    slowpath.wake_all_kswapds(on, on.max_order - 1, on.populated_zones()[0])
    assert max(on.kswapd_order) == on.max_order - 1


def test_defrag_mode_kswapd_is_unbalanced_until_free_memory_is_in_whole_pageblocks() -> None:
    # 6.15 pgdat_balanced under defrag_mode: at order > 0 the HIGH mark is checked against
    # NR_FREE_PAGES_BLOCKS. Every pageblock keeps one unmovable page, so no free page is in a
    # whole free pageblock: unbalanced at pageblock_order (and at order 1) though NR_FREE_PAGES
    # is far above the mark; balanced at order 0 and without defrag_mode.
    for defrag in (True, False):
        m = Machine(machine_config("6.15", memory=64 * MiB, defrag_mode=defrag))
        (z,) = m.populated_zones()
        pb = 1 << m.pageblock_order
        keep = np.arange(0, m.nr_pages, pb)
        pfns = m.alloc_many(0, m.free_pages(), migratetype=MIGRATE_UNMOVABLE, alloc_flags=NOWM)
        drop = np.setdiff1d(pfns, keep)
        assert (m.free_batch(drop) == 0).all()
        assert m.free_pages() > 4 * int(m.zones[z]["watermark"][WMARK_HIGH])
        assert pgdat_balanced(m, 0, z)
        assert pgdat_balanced(m, 1, z) is not defrag


def _scattered_cache(defrag: bool) -> Machine:
    """32 MiB flat 6.15 (16 pageblocks of 512 pages): every page clean page cache on the
    inactive LRU, then all freed but one page at the start of each pageblock: 8176 pages free,
    none in a whole free pageblock."""
    from fragsim.models.mm.lru import lru_add_batch

    m = Machine(machine_config("6.15", memory=32 * MiB, defrag_mode=defrag, kcompactd=True,
                               compaction_proactiveness=0))
    n = m.nr_pages
    full = np.full
    (z,) = m.populated_zones()
    pfns = m.alloc_batch(full(n, 0), full(n, z), full(n, MIGRATE_MOVABLE), full(n, NOWM),
                         1000 + np.arange(n), full(n, KIND_FILE))
    assert sorted(pfns.tolist()) == list(range(n))
    from fragsim.models.mm.state import KIND_SHIFT

    m.pages["mt"][:] = MIGRATE_MOVABLE | (KIND_FILE << KIND_SHIFT)
    lru_add_batch(m.pages, m.zones, np.arange(n), np.zeros(n, np.int64))
    keep = np.arange(0, n, 1 << m.pageblock_order)
    assert (m.free_batch(np.setdiff1d(np.arange(n), keep)) == 0).all()
    check_invariants(m)
    return m


def test_defrag_mode_kcompactd_compacts_until_whole_pageblocks_meet_high() -> None:
    # 6.15 kcompactd under defrag_mode: cc.alloc_flags = ALLOC_WMARK_HIGH, and
    # compaction_suit_allocation_order(..., kcompactd) counts NR_FREE_PAGES_BLOCKS, so an
    # order-1 request is not already satisfied (no whole free pageblock) and compaction runs;
    # __compact_finished's defrag branch stops it with SUCCESS once the HIGH mark is met in
    # whole free pageblocks. Without defrag_mode the order-1 MIN test passes at once
    # (COMPACT_SUCCESS): no compaction.
    from fragsim.models.mm.kcompactd import kcompactd_do_work, kcompactd_node_suitable
    from fragsim.models.mm.wmark_6_15 import nr_free_pages_blocks

    for defrag in (True, False):
        m = _scattered_cache(defrag)
        (z,) = m.populated_zones()
        zone = m.zones[z]
        assert nr_free_pages_blocks(zone, m.pageblock_order) == 0
        m.kcompactd_order, m.kcompactd_highest_zoneidx = 1, z
        assert kcompactd_node_suitable(m) is defrag
        out = kcompactd_do_work(m)
        high = int(zone["watermark"][WMARK_HIGH])
        if defrag:
            assert out == [(z, c61.COMPACT_SUCCESS)]
            blocks = nr_free_pages_blocks(m.zones[z], m.pageblock_order)
            assert blocks > high
            assert m.stat("pgmigrate_success") > 0
        else:
            assert out == [] and m.stat("pgmigrate_success") == 0
        check_invariants(m)

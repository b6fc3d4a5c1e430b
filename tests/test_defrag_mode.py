"""6.15 defrag_mode's kswapd/kcompactd predicates (`models.mm.defrag_mode`): what kswapd's
`pgdat_balanced` and kcompactd's watermark tests answer on a machine with plenty of free pages
but no free pageblock, derived from 6.15 mm/vmscan.c and mm/compaction.c."""

from __future__ import annotations

from fragsim.models.mm.constants import ALLOC_NO_WATERMARKS, MIGRATE_MOVABLE
from fragsim.models.mm.defrag_mode import (
    compaction_suit_free_pages,
    compaction_watermark_met,
    kcompactd_alloc_flags,
    kcompactd_finished_defrag,
    pgdat_balanced_6_15,
    wake_all_kswapds_order,
)
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.wmark_6_15 import nr_free_pages_blocks

MOV = MIGRATE_MOVABLE


def _small() -> Machine:
    # S (test_buddy_golden): 128 pages, pageblock_order 4, one Normal zone (index 2) with
    # watermarks min 4, low 5, high 6.
    m = Machine(MachineConfig(memory=512 * 1024, policy="mobility-6.15", max_order=5,
                              pageblock_order=4, min_free_kbytes=16))
    assert tuple(m.zones[2]["watermark"]) == (4, 5, 6)
    return m


def _no_free_pageblock() -> Machine:
    """S with page 16k of every pageblock allocated and the rest free: 120 free pages in
    blocks of order 3, 2, 1 and 0, none of pageblock order."""
    m = _small()
    pfns = m.alloc_many(0, 128, migratetype=MOV, alloc_flags=ALLOC_NO_WATERMARKS)
    assert pfns.tolist() == list(range(128))
    for p in range(128):
        if p % 16:
            m.free(p)
    zone = m.zones[2]
    assert int(zone["free_pages"]) == 120 and nr_free_pages_blocks(zone, 4) == 0
    return m


def test_wake_all_kswapds_order() -> None:
    assert wake_all_kswapds_order(0, 9, True) == 9
    assert wake_all_kswapds_order(10, 9, True) == 10
    assert wake_all_kswapds_order(3, 9, False) == 3


def test_pgdat_balanced_counts_whole_pageblocks_while_order_is_above_zero() -> None:
    m = _no_free_pageblock()
    # Order 0: NR_FREE_PAGES (the exit-condition fix): 120 > 6, balanced either way.
    assert pgdat_balanced_6_15(m.zones, 4, 0, 2, True)
    assert pgdat_balanced_6_15(m.zones, 4, 0, 2, False)
    # Order 1: defrag_mode measures NR_FREE_PAGES_BLOCKS = 0: not balanced; without it
    # 120 - 1 > 6 and an order-3 block is free: balanced.
    assert not pgdat_balanced_6_15(m.zones, 4, 1, 2, True)
    assert pgdat_balanced_6_15(m.zones, 4, 1, 2, False)
    # Order 4: no free block of order 4: not balanced either way.
    assert not pgdat_balanced_6_15(m.zones, 4, 4, 2, False)
    # A zonelist with no managed zone (DMA is empty in the flat layout) needs no balancing.
    assert pgdat_balanced_6_15(m.zones, 4, 1, 0, True)
    fresh = _small()
    assert pgdat_balanced_6_15(fresh.zones, 4, 4, 2, True)


def test_kcompactd_targets_high_watermark_in_whole_pageblocks() -> None:
    m = _no_free_pageblock()
    zone = m.zones[2]
    flags = kcompactd_alloc_flags(True)
    assert kcompactd_alloc_flags(False) != flags
    assert compaction_suit_free_pages(zone, 4, True, True) == 0
    assert compaction_suit_free_pages(zone, 4, False, True) == 120
    assert compaction_suit_free_pages(zone, 4, True, False) == 120
    # kcompactd in defrag_mode still has work at order 1; direct compaction does not.
    assert not compaction_watermark_met(zone, 4, 1, 2, flags, True, True)
    assert compaction_watermark_met(zone, 4, 1, 2, flags, False, True)
    assert not kcompactd_finished_defrag(zone, 4, 1, 2, flags)
    fresh = _small()
    assert kcompactd_finished_defrag(fresh.zones[2], 4, 1, 2, flags)
    assert compaction_watermark_met(fresh.zones[2], 4, 4, 2, flags, True, True)

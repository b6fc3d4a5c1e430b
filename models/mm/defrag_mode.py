"""The kswapd and kcompactd side of 6.15's vm.defrag_mode, as pure functions for the daemons to
call (`mm/vmscan.c`, `mm/compaction.c`, `mm/page_alloc.c` of v6.15; the patches "mm:
page_alloc: defrag_mode kswapd/kcompactd watermarks" with its fix, and "mm: vmscan: fix kswapd
exit condition in defrag_mode", posted 2025-04-16 as a fix for a 6.15-rc1 commit and assumed
in v6.15; the tag itself was not read).

The allocator side of defrag_mode (ALLOC_NOFRAGMENT, the slow path's last retry) is in
`models.mm.buddy`, `models.mm.rmqueue_6_15` and `models.mm.slowpath`. The daemons use this
module: `models.mm.slowpath.wake_all_kswapds` calls `wake_all_kswapds_order`, 6.1's kswapd
(`models.mm.kswapd_6_1.pgdat_balanced`) calls `pgdat_balanced_6_15`, and kcompactd
(`models.mm.kcompactd`) takes `kcompactd_alloc_flags` and `compaction_suit_free_pages`, and
`compact_zone`'s FINISH_DEFRAG_6_15 calls `kcompactd_finished_defrag` (`compaction_watermark_met`
stays as a tested statement of the rule that `kcompactd.compaction_suitable_free` applies).
What the daemons do under defrag_mode:

- `wake_all_kswapds` wakes kswapd for `max(order, pageblock_order)` (`wake_all_kswapds_order`);
- kswapd's `pgdat_balanced` checks the HIGH watermark against NR_FREE_PAGES_BLOCKS while
  `order > 0`, against NR_FREE_PAGES once kswapd has dropped to order 0
  (`pgdat_balanced_6_15`);
- kcompactd uses ALLOC_WMARK_HIGH instead of ALLOC_WMARK_MIN (`kcompactd_alloc_flags`) in
  `kcompactd_node_suitable` and `kcompactd_do_work`, and its
  `compaction_suit_allocation_order` measures NR_FREE_PAGES_BLOCKS (`compaction_watermark_met`,
  the COMPACT_SUCCESS test);
- kcompactd's `__compact_finished`, at a pageblock-aligned migrate_pfn, finishes exactly when
  the HIGH watermark is met in whole free pageblocks (`kcompactd_finished_defrag`) and skips
  the fallback checks.

`pgdat_balanced_6_15` and `kcompactd_finished_defrag` use `high_wmark_pages`, boost included,
as do kcompactd's marks in `models.mm.kcompactd`; `compaction_watermark_met` uses the unboosted
mark.
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.alloc import wmark_of
from fragsim.models.mm.constants import ALLOC_WMARK_HIGH, ALLOC_WMARK_MIN, WMARK_HIGH
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.wmark_6_15 import nr_free_pages_blocks, zone_watermark_ok_free_6_15

__all__ = [
    "compaction_suit_free_pages",
    "compaction_watermark_met",
    "kcompactd_alloc_flags",
    "kcompactd_finished_defrag",
    "pgdat_balanced_6_15",
    "wake_all_kswapds_order",
]


def wake_all_kswapds_order(order: int, pageblock_order: int, defrag_mode: bool) -> int:
    """6.15 `wake_all_kswapds()`: the order kswapd is woken for, `reclaim_order = max(order,
    pageblock_order)` in defrag_mode, else `order`."""
    return max(order, pageblock_order) if defrag_mode else order


def pgdat_balanced_6_15(zones: np.ndarray, pageblock_order: int, order: int,
                        highest_zoneidx: int, defrag_mode: bool) -> bool:
    """6.15 `pgdat_balanced(pgdat, order, highest_zoneidx)`: True when some managed zone up to
    `highest_zoneidx` (bottom up) passes `__zone_watermark_ok(zone, order, high_wmark_pages,
    highest_zoneidx, 0, free_pages)`, where free_pages is NR_FREE_PAGES_BLOCKS "if
    (defrag_mode && order)" and NR_FREE_PAGES otherwise; True too when no zone is managed ("it
    does not need balancing by definition")."""
    managed = False
    for z in range(highest_zoneidx + 1):
        zone = zones[z]
        if zone["present_pages"] == 0:
            continue
        managed = True
        mark = int(zone["watermark"][WMARK_HIGH] + zone["watermark_boost"])  # high_wmark_pages
        if defrag_mode and order:
            free_pages = int(nr_free_pages_blocks(zone, pageblock_order))
        else:
            free_pages = int(zone["free_pages"])
        if zone_watermark_ok_free_6_15(zone, order, mark, highest_zoneidx, 0, free_pages):
            return True
    return not managed


def kcompactd_alloc_flags(defrag_mode: bool) -> int:
    """6.15 `kcompactd_node_suitable` and `kcompactd_do_work`'s `cc.alloc_flags`: `defrag_mode
    ? ALLOC_WMARK_HIGH : ALLOC_WMARK_MIN`."""
    return ALLOC_WMARK_HIGH if defrag_mode else ALLOC_WMARK_MIN


def compaction_suit_free_pages(zone: np.ndarray, pageblock_order: int, kcompactd: bool,
                               defrag_mode: bool) -> int:
    """6.15 `compaction_suit_allocation_order(..., kcompactd)`'s free pages: "if (kcompactd &&
    defrag_mode)" NR_FREE_PAGES_BLOCKS, else NR_FREE_PAGES. (Direct compaction passes
    kcompactd = false: `!cc->direct_compaction`.)"""
    if kcompactd and defrag_mode:
        return int(nr_free_pages_blocks(zone, pageblock_order))
    return int(zone["free_pages"])


def compaction_watermark_met(zone: np.ndarray, pageblock_order: int, order: int,
                             highest_zoneidx: int, alloc_flags: int, kcompactd: bool,
                             defrag_mode: bool) -> bool:
    """6.15 `compaction_suit_allocation_order`'s first test, COMPACT_SUCCESS (no compaction
    needed) when `__zone_watermark_ok(zone, order, wmark_pages(zone, alloc_flags &
    ALLOC_WMARK_MASK), highest_zoneidx, alloc_flags, free_pages)` with the free pages of
    `compaction_suit_free_pages`. The rest of that function (the costly-order async check and
    `compaction_suitable`) does not depend on defrag_mode."""
    mark = int(zone["watermark"][wmark_of(alloc_flags)])
    free_pages = compaction_suit_free_pages(zone, pageblock_order, kcompactd, defrag_mode)
    return bool(zone_watermark_ok_free_6_15(zone, order, mark, highest_zoneidx, alloc_flags,
                                            free_pages))


@compiled("zone, int, int, int, int")
def kcompactd_finished_defrag(zone: np.ndarray, pageblock_order: int, order: int,
                              highest_zoneidx: int, alloc_flags: int) -> bool:
    """6.15 `__compact_finished` "if (defrag_mode && !cc->direct_compaction)", reached once
    `cc->migrate_pfn` is pageblock-aligned: COMPACT_SUCCESS (True) when
    `__zone_watermark_ok(zone, cc->order, high_wmark_pages, cc->highest_zoneidx,
    cc->alloc_flags, NR_FREE_PAGES_BLOCKS)`, else COMPACT_CONTINUE (False); the free-list and
    fallback checks that follow are skipped either way. Compiled: `compact_zone`'s
    FINISH_DEFRAG_6_15 calls it."""
    mark = zone["watermark"][WMARK_HIGH] + zone["watermark_boost"]  # high_wmark_pages
    free_pages = nr_free_pages_blocks(zone, pageblock_order)
    return zone_watermark_ok_free_6_15(zone, order, mark, highest_zoneidx, alloc_flags,
                                       free_pages)

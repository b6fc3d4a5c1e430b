"""Linux 6.15's watermark arithmetic (`mm/page_alloc.c` of v6.15): `__zone_watermark_ok` with
the 6.3+ alloc flags, `nr_free_highatomic` (6.12+) and NR_FREE_PAGES_BLOCKS (6.15,
defrag_mode's counter of free pages in whole free pageblocks).

The model's flags stand for 6.15's as `models.mm.slowpath` sets them: ALLOC_HIGH is
ALLOC_MIN_RESERVE (__GFP_HIGH), ALLOC_HARDER is ALLOC_NON_BLOCK (a request that cannot enter
direct reclaim), plus ALLOC_HIGHATOMIC for such a request of order > 0; there is no ALLOC_OOM
(no OOM killer) and no CMA. ALLOC_RESERVES is then ALLOC_HIGH | ALLOC_HARDER.
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.constants import (
    ALLOC_HARDER,
    ALLOC_HIGH,
    MIGRATE_HIGHATOMIC,
    MIGRATE_ISOLATE,
)
from fragsim.models.mm.freelist import free_block_of_order
from fragsim.models.mm.jit import compiled

__all__ = [
    "nr_free_highatomic",
    "nr_free_pages_blocks",
    "zone_watermark_ok_6_15",
    "zone_watermark_ok_free_6_15",
]


@compiled("zone", inline=True)
def nr_free_highatomic(zone: np.ndarray) -> int:
    """6.15 `zone->nr_free_highatomic`: the free pages on the MIGRATE_HIGHATOMIC lists
    (`account_freepages` counts a page by the list it is on)."""
    total = 0
    for o in range(zone["nr_free_mt"].shape[0]):
        total += zone["nr_free_mt"][o, MIGRATE_HIGHATOMIC] << o
    return total


@compiled("zone, int", inline=True)
def nr_free_pages_blocks(zone: np.ndarray, pageblock_order: int) -> int:
    """6.15 `zone_page_state(zone, NR_FREE_PAGES_BLOCKS)`: the pages of free blocks of order >=
    pageblock_order that are not MIGRATE_ISOLATE (`__add_to_free_list`,
    `__del_page_from_free_list`, `move_to_free_list`)."""
    total = 0
    nr_types = zone["nr_free_mt"].shape[1]
    for o in range(pageblock_order, zone["nr_free_mt"].shape[0]):
        for mt in range(nr_types):
            if mt != MIGRATE_ISOLATE:
                total += zone["nr_free_mt"][o, mt] << o
    return total


@compiled("zone, int, int, int, int, int", inline=True)
def zone_watermark_ok_free_6_15(zone: np.ndarray, order: int, mark: int, classzone_idx: int,
                                alloc_flags: int, free_pages: int) -> bool:
    """6.15 `__zone_watermark_ok(z, order, mark, highest_zoneidx, alloc_flags, free_pages)`.

    `free_pages -= __zone_watermark_unusable_free()`: `2^order - 1`, plus `nr_free_highatomic`
    unless the request may use reserves. `min = mark`; only ALLOC_MIN_RESERVE (ALLOC_HIGH)
    lowers it: by half, and by a quarter more with ALLOC_NON_BLOCK (ALLOC_HARDER) (6.1 took a
    quarter for ALLOC_HARDER alone). Fail if `free_pages <= min + lowmem_reserve`; order 0
    passes; a higher order needs a free block of its order or above on an UNMOVABLE,
    RECLAIMABLE or MOVABLE list, or on the HIGHATOMIC list with ALLOC_HIGHATOMIC.
    """
    reserves = alloc_flags & (ALLOC_HIGH | ALLOC_HARDER)
    free_pages -= (1 << order) - 1
    if not reserves:
        free_pages -= nr_free_highatomic(zone)
    min_ = mark
    if alloc_flags & ALLOC_HIGH:
        min_ -= min_ // 2
        if alloc_flags & ALLOC_HARDER:
            min_ -= min_ // 4
    if free_pages <= min_ + zone["lowmem_reserve"][classzone_idx]:
        return False
    if order == 0:
        return True
    return free_block_of_order(zone, order, (alloc_flags & ALLOC_HARDER) != 0)


@compiled("zone, int, int, int, int", inline=True)
def zone_watermark_ok_6_15(zone: np.ndarray, order: int, mark: int, classzone_idx: int,
                           alloc_flags: int) -> bool:
    """6.15 `zone_watermark_fast()` on NR_FREE_PAGES. Its order-0 shortcut (`usable_free -=
    min(usable_free, reserved)`, pass if above `mark + lowmem_reserve`) passes only where
    `__zone_watermark_ok` does, so this is `zone_watermark_ok_free_6_15`; boosting is not
    modelled, so its `watermark_boost` retry never applies."""
    return zone_watermark_ok_free_6_15(zone, order, mark, classzone_idx, alloc_flags,
                                       int(zone["free_pages"]))

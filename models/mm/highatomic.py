"""MIGRATE_HIGHATOMIC, the high-order atomic reserve of Linux 4.4+ (here as 6.1 has it).

4.4 replaced MIGRATE_RESERVE (pageblocks set aside at boot from min_free_kbytes) with a reserve
made on demand: when a high-order ALLOC_HARDER request (an atomic one: it cannot sleep)
succeeds, the pageblock it came from becomes MIGRATE_HIGHATOMIC, so the next such request finds
a free block there (`rmqueue_flags` tries those lists first) while ordinary requests do not
take it (no `fallbacks[]` row names it, and `zone_watermark_ok` counts it as unusable). Under
pressure the slow path gives reserved pageblocks back. From 6.1 `mm/page_alloc.c` (6.1.y,
unifreq/linux-6.1.y at 07badeaa; 6.1.0's `rmqueue_buddy` and `get_page_from_freelist` test
`order > 0 && alloc_flags & ALLOC_HARDER`, which later 6.1.y names ALLOC_HIGHATOMIC):

- `reserve_highatomic_pageblock`: at most `managed / 100 + pageblock_nr_pages` pages per zone;
  a pageblock of a mergeable type (UNMOVABLE, RECLAIMABLE, MOVABLE) is retyped and its free
  pages moved to the tail of the HIGHATOMIC lists.
- `unreserve_highatomic_pageblock`: for each zone of the zonelist that keeps more than one
  pageblock (any, when `force`), the first HIGHATOMIC free block from order 0 up: its pageblock
  is retyped to the request's type and its free pages moved there; True once a move moved any.

The model's managed pages are the zone's present pages (no holes, no memblock reservations).
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.buddy import move_freepages_block_tail
from fragsim.models.mm.constants import MIGRATE_HIGHATOMIC, MIGRATE_PCPTYPES
from fragsim.models.mm.jit import compiled

__all__ = ["reserve_highatomic_pageblock", "unreserve_highatomic_pageblock"]


@compiled("pages, zone, pageblock_type, nd, int", inline=True)
def reserve_highatomic_pageblock(pages: np.ndarray, zone: np.ndarray,
                                 pageblock_type: np.ndarray, nd: np.ndarray, pfn: int) -> None:
    """6.1 `reserve_highatomic_pageblock(page, zone, order)` for the block just allocated at
    `pfn`: reserve its pageblock for high-order atomic allocations, within the zone's limit."""
    pbo = int(nd["pageblock_order"])
    # Limit the number reserved to 1 pageblock or roughly 1% of a zone.
    max_managed = zone["present_pages"] // 100 + (1 << pbo)
    if zone["nr_reserved_highatomic"] >= max_managed:
        return
    mt = pageblock_type[pfn >> pbo]
    # Only reserve normal pageblocks (i.e., they can merge with others).
    if mt < MIGRATE_PCPTYPES:
        zone["nr_reserved_highatomic"] += 1 << pbo
        pageblock_type[pfn >> pbo] = MIGRATE_HIGHATOMIC
        move_freepages_block_tail(pages, zone, pfn, MIGRATE_HIGHATOMIC, pbo)


@compiled("pages, zones, pageblock_type, node, int, int, int")
def unreserve_highatomic_pageblock(pages: np.ndarray, zones: np.ndarray,
                                   pageblock_type: np.ndarray, node: np.ndarray, high_zone: int,
                                   mt: int, force: int) -> bool:
    """6.1 `unreserve_highatomic_pageblock(ac, force)` over the zonelist `high_zone` down to 0,
    giving a reserved pageblock back to `mt` (the request's migratetype)."""
    nd = node[0]
    pbo = int(nd["pageblock_order"])
    max_order = int(nd["max_order"])
    for z in range(high_zone, -1, -1):
        zone = zones[z]
        if zone["present_pages"] == 0:
            continue
        # Preserve at least one pageblock unless memory pressure is really high.
        if force == 0 and zone["nr_reserved_highatomic"] <= (1 << pbo):
            continue
        for order in range(max_order):
            pfn = zone["head"][order, MIGRATE_HIGHATOMIC]
            if pfn < 0:
                continue
            if pageblock_type[pfn >> pbo] == MIGRATE_HIGHATOMIC:
                zone["nr_reserved_highatomic"] -= min(1 << pbo, zone["nr_reserved_highatomic"])
            # Convert to the request's type and avoid the normal pageblock stealing heuristics.
            pageblock_type[pfn >> pbo] = mt
            moved, _ = move_freepages_block_tail(pages, zone, pfn, mt, pbo)
            if moved != 0:
                return True
    return False

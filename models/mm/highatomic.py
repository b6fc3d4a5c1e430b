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

6.15 (`node['typed_freelists']`: free pages always on their pageblock type's lists, 6.10+):

- `reserve_highatomic_pageblock(page, order, zone)`: nothing when 1% of the zone is below a
  pageblock; at most `ALIGN(managed / 100, pageblock_nr_pages)` pages; a block of order <
  pageblock_order moves its pageblock (`move_freepages_block`, refused when the pageblock
  straddles the zone) and counts a pageblock, a larger one retypes all its pageblocks
  (`change_pageblock_range`) and counts `1 << order`.
- `unreserve_highatomic_pageblock`: the first HIGHATOMIC free block from order 0 up gives back
  `max(pageblock_nr_pages, 1 << order)` pages of the count (clamped); order < pageblock_order
  moves its pageblock to the request's type, a larger block moves itself and retypes its
  pageblocks; True once that returns a positive count.
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.buddy import list_move_tail, move_freepages_block_tail
from fragsim.models.mm.constants import MIGRATE_HIGHATOMIC, MIGRATE_PCPTYPES
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.rmqueue_6_15 import move_freepages_block_6_15, prep_move_freepages_block

__all__ = [
    "reserve_highatomic_pageblock",
    "reserve_highatomic_pageblock_6_15",
    "unreserve_highatomic_pageblock",
    "unreserve_highatomic_pageblock_6_15",
]


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
    if nd["typed_freelists"] != 0:
        return unreserve_highatomic_pageblock_6_15(pages, zones, pageblock_type, node,
                                                   high_zone, mt, force)
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


@compiled("pageblock_type, int, int, int, int", inline=True)
def _retype_range(pageblock_type: np.ndarray, pfn: int, order: int, pbo: int, mt: int) -> None:
    """`change_pageblock_range(page, order, mt)` without the model's claim counter (a reserve
    is not a fallback claim, as in 6.1's `set_pageblock_migratetype` here)."""
    block = pfn >> pbo
    for i in range(1 << (order - pbo)):
        pageblock_type[block + i] = mt


@compiled("pages, zone, pageblock_type, nd, int, int", inline=True)
def reserve_highatomic_pageblock_6_15(pages: np.ndarray, zone: np.ndarray,
                                      pageblock_type: np.ndarray, nd: np.ndarray, pfn: int,
                                      order: int) -> None:
    """6.15 `reserve_highatomic_pageblock(page, order, zone)` for the block of `order` just
    allocated at `pfn`."""
    pbo = int(nd["pageblock_order"])
    nr_pb = 1 << pbo
    # The number reserved as: minimum is 1 pageblock, maximum is roughly 1% of a zone. But if
    # 1% of a zone falls below a pageblock size, then don't reserve any pageblocks.
    one_pct = zone["present_pages"] // 100
    if one_pct < nr_pb:
        return
    max_managed = (one_pct + nr_pb - 1) & ~(nr_pb - 1)
    if zone["nr_reserved_highatomic"] >= max_managed:
        return
    mt = pageblock_type[pfn >> pbo]
    # Only reserve normal pageblocks (i.e., they can merge with others).
    if mt >= MIGRATE_PCPTYPES:
        return
    if order < pbo:
        start, _, _ = prep_move_freepages_block(pages, zone, pfn, pbo)
        if start < 0:
            return
        move_freepages_block_6_15(pages, zone, pageblock_type, nd, start, MIGRATE_HIGHATOMIC)
        zone["nr_reserved_highatomic"] += nr_pb
    else:
        _retype_range(pageblock_type, pfn, order, pbo, MIGRATE_HIGHATOMIC)
        zone["nr_reserved_highatomic"] += 1 << order


@compiled("pages, zones, pageblock_type, node, int, int, int", inline=True)
def unreserve_highatomic_pageblock_6_15(pages: np.ndarray, zones: np.ndarray,
                                        pageblock_type: np.ndarray, node: np.ndarray,
                                        high_zone: int, mt: int, force: int) -> bool:
    """6.15 `unreserve_highatomic_pageblock(ac, force)` over the zonelist `high_zone` down to
    0, giving reserved pages back to `mt` (the request's migratetype)."""
    nd = node[0]
    pbo = int(nd["pageblock_order"])
    nr_pb = 1 << pbo
    max_order = int(nd["max_order"])
    for z in range(high_zone, -1, -1):
        zone = zones[z]
        if zone["present_pages"] == 0:
            continue
        # Preserve at least one pageblock unless memory pressure is really high.
        if force == 0 and zone["nr_reserved_highatomic"] <= nr_pb:
            continue
        for order in range(max_order):
            pfn = int(zone["head"][order, MIGRATE_HIGHATOMIC])
            if pfn < 0:
                continue
            size = max(nr_pb, 1 << order)
            # "It should never happen ... so be safe and watch for underflows."
            if size > zone["nr_reserved_highatomic"]:
                size = zone["nr_reserved_highatomic"]
            zone["nr_reserved_highatomic"] -= size
            # Convert to the request's type and avoid the normal pageblock stealing heuristics.
            if order < pbo:
                start, _, _ = prep_move_freepages_block(pages, zone, pfn, pbo)
                if start < 0:
                    ret = -1
                else:
                    ret = move_freepages_block_6_15(pages, zone, pageblock_type, nd, start, mt)
            else:
                list_move_tail(pages, zone, pfn, mt)
                _retype_range(pageblock_type, pfn, order, pbo, mt)
                ret = 1
            if ret > 0:
                return True
    return False

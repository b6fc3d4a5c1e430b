"""Linux 6.1's `__rmqueue_fallback()` and its helpers (`mm/page_alloc.c` of 6.1.y, read at
unifreq/linux-6.1.y 07badeaa): `can_steal_fallback`, `find_suitable_fallback`,
`steal_suitable_fallback` and `rmqueue_fallback_6_1`, which `models.mm.buddy.rmqueue_fallback`
runs when `node['claim_rule']` is CLAIM_6_1.

With watermark boosting (`boost_watermark`, 5.0: `models.mm.boost`) and ALLOC_NOFRAGMENT (5.0:
the fallback takes only blocks of pageblock_order or more). Left out: CMA. The
`page_group_by_mobility_disabled` clauses never apply: the model does not fall back with
grouping off.
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.boost import boost_watermark
from fragsim.models.mm.constants import (
    ALLOC_KSWAPD,
    ALLOC_NOFRAGMENT,
    MIGRATE_HIGHATOMIC,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    ZONE_BOOSTED_WATERMARK,
)
from fragsim.models.mm.freelist import (
    change_pageblock_range,
    list_move_tail,
    log_extfrag,
    move_freepages_block_tail,
    rmqueue_smallest,
    set_pageblock_migratetype,
)
from fragsim.models.mm.jit import compiled

__all__ = [
    "can_steal_fallback",
    "find_suitable_fallback",
    "rmqueue_fallback_6_1",
    "steal_suitable_fallback",
]


@compiled("nd, int, int", inline=True)
def can_steal_fallback(node: np.ndarray, order: int, start_mt: int) -> bool:
    """6.1 `can_steal_fallback()`: a block of order >= pageblock_order/2, or an UNMOVABLE or
    RECLAIMABLE request, may take the pageblock's other free pages. (Its
    `page_group_by_mobility_disabled` clause never applies: the model does not fall back with
    grouping off.)"""
    pbo = int(node["pageblock_order"])
    if order >= pbo:
        return True
    if order >= (pbo >> 1):
        return True
    return start_mt == MIGRATE_RECLAIMABLE or start_mt == MIGRATE_UNMOVABLE  # noqa: SIM109


@compiled("zone, nd, int, int", inline=True)
def find_suitable_fallback(zone: np.ndarray, node: np.ndarray, order: int,
                           start_mt: int) -> tuple[int, bool]:
    """6.1 `find_suitable_fallback(area, order, migratetype, false, &can_steal)`: the first type
    of `fallbacks[start_mt]` with a free block of `order`, and `can_steal_fallback`; (-1, False)
    when none has one."""
    if zone["nr_free"][order] == 0:
        return -1, False
    fallbacks = node["fallbacks"][start_mt]
    for i in range(fallbacks.shape[0]):
        mt = fallbacks[i]
        if mt < 0:
            break
        if zone["head"][order, mt] < 0:
            continue
        return int(mt), can_steal_fallback(node, order, start_mt)
    return -1, False


@compiled("pages, zone, pageblock_type, nd, int, int, int, int", inline=True)
def steal_suitable_fallback(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                            node: np.ndarray, pfn: int, start_mt: int, whole_block: int,
                            alloc_flags: int) -> None:
    """6.1 `steal_suitable_fallback()` for the free block at `pfn`.

    A block in a HIGHATOMIC pageblock only moves itself. A block of order >= pageblock_order
    retypes its pageblocks (`change_pageblock_range`) and moves itself. Otherwise the zone's
    watermark is boosted ("to increase reclaim pressure to reduce the likelihood of future
    fallbacks", `boost_watermark`), and ZONE_BOOSTED_WATERMARK set when it was and the request
    has ALLOC_KSWAPD ("Wake kswapd now as the node may be balanced overall and kswapd will not
    wake naturally": `rmqueue` does). Then, when `whole_block` (can_steal), every free page of
    the pageblock moves to `start_mt`'s lists and the pageblock is claimed when free plus
    "alike" pages are at least half of it: alike are the LRU pages for a MOVABLE request, the
    allocated pages that are not LRU for another request falling back to a MOVABLE pageblock,
    else none. The moved block goes to the tail of `free_list[start_mt]`
    (`move_to_free_list`).
    """
    pbo = int(node["pageblock_order"])
    current_order = int(pages[pfn]["order"])
    old_block_type = pageblock_type[pfn >> pbo]
    if old_block_type != MIGRATE_HIGHATOMIC:
        if current_order >= pbo:
            # Take ownership for orders >= pageblock_order.
            change_pageblock_range(pageblock_type, node, pfn, current_order, start_mt)
        else:
            if boost_watermark(zone, node) and (alloc_flags & ALLOC_KSWAPD):
                zone["flags"] |= ZONE_BOOSTED_WATERMARK
            if whole_block != 0:
                free_pages, movable_pages = move_freepages_block_tail(pages, zone, pfn,
                                                                      start_mt, pbo)
                if start_mt == MIGRATE_MOVABLE:
                    alike_pages = movable_pages
                elif old_block_type == MIGRATE_MOVABLE:
                    alike_pages = (1 << pbo) - (free_pages + movable_pages)
                else:
                    alike_pages = 0
                # Moving the whole block can fail due to zone boundary conditions.
                if free_pages != 0:
                    if free_pages + alike_pages >= (1 << (pbo - 1)):
                        set_pageblock_migratetype(pageblock_type, node, pfn, start_mt)
                    return
    # single_page:
    list_move_tail(pages, zone, pfn, start_mt)


@compiled("pages, zone, pageblock_type, nd, int, int, int", inline=True)
def rmqueue_fallback_6_1(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                         node: np.ndarray, order: int, start_mt: int, alloc_flags: int) -> int:
    """6.1 `__rmqueue_fallback()` followed by `__rmqueue`'s retry of `__rmqueue_smallest`.

    From MAX_ORDER-1 down to `order`, the first order with a suitable fallback (largest first).
    If its block may not take the rest of its pageblock (`!can_steal`) and the request is
    MOVABLE, take the SMALLEST order with a fallback instead ("find_smallest": a movable page in
    another type's pageblock does no permanent harm). `steal_suitable_fallback` moves the block
    (and maybe its pageblock's other free blocks) to `start_mt`'s lists; the extfrag event has
    the 6.1 tracepoint's fields (the stolen block, the list it came from, fragmenting when
    fallback_order < pageblock_order, change_ownership when the pageblock now has the
    request's type). Then `__rmqueue_smallest(order, start_mt)` allocates: the smallest block of
    order >= `order` now on the request's lists, head first, which need not be the stolen one.
    Returns -1 when no fallback list has a block (6.1 has no MIGRATE_RESERVE to try).
    With ALLOC_NOFRAGMENT and `order < pageblock_order`, the largest-first search stops at
    `min_order = pageblock_order` ("Do not steal pages from freelists belonging to other
    pageblocks"): such a block can always steal, so find_smallest does not run, and
    `steal_suitable_fallback` retypes whole pageblocks and boosts nothing.
    """
    max_order = int(node["max_order"])
    pbo = int(node["pageblock_order"])
    min_order = order
    if order < pbo and (alloc_flags & ALLOC_NOFRAGMENT):
        min_order = pbo
    fallback_mt = -1
    can_steal = False
    current_order = max_order - 1
    while current_order >= min_order:
        fallback_mt, can_steal = find_suitable_fallback(zone, node, current_order, start_mt)
        if fallback_mt >= 0:
            break
        current_order -= 1
    if fallback_mt < 0:
        return -1
    if not can_steal and start_mt == MIGRATE_MOVABLE and current_order > order:
        # find_smallest:
        for smaller in range(order, max_order):
            fallback_mt, can_steal = find_suitable_fallback(zone, node, smaller, start_mt)
            if fallback_mt >= 0:
                current_order = smaller
                break
    pfn = zone["head"][current_order, fallback_mt]
    steal_suitable_fallback(pages, zone, pageblock_type, node, pfn, start_mt,
                            1 if can_steal else 0, alloc_flags)
    log_extfrag(node, pfn, order, current_order, start_mt, fallback_mt,
                1 if current_order < pbo else 0,
                1 if pageblock_type[pfn >> pbo] == start_mt else 0)
    return rmqueue_smallest(pages, zone, order, start_mt, max_order)

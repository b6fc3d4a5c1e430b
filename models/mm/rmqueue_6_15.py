"""Linux 6.15's `__rmqueue()`: the claim/steal split (Johannes Weiner, 6.15) and the 6.10+ free
list accounting on the paths the model has (`mm/page_alloc.c` of v6.15, rebuilt from the merged
patches "mm: page_alloc: speed up fallbacks in rmqueue_bulk()", "mm: page_alloc: defrag_mode"
and the 6.10 "freelist migratetype hygiene" series; the torvalds/linux mirror was too large to
fetch here).

6.1's `__rmqueue_fallback` (`models.mm.fallback_6_1`) becomes two functions tried in turn by
`__rmqueue` after `__rmqueue_smallest`:

- `__rmqueue_claim`: from MAX_PAGE_ORDER down to `order` (to pageblock_order under
  ALLOC_NOFRAGMENT), the first type of `fallbacks[]` with a free block, while
  `should_try_claim_block` allows claiming at that order (else stop: "Advanced into orders too
  low to claim"). `try_to_claim_block` takes a block of order >= pageblock_order whole
  (`change_pageblock_range`, the block itself is the allocation); a smaller one claims its
  pageblock only when free plus "alike" pages are at least half of it, moving every free page
  to the tail of the new type's lists (`__move_freepages_block`) and allocating with
  `__rmqueue_smallest`; otherwise the next lower order is tried. No single page is stolen here.
- `__rmqueue_steal` (skipped under ALLOC_NOFRAGMENT): from `order` UP, the first fallback type
  with a free block; the block is split in place (`page_del_and_expand`), its remainder staying
  on the lists of its own pageblock's type.

`__rmqueue` remembers in `*mode` where it found pages (`enum rmqueue_mode`): a claim returns to
RMQUEUE_NORMAL, a steal sets RMQUEUE_STEAL, so the next call of the same `rmqueue_bulk` goes
straight to stealing. The mode lives for one `rmqueue_bulk` call (or one `rmqueue_buddy`),
not in the zone.

Left out: CMA (`RMQUEUE_CMA`, `__rmqueue_cma_fallback`), watermark boosting in
`try_to_claim_block` (`boost_watermark`, another branch), `page_group_by_mobility_disabled`
(the model does not fall back with grouping off), guard pages.
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.boost import boost_watermark
from fragsim.models.mm.constants import (
    ALLOC_FRAGMENT_OK,
    ALLOC_KSWAPD,
    ALLOC_NO_WATERMARKS,
    ALLOC_NOFRAGMENT,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    PG_BUDDY,
    PG_LRU,
    ZONE_BOOSTED_WATERMARK,
)
from fragsim.models.mm.freelist import (
    change_pageblock_range,
    expand,
    list_del,
    list_move_tail,
    log_extfrag,
    rmqueue_smallest,
)
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.state import STAT

__all__ = [
    "RMQUEUE_CLAIM",
    "RMQUEUE_CMA",
    "RMQUEUE_NORMAL",
    "RMQUEUE_STEAL",
    "alloc_flags_nofragment",
    "find_suitable_fallback_6_15",
    "move_freepages_block_6_15",
    "page_del_and_expand",
    "prep_move_freepages_block",
    "rmqueue_6_15",
    "rmqueue_claim",
    "rmqueue_steal",
    "should_try_claim_block",
    "try_to_claim_block",
]

#: 6.15 `enum rmqueue_mode`.
RMQUEUE_NORMAL = 0
RMQUEUE_CMA = 1
RMQUEUE_CLAIM = 2
RMQUEUE_STEAL = 3

_S_PAGEBLOCK_CLAIMED = STAT["pageblock_claimed"]


@compiled("nd, int", inline=True)
def alloc_flags_nofragment(nd: np.ndarray, alloc_flags: int) -> int:
    """6.15 `alloc_flags_nofragment()` / `gfp_to_alloc_flags()` under defrag_mode: "if
    (defrag_mode) alloc_flags |= ALLOC_NOFRAGMENT", unless the slow path has cleared it
    (ALLOC_FRAGMENT_OK, the model's record of `alloc_flags &= ~ALLOC_NOFRAGMENT`) or the request
    runs on reserves (ALLOC_NO_WATERMARKS: the slow path's `reserve_flags` replace alloc_flags).
    Without defrag_mode the flags are unchanged (5.0's ZONE_NORMAL rule is not modelled)."""
    if nd["defrag_mode"] != 0 and not (alloc_flags & (ALLOC_FRAGMENT_OK | ALLOC_NO_WATERMARKS)):
        return alloc_flags | ALLOC_NOFRAGMENT
    return alloc_flags


@compiled("nd, int, int", inline=True)
def should_try_claim_block(node: np.ndarray, order: int, start_mt: int) -> bool:
    """6.15 `should_try_claim_block()` (6.1's `can_steal_fallback` renamed): order >=
    pageblock_order, or >= pageblock_order/2, or an UNMOVABLE/RECLAIMABLE request."""
    pbo = int(node["pageblock_order"])
    if order >= pbo:
        return True
    if order >= (pbo >> 1):
        return True
    return start_mt == MIGRATE_RECLAIMABLE or start_mt == MIGRATE_UNMOVABLE  # noqa: SIM109


@compiled("zone, nd, int, int, int", inline=True)
def find_suitable_fallback_6_15(zone: np.ndarray, node: np.ndarray, order: int, start_mt: int,
                                claimable: int) -> int:
    """6.15 `find_suitable_fallback(area, order, migratetype, claimable)`: -2 when `claimable`
    and `should_try_claim_block` says no; -1 when the order has no free block on a
    `fallbacks[start_mt]` list; else the first such type."""
    if claimable != 0 and not should_try_claim_block(node, order, start_mt):
        return -2
    if zone["nr_free"][order] == 0:
        return -1
    fallbacks = node["fallbacks"][start_mt]
    for i in range(fallbacks.shape[0]):
        mt = fallbacks[i]
        if mt < 0:
            break
        if zone["head"][order, mt] >= 0:
            return int(mt)
    return -1


@compiled("pages, zone, int, int", inline=True)
def prep_move_freepages_block(pages: np.ndarray, zone: np.ndarray, pfn: int,
                              pageblock_order: int) -> tuple[int, int, int]:
    """6.15 `prep_move_freepages_block()`: (start_pfn, free pages, movable pages) of `pfn`'s
    pageblock, or start_pfn -1 when the pageblock is not wholly inside the zone ("don't touch
    ranges that straddle into other zones"; 6.1 moved the part inside). Movable pages are the
    PageLRU ones that are not free (`PageLRU || __PageMovable`; the model has no non-LRU
    movable pages)."""
    start = pfn & ~((1 << pageblock_order) - 1)
    end = start + (1 << pageblock_order)
    if start < zone["start_pfn"] or start >= zone["end_pfn"]:
        return -1, 0, 0
    if end - 1 < zone["start_pfn"] or end - 1 >= zone["end_pfn"]:
        return -1, 0, 0
    free = 0
    movable = 0
    p = start
    while p < end:
        if pages[p]["flags"] & PG_BUDDY:
            nr = 1 << int(pages[p]["order"])
            free += nr
            p += nr
            continue
        if pages[p]["flags"] & PG_LRU:
            movable += 1
        p += 1
    return start, free, movable


@compiled("pages, zone, pageblock_type, nd, int, int", inline=True)
def move_freepages_block_6_15(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                              nd: np.ndarray, start_pfn: int, new_mt: int) -> int:
    """6.15 `__move_freepages_block(zone, start_pfn, old_mt, new_mt)`: every free block of the
    pageblock at `start_pfn` to the TAIL of `free_list[new_mt]` (`move_to_free_list`), then
    `set_pageblock_migratetype(new_mt)`. Returns the pages moved. (The claim counter is the
    caller's.)"""
    pbo = int(nd["pageblock_order"])
    end = start_pfn + (1 << pbo)
    moved = 0
    p = start_pfn
    while p < end:
        if not (pages[p]["flags"] & PG_BUDDY):
            p += 1
            continue
        order = int(pages[p]["order"])
        list_move_tail(pages, zone, p, new_mt)
        p += 1 << order
        moved += 1 << order
    pageblock_type[start_pfn >> pbo] = new_mt
    return moved


@compiled("pages, zone, int, int, int, int", inline=True)
def page_del_and_expand(pages: np.ndarray, zone: np.ndarray, pfn: int, low: int, high: int,
                        mt: int) -> None:
    """6.15 `page_del_and_expand()`: unlink the block of order `high` at `pfn`, put its upper
    halves down to order `low` at the heads of `mt`'s lists (`expand`), and count the `2^low`
    pages taken (`account_freepages`)."""
    list_del(pages, zone, pfn)
    zone["free_pages"] -= 1 << low
    expand(pages, zone, pfn, low, high, mt)


@compiled("pages, zone, pageblock_type, nd, int, int, int, int, int, int", inline=True)
def try_to_claim_block(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                       nd: np.ndarray, pfn: int, current_order: int, order: int,
                       start_mt: int, block_mt: int, alloc_flags: int) -> int:
    """6.15 `try_to_claim_block()` for the free block at `pfn` (on `block_mt`'s list): the pfn
    allocated, or -1.

    current_order >= pageblock_order: "Take ownership": unlink it, `change_pageblock_range` to
    `start_mt`, `expand` down to `order` onto `start_mt`'s lists; the block itself is returned.
    Otherwise `boost_watermark` (5.0; ZONE_BOOSTED_WATERMARK set with ALLOC_KSWAPD, as 6.1's
    `steal_suitable_fallback`), then `prep_move_freepages_block` (-1 when the pageblock
    straddles the zone); alike pages are the movable ones for a MOVABLE request, the
    non-free non-movable ones for another request falling back to a MOVABLE pageblock, else 0;
    with free + alike >= half a pageblock, `__move_freepages_block` to `start_mt` and
    `__rmqueue_smallest(order, start_mt)`; else -1.
    """
    pbo = int(nd["pageblock_order"])
    if current_order >= pbo:
        list_del(pages, zone, pfn)
        change_pageblock_range(pageblock_type, nd, pfn, current_order, start_mt)
        zone["free_pages"] -= 1 << order
        expand(pages, zone, pfn, order, current_order, start_mt)
        return pfn
    # "Boost watermarks to increase reclaim pressure to reduce the likelihood of future
    # fallbacks. Wake kswapd now as the node may be balanced overall..."
    if boost_watermark(zone, nd) and (alloc_flags & ALLOC_KSWAPD):
        zone["flags"] |= ZONE_BOOSTED_WATERMARK
    start, free_pages, movable_pages = prep_move_freepages_block(pages, zone, pfn, pbo)
    if start < 0:
        return -1
    if start_mt == MIGRATE_MOVABLE:
        alike_pages = movable_pages
    elif block_mt == MIGRATE_MOVABLE:
        alike_pages = (1 << pbo) - (free_pages + movable_pages)
    else:
        alike_pages = 0
    if free_pages + alike_pages >= (1 << (pbo - 1)):
        if pageblock_type[start >> pbo] != start_mt:
            nd["stat"][_S_PAGEBLOCK_CLAIMED] += 1
        move_freepages_block_6_15(pages, zone, pageblock_type, nd, start, start_mt)
        return rmqueue_smallest(pages, zone, order, start_mt, int(nd["max_order"]))
    return -1


@compiled("pages, zone, pageblock_type, nd, int, int, int", inline=True)
def rmqueue_claim(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                  nd: np.ndarray, order: int, start_mt: int, alloc_flags: int) -> int:
    """6.15 `__rmqueue_claim()`: the pfn allocated by claiming a whole pageblock, or -1.

    The extfrag event (`trace_mm_page_alloc_extfrag(page, order, current_order, start_mt,
    fallback_mt)`) names the allocated page; change_ownership is whether its pageblock now has
    the request's type, fragmenting whether current_order < pageblock_order.
    """
    pbo = int(nd["pageblock_order"])
    max_order = int(nd["max_order"])
    min_order = order
    # Do not steal pages from freelists belonging to other pageblocks.
    if order < pbo and (alloc_flags & ALLOC_NOFRAGMENT):
        min_order = pbo
    for current_order in range(max_order - 1, min_order - 1, -1):
        fallback_mt = find_suitable_fallback_6_15(zone, nd, current_order, start_mt, 1)
        if fallback_mt == -1:
            continue
        if fallback_mt == -2:
            break
        pfn = zone["head"][current_order, fallback_mt]
        got = try_to_claim_block(pages, zone, pageblock_type, nd, pfn, current_order, order,
                                 start_mt, fallback_mt, alloc_flags)
        if got >= 0:
            log_extfrag(nd, got, order, current_order, start_mt, fallback_mt,
                        1 if current_order < pbo else 0,
                        1 if pageblock_type[got >> pbo] == start_mt else 0)
            return got
    return -1


@compiled("pages, zone, pageblock_type, nd, int, int", inline=True)
def rmqueue_steal(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                  nd: np.ndarray, order: int, start_mt: int) -> int:
    """6.15 `__rmqueue_steal()`: from `order` up, the head block of the first fallback list
    with one, split in place (`page_del_and_expand` with its own type); the pfn or -1."""
    pbo = int(nd["pageblock_order"])
    max_order = int(nd["max_order"])
    for current_order in range(order, max_order):
        fallback_mt = find_suitable_fallback_6_15(zone, nd, current_order, start_mt, 0)
        if fallback_mt == -1:
            continue
        pfn = int(zone["head"][current_order, fallback_mt])
        page_del_and_expand(pages, zone, pfn, order, current_order, fallback_mt)
        log_extfrag(nd, pfn, order, current_order, start_mt, fallback_mt,
                    1 if current_order < pbo else 0,
                    1 if pageblock_type[pfn >> pbo] == start_mt else 0)
        return pfn
    return -1


@compiled("pages, zone, pageblock_type, nd, int, int, int, int", inline=True)
def rmqueue_6_15(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                 nd: np.ndarray, order: int, mt: int, alloc_flags: int,
                 mode: int) -> tuple[int, int]:
    """6.15 `__rmqueue(zone, order, migratetype, alloc_flags, &mode)`: (pfn or -1, new mode).

    `switch (*mode)` falls through: RMQUEUE_NORMAL tries `__rmqueue_smallest`; (RMQUEUE_CMA:
    no CMA in the model); RMQUEUE_CLAIM `__rmqueue_claim`, success resets the mode to NORMAL
    ("Replenished preferred freelist"); RMQUEUE_STEAL `__rmqueue_steal` unless
    ALLOC_NOFRAGMENT, success sets the mode to STEAL. A failure leaves the mode as it was.
    """
    if mode == RMQUEUE_NORMAL:
        pfn = rmqueue_smallest(pages, zone, order, mt, int(nd["max_order"]))
        if pfn >= 0:
            return pfn, mode
    if mode <= RMQUEUE_CLAIM:
        pfn = rmqueue_claim(pages, zone, pageblock_type, nd, order, mt, alloc_flags)
        if pfn >= 0:
            return pfn, RMQUEUE_NORMAL
    if not (alloc_flags & ALLOC_NOFRAGMENT):
        pfn = rmqueue_steal(pages, zone, pageblock_type, nd, order, mt)
        if pfn >= 0:
            return pfn, RMQUEUE_STEAL
    return -1, mode

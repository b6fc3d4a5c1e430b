"""The buddy allocator's free lists, split and merge: `mm/page_alloc.c` of Linux 2.6.24, 2.6.35
and 6.1.

The list primitives live in `models.mm.freelist` and 6.1's fallback in `models.mm.fallback_6_1`;
this module re-exports them. Every function here is compiled with numba and runs unchanged as
plain Python when `NUMBA_DISABLE_JIT=1` (the tests use that to step through it). Functions take
the record arrays of `models.mm.state` and plain integers, and follow the kernel function they
are named after:

- free lists are doubly linked through `pages['next'/'prev']`; `list_add` puts a block at the head
  and allocation takes the head (LIFO), as `list_add(&page->lru, &area->free_list[mt])` does;
- `expand`, `rmqueue_smallest`, `rmqueue_fallback`, `move_freepages_block` and `free_one_page`
  are line-for-line models of `expand`, `__rmqueue_smallest`, `__rmqueue_fallback`,
  `move_freepages_block` and `__free_one_page` of 2.6.24.

Two node flags, set from the policy (`models.mm.policy`), select the 2.6.35 versions of two of
them (parameters of the compiled code, not version tests):

- `node['claim_rule']` CLAIM_2_6_35: `__rmqueue_fallback` retypes every pageblock of a block of
  order >= pageblock_order (`change_pageblock_range`), and reports the tracepoint's fields as
  2.6.35 passes them;
- `node['free_tail']` FREE_2_6_35: `__free_one_page` adds a merged block at the tail of its list
  when its next-higher-order buddy is free.

Linux 6.1 (`mm/page_alloc.c` of 6.1.y, read at unifreq/linux-6.1.y 07badeaa) is selected the same
way: `node['claim_rule']` CLAIM_6_1 runs `rmqueue_fallback_6_1` (`find_suitable_fallback`,
`can_steal_fallback`, `steal_suitable_fallback`, the "find_smallest" path of movable requests,
free pages moved to the tail of the lists), `node['free_tail']` FREE_6_1 the 6.1
`__free_one_page` (`buddy_merge_likely`, no merge past pageblock_order with a HIGHATOMIC or
ISOLATE pageblock; boot frees with FPI_TO_TAIL), and `node['highatomic']` lets `rmqueue_flags`
serve ALLOC_HARDER high-order requests from MIGRATE_HIGHATOMIC first (6.1 `rmqueue_buddy`).

Vanilla 2.6.20 runs the same code with `node['grouping'] == 0`: every block lives on the
UNMOVABLE list of its order, which is the single list per order of that kernel, and there is no
fallback. The kernel keeps no per-type counts; `nr_free_mt` is the model's own bookkeeping so that
pagetypeinfo need not walk lists.
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.constants import (
    ALLOC_HARDER,
    MIGRATE_HIGHATOMIC,
    MIGRATE_PCPTYPES,
    MIGRATE_RECLAIMABLE,
    MIGRATE_RESERVE,
    PG_BUDDY,
)
from fragsim.models.mm.fallback_6_1 import (
    can_steal_fallback,
    find_suitable_fallback,
    rmqueue_fallback_6_1,
    steal_suitable_fallback,
)
from fragsim.models.mm.freelist import (
    change_pageblock_range,
    expand,
    list_add,
    list_add_tail,
    list_del,
    list_move,
    list_move_tail,
    log_extfrag,
    move_freepages_block,
    move_freepages_block_tail,
    rmqueue_smallest,
    set_pageblock_migratetype,
    zone_of_pfn,
)
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.rmqueue_6_15 import RMQUEUE_NORMAL, alloc_flags_nofragment, rmqueue_6_15
from fragsim.models.mm.state import STAT

__all__ = [
    "CLAIM_2_6_24",
    "CLAIM_2_6_35",
    "CLAIM_6_1",
    "CLAIM_6_15",
    "FREE_2_6_24",
    "FREE_2_6_35",
    "FREE_6_1",
    "FREE_6_15",
    "can_steal_fallback",
    "change_pageblock_range",
    "expand",
    "find_suitable_fallback",
    "free_one_page",
    "free_one_page_fpi",
    "free_one_page_mt",
    "list_add",
    "list_add_tail",
    "list_del",
    "list_move",
    "list_move_tail",
    "log_extfrag",
    "move_freepages_block",
    "move_freepages_block_tail",
    "rmqueue",
    "rmqueue_fallback",
    "rmqueue_fallback_6_1",
    "rmqueue_flags",
    "rmqueue_smallest",
    "set_pageblock_migratetype",
    "steal_suitable_fallback",
    "zone_of_pfn",
]

_S_PAGEBLOCK_CLAIMED = STAT["pageblock_claimed"]
_S_ALLOC_RESERVE = STAT["alloc_reserve"]

#: Claim rules (`node['claim_rule']`): how `__rmqueue_fallback` decides to take a pageblock.
#: 2.6.24: a block of exactly pageblock_order retypes its one pageblock; the extfrag event
#: reports the list the block came from and whether the pageblock now has the request's type.
CLAIM_2_6_24 = 0
#: 2.6.35: a block of order >= pageblock_order retypes all its pageblocks
#: (`change_pageblock_range`); the event gets the tracepoint's 2.6.35 arguments.
CLAIM_2_6_35 = 1
#: 6.1: `__rmqueue_fallback` with `find_suitable_fallback` and `steal_suitable_fallback`
#: (`rmqueue_fallback_6_1`); no MIGRATE_RESERVE.
CLAIM_6_1 = 2
#: 6.15: `__rmqueue` with `__rmqueue_claim` then `__rmqueue_steal` and the mode cache
#: (`models.mm.rmqueue_6_15`).
CLAIM_6_15 = 3

#: Free rules (`node['free_tail']`): where `__free_one_page` adds the merged block.
#: 2.6.24: always at the head.
FREE_2_6_24 = 0
#: 2.6.35: at the tail when the next-higher-order buddy is free (below MAX_ORDER-1).
FREE_2_6_35 = 1
#: 6.1: `buddy_merge_likely` (below MAX_ORDER-2), and no merge at order >= pageblock_order
#: between pageblocks of different types when either is not mergeable (HIGHATOMIC, ISOLATE).
FREE_6_1 = 2
#: 6.15: 6.1's rules, and a merge at order >= pageblock_order with a buddy of another
#: (mergeable) type retypes the buddy's pageblock to the freed page's ("Match buddy type").
FREE_6_15 = 3

@compiled("pages, zone, pageblock_type, nd, int, int, int", inline=True)
def rmqueue_fallback(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                     node: np.ndarray, order: int, start_mt: int, alloc_flags: int) -> int:
    """2.6.24 and 2.6.35 `__rmqueue_fallback()`: take the largest block from another type's list.

    For current_order from MAX_ORDER-1 down to `order`, for each type in `fallbacks[start_mt]`
    (RESERVE skipped): take the head block. A large block (order >= pageblock_order/2) or a
    RECLAIMABLE request moves the pageblock's free blocks to `start_mt` and claims the pageblock
    when that moved at least half of it. If no fallback list has anything, MIGRATE_RESERVE is
    used rather than failing (2.6.24 here; 2.6.35 `__rmqueue` retries `__rmqueue_smallest` with
    MIGRATE_RESERVE, the same thing).

    `node['claim_rule']` picks what differs:

    - CLAIM_2_6_24: a block of exactly pageblock_order retypes its pageblock (a larger one
      retypes none, beyond the claim above). The extfrag event reports the list the block came
      from and, as change_ownership, whether the pageblock's type is now the request's (the
      definition of the 3.19+ tracepoint; 2.6.24 has no tracepoint).
    - CLAIM_2_6_35: "Take ownership for orders >= pageblock_order": every pageblock of the block
      is retyped (`change_pageblock_range`). The event has the arguments of 2.6.35's
      `trace_mm_page_alloc_extfrag(page, order, current_order, start_migratetype,
      migratetype)`: `migratetype` is already start_migratetype when the pageblock's free pages
      were moved, and change_ownership is `alloc_migratetype == fallback_migratetype`.

    2.6.35 also moves and claims whenever `page_group_by_mobility_disabled`; the model never
    falls back with grouping off (every request and pageblock is UNMOVABLE, as in 2.6.24), so
    that clause has no counterpart here.

    CLAIM_6_1 runs `rmqueue_fallback_6_1` instead, which alone reads `alloc_flags` (6.1
    `__rmqueue_fallback(zone, order, start_migratetype, alloc_flags)`: ALLOC_NOFRAGMENT, and
    ALLOC_KSWAPD for the boost); 2.6.24 and 2.6.35 take no alloc_flags.
    """
    rule = node["claim_rule"]
    if rule == CLAIM_6_1:
        return rmqueue_fallback_6_1(pages, zone, pageblock_type, node, order, start_mt,
                                    alloc_flags)
    max_order = int(node["max_order"])
    pbo = int(node["pageblock_order"])
    fallbacks = node["fallbacks"][start_mt]
    for current_order in range(max_order - 1, order - 1, -1):
        for i in range(fallbacks.shape[0]):
            mt = fallbacks[i]
            if mt < 0:
                break
            if mt == MIGRATE_RESERVE:
                continue
            pfn = zone["head"][current_order, mt]
            if pfn < 0:
                continue
            fallback_mt = mt
            # If breaking a large block of pages, move all free pages to the preferred list.
            # If falling back for a reclaimable kernel allocation, be more aggressive.
            if current_order >= (pbo >> 1) or start_mt == MIGRATE_RECLAIMABLE:
                moved = move_freepages_block(pages, zone, pfn, start_mt, pbo)
                # Claim the whole block if over half of it is free.
                if moved >= (1 << (pbo - 1)):
                    if pageblock_type[pfn >> pbo] != start_mt:
                        node["stat"][_S_PAGEBLOCK_CLAIMED] += 1
                    pageblock_type[pfn >> pbo] = start_mt
                mt = start_mt
            list_del(pages, zone, pfn)
            zone["free_pages"] -= 1 << order
            if rule == CLAIM_2_6_35:
                # Take ownership for orders >= pageblock_order.
                if current_order >= pbo:
                    change_pageblock_range(pageblock_type, node, pfn, current_order, start_mt)
            elif current_order == pbo:
                if pageblock_type[pfn >> pbo] != start_mt:
                    node["stat"][_S_PAGEBLOCK_CLAIMED] += 1
                pageblock_type[pfn >> pbo] = start_mt
            expand(pages, zone, pfn, order, current_order, mt)
            if rule == CLAIM_2_6_35:
                log_extfrag(node, pfn, order, current_order, start_mt, mt,
                            1 if current_order < pbo else 0, 1 if mt == start_mt else 0)
            else:
                log_extfrag(node, pfn, order, current_order, start_mt, fallback_mt,
                            1 if current_order < pbo else 0,
                            1 if pageblock_type[pfn >> pbo] == start_mt else 0)
            return int(pfn)
    # Use MIGRATE_RESERVE rather than fail an allocation.
    pfn = rmqueue_smallest(pages, zone, order, MIGRATE_RESERVE, max_order)
    if pfn >= 0:
        node["stat"][_S_ALLOC_RESERVE] += 1
    return pfn


@compiled("pages, zone, pageblock_type, nd, int, int, int", inline=True)
def rmqueue(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray, node: np.ndarray,
            order: int, mt: int, alloc_flags: int) -> int:
    """2.6.24 `__rmqueue()`: the request's own lists first, then the fallback (6.1
    `__rmqueue(zone, order, migratetype, alloc_flags)` hands the request's alloc_flags on).

    CLAIM_6_15 runs 6.15's `__rmqueue` (`rmqueue_6_15`) with a fresh mode and the node's
    ALLOC_NOFRAGMENT (defrag_mode). With grouping off (vanilla 2.6.20, or too little memory)
    every request uses the one UNMOVABLE list per order and never falls back.
    """
    max_order = int(node["max_order"])
    if node["grouping"] == 0:
        return rmqueue_smallest(pages, zone, order, 0, max_order)
    if node["claim_rule"] == CLAIM_6_15:
        pfn, _ = rmqueue_6_15(pages, zone, pageblock_type, node, order, mt,
                              alloc_flags_nofragment(node, 0), RMQUEUE_NORMAL)
        return pfn
    pfn = rmqueue_smallest(pages, zone, order, mt, max_order)
    if pfn < 0:
        pfn = rmqueue_fallback(pages, zone, pageblock_type, node, order, mt, alloc_flags)
    return pfn


@compiled("pages, zone, pageblock_type, nd, int, int", inline=True)
def free_one_page(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                  node: np.ndarray, pfn: int, order: int) -> None:
    """`__free_one_page(page, pfn, zone, order, migratetype, FPI_NONE)`: `free_one_page_fpi`
    without FPI_TO_TAIL."""
    free_one_page_fpi(pages, zone, pageblock_type, node, pfn, order, 0)


@compiled("pages, zone, pageblock_type, nd, int, int, int", inline=True)
def free_one_page_fpi(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                      node: np.ndarray, pfn: int, order: int, to_tail: int) -> None:
    """2.6.24, 2.6.35 and 6.1 `__free_one_page()`: merge with free buddies, then add to a list.

    The list is that of the freed page's pageblock type (not the allocation's, nor the merged
    block's). Merging crosses pageblocks of different types: a buddy on any list is unlinked.
    A buddy outside the zone never merges (`page_is_buddy` checks the zone).

    2.6.24 adds the result at the head. With `node['free_tail']` FREE_2_6_35: "If this is not
    the largest possible page, check if the buddy of the next-highest order is free": when
    `order < MAX_ORDER-1` and `page_is_buddy(higher_page, higher_buddy, order + 1)` (the
    order+1 block holding the result, `pfn & ~(1 << order)`, and its buddy, both in the zone, the
    buddy a free block of order+1), the block goes to the TAIL, so it is less likely to be
    allocated before its own buddy is freed and they merge. 2.6.35's other condition,
    `pfn_valid_within(buddy)`, always holds: the model has no holes.

    FREE_6_1 (6.1 `__free_one_page`): the same test as `buddy_merge_likely()`, which gives up
    from `order >= MAX_ORDER - 2`; `to_tail` (FPI_TO_TAIL, boot's `__free_pages_core`) puts the
    block at the tail whatever its buddies (6.1 checks FPI_TO_TAIL first; page shuffling is off
    by default and not modelled). At `order >= pageblock_order` two buddies merge only when their
    pageblocks have the same type or both are mergeable (UNMOVABLE, RECLAIMABLE, MOVABLE:
    `migratetype_is_mergeable`), so a HIGHATOMIC or ISOLATE pageblock stays a block of its own.

    FREE_6_15 (6.15 `__free_one_page`, 6.10's "freelist migratetype hygiene"): the same, and a
    buddy merged at order >= pageblock_order whose pageblock has another type is retyped to the
    freed page's type (`set_pageblock_migratetype(buddy, migratetype)`: one pageblock, the one
    holding the buddy's first page), so the merged block's pageblocks match its list.
    """
    if node["grouping"] != 0:
        mt = pageblock_type[pfn >> node["pageblock_order"]]
    else:
        mt = 0
    free_one_page_mt(pages, zone, pageblock_type, node, pfn, order, mt, to_tail)


@compiled("pages, zone, pageblock_type, nd, int, int, int, int", inline=True)
def free_one_page_mt(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                     node: np.ndarray, pfn: int, order: int, mt: int, to_tail: int) -> None:
    """`__free_one_page(page, pfn, zone, order, migratetype, fpi)` (`free_one_page_fpi`) onto
    the lists of a migratetype the caller gives. 2.6.35's `free_pcppages_bulk` passes
    `page_private`, the type a per-cpu page was queued as, which need not be its pageblock's
    type by then."""
    rule = node["free_tail"]
    pbo = node["pageblock_order"]
    zone["free_pages"] += 1 << order
    max_order = node["max_order"]
    start = zone["start_pfn"]
    end = zone["end_pfn"]
    while order < max_order - 1:
        buddy = pfn ^ (1 << order)
        if buddy < start or buddy >= end:
            break
        if not (pages[buddy]["flags"] & PG_BUDDY) or pages[buddy]["order"] != order:
            break
        buddy_mt = mt
        if rule >= FREE_6_1 and order >= pbo and node["grouping"] != 0:
            buddy_mt = pageblock_type[buddy >> pbo]
            if buddy_mt != mt and (mt >= MIGRATE_PCPTYPES or buddy_mt >= MIGRATE_PCPTYPES):
                break
        list_del(pages, zone, buddy)
        if rule == FREE_6_15 and buddy_mt != mt:
            # 6.15: "Match buddy type. This ensures that an expand() down the line puts the
            # sub-blocks on the right freelists": set_pageblock_migratetype(buddy, mt), the
            # one pageblock holding the buddy's first page.
            pageblock_type[buddy >> pbo] = mt
        pfn &= ~(1 << order)
        order += 1
    if to_tail != 0:
        list_add_tail(pages, zone, order, mt, pfn)
        return
    if rule != FREE_2_6_24 and order < max_order - min(rule, FREE_6_1):
        # FREE_2_6_35: order < MAX_ORDER - 1; FREE_6_1 and FREE_6_15 (`buddy_merge_likely`:
        # `order >= MAX_PAGE_ORDER - 1` gives up): order < MAX_ORDER - 2.
        higher_page = pfn & ~(1 << order)
        higher_buddy = higher_page ^ (1 << (order + 1))
        if (start <= higher_page and higher_page < end and start <= higher_buddy
                and higher_buddy < end and (pages[higher_buddy]["flags"] & PG_BUDDY)
                and pages[higher_buddy]["order"] == order + 1):
            list_add_tail(pages, zone, order, mt, pfn)
            return
    list_add(pages, zone, order, mt, pfn)


@compiled("pages, zone, pageblock_type, nd, int, int, int", inline=True)
def rmqueue_flags(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                  node: np.ndarray, order: int, mt: int, alloc_flags: int) -> int:
    """`rmqueue` with the request's alloc_flags: 6.1 `rmqueue_buddy()` first tries
    `__rmqueue_smallest(zone, order, MIGRATE_HIGHATOMIC)` for a high-order ALLOC_HARDER request
    (`node['highatomic']`); everything else is `rmqueue`. 6.15 `rmqueue_buddy()` (CLAIM_6_15)
    runs `__rmqueue` with the request's flags (plus defrag_mode's ALLOC_NOFRAGMENT) and a fresh
    `rmqm = RMQUEUE_NORMAL`, and when that fails gives an ALLOC_HARDER request of any order the
    HIGHATOMIC lists."""
    if node["highatomic"] != 0 and order > 0 and (alloc_flags & ALLOC_HARDER):
        pfn = rmqueue_smallest(pages, zone, order, MIGRATE_HIGHATOMIC, int(node["max_order"]))
        if pfn >= 0:
            return pfn
    if node["claim_rule"] == CLAIM_6_15 and node["grouping"] != 0:
        pfn, _ = rmqueue_6_15(pages, zone, pageblock_type, node, order, mt,
                              alloc_flags_nofragment(node, alloc_flags), RMQUEUE_NORMAL)
        # 6.15: "If the allocation fails, allow OOM handling and order-0 (atomic) allocs
        # access to HIGHATOMIC reserves" (ALLOC_OOM|ALLOC_NON_BLOCK; the model's ALLOC_HARDER).
        if pfn < 0 and node["highatomic"] != 0 and (alloc_flags & ALLOC_HARDER):
            pfn = rmqueue_smallest(pages, zone, order, MIGRATE_HIGHATOMIC,
                                   int(node["max_order"]))
        return pfn
    return rmqueue(pages, zone, pageblock_type, node, order, mt, alloc_flags)

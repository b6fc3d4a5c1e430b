"""The buddy allocator's free lists, split and merge: `mm/page_alloc.c` of Linux 2.6.24 and 2.6.35.

Every function here is compiled with numba and runs unchanged as plain Python when
`NUMBA_DISABLE_JIT=1` (the tests use that to step through it). Functions take the record arrays of
`models.mm.state` and plain integers, and follow the kernel function they are named after:

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
    MIGRATE_MOVABLE,
    MIGRATE_PCPTYPES,
    MIGRATE_RECLAIMABLE,
    MIGRATE_RESERVE,
    MIGRATE_UNMOVABLE,
    PG_BUDDY,
    PG_HEAD,
    PG_LRU,
)
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.prefetch import prefetch
from fragsim.models.mm.state import EXTFRAG_RING, STAT

__all__ = [
    "CLAIM_2_6_24",
    "CLAIM_2_6_35",
    "CLAIM_6_1",
    "FREE_2_6_24",
    "FREE_2_6_35",
    "FREE_6_1",
    "can_steal_fallback",
    "change_pageblock_range",
    "expand",
    "find_suitable_fallback",
    "free_one_page",
    "free_one_page_fpi",
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

_S_EXTFRAG_FALLBACK = STAT["extfrag_fallback"]
_S_EXTFRAG_FRAGMENTING = STAT["extfrag_fragmenting"]
_S_EXTFRAG_CHANGE_OWNERSHIP = STAT["extfrag_change_ownership"]
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

#: Free rules (`node['free_tail']`): where `__free_one_page` adds the merged block.
#: 2.6.24: always at the head.
FREE_2_6_24 = 0
#: 2.6.35: at the tail when the next-higher-order buddy is free (below MAX_ORDER-1).
FREE_2_6_35 = 1
#: 6.1: `buddy_merge_likely` (below MAX_ORDER-2), and no merge at order >= pageblock_order
#: between pageblocks of different types when either is not mergeable (HIGHATOMIC, ISOLATE).
FREE_6_1 = 2


@compiled("zones, int", inline=True)
def zone_of_pfn(zones: np.ndarray, pfn: int) -> int:
    """The zone index holding `pfn`, or -1 (`page_zone()`)."""
    for z in range(zones.shape[0]):
        if zones[z]["start_pfn"] <= pfn < zones[z]["end_pfn"]:
            return z
    return -1


@compiled("pages, zone, int, int, int", inline=True)
def list_add(pages: np.ndarray, zone: np.ndarray, order: int, mt: int, pfn: int) -> None:
    """Add the free block at `pfn` at the head of `free_area[order].free_list[mt]`.

    Models `list_add(&page->lru, ...)`, `set_page_order()` and `area->nr_free++`.
    """
    head = zone["head"][order, mt]
    pages[pfn]["next"] = head
    pages[pfn]["prev"] = -1
    if head >= 0:
        pages[head]["prev"] = pfn
    else:
        zone["tail"][order, mt] = pfn
    zone["head"][order, mt] = pfn
    pages[pfn]["order"] = order
    pages[pfn]["mt"] = mt
    pages[pfn]["flags"] = (pages[pfn]["flags"] & (0xFF ^ PG_HEAD)) | PG_BUDDY
    zone["nr_free"][order] += 1
    zone["nr_free_mt"][order, mt] += 1


@compiled("pages, zone, int, int, int", inline=True)
def list_add_tail(pages: np.ndarray, zone: np.ndarray, order: int, mt: int, pfn: int) -> None:
    """Add the free block at `pfn` at the tail of `free_area[order].free_list[mt]`.

    Models `list_add_tail(&page->lru, ...)` (2.6.35 `__free_one_page`), `set_page_order()` and
    `area->nr_free++`.
    """
    tail = zone["tail"][order, mt]
    pages[pfn]["prev"] = tail
    pages[pfn]["next"] = -1
    if tail >= 0:
        pages[tail]["next"] = pfn
    else:
        zone["head"][order, mt] = pfn
    zone["tail"][order, mt] = pfn
    pages[pfn]["order"] = order
    pages[pfn]["mt"] = mt
    pages[pfn]["flags"] = (pages[pfn]["flags"] & (0xFF ^ PG_HEAD)) | PG_BUDDY
    zone["nr_free"][order] += 1
    zone["nr_free_mt"][order, mt] += 1


@compiled("pages, zone, int", inline=True)
def list_del(pages: np.ndarray, zone: np.ndarray, pfn: int) -> None:
    """Unlink the free block at `pfn` from its list: `list_del`, `rmv_page_order`, `nr_free--`."""
    order = int(pages[pfn]["order"])
    mt = pages[pfn]["mt"]
    nxt = pages[pfn]["next"]
    prv = pages[pfn]["prev"]
    if prv >= 0:
        pages[prv]["next"] = nxt
    else:
        zone["head"][order, mt] = nxt
    if nxt >= 0:
        pages[nxt]["prev"] = prv
    else:
        zone["tail"][order, mt] = prv
    pages[pfn]["next"] = -1
    pages[pfn]["prev"] = -1
    pages[pfn]["flags"] &= 0xFF ^ PG_BUDDY
    zone["nr_free"][order] -= 1
    zone["nr_free_mt"][order, mt] -= 1


@compiled("pages, zone, int, int", inline=True)
def list_move(pages: np.ndarray, zone: np.ndarray, pfn: int, mt: int) -> None:
    """Move a free block to the head of `free_list[mt]` of its order (`list_move` in
    `move_freepages`)."""
    order = int(pages[pfn]["order"])
    list_del(pages, zone, pfn)
    list_add(pages, zone, order, mt, pfn)


@compiled("pages, zone, int, int", inline=True)
def list_move_tail(pages: np.ndarray, zone: np.ndarray, pfn: int, mt: int) -> None:
    """Move a free block to the tail of `free_list[mt]` of its order (6.1 `move_to_free_list`,
    a `list_move_tail`)."""
    order = int(pages[pfn]["order"])
    list_del(pages, zone, pfn)
    list_add_tail(pages, zone, order, mt, pfn)


@compiled("pages, zone, int, int, int, int", inline=True)
def expand(pages: np.ndarray, zone: np.ndarray, pfn: int, low: int, high: int, mt: int) -> None:
    """Split a block of order `high` at `pfn` down to order `low`, 2.6.24 `expand()`.

    Each upper half `pfn + 2^high` goes to the head of `free_list[mt]` of order `high`; the
    caller keeps the lowest part.
    """
    while high > low:
        high -= 1
        list_add(pages, zone, high, mt, pfn + (1 << high))


@compiled("pages, zone, int, int, int", inline=True)
def rmqueue_smallest(pages: np.ndarray, zone: np.ndarray, order: int, mt: int,
                     max_order: int) -> int:
    """2.6.24 `__rmqueue_smallest()`: the head of the first non-empty `free_list[mt]` from
    `order` up.

    Returns the pfn of the allocated block (removed from the lists, already expanded) or -1.
    """
    for current_order in range(order, max_order):
        pfn = zone["head"][current_order, mt]
        if pfn < 0:
            continue
        list_del(pages, zone, pfn)
        # The next allocation from this list takes the new head and rewrites the entry after
        # it: ask for that record now (cache only; no effect on the lists).
        nxt = zone["head"][current_order, mt]
        if nxt >= 0 and pages[nxt]["next"] >= 0:
            prefetch(pages, pages[nxt]["next"])
        zone["free_pages"] -= 1 << order
        expand(pages, zone, pfn, order, current_order, mt)
        return int(pfn)
    return -1


@compiled("pages, zone, int, int, int", inline=True)
def move_freepages_block(pages: np.ndarray, zone: np.ndarray, pfn: int, mt: int,
                         pageblock_order: int) -> int:
    """2.6.24 `move_freepages_block()`: move every free block of `pfn`'s pageblock to `mt`'s lists.

    If the pageblock ends past the zone's end nothing moves; if it starts before the zone, the
    walk starts at `pfn`. Returns the number of pages moved (a free block larger than a pageblock
    counts whole, as in the kernel).
    """
    start = pfn & ~((1 << pageblock_order) - 1)
    end = start + (1 << pageblock_order) - 1
    if start < zone["start_pfn"]:
        start = pfn
    if end >= zone["end_pfn"]:
        return 0
    moved = 0
    p = start
    while p <= end:
        if not (pages[p]["flags"] & PG_BUDDY):
            p += 1
            continue
        order = int(pages[p]["order"])
        list_move(pages, zone, p, mt)
        p += 1 << order
        moved += 1 << order
    return moved


@compiled("nd, int, int, int, int, int, int, int", inline=True)
def log_extfrag(node: np.ndarray, pfn: int, alloc_order: int, fallback_order: int,
                alloc_mt: int, fallback_mt: int, fragmenting: int, change_ownership: int) -> None:
    """Append one `mm_page_alloc_extfrag` event to the node's ring and count it."""
    n = node["extfrag_count"]
    row = node["extfrag"][n % EXTFRAG_RING]
    row[0] = pfn
    row[1] = alloc_order
    row[2] = fallback_order
    row[3] = alloc_mt
    row[4] = fallback_mt
    row[5] = fragmenting
    row[6] = change_ownership
    node["extfrag_count"] = n + 1
    node["stat"][_S_EXTFRAG_FALLBACK] += 1
    node["fallback_order"][alloc_order] += 1
    if fragmenting:
        node["stat"][_S_EXTFRAG_FRAGMENTING] += 1
    if change_ownership:
        node["stat"][_S_EXTFRAG_CHANGE_OWNERSHIP] += 1


@compiled("pageblock_type, nd, int, int, int", inline=True)
def change_pageblock_range(pageblock_type: np.ndarray, node: np.ndarray, pfn: int,
                           start_order: int, mt: int) -> None:
    """2.6.35 `change_pageblock_range()`: retype the `2^(start_order - pageblock_order)`
    pageblocks of the block at `pfn` to `mt` (counting each one that changes as claimed)."""
    pbo = int(node["pageblock_order"])
    block = pfn >> pbo
    for i in range(1 << (start_order - pbo)):
        if pageblock_type[block + i] != mt:
            node["stat"][_S_PAGEBLOCK_CLAIMED] += 1
        pageblock_type[block + i] = mt


@compiled("pages, zone, pageblock_type, nd, int, int", inline=True)
def rmqueue_fallback(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                     node: np.ndarray, order: int, start_mt: int) -> int:
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

    CLAIM_6_1 runs `rmqueue_fallback_6_1` instead.
    """
    rule = node["claim_rule"]
    if rule == CLAIM_6_1:
        return rmqueue_fallback_6_1(pages, zone, pageblock_type, node, order, start_mt)
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


@compiled("pages, zone, pageblock_type, nd, int, int", inline=True)
def rmqueue(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray, node: np.ndarray,
            order: int, mt: int) -> int:
    """2.6.24 `__rmqueue()`: the request's own lists first, then the fallback.

    With grouping off (vanilla 2.6.20, or too little memory) every request uses the one
    UNMOVABLE list per order and never falls back.
    """
    max_order = int(node["max_order"])
    if node["grouping"] == 0:
        return rmqueue_smallest(pages, zone, order, 0, max_order)
    pfn = rmqueue_smallest(pages, zone, order, mt, max_order)
    if pfn < 0:
        pfn = rmqueue_fallback(pages, zone, pageblock_type, node, order, mt)
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
    """
    rule = node["free_tail"]
    pbo = node["pageblock_order"]
    if node["grouping"] != 0:
        mt = pageblock_type[pfn >> pbo]
    else:
        mt = 0
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
        if rule == FREE_6_1 and order >= pbo and node["grouping"] != 0:
            buddy_mt = pageblock_type[buddy >> pbo]
            if buddy_mt != mt and (mt >= MIGRATE_PCPTYPES or buddy_mt >= MIGRATE_PCPTYPES):
                break
        list_del(pages, zone, buddy)
        pfn &= ~(1 << order)
        order += 1
    if to_tail != 0:
        list_add_tail(pages, zone, order, mt, pfn)
        return
    if rule != FREE_2_6_24 and order < max_order - rule:
        # FREE_2_6_35: order < MAX_ORDER - 1; FREE_6_1: order < MAX_ORDER - 2.
        higher_page = pfn & ~(1 << order)
        higher_buddy = higher_page ^ (1 << (order + 1))
        if (start <= higher_page and higher_page < end and start <= higher_buddy
                and higher_buddy < end and (pages[higher_buddy]["flags"] & PG_BUDDY)
                and pages[higher_buddy]["order"] == order + 1):
            list_add_tail(pages, zone, order, mt, pfn)
            return
    list_add(pages, zone, order, mt, pfn)


# --- Linux 6.1 ---------------------------------------------------------------------------------

@compiled("pageblock_type, nd, int, int", inline=True)
def set_pageblock_migratetype(pageblock_type: np.ndarray, node: np.ndarray, pfn: int,
                              mt: int) -> None:
    """`set_pageblock_migratetype()` of the pageblock holding `pfn`, counting a change as a
    claim (`pageblock_claimed`)."""
    block = pfn >> node["pageblock_order"]
    if pageblock_type[block] != mt:
        node["stat"][_S_PAGEBLOCK_CLAIMED] += 1
    pageblock_type[block] = mt


@compiled("pages, zone, int, int, int", inline=True)
def move_freepages_block_tail(pages: np.ndarray, zone: np.ndarray, pfn: int, mt: int,
                              pageblock_order: int) -> tuple[int, int]:
    """6.1 `move_freepages_block(zone, page, mt, &num_movable)`: (pages moved, movable pages).

    The bounds are 2.6.24's (nothing moves when the pageblock ends past the zone; the walk
    starts at `pfn` when the pageblock starts before it). Each free block goes to the TAIL of
    `free_list[mt]` (`move_to_free_list`). Every other pfn that is PageLRU counts as movable
    (the model has no non-LRU movable pages, `__PageMovable`).
    """
    start = pfn & ~((1 << pageblock_order) - 1)
    end = start + (1 << pageblock_order) - 1
    if start < zone["start_pfn"]:
        start = pfn
    if end >= zone["end_pfn"]:
        return 0, 0
    moved = 0
    movable = 0
    p = start
    while p <= end:
        if not (pages[p]["flags"] & PG_BUDDY):
            if pages[p]["flags"] & PG_LRU:
                movable += 1
            p += 1
            continue
        order = int(pages[p]["order"])
        list_move_tail(pages, zone, p, mt)
        p += 1 << order
        moved += 1 << order
    return moved, movable


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


@compiled("pages, zone, pageblock_type, nd, int, int, int", inline=True)
def steal_suitable_fallback(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                            node: np.ndarray, pfn: int, start_mt: int, whole_block: int) -> None:
    """6.1 `steal_suitable_fallback()` for the free block at `pfn` (watermark boosting left out).

    A block in a HIGHATOMIC pageblock only moves itself. A block of order >= pageblock_order
    retypes its pageblocks (`change_pageblock_range`) and moves itself. Otherwise, when
    `whole_block` (can_steal), every free page of the pageblock moves to `start_mt`'s lists and
    the pageblock is claimed when free plus "alike" pages are at least half of it: alike are
    the LRU pages for a MOVABLE request, the allocated pages that are not LRU for another request
    falling back to a MOVABLE pageblock, else none. The moved block goes to the tail of
    `free_list[start_mt]` (`move_to_free_list`).
    """
    pbo = int(node["pageblock_order"])
    current_order = int(pages[pfn]["order"])
    old_block_type = pageblock_type[pfn >> pbo]
    if old_block_type != MIGRATE_HIGHATOMIC:
        if current_order >= pbo:
            # Take ownership for orders >= pageblock_order.
            change_pageblock_range(pageblock_type, node, pfn, current_order, start_mt)
        elif whole_block != 0:
            free_pages, movable_pages = move_freepages_block_tail(pages, zone, pfn, start_mt,
                                                                  pbo)
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


@compiled("pages, zone, pageblock_type, nd, int, int", inline=True)
def rmqueue_fallback_6_1(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                         node: np.ndarray, order: int, start_mt: int) -> int:
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
    ALLOC_NOFRAGMENT (5.0) is not modelled: the search always starts from `order`.
    """
    max_order = int(node["max_order"])
    pbo = int(node["pageblock_order"])
    fallback_mt = -1
    can_steal = False
    current_order = max_order - 1
    while current_order >= order:
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
                            1 if can_steal else 0)
    log_extfrag(node, pfn, order, current_order, start_mt, fallback_mt,
                1 if current_order < pbo else 0,
                1 if pageblock_type[pfn >> pbo] == start_mt else 0)
    return rmqueue_smallest(pages, zone, order, start_mt, max_order)


@compiled("pages, zone, pageblock_type, nd, int, int, int", inline=True)
def rmqueue_flags(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                  node: np.ndarray, order: int, mt: int, alloc_flags: int) -> int:
    """`rmqueue` with the request's alloc_flags: 6.1 `rmqueue_buddy()` first tries
    `__rmqueue_smallest(zone, order, MIGRATE_HIGHATOMIC)` for a high-order ALLOC_HARDER request
    (`node['highatomic']`); everything else is `rmqueue`."""
    if node["highatomic"] != 0 and order > 0 and (alloc_flags & ALLOC_HARDER):
        pfn = rmqueue_smallest(pages, zone, order, MIGRATE_HIGHATOMIC, int(node["max_order"]))
        if pfn >= 0:
            return pfn
    return rmqueue(pages, zone, pageblock_type, node, order, mt)

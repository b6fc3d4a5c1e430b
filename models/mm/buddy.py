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
- `node['free_tail']` 1: `__free_one_page` adds a merged block at the tail of its list when its
  next-higher-order buddy is free.

Vanilla 2.6.20 runs the same code with `node['grouping'] == 0`: every block lives on the
UNMOVABLE list of its order, which is the single list per order of that kernel, and there is no
fallback. The kernel keeps no per-type counts; `nr_free_mt` is the model's own bookkeeping so that
pagetypeinfo need not walk lists.
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.constants import (
    MIGRATE_RECLAIMABLE,
    MIGRATE_RESERVE,
    PG_BUDDY,
    PG_HEAD,
)
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.prefetch import prefetch
from fragsim.models.mm.state import EXTFRAG_RING, STAT

__all__ = [
    "CLAIM_2_6_24",
    "CLAIM_2_6_35",
    "change_pageblock_range",
    "expand",
    "free_one_page",
    "free_one_page_mt",
    "list_add",
    "list_add_tail",
    "list_del",
    "list_move",
    "log_extfrag",
    "move_freepages_block",
    "rmqueue",
    "rmqueue_fallback",
    "rmqueue_smallest",
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
    """
    max_order = int(node["max_order"])
    pbo = int(node["pageblock_order"])
    rule = node["claim_rule"]
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
    """2.6.24 and 2.6.35 `__free_one_page()`: merge with free buddies, then add to a list.

    The list is that of the freed page's pageblock type (not the allocation's, nor the merged
    block's). Merging crosses pageblocks of different types: a buddy on any list is unlinked.
    A buddy outside the zone never merges (`page_is_buddy` checks the zone).

    2.6.24 adds the result at the head. With `node['free_tail']` (2.6.35): "If this is not the
    largest possible page, check if the buddy of the next-highest order is free": when
    `order < MAX_ORDER-1` and `page_is_buddy(higher_page, higher_buddy, order + 1)` (the
    order+1 block holding the result, `pfn & ~(1 << order)`, and its buddy, both in the zone, the
    buddy a free block of order+1), the block goes to the TAIL, so it is less likely to be
    allocated before its own buddy is freed and they merge. 2.6.35's other condition,
    `pfn_valid_within(buddy)`, always holds: the model has no holes.
    """
    if node["grouping"] != 0:
        mt = pageblock_type[pfn >> node["pageblock_order"]]
    else:
        mt = 0
    free_one_page_mt(pages, zone, node, pfn, order, mt)


@compiled("pages, zone, nd, int, int, int", inline=True)
def free_one_page_mt(pages: np.ndarray, zone: np.ndarray, node: np.ndarray, pfn: int,
                     order: int, mt: int) -> None:
    """2.6.35 `__free_one_page(page, zone, order, migratetype)`: `free_one_page` onto the lists
    of a migratetype the caller gives. 2.6.35's `free_pcppages_bulk` passes `page_private`, the
    type a per-cpu page was queued as, which need not be its pageblock's type by then."""
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
        list_del(pages, zone, buddy)
        pfn &= ~(1 << order)
        order += 1
    if node["free_tail"] != 0 and order < max_order - 1:
        higher_page = pfn & ~(1 << order)
        higher_buddy = higher_page ^ (1 << (order + 1))
        if (start <= higher_page and higher_page < end and start <= higher_buddy
                and higher_buddy < end and (pages[higher_buddy]["flags"] & PG_BUDDY)
                and pages[higher_buddy]["order"] == order + 1):
            list_add_tail(pages, zone, order, mt, pfn)
            return
    list_add(pages, zone, order, mt, pfn)

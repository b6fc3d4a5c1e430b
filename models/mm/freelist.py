"""The buddy allocator's free-list primitives: `mm/page_alloc.c` (2.6.24; 6.1 where named).

Split from `models.mm.buddy` (which re-exports every name here): the doubly linked lists
through `pages['next'/'prev']` (`list_add` at the head, `list_add_tail`, `list_del`,
`list_move`, `list_move_tail`), `expand`, `__rmqueue_smallest`, `move_freepages_block` (2.6.24,
to the head; 6.1's, to the tail and counting movable pages), `change_pageblock_range`,
`set_pageblock_migratetype` and the `mm_page_alloc_extfrag` ring. Compiled with numba; plain
Python under `NUMBA_DISABLE_JIT=1`.
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.constants import (
    MIGRATE_HIGHATOMIC,
    MIGRATE_PCPTYPES,
    PG_BUDDY,
    PG_HEAD,
    PG_LRU,
)
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.prefetch import prefetch
from fragsim.models.mm.state import EXTFRAG_RING, STAT

__all__ = [
    "change_pageblock_range",
    "expand",
    "free_block_of_order",
    "list_add",
    "list_add_tail",
    "list_del",
    "list_move",
    "list_move_tail",
    "log_extfrag",
    "move_freepages_block",
    "move_freepages_block_tail",
    "rmqueue_smallest",
    "set_pageblock_migratetype",
    "zone_of_pfn",
]

_S_EXTFRAG_FALLBACK = STAT["extfrag_fallback"]
_S_EXTFRAG_FRAGMENTING = STAT["extfrag_fragmenting"]
_S_EXTFRAG_CHANGE_OWNERSHIP = STAT["extfrag_change_ownership"]
_S_PAGEBLOCK_CLAIMED = STAT["pageblock_claimed"]


@compiled("zones, int", inline=True)
def zone_of_pfn(zones: np.ndarray, pfn: int) -> int:
    """The zone index holding `pfn`, or -1 (`page_zone()`)."""
    for z in range(zones.shape[0]):
        if zones[z]["start_pfn"] <= pfn < zones[z]["end_pfn"]:
            return z
    return -1


@compiled("pages, zone, int, int, int", inline=True)
def _set_free(pages: np.ndarray, zone: np.ndarray, order: int, mt: int, pfn: int) -> None:
    """`set_page_order()`, PageBuddy and `area->nr_free++` of a block just linked into
    `free_area[order].free_list[mt]`."""
    pages[pfn]["order"] = order
    pages[pfn]["mt"] = mt
    pages[pfn]["flags"] = (pages[pfn]["flags"] & (0xFF ^ PG_HEAD)) | PG_BUDDY
    zone["nr_free"][order] += 1
    zone["nr_free_mt"][order, mt] += 1


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
    _set_free(pages, zone, order, mt, pfn)


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
    _set_free(pages, zone, order, mt, pfn)


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


@compiled("zone, int, bool", inline=True)
def free_block_of_order(zone: np.ndarray, order: int, harder: bool) -> bool:
    """The tail of 6.1 (and 6.15) `__zone_watermark_ok`: "For a high-order request, check at
    least one suitable page is free": a block of `order` or more on a MIGRATE_PCPTYPES list,
    or on the HIGHATOMIC list when the request may use it (`harder`)."""
    for o in range(order, zone["nr_free"].shape[0]):
        if zone["nr_free"][o] == 0:
            continue
        for mt in range(MIGRATE_PCPTYPES):
            if zone["nr_free_mt"][o, mt] != 0:
                return True
        if harder and zone["nr_free_mt"][o, MIGRATE_HIGHATOMIC] != 0:
            return True
    return False

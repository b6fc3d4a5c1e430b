"""LRU lists and what a page holds: 2.6.24 `mm/swap.c` and the list helpers of `mm/vmscan.c`.

Anonymous and page-cache pages (order 0) sit on a zone's LRU lists, linked through the same
`pages['next'/'prev']` fields the buddy lists use (a page is never on both, as `page->lru`).
2.6.24 has one inactive and one active list per zone (anon and file mixed; the split LRU came in
2.6.28), so the model uses `LRU_INACTIVE` (0) and `LRU_ACTIVE` (1) of the four slots. A zone
with `split_lru` (6.1's reclaim, `models.mm.reclaim_6_1`) keeps anonymous pages on lists 0
and 1 and page-cache pages on lists 2 and 3 (6.1 `enum lru_list`: LRU_INACTIVE_ANON,
LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE; `folio_lru_list`). The kernel keeps 6.1's
lists per node (`lruvec`); the model keeps them per zone.

- new pages go to the head (`lru_cache_add`: the page cache onto the inactive list;
  `lru_cache_add_active`: new anonymous pages onto the active list, as `do_anonymous_page` does);
- reclaim scans from the tail;
- `mark_page_accessed`: inactive,unreferenced -> inactive,referenced -> active,unreferenced ->
  active,referenced.

Reclaimable slab pages are not on the LRU; for them `pages['next']` holds the number of objects
still in use (the kernel's `page->inuse`, which shares `struct page` space with `lru` the same way).
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.buddy import zone_of_pfn
from fragsim.models.mm.constants import (
    KIND_ANON,
    KIND_FILE,
    KIND_FILE_MAPPED,
    PG_ACTIVE,
    PG_DIRTY,
    PG_HEAD,
    PG_LRU,
    PG_REFERENCED,
)
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.state import KIND_SHIFT, LRU_INACTIVE_FILE

LRU_INACTIVE = 0
LRU_ACTIVE = 1

__all__ = [
    "LRU_ACTIVE",
    "LRU_INACTIVE",
    "lru_add",
    "lru_add_batch",
    "lru_add_tail",
    "lru_del",
    "mark_page_accessed",
    "mark_accessed_batch",
    "new_anon_active",
    "page_kind",
    "set_dirty_batch",
]


def new_anon_active(policy_reclaim: str) -> bool:
    """Whether a new anonymous page goes on the active list: 2.6.24 `lru_cache_add_active`;
    from 5.9 `lru_cache_add_inactive_or_unevictable` puts it on the inactive anon list (the
    6.1 reclaim, `Policy.reclaim`)."""
    return policy_reclaim != "6.1"


@compiled("pages, int", inline=True)
def page_kind(pages: np.ndarray, pfn: int) -> int:
    """The KIND_* of an allocated page."""
    return int((pages[pfn]["mt"] >> KIND_SHIFT) & 0x0F)


@compiled("pages, zone, int", inline=True)
def lru_base(pages: np.ndarray, zone: np.ndarray, pfn: int) -> int:
    """The inactive list of the page's type: 0, or on a split LRU (`zone['split_lru']`) 2 for
    a page-cache page (6.1 `folio_lru_list`: `LRU_FILE * folio_is_file_lru(folio)`)."""
    if zone["split_lru"]:
        kind = page_kind(pages, pfn)
        if kind in (KIND_FILE, KIND_FILE_MAPPED):
            return LRU_INACTIVE_FILE
    return LRU_INACTIVE


@compiled("pages, zone, int", inline=True)
def lru_index(pages: np.ndarray, zone: np.ndarray, pfn: int) -> int:
    """The LRU list a page on the LRU is on: its type's inactive list, + 1 if active."""
    return lru_base(pages, zone, pfn) + (LRU_ACTIVE if pages[pfn]["flags"] & PG_ACTIVE else 0)


@compiled("pages, zone, int, bool", inline=True)
def lru_add(pages: np.ndarray, zone: np.ndarray, pfn: int, active: bool) -> None:
    """`add_page_to_active_list` / `add_page_to_inactive_list`: at the head (newest)."""
    lru = lru_base(pages, zone, pfn) + (LRU_ACTIVE if active else 0)
    head = zone["lru_head"][lru]
    pages[pfn]["next"] = head
    pages[pfn]["prev"] = -1
    if head >= 0:
        pages[head]["prev"] = pfn
    else:
        zone["lru_tail"][lru] = pfn
    zone["lru_head"][lru] = pfn
    zone["nr_lru"][lru] += 1
    if active:
        pages[pfn]["flags"] |= PG_LRU | PG_ACTIVE
    else:
        pages[pfn]["flags"] = (pages[pfn]["flags"] & (0xFF ^ PG_ACTIVE)) | PG_LRU


@compiled("pages, zone, int", inline=True)
def lru_add_tail(pages: np.ndarray, zone: np.ndarray, pfn: int) -> None:
    """`list_move_tail(&page->lru, &zone->inactive_list)`: the page is the next one scanned
    (on a split LRU, of its type's inactive list: 6.1 `lruvec_add_folio_tail`)."""
    lru = lru_base(pages, zone, pfn)
    tail = zone["lru_tail"][lru]
    pages[pfn]["prev"] = tail
    pages[pfn]["next"] = -1
    if tail >= 0:
        pages[tail]["next"] = pfn
    else:
        zone["lru_head"][lru] = pfn
    zone["lru_tail"][lru] = pfn
    zone["nr_lru"][lru] += 1
    pages[pfn]["flags"] = (pages[pfn]["flags"] & (0xFF ^ PG_ACTIVE)) | PG_LRU


@compiled("pages, zone, int", inline=True)
def lru_del(pages: np.ndarray, zone: np.ndarray, pfn: int) -> None:
    """`del_page_from_lru`: unlink from whichever LRU list it is on; clears PG_LRU (not ACTIVE)."""
    lru = lru_index(pages, zone, pfn)
    nxt = pages[pfn]["next"]
    prv = pages[pfn]["prev"]
    if prv >= 0:
        pages[prv]["next"] = nxt
    else:
        zone["lru_head"][lru] = nxt
    if nxt >= 0:
        pages[nxt]["prev"] = prv
    else:
        zone["lru_tail"][lru] = prv
    pages[pfn]["next"] = -1
    pages[pfn]["prev"] = -1
    pages[pfn]["flags"] &= 0xFF ^ PG_LRU
    zone["nr_lru"][lru] -= 1


@compiled("pages, zones, int")
def mark_page_accessed(pages: np.ndarray, zones: np.ndarray, pfn: int) -> bool:
    """2.6.24 `mark_page_accessed()` (6.1 `folio_mark_accessed`): second chance, a referenced
    inactive page is activated. Returns whether it was (`activate_page`/`folio_activate`
    count PGACTIVATE)."""
    flags = pages[pfn]["flags"]
    if not (flags & PG_ACTIVE) and (flags & PG_REFERENCED) and (flags & PG_LRU):
        zone = zones[zone_of_pfn(zones, pfn)]
        lru_del(pages, zone, pfn)
        pages[pfn]["flags"] &= 0xFF ^ PG_REFERENCED
        lru_add(pages, zone, pfn, True)
        return True
    if not (flags & PG_REFERENCED):
        pages[pfn]["flags"] |= PG_REFERENCED
    return False


@compiled("pages, zones, const int[]")
def mark_accessed_batch(pages: np.ndarray, zones: np.ndarray, pfns: np.ndarray) -> int:
    """`mark_page_accessed` for each pfn (allocated LRU pages; others only get PG_REFERENCED).
    Returns the pages activated (the caller counts them as pgactivate)."""
    activated = 0
    for i in range(pfns.shape[0]):
        if mark_page_accessed(pages, zones, pfns[i]):
            activated += 1
    return activated


@compiled("pages, zones, const int[], const int[]")
def lru_add_batch(pages: np.ndarray, zones: np.ndarray, pfns: np.ndarray,
                  active: np.ndarray) -> int:
    """Put allocated order-0 anonymous or file pages on their zone's LRU (`lru_cache_add[_active]`).

    Pages of another kind, free pages, tails and pages already on the LRU are skipped; returns
    how many were added.
    """
    added = 0
    for i in range(pfns.shape[0]):
        pfn = pfns[i]
        flags = pages[pfn]["flags"]
        if not (flags & PG_HEAD) or (flags & PG_LRU) or pages[pfn]["order"] != 0:
            continue
        kind = page_kind(pages, pfn)
        if kind != KIND_ANON and kind != KIND_FILE and kind != KIND_FILE_MAPPED:
            continue
        lru_add(pages, zones[zone_of_pfn(zones, pfn)], pfn, active[i] != 0)
        added += 1
    return added


@compiled("pages, const int[], bool")
def set_dirty_batch(pages: np.ndarray, pfns: np.ndarray, dirty: bool) -> None:
    """Set or clear PG_DIRTY (a written page-cache page; anonymous pages are dirty by nature)."""
    for i in range(pfns.shape[0]):
        if dirty:
            pages[pfns[i]]["flags"] |= PG_DIRTY
        else:
            pages[pfns[i]]["flags"] &= 0xFF ^ PG_DIRTY

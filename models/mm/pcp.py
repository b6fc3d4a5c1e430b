"""Per-cpu page lists (order 0 only): `struct per_cpu_pageset` of Linux 2.6.24 and 2.6.35
`mm/page_alloc.c`. (6.1's per-order lists are `models.mm.pcp_6_1`; the drains and Python entry
points here serve both.)

Each zone keeps, per cpu, two lists of order-0 pages taken from the buddy allocator: `pcp[0]`
(hot) and `pcp[1]` (cold), each with a `count`, a `high` mark and a `batch`. In 2.6.24 they are
two separate lists (the single list with cold pages at its tail came in 2.6.25):

- `buffered_rmqueue()` (order 0) uses `pcp[cold]`: an empty list is refilled with
  `rmqueue_bulk(batch)` of the request's migratetype; the list is searched from its head for a
  page whose `page_private` (the migratetype it was queued as) is the request's; if none, it is
  refilled again and the head is taken, whatever its type;
- `rmqueue_bulk()` takes pages one at a time with `__rmqueue()` and records the *requested*
  migratetype in each, even for pages that came from a fallback list. Each page is added after
  the previous one, so a refill sits at the head of the list in the order the buddy gave it
  (the 2.6.24 fix that keeps split pages in pfn order for I/O merging);
- `free_hot_cold_page()` records the page's *pageblock* type, adds it at the head of
  `pcp[cold]`, and when `count >= high` hands `batch` pages back with `free_pages_bulk()`,
  taken from the tail, each merged by `__free_one_page()`;
- `__drain_pages(cpu)` empties both lists of every zone (`drain_all_local_pages()`: every cpu;
  the 2.6.24 slow path calls it after direct reclaim for order > 0);
- `zone_batchsize()` and `setup_pageset()` size the lists from the zone's present pages.

Pages on a per-cpu list are allocated as far as the buddy allocator knows: they are not in
NR_FREE_PAGES nor on a free list. In the model they carry PG_PCP (neither PG_BUDDY nor PG_HEAD),
order 0, their `page_private` migratetype in `pages['mt']`, and link through `pages['next'/'prev']`.
A zone's lists are `zones['pcp_head'/'pcp_tail'/'pcp_count'][cpu, list]` (2.6.24: list = cold)
with `pcp_high[cold]` and `pcp_batch[cold]`; `node['pcp']` is the number of cpus with lists, 0
when they are off.

2.6.35 (`node['pcp_sublists']`, the policy's `pcp_sublists`) has one `struct per_cpu_pages
{ count, high, batch, lists[MIGRATE_PCPTYPES] }` per zone and cpu: list `i` of the model's three
is `pcp->lists[i]` for UNMOVABLE, RECLAIMABLE, MOVABLE, `pcp->count` is the sum of their counts,
and `high`/`batch` are `pcp_high[0]`/`pcp_batch[0]` (`setup_pageset`: 6 * batch, max(1, batch)):

- `buffered_rmqueue()` takes from `pcp->lists[migratetype]`, refilled when empty with
  `rmqueue_bulk(zone, 0, batch, list, migratetype, cold)`; a hot request takes the head, a cold
  one the tail. No search: every page on a list can serve its type;
- `rmqueue_bulk()` chains hot refills after one another from the head (`list_add`) as 2.6.24
  does, and cold ones before one another from the tail (`list_add_tail`), so both kinds of
  request take the buddy's first page first; `set_page_private(page, migratetype)`;
- `free_hot_cold_page()` saves the pageblock's type (`set_page_private`); an ISOLATE page goes
  straight to the buddy (`free_one_page`), a RESERVE one to the MOVABLE list ("we only track
  unmovable, reclaimable and movable on pcp lists"); cold at the tail, hot at the head; at
  `count >= high`, `free_pcppages_bulk(zone, batch, pcp)`;
- `free_pcppages_bulk()` frees round robin over the lists from the tail of each, `batch_free`
  growing by one for every list looked at, so an empty list lets the next one give more; each
  page is merged by `__free_one_page(page, zone, 0, page_private(page))`: onto the lists of the
  type it was queued as, not its pageblock's type at drain time (2.6.24);
- `drain_pages(cpu)` frees `pcp->count` pages of every populated zone that way.

With grouping off (2.6.20, or 2.6.24 with `page_group_by_mobility_disabled`) every page is queued
as UNMOVABLE (`allocflags_to_migratetype()` returns it), so the search always takes the head:
2.6.20's `buffered_rmqueue()` exactly. Not modelled: `percpu_pagelist_fraction`, NUMA's
`drain_zone_pages()`, and boot-time order-0 frees going through the lists. With grouping off,
2.6.35 would still queue a page by its pageblock's type, which the model keeps UNMOVABLE then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.mm.buddy import CLAIM_6_15, free_one_page, free_one_page_mt, rmqueue
from fragsim.models.mm.constants import MIGRATE_ISOLATE, MIGRATE_MOVABLE, PAGE_SIZE, PG_PCP
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.pcp_6_1 import drain_pages_zone, zone_pcp_update
from fragsim.models.mm.rmqueue_6_15 import RMQUEUE_NORMAL, alloc_flags_nofragment, rmqueue_6_15
from fragsim.models.mm.state import MAX_CPUS, NR_PCP_LISTS, STAT

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = [
    "PCP_COLD",
    "PCP_HOT",
    "buffered_rmqueue",
    "drain_all_local_pages",
    "drain_local_cpu_pages",
    "drain_local_pages",
    "drain_pages",
    "drain_zone_pages_cpu",
    "free_hot_cold_page",
    "free_pages_bulk",
    "free_pcppages_bulk",
    "pageset_marks",
    "pcp_list",
    "pcp_pages",
    "rmqueue_bulk",
    "setup_pagesets",
    "zone_batchsize",
]

#: Index of the hot and the cold list in 2.6.24 `struct per_cpu_pageset.pcp[2]`. With 2.6.35's
#: sublists the index of a list is its migratetype (MIGRATE_PCPTYPES = 3 of them).
PCP_HOT = 0
PCP_COLD = 1

_S_PCP_REFILL = STAT["pcp_refill"]
_S_PCP_DRAIN = STAT["pcp_drain"]


# --- set-up (Python) ----------------------------------------------------------------------------
def zone_batchsize(present_pages: int, page_size: int = PAGE_SIZE) -> int:
    """2.6.24 (and 2.6.35) `zone_batchsize()`: about a thousandth of the zone, at most 1/2 MiB,
    / 4, then clamped down to 2^n - 1 (a power of two had bad cache aliasing). A small zone
    gets 0."""
    batch = present_pages // 1024
    if batch * page_size > 512 * 1024:
        batch = (512 * 1024) // page_size
    batch //= 4  # "We effectively *= 4 below"
    if batch < 1:
        batch = 1
    # (1 << (fls(batch + batch/2) - 1)) - 1; fls(x) is int.bit_length(x).
    return (1 << ((batch + batch // 2).bit_length() - 1)) - 1


def pageset_marks(batch: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """2.6.24 `setup_pageset()`: ((hot high, hot batch), (cold high, cold batch))."""
    return (6 * batch, max(1, batch)), (2 * batch, max(1, batch // 2))


def setup_pagesets(m: Machine) -> None:
    """`zone_pcp_init()` for every zone and cpu: high and batch from each zone's present pages;
    `node['pcp']` = the number of cpus (`MachineConfig.nr_cpus`) when `MachineConfig.pcp`, else 0.

    The lists start empty. Call once, after boot (the model's boot frees whole blocks, which
    bypass the lists as every order > 0 free does).

    With the 2.6.35 sublists (`node['pcp_sublists']`) the one pcp's marks are slot 0, 2.6.35
    `setup_pageset()`'s `high = 6 * batch`, `batch = max(1, batch)` (2.6.24's hot marks), and
    slot 1 is 0; `zone_batchsize()` is the same in both kernels.
    """
    nr_cpus = int(m.config.nr_cpus)
    if not 1 <= nr_cpus <= MAX_CPUS:
        raise ValueError(f"nr_cpus {nr_cpus} is out of range: allowed 1..{MAX_CPUS}")
    m.node[0]["pcp"] = nr_cpus if m.config.pcp else 0
    if m.node[0]["pcp_per_order"]:
        zone_pcp_update(m)  # 6.1 sizes (`models.mm.pcp_6_1`), again at every watermark change
        return
    sublists = bool(m.node[0]["pcp_sublists"])
    for z in range(m.zones.shape[0]):
        (hot_high, hot_batch), (cold_high, cold_batch) = pageset_marks(
            zone_batchsize(int(m.zones[z]["present_pages"])))
        if sublists:
            cold_high, cold_batch = 0, 0
        m.zones[z]["pcp_high"] = (hot_high, cold_high)
        m.zones[z]["pcp_batch"] = (hot_batch, cold_batch)


# --- list primitives (compiled) -----------------------------------------------------------------
@compiled("pages, zone, int, int, int, int", inline=True)
def _set_pcp(pages: np.ndarray, zone: np.ndarray, cpu: int, lst: int, pfn: int, mt: int) -> None:
    """Mark `pfn`, just linked into list `lst` of `cpu`, an order-0 PG_PCP page queued as `mt`
    (`set_page_private`), and count it."""
    pages[pfn]["order"] = 0
    pages[pfn]["mt"] = mt
    pages[pfn]["flags"] = PG_PCP
    zone["pcp_count"][cpu, lst] += 1


@compiled("pages, zone, int, int, int, int, int", inline=True)
def _pcp_add_after(pages: np.ndarray, zone: np.ndarray, cpu: int, lst: int, after: int,
                   pfn: int, mt: int) -> None:
    """`list_add(&page->lru, after)`: put `pfn` right after `after` (-1: at the head) of list
    `lst` of `cpu`, as an order-0 PG_PCP page queued as `mt` (`set_page_private`)."""
    if after < 0:
        nxt = zone["pcp_head"][cpu, lst]
        zone["pcp_head"][cpu, lst] = pfn
    else:
        nxt = pages[after]["next"]
        pages[after]["next"] = pfn
    pages[pfn]["prev"] = after
    pages[pfn]["next"] = nxt
    if nxt >= 0:
        pages[nxt]["prev"] = pfn
    else:
        zone["pcp_tail"][cpu, lst] = pfn
    _set_pcp(pages, zone, cpu, lst, pfn, mt)


@compiled("pages, zone, int, int, int, int, int", inline=True)
def _pcp_add_before(pages: np.ndarray, zone: np.ndarray, cpu: int, lst: int, before: int,
                    pfn: int, mt: int) -> None:
    """`list_add_tail(&page->lru, before)`: put `pfn` right before `before` (-1: at the tail)
    of list `lst` of `cpu`, as an order-0 PG_PCP page queued as `mt` (`set_page_private`)."""
    if before < 0:
        prv = zone["pcp_tail"][cpu, lst]
        zone["pcp_tail"][cpu, lst] = pfn
    else:
        prv = pages[before]["prev"]
        pages[before]["prev"] = pfn
    pages[pfn]["next"] = before
    pages[pfn]["prev"] = prv
    if prv >= 0:
        pages[prv]["next"] = pfn
    else:
        zone["pcp_head"][cpu, lst] = pfn
    _set_pcp(pages, zone, cpu, lst, pfn, mt)


@compiled("pages, zone, int, int, int", inline=True)
def _pcp_del(pages: np.ndarray, zone: np.ndarray, cpu: int, lst: int, pfn: int) -> None:
    """`list_del(&page->lru)` from list `lst` of `cpu`, `pcp->count--`; PG_PCP cleared."""
    nxt = pages[pfn]["next"]
    prv = pages[pfn]["prev"]
    if prv >= 0:
        pages[prv]["next"] = nxt
    else:
        zone["pcp_head"][cpu, lst] = nxt
    if nxt >= 0:
        pages[nxt]["prev"] = prv
    else:
        zone["pcp_tail"][cpu, lst] = prv
    pages[pfn]["next"] = -1
    pages[pfn]["prev"] = -1
    pages[pfn]["flags"] = 0
    zone["pcp_count"][cpu, lst] -= 1


@compiled("zone, int", inline=True)
def _pcp_total(zone: np.ndarray, cpu: int) -> int:
    """2.6.35 `pcp->count`: the pages on all of `cpu`'s sublists."""
    total = 0
    for lst in range(NR_PCP_LISTS):
        total += zone["pcp_count"][cpu, lst]
    return total


# --- the kernel functions (compiled) ------------------------------------------------------------
@compiled("pages, zone, pageblock_type, nd, int, int, int, int, int")
def rmqueue_bulk(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                 nd: np.ndarray, count: int, mt: int, cpu: int, cold: int,
                 alloc_flags: int) -> int:
    """`rmqueue_bulk(zone, 0, count, list, migratetype[, cold])`: up to `count` order-0 pages
    by `__rmqueue()`, queued as `mt` (the request's type, even for a page a fallback found).
    `alloc_flags` are the request's, handed to `__rmqueue` as 6.1's `rmqueue_bulk` does.

    2.6.24: the list is `pcp[cold]`; each page is added after the previous one from the head.
    2.6.35 (`node['pcp_sublists']`): the list is `pcp->lists[mt]`; a hot refill is chained
    after the previous page from the head (`list_add`), a cold one before it from the tail
    (`list_add_tail`). Returns how many were added.

    6.15 (`node['claim_rule']` CLAIM_6_15): each page comes from 6.15's `__rmqueue` with the
    request's `alloc_flags` (plus defrag_mode's ALLOC_NOFRAGMENT) and one `rmqm` for the whole
    call, starting at RMQUEUE_NORMAL: after a steal, the rest of the batch steals at once.
    """
    sublists = nd["pcp_sublists"] != 0
    modern = nd["claim_rule"] == CLAIM_6_15 and nd["grouping"] != 0
    flags = alloc_flags_nofragment(nd, alloc_flags)
    rmqm = RMQUEUE_NORMAL
    lst = mt if sublists else cold
    tail_chain = sublists and cold != 0
    prev = -1
    added = 0
    for _ in range(count):
        if modern:
            pfn, rmqm = rmqueue_6_15(pages, zone, pageblock_type, nd, 0, mt, flags, rmqm)
        else:
            pfn = rmqueue(pages, zone, pageblock_type, nd, 0, mt, alloc_flags)
        if pfn < 0:
            break
        if tail_chain:
            _pcp_add_before(pages, zone, cpu, lst, prev, pfn, mt)
        else:
            _pcp_add_after(pages, zone, cpu, lst, prev, pfn, mt)
        prev = pfn
        added += 1
    nd["stat"][_S_PCP_REFILL] += 1
    return added


@compiled("pages, zone, pageblock_type, nd, int, int, int")
def free_pages_bulk(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                    nd: np.ndarray, count: int, cpu: int, cold: int) -> None:
    """2.6.24 `free_pages_bulk(zone, count, list, 0)`: free `count` pages from the tail of
    `pcp[cold]` with `__free_one_page()` (onto their pageblock type's lists, merging).

    Like the kernel it clears `all_unreclaimable` and `pages_scanned`; the caller adjusts
    nothing else (`_pcp_del` keeps `pcp_count`). Counts `pcp_drain` when pages were freed.
    """
    zone["all_unreclaimable"] = 0
    zone["pages_scanned"] = 0
    if count <= 0:
        return
    for _ in range(count):
        pfn = zone["pcp_tail"][cpu, cold]
        if pfn < 0:  # VM_BUG_ON(list_empty(list))
            break
        _pcp_del(pages, zone, cpu, cold, pfn)
        free_one_page(pages, zone, pageblock_type, nd, pfn, 0)
    nd["stat"][_S_PCP_DRAIN] += 1


@compiled("pages, zone, pageblock_type, nd, int, int")
def free_pcppages_bulk(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                       nd: np.ndarray, count: int, cpu: int) -> None:
    """2.6.35 `free_pcppages_bulk(zone, count, pcp)`: free `count` pages of `cpu`'s sublists.

    "Remove pages from lists in a round-robin fashion": `migratetype` starts at 0 and is
    advanced before each look (so MIGRATE_RECLAIMABLE's list is looked at first), `batch_free`
    grows by one for every list looked at, empty ones included; from the first non-empty list
    up to `batch_free` pages are taken from the tail, stopping early when it empties or `count`
    is reached. Each page goes to `__free_one_page(page, zone, 0, page_private(page))`: the
    type it was queued as ("MIGRATE_MOVABLE list may include MIGRATE_RESERVEs").

    Clears `all_unreclaimable` and `pages_scanned` as the kernel does; counts `pcp_drain` when
    pages were freed. Stops if every list is empty (the kernel's caller never asks for more
    pages than `pcp->count`).
    """
    zone["all_unreclaimable"] = 0
    zone["pages_scanned"] = 0
    if count <= 0:
        return
    migratetype = 0
    batch_free = 0
    while count > 0:
        looked = 0
        while True:
            batch_free += 1
            migratetype += 1
            if migratetype == NR_PCP_LISTS:
                migratetype = 0
            if zone["pcp_count"][cpu, migratetype] > 0:
                break
            looked += 1
            if looked > NR_PCP_LISTS:
                nd["stat"][_S_PCP_DRAIN] += 1
                return
        while True:
            pfn = zone["pcp_tail"][cpu, migratetype]
            private = int(pages[pfn]["mt"])
            _pcp_del(pages, zone, cpu, migratetype, pfn)
            free_one_page_mt(pages, zone, pageblock_type, nd, pfn, 0, private, 0)
            count -= 1
            if count == 0:
                break
            batch_free -= 1
            if batch_free == 0 or zone["pcp_count"][cpu, migratetype] == 0:
                break
    nd["stat"][_S_PCP_DRAIN] += 1


@compiled("pages, zone, pageblock_type, nd, int, int, int, int")
def buffered_rmqueue(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                     nd: np.ndarray, mt: int, cpu: int, cold: int, alloc_flags: int) -> int:
    """The order-0 branch of `buffered_rmqueue()`: one page from `cpu`'s per-cpu lists.

    2.6.24, from `pcp[cold]`: empty list: `rmqueue_bulk(batch)`, failing if that finds nothing.
    Then the first page from the head queued as `mt`; if there is none, another
    `rmqueue_bulk(batch)` and the head.

    2.6.35 (`node['pcp_sublists']`), from `pcp->lists[mt]`: empty list:
    `rmqueue_bulk(zone, 0, pcp->batch, list, migratetype, cold)`, failing if it stays empty;
    then the tail for a cold request, the head for a hot one.

    `mt` is a request's type (below MIGRATE_RESERVE). Returns the pfn (off the list, PG_PCP
    cleared; not yet prepared) or -1. `alloc_flags` reach `rmqueue_bulk` (6.15 passes them to
    `__rmqueue`).
    """
    if nd["grouping"] == 0:
        mt = 0  # allocflags_to_migratetype() with page_group_by_mobility_disabled
    if nd["pcp_sublists"] != 0:
        if (zone["pcp_count"][cpu, mt] == 0
                and rmqueue_bulk(pages, zone, pageblock_type, nd, zone["pcp_batch"][0], mt,
                                 cpu, cold, alloc_flags) == 0):
            return -1
        if cold != 0:
            pfn = zone["pcp_tail"][cpu, mt]
        else:
            pfn = zone["pcp_head"][cpu, mt]
        _pcp_del(pages, zone, cpu, mt, pfn)
        return int(pfn)
    batch = zone["pcp_batch"][cold]
    if (zone["pcp_count"][cpu, cold] == 0
            and rmqueue_bulk(pages, zone, pageblock_type, nd, batch, mt, cpu, cold,
                             alloc_flags) == 0):
        return -1
    # Find a page of the appropriate migrate type.
    pfn = zone["pcp_head"][cpu, cold]
    while pfn >= 0 and pages[pfn]["mt"] != mt:
        pfn = pages[pfn]["next"]
    if pfn < 0:
        # Allocate more to the pcp list if necessary.
        rmqueue_bulk(pages, zone, pageblock_type, nd, batch, mt, cpu, cold, alloc_flags)
        pfn = zone["pcp_head"][cpu, cold]
    _pcp_del(pages, zone, cpu, cold, pfn)
    return int(pfn)


@compiled("pages, zone, pageblock_type, nd, int, int, int")
def free_hot_cold_page(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                       nd: np.ndarray, pfn: int, cpu: int, cold: int) -> None:
    """`free_hot_cold_page(page, cold)`: queue an order-0 page on `cpu`'s lists as its
    pageblock's type (`set_page_private(page, migratetype)`).

    2.6.24: at the head of `pcp[cold]`; at `count >= high`, `free_pages_bulk(batch)`.

    2.6.35 (`node['pcp_sublists']`): "We only track unmovable, reclaimable and movable on pcp
    lists": an ISOLATE page goes to the buddy at once (`free_one_page(zone, page, 0,
    MIGRATE_ISOLATE)`), a RESERVE one to the MOVABLE list (its saved type stays RESERVE). A cold
    page is added at the tail of `pcp->lists[migratetype]`, a hot one at the head; at
    `pcp->count >= pcp->high`, `free_pcppages_bulk(zone, pcp->batch, pcp)`.
    """
    if nd["grouping"] != 0:
        mt = pageblock_type[pfn >> nd["pageblock_order"]]
    else:
        mt = 0
    if nd["pcp_sublists"] == 0:
        _pcp_add_after(pages, zone, cpu, cold, -1, pfn, mt)
        if zone["pcp_count"][cpu, cold] >= zone["pcp_high"][cold]:
            free_pages_bulk(pages, zone, pageblock_type, nd, zone["pcp_batch"][cold], cpu, cold)
        return
    lst = mt
    if mt >= NR_PCP_LISTS:
        if mt == MIGRATE_ISOLATE:
            zone["all_unreclaimable"] = 0
            zone["pages_scanned"] = 0
            free_one_page_mt(pages, zone, pageblock_type, nd, pfn, 0, mt, 0)
            return
        lst = MIGRATE_MOVABLE
    if cold != 0:
        _pcp_add_before(pages, zone, cpu, lst, -1, pfn, mt)
    else:
        _pcp_add_after(pages, zone, cpu, lst, -1, pfn, mt)
    if _pcp_total(zone, cpu) >= zone["pcp_high"][0]:
        free_pcppages_bulk(pages, zone, pageblock_type, nd, zone["pcp_batch"][0], cpu)


@compiled("pages, zones, pageblock_type, nd, int, int", inline=True)
def drain_zone_pages_cpu(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                         nd: np.ndarray, z: int, cpu: int) -> int:
    """`drain_pages_zone(cpu, zone)`: empty `cpu`'s lists of zone `z` into the buddy allocator
    (2.6.24 `__drain_pages`: both lists whole, hot then cold, with `free_pages_bulk()`; 2.6.35
    `drain_pages`: `pcp->count` pages with `free_pcppages_bulk()`; 6.1's per-order lists:
    `pcp_6_1.drain_pages_zone`). Returns the pages."""
    zone = zones[z]
    if zone["present_pages"] == 0:
        return 0
    if nd["pcp_per_order"] != 0:
        return drain_pages_zone(pages, zone, pageblock_type, nd, cpu)  # 6.1
    if nd["pcp_sublists"] != 0:
        count = _pcp_total(zone, cpu)
        free_pcppages_bulk(pages, zone, pageblock_type, nd, count, cpu)
        return int(count)
    drained = 0
    for cold in range(2):
        count = zone["pcp_count"][cpu, cold]
        free_pages_bulk(pages, zone, pageblock_type, nd, count, cpu, cold)
        drained += count
    return int(drained)


@compiled("pages, zones, pageblock_type, node")
def drain_all_local_pages(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                          node: np.ndarray) -> int:
    """`drain_pages(cpu)` on every cpu (2.6.24 `drain_all_local_pages()`, 2.6.35
    `drain_all_pages()`): for every populated zone, 2.6.24 frees both lists whole (hot, then
    cold) with `free_pages_bulk()`; 2.6.35 frees `pcp->count` pages with
    `free_pcppages_bulk()`.

    Returns the number of pages handed back to the buddy allocator.
    """
    nd = node[0]
    drained = 0
    for cpu in range(nd["pcp"]):
        for z in range(zones.shape[0]):
            drained += drain_zone_pages_cpu(pages, zones, pageblock_type, nd, z, cpu)
    return drained


@compiled("pages, zones, pageblock_type, node, int, int")
def drain_local_cpu_pages(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                          node: np.ndarray, cpu: int, z: int) -> int:
    """`drain_pages(cpu)` of one cpu (2.6.35 `drain_local_pages(NULL)` on that cpu: every
    populated zone), or, for `z >= 0`, that zone only (6.1 `drain_local_pages(zone)`)."""
    nd = node[0]
    if z >= 0:
        return drain_zone_pages_cpu(pages, zones, pageblock_type, nd, z, cpu)
    drained = 0
    for zz in range(zones.shape[0]):
        drained += drain_zone_pages_cpu(pages, zones, pageblock_type, nd, zz, cpu)
    return drained


# --- Python entry points ------------------------------------------------------------------------
def drain_pages(m: Machine) -> int:
    """Empty every per-cpu list of every zone into the buddy allocator (`drain_all_local_pages`),
    for the slow path and for probes. Returns the pages drained; a no-op when pcp is off."""
    if not m.node[0]["pcp"]:
        return 0
    return int(drain_all_local_pages(m.pages, m.zones, m.pageblock_type, m.node))


def drain_local_pages(m: Machine, cpu: int, z: int = -1) -> int:
    """Empty the per-cpu lists of `cpu` (every zone, or zone `z`) into the buddy allocator: the
    local cpu's drain of `drain_local_pages`. Returns the pages drained; a no-op when pcp is
    off."""
    if not m.node[0]["pcp"]:
        return 0
    return int(drain_local_cpu_pages(m.pages, m.zones, m.pageblock_type, m.node,
                                     m.check_cpu(cpu), z))


def pcp_list(m: Machine, z: int, cpu: int, lst: int) -> list[int]:
    """The pfns on list `lst` (2.6.24: `pcp[cold]`; 2.6.35: `pcp->lists[migratetype]`; 6.1:
    `pcp->lists[pindex]`) of `cpu` in zone `z`, head first (a slow walk, for tests)."""
    out: list[int] = []
    pfn = int(m.zones[z]["pcp_head"][cpu, lst])
    while pfn >= 0:
        out.append(pfn)
        if len(out) > m.nr_pages:
            raise RuntimeError(f"per-cpu list of zone {z} cpu {cpu} list {lst} loops")
        pfn = int(m.pages[pfn]["next"])
    return out


def pcp_pages(m: Machine) -> int:
    """Pages on all per-cpu lists (allocated for NR_FREE_PAGES, free for the workload): on 6.1's
    per-order lists the sum of `pcp->count`, else one page per list entry."""
    if m.node[0]["pcp_per_order"]:
        return int(m.zones["pcp_nr_pages"].sum())
    return int(m.zones["pcp_count"].sum())

"""Linux 6.1's per-cpu page lists: one list per migratetype and order, `mm/page_alloc.c` of 6.1.y
(unifreq/linux-6.1.y at 07badeaa, 6.1.141; `include/linux/mmzone.h`), for the 6.1 and 6.15
presets (`node['pcp_per_order']`, `Policy.pcp_per_order`).

`struct per_cpu_pages { count, high, batch, free_factor, lists[NR_PCP_LISTS] }` per zone and
cpu: NR_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1) + NR_PCP_THP lists,
`order_to_pindex(migratetype, order)` = `MIGRATE_PCPTYPES * order + migratetype` for orders up to
PAGE_ALLOC_COSTLY_ORDER and, with CONFIG_TRANSPARENT_HUGEPAGE, `NR_LOWORDER_PCP_LISTS +
(migratetype == MIGRATE_MOVABLE)` for pageblock_order (the model's THP order, as its THP faults
use). `pcp->count` counts pages, not blocks.

- `rmqueue()`: a request of a `pcp_allowed_order` goes to `rmqueue_pcplist()` first
  (`free_factor >>= 1`, then `__rmqueue_pcplist` on `lists[order_to_pindex(mt, order)]`); an
  empty list is refilled with `rmqueue_bulk(zone, order, batch, list, migratetype,
  alloc_flags)`, `batch = max(pcp->batch >> order, 2)` when `pcp->batch > 1`; `rmqueue_bulk`
  takes each block with `__rmqueue` (no HIGHATOMIC: that is `rmqueue_buddy`'s) and adds it at
  the tail (`list_add_tail`), and the request takes the head. When the list stays empty,
  `rmqueue_buddy()` (`buddy.rmqueue_flags`: the HIGHATOMIC lists first for a high-order
  ALLOC_HARDER request, then `__rmqueue`) serves it from the buddy lists;
- `free_unref_page(page, order)` (`free_the_page` for a `pcp_allowed_order`):
  `free_unref_page_prepare` saves the pageblock's type (`set_pcppage_migratetype`); an ISOLATE
  page goes to the buddy (`free_one_page`), a HIGHATOMIC (or CMA) one to the MOVABLE list with
  its saved type kept; `free_unref_page_commit` adds it at the head (`list_add`),
  `count += 1 << order`, and at `count >= nr_pcp_high()` frees `nr_pcp_free()` pages with
  `free_pcppages_bulk(zone, count, pcp, pindex)`. A high-order (1..3) free while `free_factor`
  is set frees the whole pcp (`free_high`); `nr_pcp_free` doubles the batch with each free in a
  row (`free_factor`, up to CONFIG_PCP_BATCH_SCALE_MAX = 5) and keeps `batch` pages; under
  ZONE_RECLAIM_ACTIVE (kswapd's `balance_pgdat`) `high` is at most `batch << 2`;
- `free_pcppages_bulk()`: `count = min(pcp->count, count)`; from `pindex` (the list just
  freed to) round robin over the lists, skipping empty ones and narrowing `min_pindex` /
  `max_pindex` past empty ends; each list is emptied from its tail, `1 << order` pages at a time,
  until `count` pages are freed (a high-order block may overshoot); each block goes to
  `__free_one_page(page, pfn, zone, order, mt, FPI_NONE)` with the type it was queued as
  (6.10+ with `node['typed_freelists']`: the pageblock's type at drain, as 6.15 does);
- `drain_pages_zone(cpu, zone)`: `free_pcppages_bulk(zone, min(count, batch <<
  CONFIG_PCP_BATCH_SCALE_MAX), pcp, 0)` until the pcp is empty; `drain_pages(cpu)` every
  populated zone (`models.mm.pcp.drain_*` call it on these machines);
- `zone_batchsize()` (about a thousandth of the zone, at most 1 MiB, / 4, clamped to 2^n - 1,
  at least 1) and `zone_highsize()` (the low watermark split over the node's cpus, at least
  `batch << 2`), recomputed with every watermark change (`setup_per_zone_wmarks` ->
  `zone_pcp_update(zone, 0)`).

Pages on a list are allocated as far as the buddy allocator knows (not in NR_FREE_PAGES, on no
free list). In the model a queued block's head carries PG_PCP (neither PG_BUDDY nor PG_HEAD), its
order in `pages['order']`, its saved migratetype in `pages['mt']`, and links through
`pages['next'/'prev']`; its other pages are untouched (flags 0). A zone's lists are
`zones['pcp_head'/'pcp_tail'/'pcp_count'][cpu, pindex]` (`pcp_count`: blocks on the list),
`pcp->count` is `zones['pcp_nr_pages'][cpu]`, `free_factor` `zones['pcp_free_factor'][cpu]`, and
`high`/`batch` are `pcp_high[0]`/`pcp_batch[0]`.

The two rules 6.1.y stable took from later kernels are in: `nr_pcp_free`'s `free_factor` cap at
CONFIG_PCP_BATCH_SCALE_MAX and `drain_pages_zone`'s chunks (6.1.0 has neither; its drain frees
`pcp->count` at once, which frees the same blocks in the same order).

Simplified: the batch is sized from the zone's present pages (the kernel uses managed pages, less
the memmap); `percpu_pagelist_high_fraction` is 0 (its default), every cpu is online and on the
one node (no CPU hotplug, boot pagesets or NUMA's `drain_zone_pages` from vmstat refresh), the
pcp trylock never fails, there is no CMA (the MOVABLE list is never skipped) and no pageblock
isolation (`has_isolate_pageblock` is false; an ISOLATE page is still freed straight to the
buddy), and `check_pcp_refill`/`check_new_pcp` find no bad page. 6.15 uses these rules with its
own `__rmqueue` and mode cache in `rmqueue_bulk` and the pageblock's type at drain; its pcp high
auto-tuning (6.7: `high_min`/`high_max`, `free_count`, PCPF_* flags, `nr_pcp_alloc`) is not
modelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.mm.buddy import (
    CLAIM_6_15,
    free_one_page_fpi,
    free_one_page_mt,
    rmqueue,
    rmqueue_flags,
)
from fragsim.models.mm.constants import (
    MIGRATE_ISOLATE,
    MIGRATE_MOVABLE,
    MIGRATE_PCPTYPES,
    PAGE_ALLOC_COSTLY_ORDER,
    PAGE_SIZE,
    PG_PCP,
    WMARK_LOW,
    ZONE_RECLAIM_ACTIVE,
)
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.rmqueue_6_15 import RMQUEUE_NORMAL, alloc_flags_nofragment, rmqueue_6_15
from fragsim.models.mm.state import MAX_CPUS, NR_PCP_LISTS_6_1, STAT

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = [
    "NR_LOWORDER_PCP_LISTS",
    "PCP_BATCH_SCALE_MAX",
    "drain_pages_zone",
    "free_pcppages_bulk",
    "free_unref_page",
    "nr_pcp_free",
    "nr_pcp_high",
    "order_to_pindex",
    "pcp_allowed_order",
    "pindex_to_order",
    "rmqueue_bulk",
    "rmqueue_pcp_6_1",
    "rmqueue_pcplist",
    "zone_batchsize",
    "zone_highsize",
    "zone_pcp_update",
]

#: 6.1 NR_LOWORDER_PCP_LISTS: MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1).
NR_LOWORDER_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1)
#: CONFIG_PCP_BATCH_SCALE_MAX (default 5): `free_factor`'s cap and drain_pages_zone's chunk.
PCP_BATCH_SCALE_MAX = 5

_S_PCP_REFILL = STAT["pcp_refill"]
_S_PCP_DRAIN = STAT["pcp_drain"]


# --- pindex (compiled) ------------------------------------------------------------------------
@compiled("nd, int", inline=True)
def pcp_allowed_order(nd: np.ndarray, order: int) -> bool:
    """6.1 `pcp_allowed_order()`: order <= PAGE_ALLOC_COSTLY_ORDER, or pageblock_order with
    CONFIG_TRANSPARENT_HUGEPAGE (`node['pcp_thp']`)."""
    if order <= PAGE_ALLOC_COSTLY_ORDER:
        return True
    return nd["pcp_thp"] != 0 and order == nd["pageblock_order"]


@compiled("int, int", inline=True)
def order_to_pindex(migratetype: int, order: int) -> int:
    """6.1 `order_to_pindex()`: `MIGRATE_PCPTYPES * order + migratetype`; above
    PAGE_ALLOC_COSTLY_ORDER (pageblock_order, THP) `NR_LOWORDER_PCP_LISTS + movable`."""
    if order > PAGE_ALLOC_COSTLY_ORDER:
        return NR_LOWORDER_PCP_LISTS + (1 if migratetype == MIGRATE_MOVABLE else 0)
    return MIGRATE_PCPTYPES * order + migratetype


@compiled("nd, int", inline=True)
def pindex_to_order(nd: np.ndarray, pindex: int) -> int:
    """6.1 `pindex_to_order()`: `pindex / MIGRATE_PCPTYPES`, pageblock_order for the THP lists."""
    if pindex >= NR_LOWORDER_PCP_LISTS:
        return int(nd["pageblock_order"])
    return pindex // MIGRATE_PCPTYPES


# --- list primitives (compiled) -----------------------------------------------------------------
@compiled("pages, zone, int, int, int, int, int", inline=True)
def _pcp_add(pages: np.ndarray, zone: np.ndarray, cpu: int, pindex: int, pfn: int, order: int,
             mt: int) -> None:
    """`list_add(&page->pcp_list, &pcp->lists[pindex])`: `pfn` at the head, a PG_PCP block of
    `order` queued as `mt`. `pcp->count` is the caller's."""
    nxt = zone["pcp_head"][cpu, pindex]
    zone["pcp_head"][cpu, pindex] = pfn
    pages[pfn]["prev"] = -1
    pages[pfn]["next"] = nxt
    if nxt >= 0:
        pages[nxt]["prev"] = pfn
    else:
        zone["pcp_tail"][cpu, pindex] = pfn
    pages[pfn]["order"] = order
    pages[pfn]["mt"] = mt
    pages[pfn]["flags"] = PG_PCP
    zone["pcp_count"][cpu, pindex] += 1


@compiled("pages, zone, int, int, int, int, int", inline=True)
def _pcp_add_tail(pages: np.ndarray, zone: np.ndarray, cpu: int, pindex: int, pfn: int,
                  order: int, mt: int) -> None:
    """`list_add_tail(&page->pcp_list, list)`: `pfn` at the tail of list `pindex`."""
    prv = zone["pcp_tail"][cpu, pindex]
    zone["pcp_tail"][cpu, pindex] = pfn
    pages[pfn]["next"] = -1
    pages[pfn]["prev"] = prv
    if prv >= 0:
        pages[prv]["next"] = pfn
    else:
        zone["pcp_head"][cpu, pindex] = pfn
    pages[pfn]["order"] = order
    pages[pfn]["mt"] = mt
    pages[pfn]["flags"] = PG_PCP
    zone["pcp_count"][cpu, pindex] += 1


@compiled("pages, zone, int, int, int", inline=True)
def _pcp_del(pages: np.ndarray, zone: np.ndarray, cpu: int, pindex: int, pfn: int) -> None:
    """`list_del(&page->pcp_list)` from list `pindex`; PG_PCP cleared (the order stays)."""
    nxt = pages[pfn]["next"]
    prv = pages[pfn]["prev"]
    if prv >= 0:
        pages[prv]["next"] = nxt
    else:
        zone["pcp_head"][cpu, pindex] = nxt
    if nxt >= 0:
        pages[nxt]["prev"] = prv
    else:
        zone["pcp_tail"][cpu, pindex] = prv
    pages[pfn]["next"] = -1
    pages[pfn]["prev"] = -1
    pages[pfn]["flags"] = 0
    zone["pcp_count"][cpu, pindex] -= 1


# --- allocation (compiled) ----------------------------------------------------------------------
@compiled("pages, zone, pageblock_type, nd, int, int, int, int, int, int")
def rmqueue_bulk(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                 nd: np.ndarray, order: int, count: int, pindex: int, mt: int, cpu: int,
                 alloc_flags: int) -> int:
    """6.1 `rmqueue_bulk(zone, order, count, list, migratetype, alloc_flags)`: up to `count`
    blocks of `order` by `__rmqueue(zone, order, migratetype, alloc_flags)`, each added at the
    tail of list `pindex` (`list_add_tail`: "Split buddy pages returned by expand() are received
    here in physical page order"), queued as `mt` (`__rmqueue_smallest`'s
    `set_pcppage_migratetype`: the request's list). Returns how many were added; the caller adds
    `allocated << order` to `pcp->count`.

    With `node['claim_rule']` CLAIM_6_15 each block comes from 6.15's `__rmqueue` with the
    request's flags (plus defrag_mode's ALLOC_NOFRAGMENT) and one `rmqm` for the whole call.
    """
    modern = nd["claim_rule"] == CLAIM_6_15 and nd["grouping"] != 0
    flags = alloc_flags_nofragment(nd, alloc_flags)
    rmqm = RMQUEUE_NORMAL
    added = 0
    for _ in range(count):
        if modern:
            pfn, rmqm = rmqueue_6_15(pages, zone, pageblock_type, nd, order, mt, flags, rmqm)
        else:
            pfn = rmqueue(pages, zone, pageblock_type, nd, order, mt, alloc_flags)
        if pfn < 0:
            break
        _pcp_add_tail(pages, zone, cpu, pindex, pfn, order, mt)
        added += 1
    nd["stat"][_S_PCP_REFILL] += 1
    return added


@compiled("pages, zone, pageblock_type, nd, int, int, int, int")
def rmqueue_pcplist(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                    nd: np.ndarray, order: int, mt: int, alloc_flags: int, cpu: int) -> int:
    """6.1 `rmqueue_pcplist()`: `pcp->free_factor >>= 1` ("On allocation, reduce the number of
    pages that are batch freed"), then `__rmqueue_pcplist()` on `lists[order_to_pindex(mt,
    order)]`: an empty list is refilled with `rmqueue_bulk(zone, order, batch, ...)`, `batch`
    being `max(pcp->batch >> order, 2)` when `pcp->batch > 1` ("Batch can be 1 for small
    zones"), `pcp->count += alloced << order`, NULL if it stays empty; then the head is taken
    and `pcp->count -= 1 << order`. Returns the pfn (off the list, PG_PCP cleared) or -1."""
    if nd["grouping"] == 0:
        mt = 0  # gfp_migratetype() with page_group_by_mobility_disabled
    zone["pcp_free_factor"][cpu] >>= 1
    pindex = order_to_pindex(mt, order)
    if zone["pcp_count"][cpu, pindex] == 0:
        batch = int(zone["pcp_batch"][0])
        if batch > 1:
            batch = max(batch >> order, 2)
        alloced = rmqueue_bulk(pages, zone, pageblock_type, nd, order, batch, pindex, mt, cpu,
                               alloc_flags)
        zone["pcp_nr_pages"][cpu] += alloced << order
        if zone["pcp_count"][cpu, pindex] == 0:
            return -1
    pfn = int(zone["pcp_head"][cpu, pindex])
    _pcp_del(pages, zone, cpu, pindex, pfn)
    zone["pcp_nr_pages"][cpu] -= 1 << order
    return pfn


@compiled("pages, zone, pageblock_type, nd, int, int, int, int")
def rmqueue_pcp_6_1(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                    nd: np.ndarray, order: int, mt: int, alloc_flags: int, cpu: int) -> int:
    """6.1 `rmqueue()` up to its boosted-watermark tail: "Use pcplists for THP or "cheap"
    high-order allocations": a `pcp_allowed_order` request tries `rmqueue_pcplist` (no CMA, so
    the MOVABLE list is never skipped); if that finds nothing, or for any other order,
    `rmqueue_buddy` (`buddy.rmqueue_flags`). Returns the pfn or -1."""
    if pcp_allowed_order(nd, order):
        pfn = rmqueue_pcplist(pages, zone, pageblock_type, nd, order, mt, alloc_flags, cpu)
        if pfn >= 0:
            return pfn
    return int(rmqueue_flags(pages, zone, pageblock_type, nd, order, mt, alloc_flags))


# --- freeing (compiled) -------------------------------------------------------------------------
@compiled("pages, zone, pageblock_type, nd, int, int, int")
def free_pcppages_bulk(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                       nd: np.ndarray, count: int, cpu: int, pindex: int) -> None:
    """6.1 `free_pcppages_bulk(zone, count, pcp, pindex)`, exactly: `count = min(pcp->count,
    count)`; "Ensure requested pindex is drained first" (`pindex - 1`, then `++pindex`); "Remove
    pages from lists in a round-robin fashion": the next non-empty list from there, wrapping
    from `max_pindex` to `min_pindex`, an empty list at either end moving that end in; from it,
    blocks from the tail (`list_last_entry`), `count -= 1 << order` each, while `count > 0` and
    the list is not empty. Each block goes to `__free_one_page(page, pfn, zone, order, mt,
    FPI_NONE)` with `mt` its saved type (`get_pcppage_migratetype`), or with
    `node['typed_freelists']` (6.10+) its pageblock's type at drain.

    The model has no isolated pageblocks (`isolated_pageblocks` is false). Counts `pcp_drain`.
    Like the model's other frees to the buddy lists (its 6.1 reclaim keeps 2.6.24's zone
    state) it clears `all_unreclaimable` and `pages_scanned`.
    """
    zone["all_unreclaimable"] = 0
    zone["pages_scanned"] = 0
    count = min(int(zone["pcp_nr_pages"][cpu]), count)
    if count <= 0:
        return
    min_pindex = 0
    max_pindex = NR_PCP_LISTS_6_1 - 1
    pindex = pindex - 1
    typed = nd["typed_freelists"] != 0
    while count > 0:
        while True:
            pindex += 1
            if pindex > max_pindex:
                pindex = min_pindex
            if zone["pcp_count"][cpu, pindex] != 0:
                break
            if pindex == max_pindex:
                max_pindex -= 1
            if pindex == min_pindex:
                min_pindex += 1
        order = pindex_to_order(nd, pindex)
        nr_pages = 1 << order
        while True:
            pfn = int(zone["pcp_tail"][cpu, pindex])
            mt = int(pages[pfn]["mt"])
            _pcp_del(pages, zone, cpu, pindex, pfn)
            count -= nr_pages
            zone["pcp_nr_pages"][cpu] -= nr_pages
            if typed:
                free_one_page_fpi(pages, zone, pageblock_type, nd, pfn, order, 0)
            else:
                free_one_page_mt(pages, zone, pageblock_type, nd, pfn, order, mt, 0)
            if count <= 0 or zone["pcp_count"][cpu, pindex] == 0:
                break
    nd["stat"][_S_PCP_DRAIN] += 1


@compiled("zone, int, int, int", inline=True)
def nr_pcp_free(zone: np.ndarray, cpu: int, high: int, batch: int) -> int:
    """6.1 `nr_pcp_free(pcp, high, batch, free_high)` without `free_high` (the caller's): 1 for
    a "PCP disabled or boot pageset" (`high < batch`); else `batch << free_factor`, raising
    `free_factor` while that is below `high - batch` and below CONFIG_PCP_BATCH_SCALE_MAX,
    clamped to [batch, high - batch] ("Leave at least pcp->batch pages on the list")."""
    if high < batch:
        return 1
    min_nr_free = batch
    max_nr_free = high - batch
    factor = int(zone["pcp_free_factor"][cpu])
    batch <<= factor
    if batch < max_nr_free and factor < PCP_BATCH_SCALE_MAX:
        zone["pcp_free_factor"][cpu] = factor + 1
    return min(max(batch, min_nr_free), max_nr_free)


@compiled("zone, bool", inline=True)
def nr_pcp_high(zone: np.ndarray, free_high: bool) -> int:
    """6.1 `nr_pcp_high(pcp, zone, free_high)`: 0 for no `high` or `free_high`; `high`; under
    ZONE_RECLAIM_ACTIVE "limit the number of pages that can be stored on pcp lists":
    `min(batch << 2, high)`."""
    high = int(zone["pcp_high"][0])
    if high == 0 or free_high:
        return 0
    if not (zone["flags"] & ZONE_RECLAIM_ACTIVE):
        return high
    return min(int(zone["pcp_batch"][0]) << 2, high)


@compiled("pages, zone, pageblock_type, nd, int, int, int")
def free_unref_page(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                    nd: np.ndarray, pfn: int, order: int, cpu: int) -> None:
    """6.1 `free_unref_page(page, order)` of a block the caller has prepared
    (`free_pages_prepare`: flags cleared, PGFREE counted): `free_unref_page_prepare` saves the
    pageblock's type (UNMOVABLE with grouping off); "We only track unmovable, reclaimable and
    movable on pcp lists": ISOLATE goes to `free_one_page`, HIGHATOMIC (and CMA) to the MOVABLE
    list. Then `free_unref_page_commit`: `list_add` at the head of `lists[order_to_pindex(mt,
    order)]`, `pcp->count += 1 << order`; `free_high` for an order 1..3 block while
    `free_factor` is set; at `count >= nr_pcp_high()`, `free_pcppages_bulk(zone, free_high ?
    pcp->count : nr_pcp_free(), pcp, pindex)`."""
    if nd["grouping"] != 0:
        mt = int(pageblock_type[pfn >> nd["pageblock_order"]])
    else:
        mt = 0
    pcpmt = mt
    if mt >= MIGRATE_PCPTYPES:
        if mt == MIGRATE_ISOLATE:
            zone["all_unreclaimable"] = 0
            zone["pages_scanned"] = 0
            free_one_page_mt(pages, zone, pageblock_type, nd, pfn, order, mt, 0)
            return
        pcpmt = MIGRATE_MOVABLE
    pindex = order_to_pindex(pcpmt, order)
    _pcp_add(pages, zone, cpu, pindex, pfn, order, mt)
    zone["pcp_nr_pages"][cpu] += 1 << order
    free_high = (zone["pcp_free_factor"][cpu] != 0 and order != 0
                 and order <= PAGE_ALLOC_COSTLY_ORDER)
    high = nr_pcp_high(zone, free_high)
    if zone["pcp_nr_pages"][cpu] >= high:
        if free_high:
            to_free = int(zone["pcp_nr_pages"][cpu])  # "Free everything if batch freeing"
        else:
            to_free = nr_pcp_free(zone, cpu, high, int(zone["pcp_batch"][0]))
        free_pcppages_bulk(pages, zone, pageblock_type, nd, to_free, cpu, pindex)


@compiled("pages, zone, pageblock_type, nd, int")
def drain_pages_zone(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                     nd: np.ndarray, cpu: int) -> int:
    """6.1 `drain_pages_zone(cpu, zone)`: while `pcp->count`, `free_pcppages_bulk(zone,
    min(count, pcp->batch << CONFIG_PCP_BATCH_SCALE_MAX), pcp, 0)`. Returns the pages drained."""
    drained = 0
    while True:
        count = int(zone["pcp_nr_pages"][cpu])
        if count:
            to_drain = min(count, int(zone["pcp_batch"][0]) << PCP_BATCH_SCALE_MAX)
            free_pcppages_bulk(pages, zone, pageblock_type, nd, to_drain, cpu, 0)
            drained += count - int(zone["pcp_nr_pages"][cpu])
            count -= to_drain
        if count <= 0:
            break
    return drained


# --- set-up (Python) ----------------------------------------------------------------------------
def zone_batchsize(present_pages: int, page_size: int = PAGE_SIZE) -> int:
    """6.1 `zone_batchsize()` (CONFIG_MMU): `min(pages >> 10, SZ_1M / PAGE_SIZE) / 4`, at least
    1, then `rounddown_pow_of_two(batch + batch/2) - 1`. (2.6.24 capped at 512 KiB.) The model
    sizes from present pages, the kernel from managed pages."""
    batch = min(present_pages >> 10, (1 << 20) // page_size)
    batch //= 4  # "We effectively *= 4 below"
    if batch < 1:
        batch = 1
    return (1 << ((batch + batch // 2).bit_length() - 1)) - 1


def zone_highsize(low_wmark: int, batch: int, nr_cpus: int) -> int:
    """6.1 `zone_highsize(zone, batch, cpu_online=0)` with `percpu_pagelist_high_fraction` 0:
    the low watermark split across the node's cpus (on one node, every online cpu), at least
    `batch << 2` ("the historical relationship between high and batch")."""
    high = low_wmark // nr_cpus
    return max(high, batch << 2)


def zone_pcp_update(m: Machine) -> None:
    """6.1 `zone_pcp_update(zone, 0)` for every zone (`setup_per_zone_wmarks`' last step, also
    at boot): `zone_set_pageset_high_and_batch`: `batch = max(1, zone_batchsize(zone))`, `high =
    zone_highsize(zone, batch, 0)`, into slot 0 of every cpu's (shared) marks; slot 1 is 0."""
    nr_cpus = int(m.config.nr_cpus)
    if not 1 <= nr_cpus <= MAX_CPUS:
        raise ValueError(f"nr_cpus {nr_cpus} is out of range: allowed 1..{MAX_CPUS}")
    for z in range(m.zones.shape[0]):
        zone = m.zones[z]
        batch = max(1, zone_batchsize(int(zone["present_pages"])))
        high = zone_highsize(int(zone["watermark"][WMARK_LOW]), batch, nr_cpus)
        zone["pcp_high"] = (high, 0)
        zone["pcp_batch"] = (batch, 0)


def pcp_list_orders(m: Machine) -> np.ndarray:
    """`pindex_to_order` of every list, for checks (`models.mm.invariants`)."""
    pbo = int(m.node[0]["pageblock_order"])
    return np.array([p // MIGRATE_PCPTYPES if p < NR_LOWORDER_PCP_LISTS else pbo
                     for p in range(NR_PCP_LISTS_6_1)], dtype=np.int64)

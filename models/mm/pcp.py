"""Per-cpu page lists (order 0 only): `struct per_cpu_pageset` of Linux 2.6.24 `mm/page_alloc.c`.

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
A zone's lists are `zones['pcp_head'/'pcp_tail'/'pcp_count'][cpu, cold]` with `pcp_high[cold]`
and `pcp_batch[cold]`; `node['pcp']` is the number of cpus with lists, 0 when they are off.

With grouping off (2.6.20, or 2.6.24 with `page_group_by_mobility_disabled`) every page is queued
as UNMOVABLE (`allocflags_to_migratetype()` returns it), so the search always takes the head:
2.6.20's `buffered_rmqueue()` exactly. Not modelled: `percpu_pagelist_fraction`, NUMA's
`drain_zone_pages()`, and boot-time order-0 frees going through the lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.mm.buddy import free_one_page, rmqueue
from fragsim.models.mm.constants import PAGE_SIZE, PG_PCP
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.state import MAX_CPUS, STAT

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = [
    "PCP_COLD",
    "PCP_HOT",
    "buffered_rmqueue",
    "drain_all_local_pages",
    "drain_pages",
    "free_hot_cold_page",
    "free_pages_bulk",
    "pageset_marks",
    "pcp_list",
    "pcp_pages",
    "rmqueue_bulk",
    "setup_pagesets",
    "zone_batchsize",
]

#: Index of the hot and the cold list in `struct per_cpu_pageset.pcp[2]`.
PCP_HOT = 0
PCP_COLD = 1

_S_PCP_REFILL = STAT["pcp_refill"]
_S_PCP_DRAIN = STAT["pcp_drain"]


# --- set-up (Python) ----------------------------------------------------------------------------
def zone_batchsize(present_pages: int, page_size: int = PAGE_SIZE) -> int:
    """2.6.24 `zone_batchsize()`: about a thousandth of the zone, at most 1/2 MiB, / 4, then
    clamped down to 2^n - 1 (a power of two had bad cache aliasing). A small zone gets 0."""
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
    """
    nr_cpus = int(m.config.nr_cpus)
    if not 1 <= nr_cpus <= MAX_CPUS:
        raise ValueError(f"nr_cpus {nr_cpus} is out of range: allowed 1..{MAX_CPUS}")
    for z in range(m.zones.shape[0]):
        (hot_high, hot_batch), (cold_high, cold_batch) = pageset_marks(
            zone_batchsize(int(m.zones[z]["present_pages"])))
        m.zones[z]["pcp_high"] = (hot_high, cold_high)
        m.zones[z]["pcp_batch"] = (hot_batch, cold_batch)
    m.node[0]["pcp"] = nr_cpus if m.config.pcp else 0


# --- list primitives (compiled) -----------------------------------------------------------------
@compiled("pages, zone, int, int, int, int, int", inline=True)
def _pcp_add_after(pages: np.ndarray, zone: np.ndarray, cpu: int, cold: int, after: int,
                   pfn: int, mt: int) -> None:
    """`list_add(&page->lru, after)`: put `pfn` right after `after` (-1: at the head) of
    `pcp[cold]` of `cpu`, as an order-0 PG_PCP page queued as `mt` (`set_page_private`)."""
    if after < 0:
        nxt = zone["pcp_head"][cpu, cold]
        zone["pcp_head"][cpu, cold] = pfn
    else:
        nxt = pages[after]["next"]
        pages[after]["next"] = pfn
    pages[pfn]["prev"] = after
    pages[pfn]["next"] = nxt
    if nxt >= 0:
        pages[nxt]["prev"] = pfn
    else:
        zone["pcp_tail"][cpu, cold] = pfn
    pages[pfn]["order"] = 0
    pages[pfn]["mt"] = mt
    pages[pfn]["flags"] = PG_PCP
    zone["pcp_count"][cpu, cold] += 1


@compiled("pages, zone, int, int, int", inline=True)
def _pcp_del(pages: np.ndarray, zone: np.ndarray, cpu: int, cold: int, pfn: int) -> None:
    """`list_del(&page->lru)` from `pcp[cold]` of `cpu`, `pcp->count--`; PG_PCP cleared."""
    nxt = pages[pfn]["next"]
    prv = pages[pfn]["prev"]
    if prv >= 0:
        pages[prv]["next"] = nxt
    else:
        zone["pcp_head"][cpu, cold] = nxt
    if nxt >= 0:
        pages[nxt]["prev"] = prv
    else:
        zone["pcp_tail"][cpu, cold] = prv
    pages[pfn]["next"] = -1
    pages[pfn]["prev"] = -1
    pages[pfn]["flags"] = 0
    zone["pcp_count"][cpu, cold] -= 1


# --- the kernel functions (compiled) ------------------------------------------------------------
@compiled("pages, zone, pageblock_type, nd, int, int, int, int")
def rmqueue_bulk(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                 nd: np.ndarray, count: int, mt: int, cpu: int, cold: int) -> int:
    """2.6.24 `rmqueue_bulk(zone, 0, count, list, migratetype)`: up to `count` order-0 pages
    by `__rmqueue()`, each added after the previous one at the head of `pcp[cold]` and queued as
    `mt` (the request's type, even for a page a fallback found). Returns how many were added."""
    after = -1
    added = 0
    for _ in range(count):
        pfn = rmqueue(pages, zone, pageblock_type, nd, 0, mt)
        if pfn < 0:
            break
        _pcp_add_after(pages, zone, cpu, cold, after, pfn, mt)
        after = pfn
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


@compiled("pages, zone, pageblock_type, nd, int, int, int")
def buffered_rmqueue(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                     nd: np.ndarray, mt: int, cpu: int, cold: int) -> int:
    """The order-0 branch of 2.6.24 `buffered_rmqueue()`: one page from `pcp[cold]` of `cpu`.

    Empty list: `rmqueue_bulk(batch)`, failing if that finds nothing. Then the first page from
    the head queued as `mt`; if there is none, another `rmqueue_bulk(batch)` and the head.
    Returns the pfn (off the list, PG_PCP cleared; not yet prepared) or -1.
    """
    if nd["grouping"] == 0:
        mt = 0  # allocflags_to_migratetype() with page_group_by_mobility_disabled
    batch = zone["pcp_batch"][cold]
    if (zone["pcp_count"][cpu, cold] == 0
            and rmqueue_bulk(pages, zone, pageblock_type, nd, batch, mt, cpu, cold) == 0):
        return -1
    # Find a page of the appropriate migrate type.
    pfn: int = zone["pcp_head"][cpu, cold]
    while pfn >= 0 and pages[pfn]["mt"] != mt:
        pfn = pages[pfn]["next"]
    if pfn < 0:
        # Allocate more to the pcp list if necessary.
        rmqueue_bulk(pages, zone, pageblock_type, nd, batch, mt, cpu, cold)
        pfn = zone["pcp_head"][cpu, cold]
    _pcp_del(pages, zone, cpu, cold, pfn)
    return pfn


@compiled("pages, zone, pageblock_type, nd, int, int, int")
def free_hot_cold_page(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                       nd: np.ndarray, pfn: int, cpu: int, cold: int) -> None:
    """2.6.24 `free_hot_cold_page(page, cold)`: queue an order-0 page at the head of
    `pcp[cold]` of `cpu` as its pageblock's type; at `high`, `free_pages_bulk(batch)`."""
    if nd["grouping"] != 0:
        mt = pageblock_type[pfn >> nd["pageblock_order"]]
    else:
        mt = 0
    _pcp_add_after(pages, zone, cpu, cold, -1, pfn, mt)
    if zone["pcp_count"][cpu, cold] >= zone["pcp_high"][cold]:
        free_pages_bulk(pages, zone, pageblock_type, nd, zone["pcp_batch"][cold], cpu, cold)


@compiled("pages, zones, pageblock_type, node")
def drain_all_local_pages(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                          node: np.ndarray) -> int:
    """2.6.24 `drain_all_local_pages()`: `__drain_pages(cpu)` on every cpu, which for every
    populated zone frees both lists whole (hot, then cold) with `free_pages_bulk()`.

    Returns the number of pages handed back to the buddy allocator.
    """
    nd = node[0]
    drained = 0
    for cpu in range(nd["pcp"]):
        for z in range(zones.shape[0]):
            zone = zones[z]
            if zone["present_pages"] == 0:
                continue
            for cold in range(2):
                count = zone["pcp_count"][cpu, cold]
                free_pages_bulk(pages, zone, pageblock_type, nd, count, cpu, cold)
                drained += count
    return drained


# --- Python entry points ------------------------------------------------------------------------
def drain_pages(m: Machine) -> int:
    """Empty every per-cpu list of every zone into the buddy allocator (`drain_all_local_pages`),
    for the slow path and for probes. Returns the pages drained; a no-op when pcp is off."""
    if not m.node[0]["pcp"]:
        return 0
    return int(drain_all_local_pages(m.pages, m.zones, m.pageblock_type, m.node))


def pcp_list(m: Machine, z: int, cpu: int, cold: int) -> list[int]:
    """The pfns on `pcp[cold]` of `cpu` in zone `z`, head first (a slow walk, for tests)."""
    out: list[int] = []
    pfn = int(m.zones[z]["pcp_head"][cpu, cold])
    while pfn >= 0:
        out.append(pfn)
        if len(out) > m.nr_pages:
            raise RuntimeError(f"per-cpu list of zone {z} cpu {cpu} pcp[{cold}] loops")
        pfn = int(m.pages[pfn]["next"])
    return out


def pcp_pages(m: Machine) -> int:
    """Pages on all per-cpu lists (allocated for NR_FREE_PAGES, free for the workload)."""
    return int(m.zones["pcp_count"].sum())

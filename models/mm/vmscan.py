"""The compiled page scanner: the list walks of Linux 2.6.24 `mm/vmscan.c`.

These are the hot loops of reclaim; the policy around them (priorities, targets, kswapd) is
Python in `models.mm.reclaim`. Each function names the kernel function it follows:

- `isolate_lru_pages` takes pages from an LRU tail, and with lumpy reclaim (order > 0) every
  other page of the order-aligned block around each of them: `__isolate_lru_page(cursor, mode)`
  takes an LRU page of the mode's active state (any state for ISOLATE_BOTH, which 2.6.24 uses for
  order > PAGE_ALLOC_COSTLY_ORDER); free pages, slab, kernel and per-cpu pages are not taken, so
  one of them ruins the block; a pfn past the end of memory (`pfn_valid_within`) ends the block
  scan and a pfn of another zone is skipped, as in 2.6.24. Lumpy blocks that could not be wholly
  taken (some page neither taken nor free nor on a per-cpu list) count as `lumpy_block_failed`.
- `shrink_page_list` decides each isolated page (see its docstring for the mapped-page model);
- `shrink_inactive_list` and `shrink_active_list` isolate, decide, and put back what is kept;
- `shrink_zone_lists` is the loop of 2.6.24 `shrink_zone()` over those two, in
  SWAP_CLUSTER_MAX chunks, with `shrink_active_list`'s reclaim_mapped decision made per chunk;
- `drop_pagecache` frees clean page cache (`invalidate_mapping_pages` over every inode).

Mapped pages: the model has no page tables. An anonymous page counts as mapped (it is in its
process's page tables), and so does a page-cache page of kind KIND_FILE_MAPPED (a file some
process maps: its binary and libraries); other page cache is unmapped (read()/write() I/O). So
`page_mapping_inuse()` is true exactly for those two kinds, and the second chance a referenced
inactive page gets in `shrink_page_list` applies to them; an unmapped page-cache page gets its
second chance earlier, from `mark_page_accessed()` (used twice -> active), as in 2.6.24. A
mapped file page is reclaimed like a clean unmapped one once it is unreferenced (try_to_unmap
always succeeds) and is never written to swap; `drop_pagecache` leaves it alone, as
`invalidate_mapping_pages` skips mapped pages.
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.alloc import free_one_pcp
from fragsim.models.mm.buddy import zone_of_pfn
from fragsim.models.mm.constants import (
    KIND_ANON,
    KIND_FILE,
    KIND_FILE_MAPPED,
    PAGE_ALLOC_COSTLY_ORDER,
    PG_ACTIVE,
    PG_BUDDY,
    PG_DIRTY,
    PG_HEAD,
    PG_LRU,
    PG_PCP,
    PG_REFERENCED,
    PG_WRITEBACK,
    WRITEBACK_RULE_6_1,
)
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.lru import LRU_ACTIVE, LRU_INACTIVE, lru_add, lru_del, page_kind
from fragsim.models.mm.state import NR_LRU_LISTS, STAT

__all__ = [
    "ISOLATE_ACTIVE",
    "ISOLATE_BOTH",
    "ISOLATE_INACTIVE",
    "RES_CONGESTION_WAITS",
    "RES_NR_RECLAIMED",
    "RES_NR_RECLAIMED_ROWS",
    "RES_NR_WRITEBACK",
    "RES_SC_NR_SCANNED",
    "RES_SIZE",
    "drop_pagecache",
    "free_reclaimed",
    "isolate_lru_pages",
    "shrink_active_list",
    "shrink_inactive_list",
    "shrink_page_list",
    "shrink_zone_lists",
]

# LRU isolation modes (2.6.24 mm/vmscan.c).
ISOLATE_INACTIVE = 0
ISOLATE_ACTIVE = 1
ISOLATE_BOTH = 2

# Slots of the `res` accumulator array the kernels fill.
RES_NR_RECLAIMED = 0  # pages freed
RES_SC_NR_SCANNED = 1  # sc->nr_scanned: pages shrink_page_list looked at (mapped count twice)
RES_NR_RECLAIMED_ROWS = 2  # rows written to `rec`
#: entries written to `wb`: a pfn whose writeback reclaim started (not waited for), or -1 - pfn
#: of a page met under writeback that 6.1's rule flags PG_reclaim (`writeback_rule`)
RES_NR_WRITEBACK = 3
RES_CONGESTION_WAITS = 4  # congestion_wait() before the synchronous lumpy pass
RES_SIZE = 5

_S_PGSCAN_KSWAPD = STAT["pgscan_kswapd"]
_S_PGSCAN_DIRECT = STAT["pgscan_direct"]
_S_PGSTEAL = STAT["pgsteal"]
_S_PGACTIVATE = STAT["pgactivate"]
_S_PGDEACTIVATE = STAT["pgdeactivate"]
_S_PSWPOUT = STAT["pswpout"]
_S_KSWAPD_STEAL = STAT["kswapd_steal"]
_S_LUMPY_ISOLATED = STAT["lumpy_isolated"]
_S_LUMPY_BLOCK_FAILED = STAT["lumpy_block_failed"]

_NOT_DIRTY = 0xFF ^ PG_DIRTY
_NOT_WRITEBACK = 0xFF ^ PG_WRITEBACK
_NOT_REFERENCED = 0xFF ^ PG_REFERENCED
_NOT_ACTIVE = 0xFF ^ PG_ACTIVE


@compiled("pages, zone, nd, int, int, int, int, int[]")
def isolate_lru_pages(pages: np.ndarray, zone: np.ndarray, nd: np.ndarray, src: int,
                      nr_to_scan: int, order: int, mode: int,
                      dst: np.ndarray) -> tuple[int, int]:
    """2.6.24 `isolate_lru_pages()`: move up to `nr_to_scan` pages from the tail of LRU list
    `src` into `dst` (lumpy: plus their order-aligned neighbours, each counted as scanned).

    Returns (nr_taken, scanned). Taken pages are off the LRU (PG_LRU clear, PG_ACTIVE kept).
    `dst` needs room for `nr_to_scan + 2^order` pfns.
    """
    nr_taken = 0
    scan = 0
    nr_pages = pages.shape[0]
    zstart = zone["start_pfn"]
    zend = zone["end_pfn"]
    while scan < nr_to_scan:
        pfn = zone["lru_tail"][src]
        if pfn < 0:
            break
        lru_del(pages, zone, pfn)
        dst[nr_taken] = pfn
        nr_taken += 1
        scan += 1
        if order == 0:
            continue
        # Lumpy: take all pages in the order aligned region surrounding the tag page.
        p = pfn & ~((1 << order) - 1)
        end = p + (1 << order)
        failed = False
        while p < end:
            if p == pfn:
                p += 1
                continue
            if p >= nr_pages:  # a hole: pfn_valid_within() fails
                failed = True
                break
            if p < zstart or p >= zend:  # another zone: skipped, never merges with ours
                failed = True
                p += 1
                continue
            f = pages[p]["flags"]
            if f & PG_BUDDY:
                p += 1 << pages[p]["order"]
                continue
            if f & PG_LRU:
                if mode == ISOLATE_BOTH or ((f & PG_ACTIVE) != 0) == (mode == ISOLATE_ACTIVE):
                    lru_del(pages, zone, p)
                    dst[nr_taken] = p
                    nr_taken += 1
                    scan += 1
                    nd["stat"][_S_LUMPY_ISOLATED] += 1
                else:
                    failed = True
                p += 1
                continue
            if not (f & PG_PCP):  # slab, kernel, hugetlb: -EINVAL, the block is ruined
                failed = True
            # a block: allocated, or (6.1) a high-order one on a per-cpu list
            p += (1 << pages[p]["order"]) if (f & (PG_HEAD | PG_PCP)) else 1
        if failed:
            nd["stat"][_S_LUMPY_BLOCK_FAILED] += 1
    return nr_taken, scan


@compiled("pages, int[], int", inline=True)
def clear_active_flags(pages: np.ndarray, lst: np.ndarray, n: int) -> int:
    """2.6.24 `clear_active_flags()`: lumpy may take active pages; they return inactive."""
    nr_active = 0
    for i in range(n):
        if pages[lst[i]]["flags"] & PG_ACTIVE:
            pages[lst[i]]["flags"] &= _NOT_ACTIVE
            nr_active += 1
    return nr_active


@compiled("pages, zones, pageblock_type, node, int, int, int[][], int[]", inline=True)
def free_reclaimed(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                   node: np.ndarray, pfn: int, kind: int, rec: np.ndarray,
                   res: np.ndarray) -> None:
    """A page reclaim frees: its row (pfn, owner, kind) into `rec`, then back to the buddy
    allocator, cold, through `free_one_pcp` (`__pagevec_release_nonlru` in 2.6.24,
    `free_unref_page_list` in 6.1); counted in `res`."""
    r = res[RES_NR_RECLAIMED_ROWS]
    rec[r, 0] = pfn
    rec[r, 1] = pages[pfn]["owner"]
    rec[r, 2] = kind
    res[RES_NR_RECLAIMED_ROWS] = r + 1
    free_one_pcp(pages, zones, pageblock_type, node, pfn, 0, 1)
    res[RES_NR_RECLAIMED] += 1


@compiled("pages, zones, pageblock_type, node, int[], int, int, bool, bool, bool, bool, bool, "
          "int[][], int[], int[]")
def shrink_page_list(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                     node: np.ndarray, lst: np.ndarray, n: int, order: int, gfp_fs: bool,
                     gfp_io: bool, sync: bool, may_writepage: bool, may_swap: bool,
                     rec: np.ndarray, wb: np.ndarray, res: np.ndarray) -> int:
    """2.6.24 `shrink_page_list()` over the isolated pages `lst[:n]`; returns how many are kept.

    Kept pages are compacted to the front of `lst` (PG_ACTIVE set on those to activate). Freed
    pages get a row (pfn, owner, kind) in `rec` and go back with `free_one_pcp` (cold, as
    `__pagevec_release_nonlru` frees them). Per page, in the kernel's order:

    - `if (!sc->may_swap && page_mapped(page)) goto keep_locked` (counted once in nr_scanned);
    - under writeback: kept, unless `sync` (PAGEOUT_IO_SYNC) and may_enter_fs: then waited for;
      on 6.1's rule (`node['writeback_rule']`) 6.1 `shrink_folio_list`'s global-reclaim cases
      instead: PG_reclaim is set (the page goes out in `wb` as -1 - pfn) and it is activated;
    - `page_referenced()` test-and-clears PG_REFERENCED; for order <= PAGE_ALLOC_COSTLY_ORDER a
      referenced mapped (anonymous) page is activated;
    - an anonymous page not yet in swap (PG_DIRTY) needs a free slot (`add_to_swap`), else it is
      activated; without __GFP_FS it is kept without taking one (2.6.24 takes the slot first);
    - dirty: kept when referenced (order <= costly), without may_enter_fs, or without
      `sc->may_writepage` (6.1's boosted kswapd clears both flags); else `pageout()`
      clears PG_DIRTY and starts writeback (`wb`, pswpout for anonymous pages); the page is kept,
      unless `sync`, where the write is waited for and the page freed;
    - otherwise the page is freed (`remove_mapping`; a swap-cache page keeps its slot).
    Every free clears the zone's `pages_scanned` and `all_unreclaimable`, as 2.6.24
    `free_one_page()` does.
    """
    nd = node[0]
    kept = 0
    pgactivate = 0
    costly = order > PAGE_ALLOC_COSTLY_ORDER
    for i in range(n):
        pfn = lst[i]
        f = pages[pfn]["flags"]
        kind = page_kind(pages, pfn)
        anon = kind == KIND_ANON
        mapped = anon or kind == KIND_FILE_MAPPED  # page_mapping_inuse()
        res[RES_SC_NR_SCANNED] += 1
        if not may_swap and mapped:
            lst[kept] = pfn
            kept += 1
            continue
        if mapped:  # double the slab pressure for mapped and swapcache pages
            res[RES_SC_NR_SCANNED] += 1
        swapcache = anon and not (f & PG_DIRTY)
        may_enter_fs = gfp_fs or (swapcache and gfp_io)
        activate = False
        keep = False
        if f & PG_WRITEBACK:
            if sync and may_enter_fs:
                f &= _NOT_WRITEBACK  # wait_on_page_writeback()
            elif nd["writeback_rule"] == WRITEBACK_RULE_6_1:
                # 6.1 shrink_folio_list, cases 1 and 2 of global reclaim: folio_set_reclaim()
                # (handed out in `wb` as -1 - pfn) and `goto activate_locked`.
                wb[res[RES_NR_WRITEBACK]] = -1 - pfn
                res[RES_NR_WRITEBACK] += 1
                keep = True
                activate = True
            else:
                keep = True
        if not keep:
            referenced = (f & PG_REFERENCED) != 0
            f &= _NOT_REFERENCED
            if not costly and referenced and mapped:
                activate = True
            elif anon and (f & PG_DIRTY):
                if not gfp_fs:
                    keep = True
                elif nd["nr_swap_pages"] <= 0:
                    activate = True  # add_to_swap() failed
                else:
                    nd["nr_swap_pages"] -= 1
            if not activate and not keep and (f & PG_DIRTY):
                if (not costly and referenced) or not may_enter_fs or not may_writepage:
                    keep = True
                else:
                    f = (f & _NOT_DIRTY) | PG_WRITEBACK  # pageout(): ->writepage()
                    if anon:
                        nd["stat"][_S_PSWPOUT] += 1
                    if sync:
                        f &= _NOT_WRITEBACK  # PAGEOUT_IO_SYNC waits for the write
                    else:
                        wb[res[RES_NR_WRITEBACK]] = pfn
                        res[RES_NR_WRITEBACK] += 1
                        keep = True
        if activate:
            f |= PG_ACTIVE
            pgactivate += 1
            keep = True
        pages[pfn]["flags"] = f
        if keep:
            lst[kept] = pfn
            kept += 1
            continue
        zone = zones[zone_of_pfn(zones, pfn)]
        free_reclaimed(pages, zones, pageblock_type, node, pfn, kind, rec, res)
        zone["pages_scanned"] = 0
        zone["all_unreclaimable"] = 0
    nd["stat"][_S_PGACTIVATE] += pgactivate
    return kept


@compiled("pages, zones, pageblock_type, node, int, int, int, int, bool, bool, bool, bool, "
          "bool, bool, int[], int[][], int[], int[]")
def shrink_inactive_list(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                         node: np.ndarray, z: int, max_scan: int, swap_cluster_max: int,
                         order: int, kswapd: bool, gfp_fs: bool, gfp_io: bool,
                         sync_retry: bool, may_writepage: bool, may_swap: bool,
                         buf: np.ndarray, rec: np.ndarray, wb: np.ndarray,
                         res: np.ndarray) -> int:
    """2.6.24 `shrink_inactive_list()`: isolate `swap_cluster_max` at a time until `max_scan`
    pages were scanned, shrink each batch, put back what is kept. Returns pages scanned.

    ISOLATE_BOTH for order > PAGE_ALLOC_COSTLY_ORDER. When a direct reclaimer (`not kswapd`) of
    such an order did not free the whole batch and `sync_retry`, it waits (`congestion_wait`,
    counted) and runs `shrink_page_list` again with PAGEOUT_IO_SYNC. Counts pgscan_kswapd or
    pgscan_direct, pgsteal, kswapd_steal and pgdeactivate; adds the scan to `pages_scanned`.
    `buf` needs `swap_cluster_max + 2^order` slots; `rec` and `wb` `max_scan + len(buf)`.
    """
    nd = node[0]
    zone = zones[z]
    costly = order > PAGE_ALLOC_COSTLY_ORDER
    mode = ISOLATE_BOTH if costly else ISOLATE_INACTIVE
    nr_scanned = 0
    while True:
        nr_taken, nr_scan = isolate_lru_pages(pages, zone, nd, LRU_INACTIVE, swap_cluster_max,
                                              order, mode, buf)
        nd["stat"][_S_PGDEACTIVATE] += clear_active_flags(pages, buf, nr_taken)
        zone["pages_scanned"] += nr_scan
        nr_scanned += nr_scan
        before = res[RES_NR_RECLAIMED]
        kept = shrink_page_list(pages, zones, pageblock_type, node, buf, nr_taken, order,
                                gfp_fs, gfp_io, False, may_writepage, may_swap, rec, wb, res)
        if kept > 0 and not kswapd and costly and sync_retry:
            res[RES_CONGESTION_WAITS] += 1
            nd["stat"][_S_PGDEACTIVATE] += clear_active_flags(pages, buf, kept)
            kept = shrink_page_list(pages, zones, pageblock_type, node, buf, kept, order,
                                    gfp_fs, gfp_io, True, may_writepage, may_swap, rec, wb,
                                    res)
        nr_freed = res[RES_NR_RECLAIMED] - before
        if kswapd:
            nd["stat"][_S_PGSCAN_KSWAPD] += nr_scan
            nd["stat"][_S_KSWAPD_STEAL] += nr_freed
        else:
            nd["stat"][_S_PGSCAN_DIRECT] += nr_scan
        nd["stat"][_S_PGSTEAL] += nr_freed
        if nr_taken == 0:
            break
        for i in range(kept):  # put back the unfreeable pages
            pfn = buf[i]
            lru_add(pages, zone, pfn, (pages[pfn]["flags"] & PG_ACTIVE) != 0)
        if nr_scanned >= max_scan:
            break
    return nr_scanned


@compiled("pages, zones, node, int, int, int, bool, bool, int[]")
def shrink_active_list(pages: np.ndarray, zones: np.ndarray, node: np.ndarray, z: int,
                       nr_pages: int, order: int, reclaim_mapped: bool, no_swap: bool,
                       buf: np.ndarray) -> int:
    """2.6.24 `shrink_active_list()`: move up to `nr_pages` from the active tail to the inactive
    list, except mapped (anonymous) pages when not `reclaim_mapped`, when there is no swap, or
    when referenced (`page_referenced` clears the bit). Unmapped pages always move, keeping
    PG_REFERENCED. Returns pages scanned (added to `pages_scanned`); counts pgdeactivate.
    """
    nd = node[0]
    zone = zones[z]
    nr_taken, scanned = isolate_lru_pages(pages, zone, nd, LRU_ACTIVE, nr_pages, order,
                                          ISOLATE_ACTIVE, buf)
    zone["pages_scanned"] += scanned
    deactivated = 0
    for i in range(nr_taken):
        pfn = buf[i]
        f = pages[pfn]["flags"]
        stay = False
        kind = page_kind(pages, pfn)
        if kind in (KIND_ANON, KIND_FILE_MAPPED):  # page_mapped()
            if not reclaim_mapped or (no_swap and kind == KIND_ANON):
                stay = True
            elif f & PG_REFERENCED:
                pages[pfn]["flags"] = f & _NOT_REFERENCED
                stay = True
        if stay:
            lru_add(pages, zone, pfn, True)
        else:
            lru_add(pages, zone, pfn, False)
            deactivated += 1
    nd["stat"][_S_PGDEACTIVATE] += deactivated
    return scanned


@compiled("pages, zones, pageblock_type, node, int[][]")
def drop_pagecache(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                   node: np.ndarray, rec: np.ndarray) -> int:
    """2.6.24 `drop_pagecache()`: `invalidate_mapping_pages()` frees every clean, unlocked page
    of every page cache; dirty pages and pages under writeback stay. Returns rows in `rec`."""
    n = 0
    for z in range(zones.shape[0]):
        zone = zones[z]
        for lru in range(NR_LRU_LISTS):  # 2.6.24's two lists, or a split LRU's four
            pfn = zone["lru_tail"][lru]
            while pfn >= 0:
                prev = pages[pfn]["prev"]
                f = pages[pfn]["flags"]
                if page_kind(pages, pfn) == KIND_FILE and not (f & (PG_DIRTY | PG_WRITEBACK)):
                    rec[n, 0] = pfn
                    rec[n, 1] = pages[pfn]["owner"]
                    rec[n, 2] = KIND_FILE
                    n += 1
                    free_one_pcp(pages, zones, pageblock_type, node, pfn, 0, 1)
                pfn = prev
    return n


@compiled("zone, int, int, int, int")
def reclaim_mapped(zone: np.ndarray, priority: int, swappiness: int, mapped: int,
                   vm_total_pages: int) -> bool:
    """2.6.24 `shrink_active_list()`'s decision to move mapped pages to the inactive list:
    near OOM, or `mapped_ratio / 2 + distress + swappiness + imbalance >= 100`."""
    nr_active = int(zone["nr_lru"][LRU_ACTIVE])
    nr_inactive = int(zone["nr_lru"][LRU_INACTIVE])
    if zone["pages_scanned"] >= (nr_active + nr_inactive) * 3:  # zone_is_near_oom()
        return True
    prev_priority = int(zone["prev_priority"])
    distress = 100 >> min(prev_priority, priority)
    mapped_ratio = mapped * 100 // max(vm_total_pages, 1)
    swap_tendency = mapped_ratio // 2 + distress + swappiness
    imbalance = nr_active // (nr_inactive + 1)
    imbalance = imbalance * (swappiness + 1) // 100
    imbalance = imbalance * mapped_ratio // 100
    return bool(swap_tendency + imbalance >= 100)


@compiled("pages, zones, pageblock_type, node, int, int, int, int, int, bool, bool, bool, bool, "
          "bool, bool, bool, int, int, int, int, int[], int[][], int[], int[]")
def shrink_zone_lists(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                      node: np.ndarray, z: int, nr_active: int, nr_inactive: int,
                      swap_cluster_max: int, order: int, kswapd: bool, gfp_fs: bool,
                      gfp_io: bool, sync_retry: bool, may_writepage: bool, may_swap: bool,
                      no_swap: bool, priority: int, swappiness: int, mapped: int,
                      vm_total_pages: int, buf: np.ndarray, rec: np.ndarray, wb: np.ndarray,
                      res: np.ndarray) -> int:
    """The scanning loop of 2.6.24 `shrink_zone()`: while pages are left to scan, a chunk of up
    to `swap_cluster_max` from the active list (`shrink_active_list`, reclaim_mapped decided
    afresh for each chunk; never without `may_swap`, as 2.6.24 computes it only `if
    (sc->may_swap)`), then one from the inactive list (`shrink_inactive_list`). `res`
    accumulates over the chunks (rows in `rec` and `wb` follow on); `rec` and `wb` need room
    for `nr_inactive` plus `2^order` per chunk. Returns pages reclaimed."""
    zone = zones[z]
    while nr_active > 0 or nr_inactive > 0:
        if nr_active > 0:
            nr_to_scan = min(nr_active, swap_cluster_max)
            nr_active -= nr_to_scan
            if zone["nr_lru"][LRU_ACTIVE] > 0:
                rm = may_swap and reclaim_mapped(zone, priority, swappiness, mapped,
                                                 vm_total_pages)
                shrink_active_list(pages, zones, node, z, nr_to_scan, order, rm, no_swap, buf)
        if nr_inactive > 0:
            nr_to_scan = min(nr_inactive, swap_cluster_max)
            nr_inactive -= nr_to_scan
            shrink_inactive_list(pages, zones, pageblock_type, node, z, nr_to_scan,
                                 swap_cluster_max, order, kswapd, gfp_fs, gfp_io, sync_retry,
                                 may_writepage, may_swap, buf, rec, wb, res)
    reclaimed: int = res[RES_NR_RECLAIMED]
    return reclaimed

"""The compiled page scanner of Linux 6.1 `mm/vmscan.c` (MGLRU off, as Debian's 6.1 builds it),
over the split LRU (`models.mm.lru`, `zone["split_lru"]`: anon lists 0 and 1, file lists 2, 3).

Read at unifreq/linux-6.1.y 07badeaa. The policy around these loops (`prepare_scan_count`,
`get_scan_count`, `shrink_node`, the priorities) is Python in `models.mm.reclaim_6_1`.

- `shrink_folio_list` decides each isolated page as 6.1 `shrink_folio_list` does:
  - a page under writeback gets PG_reclaim (`wb` entry -1 - pfn) and is activated (global
    reclaim: `writeback_throttling_sane`);
  - `folio_check_references`: a referenced mapped page is activated; an unmapped page's
    PG_referenced is test-and-cleared and it is reclaimed (FOLIOREF_RECLAIM_CLEAN when it was
    set, which keeps it if dirty);
  - an anonymous page not in swap needs __GFP_IO and a swap slot (`add_to_swap`), else it is
    activated;
  - a dirty page-cache page is never written by reclaim: 6.1 writes one only from kswapd, for
    a page already PG_reclaim on a node flagged PGDAT_DIRTY (the model never flags it);
    otherwise "Immediately reclaim when written back": PG_reclaim is set (`wb` entry -1 - pfn:
    `models.mm.reclaim_6_1` keeps it until the flusher writes the page) and it is activated;
  - a dirty anonymous page (just added to swap) is written (`pageout`, pswpout) unless
    `may_writepage` is off or __GFP_IO is missing, and kept while under writeback;
  - the rest is freed (`__remove_mapping`), cold (`models.mm.vmscan.free_reclaimed`).
- `shrink_inactive_list` isolates up to `nr_to_scan` pages from the tail of an inactive list
  (`isolate_lru_folios`), shrinks them and puts back what is kept (`move_folios_to_lru`).
- `shrink_active_list` moves up to `nr_to_scan` pages from the tail of an active list to the
  head of its inactive list. A referenced page stays active only if it is file-backed and
  VM_EXEC, which the model has no notion of, so every page is deactivated; `folio_referenced`
  clears a mapped page's young bits (the model's PG_REFERENCED on a mapped page; see
  `models.mm.vmscan`), and leaves an unmapped page's PG_referenced alone.
- `shrink_lruvec_lists` is the loop of 6.1 `shrink_lruvec`: SWAP_CLUSTER_MAX chunks of each
  evictable list in turn (`shrink_list`: an active list only when `may_deactivate` allows it)
  until the scan targets are spent, stopping early once `nr_to_reclaim` pages were reclaimed
  (not for direct reclaim at DEF_PRIORITY: `proportional_reclaim`) with the proportional
  adjustment of the other type's targets.

Simplified (README, model limits): the kernel's lists are per node; the model's are per zone,
and each chunk is taken from the eligible zone (up to `reclaim_idx`) with the most pages on
that list. No `too_many_isolated` or `reclaim_throttle`, no PGDAT_WRITEBACK/PGDAT_DIRTY
(kswapd never writes page cache), no workingset shadow entries or refaults, no VM_EXEC, no
unevictable list, no large folios on the LRU (THP pages are not on the model's LRU), no
lazyfree pages, and a mapped page's referenced state is one bit.
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.constants import (
    KIND_ANON,
    KIND_FILE_MAPPED,
    PG_ACTIVE,
    PG_DIRTY,
    PG_REFERENCED,
    PG_WRITEBACK,
)
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.lru import lru_add, lru_del, page_kind
from fragsim.models.mm.state import (
    LRU_ACTIVE_ANON,
    LRU_ACTIVE_FILE,
    LRU_INACTIVE_ANON,
    LRU_INACTIVE_FILE,
    NR_LRU_LISTS,
    STAT,
)
from fragsim.models.mm.vmscan import (
    RES_NR_RECLAIMED,
    RES_NR_WRITEBACK,
    RES_SC_NR_SCANNED,
    free_reclaimed,
)

__all__ = [
    "DEACTIVATE_ANON",
    "DEACTIVATE_FILE",
    "RES_NR_PAGEOUT",
    "RES_SIZE_6_1",
    "isolate_lru_folios",
    "shrink_active_list",
    "shrink_folio_list",
    "shrink_inactive_list",
    "shrink_lruvec_lists",
]

#: 6.1 `sc->may_deactivate` bits.
DEACTIVATE_ANON = 1
DEACTIVATE_FILE = 2
#: `res` slot: pages `pageout()` wrote (`stat->nr_pageout`, for `lru_note_cost`); only
#: anonymous pages are written by reclaim, so the caller notes it as the anon cost.
RES_NR_PAGEOUT = 5
#: `res` slot: 1 once `shrink_list` skipped an active list (`sc->skipped_deactivate`).
RES_SKIPPED_DEACTIVATE = 6
RES_SIZE_6_1 = 7

_SWAP_CLUSTER_MAX = 32
_S_PGSCAN_KSWAPD = STAT["pgscan_kswapd"]
_S_PGSCAN_DIRECT = STAT["pgscan_direct"]
_S_PGSTEAL = STAT["pgsteal"]
_S_KSWAPD_STEAL = STAT["kswapd_steal"]
_S_PGACTIVATE = STAT["pgactivate"]
_S_PGDEACTIVATE = STAT["pgdeactivate"]
_S_PSWPOUT = STAT["pswpout"]
_S_PGREFILL = STAT["pgrefill"]
_S_PGSCAN_ANON = STAT["pgscan_anon"]
_S_PGSCAN_FILE = STAT["pgscan_file"]
_S_PGSTEAL_ANON = STAT["pgsteal_anon"]
_S_PGSTEAL_FILE = STAT["pgsteal_file"]

_NOT_DIRTY = 0xFF ^ PG_DIRTY
_NOT_REFERENCED = 0xFF ^ PG_REFERENCED
_NOT_ACTIVE = 0xFF ^ PG_ACTIVE


@compiled("pages, zone, int, int, int[]")
def isolate_lru_folios(pages: np.ndarray, zone: np.ndarray, lru: int, nr_to_scan: int,
                       dst: np.ndarray) -> int:
    """6.1 `isolate_lru_folios()` on one zone's list `lru`: up to `nr_to_scan` pages from the
    tail into `dst` (off the LRU, PG_ACTIVE kept). Every page is eligible (the lists are per
    zone). Returns pages taken, which is also the scan."""
    n = 0
    while n < nr_to_scan:
        pfn = zone["lru_tail"][lru]
        if pfn < 0:
            break
        lru_del(pages, zone, pfn)
        dst[n] = pfn
        n += 1
    return n


@compiled("pages, zones, pageblock_type, node, int[], int, bool, bool, int[][], int[], int[]")
def shrink_folio_list(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                      node: np.ndarray, lst: np.ndarray, n: int, gfp_io: bool,
                      may_writepage: bool, rec: np.ndarray, wb: np.ndarray,
                      res: np.ndarray) -> int:
    """6.1 `shrink_folio_list()` over the isolated order-0 pages `lst[:n]` (module docstring);
    returns how many are kept, compacted to the front of `lst` with PG_ACTIVE set on those to
    activate. Freed pages get a row (pfn, owner, kind) in `rec`."""
    nd = node[0]
    kept = 0
    pgactivate = 0
    for i in range(n):
        pfn = lst[i]
        f = pages[pfn]["flags"]
        kind = page_kind(pages, pfn)
        anon = kind == KIND_ANON
        mapped = anon or kind == KIND_FILE_MAPPED  # folio_mapped()
        res[RES_SC_NR_SCANNED] += 1
        activate = False
        keep = False
        if f & PG_WRITEBACK:
            # "Case 2 above": global reclaim sets PG_reclaim and activates.
            wb[res[RES_NR_WRITEBACK]] = -1 - pfn
            res[RES_NR_WRITEBACK] += 1
            activate = True
        else:
            referenced = (f & PG_REFERENCED) != 0
            if mapped and referenced:
                f &= _NOT_REFERENCED  # the young bits folio_referenced() cleared
                activate = True  # FOLIOREF_ACTIVATE
            else:
                # folio_test_clear_referenced(); FOLIOREF_RECLAIM_CLEAN for a referenced
                # page-cache page only keeps it when dirty, which the next test does anyway.
                f &= _NOT_REFERENCED
                if anon and (f & PG_DIRTY):  # anon, swap-backed, not in the swap cache
                    if not gfp_io:
                        keep = True
                    elif nd["nr_swap_pages"] <= 0:
                        activate = True  # add_to_swap() failed: activate_locked_split
                    else:
                        nd["nr_swap_pages"] -= 1
                if not keep and not activate and (f & PG_DIRTY):
                    if not anon:
                        # Only kswapd writes page cache, and only a PG_reclaim page on a
                        # PGDAT_DIRTY node: "Immediately reclaim when written back".
                        wb[res[RES_NR_WRITEBACK]] = -1 - pfn
                        res[RES_NR_WRITEBACK] += 1
                        activate = True
                    elif not gfp_io or not may_writepage:
                        keep = True  # may_enter_fs(): a swap-cache page needs __GFP_IO
                    else:
                        f = (f & _NOT_DIRTY) | PG_WRITEBACK  # pageout(): swap_writepage
                        nd["stat"][_S_PSWPOUT] += 1
                        res[RES_NR_PAGEOUT] += 1
                        wb[res[RES_NR_WRITEBACK]] = pfn
                        res[RES_NR_WRITEBACK] += 1
                        keep = True  # PAGE_SUCCESS under writeback: goto keep
        if activate:
            f |= PG_ACTIVE
            pgactivate += 1
            keep = True
        pages[pfn]["flags"] = f
        if keep:
            lst[kept] = pfn
            kept += 1
            continue
        free_reclaimed(pages, zones, pageblock_type, node, pfn, kind, rec, res)
    nd["stat"][_S_PGACTIVATE] += pgactivate
    return kept


@compiled("pages, zones, pageblock_type, node, int, int, int, bool, bool, bool, int[], "
          "int[][], int[], int[]")
def shrink_inactive_list(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                         node: np.ndarray, z: int, lru: int, nr_to_scan: int, kswapd: bool,
                         gfp_io: bool, may_writepage: bool, buf: np.ndarray,
                         rec: np.ndarray, wb: np.ndarray, res: np.ndarray) -> int:
    """6.1 `shrink_inactive_list()` on zone `z`'s list `lru`: isolate, `shrink_folio_list`,
    put the kept pages back at the heads of their lists. Counts pgscan_kswapd or
    pgscan_direct, pgscan_anon or pgscan_file, pgsteal (and kswapd_steal) and pgsteal_anon or
    pgsteal_file. Returns pages reclaimed."""
    nd = node[0]
    zone = zones[z]
    nr_taken = isolate_lru_folios(pages, zone, lru, nr_to_scan, buf)
    if kswapd:
        nd["stat"][_S_PGSCAN_KSWAPD] += nr_taken
    else:
        nd["stat"][_S_PGSCAN_DIRECT] += nr_taken
    file = lru == LRU_INACTIVE_FILE
    nd["stat"][_S_PGSCAN_FILE if file else _S_PGSCAN_ANON] += nr_taken
    if nr_taken == 0:
        return 0
    before = res[RES_NR_RECLAIMED]
    kept = shrink_folio_list(pages, zones, pageblock_type, node, buf, nr_taken, gfp_io,
                             may_writepage, rec, wb, res)
    for i in range(kept):  # move_folios_to_lru()
        pfn = buf[i]
        lru_add(pages, zone, pfn, (pages[pfn]["flags"] & PG_ACTIVE) != 0)
    nr_reclaimed: int = res[RES_NR_RECLAIMED] - before
    nd["stat"][_S_PGSTEAL] += nr_reclaimed
    nd["stat"][_S_PGSTEAL_FILE if file else _S_PGSTEAL_ANON] += nr_reclaimed
    if kswapd:
        nd["stat"][_S_KSWAPD_STEAL] += nr_reclaimed
    return nr_reclaimed


@compiled("pages, zones, node, int, int, int, int[]")
def shrink_active_list(pages: np.ndarray, zones: np.ndarray, node: np.ndarray, z: int,
                       lru: int, nr_to_scan: int, buf: np.ndarray) -> int:
    """6.1 `shrink_active_list()` on zone `z`'s active list `lru` (module docstring): every page
    taken goes to the head of the inactive list, oldest first. Counts pgrefill and
    pgdeactivate; returns pages scanned."""
    nd = node[0]
    zone = zones[z]
    nr_taken = isolate_lru_folios(pages, zone, lru, nr_to_scan, buf)
    nd["stat"][_S_PGREFILL] += nr_taken
    for i in range(nr_taken):
        pfn = buf[i]
        f = pages[pfn]["flags"]
        kind = page_kind(pages, pfn)
        if kind in (KIND_ANON, KIND_FILE_MAPPED):
            f &= _NOT_REFERENCED  # folio_referenced() clears the young bits
        pages[pfn]["flags"] = f & _NOT_ACTIVE  # folio_clear_active(): we are de-activating
        lru_add(pages, zone, pfn, False)
    nd["stat"][_S_PGDEACTIVATE] += nr_taken
    return nr_taken


@compiled("zones, int, int")
def _zone_for(zones: np.ndarray, hz: int, lru: int) -> int:
    """The eligible zone (<= hz) with the most pages on list `lru`; -1 if none has any."""
    best = -1
    most = 0
    for z in range(min(hz + 1, zones.shape[0])):
        k = zones[z]["nr_lru"][lru]
        if k > most:
            most = k
            best = z
    return best


@compiled("pages, zones, pageblock_type, node, int, int[], int, bool, int, bool, bool, bool, "
          "int[], int[][], int[], int[]", nrt=True)
def shrink_lruvec_lists(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                        node: np.ndarray, hz: int, nr: np.ndarray, nr_to_reclaim: int,
                        proportional_reclaim: bool, may_deactivate: int, kswapd: bool,
                        gfp_io: bool, may_writepage: bool, buf: np.ndarray,
                        rec: np.ndarray, wb: np.ndarray, res: np.ndarray) -> int:
    """The scanning loop of 6.1 `shrink_lruvec()` with the targets `nr` (4 lists, consumed) of
    `get_scan_count`. `rec` and `wb` need room for the sum of the inactive targets plus
    SWAP_CLUSTER_MAX. Returns pages reclaimed (`res` accumulates the rest)."""
    targets = nr.copy()
    nr_reclaimed = 0
    while nr[LRU_INACTIVE_ANON] or nr[LRU_ACTIVE_FILE] or nr[LRU_INACTIVE_FILE]:
        for lru in range(NR_LRU_LISTS):  # for_each_evictable_lru
            if nr[lru] == 0:
                continue
            nr_to_scan = min(nr[lru], _SWAP_CLUSTER_MAX)
            nr[lru] -= nr_to_scan
            # shrink_list()
            file = lru >= LRU_INACTIVE_FILE
            if lru in (LRU_ACTIVE_ANON, LRU_ACTIVE_FILE):
                if may_deactivate & (DEACTIVATE_FILE if file else DEACTIVATE_ANON):
                    z = _zone_for(zones, hz, lru)
                    if z >= 0:
                        shrink_active_list(pages, zones, node, z, lru, nr_to_scan, buf)
                else:
                    res[RES_SKIPPED_DEACTIVATE] = 1
                continue
            z = _zone_for(zones, hz, lru)
            if z >= 0:
                nr_reclaimed += shrink_inactive_list(pages, zones, pageblock_type, node, z, lru,
                                                     nr_to_scan, kswapd, gfp_io,
                                                     may_writepage, buf, rec, wb, res)
        if nr_reclaimed < nr_to_reclaim or proportional_reclaim:
            continue
        nr_file = nr[LRU_INACTIVE_FILE] + nr[LRU_ACTIVE_FILE]
        nr_anon = nr[LRU_INACTIVE_ANON] + nr[LRU_ACTIVE_ANON]
        # "It's just vindictive to attack the larger once the smaller has gone to zero."
        if nr_file == 0 or nr_anon == 0:
            break
        if nr_file > nr_anon:
            scan_target = targets[LRU_INACTIVE_ANON] + targets[LRU_ACTIVE_ANON] + 1
            small = LRU_INACTIVE_ANON
            percentage = nr_anon * 100 // scan_target
        else:
            scan_target = targets[LRU_INACTIVE_FILE] + targets[LRU_ACTIVE_FILE] + 1
            small = LRU_INACTIVE_FILE
            percentage = nr_file * 100 // scan_target
        # Stop scanning the smaller of the LRU
        nr[small] = 0
        nr[small + 1] = 0
        # Recalculate the other LRU scan count based on its original scan target and the
        # percentage scanning already complete
        big = LRU_INACTIVE_ANON if small == LRU_INACTIVE_FILE else LRU_INACTIVE_FILE
        for lru in (big, big + 1):
            nr_scanned = targets[lru] - nr[lru]
            nr[lru] = targets[lru] * (100 - percentage) // 100
            nr[lru] -= min(nr[lru], nr_scanned)
    return nr_reclaimed

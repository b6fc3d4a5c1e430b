"""Page reclaim: the policy half of Linux 2.6.24 `mm/vmscan.c`, plus `drop_caches`.

What a page is to reclaim (the page kind, `models.mm.constants`):

- KIND_FILE, page cache: on the LRU (new pages inactive, `lru_cache_add`); a clean page is
  dropped; a dirty one (PG_DIRTY) is written first (writeback, `models.mm.writeback`) and freed by
  a later scan; a page under writeback is skipped;
- KIND_ANON: on the LRU (new pages active, `lru_cache_add_active`); reclaimed only while swap
  slots are free (`config.swap`), through a swap write; treated as mapped (see `models.mm.vmscan`);
- KIND_SLAB: reclaimable slab, shrunk through shrinkers (`models.mm.slab`), a page freed when its
  last object goes;
- KIND_KERNEL and anything else: never reclaimed.

On the 6.1 and 6.15 presets `balance_pgdat` is 6.1's loop (`models.mm.kswapd_6_1`: boosting,
`pgdat_balanced`, the order-0 fallback, `kswapd_failures`) over the 2.6.24 `shrink_zone` and
`shrink_slab` here, and every high watermark here includes the zone's boost.
Direct reclaim (`try_to_free_pages`) and kswapd (`balance_pgdat`) loop priorities DEF_PRIORITY
(12) down to 0 over zones, as 2.6.24 does; `shrink_zone` turns a priority into scan counts
(`nr_active >> priority` + 1, accumulated in the zone until SWAP_CLUSTER_MAX) and calls the
compiled list walks of `models.mm.vmscan`. Lumpy reclaim (2.6.23 to 3.4) is on when
`config.lumpy_reclaim`: the scanner gets the allocation's order (2.6.24 then scans the
order-aligned block around each tail page for every order > 0, any active state above
PAGE_ALLOC_COSTLY_ORDER); without it the scanner gets order 0, as 2.6.20's had no order.

Waiting is not done here: reclaim counts the `congestion_wait()` naps it would take in
`reclaim_state(m).congestion_waits`, and writeback completes when the caller advances `m.now`
and calls `complete_writeback` (re-exported here; both reclaim entry points call it first).
The synchronous lumpy pass of a direct reclaimer (2.6.24 PAGEOUT_IO_SYNC) completes the
writeback of its own pages at once when `sync_writeback` is true; the caller charges the stall.
Every freed page leaves a row (pfn, owner, kind) in `m.reclaimed` for its owner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.mm import vmscan
from fragsim.models.mm.alloc import zone_watermark_ok
from fragsim.models.mm.bulk import count_mapped
from fragsim.models.mm.constants import (
    ALLOC_WMARK_LOW,
    KIND_ANON,
    KIND_FILE,
    PG_DIRTY,
    PG_HEAD,
    WMARK_HIGH,
)
from fragsim.models.mm.gfp import GFP, GFP_HIGHUSER_MOVABLE, GFP_KERNEL
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.lru import (
    LRU_ACTIVE,
    LRU_INACTIVE,
    lru_add_batch,
    new_anon_active,
    set_dirty_batch,
)
from fragsim.models.mm.reclaim_state import DEF_PRIORITY, reclaim_state, record_reclaimed
from fragsim.models.mm.slab import drop_slab, shrink_slab
from fragsim.models.mm.state import KIND_SHIFT, STAT
from fragsim.models.mm.writeback import complete_writeback, queue_writeback, set_reclaim

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = [
    "SWAP_CLUSTER_MAX",
    "ScanControl",
    "alloc_lru_pages",
    "balance_pgdat",
    "balance_pgdat_2_6_24",
    "complete_writeback",
    "drop_caches",
    "free_lru_pages",
    "high_wmark_pages",
    "pgdat_balanced",
    "scan_control",
    "shrink_active_list",
    "shrink_inactive_list",
    "shrink_zone",
    "try_to_free_pages",
    "zone_ok",
]

#: 2.6.24 `SWAP_CLUSTER_MAX`.
SWAP_CLUSTER_MAX = 32


@dataclass
class ScanControl:
    """2.6.24 `struct scan_control`. `may_writepage` and `may_swap` are 1 except in 6.1's
    boosted kswapd reclaim (`models.mm.kswapd_6_1`), which clears both."""

    gfp_mask: int
    order: int  # the allocation's order
    scan_order: int  # what the scanner gets: `order` with lumpy reclaim, else 0
    kswapd: bool
    sync_writeback: bool = True
    may_writepage: bool = True
    may_swap: bool = True
    swap_cluster_max: int = SWAP_CLUSTER_MAX
    nr_scanned: int = 0
    all_unreclaimable: bool = False
    mapped: int = -1  # NR_ANON_PAGES, counted on first need
    buf: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rec: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    wb: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def buffers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Scratch arrays for one `shrink_inactive_list` call (max_scan <= swap_cluster_max)."""
        n = self.swap_cluster_max + (1 << self.scan_order)
        if self.buf.shape[0] != n:
            self.buf = np.empty(n, np.int64)
            self.rec = np.empty((n + self.swap_cluster_max, 3), np.int64)
            self.wb = np.empty(n + self.swap_cluster_max, np.int64)
        return self.buf, self.rec, self.wb, np.zeros(vmscan.RES_SIZE, np.int64)


def scan_control(m: Machine, order: int, gfp_mask: int, kswapd: bool,
                 sync_writeback: bool = True) -> ScanControl:
    """A `ScanControl` for `m`: the scanner's order is `order` only with lumpy reclaim."""
    reclaim_state(m)  # swapon and prev_priority on first use
    return ScanControl(gfp_mask=int(gfp_mask), order=order,
                       scan_order=order if m.config.lumpy_reclaim else 0, kswapd=kswapd,
                       sync_writeback=sync_writeback)


@compiled("zones, int, int, int, int")
def _zone_ok(zones: np.ndarray, z: int, order: int, mark: int, classzone_idx: int) -> bool:
    return zone_watermark_ok(zones[z], order, mark, classzone_idx, 0)


def high_wmark_pages(m: Machine, z: int) -> int:
    """`high_wmark_pages(zone)`: pages_high, plus the zone's watermark boost (5.0+; 0 on every
    kernel before), as 6.1's macro adds it."""
    zone = m.zones[z]
    return int(zone["watermark"][WMARK_HIGH] + zone["watermark_boost"])


def zone_ok(m: Machine, z: int, order: int, mark: int | None = None,
            classzone_idx: int = 0) -> bool:
    """`zone_watermark_ok(zone, order, mark, classzone_idx, 0)`; `mark` defaults to
    `high_wmark_pages`."""
    if mark is None:
        mark = high_wmark_pages(m, z)
    return bool(_zone_ok(m.zones, z, order, mark, classzone_idx))


def pgdat_balanced(m: Machine, order: int) -> bool:
    """2.6.24 `balance_pgdat()`'s test at DEF_PRIORITY: every populated zone OK at
    `high_wmark_pages` for `order` (classzone 0). (6.1's `pgdat_balanced` asks for one eligible
    zone; the model keeps 2.6.24's.)"""
    return all(zone_ok(m, z, order) for z in m.populated_zones())


def _lru_pages(m: Machine, z: int) -> int:
    return int(m.zones[z]["nr_lru"].sum())


#: How long a count of NR_ANON_PAGES serves reclaim (simulated seconds); see `nr_anon_pages`.
NR_ANON_MAX_AGE_S = 10.0


def nr_anon_pages(m: Machine) -> int:
    """NR_ANON_PAGES + NR_FILE_MAPPED, `shrink_active_list`'s mapped pages. The kernel keeps the
    counters; the model counts the page array, at most once per NR_ANON_MAX_AGE_S of simulated
    time (the ratio is a percentage of memory and moves slowly)."""
    st = reclaim_state(m)
    if st.nr_anon < 0 or not 0 <= float(m.now) - st.nr_anon_at < NR_ANON_MAX_AGE_S:
        st.nr_anon = int(count_mapped(m.pages))
        st.nr_anon_at = float(m.now)
    return st.nr_anon


def _reclaim_mapped(m: Machine, z: int, priority: int, sc: ScanControl) -> bool:
    """The 2.6.24 `shrink_active_list()` decision to move mapped pages to the inactive list
    (`models.mm.vmscan.reclaim_mapped`), with NR_ANON_PAGES counted once per scan control."""
    if sc.mapped < 0:
        sc.mapped = nr_anon_pages(m)
    vm_total_pages = max(1, int(m.zones["present_pages"].sum()))
    return bool(vmscan.reclaim_mapped(m.zones[z], priority, reclaim_state(m).swappiness,
                                      sc.mapped, vm_total_pages))


def shrink_active_list(m: Machine, z: int, nr_pages: int, priority: int,
                       sc: ScanControl) -> None:
    """2.6.24 `shrink_active_list()` on zone `z` (`models.mm.vmscan.shrink_active_list`), with
    the reclaim_mapped decision made here."""
    if m.zones[z]["nr_lru"][LRU_ACTIVE] == 0:
        return
    buf = sc.buffers()[0]
    no_swap = int(m.node[0]["total_swap_pages"]) == 0
    # 2.6.24 computes reclaim_mapped only `if (sc->may_swap)`.
    rm = sc.may_swap and _reclaim_mapped(m, z, priority, sc)
    vmscan.shrink_active_list(m.pages, m.zones, m.node, z, nr_pages, sc.scan_order, rm, no_swap,
                              buf)


def hand_on(m: Machine, rec: np.ndarray, wb: np.ndarray, res: np.ndarray) -> int:
    """Hand on what a compiled scan left in `rec`, `wb` and `res` (`models.mm.vmscan`'s
    RES_* slots): reclaimed rows to `m.reclaimed`, `wb` entries to the writeback model
    (`_writeback_rows`). Returns the scan to add to `sc->nr_scanned`."""
    nrec = int(res[vmscan.RES_NR_RECLAIMED_ROWS])
    if nrec:
        record_reclaimed(m, rec[:nrec].copy())
    nwb = int(res[vmscan.RES_NR_WRITEBACK])
    if nwb:
        _writeback_rows(m, wb[:nwb])
    return int(res[vmscan.RES_SC_NR_SCANNED])


def _writeback_rows(m: Machine, wb: np.ndarray) -> None:
    """Hand on `shrink_page_list`'s `wb` entries: pages whose writeback reclaim started are
    queued (PG_reclaim); pages it met under writeback (-1 - pfn, 6.1's rule) get PG_reclaim
    on the batch they are being written in (`writeback.set_reclaim`)."""
    started = wb[wb >= 0]
    if started.shape[0]:
        queue_writeback(m, started)
    met = wb[wb < 0]
    if met.shape[0]:
        set_reclaim(m, -1 - met)


def shrink_inactive_list(m: Machine, z: int, max_scan: int, sc: ScanControl) -> int:
    """2.6.24 `shrink_inactive_list()` on zone `z` (`models.mm.vmscan.shrink_inactive_list`):
    hands reclaimed rows to `m.reclaimed` and started writeback to the queue. Returns pages
    reclaimed; adds to `sc.nr_scanned`. `max_scan` must not exceed `sc.swap_cluster_max`."""
    buf, rec, wb, res = sc.buffers()
    vmscan.shrink_inactive_list(m.pages, m.zones, m.pageblock_type, m.node, z, max_scan,
                                sc.swap_cluster_max, sc.scan_order, sc.kswapd,
                                bool(sc.gfp_mask & GFP.FS), bool(sc.gfp_mask & GFP.IO),
                                sc.sync_writeback, sc.may_writepage, sc.may_swap, buf, rec, wb,
                                res)
    sc.nr_scanned += hand_on(m, rec, wb, res)
    reclaim_state(m).congestion_waits += int(res[vmscan.RES_CONGESTION_WAITS])
    return int(res[vmscan.RES_NR_RECLAIMED])


def shrink_zone(m: Machine, z: int, priority: int, sc: ScanControl) -> int:
    """2.6.24 `shrink_zone()`: add `(nr >> priority) + 1` to the zone's scan counts and, once a
    count reaches swap_cluster_max, scan that many pages in swap_cluster_max chunks, active and
    inactive lists in turn. Returns pages reclaimed."""
    zone = m.zones[z]
    scm = sc.swap_cluster_max
    zone["nr_scan_active"] += (int(zone["nr_lru"][LRU_ACTIVE]) >> priority) + 1
    nr_active = int(zone["nr_scan_active"])
    if nr_active >= scm:
        zone["nr_scan_active"] = 0
    else:
        nr_active = 0
    zone["nr_scan_inactive"] += (int(zone["nr_lru"][LRU_INACTIVE]) >> priority) + 1
    nr_inactive = int(zone["nr_scan_inactive"])
    if nr_inactive >= scm:
        zone["nr_scan_inactive"] = 0
    else:
        nr_inactive = 0
    if not (nr_active or nr_inactive):
        return 0
    # The loop runs compiled (`vmscan.shrink_zone_lists`); its rows are handed on after it.
    buf = sc.buffers()[0]
    chunks = -(-max(nr_active, nr_inactive) // scm)
    room = nr_inactive + chunks * ((1 << sc.scan_order) + scm)
    rec = np.empty((room, 3), np.int64)
    wb = np.empty(room, np.int64)
    res = np.zeros(vmscan.RES_SIZE, np.int64)
    st = reclaim_state(m)
    if sc.mapped < 0:
        sc.mapped = nr_anon_pages(m)
    vm_total_pages = max(1, int(m.zones["present_pages"].sum()))
    nr_reclaimed = int(vmscan.shrink_zone_lists(
        m.pages, m.zones, m.pageblock_type, m.node, z, nr_active, nr_inactive, scm,
        sc.scan_order, sc.kswapd, bool(sc.gfp_mask & GFP.FS), bool(sc.gfp_mask & GFP.IO),
        sc.sync_writeback, sc.may_writepage, sc.may_swap,
        int(m.node[0]["total_swap_pages"]) == 0, priority, st.swappiness,
        sc.mapped, vm_total_pages, buf, rec, wb, res))
    sc.nr_scanned += hand_on(m, rec, wb, res)
    st.congestion_waits += int(res[vmscan.RES_CONGESTION_WAITS])
    return nr_reclaimed


def _shrink_zones(m: Machine, priority: int, zonelist: list[int], sc: ScanControl) -> int:
    """2.6.24 `shrink_zones()`: each zone of the zonelist, all_unreclaimable ones only at
    DEF_PRIORITY."""
    nr_reclaimed = 0
    sc.all_unreclaimable = True
    for z in zonelist:
        zone = m.zones[z]
        if priority < zone["prev_priority"]:  # note_zone_scanning_priority()
            zone["prev_priority"] = priority
        if zone["all_unreclaimable"] and priority != DEF_PRIORITY:
            continue
        sc.all_unreclaimable = False
        nr_reclaimed += shrink_zone(m, z, priority, sc)
    return nr_reclaimed


def try_to_free_pages(m: Machine, order: int, gfp_mask: int, high_zone: int, *,
                      sync_writeback: bool = True) -> int:
    """2.6.24 `try_to_free_pages()`: direct reclaim for an allocation of `order` whose zonelist is
    `high_zone` down to DMA. Returns pages reclaimed (LRU plus slab).

    Counts allocstall. For each priority from DEF_PRIORITY to 0: `shrink_zones`, then
    `shrink_slab(sc.nr_scanned, gfp_mask, lru_pages)`; stops once SWAP_CLUSTER_MAX pages were
    reclaimed (the same target for every order, as in 2.6.24). A `congestion_wait` is counted
    for every priority below DEF_PRIORITY - 2 that scanned something. The kernel's return value
    (1 on that target, or when some zone was not all_unreclaimable) is kept in
    `reclaim_state(m).last_progress`. On a policy with 6.1's reclaim it is 6.1's
    (`models.mm.reclaim_6_1.try_to_free_pages`).
    """
    if m.policy.reclaim == "6.1":
        from fragsim.models.mm import reclaim_6_1

        return reclaim_6_1.try_to_free_pages(m, order, gfp_mask, high_zone)
    st = reclaim_state(m)
    complete_writeback(m)
    m.node[0]["stat"][STAT["allocstall"]] += 1
    sc = scan_control(m, order, gfp_mask, kswapd=False, sync_writeback=sync_writeback)
    zonelist = [z for z in range(high_zone, -1, -1) if m.zones[z]["present_pages"] > 0]
    lru_pages = sum(_lru_pages(m, z) for z in zonelist)
    nr_reclaimed = 0
    ret = 0
    priority = DEF_PRIORITY
    while priority >= 0:
        sc.nr_scanned = 0
        nr_reclaimed += _shrink_zones(m, priority, zonelist, sc)
        nr_reclaimed += shrink_slab(m, sc.nr_scanned, gfp_mask, lru_pages)[1]
        if nr_reclaimed >= sc.swap_cluster_max:
            ret = 1
            break
        if sc.nr_scanned and priority < DEF_PRIORITY - 2:
            st.congestion_waits += 1
        priority -= 1
    else:
        if not sc.all_unreclaimable:
            ret = 1
    for z in zonelist:
        m.zones[z]["prev_priority"] = max(priority, 0)
    st.last_progress = ret
    if nr_reclaimed:
        st.kswapd_failures = 0  # 6.1 shrink_node: "A successful direct reclaim run will revive
        # a dormant kswapd" (read only by `models.mm.kswapd_6_1`)
    return nr_reclaimed


def balance_pgdat(m: Machine, order: int, *, max_passes: int = 1000,
                  highest_zoneidx: int | None = None) -> int:
    """kswapd's `balance_pgdat()` once: `balance_pgdat_2_6_24`, or on a policy with 6.1's kswapd
    (6.1, 6.15) 6.1's (`models.mm.kswapd_6_1.balance_pgdat_6_1`, for the zones up to
    `highest_zoneidx`, default the highest populated one; `max_passes` does not apply).
    Returns pages reclaimed."""
    if m.policy.kswapd != "6.1":
        return balance_pgdat_2_6_24(m, order, max_passes=max_passes)
    from fragsim.models.mm.kswapd_6_1 import balance_pgdat_6_1

    if highest_zoneidx is None or highest_zoneidx < 0:
        highest_zoneidx = m.populated_zones()[-1]
    return balance_pgdat_6_1(m, order, highest_zoneidx)[0]


def balance_pgdat_2_6_24(m: Machine, order: int, *, max_passes: int = 1000) -> int:
    """2.6.24 `balance_pgdat()`: kswapd reclaims until every zone is OK at pages_high for `order`.

    Each pass (pageoutrun) walks priorities down: find the highest zone not OK at pages_high;
    then shrink zones DMA up to it (a zone already OK at 8 x pages_high is left alone), shrink
    slab, mark a zone all_unreclaimable after 6 x its LRU scanned with no slab progress; stop the
    pass when all zones are OK or SWAP_CLUSTER_MAX pages were reclaimed, and start another pass
    unless all were OK. `max_passes` bounds the passes (the kernel's kswapd would have slept and
    let time pass). Returns pages reclaimed over all passes (the kernel returns the last pass's).
    Every mark is `high_wmark_pages`, which includes a 5.0+ zone's watermark boost.
    """
    st = reclaim_state(m)
    complete_writeback(m)
    nd = m.node[0]
    nz = m.zones.shape[0]
    total_reclaimed = 0
    for _ in range(max_passes):
        nr_reclaimed = 0
        total_scanned = 0
        nd["stat"][STAT["pageoutrun"]] += 1
        temp_priority = [DEF_PRIORITY] * nz
        sc = scan_control(m, order, int(GFP_KERNEL), kswapd=True)
        all_zones_ok = True
        for priority in range(DEF_PRIORITY, -1, -1):
            all_zones_ok = True
            end_zone = -1
            for i in range(nz - 1, -1, -1):
                zone = m.zones[i]
                if zone["present_pages"] == 0:
                    continue
                if zone["all_unreclaimable"] and priority != DEF_PRIORITY:
                    continue
                if not zone_ok(m, i, order, high_wmark_pages(m, i), 0):
                    end_zone = i
                    break
            if end_zone < 0:
                break
            lru_pages = sum(_lru_pages(m, i) for i in range(end_zone + 1))
            for i in range(end_zone + 1):
                zone = m.zones[i]
                if zone["present_pages"] == 0:
                    continue
                if zone["all_unreclaimable"] and priority != DEF_PRIORITY:
                    continue
                high = high_wmark_pages(m, i)
                if not zone_ok(m, i, order, high, end_zone):
                    all_zones_ok = False
                temp_priority[i] = priority
                sc.nr_scanned = 0
                if priority < zone["prev_priority"]:
                    zone["prev_priority"] = priority
                # Equal pressure on every zone, unless one has way too many pages free already.
                if not zone_ok(m, i, order, 8 * high, end_zone):
                    nr_reclaimed += shrink_zone(m, i, priority, sc)
                nr_slab, slab_pages = shrink_slab(m, sc.nr_scanned, int(GFP_KERNEL), lru_pages)
                nr_reclaimed += slab_pages
                total_scanned += sc.nr_scanned
                if zone["all_unreclaimable"]:
                    continue
                if nr_slab == 0 and zone["pages_scanned"] >= _lru_pages(m, i) * 6:
                    zone["all_unreclaimable"] = 1
            if all_zones_ok:
                break
            if total_scanned and priority < DEF_PRIORITY - 2:
                st.congestion_waits += 1
            if nr_reclaimed >= SWAP_CLUSTER_MAX:
                break
        for i in range(nz):
            m.zones[i]["prev_priority"] = temp_priority[i]
        total_reclaimed += nr_reclaimed
        if all_zones_ok:
            break
    return total_reclaimed


def drop_caches(m: Machine, mode: int) -> int:
    """Write `mode` to /proc/sys/vm/drop_caches (2.6.24 `fs/drop_caches.c`): 1 frees clean page
    cache, 2 shrinks slab (`drop_slab`; 6.1's `drop_slab_6_1` under 6.1's reclaim), 3 both.
    Dirty pages and pages under writeback stay. Returns pages freed (page cache plus slab)."""
    if mode not in (1, 2, 3):
        raise ValueError(f"drop_caches mode {mode} is not 1, 2 or 3")
    nd = m.node[0]
    freed = 0
    if mode & 1:
        cap = int(m.zones["nr_lru"].sum())
        rec = np.empty((cap, 3), np.int64)
        n = int(vmscan.drop_pagecache(m.pages, m.zones, m.pageblock_type, m.node, rec))
        if n:
            record_reclaimed(m, rec[:n].copy())
        nd["stat"][STAT["drop_pagecache"]] += 1
        freed += n
    if mode & 2:
        if m.policy.reclaim == "6.1":
            from fragsim.models.mm.slab_6_1 import drop_slab_6_1

            freed += drop_slab_6_1(m)  # 6.1 drop_slab(): priority 0 until it frees little
        else:
            freed += drop_slab(m)
        nd["stat"][STAT["drop_slab"]] += 1
    return freed


def alloc_lru_pages(m: Machine, n: int, kind: int, owner: int, dirty: bool = False, *,
                    gfp: int | None = None, alloc_flags: int = ALLOC_WMARK_LOW) -> np.ndarray:
    """Allocate `n` order-0 user pages (fast path only) and put them on the LRU.

    KIND_ANON pages go to the active list (`lru_cache_add_active`, as a new anonymous fault
    does; the inactive one under 6.1's reclaim, `lru.new_anon_active`) and are PG_DIRTY (not
    yet in swap); KIND_FILE pages go to the inactive list (`lru_cache_add`), PG_DIRTY if
    `dirty` (written, not yet written back). The request is
    GFP_HIGHUSER_MOVABLE unless `gfp` says otherwise. Returns the pfns, -1 where it failed.
    """
    if kind not in (KIND_ANON, KIND_FILE):
        raise ValueError(f"kind {kind} is not KIND_ANON or KIND_FILE")
    reclaim_state(m)
    mask = int(GFP_HIGHUSER_MOVABLE) if gfp is None else gfp
    pfns = m.alloc_many(0, n, mask, owner=owner, kind=kind, alloc_flags=alloc_flags)
    ok = np.ascontiguousarray(pfns[pfns >= 0])
    anon_active = kind == KIND_ANON and new_anon_active(m.policy.reclaim)
    active = np.full(ok.shape[0], 1 if anon_active else 0, np.int64)
    lru_add_batch(m.pages, m.zones, ok, active)
    if kind == KIND_ANON or dirty:
        set_dirty_batch(m.pages, ok, True)
    return pfns


def free_lru_pages(m: Machine, pfns: np.ndarray) -> np.ndarray:
    """The owner frees user pages (exit, truncate): a clean anonymous page is a swap-cache page,
    whose slot `free_swap_and_cache()` releases. Returns each page's FREE_* status."""
    pfns = np.ascontiguousarray(pfns, dtype=np.int64)
    reclaim_state(m)
    flags = m.pages["flags"][pfns]
    kinds = m.pages["mt"][pfns] >> KIND_SHIFT
    swapcache = ((flags & PG_HEAD) != 0) & (kinds == KIND_ANON) & ((flags & PG_DIRTY) == 0)
    nd = m.node[0]
    nd["nr_swap_pages"] = min(int(nd["total_swap_pages"]),
                              int(nd["nr_swap_pages"]) + int(np.count_nonzero(swapcache)))
    return m.free_batch(pfns)

"""Linux 6.1 reclaim around the compiled scanner (`models.mm.vmscan_6_1`): `shrink_node`,
`prepare_scan_count`, `get_scan_count`, `inactive_is_low`, `lru_note_cost`,
`should_continue_reclaim`, `compaction_ready`, `shrink_zones` and `do_try_to_free_pages`
(`mm/vmscan.c` and `mm/swap.c` of 6.1.y, read at unifreq/linux-6.1.y 07badeaa; CONFIG_LRU_GEN
off, as Debian builds 6.1). The 6.1 and 6.15 presets use it (`Policy.reclaim == "6.1"`), which
also splits the zones' LRU lists into anon and file (`split_lru`, `models.mm.lru`) and puts
new anonymous pages on the inactive anon list (5.9 `lru_cache_add_inactive_or_unevictable`).

What decides which pages survive reclaim on 6.1 and not on 2.6.24:

- **The active lists are scanned only when `may_deactivate` allows.** `prepare_scan_count`
  sets DEACTIVATE_FILE only when refaults were seen (the model has no workingset shadow
  entries, so never) or `inactive_is_low(LRU_INACTIVE_FILE)`: `inactive * inactive_ratio <
  active`, `inactive_ratio = int_sqrt(10 * gb)` (1 below 1 GiB). While streaming I/O keeps the
  inactive file list long, active page cache is not touched at all; 2.6.24's `shrink_zone`
  scans the active list at every priority.
- **No swap, no anon scan.** `get_scan_count` is SCAN_FILE without a free swap slot
  (`can_reclaim_anon_pages`) or `may_swap`; otherwise SCAN_EQUAL at priority 0 with
  swappiness, SCAN_ANON when the file LRU is tiny, SCAN_FILE in `cache_trim_mode` (enough
  inactive file and no file deactivation), else SCAN_FRACT by `anon_cost`/`file_cost`
  (`lru_note_cost`: pages written by `pageout`; decayed by half once they pass a quarter of
  the LRU). Targets are `lruvec_lru_size >> priority`.
- **Reclaim does not write page cache** (`models.mm.vmscan_6_1.shrink_folio_list`): a dirty
  page-cache page it meets is flagged PG_reclaim and activated, and rotated to the inactive
  tail when the flusher has written it (`writeback.queue_writeback` picks the flag up).
- **Slab** is shrunk once per `shrink_node` at the scan priority (`slab_6_1.shrink_slab_6_1`,
  6.1 `do_shrink_slab`), not in proportion to the LRU scan as 2.6.24 does.

Simplified (README, model limits): one node, no memcg (`mem_cgroup_lruvec` is the node's, no
protection), no MGLRU, no refaults, no `vmpressure`, no reclaim throttling
(`reclaim_throttle`, `throttle_direct_reclaim`, LRUVEC_CONGESTED), no PGDAT_WRITEBACK or
PGDAT_DIRTY, no soft limit reclaim; the lists are per zone (`models.mm.vmscan_6_1`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.mm import vmscan_6_1
from fragsim.models.mm.alloc import zone_watermark_ok
from fragsim.models.mm.constants import PAGE_ALLOC_COSTLY_ORDER, PAGE_SHIFT
from fragsim.models.mm.gfp import GFP
from fragsim.models.mm.reclaim import hand_on, high_wmark_pages
from fragsim.models.mm.reclaim_state import DEF_PRIORITY, reclaim_state
from fragsim.models.mm.slab_6_1 import shrink_slab_6_1
from fragsim.models.mm.state import (
    LRU_ACTIVE_ANON,
    LRU_ACTIVE_FILE,
    LRU_INACTIVE_ANON,
    LRU_INACTIVE_FILE,
    NR_LRU_LISTS,
    STAT,
)
from fragsim.models.mm.vmscan_6_1 import DEACTIVATE_ANON, DEACTIVATE_FILE

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = [
    "SCAN_ANON",
    "SCAN_EQUAL",
    "SCAN_FILE",
    "SCAN_FRACT",
    "ScanControl61",
    "compaction_ready",
    "get_scan_count",
    "inactive_is_low",
    "lru_note_cost",
    "prepare_scan_count",
    "scan_control",
    "should_continue_reclaim",
    "shrink_inactive_list",
    "shrink_node",
    "try_to_free_pages",
]

#: 6.1 `enum scan_balance`.
SCAN_EQUAL = 0
SCAN_FRACT = 1
SCAN_ANON = 2
SCAN_FILE = 3
SWAP_CLUSTER_MAX = 32


@dataclass
class ScanControl61:
    """The fields of 6.1 `struct scan_control` the model uses."""

    gfp_mask: int
    order: int
    reclaim_idx: int
    nr_to_reclaim: int
    kswapd: bool
    priority: int = DEF_PRIORITY
    may_writepage: bool = True
    may_swap: bool = True
    nr_reclaimed: int = 0
    nr_scanned: int = 0
    may_deactivate: int = 0
    force_deactivate: bool = False
    skipped_deactivate: bool = False
    cache_trim_mode: bool = False
    file_is_tiny: bool = False
    compaction_ready: bool = False
    buf: np.ndarray = field(default_factory=lambda: np.empty(SWAP_CLUSTER_MAX, np.int64))


def _node_lru(m: Machine, lru: int, hz: int | None = None) -> int:
    """`lruvec_page_state(lruvec, NR_LRU_BASE + lru)` (every zone), or with `hz`
    `lruvec_lru_size(lruvec, lru, hz)` (the zones up to `hz`)."""
    nr = m.zones["nr_lru"][:, lru]
    return int(nr.sum() if hz is None else nr[:hz + 1].sum())


def inactive_is_low(m: Machine, inactive_lru: int) -> bool:
    """6.1 `inactive_is_low()`: `inactive * inactive_ratio < active`, where the ratio is
    `int_sqrt(10 * gb)` of the two lists' size in GiB, or 1 under 1 GiB."""
    inactive = _node_lru(m, inactive_lru)
    active = _node_lru(m, inactive_lru + 1)
    gb = (inactive + active) >> (30 - PAGE_SHIFT)
    inactive_ratio = math.isqrt(10 * gb) if gb else 1
    return inactive * inactive_ratio < active


def _can_reclaim_anon(m: Machine) -> bool:
    """6.1 `can_reclaim_anon_pages()` for global reclaim: a free swap slot (no demotion)."""
    return int(m.node[0]["nr_swap_pages"]) > 0


def _can_age_anon(m: Machine) -> bool:
    """6.1 `can_age_anon_pages()`: "Aging the anon LRU is valuable if swap is present"."""
    return int(m.node[0]["total_swap_pages"]) > 0


def prepare_scan_count(m: Machine, sc: ScanControl61) -> None:
    """6.1 `prepare_scan_count()`: `may_deactivate` (no refaults in the model, so only
    `inactive_is_low`, or everything with `force_deactivate`), `cache_trim_mode` and
    `file_is_tiny`."""
    if not sc.force_deactivate:
        sc.may_deactivate = 0
        if inactive_is_low(m, LRU_INACTIVE_ANON):
            sc.may_deactivate |= DEACTIVATE_ANON
        if inactive_is_low(m, LRU_INACTIVE_FILE):
            sc.may_deactivate |= DEACTIVATE_FILE
    else:
        sc.may_deactivate = DEACTIVATE_ANON | DEACTIVATE_FILE
    # "If we have plenty of inactive file pages that aren't thrashing, try to reclaim those
    # first before touching anonymous pages."
    file = _node_lru(m, LRU_INACTIVE_FILE)
    sc.cache_trim_mode = bool(file >> sc.priority) and not sc.may_deactivate & DEACTIVATE_FILE
    # "Prevent the reclaimer from falling into the cache trap"
    free = int(m.zones["free_pages"].sum())
    file = _node_lru(m, LRU_ACTIVE_FILE) + _node_lru(m, LRU_INACTIVE_FILE)
    total_high_wmark = sum(high_wmark_pages(m, z) for z in m.populated_zones())
    anon = _node_lru(m, LRU_INACTIVE_ANON)
    sc.file_is_tiny = (file + free <= total_high_wmark
                       and not sc.may_deactivate & DEACTIVATE_ANON
                       and bool(anon >> sc.priority))


def get_scan_count(m: Machine, sc: ScanControl61) -> np.ndarray:
    """6.1 `get_scan_count()`: how many pages of each list to scan (module docstring)."""
    st = reclaim_state(m)
    swappiness = st.swappiness
    fraction = (0, 0)
    denominator = 1
    if not sc.may_swap or not _can_reclaim_anon(m):
        balance = SCAN_FILE
    elif not sc.priority and swappiness:
        balance = SCAN_EQUAL
    elif sc.file_is_tiny:
        balance = SCAN_ANON
    elif sc.cache_trim_mode:
        balance = SCAN_FILE
    else:
        balance = SCAN_FRACT
        total_cost = st.anon_cost + st.file_cost
        anon_cost = total_cost + st.anon_cost
        file_cost = total_cost + st.file_cost
        total_cost = anon_cost + file_cost
        ap = swappiness * (total_cost + 1) // (anon_cost + 1)
        fp = (200 - swappiness) * (total_cost + 1) // (file_cost + 1)
        fraction = (ap, fp)
        denominator = ap + fp
    nr = np.zeros(NR_LRU_LISTS, np.int64)
    for lru in range(NR_LRU_LISTS):
        file = lru >= LRU_INACTIVE_FILE
        scan = _node_lru(m, lru, sc.reclaim_idx) >> sc.priority
        if balance == SCAN_FRACT:
            scan = scan * fraction[file] // max(denominator, 1)
        elif balance in (SCAN_FILE, SCAN_ANON) and (balance == SCAN_FILE) != file:
            scan = 0
        nr[lru] = scan
    return nr


def lru_note_cost(m: Machine, file: bool, nr_pages: int) -> None:
    """6.1 `lru_note_cost()`: add a reclaim cost (pages written out) to the list type, and
    halve both costs once they exceed a quarter of the LRU."""
    if nr_pages <= 0:
        return
    st = reclaim_state(m)
    if file:
        st.file_cost += nr_pages
    else:
        st.anon_cost += nr_pages
    lrusize = int(m.zones["nr_lru"].sum())
    if st.file_cost + st.anon_cost > lrusize // 4:
        st.file_cost //= 2
        st.anon_cost //= 2


def _shrink_lruvec(m: Machine, sc: ScanControl61) -> None:
    """6.1 `shrink_lruvec()`: `get_scan_count`, the compiled loop, then the anon aging."""
    nr = get_scan_count(m, sc)
    proportional = not sc.kswapd and sc.priority == DEF_PRIORITY
    inactive = int(nr[LRU_INACTIVE_ANON] + nr[LRU_INACTIVE_FILE])
    room = inactive + 2 * SWAP_CLUSTER_MAX
    rec = np.empty((room, 3), np.int64)
    wb = np.empty(room, np.int64)
    res = np.zeros(vmscan_6_1.RES_SIZE_6_1, np.int64)
    gfp = sc.gfp_mask
    nr_reclaimed = int(vmscan_6_1.shrink_lruvec_lists(
        m.pages, m.zones, m.pageblock_type, m.node, sc.reclaim_idx, nr, sc.nr_to_reclaim,
        proportional, sc.may_deactivate, sc.kswapd, bool(gfp & GFP.IO), sc.may_writepage,
        sc.buf, rec, wb, res))
    _hand_on(m, rec, wb, res, sc)
    sc.nr_reclaimed += nr_reclaimed
    if res[vmscan_6_1.RES_SKIPPED_DEACTIVATE]:
        sc.skipped_deactivate = True
    # "Even if we did not try to evict anon pages at all, we want to rebalance the anon lru
    # active/inactive ratio."
    if _can_age_anon(m) and inactive_is_low(m, LRU_INACTIVE_ANON):
        z = int(np.argmax(m.zones["nr_lru"][:sc.reclaim_idx + 1, LRU_ACTIVE_ANON]))
        vmscan_6_1.shrink_active_list(m.pages, m.zones, m.node, z, LRU_ACTIVE_ANON,
                                      SWAP_CLUSTER_MAX, sc.buf)


def _hand_on(m: Machine, rec: np.ndarray, wb: np.ndarray, res: np.ndarray,
             sc: ScanControl61) -> None:
    """Reclaimed rows, writeback started and PG_reclaim flags on (`reclaim.hand_on`), the
    scan to `sc`, the anon pageout cost to `lru_note_cost`."""
    sc.nr_scanned += hand_on(m, rec, wb, res)
    lru_note_cost(m, False, int(res[vmscan_6_1.RES_NR_PAGEOUT]))


def scan_control(m: Machine, order: int, gfp_mask: int, kswapd: bool,
                 reclaim_idx: int | None = None) -> ScanControl61:
    """A `ScanControl61` for reclaim on `m` (`reclaim_idx` defaults to the highest populated
    zone; the target `nr_to_reclaim` to SWAP_CLUSTER_MAX)."""
    reclaim_state(m)  # swapon on first use
    hz = m.populated_zones()[-1] if reclaim_idx is None else reclaim_idx
    return ScanControl61(gfp_mask=int(gfp_mask), order=order, reclaim_idx=hz,
                         nr_to_reclaim=SWAP_CLUSTER_MAX, kswapd=kswapd)


def shrink_inactive_list(m: Machine, z: int, lru: int, nr_to_scan: int,
                         sc: ScanControl61) -> int:
    """6.1 `shrink_inactive_list()` on zone `z`'s inactive list `lru` (at most
    SWAP_CLUSTER_MAX pages: `models.mm.vmscan_6_1.shrink_inactive_list`), its rows handed on.
    Returns pages reclaimed; adds to `sc.nr_scanned` and `sc.nr_reclaimed`."""
    if lru not in (LRU_INACTIVE_ANON, LRU_INACTIVE_FILE) or not 0 <= nr_to_scan <= SWAP_CLUSTER_MAX:
        raise ValueError(f"shrink_inactive_list: list {lru}, {nr_to_scan} pages: an inactive "
                         f"list and at most {SWAP_CLUSTER_MAX} pages")
    room = nr_to_scan + SWAP_CLUSTER_MAX
    rec = np.empty((room, 3), np.int64)
    wb = np.empty(room, np.int64)
    res = np.zeros(vmscan_6_1.RES_SIZE_6_1, np.int64)
    got = int(vmscan_6_1.shrink_inactive_list(
        m.pages, m.zones, m.pageblock_type, m.node, z, lru, nr_to_scan, sc.kswapd,
        bool(sc.gfp_mask & GFP.IO), sc.may_writepage, sc.buf, rec, wb, res))
    _hand_on(m, rec, wb, res, sc)
    sc.nr_reclaimed += got
    return got


def _shrink_slab(m: Machine, sc: ScanControl61) -> int:
    """6.1 `shrink_slab(sc->gfp_mask, nid, memcg, sc->priority)`; returns slab pages freed
    (`reclaim_state->reclaimed_slab`)."""
    return int(shrink_slab_6_1(m, sc.gfp_mask, sc.priority)[1])


def _in_reclaim_compaction(sc: ScanControl61) -> bool:
    """6.1 `in_reclaim_compaction()`."""
    return bool(sc.gfp_mask & GFP.IO) and sc.order > 0 and (
        sc.order > PAGE_ALLOC_COSTLY_ORDER or sc.priority < DEF_PRIORITY - 2)


def should_continue_reclaim(m: Machine, nr_reclaimed: int, sc: ScanControl61) -> bool:
    """6.1 `should_continue_reclaim()`: reclaim/compaction goes on while it makes progress, no
    eligible zone is ready for compaction and the inactive lists exceed `compact_gap`."""
    from fragsim.models.mm import compaction_6_1 as c61
    from fragsim.models.mm.kcompactd import SUITABLE_6_1, compaction_suitable

    if not _in_reclaim_compaction(sc) or not nr_reclaimed:
        return False
    for z in m.populated_zones():
        if z > sc.reclaim_idx:
            continue
        suitable = SUITABLE_6_1[compaction_suitable(m, z, sc.order, 0, sc.reclaim_idx)]
        if suitable in (c61.COMPACT_SUCCESS, c61.COMPACT_CONTINUE):
            return False
    inactive = _node_lru(m, LRU_INACTIVE_FILE)
    if _can_reclaim_anon(m):
        inactive += _node_lru(m, LRU_INACTIVE_ANON)
    return inactive > (2 << sc.order)  # compact_gap(sc->order)


def shrink_node(m: Machine, sc: ScanControl61) -> None:
    """6.1 `shrink_node()`: `prepare_scan_count`, `shrink_lruvec`, `shrink_slab` (its pages
    count as reclaimed), again while `should_continue_reclaim`; progress resets
    `kswapd_failures`."""
    reclaimable = False
    while True:  # again:
        nr_reclaimed = sc.nr_reclaimed
        prepare_scan_count(m, sc)
        _shrink_lruvec(m, sc)
        sc.nr_reclaimed += _shrink_slab(m, sc)
        if sc.nr_reclaimed - nr_reclaimed:
            reclaimable = True
        if not should_continue_reclaim(m, sc.nr_reclaimed - nr_reclaimed, sc):
            break
    if reclaimable:
        reclaim_state(m).kswapd_failures = 0  # "On reclaim progress, reset the failure counter"


def compaction_ready(m: Machine, z: int, sc: ScanControl61) -> bool:
    """6.1 `compaction_ready()`: the allocation would succeed, or compaction could run and the
    zone is above its high mark plus `compact_gap`."""
    from fragsim.models.mm import compaction_6_1 as c61
    from fragsim.models.mm.kcompactd import SUITABLE_6_1, compaction_suitable

    if not sc.gfp_mask & GFP.IO:
        return False
    suitable = SUITABLE_6_1[compaction_suitable(m, z, sc.order, 0, sc.reclaim_idx)]
    if suitable == c61.COMPACT_SUCCESS:
        return True
    if suitable == c61.COMPACT_SKIPPED:
        return False
    mark = high_wmark_pages(m, z) + (2 << sc.order)  # + compact_gap(sc->order)
    return bool(zone_watermark_ok(m.zones[z], 0, mark, sc.reclaim_idx, 0))


def try_to_free_pages(m: Machine, order: int, gfp_mask: int, high_zone: int) -> int:
    """6.1 `try_to_free_pages()` / `do_try_to_free_pages()`: direct reclaim of
    SWAP_CLUSTER_MAX pages for an allocation of `order` whose zonelist is `high_zone` down to
    DMA. Each priority from DEF_PRIORITY down to 0 runs `shrink_zones` (a zone ready for
    compaction, for a costly order, is passed over; the node is shrunk once) until the target
    is met or compaction is ready. Returns pages reclaimed; 1 when compaction is ready; with
    nothing reclaimed but active lists skipped, it retries once with `force_deactivate`."""
    from fragsim.models.mm.writeback import complete_writeback

    complete_writeback(m)
    nd = m.node[0]
    zonelist = [z for z in range(high_zone, -1, -1) if m.zones[z]["present_pages"] > 0]
    sc = ScanControl61(gfp_mask=int(gfp_mask), order=order, reclaim_idx=high_zone,
                       nr_to_reclaim=SWAP_CLUSTER_MAX, kswapd=False)
    while True:  # retry:
        nd["stat"][STAT["allocstall"]] += 1
        while True:
            sc.nr_scanned = 0
            # shrink_zones()
            shrunk = False
            for z in zonelist:
                if order > PAGE_ALLOC_COSTLY_ORDER and compaction_ready(m, z, sc):
                    sc.compaction_ready = True
                    continue
                if shrunk:
                    continue  # zone->zone_pgdat == last_pgdat
                shrunk = True
                shrink_node(m, sc)
            if sc.nr_reclaimed >= sc.nr_to_reclaim or sc.compaction_ready:
                break
            if sc.priority < DEF_PRIORITY - 2:
                sc.may_writepage = True
            sc.priority -= 1
            if sc.priority < 0:
                break
        if sc.nr_reclaimed:
            return sc.nr_reclaimed
        if sc.compaction_ready:
            return 1
        if sc.skipped_deactivate:
            sc.priority = DEF_PRIORITY
            sc.force_deactivate = True
            sc.skipped_deactivate = False
            continue
        return 0

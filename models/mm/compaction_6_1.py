"""Memory compaction of Linux 6.1: `mm/compaction.c` and `migrate_pages` (`mm/migrate.c`) of
6.1.y, read at unifreq/linux-6.1.y 07badeaa, for the 6.1 and 6.15 presets (`Policy.compaction`).

The two scanners of 2.6.35 (`models.mm.compaction`) with everything 3.x-6.1 added:

- **Skip hints.** A pageblock's PG_migrate_skip bit (`m.pageblock_skip`, 6.1's
  `pageblock_flags` bit next to the migratetype) is set when a scanner passed the whole block
  and isolated nothing from it (`update_pageblock_skip`, `isolate_migratepages_block`'s end,
  `test_and_set_skip` at a block's first page, `fast_isolate_around`, `fast_find_migrateblock`)
  and cleared by `__reset_isolation_suitable`: when a direct compaction's scanners met
  (`compact_blockskip_flush`) and kswapd goes to sleep (`reset_isolation_suitable`), or when
  compaction restarts after the deferral maximum (`compaction_restarting`).
- **Cached scanner positions** per zone (`compact_cached_migrate_pfn[async, sync]`,
  `compact_cached_free_pfn`, `compact_init_*_pfn`): a run that is not `whole_zone` starts
  where the last ones stopped; the scanners meeting resets them (`reset_cached_positions`).
- **The migrate scanner** (`isolate_migratepages`, `isolate_migratepages_block`): a pageblock
  at a time from `fast_find_migrateblock`'s pick (for costly orders, a MOVABLE free block in
  the first part of the zone, found on the free lists of orders `order - 1 .. 3`) or the linear
  position; skip bits, `suitable_migration_source` (async direct compaction: only blocks of the
  request's type), free blocks and compound pages stepped over whole; pages under writeback
  are left alone below MIGRATE_SYNC (ISOLATE_ASYNC_MIGRATE), file pages without __GFP_FS; at
  most COMPACT_CLUSTER_MAX pages unless the block is rescanned (`cc->rescan`); async direct
  compaction drops an order-aligned block at its first page that cannot be isolated
  (`skip_on_failure`).
- **The free scanner** (`isolate_freepages`, `fast_isolate_freepages`,
  `isolate_freepages_block`): first a short search of the MOVABLE free lists below the
  request's order for a block in the top quarter of the scan space (`freelist_scan_limit`,
  `next_search_order`, `move_freelist_head`, `fast_isolate_around`), then the linear walk
  down from `free_pfn` over MOVABLE pageblocks that are not free pageblocks already
  (6.1 `suitable_migration_target`), with async's stride; free blocks are taken whole
  (`__isolate_free_page`: the zone must keep its *min* watermark, unboosted; a block of at
  least half a pageblock retypes mergeable pageblocks MOVABLE) and split into order-0 targets
  afterwards (`split_map_pages`, whose list order `compaction_alloc` then follows).
- **Migration** (`migrate_pages` with `compaction_alloc`/`compaction_free`): up to 10 passes;
  a failed page's target goes back to the compaction's own list (not to the buddy allocator);
  -ENOMEM (no target left) stops the batch; MIGRATE_SYNC waits on writeback from pass 3 (the
  model ends the writeback at once, as `models.mm.migrate` does), below it a page under
  writeback is a permanent failure. pgmigrate_fail counts 6.1's `nr_failed_pages`.
- **`compact_zone`**: `update_cached`, `rescan`, -ENOMEM with the scanners apart ends the run
  CONTENDED, async direct compaction skips the rest of an order-aligned block after a failed
  migration, and the local cpu's per-cpu lists of the zone are drained whenever the migrate
  scanner left the order-aligned block it migrated from (`lru_add_drain_cpu_zone`);
  `release_freepages` moves `compact_cached_free_pfn` back up. The old pages and the
  released targets are freed on the compacting cpu (`free_unref_page`: its per-order lists
  when per-cpu lists are on, `models.mm.migrate.free_migrated_page`).
- **`__compact_finished`**: scanners met (COMPLETE for a `whole_zone` run, else
  PARTIAL_SKIPPED; a direct compaction flags the zone for a skip-bit flush); proactive runs by
  fragmentation score; order -1 continues; then "always finish scanning a pageblock"; then a
  free block of the order on the request's list, or a fallback it may steal. Under 6.15
  defrag_mode kcompactd finishes by whole-pageblock watermarks instead (FINISH_DEFRAG_6_15).

Results are 6.1's `enum compact_result`.

The 6.1.y tree still has the bug fixed in 6.3 ("mm/compaction: fix set skip in
fast_find_migrateblock"): `fast_find_migrateblock` sets the skip bit of the block it picks and
`isolate_migratepages_block` then stops at that bit on the block's first page, so a
fast-found block is passed over and its linear scan starts at `fast_start_pfn` once the fast
search fails. The model keeps this.

Simplified (also in the README's model limits): no page capture (`capture_control`), lock
contention, `too_many_isolated`, non-LRU movable pages, pinned pages, hugetlb or CMA; every
allocated block of order > 0 counts as a compound page (the model does not record
`__GFP_COMP`); compaction takes no simulated time, so `kswapd_is_running`
never changes during a run. Counters: compact_migrate_scanned, compact_free_scanned,
compact_isolated (both scanners), pgmigrate_success, pgmigrate_fail; the isolated targets are
counted in pgalloc and, when released, in pgfree (as `models.mm.compaction` does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.mm.compaction import (
    COMPACT_MAX_DEFER_SHIFT,
    extfrag_for_order,
    free_target,
)
from fragsim.models.mm.compaction_scan_6_1 import (
    _CC_SIZE,
    _CPU,
    _DIRECT,
    _FAST_START,
    _FINISH,
    _FREE_PFN,
    _FREE_SCANNED,
    _FS,
    _HZ,
    _IGN_BLOCK,
    _IGN_SKIP,
    _ISOLATE_NONE,
    _MIG_SCANNED,
    _MIGRATE_PFN,
    _MODE,
    _MT,
    _NR_FREE,
    _NR_MIGRATE,
    _NR_ROWS,
    _ORDER,
    _PROACTIVE,
    _RESCAN,
    _SEARCH_ORDER,
    _WHOLE,
    MIGRATE_ASYNC,
    MIGRATE_SYNC,
    MIGRATE_SYNC_LIGHT,
    _block_end,
    _block_start,
    _isolate_freepages,
    _isolate_migratepages,
    _putback,
    _reset_cached_positions,
    reset_isolation_suitable_zone,
)
from fragsim.models.mm.constants import ALLOC_WMARK_HIGH, PG_WRITEBACK
from fragsim.models.mm.defrag_mode import kcompactd_finished_defrag
from fragsim.models.mm.fallback_6_1 import find_suitable_fallback
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.migrate import (
    move_to_new_page,
    page_migratable,
    push_row,
)
from fragsim.models.mm.pcp import drain_zone_pages_cpu
from fragsim.models.mm.reclaim_state import record_migrated
from fragsim.models.mm.state import STAT

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = [
    "COMPACT_COMPLETE",
    "COMPACT_CONTENDED",
    "COMPACT_CONTINUE",
    "COMPACT_DEFERRED",
    "COMPACT_NOT_SUITABLE_ZONE",
    "COMPACT_NO_SUITABLE_PAGE",
    "COMPACT_PARTIAL_SKIPPED",
    "COMPACT_SKIPPED",
    "COMPACT_SUCCESS",
    "FINISH_6_1",
    "FINISH_DEFRAG_6_15",
    "MIGRATE_ASYNC",
    "MIGRATE_SYNC",
    "MIGRATE_SYNC_LIGHT",
    "compact_node",
    "compact_zone",
    "compaction_restarting",
    "reset_isolation_suitable",
]

# enum compact_result (6.1 include/linux/compaction.h), in its order: try_to_compact_pages
# keeps the max over zones.
COMPACT_NOT_SUITABLE_ZONE = 0
COMPACT_SKIPPED = 1
COMPACT_DEFERRED = 2
COMPACT_NO_SUITABLE_PAGE = 3
COMPACT_CONTINUE = 4
COMPACT_COMPLETE = 5
COMPACT_PARTIAL_SKIPPED = 6
COMPACT_CONTENDED = 7
COMPACT_SUCCESS = 8

#: `__compact_finished` rules: 6.1's, or 6.15 kcompactd's under defrag_mode (whole-pageblock
#: HIGH watermark after the pageblock-aligned test, no list or fallback checks).
FINISH_6_1 = 0
FINISH_DEFRAG_6_15 = 1

#: 6.1 mm/migrate.c: passes of `migrate_pages_batch`, and the batch size
#: (NR_MAX_BATCHED_MIGRATION = HPAGE_PMD_NR; the model's pageblock on x86-64).
NR_MAX_MIGRATE_PAGES_RETRY = 10
NR_MAX_BATCHED_MIGRATION = 512

_S_PGMIGRATE_FAIL = STAT["pgmigrate_fail"]
_S_MIGRATE_SCANNED = STAT["compact_migrate_scanned"]
_S_FREE_SCANNED = STAT["compact_free_scanned"]


# --- migration ------------------------------------------------------------------------------
@compiled("pages, zones, pageblock_type, uint8[], nd, int, int[], int[], int[][], int[], "
          "int[][]", nrt=True)
def _migrate_pages(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                   skip: np.ndarray, nd: np.ndarray, z: int, cc: np.ndarray,
                   migratelist: np.ndarray, blocks: np.ndarray, freelist: np.ndarray,
                   rows: np.ndarray) -> tuple[int, bool, np.ndarray]:
    """6.1 `migrate_pages(&cc->migratepages, compaction_alloc, compaction_free, cc, cc->mode,
    MR_COMPACTION)` in batches of NR_MAX_BATCHED_MIGRATION from the list head (module
    docstring). Leaves the pages still listed in `migratelist`, in the order the caller puts
    them back, and returns (failures, -ENOMEM, rows)."""
    n = cc[_NR_MIGRATE]
    # The list from its head: the page isolated last first.
    lst = np.empty(n, dtype=np.int64)
    for i in range(n):
        lst[i] = migratelist[n - 1 - i]
    ret = np.empty(n, dtype=np.int64)  # ret_folios, in order
    nr_ret = 0
    nr_failed = 0
    nr_failed_pages = 0
    enomem = False
    sync = cc[_MODE] == MIGRATE_SYNC
    done = 0  # pages of `lst` handed to a batch
    while done < n and not enomem:
        first = done
        last = min(n, done + NR_MAX_BATCHED_MIGRATION)
        done = last
        retry = 1
        nr_retry_pages = 0
        pass_ = 0
        while pass_ < NR_MAX_MIGRATE_PAGES_RETRY and retry:
            retry = 0
            nr_retry_pages = 0
            for i in range(first, last):
                old = lst[i]
                if old < 0:
                    continue
                # compaction_alloc(): refill the list when empty; none: -ENOMEM.
                if cc[_NR_FREE] == 0:
                    _isolate_freepages(pages, zones, pageblock_type, skip, nd, z, cc, blocks,
                                       freelist)
                    if cc[_NR_FREE] == 0:
                        nr_failed += 1
                        nr_failed_pages += 1 + nr_retry_pages
                        enomem = True
                        break
                cc[_NR_FREE] -= 1
                new = freelist[cc[_NR_FREE]]
                flags = pages[old]["flags"]
                if not page_migratable(pages, old):
                    rc = -16  # -EBUSY: a permanent failure
                elif flags & PG_WRITEBACK:
                    if not sync:
                        rc = -16
                    elif pass_ <= 2:
                        rc = -11  # -EAGAIN: not forced yet
                    else:
                        # folio_wait_writeback(): the writeback ends now.
                        pages[old]["flags"] = flags & (0xFF ^ PG_WRITEBACK)
                        rc = 0
                else:
                    rc = 0
                if rc == 0:
                    rows = push_row(rows, cc[_NR_ROWS], old, new, pages[old]["owner"])
                    cc[_NR_ROWS] += 1
                    move_to_new_page(pages, zones, pageblock_type, nd, old, new, True,
                                     cc[_CPU])
                    lst[i] = -1
                    continue
                # compaction_free(): the target goes back to the head of cc->freepages.
                freelist[cc[_NR_FREE]] = new
                cc[_NR_FREE] += 1
                if rc == -11:
                    retry += 1
                    nr_retry_pages += 1
                else:
                    nr_failed += 1
                    nr_failed_pages += 1
                    ret[nr_ret] = old
                    nr_ret += 1
                    lst[i] = -1
            if enomem:
                break
            pass_ += 1
        if not enomem:
            nr_failed += retry
            nr_failed_pages += nr_retry_pages
            # list_splice_tail_init(&folios, &ret_folios): the batch's pages still listed.
            for i in range(first, last):
                if lst[i] >= 0:
                    ret[nr_ret] = lst[i]
                    nr_ret += 1
                    lst[i] = -1
    nd["stat"][_S_PGMIGRATE_FAIL] += nr_failed_pages
    # list_splice(&ret_folios, from): ret_folios, then what is left of `from`, in the order
    # putback_movable_pages walks them; _putback reads migratelist from its end.
    k = nr_ret
    for i in range(n):
        if lst[i] >= 0:
            ret[k] = lst[i]
            k += 1
    for i in range(k):
        migratelist[k - 1 - i] = ret[i]
    cc[_NR_MIGRATE] = k
    return (nr_failed if k else 0), enomem, rows


# --- compact_finished / compact_zone --------------------------------------------------------
@compiled("zones, nd, int, int[]")
def _compact_finished(zones: np.ndarray, nd: np.ndarray, z: int, cc: np.ndarray) -> int:
    """6.1 `compact_finished()` / `__compact_finished()` (module docstring);
    COMPACT_NO_SUITABLE_PAGE comes back as COMPACT_CONTINUE."""
    zone = zones[z]
    pbo = int(nd["pageblock_order"])
    if (cc[_FREE_PFN] >> pbo) <= (cc[_MIGRATE_PFN] >> pbo):  # compact_scanners_met
        _reset_cached_positions(zone, nd)  # let the next compaction start anew
        if cc[_DIRECT] != 0:
            zone["compact_blockskip_flush"] = 1
        return COMPACT_COMPLETE if cc[_WHOLE] != 0 else COMPACT_PARTIAL_SKIPPED
    if cc[_PROACTIVE] >= 0:
        score = extfrag_for_order(zone, int(nd["max_order"]), pbo)
        return COMPACT_CONTINUE if score > cc[_PROACTIVE] else COMPACT_SUCCESS
    order = cc[_ORDER]
    if order < 0:
        return COMPACT_CONTINUE
    if cc[_MIGRATE_PFN] & ((1 << pbo) - 1):  # always finish scanning a pageblock
        return COMPACT_CONTINUE
    if cc[_FINISH] == FINISH_DEFRAG_6_15 and cc[_DIRECT] == 0:
        if kcompactd_finished_defrag(zone, pbo, order, cc[_HZ], ALLOC_WMARK_HIGH):
            return COMPACT_SUCCESS
        return COMPACT_CONTINUE
    mt = cc[_MT]
    for o in range(order, nd["max_order"]):
        if zone["head"][o, mt] >= 0:
            return COMPACT_SUCCESS
        fallback_mt, _ = find_suitable_fallback(zone, nd, o, mt)
        if fallback_mt >= 0:
            return COMPACT_SUCCESS
    return COMPACT_CONTINUE


@compiled("pages, zones, pageblock_type, uint8[], node, int, int[]", nrt=True)
def _compact_zone(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                  skip: np.ndarray, node: np.ndarray, z: int,
                  args: np.ndarray) -> tuple[int, np.ndarray]:
    """6.1 `compact_zone()` after `compaction_suitable` (module docstring); `args` is the
    compact_control as `compact_zone` (Python) fills it. Returns (result, migrated rows)."""
    nd = node[0]
    zone = zones[z]
    pbo = int(nd["pageblock_order"])
    nr_pb = 1 << pbo
    cc = args
    start, end = zone["start_pfn"], zone["end_pfn"]
    sync = 1 if cc[_MODE] != MIGRATE_ASYNC else 0
    order = cc[_ORDER]
    cc[_SEARCH_ORDER] = order
    cc[_FAST_START] = 0
    if cc[_WHOLE] != 0:
        cc[_MIGRATE_PFN] = start
        cc[_FREE_PFN] = _block_start(end - 1, pbo)
    else:
        cc[_MIGRATE_PFN] = zone["compact_cached_migrate_pfn"][sync]
        cc[_FREE_PFN] = zone["compact_cached_free_pfn"]
        if cc[_FREE_PFN] < start or cc[_FREE_PFN] >= end:
            cc[_FREE_PFN] = _block_start(end - 1, pbo)
            zone["compact_cached_free_pfn"] = cc[_FREE_PFN]
        if cc[_MIGRATE_PFN] < start or cc[_MIGRATE_PFN] >= end:
            cc[_MIGRATE_PFN] = start
            zone["compact_cached_migrate_pfn"][0] = start
            zone["compact_cached_migrate_pfn"][1] = start
        if cc[_MIGRATE_PFN] <= zone["compact_init_migrate_pfn"]:
            cc[_WHOLE] = 1
    last_migrated_pfn = 0
    update_cached = sync == 0 and (zone["compact_cached_migrate_pfn"][0]
                                   == zone["compact_cached_migrate_pfn"][1])
    migratelist = np.empty(nr_pb + 1, dtype=np.int64)
    blocks = np.empty((nr_pb + 2, 2), dtype=np.int64)
    freelist = np.empty(2 * nr_pb + (1 << (int(nd["max_order"]) - 1)) + 64, dtype=np.int64)
    rows = np.empty((min(zone["nr_lru"].sum(), 1 << 16) + 64, 3), dtype=np.int64)
    ret = COMPACT_CONTINUE
    while True:
        ret = _compact_finished(zones, nd, z, cc)
        if ret != COMPACT_CONTINUE:
            break
        iteration_start_pfn = cc[_MIGRATE_PFN]
        # Rescan a pageblock migrated from last time: capture the whole of it.
        cc[_RESCAN] = 1 if _block_start(last_migrated_pfn, pbo) == _block_start(
            iteration_start_pfn, pbo) else 0
        if _isolate_migratepages(pages, zones, pageblock_type, skip, nd, z, cc,
                                 migratelist) == _ISOLATE_NONE:
            if update_cached:
                zone["compact_cached_migrate_pfn"][1] = zone["compact_cached_migrate_pfn"][0]
        else:
            update_cached = False
            last_migrated_pfn = iteration_start_pfn
            err, enomem, rows = _migrate_pages(pages, zones, pageblock_type, skip, nd, z, cc,
                                               migratelist, blocks, freelist, rows)
            _putback(pages, zone, cc, migratelist)  # nr_migratepages = 0 either way
            if err or enomem:
                if enomem and (cc[_FREE_PFN] >> pbo) > (cc[_MIGRATE_PFN] >> pbo):
                    ret = COMPACT_CONTENDED
                    break
                if cc[_DIRECT] != 0 and cc[_MODE] == MIGRATE_ASYNC:
                    # A page of this order-aligned block failed: skip the rest of it.
                    cc[_MIGRATE_PFN] = _block_end(cc[_MIGRATE_PFN] - 1, order)
                    last_migrated_pfn = 0
        # check_drain: the migrate scanner left the order-aligned block it migrated from.
        if order > 0 and last_migrated_pfn \
                and last_migrated_pfn < _block_start(cc[_MIGRATE_PFN], order):
            if nd["pcp"] != 0:
                drain_zone_pages_cpu(pages, zones, pageblock_type, nd, z, cc[_CPU])
            last_migrated_pfn = 0
    # release_freepages(): from the list head; the cached free pfn only moves back up.
    if cc[_NR_FREE] > 0:
        high_pfn = 0
        for i in range(cc[_NR_FREE] - 1, -1, -1):
            pfn = freelist[i]
            free_target(pages, zones, pageblock_type, nd, pfn, cc[_CPU])
            if pfn > high_pfn:
                high_pfn = pfn
        cc[_NR_FREE] = 0
        free_pfn = _block_start(high_pfn, pbo)
        if free_pfn > zone["compact_cached_free_pfn"]:
            zone["compact_cached_free_pfn"] = free_pfn
    nd["stat"][_S_MIGRATE_SCANNED] += cc[_MIG_SCANNED]
    nd["stat"][_S_FREE_SCANNED] += cc[_FREE_SCANNED]
    return ret, rows[: cc[_NR_ROWS]].copy()


# --- Python entry points --------------------------------------------------------------------
def compaction_restarting(m: Machine, z: int, order: int) -> bool:
    """6.1 `compaction_restarting()`: compaction of `order` is retried after the deferral
    reached its maximum."""
    zone = m.zones[z]
    if order < int(zone["compact_order_failed"]):
        return False
    return (int(zone["compact_defer_shift"]) == COMPACT_MAX_DEFER_SHIFT
            and int(zone["compact_considered"]) >= 1 << int(zone["compact_defer_shift"]))


def reset_isolation_suitable(m: Machine) -> None:
    """6.1 `reset_isolation_suitable(pgdat)` (kswapd going to sleep): `__reset_isolation_suitable`
    on every populated zone a full direct compaction flagged."""
    for z in m.populated_zones():
        if m.zones[z]["compact_blockskip_flush"]:
            reset_isolation_suitable_zone(m.pages, m.zones, m.pageblock_type, m.pageblock_skip,
                                          m.node, z)


def compact_zone(m: Machine, z: int, order: int, migratetype: int, mode: int, *,
                 direct: bool, whole_zone: bool = False, ignore_skip_hint: bool = False,
                 ignore_block_suitable: bool = False, fs: bool = True, cpu: int = 0,
                 finish: int = FINISH_6_1, proactive_wmark: int = -1,
                 highest_zoneidx: int = -1) -> int:
    """6.1 `compact_zone()` of zone `z` for `order` (-1: the whole zone, as
    /proc/sys/vm/compact_memory and proactive compaction ask) and `migratetype`, with the
    compact_control fields the caller sets (`compact_zone_order`, `kcompactd_do_work`,
    `proactive_compact_node`, `compact_node`). The caller has asked `compaction_suitable`.
    `fs`: the request's __GFP_FS. Returns a 6.1 COMPACT_* result and appends the moved pages
    to `m.migrated`."""
    if not -1 <= order < m.max_order:
        raise ValueError(f"order {order} out of range -1..{m.max_order - 1}")
    if direct and order < 1:
        raise ValueError(f"direct compaction of order {order}: allowed are orders "
                         f"1..{m.max_order - 1} (__alloc_pages_direct_compact has none for 0)")
    if mode not in (MIGRATE_ASYNC, MIGRATE_SYNC_LIGHT, MIGRATE_SYNC):
        raise ValueError(f"migrate mode {mode}: allowed are 0 (async), 1 (sync light), 2 (sync)")
    if order >= 0 and compaction_restarting(m, z, order):
        # Clear the skip hints if compaction is about to be retried after being deferred.
        reset_isolation_suitable_zone(m.pages, m.zones, m.pageblock_type, m.pageblock_skip,
                                      m.node, z)
    cc = np.zeros(_CC_SIZE, dtype=np.int64)
    cc[_ORDER] = order
    cc[_MT] = migratetype if m.node[0]["grouping"] != 0 else 0
    cc[_MODE] = mode
    cc[_DIRECT] = int(direct)
    cc[_WHOLE] = int(whole_zone)
    cc[_IGN_SKIP] = int(ignore_skip_hint)
    cc[_IGN_BLOCK] = int(ignore_block_suitable)
    cc[_FS] = int(fs)
    cc[_CPU] = cpu
    cc[_FINISH] = finish
    cc[_PROACTIVE] = proactive_wmark
    cc[_HZ] = z if highest_zoneidx < 0 else highest_zoneidx
    status, rows = _compact_zone(m.pages, m.zones, m.pageblock_type, m.pageblock_skip, m.node,
                                 z, cc)
    if rows.shape[0]:
        record_migrated(m, rows)
    return int(status)


def compact_node(m: Machine) -> list[int]:
    """6.1 `compact_node()` (a write to /proc/sys/vm/compact_memory): every populated zone
    compacted whole at MIGRATE_SYNC, ignoring skip hints, as GFP_KERNEL asks. Returns each
    zone's result, lowest zone first."""
    from fragsim.models.mm.constants import MIGRATE_UNMOVABLE

    return [compact_zone(m, z, -1, MIGRATE_UNMOVABLE, MIGRATE_SYNC, direct=False,
                         whole_zone=True, ignore_skip_hint=True) for z in m.populated_zones()]

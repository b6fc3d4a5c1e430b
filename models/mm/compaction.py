"""Memory compaction: `mm/compaction.c` of Linux 2.6.35, with the deferral of `compaction.h`.

Two scanners walk a zone towards each other (`compact_zone`). The migrate scanner starts at the
zone start and takes LRU pages off their lists a pageblock at a time, at most
COMPACT_CLUSTER_MAX (32) per round (`isolate_migratepages`); the free scanner starts at the
last pageblock and walks down, splitting every free block of a suitable pageblock into order-0
target pages (`isolate_freepages`, `split_free_page`), until it holds as many targets as there
are pages to move. Suitable pageblocks are MOVABLE ones, or any pageblock headed by a free block
of order >= pageblock_order, never RESERVE or ISOLATE (`suitable_migration_target`). Pages
move from low to high addresses (`migrate_pages` with `compaction_alloc`), and the run stops
when the scanners meet (COMPACT_COMPLETE) or, for an order-N request, once the zone passes the
`low + 2^N` watermark at order N and a block of order >= N is free on the request's list or any
block of order >= pageblock_order is free (COMPACT_PARTIAL, `compact_finished`). Target pages
left over go back to the buddy lists (`release_freepages`).

Entry points: `compact_zone` (one zone, one order; order -1 compacts the whole zone),
`compact_node` (/proc/sys/vm/compact_memory), `try_to_compact_pages` (direct compaction, with
its order, GFP, watermark and fragmentation-index gates), and the deferral that 2.6.35
`__alloc_pages_direct_compact` (models.mm.slowpath) applies around it: `compaction_deferred`,
`defer_compaction`. The scanners are one compiled call per zone. (6.1's scanners, with skip
hints, cached positions and the fast searches, are `models.mm.compaction_6_1`.)

2.6.35 details kept: `isolate_migratepages` scans to `ALIGN(low_pfn + pageblock_nr_pages)`
and a round that stops at its 32nd page restarts at that page, so the next round runs to the
end of the *next* pageblock; `compact_finished` asks the order-N watermark, which one free
block of order N may not pass (it needs more than `2^N - 1 + (low + 2^N) >> N` pages in blocks
of order >= N); `try_to_compact_pages` compares the fragmentation index with -1 although
`fragmentation_index` returns -1000 when a suitable block exists (fixed in 3.1): the model
keeps the test, which makes no difference here, since `compact_finished` then stops at once
when the watermark is met. Model choices: `too_many_isolated` never holds (nothing else
isolates pages during the call); the scanners never leave the zone (2.6.35 checks only
`pfn_valid` there); isolated target pages are allocated order-0 pages as `split_free_page`
leaves them (counted in `pgalloc`, and in `pgfree` when released). Counters use the later
vmstat names (2.6.35 had compact_blocks_moved, compact_pages_moved,
compact_pagemigrate_failed): compact_migrate_scanned, compact_free_scanned, compact_isolated
(both scanners), compact_stall, compact_fail, compact_success, pgmigrate_success/fail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.mm.alloc import zone_watermark_ok
from fragsim.models.mm.boost import wmark_pages
from fragsim.models.mm.buddy import list_del
from fragsim.models.mm.constants import (
    MIGRATE_ISOLATE,
    MIGRATE_MOVABLE,
    MIGRATE_RESERVE,
    PAGE_ALLOC_COSTLY_ORDER,
    PG_ACTIVE,
    PG_BUDDY,
    PG_HEAD,
    PG_LRU,
    PG_WRITEBACK,
    WMARK_LOW,
)
from fragsim.models.mm.gfp import GFP, gfp_zone, gfpflags_to_migratetype
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.lru import lru_add, lru_del
from fragsim.models.mm.metrics import fragmentation_index
from fragsim.models.mm.migrate import (
    MIGRATE_2_6_35,
    MIGRATE_FORCE_PASS,
    MIGRATE_PASSES,
    free_migrated_page,
    move_to_new_page,
    page_migratable,
    page_movable,
    push_row,
)
from fragsim.models.mm.reclaim_state import record_migrated
from fragsim.models.mm.state import STAT

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = [
    "COMPACT_CLUSTER_MAX",
    "COMPACT_COMPLETE",
    "COMPACT_CONTINUE",
    "COMPACT_MAX_DEFER_SHIFT",
    "COMPACT_PARTIAL",
    "COMPACT_SKIPPED",
    "compact_memory",
    "compact_node",
    "compact_zone",
    "compaction_deferred",
    "defer_compaction",
    "extfrag_for_order",
    "free_target",
    "split_free_page",
    "suitable_migration_target",
    "try_to_compact_pages",
]

# include/linux/compaction.h (2.6.35)
COMPACT_SKIPPED = 0  # compaction did not start: not possible or a direct reclaim is better
COMPACT_CONTINUE = 1  # compaction should continue to another pageblock
COMPACT_PARTIAL = 2  # direct compaction partially compacted a zone and there are free pages
COMPACT_COMPLETE = 3  # the full zone was compacted
#: `COMPACT_CLUSTER_MAX` = SWAP_CLUSTER_MAX: pages isolated per migrate-scanner round.
COMPACT_CLUSTER_MAX = 32
#: Do not skip compaction more than 64 times.
COMPACT_MAX_DEFER_SHIFT = 6
#: What 2.6.35 `try_to_compact_pages` compares the fragmentation index with to mean "a suitable
#: block is free"; `fragmentation_index` says -1000 then, so the test never holds (fixed in 3.1).
FRAGINDEX_SUITABLE_2_6_35 = -1

_S_PGALLOC = STAT["pgalloc"]
_S_PGFREE = STAT["pgfree"]
_S_PGMIGRATE_FAIL = STAT["pgmigrate_fail"]
_S_MIGRATE_SCANNED = STAT["compact_migrate_scanned"]
_S_FREE_SCANNED = STAT["compact_free_scanned"]
_S_ISOLATED = STAT["compact_isolated"]
_S_STALL = STAT["compact_stall"]
_S_FAIL = STAT["compact_fail"]
_S_SUCCESS = STAT["compact_success"]
_S_DEFERRED = STAT["compact_deferred"]

# struct compact_control, as slots of an int64 array.
_CC_MIGRATE_PFN = 0  # isolate_migratepages search base
_CC_FREE_PFN = 1  # isolate_freepages search base
_CC_NR_MIGRATE = 2  # pages isolated by the migrate scanner this round
_CC_NR_FREE = 3  # isolated target pages (the freelist is a stack of this length)
_CC_ORDER = 4  # order a direct compactor needs; -1: whole zone
_CC_MT = 5  # the request's migratetype (free list compact_finished looks at)
_CC_NR_ROWS = 6  # migrated rows written
_CC_CPU = 7  # the compacting cpu (whose per-cpu lists migration frees to, 2.6.35 with pcp)
_CC_SIZE = 8


@compiled("pages, pageblock_type, int, int")
def suitable_migration_target(pages: np.ndarray, pageblock_type: np.ndarray, pfn: int,
                              pageblock_order: int) -> bool:
    """2.6.35 `suitable_migration_target()`: may the free scanner take pages from `pfn`'s block?

    Never RESERVE (the min_free_kbytes blocks) or ISOLATE (hot-remove); yes if `pfn` heads a free
    block of order >= pageblock_order; otherwise only MOVABLE pageblocks.
    """
    mt = pageblock_type[pfn >> pageblock_order]
    if mt in (MIGRATE_ISOLATE, MIGRATE_RESERVE):
        return False
    if (pages[pfn]["flags"] & PG_BUDDY) and pages[pfn]["order"] >= pageblock_order:
        return True
    return bool(mt == MIGRATE_MOVABLE)


@compiled("pages, zones, pageblock_type, nd, int, int")
def split_free_page(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                    nd: np.ndarray, z: int, pfn: int) -> int:
    """2.6.35 `split_free_page()`: take the free block at `pfn` off its list as order-0 pages.

    Refused (returns 0) unless the zone would still pass its low watermark plus the block at
    order 0, as if the block were being allocated. A block of order >= pageblock_order - 1
    makes its pageblocks MOVABLE. Returns the number of pages taken.
    """
    zone = zones[z]
    order = int(pages[pfn]["order"])
    pbo = int(nd["pageblock_order"])
    if not zone_watermark_ok(zone, 0, wmark_pages(zone, WMARK_LOW) + (1 << order), 0, 0):
        return 0
    list_del(pages, zone, pfn)
    nr = 1 << order
    zone["free_pages"] -= nr
    nd["stat"][_S_PGALLOC] += nr
    nd["pgalloc_zone"][z] += nr
    for p in range(pfn, pfn + nr):  # split_page(): order-0 pages with a reference each
        pages[p]["owner"] = -1
        pages[p]["mt"] = MIGRATE_MOVABLE
        pages[p]["order"] = 0
        pages[p]["flags"] = PG_HEAD
    if order >= pbo - 1 and nd["grouping"] != 0:
        for p in range(pfn, pfn + nr - 1, 1 << pbo):
            pageblock_type[p >> pbo] = MIGRATE_MOVABLE
    return nr


@compiled("pages, zones, pageblock_type, nd, int, int")
def free_target(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                 nd: np.ndarray, pfn: int, cpu: int) -> None:
    """`__free_page()` / `putback_lru_page()` of an isolated target page, flags cleared and
    `pgfree` counted (`models.mm.migrate.free_migrated_page`: 2.6.35 with per-cpu lists, hot on
    `cpu`'s list; 6.1's per-order lists; otherwise the buddy lists). Also 6.1
    `release_freepages`' `__free_page` (`models.mm.compaction_6_1`)."""
    pages[pfn]["flags"] = 0
    nd["stat"][_S_PGFREE] += 1
    free_migrated_page(pages, zones, pageblock_type, nd, pfn, cpu)


@compiled("pages, zones, pageblock_type, nd, int, int[], int[]")
def _isolate_freepages(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                       nd: np.ndarray, z: int, cc: np.ndarray, freelist: np.ndarray) -> None:
    """2.6.35 `isolate_freepages()` with `isolate_freepages_block()` inlined.

    From `free_pfn` down, a pageblock at a time, while above the migrate scanner's next
    pageblock and short of targets, split the free blocks of suitable pageblocks onto the
    freelist (a stack: `compaction_alloc` takes the page added last, as `list_add` +
    `freepages.next` do). `free_pfn` becomes the highest pageblock that gave pages.
    """
    zone = zones[z]
    pbo = int(nd["pageblock_order"])
    nr_pb = 1 << pbo
    start, end = zone["start_pfn"], zone["end_pfn"]
    pfn = cc[_CC_FREE_PFN]
    low_pfn = cc[_CC_MIGRATE_PFN] + nr_pb
    high_pfn = low_pfn
    nr_freepages = cc[_CC_NR_FREE]
    scanned = 0
    while pfn > low_pfn and cc[_CC_NR_MIGRATE] > nr_freepages:
        if pfn < start or pfn >= end:
            pfn -= nr_pb
            continue
        if not suitable_migration_target(pages, pageblock_type, pfn, pbo):
            pfn -= nr_pb
            continue
        isolated = 0
        blockpfn = pfn
        block_end = min(pfn + nr_pb, end)
        while blockpfn < block_end:
            scanned += 1
            if pages[blockpfn]["flags"] & PG_BUDDY:
                nr = split_free_page(pages, zones, pageblock_type, nd, z, blockpfn)
                for i in range(nr):
                    freelist[nr_freepages] = blockpfn + i
                    nr_freepages += 1
                isolated += nr
                if nr:
                    blockpfn += nr
                    continue
            blockpfn += 1
        if isolated:
            high_pfn = max(high_pfn, pfn)
            nd["stat"][_S_ISOLATED] += isolated
        pfn -= nr_pb
    nd["stat"][_S_FREE_SCANNED] += scanned
    cc[_CC_FREE_PFN] = high_pfn
    cc[_CC_NR_FREE] = nr_freepages


@compiled("pages, zones, pageblock_type, nd, int, int[], int[]")
def _isolate_migratepages(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                          nd: np.ndarray, z: int, cc: np.ndarray,
                          migratelist: np.ndarray) -> int:
    """2.6.35 `isolate_migratepages()`: take up to 32 LRU pages off their lists, from
    `migrate_pfn` to `ALIGN(migrate_pfn + pageblock_nr_pages)`. Free pages are skipped; pages
    not on the LRU (kernel, slab, hugetlb, per-cpu) cannot be isolated and stay."""
    zone = zones[z]
    pbo = nd["pageblock_order"]
    nr_pb = 1 << pbo
    low_pfn = max(cc[_CC_MIGRATE_PFN], zone["start_pfn"])
    end_pfn = (low_pfn + nr_pb + nr_pb - 1) & ~(nr_pb - 1)
    # Do not cross the free scanner or leave the zone.
    if end_pfn > cc[_CC_FREE_PFN] or low_pfn >= zone["end_pfn"]:
        cc[_CC_MIGRATE_PFN] = end_pfn
        return 0
    stop = min(end_pfn, zone["end_pfn"])
    nr = 0
    scanned = 0
    while low_pfn < stop:
        scanned += 1
        flags = pages[low_pfn]["flags"]
        if not (flags & PG_BUDDY) and (flags & PG_LRU):
            lru_del(pages, zone, low_pfn)
            migratelist[nr] = low_pfn
            nr += 1
            if nr == COMPACT_CLUSTER_MAX:
                break
        low_pfn += 1
    nd["stat"][_S_MIGRATE_SCANNED] += scanned
    nd["stat"][_S_ISOLATED] += nr
    cc[_CC_MIGRATE_PFN] = low_pfn
    cc[_CC_NR_MIGRATE] = nr
    return nr


@compiled("pages, zones, pageblock_type, nd, int, int[], int[], int[], int[][]", nrt=True)
def _migrate_isolated(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                      nd: np.ndarray, z: int, cc: np.ndarray, migratelist: np.ndarray,
                      freelist: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """2.6.35 `migrate_pages(&cc->migratepages, compaction_alloc, cc)`.

    The list is walked from its head (the page isolated last). Each page first gets a target
    (`compaction_alloc`, refilling with `isolate_freepages` when empty; none: -ENOMEM stops the
    walk). A page that cannot move goes back to the head of its LRU list and its target is freed
    (`putback_lru_page` on both). Rows (old, new, owner) go to `rows`, grown when full.

    `node['migrate_rule']` (`models.mm.migrate`): MIGRATE_ONE_PASS walks once and a page under
    writeback fails; MIGRATE_2_6_35 makes up to 10 passes while some page asked for a retry: a
    page under writeback is -EAGAIN on passes 0-2 (it stays listed, its target is freed) and
    from pass 3 (`force`) is waited on (`wait_on_page_writeback`: its writeback ends now) and
    migrated. Pages still listed at the end go back to the LRU (`putback_lru_pages`).
    """
    zone = zones[z]
    n = cc[_CC_NR_MIGRATE]
    wait = nd["migrate_rule"] == MIGRATE_2_6_35
    passes = MIGRATE_PASSES if wait else 1
    enomem = False
    for pass_ in range(passes):
        retry = 0
        i = n - 1
        while i >= 0:
            old = migratelist[i]
            if old < 0:  # migrated or failed for good on an earlier pass: off the list
                i -= 1
                continue
            if cc[_CC_NR_FREE] == 0:
                _isolate_freepages(pages, zones, pageblock_type, nd, z, cc, freelist)
                if cc[_CC_NR_FREE] == 0:
                    enomem = True
                    break
            cc[_CC_NR_FREE] -= 1
            new = freelist[cc[_CC_NR_FREE]]
            if wait and (pages[old]["flags"] & PG_WRITEBACK) and page_migratable(pages, old):
                if pass_ < MIGRATE_FORCE_PASS:
                    # -EAGAIN: try again on a later pass; putback_lru_page(newpage) frees it.
                    free_target(pages, zones, pageblock_type, nd, new, cc[_CC_CPU])
                    retry += 1
                    i -= 1
                    continue
                # wait_on_page_writeback(page)
                pages[old]["flags"] = pages[old]["flags"] & (0xFF ^ PG_WRITEBACK)
            if page_movable(pages, old):
                rows = push_row(rows, cc[_CC_NR_ROWS], old, new, pages[old]["owner"])
                cc[_CC_NR_ROWS] += 1
                move_to_new_page(pages, zones, pageblock_type, nd, old, new, True, cc[_CC_CPU])
            else:
                nd["stat"][_S_PGMIGRATE_FAIL] += 1
                free_target(pages, zones, pageblock_type, nd, new, cc[_CC_CPU])
                lru_add(pages, zone, old, (pages[old]["flags"] & PG_ACTIVE) != 0)
            migratelist[i] = -1
            i -= 1
        if enomem or retry == 0:
            break
    i = n - 1
    while i >= 0:  # putback_lru_pages() on the pages still listed (-ENOMEM: not tried)
        old = migratelist[i]
        if old >= 0:
            lru_add(pages, zone, old, (pages[old]["flags"] & PG_ACTIVE) != 0)
        i -= 1
    cc[_CC_NR_MIGRATE] = 0
    return rows


@compiled("zone, int, int", inline=True)
def extfrag_for_order(zone: np.ndarray, max_order: int, order: int) -> int:
    """6.1 `extfrag_for_order()` (mm/vmstat.c): the percentage (0..100, rounded down) of the
    zone's free pages that lie in free blocks smaller than `2^order`; 0 with nothing free."""
    free_pages = 0
    suitable = 0
    for o in range(max_order):
        blocks = zone["nr_free"][o]
        free_pages += blocks << o
        if o >= order:
            suitable += blocks << (o - order)
    if free_pages == 0:
        return 0
    return (free_pages - (suitable << order)) * 100 // free_pages


@compiled("zones, nd, int, int[]")
def _compact_finished(zones: np.ndarray, nd: np.ndarray, z: int, cc: np.ndarray) -> int:
    """2.6.35 `compact_finished()`. For order -1 2.6.35 evaluates a watermark with `1 << -1`
    before returning CONTINUE whatever it says; the model returns CONTINUE directly."""
    if cc[_CC_FREE_PFN] <= cc[_CC_MIGRATE_PFN]:
        return COMPACT_COMPLETE
    order = cc[_CC_ORDER]
    mt = cc[_CC_MT]
    if order < 0:
        return COMPACT_CONTINUE
    zone = zones[z]
    if not zone_watermark_ok(zone, order, wmark_pages(zone, WMARK_LOW) + (1 << order), 0, 0):
        return COMPACT_CONTINUE
    for o in range(order, nd["max_order"]):
        if zone["head"][o, mt] >= 0:  # a page is free of the right migratetype
            return COMPACT_PARTIAL
        if o >= nd["pageblock_order"] and zone["nr_free"][o] > 0:  # would set block type
            return COMPACT_PARTIAL
    return COMPACT_CONTINUE


@compiled("pages, zones, pageblock_type, node, int, int, int, int", nrt=True)
def _compact_zone(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                  node: np.ndarray, z: int, order: int, migratetype: int,
                  cpu: int) -> tuple[int, np.ndarray]:
    """2.6.35 `compact_zone()`; returns (status, migrated rows)."""
    nd = node[0]
    zone = zones[z]
    pbo = nd["pageblock_order"]
    cc = np.zeros(_CC_SIZE, dtype=np.int64)
    cc[_CC_MIGRATE_PFN] = zone["start_pfn"]
    cc[_CC_FREE_PFN] = zone["end_pfn"] & ~((1 << pbo) - 1)
    cc[_CC_ORDER] = order
    cc[_CC_CPU] = cpu
    # With grouping off (2.6.20 rules) every block is on list 0.
    cc[_CC_MT] = migratetype if nd["grouping"] != 0 else 0
    migratelist = np.empty(COMPACT_CLUSTER_MAX, dtype=np.int64)
    freelist = np.empty(COMPACT_CLUSTER_MAX + (1 << max(nd["max_order"] - 1, pbo)),
                        dtype=np.int64)
    rows = np.empty((min(zone["nr_lru"].sum(), 1 << 16) + 64, 3), dtype=np.int64)
    status = COMPACT_CONTINUE
    while True:
        status = _compact_finished(zones, nd, z, cc)
        if status != COMPACT_CONTINUE:
            break
        if _isolate_migratepages(pages, zones, pageblock_type, nd, z, cc, migratelist) == 0:
            continue
        rows = _migrate_isolated(pages, zones, pageblock_type, nd, z, cc, migratelist,
                                 freelist, rows)
    # release_freepages(): from the list head, i.e. the top of the stack.
    for i in range(cc[_CC_NR_FREE] - 1, -1, -1):
        free_target(pages, zones, pageblock_type, nd, freelist[i], cc[_CC_CPU])
    return status, rows[: cc[_CC_NR_ROWS]].copy()


def compact_zone(m: Machine, z: int, order: int, migratetype: int = MIGRATE_MOVABLE,
                 cpu: int = 0) -> int:
    """Compact zone `z` for an allocation of `order` and `migratetype` (2.6.35 `compact_zone`
    as `compact_zone_order` calls it); order -1 compacts until the scanners meet. `cpu` is the
    compacting cpu (migration's frees, `models.mm.migrate.free_migrated_page`). Returns a
    COMPACT_* status and appends the moved pages to `m.migrated`."""
    if not -1 <= order < m.max_order:
        raise ValueError(f"order {order} out of range -1..{m.max_order - 1}")
    status, rows = _compact_zone(m.pages, m.zones, m.pageblock_type, m.node, z, order,
                                 migratetype, cpu)
    if rows.shape[0]:
        record_migrated(m, rows)
    return int(status)


def compact_memory(m: Machine) -> list[int]:
    """A write to /proc/sys/vm/compact_memory: the policy's `compact_node` (`Policy.compaction`:
    2.6.35's, or 6.1's `models.mm.compaction_6_1.compact_node`). Returns each populated zone's
    result in that kernel's COMPACT_* values, lowest zone first."""
    if m.policy.compaction == "6.1":
        from fragsim.models.mm import compaction_6_1

        return compaction_6_1.compact_node(m)
    return compact_node(m)


def compact_node(m: Machine) -> list[int]:
    """2.6.35 `compact_node()` (a write to /proc/sys/vm/compact_memory): every populated zone
    compacted whole (order -1). Returns each zone's status, lowest zone first."""
    return [compact_zone(m, z, -1) for z in m.populated_zones()]


@compiled("zones, int, int, int")
def _watermark_ok(zones: np.ndarray, z: int, order: int, mark: int) -> bool:
    """`zone_watermark_ok(zone, order, mark, 0, 0)`, callable from Python."""
    return zone_watermark_ok(zones[z], order, mark, 0, 0)


def try_to_compact_pages(m: Machine, order: int, gfp_mask: int,
                         high_zone: int | None = None, cpu: int = 0) -> int:
    """2.6.35 `try_to_compact_pages()`: direct compaction of the request's zonelist.

    Nothing for order <= PAGE_ALLOC_COSTLY_ORDER or without __GFP_FS and __GFP_IO; otherwise
    counts a compact_stall and, for each populated zone from `high_zone` (default
    `gfp_zone(gfp_mask)`) down: skip it unless it passes `low + 2*2^order` at order 0 and its
    fragmentation index is outside [0, extfrag_threshold]; compact it; stop at the first zone
    that then passes `low + 2*2^order` at `order`. Returns the best COMPACT_* status.
    """
    rc = COMPACT_SKIPPED
    if order <= PAGE_ALLOC_COSTLY_ORDER or not (gfp_mask & GFP.FS) or not (gfp_mask & GFP.IO):
        return rc
    m.node[0]["stat"][_S_STALL] += 1
    mt = gfpflags_to_migratetype(gfp_mask)
    top = gfp_zone(gfp_mask) if high_zone is None else high_zone
    for z in range(min(top, m.zones.shape[0] - 1), -1, -1):
        if m.zones[z]["present_pages"] == 0:
            continue
        # Order-0 watermarks must be met: 2x because the copies exist with the originals.
        # low_wmark_pages(zone): with a 5.0+ zone's watermark boost, as 6.1's macro has it.
        zone = m.zones[z]
        watermark = int(zone["watermark"][WMARK_LOW] + zone["watermark_boost"]) + (2 << order)
        if not _watermark_ok(m.zones, z, 0, watermark):
            continue
        # Only compact if a failure would be due to fragmentation, not lack of memory.
        fragindex = fragmentation_index(m.zones[z]["nr_free"][: m.max_order], order)
        if 0 <= fragindex <= m.config.extfrag_threshold:
            continue
        if fragindex == FRAGINDEX_SUITABLE_2_6_35 and _watermark_ok(m.zones, z, order,
                                                                    watermark):
            rc = COMPACT_PARTIAL
            break
        rc = max(rc, compact_zone(m, z, order, mt, cpu=cpu))
        if _watermark_ok(m.zones, z, order, watermark):
            break
    return rc


def compaction_deferred(m: Machine, z: int) -> bool:
    """2.6.35 `compaction_deferred()`: whether to skip direct compaction of zone `z` this time.

    After the k-th failure in a row (`compact_defer_shift` = k, at most 6) the next
    `2^k - 1` attempts are skipped. Counts `compact_deferred` when it says skip.
    """
    zones = m.zones
    limit = 1 << int(zones["compact_defer_shift"][z])
    considered = min(int(zones["compact_considered"][z]) + 1, limit)
    zones["compact_considered"][z] = considered
    deferred = considered < limit
    if deferred:
        m.node[0]["stat"][_S_DEFERRED] += 1
    return deferred


def defer_compaction(m: Machine, z: int) -> None:
    """2.6.35 `defer_compaction()`: after a failure, skip more attempts (2^shift, shift <= 6)."""
    zones = m.zones
    zones["compact_considered"][z] = 0
    zones["compact_defer_shift"][z] = min(int(zones["compact_defer_shift"][z]) + 1,
                                          COMPACT_MAX_DEFER_SHIFT)

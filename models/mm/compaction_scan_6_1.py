"""The scanners of Linux 6.1 memory compaction (`mm/compaction.c` of 6.1.y, read at
unifreq/linux-6.1.y 07badeaa): skip hints and their reset, the free scanner and the migrate
scanner, on a `struct compact_control` held as slots of an int64 array. `models.mm.compaction_6_1`
runs them (`compact_zone`) and describes the algorithm and what the model leaves out.
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.alloc import zone_watermark_ok
from fragsim.models.mm.compaction import COMPACT_CLUSTER_MAX
from fragsim.models.mm.constants import (
    KIND_FILE,
    KIND_FILE_MAPPED,
    MIGRATE_ISOLATE,
    MIGRATE_MOVABLE,
    MIGRATE_PCPTYPES,
    PAGE_ALLOC_COSTLY_ORDER,
    PG_ACTIVE,
    PG_BUDDY,
    PG_HEAD,
    PG_LRU,
    PG_WRITEBACK,
    WMARK_MIN,
)
from fragsim.models.mm.freelist import list_del
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.lru import lru_add, lru_del
from fragsim.models.mm.rmqueue_6_15 import move_freepages_block_6_15, prep_move_freepages_block
from fragsim.models.mm.state import KIND_SHIFT, STAT

__all__ = [
    "COMPACT_CLUSTER_MAX",
    "MIGRATE_ASYNC",
    "MIGRATE_SYNC",
    "MIGRATE_SYNC_LIGHT",
    "isolate_free_page",
    "reset_isolation_suitable_zone",
]

# enum migrate_mode (6.1 include/linux/migrate_mode.h)
MIGRATE_ASYNC = 0
MIGRATE_SYNC_LIGHT = 1
MIGRATE_SYNC = 2

#: `cc->fast_start_pfn = ULONG_MAX`: the fast search's restart point was used.
_ULONG_MAX = 1 << 62

_S_PGALLOC = STAT["pgalloc"]
_S_ISOLATED = STAT["compact_isolated"]

# struct compact_control, as slots of an int64 array.
_MIGRATE_PFN = 0
_FREE_PFN = 1
_NR_MIGRATE = 2  # cc->nr_migratepages (the migratelist holds this many)
_NR_FREE = 3  # cc->nr_freepages (after split_map_pages: the freelist stack's height)
_ORDER = 4
_MT = 5  # cc->migratetype
_NR_ROWS = 6  # migrated rows written
_MODE = 7  # enum migrate_mode
_DIRECT = 8  # cc->direct_compaction
_WHOLE = 9  # cc->whole_zone
_IGN_SKIP = 10  # cc->ignore_skip_hint
_IGN_BLOCK = 11  # cc->ignore_block_suitable
_FINISH = 12  # FINISH_*
_PROACTIVE = 13  # proactive compaction's low score watermark; -1: not proactive
_HZ = 14  # cc->highest_zoneidx
_CPU = 15  # the compacting cpu (whose per-cpu lists check_drain empties)
_SEARCH_ORDER = 16
_FAST_FAIL = 17  # cc->fast_search_fail
_FAST_START = 18  # cc->fast_start_pfn
_RESCAN = 19
_FS = 20  # cc->gfp_mask & __GFP_FS
_MIG_SCANNED = 21  # cc->total_migrate_scanned
_FREE_SCANNED = 22  # cc->total_free_scanned
_NR_BLOCKS = 23  # free blocks isolated and not yet split (split_map_pages)
_CC_SIZE = 24

# isolate_migrate_t
_ISOLATE_NONE = 1
_ISOLATE_SUCCESS = 2


# --- small helpers (mm/internal.h, mm/compaction.c) -----------------------------------------
@compiled("int, int", inline=True)
def _block_start(pfn: int, order: int) -> int:
    """`block_start_pfn(pfn, order)`: round down to 2^order."""
    return pfn & ~((1 << order) - 1)


@compiled("int, int", inline=True)
def _block_end(pfn: int, order: int) -> int:
    """`block_end_pfn(pfn, order)`: ALIGN(pfn + 1, 2^order)."""
    return _block_start(pfn, order) + (1 << order)


@compiled("pages, int", inline=True)
def _compound_order(pages: np.ndarray, pfn: int) -> int:
    """`compound_order()` of an allocated block head (every one of order > 0 counts as
    compound: module docstring); 0 for anything else."""
    if pages[pfn]["flags"] & PG_HEAD:
        return int(pages[pfn]["order"])
    return 0


@compiled("pages, nd, int", inline=True)
def _skip_persistent(pages: np.ndarray, nd: np.ndarray, pfn: int) -> bool:
    """`pageblock_skip_persistent()`: the page belongs to a compound page of order >=
    pageblock_order (its head is the aligned start of a block of that order)."""
    pbo = int(nd["pageblock_order"])
    for o in range(pbo, int(nd["max_order"])):
        head = pfn & ~((1 << o) - 1)
        if (pages[head]["flags"] & PG_HEAD) and pages[head]["order"] >= o:
            return True
    return False


@compiled("int[], int", inline=True)
def _freelist_scan_limit(cc: np.ndarray, shift_max: int) -> int:
    """`freelist_scan_limit()`: (COMPACT_CLUSTER_MAX >> fast_search_fail) + 1."""
    return (COMPACT_CLUSTER_MAX >> min(shift_max, int(cc[_FAST_FAIL]))) + 1


@compiled("int[], int", inline=True)
def _next_search_order(cc: np.ndarray, order: int) -> int:
    """`next_search_order()`: the orders below `cc->order` round robin; -1 once wrapped."""
    order -= 1
    if order < 0:
        order = cc[_ORDER] - 1
    if order == cc[_SEARCH_ORDER]:
        cc[_SEARCH_ORDER] -= 1
        if cc[_SEARCH_ORDER] < 0:
            cc[_SEARCH_ORDER] = cc[_ORDER] - 1
        return -1
    return order


@compiled("pages, zone, int, int, int", inline=True)
def _move_freelist_head(pages: np.ndarray, zone: np.ndarray, order: int, mt: int,
                        pfn: int) -> None:
    """`move_freelist_head()`: unless `pfn` is first, the blocks before it go to the list's
    tail (`list_cut_before` + `list_splice_tail`), so `pfn` heads the list."""
    prv = pages[pfn]["prev"]
    if prv < 0:
        return
    head = zone["head"][order, mt]
    tail = zone["tail"][order, mt]
    pages[tail]["next"] = head
    pages[head]["prev"] = tail
    pages[prv]["next"] = -1
    pages[pfn]["prev"] = -1
    zone["head"][order, mt] = pfn
    zone["tail"][order, mt] = prv


@compiled("pages, zone, int, int, int", inline=True)
def _move_freelist_tail(pages: np.ndarray, zone: np.ndarray, order: int, mt: int,
                        pfn: int) -> None:
    """`move_freelist_tail()`: unless `pfn` is last, the blocks up to it go to the list's tail
    (`list_cut_position` + `list_splice_tail`), so `pfn` ends the list."""
    nxt = pages[pfn]["next"]
    if nxt < 0:
        return
    head = zone["head"][order, mt]
    tail = zone["tail"][order, mt]
    pages[tail]["next"] = head
    pages[head]["prev"] = tail
    pages[pfn]["next"] = -1
    pages[nxt]["prev"] = -1
    zone["head"][order, mt] = nxt
    zone["tail"][order, mt] = pfn


@compiled("uint8[], nd, int[], int", inline=True)
def _isolation_suitable(skip: np.ndarray, nd: np.ndarray, cc: np.ndarray, pfn: int) -> bool:
    """`isolation_suitable()`: the skip hint is ignored, or the block's bit is clear."""
    return bool(cc[_IGN_SKIP] != 0 or skip[pfn >> nd["pageblock_order"]] == 0)


@compiled("zone, nd, int[], int", inline=True)
def _update_cached_migrate(zone: np.ndarray, nd: np.ndarray, cc: np.ndarray, pfn: int) -> None:
    """`update_cached_migrate()`: the cached migrate pfns move up to `pageblock_end_pfn(pfn)`
    (the sync one only for a sync run)."""
    pfn = _block_end(pfn, int(nd["pageblock_order"]))
    if pfn > zone["compact_cached_migrate_pfn"][0]:
        zone["compact_cached_migrate_pfn"][0] = pfn
    if cc[_MODE] != MIGRATE_ASYNC and pfn > zone["compact_cached_migrate_pfn"][1]:
        zone["compact_cached_migrate_pfn"][1] = pfn


@compiled("zone, uint8[], nd, int", inline=True)
def _update_pageblock_skip(zone: np.ndarray, skip: np.ndarray, nd: np.ndarray,
                           pfn: int) -> None:
    """`update_pageblock_skip()` (free scanner): set the bit; the cached free pfn moves down."""
    skip[pfn >> nd["pageblock_order"]] = 1
    if pfn < zone["compact_cached_free_pfn"]:
        zone["compact_cached_free_pfn"] = pfn


@compiled("zone, nd", inline=True)
def _reset_cached_positions(zone: np.ndarray, nd: np.ndarray) -> None:
    """`reset_cached_positions()`: both migrate pfns to the zone start, the free pfn to the
    last pageblock."""
    zone["compact_cached_migrate_pfn"][0] = zone["start_pfn"]
    zone["compact_cached_migrate_pfn"][1] = zone["start_pfn"]
    zone["compact_cached_free_pfn"] = _block_start(int(zone["end_pfn"]) - 1,
                                                   int(nd["pageblock_order"]))


# --- skip-hint reset ------------------------------------------------------------------------
@compiled("pages, zone, pageblock_type, uint8[], nd, int, bool, bool")
def _reset_isolation_pfn(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                         skip: np.ndarray, nd: np.ndarray, pfn: int, check_source: bool,
                         check_target: bool) -> bool:
    """`__reset_isolation_pfn()`: clear the block's skip bit if a sample of every 8th page
    from its start finds an LRU page (source) or a free block head (target)."""
    start, end = zone["start_pfn"], zone["end_pfn"]
    if pfn < start or pfn >= end:
        return False
    if _skip_persistent(pages, nd, pfn):
        return False
    pbo = int(nd["pageblock_order"])
    block = pfn >> pbo
    if check_source and check_target and skip[block] == 0:
        return True
    if not check_source and check_target and pageblock_type[block] != MIGRATE_MOVABLE:
        return False
    p = max(_block_start(pfn, pbo), int(start))
    end_page = min(_block_end(pfn, pbo) - 1, int(end) - 1)
    while p <= end_page:
        flags = pages[p]["flags"]
        if check_source and (flags & PG_LRU):
            skip[block] = 0
            return True
        if check_target and (flags & PG_BUDDY):
            skip[block] = 0
            return True
        p += 1 << PAGE_ALLOC_COSTLY_ORDER
    return False


@compiled("pages, zones, pageblock_type, uint8[], node, int")
def reset_isolation_suitable_zone(pages: np.ndarray, zones: np.ndarray,
                                  pageblock_type: np.ndarray, skip: np.ndarray,
                                  node: np.ndarray, z: int) -> None:
    """`__reset_isolation_suitable()`: if the zone is flagged (`compact_blockskip_flush`), walk
    it from both ends a pageblock at a time, clear skip bits where a scanner would find work,
    and restart the cached and initial scanner positions at the outermost such blocks."""
    zone = zones[z]
    nd = node[0]
    if zone["compact_blockskip_flush"] == 0:
        return
    zone["compact_blockskip_flush"] = 0
    nr_pb = 1 << int(nd["pageblock_order"])
    migrate_pfn = zone["start_pfn"]
    free_pfn = zone["end_pfn"] - 1
    reset_migrate = free_pfn
    reset_free = migrate_pfn
    source_set = False
    free_set = False
    while migrate_pfn < free_pfn:
        if _reset_isolation_pfn(pages, zone, pageblock_type, skip, nd, migrate_pfn, True,
                                source_set) and migrate_pfn < reset_migrate:
            source_set = True
            reset_migrate = migrate_pfn
            zone["compact_init_migrate_pfn"] = reset_migrate
            zone["compact_cached_migrate_pfn"][0] = reset_migrate
            zone["compact_cached_migrate_pfn"][1] = reset_migrate
        if _reset_isolation_pfn(pages, zone, pageblock_type, skip, nd, free_pfn, free_set,
                                True) and free_pfn > reset_free:
            free_set = True
            reset_free = free_pfn
            zone["compact_init_free_pfn"] = reset_free
            zone["compact_cached_free_pfn"] = reset_free
        migrate_pfn += nr_pb
        free_pfn -= nr_pb
    if reset_migrate >= reset_free:  # leave no distance if no suitable block was reset
        zone["compact_cached_migrate_pfn"][0] = migrate_pfn
        zone["compact_cached_migrate_pfn"][1] = migrate_pfn
        zone["compact_cached_free_pfn"] = free_pfn


# --- the free scanner -----------------------------------------------------------------------
@compiled("pages, zones, pageblock_type, nd, int, int")
def isolate_free_page(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                      nd: np.ndarray, z: int, pfn: int) -> int:
    """6.1 `__isolate_free_page(page, order)` (mm/page_alloc.c) of the free block at `pfn`,
    and the `split_page` `split_map_pages` does later (the pages between are never looked at).

    Outside an ISOLATE pageblock the zone must pass its order-0 watermark at `_watermark[MIN] +
    2^order` (no boost); else 0. A block of order >= pageblock_order - 1 retypes each of its
    mergeable pageblocks MOVABLE (6.15, `node['typed_freelists']`: with their other free pages,
    `move_freepages_block`). Returns the pages taken."""
    zone = zones[z]
    order = int(pages[pfn]["order"])
    pbo = int(nd["pageblock_order"])
    mark = zone["watermark"][WMARK_MIN] + (1 << order)
    if pageblock_type[pfn >> pbo] != MIGRATE_ISOLATE and not zone_watermark_ok(zone, 0, mark,
                                                                               0, 0):
        return 0
    list_del(pages, zone, pfn)
    nr = 1 << order
    zone["free_pages"] -= nr
    nd["stat"][_S_PGALLOC] += nr
    nd["pgalloc_zone"][z] += nr
    for p in range(pfn, pfn + nr):  # post_alloc_hook + split_page: order-0 pages
        pages[p]["owner"] = -1
        pages[p]["mt"] = MIGRATE_MOVABLE
        pages[p]["order"] = 0
        pages[p]["flags"] = PG_HEAD
    if order >= pbo - 1 and nd["grouping"] != 0:
        for p in range(pfn, pfn + nr - 1, 1 << pbo):
            if pageblock_type[p >> pbo] >= MIGRATE_PCPTYPES:  # migratetype_is_mergeable
                continue
            if nd["typed_freelists"] == 0:
                pageblock_type[p >> pbo] = MIGRATE_MOVABLE
            else:
                start, _, _ = prep_move_freepages_block(pages, zone, p, pbo)
                if start >= 0:
                    move_freepages_block_6_15(pages, zone, pageblock_type, nd, start,
                                              MIGRATE_MOVABLE)
    return nr


@compiled("pages, zones, pageblock_type, nd, int, int[], int[][], int, int, int")
def _isolate_freepages_block(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                             nd: np.ndarray, z: int, cc: np.ndarray, blocks: np.ndarray,
                             start_pfn: int, end_pfn: int, stride: int) -> int:
    """`isolate_freepages_block(cc, &start_pfn, end_pfn, &cc->freepages, stride, false)`:
    take the free blocks in [start_pfn, end_pfn) every `stride` pages, stepping over compound
    pages, until enough are isolated or `__isolate_free_page` refuses. Appends (pfn, order) to
    `blocks` (`list_add_tail`); returns where it stopped (the pages taken go to
    `cc[_NR_FREE]`)."""
    blockpfn = start_pfn
    nr_scanned = 0
    total = 0
    while blockpfn < end_pfn:
        nr_scanned += 1
        corder = _compound_order(pages, blockpfn)
        if corder > 0:
            blockpfn += (1 << corder) - 1 + stride
            continue
        if not (pages[blockpfn]["flags"] & PG_BUDDY):
            blockpfn += stride
            continue
        order = int(pages[blockpfn]["order"])
        isolated = isolate_free_page(pages, zones, pageblock_type, nd, z, blockpfn)
        if isolated == 0:
            break
        nb = cc[_NR_BLOCKS]
        blocks[nb, 0] = blockpfn
        blocks[nb, 1] = order
        cc[_NR_BLOCKS] = nb + 1
        nr_scanned += isolated - 1
        total += isolated
        cc[_NR_FREE] += isolated
        if cc[_NR_MIGRATE] <= cc[_NR_FREE]:
            blockpfn += isolated
            break
        blockpfn += isolated - 1 + stride
    if blockpfn > end_pfn:
        blockpfn = end_pfn
    cc[_FREE_SCANNED] += nr_scanned
    nd["stat"][_S_ISOLATED] += total
    return blockpfn


@compiled("pages, zones, pageblock_type, uint8[], nd, int, int[], int[][], int")
def _fast_isolate_around(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                         skip: np.ndarray, nd: np.ndarray, z: int, cc: np.ndarray,
                         blocks: np.ndarray, pfn: int) -> None:
    """`fast_isolate_around()`: still short of targets (and not async direct compaction),
    scan `pfn`'s whole pageblock; mark it skipped if that was not enough."""
    if cc[_NR_FREE] >= cc[_NR_MIGRATE]:
        return
    if cc[_DIRECT] != 0 and cc[_MODE] == MIGRATE_ASYNC:
        return
    zone = zones[z]
    pbo = int(nd["pageblock_order"])
    start = max(_block_start(pfn, pbo), zone["start_pfn"])
    end = min(_block_end(pfn, pbo), zone["end_pfn"])
    _isolate_freepages_block(pages, zones, pageblock_type, nd, z, cc, blocks, start, end, 1)
    if cc[_NR_FREE] < cc[_NR_MIGRATE]:
        skip[start >> pbo] = 1


@compiled("pages, zones, pageblock_type, uint8[], nd, int, int[], int[][]")
def _fast_isolate_freepages(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                            skip: np.ndarray, nd: np.ndarray, z: int, cc: np.ndarray,
                            blocks: np.ndarray) -> None:
    """`fast_isolate_freepages()` (module docstring)."""
    if cc[_ORDER] <= 0:
        return
    zone = zones[z]
    pbo = int(nd["pageblock_order"])
    nr_pb = 1 << pbo
    limit = max(1, _freelist_scan_limit(cc, 63) >> 1)
    scan_start = False
    if cc[_FREE_PFN] >= zone["compact_init_free_pfn"]:
        limit = nr_pb >> 1
        scan_start = True
    distance = cc[_FREE_PFN] - cc[_MIGRATE_PFN]
    low_pfn = _block_start(cc[_FREE_PFN] - (distance >> 2), pbo)
    min_pfn = _block_start(cc[_FREE_PFN] - (distance >> 1), pbo)
    if min_pfn > low_pfn:
        low_pfn = min_pfn
    cc[_SEARCH_ORDER] = min(cc[_ORDER] - 1, cc[_SEARCH_ORDER])
    page = -1
    highest = 0
    nr_scanned = 0
    order = cc[_SEARCH_ORDER]
    while page < 0 and order >= 0:
        if zone["nr_free"][order] != 0:
            order_scanned = 0
            high_pfn = 0
            freepage = zone["tail"][order, MIGRATE_MOVABLE]  # list_for_each_entry_reverse
            while freepage >= 0:
                order_scanned += 1
                nr_scanned += 1
                pfn = freepage
                if pfn >= highest:
                    highest = max(_block_start(pfn, pbo), zone["start_pfn"])
                if pfn >= low_pfn:
                    cc[_FAST_FAIL] = 0
                    cc[_SEARCH_ORDER] = order
                    page = freepage
                    break
                if pfn >= min_pfn and pfn > high_pfn:
                    high_pfn = pfn
                    limit >>= 1  # shorten the scan if a candidate is found
                if order_scanned >= limit:
                    break
                freepage = pages[freepage]["prev"]
            if page < 0 and high_pfn:
                page = high_pfn
                freepage = page
            if freepage >= 0:  # reorder so a future search skips recent pages
                _move_freelist_head(pages, zone, order, MIGRATE_MOVABLE, freepage)
            if page >= 0:
                nr = isolate_free_page(pages, zones, pageblock_type, nd, z, page)
                if nr:
                    nb = cc[_NR_BLOCKS]
                    blocks[nb, 0] = page
                    blocks[nb, 1] = order
                    cc[_NR_BLOCKS] = nb + 1
                    nr_scanned += nr - 1
                    cc[_NR_FREE] += nr
                    nd["stat"][_S_ISOLATED] += nr
                else:  # if isolation fails, abort the search
                    order = cc[_SEARCH_ORDER] + 1
                    page = -1
            if order_scanned >= limit:
                limit = max(1, limit >> 1)
        order = _next_search_order(cc, order)
    if page < 0:
        cc[_FAST_FAIL] += 1
        if scan_start:
            # Use the highest pfn found above min; direct compaction falls back on min_pfn.
            if highest >= min_pfn:
                page = highest
                cc[_FREE_PFN] = highest
            elif cc[_DIRECT] != 0 and zone["start_pfn"] <= min_pfn < zone["end_pfn"]:
                page = min_pfn
                cc[_FREE_PFN] = min_pfn
    if highest and highest >= zone["compact_cached_free_pfn"]:
        highest -= nr_pb
        zone["compact_cached_free_pfn"] = highest
    cc[_FREE_SCANNED] += nr_scanned
    if page >= 0:
        _fast_isolate_around(pages, zones, pageblock_type, skip, nd, z, cc, blocks, page)


@compiled("pages, pageblock_type, nd, int[], int", inline=True)
def _suitable_migration_target(pages: np.ndarray, pageblock_type: np.ndarray, nd: np.ndarray,
                               cc: np.ndarray, pfn: int) -> bool:
    """6.1 `suitable_migration_target()`: never a block headed by a free block of
    pageblock_order or more; any block with `ignore_block_suitable`; else MOVABLE ones."""
    pbo = int(nd["pageblock_order"])
    if (pages[pfn]["flags"] & PG_BUDDY) and pages[pfn]["order"] >= pbo:
        return False
    if cc[_IGN_BLOCK] != 0:
        return True
    return bool(pageblock_type[pfn >> pbo] == MIGRATE_MOVABLE)


@compiled("pages, zones, pageblock_type, uint8[], nd, int, int[], int[][], int[]")
def _isolate_freepages(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                       skip: np.ndarray, nd: np.ndarray, z: int, cc: np.ndarray,
                       blocks: np.ndarray, freelist: np.ndarray) -> None:
    """6.1 `isolate_freepages()`: the fast search, else the linear walk down from `free_pfn`
    to the migrate scanner's pageblock end; then `split_map_pages` onto `freelist` (a stack
    whose top is `cc->freepages.next`)."""
    _fast_isolate_freepages(pages, zones, pageblock_type, skip, nd, z, cc, blocks)
    if cc[_NR_FREE] == 0:
        zone = zones[z]
        pbo = int(nd["pageblock_order"])
        nr_pb = 1 << pbo
        isolate_start = cc[_FREE_PFN]
        block_start = _block_start(isolate_start, pbo)
        block_end = min(block_start + nr_pb, zone["end_pfn"])
        low_pfn = _block_end(cc[_MIGRATE_PFN], pbo)
        stride = COMPACT_CLUSTER_MAX if cc[_MODE] == MIGRATE_ASYNC else 1
        while block_start >= low_pfn:
            if _suitable_migration_target(pages, pageblock_type, nd, cc, block_start) \
                    and _isolation_suitable(skip, nd, cc, block_start):
                before = cc[_NR_FREE]
                isolate_start = _isolate_freepages_block(pages, zones, pageblock_type, nd, z,
                                                         cc, blocks, isolate_start, block_end,
                                                         stride)
                if isolate_start == block_end:  # the full pageblock was scanned
                    _update_pageblock_skip(zone, skip, nd, block_start)
                if cc[_NR_FREE] >= cc[_NR_MIGRATE]:
                    if isolate_start >= block_end:
                        # Restart at the previous pageblock if more can be isolated next time.
                        isolate_start = block_start - nr_pb
                    break
                if isolate_start < block_end:  # isolation failed early
                    break
                if cc[_NR_FREE] > before:
                    stride = 1
                else:
                    stride = min(COMPACT_CLUSTER_MAX, stride << 1)
            block_end = block_start
            block_start -= nr_pb
            isolate_start = block_start
        cc[_FREE_PFN] = isolate_start
    # split_map_pages(): each block's pages list_add'ed in turn, so the last page of the last
    # block heads the list.
    top = 0
    for b in range(cc[_NR_BLOCKS]):
        pfn = blocks[b, 0]
        for i in range(1 << blocks[b, 1]):
            freelist[top] = pfn + i
            top += 1
    cc[_NR_BLOCKS] = 0


# --- the migrate scanner --------------------------------------------------------------------
@compiled("pages, zone, int[], int[]", inline=True)
def _putback(pages: np.ndarray, zone: np.ndarray, cc: np.ndarray, migratelist: np.ndarray) -> None:
    """`putback_movable_pages(&cc->migratepages)`: from the list head (the page isolated
    last), each back at the head of its LRU list; the list is emptied."""
    for i in range(cc[_NR_MIGRATE] - 1, -1, -1):
        pfn = migratelist[i]
        if pfn >= 0:
            lru_add(pages, zone, pfn, (pages[pfn]["flags"] & PG_ACTIVE) != 0)
    cc[_NR_MIGRATE] = 0


@compiled("pages, zones, uint8[], nd, int, int[], int[], int, int")
def _isolate_migratepages_block(pages: np.ndarray, zones: np.ndarray, skip: np.ndarray,
                                nd: np.ndarray, z: int, cc: np.ndarray,
                                migratelist: np.ndarray, low_pfn: int, end_pfn: int) -> None:
    """6.1 `isolate_migratepages_block(cc, low_pfn, end_pfn, isolate_mode)` (module
    docstring); leaves `cc->migrate_pfn` where it stopped."""
    zone = zones[z]
    pbo = int(nd["pageblock_order"])
    order = cc[_ORDER]
    nr_scanned = 0
    nr_isolated = 0
    valid_page = -1
    skip_updated = False
    async_isolate = cc[_MODE] != MIGRATE_SYNC  # ISOLATE_ASYNC_MIGRATE
    skip_on_failure = cc[_DIRECT] != 0 and cc[_MODE] == MIGRATE_ASYNC
    next_skip_pfn = _block_end(low_pfn, order) if skip_on_failure else 0
    cc[_MIGRATE_PFN] = low_pfn
    aborted = False
    while low_pfn < end_pfn:
        if skip_on_failure and low_pfn >= next_skip_pfn:
            # The previous order-aligned block was isolated whole: migrate it now.
            if nr_isolated:
                break
            next_skip_pfn = _block_end(low_pfn, order)
        nr_scanned += 1
        if valid_page < 0 and (low_pfn & ((1 << pbo) - 1)) == 0:
            if not _isolation_suitable(skip, nd, cc, low_pfn):
                low_pfn = end_pfn
                aborted = True
                break
            valid_page = low_pfn
        flags = pages[low_pfn]["flags"]
        if flags & PG_BUDDY:  # skip a free block whole
            freepage_order = int(pages[low_pfn]["order"])
            if 0 < freepage_order < nd["max_order"]:
                low_pfn += (1 << freepage_order) - 1
            low_pfn += 1
            continue
        fail = False
        corder = _compound_order(pages, low_pfn)
        if corder > 0:
            low_pfn += (1 << corder) - 1
            fail = True
        elif not (flags & PG_LRU):
            fail = True
        else:
            kind = (pages[low_pfn]["mt"] >> KIND_SHIFT) & 0x0F
            if cc[_FS] == 0 and kind in (KIND_FILE, KIND_FILE_MAPPED):
                fail = True  # only anonymous pages without __GFP_FS
            elif async_isolate and (flags & PG_WRITEBACK):
                fail = True
            else:
                if not skip_updated:
                    skip_updated = True
                    # test_and_set_skip(): only at the block's first page.
                    if cc[_IGN_SKIP] == 0 and (low_pfn & ((1 << pbo) - 1)) == 0:
                        block = low_pfn >> pbo
                        was_set = skip[block] != 0
                        skip[block] = 1
                        if was_set:
                            aborted = True
                            break
                lru_del(pages, zone, low_pfn)
                migratelist[cc[_NR_MIGRATE]] = low_pfn
                cc[_NR_MIGRATE] += 1
                nr_isolated += 1
                if cc[_NR_MIGRATE] >= COMPACT_CLUSTER_MAX and cc[_RESCAN] == 0:
                    low_pfn += 1
                    break
                low_pfn += 1
                continue
        if fail and skip_on_failure:
            # Some pages were isolated but this one failed: the order-aligned block cannot
            # become free, so release them and go on with the next block.
            if nr_isolated:
                _putback(pages, zone, cc, migratelist)
                nr_isolated = 0
            if low_pfn < next_skip_pfn:
                low_pfn = next_skip_pfn - 1
                next_skip_pfn += 1 << order
        low_pfn += 1
    if not aborted and low_pfn > end_pfn:
        low_pfn = end_pfn
    if low_pfn == end_pfn and (nr_isolated == 0 or cc[_RESCAN] != 0):
        if valid_page >= 0 and not skip_updated:
            skip[valid_page >> pbo] = 1
        _update_cached_migrate(zone, nd, cc, low_pfn)
    cc[_MIG_SCANNED] += nr_scanned
    nd["stat"][_S_ISOLATED] += nr_isolated
    cc[_MIGRATE_PFN] = low_pfn


@compiled("int[], int", inline=True)
def _update_fast_start_pfn(cc: np.ndarray, pfn: int) -> None:
    """`update_fast_start_pfn()`: the lowest pfn the fast search picked."""
    if cc[_FAST_START] == _ULONG_MAX:
        return
    if cc[_FAST_START] == 0:
        cc[_FAST_START] = pfn
    cc[_FAST_START] = min(cc[_FAST_START], pfn)


@compiled("pages, zone, uint8[], nd, int[]")
def _fast_find_migrateblock(pages: np.ndarray, zone: np.ndarray, skip: np.ndarray,
                            nd: np.ndarray, cc: np.ndarray) -> int:
    """`fast_find_migrateblock()` (module docstring); returns the pfn to scan from."""
    pfn = int(cc[_MIGRATE_PFN])
    if cc[_IGN_SKIP] != 0:
        return pfn
    pbo = int(nd["pageblock_order"])
    start = zone["start_pfn"]
    # Not at the zone or a pageblock start: a continuation of a scan cut at 32 pages.
    if pfn != start and pfn != _block_start(pfn, pbo):
        return pfn
    if cc[_ORDER] <= PAGE_ALLOC_COSTLY_ORDER:
        return pfn
    if cc[_DIRECT] != 0 and cc[_MT] != MIGRATE_MOVABLE:
        return pfn
    limit = _freelist_scan_limit(cc, 63)
    nr_scanned = 0
    distance = (cc[_FREE_PFN] - cc[_MIGRATE_PFN]) >> 1
    if cc[_MIGRATE_PFN] != start:
        distance >>= 2
    high_pfn = _block_start(cc[_MIGRATE_PFN] + distance, pbo)
    found = False
    order = cc[_ORDER] - 1
    while order >= PAGE_ALLOC_COSTLY_ORDER and not found and nr_scanned < limit:
        if zone["nr_free"][order] != 0:
            freepage = zone["head"][order, MIGRATE_MOVABLE]
            while freepage >= 0:
                scanned = nr_scanned
                nr_scanned += 1
                if scanned >= limit:
                    _move_freelist_tail(pages, zone, order, MIGRATE_MOVABLE, freepage)
                    break
                nxt = pages[freepage]["next"]
                if freepage < high_pfn:
                    if skip[freepage >> pbo] != 0:  # skipped recently
                        freepage = nxt
                        continue
                    _move_freelist_tail(pages, zone, order, MIGRATE_MOVABLE, freepage)
                    _update_fast_start_pfn(cc, freepage)
                    pfn = max(_block_start(freepage, pbo), int(start))
                    cc[_FAST_FAIL] = 0
                    found = True
                    skip[freepage >> pbo] = 1
                    break
                freepage = nxt
        order -= 1
    cc[_MIG_SCANNED] += nr_scanned
    if not found:
        cc[_FAST_FAIL] += 1
        # reinit_migrate_pfn(): a linear scan from the lowest block picked before.
        if cc[_FAST_START] != 0 and cc[_FAST_START] != _ULONG_MAX:
            cc[_MIGRATE_PFN] = cc[_FAST_START]
            cc[_FAST_START] = _ULONG_MAX
        pfn = int(cc[_MIGRATE_PFN])
    return pfn


@compiled("pages, pageblock_type, nd, int[], int", inline=True)
def _suitable_migration_source(pages: np.ndarray, pageblock_type: np.ndarray, nd: np.ndarray,
                               cc: np.ndarray, pfn: int) -> bool:
    """6.1 `suitable_migration_source()`: not a block of a compound page >= pageblock_order;
    async direct compaction takes only blocks of the request's type (MOVABLE for movable)."""
    if _skip_persistent(pages, nd, pfn):
        return False
    if cc[_MODE] != MIGRATE_ASYNC or cc[_DIRECT] == 0:
        return True
    return bool(pageblock_type[pfn >> nd["pageblock_order"]] == cc[_MT])


@compiled("pages, zones, pageblock_type, uint8[], nd, int, int[], int[]")
def _isolate_migratepages(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                          skip: np.ndarray, nd: np.ndarray, z: int, cc: np.ndarray,
                          migratelist: np.ndarray) -> int:
    """6.1 `isolate_migratepages()`: from the fast pick or `migrate_pfn`, the first suitable
    pageblock below the free scanner is isolated from. ISOLATE_SUCCESS or ISOLATE_NONE."""
    zone = zones[z]
    pbo = int(nd["pageblock_order"])
    nr_pb = 1 << pbo
    low_pfn = _fast_find_migrateblock(pages, zone, skip, nd, cc)
    block_start = max(_block_start(low_pfn, pbo), zone["start_pfn"])
    fast_find_block = low_pfn != cc[_MIGRATE_PFN] and cc[_FAST_FAIL] == 0
    block_end = _block_end(low_pfn, pbo)
    while block_end <= cc[_FREE_PFN]:
        if (low_pfn & (nr_pb - 1)) == 0 and not fast_find_block \
                and not _isolation_suitable(skip, nd, cc, block_start):
            pass
        elif not _suitable_migration_source(pages, pageblock_type, nd, cc, block_start):
            _update_cached_migrate(zone, nd, cc, block_end)
        else:
            _isolate_migratepages_block(pages, zones, skip, nd, z, cc, migratelist, low_pfn,
                                        block_end)
            break
        fast_find_block = False
        low_pfn = block_end
        cc[_MIGRATE_PFN] = low_pfn
        block_start = block_end
        block_end += nr_pb
    return _ISOLATE_SUCCESS if cc[_NR_MIGRATE] else _ISOLATE_NONE

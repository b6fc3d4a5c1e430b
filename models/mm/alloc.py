"""The allocation fast path and free path, single and batched: `mm/page_alloc.c` of 2.6.24.

`get_page_from_freelist` walks a zonelist (the request's highest zone down to DMA, skipping empty
zones), checks `zone_watermark_ok` unless ALLOC_NO_WATERMARKS, and takes a block with
`__rmqueue`. The marks are `wmark_pages()` (5.0+: plus the zone's watermark boost, 0 before),
and 6.1's `rmqueue` tail (ZONE_BOOSTED_WATERMARK: wake kswapd) and ALLOC_NOFRAGMENT retry are
in `rmqueue_zone` and `get_page_from_freelist` (`models.mm.boost`). `prep_new_page` marks the
block as allocated to an owner. The slow path (kswapd, direct reclaim and compaction) lives
above this and calls these functions again.

When `node['pcp']` is set, order-0 requests and frees go through the per-cpu lists of a cpu
(`buffered_rmqueue`, `free_hot_cold_page` in `models.mm.pcp`), hot or cold; with 6.1's
per-order lists (`node['pcp_per_order']`) every `pcp_allowed_order` request and free does
(`rmqueue_pcp_6_1`, `free_unref_page` in `models.mm.pcp_6_1`).

The entry points called from Python (`alloc_one`, `alloc_batch`, `free_one`, `free_batch`) take
the four state arrays so that one numba dispatch serves a whole batch. They are the buddy
allocator alone: they never reference the per-cpu code, so machines without the lists neither
compile nor run it. `alloc_one_pcp`,
`alloc_batch_pcp`, `free_one_pcp` and `free_batch_pcp` take a cpu (-1: no per-cpu lists) and the
cold flag (0 or 1), and use the lists when `node['pcp']` is set: `Machine` calls them then.
None has default arguments: numba dispatches a Python call that leaves arguments to their
defaults several times slower, and these calls are the hot path.
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.boost import wmark_pages
from fragsim.models.mm.buddy import (
    FREE_6_1,
    free_one_page,
    free_one_page_fpi,
    rmqueue_flags,
    zone_of_pfn,
)
from fragsim.models.mm.constants import (
    ALLOC_HARDER,
    ALLOC_HIGH,
    ALLOC_NO_WATERMARKS,
    ALLOC_NOFRAGMENT,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MIN,
    FREE_NOT_ALLOCATED,
    FREE_OK,
    FREE_OUT_OF_RANGE,
    PG_BUDDY,
    PG_HEAD,
    PG_LRU,
    WMARK_HIGH,
    WMARK_LOW,
    WMARK_MIN,
    ZONE_BOOSTED_WATERMARK,
)
from fragsim.models.mm.freelist import free_block_of_order
from fragsim.models.mm.highatomic import (
    reserve_highatomic_pageblock,
    reserve_highatomic_pageblock_6_15,
)
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.lru import lru_del
from fragsim.models.mm.pcp import buffered_rmqueue, free_hot_cold_page
from fragsim.models.mm.pcp_6_1 import free_unref_page, pcp_allowed_order, rmqueue_pcp_6_1
from fragsim.models.mm.prefetch import prefetch
from fragsim.models.mm.state import KIND_SHIFT, STAT
from fragsim.models.mm.wmark_6_15 import zone_watermark_ok_6_15

__all__ = [
    "WMARK_RULE_2_6_24",
    "WMARK_RULE_6_1",
    "WMARK_RULE_6_15",
    "alloc_batch",
    "alloc_batch_pcp",
    "alloc_one",
    "alloc_one_pcp",
    "free_batch",
    "free_batch_pcp",
    "free_one",
    "free_one_pcp",
    "free_range_boot",
    "get_page_from_freelist",
    "prep_new_page",
    "rmqueue_zone",
    "wmark_of",
    "zone_watermark_fast",
    "zone_watermark_ok",
    "zone_watermark_ok_6_1",
]

_S_PGALLOC = STAT["pgalloc"]
_S_PGFREE = STAT["pgfree"]
_S_ALLOC_SUCCESS = STAT["alloc_success"]
_S_ALLOC_FAIL = STAT["alloc_fail"]
_S_FREE_UNMATCHED = STAT["free_unmatched"]

#: `zone['wmark_rule']`: which `zone_watermark_ok` a zone follows. 2.6.24: every order below
#: the request's is unusable and halves the mark.
WMARK_RULE_2_6_24 = 0
#: 6.1 `__zone_watermark_ok`: the HIGHATOMIC reserve is unusable except for ALLOC_HARDER, and
#: an order > 0 request only needs one free block of its order or above on a usable list.
WMARK_RULE_6_1 = 1
#: 6.15 `__zone_watermark_ok` (`models.mm.wmark_6_15`): `nr_free_highatomic` is unusable
#: without reserves, and only ALLOC_HIGH lowers the mark (ALLOC_HARDER a quarter more).
WMARK_RULE_6_15 = 2


@compiled("zone, int, int, int, int", inline=True)
def zone_watermark_ok(zone: np.ndarray, order: int, mark: int, classzone_idx: int,
                      alloc_flags: int) -> bool:
    """2.6.24 `zone_watermark_ok()`, exactly; 6.1's when `zone['wmark_rule']` says so.

    `free = NR_FREE_PAGES - 2^order + 1`; `min = mark`, halved for ALLOC_HIGH, less a quarter for
    ALLOC_HARDER; fail if `free <= min + lowmem_reserve[classzone_idx]`; then for each lower
    order, that order's free pages become unusable and `min` halves.
    """
    if zone["wmark_rule"] == WMARK_RULE_6_1:
        return zone_watermark_ok_6_1(zone, order, mark, classzone_idx, alloc_flags)
    if zone["wmark_rule"] == WMARK_RULE_6_15:
        return zone_watermark_ok_6_15(zone, order, mark, classzone_idx, alloc_flags)
    min_ = mark
    free_pages = zone["free_pages"] - (1 << order) + 1
    if alloc_flags & ALLOC_HIGH:
        min_ -= min_ // 2
    if alloc_flags & ALLOC_HARDER:
        min_ -= min_ // 4
    if free_pages <= min_ + zone["lowmem_reserve"][classzone_idx]:
        return False
    for o in range(order):
        free_pages -= zone["nr_free"][o] << o
        min_ >>= 1
        if free_pages <= min_:
            return False
    return True


@compiled("zone, int, int, int, int", inline=True)
def zone_watermark_ok_6_1(zone: np.ndarray, order: int, mark: int, classzone_idx: int,
                          alloc_flags: int) -> bool:
    """6.1 `__zone_watermark_ok()` (the 6.1.0 form, ALLOC_HARDER for its `alloc_harder`).

    `free = NR_FREE_PAGES - (2^order - 1)`, less `nr_reserved_highatomic` unless ALLOC_HARDER;
    `min` halved for ALLOC_HIGH, less a quarter for ALLOC_HARDER; fail if `free <= min +
    lowmem_reserve`. Order 0 then passes; a higher order passes when some order from it up has
    a free block on an UNMOVABLE, RECLAIMABLE or MOVABLE list, or (ALLOC_HARDER) on the
    HIGHATOMIC list. (`zone_watermark_fast`'s order-0 shortcut gives the same answers.)
    """
    min_ = mark
    free_pages = zone["free_pages"] - ((1 << order) - 1)
    harder = alloc_flags & ALLOC_HARDER
    if not harder:
        free_pages -= zone["nr_reserved_highatomic"]
    if alloc_flags & ALLOC_HIGH:
        min_ -= min_ // 2
    if harder:
        min_ -= min_ // 4
    if free_pages <= min_ + zone["lowmem_reserve"][classzone_idx]:
        return False
    if order == 0:
        return True
    return free_block_of_order(zone, order, harder != 0)


@compiled("zone, int, int, int, int", inline=True)
def zone_watermark_fast(zone: np.ndarray, order: int, mark: int, classzone_idx: int,
                        alloc_flags: int) -> bool:
    """6.1 `zone_watermark_fast()`: `zone_watermark_ok`, and then "Ignore watermark boosting
    for GFP_ATOMIC order-0 allocations when checking the min watermark": an order-0
    ALLOC_HARDER request (the model's stand-in for __GFP_ATOMIC) at WMARK_MIN in a boosted zone
    is checked again against the unboosted `_watermark[WMARK_MIN]`. (The order-0 shortcut
    before `__zone_watermark_ok` gives the same answers.) With no boost, as on every kernel
    before 5.0, this is `zone_watermark_ok`."""
    if zone_watermark_ok(zone, order, mark, classzone_idx, alloc_flags):
        return True
    if (order == 0 and (alloc_flags & ALLOC_HARDER) and zone["watermark_boost"] != 0
            and wmark_of(alloc_flags) == WMARK_MIN):
        return zone_watermark_ok(zone, 0, zone["watermark"][WMARK_MIN], classzone_idx,
                                 alloc_flags)
    return False


@compiled("int", inline=True)
def wmark_of(alloc_flags: int) -> int:
    """Which watermark ALLOC_WMARK_* selects (`zone->pages_min/low/high`).

    2.6.24 `get_page_from_freelist()` tests ALLOC_WMARK_MIN, then ALLOC_WMARK_LOW, and
    otherwise uses pages_high (so flags with no watermark bit mean HIGH).
    """
    if alloc_flags & ALLOC_WMARK_MIN:
        return WMARK_MIN
    if alloc_flags & ALLOC_WMARK_LOW:
        return WMARK_LOW
    return WMARK_HIGH


@compiled("pages, int, int, int, int, int", inline=True)
def prep_new_page(pages: np.ndarray, pfn: int, order: int, mt: int, owner: int,
                  kind: int) -> None:
    """Mark an allocated block: the head keeps its order; every page records owner, type, kind."""
    mt_kind = mt | (kind << KIND_SHIFT)
    for p in range(pfn, pfn + (1 << order)):
        pages[p]["owner"] = owner
        pages[p]["mt"] = mt_kind
        pages[p]["flags"] = 0
    pages[pfn]["order"] = order
    pages[pfn]["flags"] = PG_HEAD


@compiled("zones, int, int, int, int", inline=True)
def _zonelist_next(zones: np.ndarray, z: int, classzone_idx: int, order: int,
                   alloc_flags: int) -> int:
    """The next zone of the zonelist, from `z` down, that `get_page_from_freelist()` tries:
    populated and, unless ALLOC_NO_WATERMARKS, passing `zone_watermark_fast()` at
    `wmark_pages(zone, alloc_flags & ALLOC_WMARK_MASK)` (the boosted mark); -1 if none."""
    while z >= 0:
        zone = zones[z]
        if zone["present_pages"] != 0:
            if alloc_flags & ALLOC_NO_WATERMARKS:
                return z
            mark = wmark_pages(zone, wmark_of(alloc_flags))
            if zone_watermark_fast(zone, order, mark, classzone_idx, alloc_flags):
                return z
        z -= 1
    return -1


@compiled("zones, int", inline=True)
def _classzone(zones: np.ndarray, high_zone: int) -> int:
    """`classzone_idx`: the first populated zone of the zonelist from `high_zone` down, or -1."""
    for z in range(high_zone, -1, -1):
        if zones[z]["present_pages"] != 0:
            return z
    return -1


@compiled("nd, int, int", inline=True)
def _count_pgalloc(nd: np.ndarray, z: int, order: int) -> None:
    nd["stat"][_S_PGALLOC] += 1 << order
    nd["pgalloc_zone"][z] += 1 << order


@compiled("pages, zone, pageblock_type, nd, int, int, int", inline=True)
def _highatomic_after_alloc(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                            nd: np.ndarray, pfn: int, order: int, alloc_flags: int) -> None:
    """6.1 `get_page_from_freelist()`: "If this is a high-order atomic allocation then check if
    the pageblock should be reserved for the future" (kernels with `node['highatomic']`)."""
    if nd["highatomic"] != 0 and order > 0 and (alloc_flags & ALLOC_HARDER):
        if nd["typed_freelists"] != 0:
            reserve_highatomic_pageblock_6_15(pages, zone, pageblock_type, nd, pfn, order)
        else:
            reserve_highatomic_pageblock(pages, zone, pageblock_type, nd, pfn)


@compiled("zone, nd, int", inline=True)
def _boosted_wakeup(zone: np.ndarray, nd: np.ndarray, z: int) -> None:
    """The end of 6.1 `rmqueue()`: a ZONE_BOOSTED_WATERMARK zone has its flag cleared and
    kswapd woken (`wakeup_kswapd(zone, 0, 0, zone_idx(zone))`, left in `node['boost_wake']`)."""
    if zone["flags"] & ZONE_BOOSTED_WATERMARK:
        zone["flags"] &= ~ZONE_BOOSTED_WATERMARK
        nd["boost_wake"] |= 1 << z


@compiled("pages, zones, pageblock_type, nd, int, int, int, int, int, int", inline=True)
def rmqueue_zone(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                 nd: np.ndarray, z: int, order: int, mt: int, alloc_flags: int, cpu: int,
                 cold: int) -> int:
    """6.1 `rmqueue()` on zone `z`: order 0 from the per-cpu lists when they are on and
    `cpu >= 0` (`buffered_rmqueue`; with 6.1's per-order lists, `node['pcp_per_order']`, every
    `pcp_allowed_order` through `rmqueue_pcplist`, falling back to `rmqueue_buddy`:
    `pcp_6_1.rmqueue_pcp_6_1`), else the buddy lists (`rmqueue_flags`); then, whether or
    not that found a page, "if (test_bit(ZONE_BOOSTED_WATERMARK, &zone->flags))": clear it and
    `wakeup_kswapd(zone, 0, 0, zone_idx(zone))`, recorded as bit `z` of `node['boost_wake']`
    for the Python side (`models.mm.slowpath.boost_wakeups`). Returns the pfn or -1."""
    zone = zones[z]
    if cpu >= 0 and nd["pcp"] != 0 and nd["pcp_per_order"] != 0:
        pfn = rmqueue_pcp_6_1(pages, zone, pageblock_type, nd, order, mt, alloc_flags, cpu)
    elif cpu >= 0 and order == 0 and nd["pcp"] != 0:
        pfn = buffered_rmqueue(pages, zone, pageblock_type, nd, mt, cpu, cold, alloc_flags)
    else:
        pfn = rmqueue_flags(pages, zone, pageblock_type, nd, order, mt, alloc_flags)
    _boosted_wakeup(zone, nd, z)
    return int(pfn)


@compiled("pages, zones, pageblock_type, nd, int, int, int, int, int, int", inline=True)
def get_page_from_freelist(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                           nd: np.ndarray, order: int, high_zone: int, mt: int,
                           alloc_flags: int, cpu: int = -1, cold: int = 0) -> int:
    """2.6.24 `get_page_from_freelist()` on a non-NUMA node: the zonelist is `high_zone` down to 0.

    `classzone_idx` is the first populated zone of that zonelist. Returns the pfn of a block
    removed from the free lists (not yet prepared) or -1. Counts pgalloc on success. With
    per-cpu lists on and `cpu >= 0`, `buffered_rmqueue` serves order 0 from `pcp[cold]` of `cpu`
    (`rmqueue_zone`). With ALLOC_NOFRAGMENT (5.0; 6.1 `get_page_from_freelist`): "It's
    possible on a UMA machine to get through all zones that are fragmented. If avoiding
    fragmentation, reset and try again": a pass over the zonelist that found nothing is
    repeated without the flag. (6.1's other reset, on reaching a remote node, needs NUMA.)
    """
    classzone_idx = _classzone(zones, high_zone)
    while True:
        no_fallback = alloc_flags & ALLOC_NOFRAGMENT
        z = _zonelist_next(zones, high_zone, classzone_idx, order, alloc_flags)
        while z >= 0:
            pfn = rmqueue_zone(pages, zones, pageblock_type, nd, z, order, mt, alloc_flags, cpu,
                               cold)
            if pfn >= 0:
                _count_pgalloc(nd, z, order)
                _highatomic_after_alloc(pages, zones[z], pageblock_type, nd, pfn, order,
                                        alloc_flags)
                return pfn
            z = _zonelist_next(zones, z - 1, classzone_idx, order, alloc_flags)
        if not no_fallback:
            return -1
        alloc_flags &= ~ALLOC_NOFRAGMENT


@compiled("pages, zones, pageblock_type, nd, int, int, int, int", inline=True)
def _buddy_page_from_freelist(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                              nd: np.ndarray, order: int, high_zone: int, mt: int,
                              alloc_flags: int) -> int:
    """`get_page_from_freelist` with cpu -1: the same zonelist walk, the buddy allocator alone.
    Kept apart so that callers without per-cpu lists compile none of their code."""
    classzone_idx = _classzone(zones, high_zone)
    while True:
        no_fallback = alloc_flags & ALLOC_NOFRAGMENT
        z = _zonelist_next(zones, high_zone, classzone_idx, order, alloc_flags)
        while z >= 0:
            zone = zones[z]
            pfn = rmqueue_flags(pages, zone, pageblock_type, nd, order, mt, alloc_flags)
            _boosted_wakeup(zone, nd, z)  # as rmqueue_zone
            if pfn >= 0:
                _count_pgalloc(nd, z, order)
                _highatomic_after_alloc(pages, zone, pageblock_type, nd, pfn, order,
                                        alloc_flags)
                return pfn
            z = _zonelist_next(zones, z - 1, classzone_idx, order, alloc_flags)
        if not no_fallback:
            return -1
        alloc_flags &= ~ALLOC_NOFRAGMENT


@compiled("pages, nd, int, int, int, int, int", inline=True)
def _alloc_done(pages: np.ndarray, nd: np.ndarray, pfn: int, order: int, mt: int, owner: int,
                kind: int) -> int:
    """Count an allocation's success or failure; prepare the block (`prep_new_page`)."""
    if pfn < 0:
        nd["stat"][_S_ALLOC_FAIL] += 1
        nd["fail_order"][order] += 1
        return -1
    prep_new_page(pages, pfn, order, mt, owner, kind)
    nd["stat"][_S_ALLOC_SUCCESS] += 1
    nd["alloc_order"][order] += 1
    return pfn


@compiled("pages, zones, pageblock_type, node, int, int, int, int, int, int, int, int", inline=True)
def alloc_one_pcp(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                  node: np.ndarray, order: int, high_zone: int, mt: int, alloc_flags: int,
                  owner: int, kind: int, cpu: int, cold: int) -> int:
    """Allocate one block of `order` (order 0 from `pcp[cold]` of `cpu` when per-cpu lists are
    on and `cpu >= 0`); returns its pfn or -1. Counts success and failure."""
    nd = node[0]
    pfn = get_page_from_freelist(pages, zones, pageblock_type, nd, order, high_zone, mt,
                                 alloc_flags, cpu, cold)
    return _alloc_done(pages, nd, pfn, order, mt, owner, kind)


@compiled("pages, zones, pageblock_type, node, int, int, int, int, int, int", inline=True)
def alloc_one(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
              node: np.ndarray, order: int, high_zone: int, mt: int, alloc_flags: int,
              owner: int, kind: int) -> int:
    """Allocate one block of `order` from the buddy allocator (what `alloc_one_pcp` does with
    cpu -1: no per-cpu lists, even when they are on); its pfn or -1."""
    nd = node[0]
    pfn = _buddy_page_from_freelist(pages, zones, pageblock_type, nd, order, high_zone, mt,
                                    alloc_flags)
    return _alloc_done(pages, nd, pfn, order, mt, owner, kind)


@compiled("pages, zones, pageblock_type, node, const int[], const int[], const int[], "
          "const int[], const int[], const int[], int[]")
def alloc_batch(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                node: np.ndarray, orders: np.ndarray, high_zones: np.ndarray, mts: np.ndarray,
                alloc_flags: np.ndarray, owners: np.ndarray, kinds: np.ndarray,
                out: np.ndarray) -> int:
    """`alloc_one` for each request in turn, in order; `out[i]` gets the pfn or -1.

    Returns the number of failures.
    """
    failed = 0
    for i in range(orders.shape[0]):
        pfn = alloc_one(pages, zones, pageblock_type, node, orders[i], high_zones[i], mts[i],
                        alloc_flags[i], owners[i], kinds[i])
        out[i] = pfn
        if pfn < 0:
            failed += 1
    return failed


@compiled("pages, zones, pageblock_type, node, const int[], const int[], const int[], "
          "const int[], const int[], const int[], int[], const int[], const int[]")
def alloc_batch_pcp(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                    node: np.ndarray, orders: np.ndarray, high_zones: np.ndarray,
                    mts: np.ndarray, alloc_flags: np.ndarray, owners: np.ndarray,
                    kinds: np.ndarray, out: np.ndarray, cpus: np.ndarray,
                    colds: np.ndarray) -> int:
    """`alloc_one_pcp` for each request in turn, on cpu `cpus[i]` (-1: none), cold if
    `colds[i]`; `out[i]` gets the pfn or -1. Returns the number of failures."""
    failed = 0
    for i in range(orders.shape[0]):
        pfn = alloc_one_pcp(pages, zones, pageblock_type, node, orders[i], high_zones[i],
                            mts[i], alloc_flags[i], owners[i], kinds[i], cpus[i], colds[i])
        out[i] = pfn
        if pfn < 0:
            failed += 1
    return failed


@compiled("pages, zones, nd, int", inline=True)
def _free_prepare(pages: np.ndarray, zones: np.ndarray, nd: np.ndarray,
                  pfn: int) -> tuple[int, int]:
    """The checks and bookkeeping of freeing the block headed by `pfn`: (zone, order) to free
    it to, or (-1, FREE_NOT_ALLOCATED / FREE_OUT_OF_RANGE) counted as `free_unmatched`."""
    if pfn < 0 or pfn >= pages.shape[0]:
        nd["stat"][_S_FREE_UNMATCHED] += 1
        return -1, FREE_OUT_OF_RANGE
    z = zone_of_pfn(zones, pfn)
    if z < 0:
        nd["stat"][_S_FREE_UNMATCHED] += 1
        return -1, FREE_OUT_OF_RANGE
    if not (pages[pfn]["flags"] & PG_HEAD) or (pages[pfn]["flags"] & PG_BUDDY):
        nd["stat"][_S_FREE_UNMATCHED] += 1
        return -1, FREE_NOT_ALLOCATED
    order = int(pages[pfn]["order"])
    if pages[pfn]["flags"] & PG_LRU:
        # __page_cache_release(): a page leaves the LRU before it returns to the buddy.
        lru_del(pages, zones[z], pfn)
    pages[pfn]["flags"] = 0
    nd["stat"][_S_PGFREE] += 1 << order
    return z, order


@compiled("pages, zone, pageblock_type, nd, int, int", inline=True)
def _free_to_buddy(pages: np.ndarray, zone: np.ndarray, pageblock_type: np.ndarray,
                   nd: np.ndarray, pfn: int, order: int) -> None:
    """2.6.24 `free_one_page()`: a free clears the zone's reclaim-failure state, then
    `__free_one_page()`."""
    zone["all_unreclaimable"] = 0
    zone["pages_scanned"] = 0
    free_one_page(pages, zone, pageblock_type, nd, pfn, order)


@compiled("pages, zones, pageblock_type, node, int, int, int", inline=True)
def free_one_pcp(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                 node: np.ndarray, pfn: int, cpu: int, cold: int) -> int:
    """Free the allocated block headed by `pfn` (`__free_pages(page, order)` with the order the
    model recorded; with per-cpu lists on and `cpu >= 0`, an order-0 page goes to
    `free_hot_cold_page` on `cpu`, cold if `cold`; on 6.1's per-order lists any
    `pcp_allowed_order` block goes to `free_unref_page` on `cpu`, `cold` unused). Returns
    FREE_OK, or FREE_NOT_ALLOCATED /
    FREE_OUT_OF_RANGE (counted as `free_unmatched`, nothing changed)."""
    nd = node[0]
    z, order = _free_prepare(pages, zones, nd, pfn)
    if z < 0:
        return order
    if cpu >= 0 and nd["pcp"] != 0 and nd["pcp_per_order"] != 0:
        # 6.1 `free_the_page()`: "Via pcp?" for a `pcp_allowed_order`, else `__free_pages_ok`.
        if pcp_allowed_order(nd, order):
            free_unref_page(pages, zones[z], pageblock_type, nd, pfn, order, cpu)
        else:
            _free_to_buddy(pages, zones[z], pageblock_type, nd, pfn, order)
    elif cpu >= 0 and order == 0 and nd["pcp"] != 0:
        free_hot_cold_page(pages, zones[z], pageblock_type, nd, pfn, cpu, cold)
    else:
        _free_to_buddy(pages, zones[z], pageblock_type, nd, pfn, order)
    return FREE_OK


@compiled("pages, zones, pageblock_type, node, int", inline=True)
def free_one(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
             node: np.ndarray, pfn: int) -> int:
    """Free the allocated block headed by `pfn` to the buddy allocator (what `free_one_pcp`
    does with cpu -1: no per-cpu lists, even when they are on)."""
    nd = node[0]
    z, order = _free_prepare(pages, zones, nd, pfn)
    if z < 0:
        return order
    _free_to_buddy(pages, zones[z], pageblock_type, nd, pfn, order)
    return FREE_OK


@compiled("pages, zones, pageblock_type, node, const int[], int[]")
def free_batch(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
               node: np.ndarray, pfns: np.ndarray, out: np.ndarray) -> int:
    """`free_one` for each pfn in turn; `out[i]` gets its status. Returns how many failed."""
    bad = 0
    n = pfns.shape[0]
    for i in range(n):
        # Ask for the records this loop will touch a few frees ahead: the freed page, and (once
        # that has arrived) its order-0 buddy's list neighbours, which list_del rewrites.
        if i + 8 < n and 0 <= pfns[i + 8] < pages.shape[0]:
            prefetch(pages, pfns[i + 8])
        if i + 4 < n and 0 <= pfns[i + 4] < pages.shape[0]:
            buddy = pfns[i + 4] ^ 1
            if buddy < pages.shape[0] and pages[buddy]["flags"] & PG_BUDDY:
                if pages[buddy]["next"] >= 0:
                    prefetch(pages, pages[buddy]["next"])
                if pages[buddy]["prev"] >= 0:
                    prefetch(pages, pages[buddy]["prev"])
        st = free_one(pages, zones, pageblock_type, node, pfns[i])
        out[i] = st
        if st != FREE_OK:
            bad += 1
    return bad


@compiled("pages, zones, pageblock_type, node, const int[], int[], const int[], const int[]")
def free_batch_pcp(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                   node: np.ndarray, pfns: np.ndarray, out: np.ndarray, cpus: np.ndarray,
                   colds: np.ndarray) -> int:
    """`free_one_pcp` for each pfn in turn, on cpu `cpus[i]` (-1: none), cold if `colds[i]`;
    `out[i]` gets its status. Returns how many failed."""
    bad = 0
    for i in range(pfns.shape[0]):
        st = free_one_pcp(pages, zones, pageblock_type, node, pfns[i], cpus[i], colds[i])
        out[i] = st
        if st != FREE_OK:
            bad += 1
    return bad


@compiled("pages, zones, pageblock_type, node, int, int, int")
def free_range_boot(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                    node: np.ndarray, z: int, start: int, end: int) -> None:
    """Hand the pfns [start, end) of zone `z` to the allocator in increasing pfn order.

    Models `free_all_bootmem()` -> `__free_pages_bootmem()`: pages arrive one aligned block at a
    time, lowest first, and coalesce; the last max-order block freed is at the head of its list.
    Freeing the largest aligned block at each step gives the same lists as page-at-a-time
    freeing, since each block's last page would complete the same merge. That holds with
    2.6.35's tail-add too: every zone is whole max-order blocks (`memory_pages`, the zone
    boundaries), and a block of MAX_ORDER-1 always goes to the head. 6.1 frees boot memory
    with FPI_TO_TAIL (`memblock_free_pages` -> `__free_pages_core`, since 5.10), so there every
    block goes to the tail and the lowest max-order block heads its list.
    """
    nd = node[0]
    zone = zones[z]
    max_order = nd["max_order"]
    # 6.1 `__free_pages_core()` frees with FPI_TO_TAIL.
    to_tail = 1 if nd["free_tail"] >= FREE_6_1 else 0
    pfn = start
    while pfn < end:
        order = max_order - 1
        while order > 0 and ((pfn & ((1 << order) - 1)) != 0 or pfn + (1 << order) > end):
            order -= 1
        free_one_page_fpi(pages, zone, pageblock_type, nd, pfn, order, to_tail)
        pfn += 1 << order

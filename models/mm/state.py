"""The allocator's state as numpy record arrays: the model's `struct page`, `struct zone` and node.

Three record arrays hold everything the compiled hot paths touch, so one numba call takes three
arguments (plus the pageblock type array) and a probe copies a machine with four byte copies:

- `pages[pfn]` (PAGE_DTYPE, 15 bytes a page): list links shared by the buddy free lists and the
  LRU lists, as `page->lru` is in the kernel; owner id; order of a free or allocated block head;
  flags; and the `mt` byte: on a free block head, the migratetype of the list it is on; on an
  allocated page, the migratetype the allocation asked for in bits 0-2 and the page kind above
  (`MT_MASK`, `KIND_SHIFT`), packed as the kernel packs zone and node ids into `page->flags`.
- `zones[z]` (ZONE_DTYPE): pfn span, managed pages, NR_FREE_PAGES, watermarks, lowmem_reserve,
  `free_area[order].free_list[mt]` as head/tail pfns, `nr_free[order]` and per-type counts.
- `node[0]` (NODE_DTYPE): policy parameters (fallback table, grouping switch), vmstat counters
  and the `mm_page_alloc_extfrag` event ring.
- `pageblock_type[pfn >> pageblock_order]` (int8): `get_pageblock_migratetype()`.

The field layout is the contract between the compiled core and everything above it; add fields
here rather than parallel arrays.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from fragsim.models.mm.constants import MAX_NR_ZONES, MAX_ORDER_LIMIT, NR_MIGRATETYPES

__all__ = [
    "EXTFRAG_FIELDS",
    "EXTFRAG_RING",
    "KCOMPACTD_STAT_NAMES",
    "RECLAIM_6_1_STAT_NAMES",
    "KIND_SHIFT",
    "LRU_ACTIVE_ANON",
    "LRU_ACTIVE_FILE",
    "LRU_INACTIVE_ANON",
    "LRU_INACTIVE_FILE",
    "MAX_CPUS",
    "MT_MASK",
    "NODE_DTYPE",
    "NR_LRU_LISTS",
    "NR_PCP_LISTS",
    "NR_PCP_LISTS_6_1",
    "NR_STATS",
    "PAGE_DTYPE",
    "STAT",
    "STAT_NAMES",
    "THP_STAT_NAMES",
    "ZONE_DTYPE",
    "new_node",
    "new_pages",
    "new_zones",
    "page_kinds",
    "page_migratetypes",
    "state_bytes",
]

#: Number of LRU lists per zone: inactive anon, active anon, inactive file, active file.
NR_LRU_LISTS: Final = 4
LRU_INACTIVE_ANON: Final = 0
LRU_ACTIVE_ANON: Final = 1
LRU_INACTIVE_FILE: Final = 2
LRU_ACTIVE_FILE: Final = 3

#: Capacity for per-cpu page lists.
MAX_CPUS: Final = 8
#: Lists per cpu and zone: 2.6.24 `pcp[2]` (hot, cold) uses the first two; 2.6.35
#: `pcp.lists[MIGRATE_PCPTYPES]` (unmovable, reclaimable, movable) all three.
NR_PCP_LISTS: Final = 3
#: 6.1 `NR_PCP_LISTS` (include/linux/mmzone.h) with CONFIG_TRANSPARENT_HUGEPAGE:
#: MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1) low-order lists plus NR_PCP_THP = 2 (one for
#: MOVABLE, one for UNMOVABLE and RECLAIMABLE pageblock_order pages). The zone's pcp arrays have
#: this many lists per cpu; 2.6.24 uses the first two and 2.6.35 the first three.
NR_PCP_LISTS_6_1: Final = 3 * (3 + 1) + 2

PAGE_DTYPE: Final = np.dtype(
    [
        ("next", "<i4"),  # next pfn on the list this page heads a block on (-1: end)
        ("prev", "<i4"),  # previous pfn (-1: this page is the list head)
        ("owner", "<i4"),  # owner id of an allocated page (agent, slab cache, ...)
        ("order", "i1"),  # order of the free block (PG_BUDDY) or allocation (PG_HEAD) it heads
        ("flags", "u1"),  # PG_* bits
        ("mt", "i1"),  # free head: list migratetype; allocated: requested mt | kind << 3
    ]
)

ZONE_DTYPE: Final = np.dtype(
    [
        ("zone_type", "<i8"),  # ZONE_* index
        ("start_pfn", "<i8"),
        ("end_pfn", "<i8"),  # exclusive: zone_start_pfn + spanned_pages
        ("present_pages", "<i8"),
        ("free_pages", "<i8"),  # NR_FREE_PAGES
        ("watermark", "<i8", (3,)),  # pages_min, pages_low, pages_high
        ("lowmem_reserve", "<i8", (MAX_NR_ZONES,)),
        ("head", "<i4", (MAX_ORDER_LIMIT, NR_MIGRATETYPES)),
        ("tail", "<i4", (MAX_ORDER_LIMIT, NR_MIGRATETYPES)),
        ("nr_free", "<i8", (MAX_ORDER_LIMIT,)),
        ("nr_free_mt", "<i8", (MAX_ORDER_LIMIT, NR_MIGRATETYPES)),
        ("lru_head", "<i4", (NR_LRU_LISTS,)),
        ("lru_tail", "<i4", (NR_LRU_LISTS,)),
        ("nr_lru", "<i8", (NR_LRU_LISTS,)),
        # 1: the LRU is split into anon and file lists (2.6.28+; 6.1's reclaim,
        # `models.mm.reclaim_6_1`), LRU_*_ANON and LRU_*_FILE; 0: anon and file share lists
        # 0 (inactive) and 1 (active), as 2.6.24 has them (`models.mm.lru`)
        ("split_lru", "<i8"),
        # reclaim (2.6.24 struct zone)
        ("pages_scanned", "<i8"),
        ("all_unreclaimable", "<i8"),
        ("prev_priority", "<i8"),
        ("nr_scan_active", "<i8"),
        ("nr_scan_inactive", "<i8"),
        # compaction deferral (2.6.35 struct zone)
        ("compact_considered", "<i8"),
        ("compact_defer_shift", "<i8"),
        # the lowest order whose compaction failed (2.6.39+ struct zone; 6.1's deferral only)
        ("compact_order_failed", "<i8"),
        # 6.1 compaction's cached scanner positions and skip-hint flush (struct zone:
        # compact_cached_free_pfn, compact_cached_migrate_pfn[ASYNC_AND_SYNC],
        # compact_init_migrate_pfn, compact_init_free_pfn, compact_blockskip_flush)
        ("compact_cached_free_pfn", "<i8"),
        ("compact_cached_migrate_pfn", "<i8", (2,)),
        ("compact_init_migrate_pfn", "<i8"),
        ("compact_init_free_pfn", "<i8"),
        ("compact_blockskip_flush", "<i8"),
        # 4.4+ (6.1 struct zone): pages in MIGRATE_HIGHATOMIC pageblocks, and which
        # zone_watermark_ok this zone follows (alloc.WMARK_RULE_*)
        ("nr_reserved_highatomic", "<i8"),
        ("wmark_rule", "<i8"),
        # 5.0+ (6.1 struct zone): `watermark_boost`, added to every `wmark_pages()`, and
        # `flags` (ZONE_BOOSTED_WATERMARK)
        ("watermark_boost", "<i8"),
        ("flags", "<i8"),
        # per-cpu page lists: 2.6.24 struct per_cpu_pageset, pcp[0] hot and pcp[1] cold, each
        # with its high and batch; or 2.6.35 pcp.lists[migratetype] (node pcp_sublists), one
        # high and batch in slot 0; pcp_count per list (2.6.35's pcp->count is their sum); or
        # 6.1 pcp.lists[order_to_pindex(mt, order)] (node pcp_per_order): pcp_count is the
        # blocks on each list, pcp_nr_pages 6.1's pcp->count (pages), pcp_free_factor its
        # free_factor, high and batch in slot 0
        ("pcp_head", "<i4", (MAX_CPUS, NR_PCP_LISTS_6_1)),
        ("pcp_tail", "<i4", (MAX_CPUS, NR_PCP_LISTS_6_1)),
        ("pcp_count", "<i8", (MAX_CPUS, NR_PCP_LISTS_6_1)),
        ("pcp_high", "<i8", (2,)),
        ("pcp_batch", "<i8", (2,)),
        ("pcp_nr_pages", "<i8", (MAX_CPUS,)),
        ("pcp_free_factor", "<i8", (MAX_CPUS,)),
    ]
)

#: Capacity of the extfrag event ring (one row per `__rmqueue_fallback` that took a block).
EXTFRAG_RING: Final = 512
#: Columns of an extfrag event row, as the `mm_page_alloc_extfrag` tracepoint names them.
EXTFRAG_FIELDS: Final = (
    "pfn",
    "alloc_order",
    "fallback_order",
    "alloc_migratetype",
    "fallback_migratetype",
    "fragmenting",
    "change_ownership",
)

#: Node-wide counters (`node[0]['stat'][i]`). Kernel vmstat names where the kernel has one;
#: fragsim-only counters are prefixed with what they count.
STAT_NAMES: Final = (
    "pgalloc",  # pages allocated (sum of pgalloc_<zone>)
    "pgfree",  # pages freed
    "alloc_success",  # successful allocation calls
    "alloc_fail",  # failed allocation calls
    "free_unmatched",  # frees of a pfn that is not an allocated block head
    "extfrag_fallback",  # __rmqueue_fallback took a block of another type
    "extfrag_fragmenting",  # ... of order < pageblock_order
    "extfrag_change_ownership",  # ... after which the pageblock's type is the request's
    "pageblock_claimed",  # pageblocks retyped by a fallback (steal of over half a block)
    "alloc_reserve",  # allocations served from MIGRATE_RESERVE
    # reclaim (2.6.24 vmstat names)
    "pgscan_kswapd",
    "pgscan_direct",
    "pgsteal",
    "pgactivate",
    "pgdeactivate",
    "pgrotated",
    "pswpout",
    "slabs_scanned",
    "kswapd_steal",
    "pageoutrun",
    "allocstall",
    "lumpy_isolated",  # fragsim: pages taken by lumpy reclaim around a tail page
    "lumpy_block_failed",  # fragsim: lumpy blocks abandoned (a page that could not be taken)
    "drop_pagecache",
    "drop_slab",
    # migration and compaction (2.6.35 vmstat names)
    "pgmigrate_success",
    "pgmigrate_fail",
    "compact_migrate_scanned",
    "compact_free_scanned",
    "compact_isolated",
    "compact_stall",
    "compact_fail",
    "compact_success",
    "compact_deferred",  # fragsim: direct compactions skipped by deferral
    # per-cpu lists
    "pcp_refill",  # fragsim: rmqueue_bulk calls
    "pcp_drain",  # fragsim: free_pages_bulk calls
    # transparent huge pages (2.6.38+ vmstat names; shown only on a kernel with THP)
    "thp_fault_alloc",
    "thp_fault_fallback",
    # kcompactd (4.6+ vmstat names; shown only on a kernel with kcompactd)
    "compact_daemon_wake",
    "compact_daemon_migrate_scanned",
    "compact_daemon_free_scanned",
    # 6.1 reclaim's split counters (6.1 vmstat names; shown only with 6.1's reclaim)
    "pgrefill",
    "pgscan_anon",
    "pgscan_file",
    "pgsteal_anon",
    "pgsteal_file",
)
#: Counters /proc/vmstat has only with CONFIG_TRANSPARENT_HUGEPAGE (`Machine.vmstat` omits them
#: on a kernel without THP, as mm/vmstat.c's `vmstat_text` does).
THP_STAT_NAMES: Final = ("thp_fault_alloc", "thp_fault_fallback")
#: Counters 6.1's reclaim keeps (`models.mm.vmscan_6_1`): PGREFILL (`shrink_active_list`),
#: PGSCAN_ANON/FILE and PGSTEAL_ANON/FILE (`shrink_inactive_list`); `Machine.vmstat` shows them
#: only on a policy with 6.1's reclaim (the 2.6.24 model does not count them).
RECLAIM_6_1_STAT_NAMES: Final = ("pgrefill", "pgscan_anon", "pgscan_file", "pgsteal_anon",
                                 "pgsteal_file")
#: Counters of kcompactd (4.6 KCOMPACTD_WAKE, 4.16 KCOMPACTD_MIGRATE_SCANNED/FREE_SCANNED):
#: `Machine.vmstat` shows them only on a kernel with kcompactd (2.6.35 has none of them).
KCOMPACTD_STAT_NAMES: Final = ("compact_daemon_wake", "compact_daemon_migrate_scanned",
                               "compact_daemon_free_scanned")
NR_STATS: Final = 64
STAT: Final = {name: i for i, name in enumerate(STAT_NAMES)}

NODE_DTYPE: Final = np.dtype(
    [
        ("max_order", "<i8"),
        ("pageblock_order", "<i8"),
        ("grouping", "<i8"),  # 1: group pages by mobility; 0: vanilla or grouping disabled
        ("claim_rule", "<i8"),  # __rmqueue_fallback's steal/claim rule (buddy.CLAIM_*)
        ("free_tail", "<i8"),  # __free_one_page's tail rule (buddy.FREE_*)
        ("migrate_rule", "<i8"),  # migrate_pages' passes and writeback wait (migrate.MIGRATE_*)
        # reclaim meeting a page under writeback (constants.WRITEBACK_RULE_*)
        ("writeback_rule", "<i8"),
        ("highatomic", "<i8"),  # 1: MIGRATE_HIGHATOMIC reserves (4.4+) instead of RESERVE
        ("nr_zones", "<i8"),
        ("fallbacks", "i1", (NR_MIGRATETYPES, NR_MIGRATETYPES)),  # -1 terminated rows
        ("stat", "<i8", (NR_STATS,)),
        ("pgalloc_zone", "<i8", (MAX_NR_ZONES,)),
        ("alloc_order", "<i8", (MAX_ORDER_LIMIT,)),  # successful calls per order
        ("fail_order", "<i8", (MAX_ORDER_LIMIT,)),  # failed calls per order
        ("fallback_order", "<i8", (MAX_ORDER_LIMIT,)),  # fallbacks per requested order
        ("extfrag_count", "<i8"),  # events written to the ring so far (monotonic)
        ("extfrag", "<i8", (EXTFRAG_RING, len(EXTFRAG_FIELDS))),
        ("pcp", "<i8"),  # per-cpu page lists: number of cpus that have them; 0: off
        ("pcp_sublists", "<i8"),  # 1: 2.6.35 per-migratetype pcp lists; 0: 2.6.24 hot/cold
        # 1: 6.1 per-order, per-migratetype pcp lists (`models.mm.pcp_6_1`)
        ("pcp_per_order", "<i8"),
        # 1: CONFIG_TRANSPARENT_HUGEPAGE, pcp_allowed_order() takes pageblock_order too
        ("pcp_thp", "<i8"),
        # swap space (2.6.24 mm/swapfile.c): total_swap_pages and nr_swap_pages (free slots)
        ("total_swap_pages", "<i8"),
        ("nr_swap_pages", "<i8"),
        # 5.0+ (6.1): /proc/sys/vm/watermark_boost_factor (0: no boosting, and every kernel
        # before 5.0); ALLOC_NOFRAGMENT (1: `alloc_flags_nofragment` may set it, 5.0+ with
        # CONFIG_ZONE_DMA32); zones whose ZONE_BOOSTED_WATERMARK `rmqueue` cleared, a bit per
        # zone, for the Python side to wake kswapd for (`models.mm.boost.boost_wakeups`)
        ("watermark_boost_factor", "<i8"),
        ("nofragment", "<i8"),
        ("boost_wake", "<i8"),
        # 6.15 /proc/sys/vm/defrag_mode: 1 sets ALLOC_NOFRAGMENT on every allocation
        ("defrag_mode", "<i8"),
        # 1: free pages always sit on the lists of their pageblock's type (6.10+ accounting:
        # a pageblock's type changes only with its free pages, `move_freepages_block`)
        ("typed_freelists", "<i8"),
    ]
)


#: Bits of `pages['mt']` holding the migratetype; the page kind sits above them.
MT_MASK: Final = 0x07
KIND_SHIFT: Final = 3


def page_migratetypes(pages: np.ndarray) -> np.ndarray:
    """The migratetype part of `pages['mt']` (list type of free heads, requested type otherwise)."""
    return np.asarray(pages["mt"] & MT_MASK, dtype=np.int8)


def page_kinds(pages: np.ndarray) -> np.ndarray:
    """The KIND_* of each page (meaningful on allocated pages; 0 on free ones)."""
    return np.asarray(pages["mt"] >> KIND_SHIFT, dtype=np.int8)


def new_pages(nr_pages: int) -> np.ndarray:
    """A zeroed `pages` array with every list link cleared (-1)."""
    pages = np.zeros(nr_pages, dtype=PAGE_DTYPE)
    pages["next"] = -1
    pages["prev"] = -1
    pages["owner"] = -1
    return pages


def new_zones(nr_zones: int) -> np.ndarray:
    """`nr_zones` zone records with empty free lists."""
    zones = np.zeros(nr_zones, dtype=ZONE_DTYPE)
    zones["head"] = -1
    zones["tail"] = -1
    zones["lru_head"] = -1
    zones["lru_tail"] = -1
    zones["pcp_head"] = -1
    zones["pcp_tail"] = -1
    return zones


def new_node() -> np.ndarray:
    """A one-element node record with an empty fallback table."""
    node = np.zeros(1, dtype=NODE_DTYPE)
    node["fallbacks"] = -1
    return node


def state_bytes(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                node: np.ndarray) -> int:
    """Bytes of model state, for the `state_bytes_per_page` benchmark figure."""
    return int(pages.nbytes + zones.nbytes + pageblock_type.nbytes + node.nbytes)

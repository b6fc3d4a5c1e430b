"""Kernel constants shared by the allocator core: migrate types, zones, page flags, alloc flags.

The internal migratetype numbering is the 2.6.24 enum (`include/linux/mmzone.h`): UNMOVABLE 0,
RECLAIMABLE 1, MOVABLE 2, RESERVE 3, ISOLATE 4. Slot 3 is the kernel's reserve: MIGRATE_RESERVE
up to 4.3, MIGRATE_HIGHATOMIC from 4.4 (which replaced it; the two never coexist), so
`MIGRATE_HIGHATOMIC == MIGRATE_RESERVE` and a policy says which one its kernel has and how to
name it (`Policy.migratetype_names`, in the kernel's own order for /proc/pagetypeinfo). CMA,
which the model does not use, has a number of its own (6). Traces in the modern numbering map
through `MODERN_TRACE_MIGRATETYPE`.
Zone numbering follows `enum zone_type` with every zone configured: DMA 0, DMA32 1, NORMAL 2,
HIGHMEM 3, MOVABLE 4; a profile simply leaves some of them empty.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ALLOC_CPUSET",
    "ALLOC_FRAGMENT_OK",
    "ALLOC_HARDER",
    "ALLOC_HIGH",
    "ALLOC_KSWAPD",
    "ALLOC_NOFRAGMENT",
    "ALLOC_NO_WATERMARKS",
    "ALLOC_WMARK_HIGH",
    "ALLOC_WMARK_LOW",
    "ALLOC_WMARK_MIN",
    "FREE_NOT_ALLOCATED",
    "FREE_OK",
    "FREE_OUT_OF_RANGE",
    "KIND_ANON",
    "KIND_FILE",
    "KIND_FILE_MAPPED",
    "KIND_HUGETLB",
    "KIND_KERNEL",
    "KIND_NAMES",
    "KIND_NONE",
    "KIND_SLAB",
    "MAX_NR_ZONES",
    "MAX_ORDER_LIMIT",
    "MAX_ORDER_MAX",
    "MAX_ORDER_MIN",
    "MIGRATETYPE_NAMES_2_6_24",
    "MIGRATETYPE_NAMES_4_4",
    "MIGRATE_CMA",
    "MIGRATE_HIGHATOMIC",
    "MIGRATE_ISOLATE",
    "MIGRATE_MOVABLE",
    "MIGRATE_PCPTYPES",
    "MIGRATE_RECLAIMABLE",
    "MIGRATE_RESERVE",
    "MIGRATE_TYPES_2_6_24",
    "MIGRATE_UNMOVABLE",
    "MODERN_TRACE_MIGRATETYPE",
    "NR_MIGRATETYPES",
    "OLD_TRACE_MIGRATETYPE",
    "PAGE_ALLOC_COSTLY_ORDER",
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "PG_ACTIVE",
    "PG_BUDDY",
    "PG_DIRTY",
    "PG_HEAD",
    "PG_LRU",
    "PG_PCP",
    "PG_REFERENCED",
    "PG_WRITEBACK",
    "WMARK_HIGH",
    "WMARK_LOW",
    "WMARK_MIN",
    "WRITEBACK_RULE_2_6_24",
    "WRITEBACK_RULE_6_1",
    "ZONE_DMA",
    "ZONE_DMA32",
    "ZONE_HIGHMEM",
    "ZONE_MOVABLE",
    "ZONE_BOOSTED_WATERMARK",
    "ZONE_RECLAIM_ACTIVE",
    "ZONE_NAMES",
    "ZONE_NORMAL",
]

PAGE_SHIFT: Final = 12
PAGE_SIZE: Final = 1 << PAGE_SHIFT
#: 2.6.24 `PAGE_ALLOC_COSTLY_ORDER`.
PAGE_ALLOC_COSTLY_ORDER: Final = 3

#: Array capacity for orders: the model supports MAX_ORDER up to this value.
MAX_ORDER_LIMIT: Final = 16
#: Largest MAX_ORDER accepted from a user (orders 0..MAX_ORDER-1 then fit in int8 and int32 pfns).
MAX_ORDER_MAX: Final = 16
MAX_ORDER_MIN: Final = 2

# --- migrate types (2.6.24 enum, internal numbering) -------------------------------------------
MIGRATE_UNMOVABLE: Final = 0
MIGRATE_RECLAIMABLE: Final = 1
MIGRATE_MOVABLE: Final = 2
MIGRATE_RESERVE: Final = 3
MIGRATE_ISOLATE: Final = 4
#: 4.4+: the high-order atomic reserve, in the reserve's slot (see above).
MIGRATE_HIGHATOMIC: Final = MIGRATE_RESERVE
MIGRATE_CMA: Final = 6
#: The types with per-cpu lists and normal merging (`MIGRATE_PCPTYPES`, `migratetype_is_mergeable`
#: in 6.1): UNMOVABLE, RECLAIMABLE and MOVABLE, internal 0..2.
MIGRATE_PCPTYPES: Final = 3
#: Array capacity for migrate types (list heads are sized by this).
NR_MIGRATETYPES: Final = 8
#: The 2.6.24 MIGRATE_TYPES (the number of real free lists per order in that kernel).
MIGRATE_TYPES_2_6_24: Final = 5

#: Names as /proc/pagetypeinfo prints them in 2.6.24-3.x, in that kernel's order.
MIGRATETYPE_NAMES_2_6_24: Final = ("Unmovable", "Reclaimable", "Movable", "Reserve", "Isolate")
#: /proc/pagetypeinfo of 4.4+ (`migratetype_names[]`, CONFIG_MEMORY_ISOLATION, no CMA): (internal
#: type, name) in the kernel's enum order, UNMOVABLE 0, MOVABLE 1, RECLAIMABLE 2, HIGHATOMIC 3,
#: ISOLATE 4.
MIGRATETYPE_NAMES_4_4: Final = ((MIGRATE_UNMOVABLE, "Unmovable"), (MIGRATE_MOVABLE, "Movable"),
                                (MIGRATE_RECLAIMABLE, "Reclaimable"),
                                (MIGRATE_HIGHATOMIC, "HighAtomic"), (MIGRATE_ISOLATE, "Isolate"))
#: Modern ftrace `migratetype=` numbering (4.4+): 0 Unmovable, 1 Movable, 2 Reclaimable,
#: 3 HighAtomic.
MODERN_TRACE_MIGRATETYPE: Final = {
    0: MIGRATE_UNMOVABLE,
    1: MIGRATE_MOVABLE,
    2: MIGRATE_RECLAIMABLE,
    3: MIGRATE_HIGHATOMIC,
}
#: 2.6.24 trace numbering is the internal numbering.
OLD_TRACE_MIGRATETYPE: Final = {
    0: MIGRATE_UNMOVABLE,
    1: MIGRATE_RECLAIMABLE,
    2: MIGRATE_MOVABLE,
    3: MIGRATE_RESERVE,
    4: MIGRATE_ISOLATE,
}

# --- zones (enum zone_type, every zone configured) ---------------------------------------------
ZONE_DMA: Final = 0
ZONE_DMA32: Final = 1
ZONE_NORMAL: Final = 2
ZONE_HIGHMEM: Final = 3
ZONE_MOVABLE: Final = 4
MAX_NR_ZONES: Final = 5
#: Names as /proc/buddyinfo prints them (`zone_names[]` in mm/page_alloc.c).
ZONE_NAMES: Final = ("DMA", "DMA32", "Normal", "HighMem", "Movable")

# --- per-page flags (a byte; the model's struct page) ------------------------------------------
PG_BUDDY: Final = 0x01  # head of a free block on a buddy free list (PageBuddy)
PG_HEAD: Final = 0x02  # head of an allocated block; its order is in the page's `order`
PG_LRU: Final = 0x04  # on an LRU list
PG_ACTIVE: Final = 0x08  # on the active LRU list
PG_REFERENCED: Final = 0x10
PG_DIRTY: Final = 0x20
PG_WRITEBACK: Final = 0x40
#: What reclaim does with a page it meets under writeback (`node['writeback_rule']`): 2.6.24
#: `shrink_page_list` keeps it; 6.1 `shrink_folio_list` sets PG_reclaim and activates it, and
#: `folio_end_writeback` then moves it to the inactive tail (`models.mm.writeback`).
WRITEBACK_RULE_2_6_24: Final = 0
WRITEBACK_RULE_6_1: Final = 1
PG_PCP: Final = 0x80  # on a per-cpu page list (allocated from the buddy's point of view)

# --- page kinds (what an allocated page holds; set by the caller) ------------------------------
KIND_NONE: Final = 0
KIND_KERNEL: Final = 1  # unmovable kernel memory: never moved or reclaimed
KIND_SLAB: Final = 2  # reclaimable slab: freed only when its last object goes
KIND_ANON: Final = 3  # anonymous: movable, swappable when swap exists
KIND_FILE: Final = 4  # page cache: movable, clean pages droppable
KIND_HUGETLB: Final = 5  # hugetlb pool page
KIND_FILE_MAPPED: Final = 6  # page cache mapped by a process (page_mapped): movable, protected
KIND_NAMES: Final = ("none", "kernel", "slab", "anon", "file", "hugetlb", "file_mapped")

# --- alloc_flags (mm/page_alloc.c, 2.6.24) -----------------------------------------------------
ALLOC_NO_WATERMARKS: Final = 0x01
ALLOC_WMARK_MIN: Final = 0x02
ALLOC_WMARK_LOW: Final = 0x04
ALLOC_WMARK_HIGH: Final = 0x08
ALLOC_HARDER: Final = 0x10
ALLOC_HIGH: Final = 0x20
ALLOC_CPUSET: Final = 0x40
#: 5.0+ (6.1 mm/internal.h, with CONFIG_ZONE_DMA32): "avoid mixing pageblock types"; set by
#: `alloc_flags_nofragment` for the fast path's first attempt only.
ALLOC_NOFRAGMENT: Final = 0x100
#: 5.0+ (6.1 mm/internal.h): "allow kswapd to be woken", the request's __GFP_KSWAPD_RECLAIM
#: (in the model: no __GFP_NO_KSWAPD). Read only by `steal_suitable_fallback`'s boost.
ALLOC_KSWAPD: Final = 0x800
#: The model's own bit: the slow path cleared ALLOC_NOFRAGMENT (6.15 `__alloc_pages_slowpath`,
#: "Reclaim/compaction failed to prevent the fallback"), so the compiled core must not set it
#: again under defrag_mode (`rmqueue_6_15.alloc_flags_nofragment`).
ALLOC_FRAGMENT_OK: Final = 0x1000

#: Index of each watermark in a zone's `watermark` array.
WMARK_MIN: Final = 0
WMARK_LOW: Final = 1
WMARK_HIGH: Final = 2

# --- zone flags (`zone['flags']`, 6.1 `enum zone_flags`) ---------------------------------------
#: 5.0+: "zone recently boosted watermarks. Cleared when kswapd is woken" (by `rmqueue`).
ZONE_BOOSTED_WATERMARK: Final = 0x01
#: 5.14+: "kswapd may be scanning the zone" (6.1 `balance_pgdat`'s `set_reclaim_active`); the
#: per-cpu lists' `nr_pcp_high` is then at most `batch << 2` (`models.mm.pcp_6_1`).
ZONE_RECLAIM_ACTIVE: Final = 0x02

# --- free results -------------------------------------------------------------------------------
FREE_OK: Final = 0
FREE_NOT_ALLOCATED: Final = 1  # the pfn is not the head of an allocated block
FREE_OUT_OF_RANGE: Final = 2

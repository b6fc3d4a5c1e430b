"""/proc/vmstat as Linux 6.1 prints it: 6.1's counter names in 6.1's order (`vmstat_text[]`,
mm/vmstat.c), for the counters the model has.

6.1's `vmstat_show()` prints every entry of `vmstat_text[]` as `"%s %lu\\n"`: the zone counters
(`enum zone_stat_item`, include/linux/mmzone.h) summed over zones, the NUMA counters, the node
counters (`enum node_stat_item`), the two writeback thresholds and the events (`enum
vm_event_item`, include/linux/vm_event_item.h), then the deprecated `nr_unstable 0`.
`VMSTAT_TEXT_6_1` is that table (6.1.y, read at unifreq/linux-6.1.y 525d1212, 6.1.166), with
the per-zone event names expanded for every zone `TEXTS_FOR_ZONES` can name (`_dma`, `_dma32`,
`_normal`, `_high`, `_movable`, `_device`) and every config-dependent entry kept: a kernel
prints the subset its config has, in this order.

What `vmstat_6_1` prints, in `VMSTAT_TEXT_6_1` order:

- counters the model keeps under 6.1's name (`Machine.vmstat()`): pgfree, pswpout,
  pgactivate, pgdeactivate, pgscan_kswapd, pgscan_direct, slabs_scanned, pageoutrun,
  pgrotated, drop_pagecache, drop_slab, pgmigrate_*, compact_* (and compact_daemon_* once the
  model counts them under those names), thp_fault_alloc/thp_fault_fallback (THP machines),
  pgrefill, pgscan_anon/file and pgsteal_anon/file (6.1's reclaim, `models.mm.vmscan_6_1`);
- nr_free_pages (`Machine.free_pages()`: the buddy lists, per-cpu pages excluded as 6.1's
  NR_FREE_PAGES excludes them) and pgalloc_<zone> for each populated zone, with 6.1's zone
  suffixes (HighMem is `_high`);
- derived honestly from the model's state:
  - pgsteal_kswapd = the model's kswapd_steal and pgsteal_direct = pgsteal - kswapd_steal
    (2.6.24's pgsteal counts both; 6.1 splits them, `shrink_inactive_list`);
  - nr_zone_{inactive,active}_{anon,file} and nr_{inactive,active}_{anon,file}: the pages on
    the model's LRU lists (PG_LRU), split by the page's kind (anon; file and mapped file) and
    PG_ACTIVE, which on the 6.1 presets' split lists (`models.mm.reclaim_6_1`) are the
    lists' lengths;
  - nr_anon_pages (anon), nr_mapped (mapped file), nr_file_pages (file and mapped file) and
    nr_slab_reclaimable (reclaimable slab): pages of allocated blocks of that kind, a block of
    order n counting 2^n pages as 6.1's folio counters do;
- `nr_unstable 0`, which 6.1 always prints last.

Omitted, because the model does not track them (a real 6.1 file has them, the test only
checks that what is printed is in 6.1's order): the NUMA, workingset, dirty/writeback,
shmem, slab_unreclaimable (the model's unmovable kernel memory is not all slab), kernel stack,
page table, isolated and unevictable counters, pgpgin/pgpgout/pswpin, allocstall_<zone> (the
model counts one allocstall; 6.1 counts it at `gfp_zone()` of each request, which the model
does not record), pgskip_*, pgfault, pgdemote_*,
kswapd_*wmark_hit_quickly, oom_kill, thp_* other than the fault counters, and unpopulated
zones' pgalloc (6.1 prints 0 for them).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from fragsim.models.mm.constants import (
    KIND_ANON,
    KIND_FILE,
    KIND_FILE_MAPPED,
    KIND_SLAB,
    PG_ACTIVE,
    PG_HEAD,
    PG_LRU,
    PG_PCP,
    ZONE_DMA,
    ZONE_DMA32,
    ZONE_HIGHMEM,
    ZONE_MOVABLE,
    ZONE_NORMAL,
)
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.state import KIND_SHIFT

__all__ = ["VMSTAT_TEXT_6_1", "ZONE_SUFFIX_6_1", "vmstat_6_1"]

#: `TEXTS_FOR_ZONES(xx)` of 6.1 mm/vmstat.c: the suffix of each zone, in zone order.
ZONE_SUFFIX_6_1: Final = {ZONE_DMA: "dma", ZONE_DMA32: "dma32", ZONE_NORMAL: "normal",
                          ZONE_HIGHMEM: "high", ZONE_MOVABLE: "movable"}
_ZONE_TEXTS: Final = ("dma", "dma32", "normal", "high", "movable", "device")


def _zones(prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}_{suffix}" for suffix in _ZONE_TEXTS)


#: 6.1 `vmstat_text[]` in order, every config-dependent entry included.
VMSTAT_TEXT_6_1: Final = (
    # enum zone_stat_item
    "nr_free_pages", "nr_zone_inactive_anon", "nr_zone_active_anon", "nr_zone_inactive_file",
    "nr_zone_active_file", "nr_zone_unevictable", "nr_zone_write_pending", "nr_mlock",
    "nr_bounce", "nr_zspages", "nr_free_cma",
    # enum numa_stat_item (CONFIG_NUMA)
    "numa_hit", "numa_miss", "numa_foreign", "numa_interleave", "numa_local", "numa_other",
    # enum node_stat_item
    "nr_inactive_anon", "nr_active_anon", "nr_inactive_file", "nr_active_file",
    "nr_unevictable", "nr_slab_reclaimable", "nr_slab_unreclaimable", "nr_isolated_anon",
    "nr_isolated_file", "workingset_nodes", "workingset_refault_anon",
    "workingset_refault_file", "workingset_activate_anon", "workingset_activate_file",
    "workingset_restore_anon", "workingset_restore_file", "workingset_nodereclaim",
    "nr_anon_pages", "nr_mapped", "nr_file_pages", "nr_dirty", "nr_writeback",
    "nr_writeback_temp", "nr_shmem", "nr_shmem_hugepages", "nr_shmem_pmdmapped",
    "nr_file_hugepages", "nr_file_pmdmapped", "nr_anon_transparent_hugepages",
    "nr_vmscan_write", "nr_vmscan_immediate_reclaim", "nr_dirtied", "nr_written",
    "nr_throttled_written", "nr_kernel_misc_reclaimable", "nr_foll_pin_acquired",
    "nr_foll_pin_released", "nr_kernel_stack", "nr_shadow_call_stack", "nr_page_table_pages",
    "nr_sec_page_table_pages", "nr_swapcached", "pgpromote_success", "pgpromote_candidate",
    # enum writeback_stat_item
    "nr_dirty_threshold", "nr_dirty_background_threshold",
    # enum vm_event_item
    "pgpgin", "pgpgout", "pswpin", "pswpout",
    *_zones("pgalloc"), *_zones("allocstall"), *_zones("pgskip"),
    "pgfree", "pgactivate", "pgdeactivate", "pglazyfree", "pgfault", "pgmajfault",
    "pglazyfreed", "pgrefill", "pgreuse", "pgsteal_kswapd", "pgsteal_direct",
    "pgdemote_kswapd", "pgdemote_direct", "pgscan_kswapd", "pgscan_direct",
    "pgscan_direct_throttle", "pgscan_anon", "pgscan_file", "pgsteal_anon", "pgsteal_file",
    "zone_reclaim_failed", "pginodesteal", "slabs_scanned", "kswapd_inodesteal",
    "kswapd_low_wmark_hit_quickly", "kswapd_high_wmark_hit_quickly", "pageoutrun",
    "pgrotated", "drop_pagecache", "drop_slab", "oom_kill",
    "numa_pte_updates", "numa_huge_pte_updates", "numa_hint_faults", "numa_hint_faults_local",
    "numa_pages_migrated",
    "pgmigrate_success", "pgmigrate_fail", "thp_migration_success", "thp_migration_fail",
    "thp_migration_split",
    "compact_migrate_scanned", "compact_free_scanned", "compact_isolated", "compact_stall",
    "compact_fail", "compact_success", "compact_daemon_wake", "compact_daemon_migrate_scanned",
    "compact_daemon_free_scanned",
    "htlb_buddy_alloc_success", "htlb_buddy_alloc_fail", "cma_alloc_success", "cma_alloc_fail",
    "unevictable_pgs_culled", "unevictable_pgs_scanned", "unevictable_pgs_rescued",
    "unevictable_pgs_mlocked", "unevictable_pgs_munlocked", "unevictable_pgs_cleared",
    "unevictable_pgs_stranded",
    "thp_fault_alloc", "thp_fault_fallback", "thp_fault_fallback_charge", "thp_collapse_alloc",
    "thp_collapse_alloc_failed", "thp_file_alloc", "thp_file_fallback",
    "thp_file_fallback_charge", "thp_file_mapped", "thp_split_page", "thp_split_page_failed",
    "thp_deferred_split_page", "thp_split_pmd", "thp_scan_exceed_none_pte",
    "thp_scan_exceed_swap_pte", "thp_scan_exceed_share_pte", "thp_split_pud",
    "thp_zero_page_alloc", "thp_zero_page_alloc_failed", "thp_swpout", "thp_swpout_fallback",
    "balloon_inflate", "balloon_deflate", "balloon_migrate",
    "nr_tlb_remote_flush", "nr_tlb_remote_flush_received", "nr_tlb_local_flush_all",
    "nr_tlb_local_flush_one",
    "swap_ra", "swap_ra_hit", "ksm_swpin_copy", "cow_ksm", "zswpin", "zswpout",
    "direct_map_level2_splits", "direct_map_level3_splits",
    # vmstat_show(): "We've come to the end - add any deprecated counters"
    "nr_unstable",
)

#: LRU counters: (zone counter, node counter, file pages?, active?).
_LRU_COUNTERS: Final = (
    ("nr_zone_inactive_anon", "nr_inactive_anon", False, False),
    ("nr_zone_active_anon", "nr_active_anon", False, True),
    ("nr_zone_inactive_file", "nr_inactive_file", True, False),
    ("nr_zone_active_file", "nr_active_file", True, True),
)


def _derived(m: Machine) -> dict[str, int]:
    """The 6.1 counters computed from the model's pages and counters (see the module doc)."""
    pages = m.pages
    flags = pages["flags"]
    kinds = (pages["mt"] >> KIND_SHIFT) & 0x0F
    out: dict[str, int] = {}
    on_lru = (flags & PG_LRU) != 0
    is_file = (kinds == KIND_FILE) | (kinds == KIND_FILE_MAPPED)
    active = (flags & PG_ACTIVE) != 0
    for zone_name, node_name, file, act in _LRU_COUNTERS:
        sel = on_lru & (is_file if file else kinds == KIND_ANON) & (active if act else ~active)
        out[zone_name] = out[node_name] = int(np.count_nonzero(sel))
    heads = ((flags & PG_HEAD) != 0) & ((flags & PG_PCP) == 0)
    sizes = np.left_shift(1, pages["order"][heads].astype(np.int64))
    per_kind = np.bincount(kinds[heads].astype(np.int64), weights=sizes, minlength=16)
    out["nr_anon_pages"] = int(per_kind[KIND_ANON])
    out["nr_mapped"] = int(per_kind[KIND_FILE_MAPPED])
    out["nr_file_pages"] = int(per_kind[KIND_FILE] + per_kind[KIND_FILE_MAPPED])
    out["nr_slab_reclaimable"] = int(per_kind[KIND_SLAB])
    vm = m.vmstat()
    out["pgsteal_kswapd"] = vm["kswapd_steal"]
    out["pgsteal_direct"] = vm["pgsteal"] - vm["kswapd_steal"]
    for z in m.populated_zones():
        suffix = ZONE_SUFFIX_6_1[int(m.zones[z]["zone_type"])]
        out[f"pgalloc_{suffix}"] = int(m.node[0]["pgalloc_zone"][z])
    out["nr_unstable"] = 0
    return out


def vmstat_6_1(m: Machine) -> dict[str, int]:
    """The counters 6.1's /proc/vmstat has that the model keeps or derives, in 6.1 order
    (`vmstat_show`, mm/vmstat.c). A name counts as kept when `Machine.vmstat()` has it."""
    values = m.vmstat()
    values.update(_derived(m))
    return {name: values[name] for name in VMSTAT_TEXT_6_1 if name in values}


"""Allocator policies as data: which kernel's placement rules the buddy core follows.

A policy answers a few narrow questions, each a field: does the kernel group pages by mobility,
what is `fallbacks[]`, which steal/claim rule does `__rmqueue_fallback` use, does
`__free_one_page` put a block that is about to merge at the tail of its list, how many
MIGRATE_RESERVE pageblocks does `setup_zone_migrate_reserve` keep, and which
`should_alloc_retry` rule the slow path follows. A later kernel is a new row in `POLICIES` (or a
new claim rule in `models.mm.buddy`, a new retry rule in `models.mm.slowpath`), never a version
test in the hot path.

- `vanilla`: Linux 2.6.20, one LIFO free list per order, no pageblock types, no fallback.
- `mobility`: Linux 2.6.24, grouping pages by mobility (Mel Gorman's anti-fragmentation work).
- `mobility-2.6.35`: Linux 2.6.35 `mm/page_alloc.c`: the same `fallbacks[]`, and
  - `__free_one_page`: a merged block below MAX_ORDER-1 whose next-higher-order buddy is free
    goes to the tail of its list (`FREE_2_6_35`);
  - `__rmqueue_fallback`: `change_pageblock_range` retypes every pageblock of a block of order
    >= pageblock_order, and the extfrag event carries 2.6.35's tracepoint arguments
    (`CLAIM_2_6_35`);
  - `setup_zone_migrate_reserve`: `reserve = min(2, reserve)` (`max_reserve_blocks`);
  - `should_alloc_retry`: a costly order with __GFP_REPEAT retries only while fewer than
    `1 << order` pages were reclaimed (`alloc_retry`);
  - per-cpu lists: one list per MIGRATE_PCPTYPES type with one count, high and batch,
    cold pages at the tail, `free_pcppages_bulk` round robin (`pcp_sublists`,
    `models.mm.pcp`);
  - `migrate_pages`: up to 10 passes, a page under writeback waited on from pass 3
    (`migrate_rule`, `models.mm.migrate`).
- `mobility-6.1`: Linux 6.1 `mm/page_alloc.c` (6.1.y, read at unifreq/linux-6.1.y 07badeaa):
  - `fallbacks[]` without MIGRATE_RESERVE (`FALLBACKS_6_1`), and no RESERVE pageblocks;
  - `__rmqueue_fallback` with `find_suitable_fallback`, `can_steal_fallback`,
    `steal_suitable_fallback` and the smallest-block path of movable requests (`CLAIM_6_1`);
  - `__free_one_page` with `buddy_merge_likely`, no merging of HIGHATOMIC/ISOLATE pageblocks
    past pageblock_order, boot frees to the tail (`FREE_6_1`);
  - MIGRATE_HIGHATOMIC reserves (`highatomic`, `models.mm.highatomic`) and 6.1's
    `__zone_watermark_ok` (`wmark_rule`); the type names of 4.4+ (`migratetype_names`)
    and 6.1's /proc/vmstat names and order (`vmstat_view`);
  - 6.1's `__alloc_pages_slowpath` (`alloc_retry` "6.1", `models.mm.slowpath_6_1`):
    `should_reclaim_retry`, `should_compact_retry` with compaction priorities, HIGHATOMIC
    pageblocks given back after direct reclaim and before failing.
  - ALLOC_NOFRAGMENT (`nofragment`, 5.0; with CONFIG_ZONE_DMA32 only). Watermark boosting
    (5.0) is a sysctl, `MachineConfig.watermark_boost_factor`, which the 6.1 preset sets.
  - per-cpu lists per migratetype and order (`pcp_per_order`, 5.13+; `models.mm.pcp_6_1`):
    `rmqueue_pcplist`, `free_unref_page`, `free_pcppages_bulk`, 6.1's batch and high.
- `mobility-6.15`: Linux 6.15 `mm/page_alloc.c` (v6.15; `models.mm.rmqueue_6_15`):
  - `__rmqueue` tries `__rmqueue_smallest`, `__rmqueue_claim` (whole pageblocks only) and
    `__rmqueue_steal` (a single block split in place), with `rmqueue_bulk`'s mode cache
    (`CLAIM_6_15`);
  - free pages always on the lists of their pageblock's type (6.10+, `typed_freelists`):
    type changes move the pageblock's free pages (`move_freepages_block`), and
    `__free_one_page` retypes a merged buddy's pageblock (`FREE_6_15`);
  - 6.15's `reserve_highatomic_pageblock`/`unreserve_highatomic_pageblock` and
    `__zone_watermark_ok` (`nr_free_highatomic`, the 6.3+ alloc flags: `WMARK_RULE_6_15`);
  - /proc/sys/vm/defrag_mode (`has_defrag_mode`; off by default, as in 6.15);
  - the slow path is 6.1's (`models.mm.slowpath_6_1`) plus defrag_mode's last retry
    (`alloc_retry` "6.15"); boosting, ALLOC_NOFRAGMENT, kcompactd and the per-order per-cpu
    lists as on 6.1 (their `rmqueue_bulk` with 6.15's `__rmqueue`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fragsim.models.mm.alloc import WMARK_RULE_2_6_24, WMARK_RULE_6_1, WMARK_RULE_6_15
from fragsim.models.mm.buddy import (
    CLAIM_2_6_24,
    CLAIM_2_6_35,
    CLAIM_6_1,
    CLAIM_6_15,
    FREE_2_6_24,
    FREE_2_6_35,
    FREE_6_1,
    FREE_6_15,
)
from fragsim.models.mm.constants import (
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_RESERVE,
    MIGRATE_UNMOVABLE,
    MIGRATETYPE_NAMES_2_6_24,
    MIGRATETYPE_NAMES_4_4,
    NR_MIGRATETYPES,
    WRITEBACK_RULE_2_6_24,
    WRITEBACK_RULE_6_1,
)
from fragsim.models.mm.migrate import MIGRATE_2_6_35, MIGRATE_ONE_PASS

__all__ = [
    "FALLBACKS_2_6_24",
    "FALLBACKS_6_1",
    "POLICIES",
    "Policy",
    "get_policy",
]

#: 2.6.24 `fallbacks[MIGRATE_TYPES][MIGRATE_TYPES-1]` (mm/page_alloc.c); 2.6.35's is the same.
FALLBACKS_2_6_24: dict[int, tuple[int, ...]] = {
    MIGRATE_UNMOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE, MIGRATE_RESERVE),
    MIGRATE_RECLAIMABLE: (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RESERVE),
    MIGRATE_MOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, MIGRATE_RESERVE),
    MIGRATE_RESERVE: (MIGRATE_RESERVE,),
}
#: 6.1 `fallbacks[MIGRATE_TYPES][3]`: "The other migratetypes do not have fallbacks."
FALLBACKS_6_1: dict[int, tuple[int, ...]] = {
    MIGRATE_UNMOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE),
    MIGRATE_MOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE),
    MIGRATE_RECLAIMABLE: (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE),
}
#: /proc/pagetypeinfo names of 2.6.24-4.3 as (internal type, name), in that kernel's order.
_NAMES_2_6_24 = tuple(enumerate(MIGRATETYPE_NAMES_2_6_24))


@dataclass(frozen=True)
class Policy:
    """One kernel's page placement rules."""

    name: str
    kernel: str
    description: str
    grouping: bool
    fallbacks: dict[int, tuple[int, ...]] = field(default_factory=dict)
    claim_rule: int = CLAIM_2_6_24
    #: Keep MIGRATE_RESERVE pageblocks sized from pages_min (2.6.24); False: none.
    migrate_reserve: bool = False
    #: Cap on reserve pageblocks per zone (2.6.32+: 2); None: no cap (2.6.24).
    max_reserve_blocks: int | None = None
    #: Where `__free_one_page` adds a merged block (`models.mm.buddy.FREE_*`): always at the
    #: head (2.6.24), at the tail when the next-higher-order buddy is free (2.6.35), 6.1's rules.
    free_rule: int = FREE_2_6_24
    #: The slow path's retry rule, a key of `models.mm.slowpath.ALLOC_RETRY_RULES`.
    alloc_retry: str = "2.6.24"
    #: Per-cpu lists are one list per MIGRATE_PCPTYPES type, cold pages at the tail (2.6.31+,
    #: `models.mm.pcp`); False: 2.6.24's separate hot and cold lists.
    pcp_sublists: bool = False
    #: Per-cpu lists are 6.1's, one per migratetype and order up to PAGE_ALLOC_COSTLY_ORDER
    #: plus the THP lists, high-order requests and frees on them (5.13+, `models.mm.pcp_6_1`).
    pcp_per_order: bool = False
    #: `migrate_pages`' rule, a `models.mm.migrate.MIGRATE_*`: one pass, a page under writeback
    #: fails (MIGRATE_ONE_PASS); or 2.6.35's 10 passes, waiting on writeback after pass 2.
    migrate_rule: int = MIGRATE_ONE_PASS
    #: MIGRATE_HIGHATOMIC reserves made by high-order atomic allocations (4.4+).
    highatomic: bool = False
    #: `zone_watermark_ok` (`models.mm.alloc.WMARK_RULE_*`).
    wmark_rule: int = WMARK_RULE_2_6_24
    #: ALLOC_NOFRAGMENT (5.0): the fast path's first pass takes no fallback block below
    #: pageblock_order when the preferred zone is ZONE_NORMAL (`models.mm.boost`).
    nofragment: bool = False
    #: (internal type, name) in /proc/pagetypeinfo's order.
    migratetype_names: tuple[tuple[int, str], ...] = _NAMES_2_6_24
    #: /proc/vmstat's names and order (`models.mm.procfs.VMSTAT_VIEWS`): "2.6", the model's
    #: own counter order with 2.6.x names; "6.1", 6.1's `vmstat_text[]` (`models.mm.vmstat_6_1`).
    vmstat_view: str = "2.6"

    @property
    def migratetype_labels(self) -> tuple[str, ...]:
        """Name of each internal migratetype slot 0..4, from `migratetype_names`: slot 3 is
        `Reserve` up to 4.3 and `HighAtomic` on 4.4+ (the two share the slot, see
        `models.mm.constants`). The samples, events and census tables and the figures label
        migratetypes with these names."""
        labels = list(MIGRATETYPE_NAMES_2_6_24)
        for mt, name in self.migratetype_names:
            labels[mt] = name
        return tuple(labels)
    #: Free pages always on their pageblock type's lists (6.10+ accounting): a pageblock's
    #: type changes only together with its free pages.
    typed_freelists: bool = False
    #: The kernel has /proc/sys/vm/defrag_mode (6.15).
    has_defrag_mode: bool = False
    #: kswapd's loop: "2.6.24" (`reclaim.balance_pgdat_2_6_24`) or "6.1"
    #: (`models.mm.kswapd_6_1`: 6.1 `balance_pgdat`, `pgdat_balanced`, `kswapd_failures`).
    kswapd: str = "2.6.24"
    #: What reclaim does with a page under writeback (`constants.WRITEBACK_RULE_*`): 2.6.24
    #: keeps it; 6.1 sets PG_reclaim, activates it and rotates it when the write ends.
    writeback_rule: int = WRITEBACK_RULE_2_6_24
    #: Memory compaction's scanners: "2.6.35" (`models.mm.compaction`) or "6.1"
    #: (`models.mm.compaction_6_1`), which 6.1's slow path and kcompactd always use.
    compaction: str = "2.6.35"
    #: Page reclaim: "2.6.24" (`models.mm.reclaim`: one mixed LRU pair per zone, 2.6.24
    #: `shrink_zone` and `shrink_slab`) or "6.1" (`models.mm.reclaim_6_1`: split anon/file
    #: LRU, 6.1 `shrink_node`, `get_scan_count`, `do_shrink_slab`), with 6.1's kswapd and only
    #: with it.
    reclaim: str = "2.6.24"

    def __post_init__(self) -> None:
        if self.compaction not in ("2.6.35", "6.1"):
            raise ValueError(f"compaction {self.compaction!r}: allowed are '2.6.35', '6.1'")
        if self.reclaim not in ("2.6.24", "6.1"):
            raise ValueError(f"reclaim {self.reclaim!r}: allowed are '2.6.24', '6.1'")
        if (self.reclaim == "6.1") != (self.kswapd == "6.1"):
            raise ValueError(f"policy {self.name}: 6.1's kswapd and 6.1 reclaim go together: "
                             f"kswapd {self.kswapd!r}, reclaim {self.reclaim!r}")
        if self.alloc_retry in ("6.1", "6.15") and self.compaction != "6.1":
            raise ValueError(f"policy {self.name}: the {self.alloc_retry} slow path compacts "
                             "with 6.1's scanners: compaction must be '6.1'")

    @property
    def free_to_tail(self) -> bool:
        """Whether `__free_one_page` ever adds a block at the tail of its list."""
        return self.free_rule != FREE_2_6_24

    def fallback_table(self) -> np.ndarray:
        """The table as the compiled core reads it: rows of types, -1 terminated."""
        table = np.full((NR_MIGRATETYPES, NR_MIGRATETYPES), -1, dtype=np.int8)
        for mt, row in self.fallbacks.items():
            table[mt, : len(row)] = row
        return table


POLICIES: dict[str, Policy] = {
    "vanilla": Policy(
        name="vanilla",
        kernel="2.6.20",
        description="plain buddy allocator: one LIFO free list per order",
        grouping=False,
    ),
    "mobility": Policy(
        name="mobility",
        kernel="2.6.24",
        description="grouping pages by mobility: migrate types, pageblocks, fallbacks, RESERVE",
        grouping=True,
        fallbacks=FALLBACKS_2_6_24,
        claim_rule=CLAIM_2_6_24,
        migrate_reserve=True,
    ),
    "mobility-2.6.35": Policy(
        name="mobility-2.6.35",
        kernel="2.6.35",
        description="grouping pages by mobility as 2.6.35 has it: tail-add of merging buddies, "
                    "change_pageblock_range, at most 2 RESERVE pageblocks",
        grouping=True,
        fallbacks=FALLBACKS_2_6_24,
        claim_rule=CLAIM_2_6_35,
        migrate_reserve=True,
        max_reserve_blocks=2,
        free_rule=FREE_2_6_35,
        alloc_retry="2.6.35",
        pcp_sublists=True,
        migrate_rule=MIGRATE_2_6_35,
    ),
    "mobility-6.1": Policy(
        name="mobility-6.1",
        kernel="6.1",
        description="grouping pages by mobility as 6.1 has it: find_suitable_fallback and "
                    "steal_suitable_fallback, buddy_merge_likely, MIGRATE_HIGHATOMIC reserves",
        grouping=True,
        fallbacks=FALLBACKS_6_1,
        claim_rule=CLAIM_6_1,
        migrate_reserve=False,
        free_rule=FREE_6_1,
        alloc_retry="6.1",
        kswapd="6.1",
        compaction="6.1",
        writeback_rule=WRITEBACK_RULE_6_1,
        reclaim="6.1",
        pcp_per_order=True,
        highatomic=True,
        wmark_rule=WMARK_RULE_6_1,
        nofragment=True,
        migratetype_names=MIGRATETYPE_NAMES_4_4,
        vmstat_view="6.1",
    ),
    "mobility-6.15": Policy(
        name="mobility-6.15",
        kernel="6.15",
        description="grouping pages by mobility as 6.15 has it: __rmqueue_claim and "
                    "__rmqueue_steal, free pages on their pageblock type's lists, defrag_mode",
        grouping=True,
        fallbacks=FALLBACKS_6_1,
        claim_rule=CLAIM_6_15,
        migrate_reserve=False,
        free_rule=FREE_6_15,
        alloc_retry="6.15",
        kswapd="6.1",
        compaction="6.1",
        writeback_rule=WRITEBACK_RULE_6_1,
        reclaim="6.1",
        pcp_per_order=True,
        highatomic=True,
        wmark_rule=WMARK_RULE_6_15,
        migratetype_names=MIGRATETYPE_NAMES_4_4,
        typed_freelists=True,
        has_defrag_mode=True,
        nofragment=True,
        # 6.15 prints more counters than 6.1; the model's are printed in 6.1's names and order.
        vmstat_view="6.1",
    ),
}


def get_policy(name: str) -> Policy:
    """The registered policy called `name`; ValueError naming the allowed ones otherwise."""
    try:
        return POLICIES[name]
    except KeyError:
        allowed = ", ".join(sorted(POLICIES))
        raise ValueError(f"unknown policy {name!r}: allowed are {allowed}") from None

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
    goes to the tail of its list (`free_to_tail`);
  - `__rmqueue_fallback`: `change_pageblock_range` retypes every pageblock of a block of order
    >= pageblock_order, and the extfrag event carries 2.6.35's tracepoint arguments
    (`CLAIM_2_6_35`);
  - `setup_zone_migrate_reserve`: `reserve = min(2, reserve)` (`max_reserve_blocks`);
  - `should_alloc_retry`: a costly order with __GFP_REPEAT retries only while fewer than
    `1 << order` pages were reclaimed (`alloc_retry`).
  - per-cpu lists: one list per MIGRATE_PCPTYPES type with one count, high and batch,
    cold pages at the tail, `free_pcppages_bulk` round robin (`pcp_sublists`,
    `models.mm.pcp`).
  - `migrate_pages`: up to 10 passes, a page under writeback waited on from pass 3
    (`migrate_rule`, `models.mm.migrate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fragsim.models.mm.buddy import CLAIM_2_6_24, CLAIM_2_6_35
from fragsim.models.mm.constants import (
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_RESERVE,
    MIGRATE_UNMOVABLE,
    NR_MIGRATETYPES,
)
from fragsim.models.mm.migrate import MIGRATE_2_6_35, MIGRATE_ONE_PASS

__all__ = [
    "FALLBACKS_2_6_24",
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
    #: `__free_one_page` adds a block whose next-higher-order buddy is free at the tail of its
    #: list (2.6.35); False: always at the head (2.6.24).
    free_to_tail: bool = False
    #: The slow path's retry rule, a key of `models.mm.slowpath.ALLOC_RETRY_RULES`.
    alloc_retry: str = "2.6.24"
    #: Per-cpu lists are one list per MIGRATE_PCPTYPES type, cold pages at the tail (2.6.31+,
    #: `models.mm.pcp`); False: 2.6.24's separate hot and cold lists.
    pcp_sublists: bool = False
    #: `migrate_pages`' rule, a `models.mm.migrate.MIGRATE_*`: one pass, a page under writeback
    #: fails (MIGRATE_ONE_PASS); or 2.6.35's 10 passes, waiting on writeback after pass 2.
    migrate_rule: int = MIGRATE_ONE_PASS

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
        free_to_tail=True,
        alloc_retry="2.6.35",
        pcp_sublists=True,
        migrate_rule=MIGRATE_2_6_35,
    ),
}


def get_policy(name: str) -> Policy:
    """The registered policy called `name`; ValueError naming the allowed ones otherwise."""
    try:
        return POLICIES[name]
    except KeyError:
        allowed = ", ".join(sorted(POLICIES))
        raise ValueError(f"unknown policy {name!r}: allowed are {allowed}") from None

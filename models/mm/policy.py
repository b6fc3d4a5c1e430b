"""Allocator policies as data: which kernel's placement rules the buddy core follows.

A policy answers a few narrow questions, each a field: does the kernel group pages by mobility,
what is `fallbacks[]`, which steal/claim rule does `__rmqueue_fallback` use, how many
MIGRATE_RESERVE pageblocks does `setup_zone_migrate_reserve` keep. A later kernel is a new row in
`POLICIES` (or a new claim rule in `models.mm.buddy`), never a version test in the hot path.

- `vanilla`: Linux 2.6.20, one LIFO free list per order, no pageblock types, no fallback.
- `mobility`: Linux 2.6.24, grouping pages by mobility (Mel Gorman's anti-fragmentation work).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fragsim.models.mm.buddy import CLAIM_2_6_24
from fragsim.models.mm.constants import (
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_RESERVE,
    MIGRATE_UNMOVABLE,
    NR_MIGRATETYPES,
)

__all__ = [
    "FALLBACKS_2_6_24",
    "POLICIES",
    "Policy",
    "get_policy",
]

#: 2.6.24 `fallbacks[MIGRATE_TYPES][MIGRATE_TYPES-1]` (mm/page_alloc.c).
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
}


def get_policy(name: str) -> Policy:
    """The registered policy called `name`; ValueError naming the allowed ones otherwise."""
    try:
        return POLICIES[name]
    except KeyError:
        allowed = ", ".join(sorted(POLICIES))
        raise ValueError(f"unknown policy {name!r}: allowed are {allowed}") from None

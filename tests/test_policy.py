"""`models.mm.policy`: the registry, and the contract every registered policy must meet.

The contract tests take the `machine` fixture, which is parametrized over `POLICIES`: a new
policy row is checked by them without any new test code.
"""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.mm.buddy import CLAIM_2_6_24, CLAIM_2_6_35
from fragsim.models.mm.constants import (
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_RESERVE,
    MIGRATE_UNMOVABLE,
    NR_MIGRATETYPES,
    PG_HEAD,
)
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.policy import FALLBACKS_2_6_24, POLICIES, Policy, get_policy


def test_registry() -> None:
    assert set(POLICIES) >= {"vanilla", "mobility"}
    for name, policy in POLICIES.items():
        assert policy.name == name
        assert get_policy(name) is policy
    assert POLICIES["vanilla"].kernel == "2.6.20" and not POLICIES["vanilla"].grouping
    mob = POLICIES["mobility"]
    assert mob.kernel == "2.6.24" and mob.grouping and mob.migrate_reserve
    assert mob.max_reserve_blocks is None
    assert not mob.free_to_tail and mob.claim_rule == CLAIM_2_6_24 and mob.alloc_retry == "2.6.24"
    # 2.6.35 mm/page_alloc.c: same fallbacks[], tail-add in __free_one_page,
    # change_pageblock_range, reserve = min(2, reserve), should_alloc_retry.
    m35 = POLICIES["mobility-2.6.35"]
    assert m35.kernel == "2.6.35" and m35.grouping and m35.migrate_reserve
    assert m35.fallbacks == FALLBACKS_2_6_24
    assert m35.free_to_tail and m35.claim_rule == CLAIM_2_6_35
    assert m35.max_reserve_blocks == 2 and m35.alloc_retry == "2.6.35"


def test_get_policy_error_names_the_allowed() -> None:
    with pytest.raises(ValueError, match="unknown policy 'buddy': allowed are mobility, "
                                         r"mobility-2\.6\.35, mobility-6\.1, "
                                         r"mobility-6\.15, vanilla"):
        get_policy("buddy")


def test_fallbacks_2_6_24() -> None:
    # mm/page_alloc.c 2.6.24 fallbacks[].
    assert FALLBACKS_2_6_24[MIGRATE_UNMOVABLE] == (
        MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE, MIGRATE_RESERVE)
    assert FALLBACKS_2_6_24[MIGRATE_RECLAIMABLE] == (
        MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RESERVE)
    assert FALLBACKS_2_6_24[MIGRATE_MOVABLE] == (
        MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, MIGRATE_RESERVE)


def test_fallback_table_is_minus_one_terminated() -> None:
    table = POLICIES["mobility"].fallback_table()
    assert table.shape == (NR_MIGRATETYPES, NR_MIGRATETYPES) and table.dtype == np.int8
    assert table[MIGRATE_MOVABLE, :4].tolist() == [
        MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, MIGRATE_RESERVE, -1]
    assert (POLICIES["vanilla"].fallback_table() == -1).all()
    custom = Policy("x", "0", "test", grouping=True, fallbacks={1: (2,)})
    assert custom.fallback_table()[1, :2].tolist() == [2, -1]


# --- the contract --------------------------------------------------------------------------

def test_machine_reports_its_policy(machine: Machine) -> None:
    assert machine.policy is POLICIES[machine.policy.name]
    assert machine.grouping is machine.policy.grouping
    check_invariants(machine)


def test_allocations_are_disjoint_and_aligned(machine: Machine) -> None:
    rng = np.random.default_rng(1)
    orders = rng.integers(0, 5, 400)
    mts = rng.integers(0, 3, 400)
    owned = np.zeros(machine.nr_pages, dtype=np.int64)
    for order, mt in zip(orders.tolist(), mts.tolist(), strict=True):
        pfn = machine.alloc(order, migratetype=mt)
        assert pfn >= 0 and pfn % (1 << order) == 0
        owned[pfn:pfn + (1 << order)] += 1
    assert owned.max() == 1
    assert machine.stat("pgalloc") == int(owned.sum())
    check_invariants(machine)


def test_free_everything_restores_max_order_blocks(machine: Machine) -> None:
    # Whatever happened, freeing every allocation coalesces memory back into max-order blocks.
    rng = np.random.default_rng(7)
    pfns: list[int] = []
    for _ in range(6):
        for order in rng.integers(0, 11, 60).tolist():
            pfn = machine.alloc(order, migratetype=int(rng.integers(0, 3)))
            if pfn >= 0:
                pfns.append(pfn)
        rng.shuffle(pfns)
        half = len(pfns) // 2
        machine.free_batch(np.array(pfns[:half]))
        pfns = pfns[half:]
        check_invariants(machine)
    machine.free_batch(np.array(pfns))
    check_invariants(machine)
    zone = machine.zones[2]
    assert machine.free_pages() == machine.nr_pages
    assert zone["nr_free"][10] == machine.nr_pages >> 10
    assert zone["nr_free"][:10].sum() == 0
    assert not (machine.pages["flags"] & PG_HEAD).any()
    assert machine.stat("pgalloc") == machine.stat("pgfree")


def test_exhaustion_fails_cleanly(machine: Machine) -> None:
    # With the watermarks ignored, every page can be allocated; then requests fail and count.
    from fragsim.models.mm.constants import ALLOC_NO_WATERMARKS

    got = machine.alloc_many(0, machine.nr_pages + 10, migratetype=MIGRATE_MOVABLE,
                             alloc_flags=ALLOC_NO_WATERMARKS)
    assert (got[:machine.nr_pages] >= 0).all() and (got[machine.nr_pages:] == -1).all()
    assert machine.free_pages() == 0
    assert machine.stat("alloc_fail") == 10
    check_invariants(machine)


def test_mobility_6_1() -> None:
    # 6.1 mm/page_alloc.c: fallbacks[] without MIGRATE_RESERVE ("The other migratetypes do not
    # have fallbacks"), no RESERVE pageblocks, HIGHATOMIC reserves, the 4.4+ type names.
    from fragsim.models.mm.alloc import WMARK_RULE_6_1
    from fragsim.models.mm.buddy import CLAIM_6_1, FREE_6_1
    from fragsim.models.mm.policy import FALLBACKS_6_1

    m61 = POLICIES["mobility-6.1"]
    assert m61.kernel == "6.1" and m61.grouping and not m61.migrate_reserve
    assert m61.fallbacks == FALLBACKS_6_1
    assert FALLBACKS_6_1 == {
        MIGRATE_UNMOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE),
        MIGRATE_MOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE),
        MIGRATE_RECLAIMABLE: (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE),
    }
    assert m61.claim_rule == CLAIM_6_1 and m61.free_rule == FREE_6_1 and m61.free_to_tail
    assert m61.highatomic and m61.wmark_rule == WMARK_RULE_6_1 and m61.alloc_retry == "6.1"
    assert [name for _, name in m61.migratetype_names] == [
        "Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"]

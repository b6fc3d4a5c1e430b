"""2.6.35's migration frees through the per-cpu lists, and its direct compaction drains only the
allocating cpu (mm/migrate.c `unmap_and_move` -> `putback_lru_page`; mm/page_alloc.c
`__alloc_pages_direct_compact` -> `drain_pages(get_cpu())`, `__alloc_pages_direct_reclaim` ->
`drain_all_pages()`)."""

from __future__ import annotations

import numpy as np

from fragsim.models.mm import pcp, reclaim
from fragsim.models.mm.constants import (
    KIND_ANON,
    MIGRATE_MOVABLE,
    PG_BUDDY,
    PG_PCP,
    ZONE_NORMAL,
)
from fragsim.models.mm.gfp import GFP_HIGHUSER_MOVABLE
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.migrate import migrate_page
from fragsim.models.mm.slowpath import alloc_pages

MiB = 1 << 20


def machine(policy: str) -> Machine:
    return Machine(MachineConfig(memory=64 * MiB, policy=policy, pcp=True, nr_cpus=2,
                                 compaction=True, lumpy_reclaim=False))


def test_migrated_old_page_goes_to_the_hot_per_cpu_list_on_2_6_35() -> None:
    # 2.6.35: the old page's last reference is dropped by putback_lru_page's pagevec, and
    # __pagevec_free frees it with free_hot_cold_page(page, 0): the head of cpu 0's MOVABLE
    # list (pcp->lists[MIGRATE_MOVABLE]). The one-pass rule of the other policies frees it
    # straight to the buddy lists.
    where = {}
    for policy in ("mobility-2.6.35", "mobility"):
        m = machine(policy)
        old = int(reclaim.alloc_lru_pages(m, 1, KIND_ANON, owner=3)[0])
        new = m.alloc(0, migratetype=MIGRATE_MOVABLE, owner=-1)
        pcp.drain_pages(m)
        assert pcp.pcp_pages(m) == 0
        assert migrate_page(m.pages, m.zones, m.pageblock_type, m.node, old, new)
        flags = int(m.pages[old]["flags"])
        lst = MIGRATE_MOVABLE if policy == "mobility-2.6.35" else pcp.PCP_HOT
        where[policy] = ("pcp" if flags & PG_PCP else "buddy" if flags & PG_BUDDY else "?",
                         pcp.pcp_list(m, ZONE_NORMAL, 0, lst)[:1] == [old])
        check_invariants(m)
    assert where == {"mobility-2.6.35": ("pcp", True), "mobility": ("buddy", False)}


def _holes_with_a_list_on_cpu_1(m: Machine) -> list[int]:
    """Every other page anonymous (no swap), the rest free as order-0 holes; then 5 free pages
    queued on cpu 1's hot list. Returns those 5 pfns, head first."""
    pfns = reclaim.alloc_lru_pages(m, m.nr_pages, KIND_ANON, owner=3)
    pfns = np.sort(pfns[pfns >= 0])
    reclaim.free_lru_pages(m, pfns[::2])
    pcp.drain_pages(m)
    mine = [int(p) for p in pfns[1:11:2]]
    for p in mine:
        assert m.free(p, cpu=1) == 0
    return mine[::-1]


def test_direct_compaction_drains_the_local_cpu_only_on_2_6_35() -> None:
    # An order-9 MOVABLE request on cpu 0 into order-0 holes: 2.6.35 direct compaction
    # migrates (the old pages go to cpu 0's MOVABLE list), then drain_pages(get_cpu()) empties
    # cpu 0's lists so they merge, and the allocation succeeds without direct reclaim; cpu 1's
    # five pages stay queued (the model drained every cpu here before).
    m = machine("mobility-2.6.35")
    mine = _holes_with_a_list_on_cpu_1(m)
    assert pcp.pcp_list(m, ZONE_NORMAL, 1, MIGRATE_MOVABLE) == mine
    a = alloc_pages(m, 9, GFP_HIGHUSER_MOVABLE, cpu=0)
    assert a.success and a.compaction_runs == 1 and a.reclaim_rounds == 0
    assert m.stat("pgmigrate_success") > 0
    assert pcp.pcp_list(m, ZONE_NORMAL, 0, MIGRATE_MOVABLE) == []
    assert pcp.pcp_list(m, ZONE_NORMAL, 1, MIGRATE_MOVABLE) == mine
    check_invariants(m)


def test_drain_local_pages_leaves_other_cpus_alone() -> None:
    m = machine("mobility-2.6.35")
    mine = _holes_with_a_list_on_cpu_1(m)
    assert pcp.drain_local_pages(m, 0) == 0
    assert pcp.drain_local_pages(m, 1, ZONE_NORMAL) == len(mine)
    assert pcp.pcp_pages(m) == 0
    check_invariants(m)

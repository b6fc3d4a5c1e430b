"""Per-cpu page lists (`models.mm.pcp`) against 2.6.24 `mm/page_alloc.c`, by hand.

A 64 MiB flat zone has 16384 present pages: zone_batchsize = 16384/1024 = 16, /4 = 4,
fls(4 + 2) = 3 -> 2^2 - 1 = 3; hot high 18 batch 3, cold high 6 batch 1.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fragsim.models.mm import alloc as _alloc
from fragsim.models.mm import pcp
from fragsim.models.mm.constants import (
    ALLOC_NO_WATERMARKS,
    ALLOC_WMARK_LOW,
    FREE_NOT_ALLOCATED,
    FREE_OK,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    PG_BUDDY,
    PG_HEAD,
    PG_PCP,
    ZONE_DMA,
    ZONE_NORMAL,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.gfp import GFP, GFP_HIGHUSER_MOVABLE
from fragsim.models.mm.invariants import InvariantError, check_invariants
from fragsim.models.mm.machine import Machine
from tests.conftest import MakeMachine

HOT, COLD = pcp.PCP_HOT, pcp.PCP_COLD
Z = ZONE_NORMAL  # the flat layout's one zone


def hot_list(m: Machine, cpu: int = 0) -> list[int]:
    return pcp.pcp_list(m, Z, cpu, HOT)


def cold_list(m: Machine, cpu: int = 0) -> list[int]:
    return pcp.pcp_list(m, Z, cpu, COLD)


@pytest.fixture
def pcp_machine(make_machine: MakeMachine) -> Machine:
    return make_machine(64 * MiB, policy="mobility", pcp=True, nr_cpus=2)


# --- sizes ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("present", "batch"), [
    (0, 0),
    (3998, 0),  # x86_64 DMA: "DMA zone: 3998 pages, LIFO batch:0"
    (4096, 0),  # 4 -> 1 -> fls(1) = 1 -> 0
    (8192, 1),  # 8 -> 2 -> fls(3) = 2 -> 1
    (16384, 3),  # 16 -> 4 -> fls(6) = 3 -> 3
    (32768, 7),  # 32 -> 8 -> fls(12) = 4 -> 7
    (65536, 15),  # 64 -> 16 -> fls(24) = 5 -> 15
    (262144, 31),  # 256 -> capped at 128 (512 KiB) -> 32 -> fls(48) = 6 -> 31
    (782300, 31),  # "DMA32 zone: 782300 pages, LIFO batch:31"
])
def test_zone_batchsize_by_hand(present: int, batch: int) -> None:
    assert pcp.zone_batchsize(present) == batch


def test_pageset_marks_by_hand() -> None:
    assert pcp.pageset_marks(31) == ((186, 31), (62, 15))
    assert pcp.pageset_marks(3) == ((18, 3), (6, 1))
    assert pcp.pageset_marks(0) == ((0, 1), (0, 1))


def test_setup_pagesets(make_machine: MakeMachine) -> None:
    m = make_machine(64 * MiB, pcp=True, nr_cpus=3)
    assert list(m.zones[Z]["pcp_high"]) == [18, 6]
    assert list(m.zones[Z]["pcp_batch"]) == [3, 1]
    assert int(m.node[0]["pcp"]) == 3
    off = make_machine(64 * MiB)
    assert int(off.node[0]["pcp"]) == 0
    assert list(off.zones[Z]["pcp_high"]) == [18, 6]  # sized anyway, as the kernel does
    zoned = make_machine(1024 * MiB, layout="zones", pcp=True)
    assert list(zoned.zones[ZONE_DMA]["pcp_high"]) == [0, 0]
    assert list(zoned.zones[ZONE_DMA]["pcp_batch"]) == [1, 1]


# --- allocation -------------------------------------------------------------------------------
def test_refill_takes_batch_pages_in_buddy_order(pcp_machine: Machine,
                                                 make_machine: MakeMachine) -> None:
    m = pcp_machine
    ref = make_machine(64 * MiB, policy="mobility")
    expect = [ref.alloc(0, migratetype=MIGRATE_MOVABLE) for _ in range(3)]
    free0 = m.free_pages()
    pfn = m.alloc(0, migratetype=MIGRATE_MOVABLE)
    assert pfn == expect[0]
    assert m.stat("pcp_refill") == 1
    # rmqueue_bulk adds each page after the previous one: the list is in buddy (pfn) order.
    assert hot_list(m) == expect[1:]
    assert m.free_pages() == free0 - 3  # pcp pages are not in NR_FREE_PAGES
    assert int(m.zones[Z]["pcp_count"][0, HOT]) == 2
    for p in expect[1:]:
        assert m.pages[p]["flags"] == PG_PCP
        assert m.pages[p]["mt"] == MIGRATE_MOVABLE
        assert m.pages[p]["order"] == 0
    assert m.pages[pfn]["flags"] == PG_HEAD
    assert cold_list(m) == [] and hot_list(m, cpu=1) == []
    assert m.stat("pgalloc") == 1
    check_invariants(m)


def test_other_migratetype_refills_again(pcp_machine: Machine, make_machine: MakeMachine) -> None:
    m = pcp_machine
    ref = make_machine(64 * MiB, policy="mobility")
    movable = [ref.alloc(0, migratetype=MIGRATE_MOVABLE) for _ in range(3)]
    unmovable = [ref.alloc(0, migratetype=MIGRATE_UNMOVABLE) for _ in range(3)]
    m.alloc(0, migratetype=MIGRATE_MOVABLE)
    # No UNMOVABLE page on the list: a second rmqueue_bulk, its pages at the head, take the head.
    assert m.alloc(0, migratetype=MIGRATE_UNMOVABLE) == unmovable[0]
    assert m.stat("pcp_refill") == 2
    assert hot_list(m) == unmovable[1:] + movable[1:]
    for p in unmovable[1:]:
        assert m.pages[p]["mt"] == MIGRATE_UNMOVABLE
    # A MOVABLE page deeper in the list is found by the search: no refill.
    assert m.alloc(0, migratetype=MIGRATE_MOVABLE) == movable[1]
    assert m.stat("pcp_refill") == 2
    assert hot_list(m) == unmovable[1:] + movable[2:]
    check_invariants(m)


def test_refill_records_requested_type_even_from_fallback(make_machine: MakeMachine) -> None:
    m = make_machine(64 * MiB, policy="mobility", pcp=True)
    pfn = m.alloc(0, migratetype=MIGRATE_RECLAIMABLE)  # every pageblock is MOVABLE at boot
    assert m.stat("extfrag_fallback") >= 1
    assert pfn >= 0
    for p in hot_list(m):
        assert m.pages[p]["mt"] == MIGRATE_RECLAIMABLE  # set_page_private(page, migratetype)
    check_invariants(m)


def test_cold_requests_use_the_cold_list(pcp_machine: Machine) -> None:
    m = pcp_machine
    a = m.alloc(0, migratetype=MIGRATE_MOVABLE, cold=True)  # cold batch 1: nothing left over
    assert a >= 0 and cold_list(m) == [] and hot_list(m) == []
    m.free(a, cold=True)
    assert cold_list(m) == [a]
    assert m.alloc(0, GFP_HIGHUSER_MOVABLE | GFP.COLD) == a  # __GFP_COLD in the mask
    assert m.stat("pcp_refill") == 1
    check_invariants(m)


def test_cpus_have_their_own_lists(pcp_machine: Machine) -> None:
    m = pcp_machine
    a = m.alloc(0, migratetype=MIGRATE_MOVABLE, cpu=0)
    b = m.alloc(0, migratetype=MIGRATE_MOVABLE, cpu=1)
    assert m.stat("pcp_refill") == 2
    assert len(hot_list(m, 0)) == 2 and len(hot_list(m, 1)) == 2
    assert not set(hot_list(m, 0)) & set(hot_list(m, 1))
    assert a not in hot_list(m, 1) and b not in hot_list(m, 0)
    with pytest.raises(ValueError, match="cpu 2 out of range"):
        m.alloc(0, cpu=2)
    with pytest.raises(ValueError, match="cpus must be in"):
        m.free_batch(np.array([a]), cpu=np.array([5]))


def test_plain_entry_points_bypass_the_lists(pcp_machine: Machine) -> None:
    """`alloc_one`/`free_one` (no cpu) are the buddy allocator alone, even with the lists on;
    `alloc_one_pcp`/`free_one_pcp` with cpu -1 too."""
    m = pcp_machine
    args = (m.pages, m.zones, m.pageblock_type, m.node)
    pfn = _alloc.alloc_one(*args, 0, Z, MIGRATE_MOVABLE, ALLOC_WMARK_LOW, 0, 0)
    assert pfn >= 0 and m.stat("pcp_refill") == 0
    assert _alloc.free_one(*args, pfn) == FREE_OK and pcp.pcp_pages(m) == 0
    pfn = _alloc.alloc_one_pcp(*args, 0, Z, MIGRATE_MOVABLE, ALLOC_WMARK_LOW, 0, 0, -1, 0)
    assert pfn >= 0 and m.stat("pcp_refill") == 0
    assert _alloc.free_one_pcp(*args, pfn, 1, 0) == FREE_OK and hot_list(m, 1) == [pfn]
    assert m.alloc_request(0, Z, MIGRATE_MOVABLE, ALLOC_WMARK_LOW, cpu=1) == pfn
    check_invariants(m)


def test_higher_orders_bypass_the_lists(pcp_machine: Machine) -> None:
    m = pcp_machine
    free0 = m.free_pages()
    pfn = m.alloc(1, migratetype=MIGRATE_MOVABLE)
    assert m.stat("pcp_refill") == 0 and pcp.pcp_pages(m) == 0
    assert m.free_pages() == free0 - 2
    assert m.free(pfn) == FREE_OK
    assert pcp.pcp_pages(m) == 0 and m.free_pages() == free0


# --- frees --------------------------------------------------------------------------------------
def test_free_goes_to_the_head_as_its_pageblock_type(pcp_machine: Machine) -> None:
    m = pcp_machine
    pfns = m.alloc_many(0, 8, migratetype=MIGRATE_UNMOVABLE)
    pcp.drain_pages(m)
    free0, pgfree0 = m.free_pages(), m.stat("pgfree")
    m.free(int(pfns[0]))
    m.free(int(pfns[1]))
    assert hot_list(m) == [int(pfns[1]), int(pfns[0])]  # list_add: newest at the head
    m.free(int(pfns[2]), cold=True)
    m.free(int(pfns[3]), cold=True)
    assert cold_list(m) == [int(pfns[3]), int(pfns[2])]  # 2.6.24: a list of its own, list_add
    pbo = m.pageblock_order
    for p in pfns[:4]:
        assert m.pages[p]["flags"] == PG_PCP
        # set_page_private(page, get_pageblock_migratetype(page)), not the allocation's type
        assert m.pages[p]["mt"] == m.pageblock_type[p >> pbo]
    assert m.free_pages() == free0
    assert m.stat("pgfree") == pgfree0 + 4
    assert m.free(int(pfns[0])) == FREE_NOT_ALLOCATED  # a page on a list is not allocated
    check_invariants(m)


def test_reaching_high_frees_batch_from_the_tail_and_merges(pcp_machine: Machine) -> None:
    m = pcp_machine
    pfns = m.alloc_many(0, 64, migratetype=MIGRATE_MOVABLE)
    base = int(pfns.min())
    assert base % 64 == 0 and sorted(pfns.tolist()) == list(range(base, base + 64))
    pcp.drain_pages(m)
    free0, drains0 = m.free_pages(), m.stat("pcp_drain")
    for i in range(17):
        m.free(base + i)
    assert int(m.zones[Z]["pcp_count"][0, HOT]) == 17 and m.free_pages() == free0
    m.free(base + 17)  # count 18 >= high 18: free_pages_bulk(batch 3) from the tail
    assert int(m.zones[Z]["pcp_count"][0, HOT]) == 15
    assert m.stat("pcp_drain") == drains0 + 1
    assert m.free_pages() == free0 + 3
    assert hot_list(m) == list(range(base + 17, base + 2, -1))
    # The three oldest (base, base+1, base+2) went back; base and base+1 merged.
    assert m.pages[base]["flags"] & PG_BUDDY and m.pages[base]["order"] == 1
    assert m.pages[base + 2]["flags"] & PG_BUDDY and m.pages[base + 2]["order"] == 0
    assert m.pages[base + 3]["flags"] == PG_PCP
    check_invariants(m)


def test_cold_list_high_and_batch(pcp_machine: Machine) -> None:
    m = pcp_machine
    pfns = m.alloc_many(0, 8, migratetype=MIGRATE_MOVABLE)
    pcp.drain_pages(m)
    for p in pfns[:6]:
        m.free(int(p), cold=True)  # the 6th reaches cold high 6: one page (cold batch) goes
    assert cold_list(m) == [int(p) for p in pfns[5:0:-1]]
    check_invariants(m)


# --- draining -------------------------------------------------------------------------------------
def test_drain_pages_empties_every_list_and_coalesces(make_machine: MakeMachine) -> None:
    for policy in ("vanilla", "mobility"):
        m = make_machine(64 * MiB, policy=policy, pcp=True, nr_cpus=4)
        fresh = make_machine(64 * MiB, policy=policy)
        rng = np.random.default_rng(7)
        pfns = m.alloc_many(0, 500, migratetype=MIGRATE_MOVABLE,
                            cpu=0, cold=False)
        more = m.alloc_batch(np.zeros(300, np.int64), np.full(300, Z, np.int64),
                             rng.integers(0, 3, 300), np.full(300, ALLOC_WMARK_LOW, np.int64),
                             np.zeros(300, np.int64), np.zeros(300, np.int64),
                             cpu=rng.integers(0, 4, 300), cold=rng.random(300) < 0.3)
        live = np.concatenate([pfns, more])
        assert (live >= 0).all()
        m.free_batch(live, cpu=rng.integers(0, 4, live.shape[0]),
                     cold=rng.random(live.shape[0]) < 0.3)
        held = pcp.pcp_pages(m)
        assert held > 0
        check_invariants(m)
        assert pcp.drain_pages(m) == held
        assert pcp.pcp_pages(m) == 0
        assert not (m.pages["flags"] & PG_PCP).any()
        assert m.free_pages() == fresh.free_pages()
        assert (m.zones["nr_free"] == fresh.zones["nr_free"]).all()  # fully merged again
        check_invariants(m)


def test_drain_is_a_no_op_when_off(make_machine: MakeMachine) -> None:
    m = make_machine(64 * MiB)
    m.alloc(0)
    assert pcp.drain_pages(m) == 0


def test_exhaustion_serves_every_page(make_machine: MakeMachine) -> None:
    m = make_machine(64 * MiB, policy="mobility", pcp=True)
    n = m.present_pages(Z)
    got = m.alloc_many(0, n + 10, migratetype=MIGRATE_MOVABLE, alloc_flags=ALLOC_NO_WATERMARKS)
    assert int((got >= 0).sum()) == n  # the lists give back what rmqueue_bulk took
    assert pcp.pcp_pages(m) == 0 and m.free_pages() == 0
    check_invariants(m)


def test_vanilla_queues_everything_as_one_type(make_machine: MakeMachine) -> None:
    m = make_machine(64 * MiB, policy="vanilla", pcp=True)
    m.alloc(0, migratetype=MIGRATE_MOVABLE)
    m.alloc(0, migratetype=MIGRATE_UNMOVABLE)  # 2.6.20: the head, whatever was asked
    assert m.stat("pcp_refill") == 1
    assert all(m.pages[p]["mt"] == 0 for p in hot_list(m))
    check_invariants(m)


# --- invariants ---------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["vanilla", "mobility"])
def test_random_workload_keeps_invariants(make_machine: MakeMachine, policy: str) -> None:
    m = make_machine(64 * MiB, policy=policy, pcp=True, nr_cpus=3)
    rng = np.random.default_rng(11)
    live: list[int] = []
    for step in range(3000):
        if live and rng.random() < 0.45:
            pfn = live.pop(int(rng.integers(len(live))))
            assert m.free(pfn, cpu=int(rng.integers(3)), cold=bool(rng.random() < 0.2)) == 0
        else:
            order = int(rng.choice([0, 0, 0, 1, 2]))
            pfn = m.alloc(order, migratetype=int(rng.integers(3)), cpu=int(rng.integers(3)),
                          cold=bool(rng.random() < 0.2))
            if pfn >= 0:
                live.append(pfn)
        if step % 500 == 0:
            check_invariants(m)
    check_invariants(m)
    pcp.drain_pages(m)
    check_invariants(m)


def test_invariants_catch_a_broken_list(pcp_machine: Machine) -> None:
    m = pcp_machine
    m.alloc(0, migratetype=MIGRATE_MOVABLE)
    bad = m.copy()
    bad.zones[Z]["pcp_count"][0, HOT] += 1
    with pytest.raises(InvariantError, match="pcp_count"):
        check_invariants(bad)
    stray = m.copy()
    p = hot_list(stray)[-1]
    stray.zones[Z]["pcp_tail"][0, HOT] = stray.pages[p]["prev"]
    stray.pages[stray.pages[p]["prev"]]["next"] = -1
    stray.zones[Z]["pcp_count"][0, HOT] -= 1
    with pytest.raises(InvariantError, match="on no per-cpu list"):
        check_invariants(stray)
    check_invariants(m)  # copies share nothing


# --- off: exactly as before ---------------------------------------------------------------------
def test_off_ignores_cpu_and_cold(make_machine: MakeMachine) -> None:
    a = make_machine(64 * MiB, policy="mobility")
    b = make_machine(64 * MiB, policy="mobility")
    c = make_machine(64 * MiB, policy="mobility")
    rng = np.random.default_rng(3)
    n = 2000
    orders = rng.choice([0, 0, 0, 1, 3], n).astype(np.int64)
    mts = rng.integers(0, 3, n)
    high = np.full(n, Z, np.int64)
    flags = np.full(n, ALLOC_WMARK_LOW, np.int64)
    zeros = np.zeros(n, np.int64)
    pa = a.alloc_batch(orders, high, mts, flags, zeros, zeros)
    pb = b.alloc_batch(orders, high, mts, flags, zeros, zeros, cpu=rng.integers(0, 1, n),
                       cold=rng.random(n) < 0.5)
    # The compiled entry point without cpu/cold, as callers used it before per-cpu lists.
    pc = np.array([_alloc.alloc_one(c.pages, c.zones, c.pageblock_type, c.node, int(o), Z,
                                    int(t), ALLOC_WMARK_LOW, 0, 0)
                   for o, t in zip(orders, mts, strict=True)])
    assert (pa == pb).all() and (pa == pc).all()
    a.free_batch(pa[::2])
    b.free_batch(pb[::2], cpu=0, cold=True)
    for p in pc[::2]:
        c.free(int(p), cold=True)
    for x in (b, c):
        assert (x.pages == a.pages).all()
        assert (x.zones == a.zones).all()
        assert (x.node == a.node).all()
    assert not (a.pages["flags"] & PG_PCP).any()
    assert a.stat("pcp_refill") == 0 and a.stat("pcp_drain") == 0
    check_invariants(a)


# --- 2.6.35 per-migratetype lists (`mobility-2.6.35`) against 2.6.24 ---------------------------
# 2.6.35 mm/page_alloc.c: `struct per_cpu_pages { count, high, batch, lists[MIGRATE_PCPTYPES] }`
# (include/linux/mmzone.h), free_hot_cold_page, free_pcppages_bulk, rmqueue_bulk,
# buffered_rmqueue, drain_pages. The 64 MiB zone: batch 3, one high 6 * 3 = 18.

M35 = "mobility-2.6.35"
UNMOV, RECL, MOV = MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE


def sublist(m: Machine, mt: int, cpu: int = 0) -> list[int]:
    return pcp.pcp_list(m, Z, cpu, mt)


@pytest.fixture
def pcp35(make_machine: MakeMachine) -> Machine:
    return make_machine(64 * MiB, policy=M35, pcp=True, nr_cpus=2)


def test_2_6_35_one_high_and_batch(pcp35: Machine, pcp_machine: Machine) -> None:
    # setup_pageset(p, 3): high = 6 * batch, batch = max(1, batch); no cold pcp.
    assert list(pcp35.zones[Z]["pcp_high"]) == [18, 0]
    assert list(pcp35.zones[Z]["pcp_batch"]) == [3, 0]
    assert int(pcp35.node[0]["pcp_sublists"]) == 1
    assert int(pcp_machine.node[0]["pcp_sublists"]) == 0


def _buddy_order(make_machine: MakeMachine, policy: str, mt: int, n: int) -> list[int]:
    ref = make_machine(64 * MiB, policy=policy)
    return [ref.alloc(0, migratetype=mt) for _ in range(n)]


def test_2_6_35_hot_refill_goes_to_the_request_types_list(pcp35: Machine,
                                                           make_machine: MakeMachine) -> None:
    # rmqueue_bulk(zone, 0, 3, &pcp->lists[MOVABLE], MOVABLE, 0): list_add after the previous
    # page, so the list is in buddy order and the head is taken.
    p = _buddy_order(make_machine, M35, MOV, 3)
    m = pcp35
    assert m.alloc(0, migratetype=MOV) == p[0]
    assert sublist(m, MOV) == p[1:] and sublist(m, UNMOV) == sublist(m, RECL) == []
    assert all(m.pages[q]["mt"] == MOV for q in p[1:])
    # Another type has its own list: an UNMOVABLE request refills lists[UNMOVABLE] and leaves
    # lists[MOVABLE] alone; a MOVABLE one then takes its head without a refill.
    u = m.alloc(0, migratetype=UNMOV)
    assert m.stat("pcp_refill") == 2
    assert len(sublist(m, UNMOV)) == 2 and u not in sublist(m, UNMOV)
    assert all(m.pages[q]["mt"] == UNMOV for q in sublist(m, UNMOV))
    assert m.alloc(0, migratetype=MOV) == p[1]
    assert m.stat("pcp_refill") == 2 and sublist(m, MOV) == p[2:]
    check_invariants(m)


@pytest.mark.parametrize("policy", ["mobility", M35])
def test_cold_refill_order(make_machine: MakeMachine, policy: str) -> None:
    # 2.6.24: pcp[1] has its own batch, 3 / 2 = 1: a cold refill is p0 alone, taken at once.
    # 2.6.35: one batch of 3; list_add_tail(&page->lru, list); list = &page->lru puts p0 at the
    # tail and each later page before the previous one: [p2, p1, p0]; a cold request takes the
    # tail. Both hand out p0 first, then p1.
    p = _buddy_order(make_machine, policy, MOV, 3)
    m = make_machine(64 * MiB, policy=policy, pcp=True, nr_cpus=2)
    assert m.alloc(0, migratetype=MOV, cold=True) == p[0]
    if policy == M35:
        assert sublist(m, MOV) == [p[2], p[1]]
        assert hot_list(m) == []  # list 0 is lists[UNMOVABLE] here
    else:
        assert cold_list(m) == [] and hot_list(m) == []
    assert m.alloc(0, migratetype=MOV, cold=True) == p[1]
    assert m.stat("pcp_refill") == (1 if policy == M35 else 2)
    check_invariants(m)


def _allocated_block(m: Machine, n: int = 64) -> int:
    """`n` MOVABLE pages allocated, the lists drained: returns the lowest (n-aligned) pfn."""
    pfns = m.alloc_many(0, n, migratetype=MOV)
    base = int(pfns.min())
    assert sorted(pfns.tolist()) == list(range(base, base + n))
    pcp.drain_pages(m)
    assert pcp.pcp_pages(m) == 0
    return base


def test_2_6_35_cold_free_goes_to_the_tail_of_its_sublist(pcp35: Machine,
                                                          pcp_machine: Machine) -> None:
    # 2.6.35 free_hot_cold_page: `if (cold) list_add_tail(...lists[migratetype]) else
    # list_add(...)`; 2.6.24 adds at the head of pcp[cold].
    for m in (pcp35, pcp_machine):
        base = _allocated_block(m)
        m.free(base, cold=False)
        m.free(base + 2, cold=True)
        m.free(base + 4, cold=False)
        check_invariants(m)
    b35 = min(sublist(pcp35, MOV))
    assert sublist(pcp35, MOV) == [b35 + 4, b35, b35 + 2]
    b24 = min(hot_list(pcp_machine))
    assert hot_list(pcp_machine) == [b24 + 4, b24] and cold_list(pcp_machine) == [b24 + 2]


def _retype_to_reserve(m: Machine, pfn: int) -> None:
    """What setup_zone_migrate_reserve does to a MOVABLE pageblock it picks: set its type to
    MIGRATE_RESERVE and move_freepages_block() its free pages to the RESERVE lists."""
    from fragsim.models.mm.buddy import move_freepages_block
    from fragsim.models.mm.constants import MIGRATE_RESERVE

    pbo = m.pageblock_order
    m.pageblock_type[pfn >> pbo] = MIGRATE_RESERVE
    move_freepages_block(m.pages, m.zones[Z], pfn, MIGRATE_RESERVE, pbo)


def test_2_6_35_reserve_page_goes_to_the_movable_sublist(pcp35: Machine,
                                                          pcp_machine: Machine) -> None:
    from fragsim.models.mm.constants import MIGRATE_RESERVE

    # "treat RESERVE as movable pages": the page is queued on lists[MOVABLE] with its saved
    # type (set_page_private before the remap) RESERVE; draining frees it by that type.
    m = pcp35
    base = _allocated_block(m)
    _retype_to_reserve(m, base)
    m.free(base + 5)
    assert sublist(m, MOV) == [base + 5] and m.pages[base + 5]["mt"] == MIGRATE_RESERVE
    check_invariants(m)
    pcp.drain_pages(m)
    assert free_list_of(m, 0, MIGRATE_RESERVE) == [base + 5]
    # 2.6.24 has no sublists: the page is at the head of pcp[0], queued as RESERVE.
    m = pcp_machine
    base = _allocated_block(m)
    _retype_to_reserve(m, base)
    m.free(base + 5)
    assert hot_list(m) == [base + 5] and m.pages[base + 5]["mt"] == MIGRATE_RESERVE
    check_invariants(m)


def free_list_of(m: Machine, order: int, mt: int) -> list[int]:
    out: list[int] = []
    pfn = int(m.zones[Z]["head"][order, mt])
    while pfn >= 0:
        out.append(pfn)
        pfn = int(m.pages[pfn]["next"])
    return out


@pytest.mark.parametrize("policy", ["mobility", M35])
def test_drain_uses_the_saved_type_on_2_6_35(make_machine: MakeMachine, policy: str) -> None:
    # A MOVABLE page freed to the pcp, then its pageblock made RESERVE, then drained:
    # 2.6.35 free_pcppages_bulk calls __free_one_page(page, zone, 0, page_private(page)), so it
    # goes to the MOVABLE list; 2.6.24's __free_one_page reads the pageblock's type now: RESERVE.
    from fragsim.models.mm.constants import MIGRATE_RESERVE

    m = make_machine(64 * MiB, policy=policy, pcp=True, nr_cpus=2)
    base = _allocated_block(m)
    m.free(base + 5)
    _retype_to_reserve(m, base)
    assert m.pages[base + 5]["mt"] == MOV  # saved at free
    pcp.drain_pages(m)
    got = MOV if policy == M35 else MIGRATE_RESERVE
    assert free_list_of(m, 0, got) == [base + 5]
    check_invariants(m)


@pytest.mark.parametrize("policy", ["mobility", M35])
def test_bulk_free_round_robins_over_the_sublists(make_machine: MakeMachine, policy: str) -> None:
    # 17 MOVABLE pages m0..m16 freed hot, then one page u of an UNMOVABLE pageblock: count 18 >=
    # high 18 frees batch 3.
    # 2.6.35 free_pcppages_bulk(zone, 3, pcp): migratetype 0 -> 1 (RECLAIMABLE, empty,
    # batch_free 1) -> 2 (MOVABLE, batch_free 2): m0, m1 from its tail; then batch_free 1,
    # migratetype 0 (UNMOVABLE): u. 2.6.24 frees the 3 oldest of the one hot list: m0, m1, m2.
    m = make_machine(64 * MiB, policy=policy, pcp=True, nr_cpus=2)
    movable = m.alloc_many(0, 17, migratetype=MOV).tolist()
    u = m.alloc(0, migratetype=UNMOV)
    pcp.drain_pages(m)
    pbo = m.pageblock_order
    assert m.pageblock_type[u >> pbo] == UNMOV
    assert all(m.pageblock_type[p >> pbo] == MOV for p in movable)
    drains0, free0 = m.stat("pcp_drain"), m.free_pages()
    for p in movable:
        m.free(p)
    m.free(u)
    assert m.stat("pcp_drain") == drains0 + 1 and m.free_pages() == free0 + 3
    on_lists = [q for lst in range(3) for q in pcp.pcp_list(m, Z, 0, lst)]
    back = sorted(set(movable + [u]) - set(on_lists))
    if policy == M35:
        assert back == sorted([movable[0], movable[1], u])
        assert sublist(m, MOV) == movable[:1:-1] and sublist(m, UNMOV) == []
    else:
        assert back == sorted(movable[:3])
        assert hot_list(m) == [u] + movable[:2:-1]
    check_invariants(m)


@pytest.mark.parametrize("policy", ["mobility", M35])
def test_drain_empties_every_list(make_machine: MakeMachine, policy: str) -> None:
    m = make_machine(64 * MiB, policy=policy, pcp=True, nr_cpus=2)
    free0 = m.free_pages()
    pfns = [m.alloc(0, migratetype=mt, cpu=cpu, cold=cold)
            for mt in (UNMOV, RECL, MOV) for cpu in (0, 1) for cold in (False, True)]
    for i, p in enumerate(pfns):
        m.free(p, cpu=i % 2, cold=bool(i % 3 == 0))
    check_invariants(m)
    n = pcp.pcp_pages(m)
    assert n > 0
    assert pcp.drain_pages(m) == n and pcp.pcp_pages(m) == 0
    assert m.free_pages() == free0
    check_invariants(m)


def test_invariants_catch_a_page_on_the_wrong_sublist(pcp35: Machine) -> None:
    m = pcp35
    m.alloc(0, migratetype=MOV)
    p = sublist(m, MOV)[0]
    m.pages[p]["mt"] = UNMOV
    with pytest.raises(InvariantError, match="lists\\[2\\]"):
        check_invariants(m)


_OPS = st.lists(st.tuples(st.booleans(), st.integers(0, 2), st.integers(0, 1), st.booleans(),
                          st.integers(0, 10**6)), max_size=120)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
@pytest.mark.parametrize("policy", ["mobility", M35])
def test_random_hot_cold_traffic_keeps_the_lists_sound(make_machine: MakeMachine, policy: str,
                                                       ops: list[tuple[bool, int, int, bool, int]]
                                                       ) -> None:
    # Order-0 allocations of every type and frees on two cpus, hot and cold: after each step
    # the allocator's invariants hold (both layouts) and no cpu's lists reach `high`
    # (free_hot_cold_page frees a batch the moment they do; a refill adds at most `batch`).
    m = make_machine(64 * MiB, policy=policy, pcp=True, nr_cpus=2)
    zone = m.zones[Z]
    live: list[int] = []
    for is_alloc, mt, cpu, cold, pick in ops:
        if is_alloc or not live:
            pfn = m.alloc(0, migratetype=mt, cpu=cpu, cold=cold)
            assert pfn >= 0
            live.append(pfn)
        else:
            assert m.free(live.pop(pick % len(live)), cpu=cpu, cold=cold) == FREE_OK
        if policy == M35:
            totals = zone["pcp_count"].sum(axis=1)
            assert (totals < zone["pcp_high"][0] + zone["pcp_batch"][0]).all()
        check_invariants(m)
    assert pcp.drain_pages(m) >= 0 and pcp.pcp_pages(m) == 0
    check_invariants(m)

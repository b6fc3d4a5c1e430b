"""6.1's per-order per-cpu lists (`models.mm.pcp_6_1`) against 6.1 `mm/page_alloc.c`, by hand.

unifreq/linux-6.1.y 07badeaa: `order_to_pindex`, `rmqueue_pcplist`/`__rmqueue_pcplist`,
`rmqueue_bulk`, `free_unref_page`/`free_unref_page_commit`, `nr_pcp_high`, `nr_pcp_free`,
`free_pcppages_bulk`, `drain_pages_zone`, `zone_batchsize`, `zone_highsize`.

The 64 MiB flat 6.1 machine has 16384 present pages in its Normal zone: zone_batchsize =
min(16384 >> 10, 256) / 4 = 4, rounddown_pow_of_two(4 + 2) - 1 = 3; low watermark 320 (6.1
watermark_scale_factor 10), so with 2 cpus zone_highsize = 320 / 2 = 160.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fragsim.models.mm import pcp, probes, reclaim
from fragsim.models.mm import pcp_6_1 as p61
from fragsim.models.mm.constants import (
    ALLOC_HARDER,
    ALLOC_WMARK_MIN,
    FREE_OK,
    KIND_ANON,
    MIGRATE_HIGHATOMIC,
    MIGRATE_ISOLATE,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    PG_BUDDY,
    PG_PCP,
    WMARK_LOW,
    ZONE_DMA,
    ZONE_NORMAL,
    ZONE_RECLAIM_ACTIVE,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.invariants import InvariantError, check_invariants
from fragsim.models.mm.kswapd_6_1 import balance_pgdat_6_1
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.migrate import migrate_page
from fragsim.models.mm.profiles import machine_config
from fragsim.models.mm.rmqueue_6_15 import move_freepages_block_6_15
from fragsim.models.mm.state import NR_PCP_LISTS_6_1
from tests.test_nojit import assert_pure_python_matches

Z = ZONE_NORMAL
UNMOV, RECL, MOV = MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE
PBO = 9  # x86_64 pageblock_order, the THP order


def make(kernel: str = "6.1", memory: int = 64 * MiB, **kw: object) -> Machine:
    kw.setdefault("pcp", True)
    kw.setdefault("nr_cpus", 2)
    return Machine(machine_config(kernel, memory=memory, **kw))


def plist(m: Machine, pindex: int, cpu: int = 0) -> list[int]:
    return pcp.pcp_list(m, Z, cpu, pindex)


def nr_pages(m: Machine, cpu: int = 0) -> int:
    return int(m.zones[Z]["pcp_nr_pages"][cpu])


def buddy_blocks(kernel: str, order: int, mt: int, n: int, memory: int = 64 * MiB) -> list[int]:
    """What the buddy allocator alone (`__rmqueue`, no per-cpu lists) hands out, in order."""
    ref = make(kernel, memory, pcp=False)
    return [ref.alloc(order, migratetype=mt) for _ in range(n)]


# --- sizes and indices --------------------------------------------------------------------------
@pytest.mark.parametrize(("present", "batch"), [
    (4096, 0),  # 4 >> 2 = 1 -> rounddown_pow_of_two(1) - 1 = 0 (then max(1, 0))
    (8192, 1),  # 8 / 4 = 2 -> 3 -> 2 - 1
    (16384, 3),
    (65536, 15),
    (262144, 63),  # 256 / 4 = 64 -> 96 -> 64 - 1 (2.6.24: capped at 512 KiB -> 31)
    (1 << 22, 63),  # min(4096, SZ_1M / PAGE_SIZE = 256) -> 63
])
def test_zone_batchsize_by_hand(present: int, batch: int) -> None:
    assert p61.zone_batchsize(present) == batch


def test_1_mib_cap_differs_from_2_6_24() -> None:
    assert p61.zone_batchsize(262144) == 63 and pcp.zone_batchsize(262144) == 31


def test_zone_highsize_by_hand() -> None:
    # total_pages = low_wmark_pages(zone) / nr_split_cpus, at least batch << 2.
    assert p61.zone_highsize(320, 3, 2) == 160
    assert p61.zone_highsize(320, 3, 1) == 320
    assert p61.zone_highsize(40, 3, 8) == 12
    assert p61.zone_highsize(0, 1, 1) == 4


def test_machine_marks_follow_the_low_watermark() -> None:
    m = make()
    zone = m.zones[Z]
    assert int(zone["watermark"][WMARK_LOW]) == 320
    assert list(zone["pcp_high"]) == [160, 0] and list(zone["pcp_batch"]) == [3, 0]
    assert int(m.node[0]["pcp_per_order"]) == 1 and int(m.node[0]["pcp_thp"]) == 1
    # setup_per_zone_wmarks() -> zone_pcp_update(zone, 0): a new min_free_kbytes moves high.
    m.set_min_free_kbytes(64)
    low = int(zone["watermark"][WMARK_LOW])
    assert int(zone["pcp_high"][0]) == max(low // 2, 3 << 2)
    # Older presets keep their marks and lists.
    assert int(make("2.6.35").node[0]["pcp_per_order"]) == 0
    assert list(make("2.6.24").zones[Z]["pcp_high"]) == [18, 6]


def test_small_zone_has_batch_one() -> None:
    # x86_64 zones layout: the DMA zone (16 MiB, 4096 pages) gets batch max(1, 0) = 1.
    m = make(memory=256 * MiB, layout="zones")
    assert int(m.zones[ZONE_DMA]["pcp_batch"][0]) == 1
    assert int(m.zones[ZONE_DMA]["pcp_high"][0]) == max(
        int(m.zones[ZONE_DMA]["watermark"][WMARK_LOW]) // 2, 4)


def test_pindex_by_hand() -> None:
    nd = make().node[0]
    assert NR_PCP_LISTS_6_1 == 14 and p61.NR_LOWORDER_PCP_LISTS == 12
    assert p61.order_to_pindex(MOV, 0) == 2 and p61.order_to_pindex(UNMOV, 1) == 3
    assert p61.order_to_pindex(MOV, 2) == 8 and p61.order_to_pindex(RECL, 3) == 10
    assert p61.order_to_pindex(UNMOV, PBO) == p61.order_to_pindex(RECL, PBO) == 12
    assert p61.order_to_pindex(MOV, PBO) == 13
    assert [p61.pindex_to_order(nd, i) for i in range(14)] == [0] * 3 + [1] * 3 + [2] * 3 \
        + [3] * 3 + [PBO, PBO]
    assert [bool(p61.pcp_allowed_order(nd, o)) for o in range(11)] == [
        True, True, True, True, False, False, False, False, False, True, False]
    no_thp = make(thp=False).node[0]
    assert not p61.pcp_allowed_order(no_thp, PBO)


# --- allocation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("memory", "order", "blocks"), [
    (64 * MiB, 0, 3),  # batch 3
    (64 * MiB, 2, 2),  # max(3 >> 2, 2)
    (64 * MiB, 3, 2),  # max(3 >> 3, 2)
    (1024 * MiB, 0, 63),  # batch 63
    (1024 * MiB, 1, 31),  # max(63 >> 1, 2)
    (1024 * MiB, 3, 7),  # max(63 >> 3, 2)
    (32 * MiB, 3, 1),  # batch 1: "Batch can be 1 for small zones", not scaled
])
def test_refill_takes_scaled_batch(memory: int, order: int, blocks: int) -> None:
    # __rmqueue_pcplist: rmqueue_bulk(zone, order, batch, list, MOVABLE, alloc_flags) adds each
    # block of __rmqueue at the tail, so the list is in the buddy's order; the head is taken.
    ref = buddy_blocks("6.1", order, MOV, blocks, memory)
    m = make(memory=memory)
    assert m.alloc(order, migratetype=MOV) == ref[0]
    pindex = p61.order_to_pindex(MOV, order)
    assert plist(m, pindex) == ref[1:]
    assert all(m.pages[q]["flags"] == PG_PCP and m.pages[q]["order"] == order
               and m.pages[q]["mt"] == MOV for q in ref[1:])
    assert nr_pages(m) == (blocks - 1) << order
    assert m.stat("pcp_refill") == 1
    # The next request of that order and type takes the head without a refill.
    if blocks > 1:
        assert m.alloc(order, migratetype=MOV) == ref[1]
        assert m.stat("pcp_refill") == 1
    check_invariants(m)


def test_order_3_refill_is_in_physical_order() -> None:
    # "Split buddy pages returned by expand() are received here in physical page order": one
    # max-order block split down, 7 order-3 blocks 8 pages apart, the lowest handed out.
    m = make(memory=1024 * MiB)
    first = m.alloc(3, migratetype=MOV)
    assert plist(m, 11) == [first + 8 * i for i in range(1, 7)]


def test_types_and_orders_have_their_own_lists() -> None:
    m = make()
    m.alloc(0, migratetype=MOV)
    m.alloc(1, migratetype=MOV)
    m.alloc(0, migratetype=UNMOV)
    assert m.stat("pcp_refill") == 3
    lens = [len(plist(m, i)) for i in range(NR_PCP_LISTS_6_1)]
    assert lens == [2, 0, 2, 0, 0, 1] + [0] * 8  # batch 3 at order 0, max(3 >> 1, 2) at 1
    check_invariants(m)


def test_thp_order_uses_the_thp_lists_and_order_4_the_buddy() -> None:
    m = make()
    free0 = m.free_pages()
    thp = m.alloc(PBO, migratetype=MOV)
    assert thp >= 0 and len(plist(m, 13)) == 1 and nr_pages(m) == 1 << PBO
    assert m.free_pages() == free0 - (2 << PBO)  # max(3 >> 9, 2) pageblocks left the buddy
    o4 = m.alloc(4, migratetype=MOV)  # not pcp_allowed_order: rmqueue_buddy
    assert m.stat("pcp_refill") == 1 and o4 >= 0
    assert m.free(o4) == FREE_OK and m.pages[o4]["flags"] & PG_BUDDY  # __free_pages_ok
    other = plist(m, 13)[0]
    assert m.free(thp) == FREE_OK
    # count 1024 >= high 160: free_pcppages_bulk(zone, nr_pcp_free = 3, pcp, 13) takes the
    # tail block, 512 pages at once ("count -= nr_pages" overshoots), and keeps the new head.
    assert plist(m, 13) == [thp] and nr_pages(m) == 1 << PBO
    assert m.pages[other]["flags"] & PG_BUDDY
    assert int(m.zones[Z]["pcp_free_factor"][0]) == 1
    check_invariants(m)
    # Without CONFIG_TRANSPARENT_HUGEPAGE pageblock_order is not a pcp order.
    n = make(thp=False)
    assert n.alloc(PBO, migratetype=MOV) >= 0 and n.stat("pcp_refill") == 0


@pytest.mark.parametrize("pcp_on", [False, True])
def test_atomic_high_order_request_takes_the_pcp_before_highatomic(pcp_on: bool) -> None:
    # 6.1 rmqueue(): a pcp_allowed_order request tries rmqueue_pcplist first; only
    # rmqueue_buddy tries __rmqueue_smallest(zone, order, MIGRATE_HIGHATOMIC) for ALLOC_HARDER.
    # The first order-1 atomic request (refill of max(3 >> 1, 2) blocks: 0 served, 2 queued)
    # makes its pageblock HIGHATOMIC (reserve_highatomic_pageblock moves its free pages). The
    # second gets pfn 2 either way: from the pcp list (HIGHATOMIC lists untouched) or, without
    # the lists, from free_area[1].free_list[HIGHATOMIC].
    flags = ALLOC_WMARK_MIN | ALLOC_HARDER
    m = make(pcp=pcp_on)
    assert m.alloc(1, migratetype=UNMOV, alloc_flags=flags) == 0
    assert m.pageblock_type[0] == MIGRATE_HIGHATOMIC
    assert int(m.zones[Z]["nr_reserved_highatomic"]) == 1 << PBO
    highatomic = m.zones[Z]["nr_free_mt"][:, MIGRATE_HIGHATOMIC]
    assert list(highatomic[:5]) == ([0, 0, 1, 1, 1] if pcp_on else [0, 1, 1, 1, 1])
    if pcp_on:
        assert plist(m, p61.order_to_pindex(UNMOV, 1)) == [2]
    assert m.alloc(1, migratetype=UNMOV, alloc_flags=flags) == 2
    assert list(highatomic[:5]) == [0, 0, 1, 1, 1]
    check_invariants(m)


def test_alloc_halves_free_factor() -> None:
    m = make()
    m.zones[Z]["pcp_free_factor"][0] = 5
    m.alloc(0, migratetype=MOV)
    assert int(m.zones[Z]["pcp_free_factor"][0]) == 2
    m.alloc(0, migratetype=MOV)
    assert int(m.zones[Z]["pcp_free_factor"][0]) == 1


# --- freeing ------------------------------------------------------------------------------------
def test_order_2_free_lands_on_the_pcp_not_the_buddy() -> None:
    # 6.1: free_the_page -> free_unref_page: list_add at the head of lists[pindex(MOVABLE, 2)],
    # pcp->count += 4, no buddy merge. 2.6.35 frees an order-2 block to the buddy at once.
    ref = buddy_blocks("6.1", 2, MOV, 2)
    m = make()
    a = m.alloc(2, migratetype=MOV)
    assert a == ref[0] and plist(m, 8) == [ref[1]]
    free0 = m.free_pages()
    assert m.free(a) == FREE_OK
    assert plist(m, 8) == [a, ref[1]] and nr_pages(m) == 8
    assert m.pages[a]["flags"] == PG_PCP and m.pages[a]["order"] == 2
    assert m.free_pages() == free0
    check_invariants(m)
    old = make("2.6.35")
    b = old.alloc(2, migratetype=MOV)
    free0 = old.free_pages()
    assert old.free(b) == FREE_OK and old.free_pages() == free0 + 4
    assert pcp.pcp_pages(old) == 0


def test_free_goes_to_the_pageblocks_type_list() -> None:
    # free_unref_page_prepare: migratetype = get_pfnblock_migratetype(page, pfn).
    m = make()
    u = m.alloc(0, migratetype=UNMOV)  # claims a pageblock for UNMOVABLE
    m.alloc(0, migratetype=MOV)
    pb = u >> PBO
    assert m.pageblock_type[pb] == UNMOV
    before = plist(m, 0)
    m.free(u, cpu=1)
    assert plist(m, 0, cpu=1) == [u] and plist(m, 0) == before
    check_invariants(m)


def test_highatomic_goes_to_the_movable_list_and_isolate_to_the_buddy() -> None:
    # "treat HIGHATOMIC and CMA as movable pages ... Place ISOLATE pages on the isolated list".
    m = make()
    pfns = [m.alloc(0, migratetype=MOV) for _ in range(4)]
    pcp.drain_pages(m)
    hi, iso = pfns[0], pfns[3]
    m.pageblock_type[hi >> PBO] = MIGRATE_HIGHATOMIC  # one pageblock holds them all
    m.free(hi, cpu=1)
    assert plist(m, 2, cpu=1) == [hi] and m.pages[hi]["mt"] == MIGRATE_HIGHATOMIC
    m.pageblock_type[iso >> PBO] = MIGRATE_ISOLATE
    free0 = m.free_pages()
    m.free(iso, cpu=1)
    assert m.pages[iso]["flags"] & PG_BUDDY and m.free_pages() == free0 + 1
    assert plist(m, 2, cpu=1) == [hi]
    # Drained, the HIGHATOMIC page goes to __free_one_page with its saved type.
    m.pageblock_type[iso >> PBO] = MIGRATE_HIGHATOMIC
    pcp.drain_local_pages(m, 1)
    assert m.pages[hi]["flags"] & PG_BUDDY
    assert int(m.zones[Z]["nr_free_mt"][:, MIGRATE_HIGHATOMIC].sum()) > 0


@pytest.mark.parametrize(("kernel", "list_mt"), [("6.1", MOV), ("6.15", UNMOV)])
def test_drain_uses_saved_type_on_6_1_and_pageblock_type_on_6_15(kernel: str,
                                                                 list_mt: int) -> None:
    # 6.1 free_pcppages_bulk: mt = get_pcppage_migratetype(page), the type saved at free;
    # 6.10+: get_pfnblock_migratetype(page, pfn) at drain time (free lists typed by pageblock).
    # The pageblock is retyped UNMOVABLE (its free pages moved) while the page is queued.
    m = make(kernel)
    pfns = [m.alloc(0, migratetype=MOV) for _ in range(3)]  # one refill of 3, list empty
    assert m.free(pfns[0], cpu=1) == FREE_OK and m.pages[pfns[0]]["mt"] == MOV
    start = pfns[0] & ~((1 << PBO) - 1)
    move_freepages_block_6_15(m.pages, m.zones[Z], m.pageblock_type, m.node[0], start, UNMOV)
    assert m.pageblock_type[start >> PBO] == UNMOV
    pcp.drain_local_pages(m, 1)
    assert m.pages[pfns[0]]["flags"] & PG_BUDDY  # its buddy pfns[1] is allocated: no merge
    assert m.pages[pfns[0]]["mt"] == list_mt
    if kernel == "6.15":
        check_invariants(m)  # typed free lists: on its pageblock's type's list


def _lists(m: Machine, cpu: int = 0) -> dict[int, list[int]]:
    return {i: plist(m, i, cpu) for i in range(NR_PCP_LISTS_6_1) if plist(m, i, cpu)}


def _queued(m: Machine) -> tuple[list[int], list[int], int]:
    """Three UNMOVABLE and two MOVABLE order-0 pages and a MOVABLE order-2 block, allocated on
    cpu 1 and freed on cpu 0 in that order (cpu 0's count stays below high, free_factor 0)."""
    u = [m.alloc(0, migratetype=UNMOV, cpu=1) for _ in range(3)]
    mv = [m.alloc(0, migratetype=MOV, cpu=1) for _ in range(2)]
    b = m.alloc(2, migratetype=MOV, cpu=1)
    for q in u + mv + [b]:
        assert m.free(q, cpu=0) == FREE_OK
    assert _lists(m) == {0: u[::-1], 2: mv[::-1], 8: [b]} and nr_pages(m) == 9
    assert int(m.zones[Z]["pcp_free_factor"][0]) == 0
    return u, mv, b


def _bulk(m: Machine, count: int, pindex: int) -> None:
    p61.free_pcppages_bulk(m.pages, m.zones[Z], m.pageblock_type, m.node[0], count, 0, pindex)


def test_free_pcppages_bulk_drains_the_given_list_first() -> None:
    # pindex 2 first: its tail m0 then m1 (count 5 -> 3); lists 3..7 are empty; list 8's block
    # counts 4 pages (count -> -1): done. The UNMOVABLE list is untouched.
    m = make()
    u, mv, b = _queued(m)
    free0 = m.free_pages()
    _bulk(m, 5, 2)
    assert _lists(m) == {0: u[::-1]} and nr_pages(m) == 3
    assert m.free_pages() == free0 + 6
    assert all(not m.pages[q]["flags"] & PG_PCP for q in mv + [b])
    check_invariants(m)


def test_free_pcppages_bulk_wraps_round_to_list_0() -> None:
    # Count 6 from pindex 8: the order-2 block (count -> 2); 9..13 are empty (max_pindex
    # narrows to 12 at 13) and pindex wraps to min_pindex 0, whose tail u0 (the oldest free)
    # and then u1 go. The MOVABLE order-0 list, after 0 in the round, is untouched.
    m = make()
    u, mv, b = _queued(m)
    _bulk(m, 6, 8)
    assert _lists(m) == {0: [u[2]], 2: mv[::-1]} and nr_pages(m) == 3
    # count = min(pcp->count, count): asking for more frees what there is.
    _bulk(m, 100, 8)
    assert _lists(m) == {} and nr_pages(m) == 0
    check_invariants(m)


def test_free_pcppages_bulk_differs_from_2_6_35_round_robin() -> None:
    # 2.6.35 takes batch_free pages per list round robin starting after list 0; 6.1 empties the
    # freed-to list first. Same frees (5 order-0 pages, 3 UNMOVABLE then 2 MOVABLE), count 3.
    m = make()
    u, mv, _ = _queued(m)
    _bulk(m, 3, 0)  # from list 0: u0, u1, u2
    assert _lists(m) == {2: mv[::-1], 8: [_]}
    old = make("2.6.35")
    u35 = [old.alloc(0, migratetype=UNMOV, cpu=1) for _ in range(3)]
    m35 = [old.alloc(0, migratetype=MOV, cpu=1) for _ in range(2)]
    for q in u35 + m35:
        old.free(q, cpu=0)
    pcp.free_pcppages_bulk(old.pages, old.zones[Z], old.pageblock_type, old.node[0], 3, 0)
    # migratetype 1 (empty, batch_free 1), 2 (batch_free 2: m0, m1), then 0: u0.
    assert pcp.pcp_list(old, Z, 0, UNMOV) == [u35[2], u35[1]]
    assert pcp.pcp_list(old, Z, 0, MOV) == []


def test_high_and_free_factor_batches() -> None:
    # high 12 (min_free_kbytes 0: low 0, so batch << 2), batch 3: at count >= 12 nr_pcp_free
    # frees batch << free_factor clamped to [3, 12 - 3], free_factor rising while below 9:
    # 3 (factor -> 1), 6 (-> 2), 12 -> 9 (factor stays 2), 9.
    m = make()
    m.set_min_free_kbytes(0)
    assert list(m.zones[Z]["pcp_high"]) == [12, 0]
    pfns = [m.alloc(0, migratetype=MOV, cpu=1) for _ in range(60)]
    freed: list[int] = []
    for q in pfns:
        before = nr_pages(m)
        m.free(q, cpu=0)
        if nr_pages(m) <= before:
            freed.append(before + 1 - nr_pages(m))
    assert freed[:4] == [3, 6, 9, 9]
    assert int(m.zones[Z]["pcp_free_factor"][0]) == 2
    check_invariants(m)


def test_high_order_free_after_a_bulk_free_frees_everything() -> None:
    # free_high = free_factor && order && order <= PAGE_ALLOC_COSTLY_ORDER: nr_pcp_high
    # returns 0 and nr_pcp_free pcp->count: the whole pcp goes back.
    m = make()
    m.set_min_free_kbytes(0)
    pfns = [m.alloc(0, migratetype=MOV, cpu=1) for _ in range(12)]
    b = m.alloc(1, migratetype=MOV, cpu=1)
    for q in pfns:
        m.free(q, cpu=0)
    assert int(m.zones[Z]["pcp_free_factor"][0]) == 1 and nr_pages(m) == 9
    m.free(b, cpu=0)
    assert nr_pages(m) == 0 and m.pages[b]["flags"] & PG_BUDDY
    check_invariants(m)


def test_reclaim_active_lowers_high() -> None:
    # nr_pcp_high under ZONE_RECLAIM_ACTIVE: min(batch << 2, high) = 12 instead of 160.
    m = make()
    pfns = [m.alloc(0, migratetype=MOV, cpu=1) for _ in range(20)]
    m.zones[Z]["flags"] |= ZONE_RECLAIM_ACTIVE
    for q in pfns[:11]:
        m.free(q, cpu=0)
    assert nr_pages(m) == 11
    m.free(pfns[11], cpu=0)
    assert nr_pages(m) == 12 - 3
    m.zones[Z]["flags"] &= ~ZONE_RECLAIM_ACTIVE
    for q in pfns[12:]:
        m.free(q, cpu=0)
    assert nr_pages(m) == 17


def test_kswapd_clears_reclaim_active() -> None:
    m = make()
    balance_pgdat_6_1(m, 0, Z)
    assert not int(m.zones[Z]["flags"]) & ZONE_RECLAIM_ACTIVE


# --- drain --------------------------------------------------------------------------------------
def test_drain_pages_zone_in_chunks_of_batch_shifted() -> None:
    # drain_pages_zone: free_pcppages_bulk(min(count, batch << 5 = 96)) until empty: 150 pages
    # take two calls.
    m = make()
    pfns = [m.alloc(0, migratetype=MOV, cpu=1) for _ in range(150)]
    for q in pfns:
        m.free(q, cpu=0)
    assert nr_pages(m) == 150
    drains = m.stat("pcp_drain")
    assert pcp.drain_local_pages(m, 0) == 150
    assert m.stat("pcp_drain") == drains + 2 and nr_pages(m) == 0
    check_invariants(m)


def test_drain_puts_everything_back() -> None:
    m = make()
    free0 = m.free_pages()
    live = [m.alloc(o, migratetype=mt, cpu=c) for o in (0, 1, 2, 3, PBO)
            for mt in (UNMOV, RECL, MOV) for c in (0, 1)]
    for q in live:
        m.free(q, cpu=1)
    assert pcp.pcp_pages(m) == int(m.zones["pcp_nr_pages"].sum()) > 0
    assert pcp.drain_pages(m) > 0
    assert pcp.pcp_pages(m) == 0 and not (m.pages["flags"] & PG_PCP).any()
    assert m.free_pages() == free0
    check_invariants(m)


def test_invariants_catch_a_wrong_count() -> None:
    m = make()
    m.alloc(2, migratetype=MOV)
    m.zones[Z]["pcp_nr_pages"][0] += 1
    with pytest.raises(InvariantError, match="pcp->count"):
        check_invariants(m)
    m.zones[Z]["pcp_nr_pages"][0] -= 1
    head = plist(m, 8)[0]
    m.pages[head]["mt"] = UNMOV
    with pytest.raises(InvariantError, match=r"queued as migratetype 0 on pcp->lists\[8\]"):
        check_invariants(m)


# --- random traffic -----------------------------------------------------------------------------
_ORDERS = (0, 0, 0, 1, 2, 3, 4, PBO)
_OPS = st.lists(st.tuples(st.integers(0, 9), st.integers(0, len(_ORDERS) - 1),
                          st.integers(0, 2), st.integers(0, 1), st.integers(0, 10**6)),
                max_size=150)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
@pytest.mark.parametrize("kernel", ["6.1", "6.15"])
def test_random_traffic_keeps_the_lists_sound(kernel: str,
                                              ops: list[tuple[int, int, int, int, int]]) -> None:
    # Allocations of every pcp order (and 4, which bypasses them), frees on either cpu and
    # drains: after each step the invariants hold (lists, orders, saved types, pcp->count,
    # free + allocated + queued = present), and everything drains back.
    m = make(kernel, min_free_kbytes=256)
    live: list[int] = []
    for what, oi, mt, cpu, pick in ops:
        if what == 9:
            pcp.drain_local_pages(m, cpu)
        elif what < 5 or not live:
            pfn = m.alloc(_ORDERS[oi], migratetype=mt, cpu=cpu)
            if pfn >= 0:
                live.append(pfn)
        else:
            assert m.free(live.pop(pick % len(live)), cpu=cpu) == FREE_OK
        check_invariants(m)
    for q in live:
        m.free(q, cpu=0)
    pcp.drain_pages(m)
    assert pcp.pcp_pages(m) == 0
    check_invariants(m)
    assert m.free_pages() == int(m.zones["present_pages"].sum())


def test_many_alloc_free_rounds_on_the_6_1_preset() -> None:
    # A longer seeded run (mixed orders, 4 cpus, memory pressure from a small machine).
    rng = np.random.default_rng(7)
    m = make(memory=32 * MiB, nr_cpus=4)
    live: list[int] = []
    for step in range(4000):
        if live and rng.random() < 0.48:
            q = live.pop(int(rng.integers(len(live))))
            assert m.free(q, cpu=int(rng.integers(4))) == FREE_OK
        else:
            o = int(rng.choice(_ORDERS))
            pfn = m.alloc(o, migratetype=int(rng.integers(3)), cpu=int(rng.integers(4)))
            if pfn >= 0:
                live.append(pfn)
        if step % 250 == 0:
            check_invariants(m)
    check_invariants(m)
    assert m.stat("pcp_refill") > 0 and m.stat("pcp_drain") > 0
    assert pcp.drain_pages(m) >= 0 and pcp.pcp_pages(m) == 0
    check_invariants(m)


# --- the page array's readers ---------------------------------------------------------------------
def test_migrated_old_page_goes_to_the_pcp_on_6_1() -> None:
    # 6.1: the migrated page's last folio_put -> free_unref_page(page, 0) on the migrating cpu.
    m = make()
    old = int(reclaim.alloc_lru_pages(m, 1, KIND_ANON, owner=3)[0])
    new = m.alloc(0, migratetype=MOV, owner=-1)
    pcp.drain_pages(m)
    assert migrate_page(m.pages, m.zones, m.pageblock_type, m.node, old, new)
    assert m.pages[old]["flags"] == PG_PCP and plist(m, 2)[:1] == [old]
    check_invariants(m)


def test_failure_reasons_count_a_queued_high_order_block_whole() -> None:
    # An order-3 block on a per-cpu list is 8 pages no allocation may take: at order 1 its 4
    # aligned pairs are pcp_race blocks (its tail pages carry no flag of their own).
    m = make()
    m.alloc(3, migratetype=MOV)  # refill 2 blocks: one allocated, one queued on list 11
    queued = plist(m, 11)[0]
    assert m.pages[queued + 1]["flags"] == 0
    assert probes.failure_reasons(m, 1)["pcp_race"] == 4
    assert probes.failure_reasons(m, 3)["pcp_race"] == 1


# --- compiled and pure Python agree -------------------------------------------------------------
def scenario_pcp(kernel: str, out: str) -> None:
    """A seeded 6.1-lists scenario (mixed orders, two cpus, a watermark change, a drain); every
    state array and result saved to `out` (.npz)."""
    m = make(kernel, memory=32 * MiB)
    rng = np.random.default_rng(61)
    results: list[int] = []
    live: list[int] = []
    for step in range(400):
        if step == 200:
            m.set_min_free_kbytes(128)
        if step == 300:
            results.append(pcp.drain_local_pages(m, 1))
        cpu = int(rng.integers(2))
        if live and rng.random() < 0.45:
            results.append(m.free(live.pop(int(rng.integers(len(live)))), cpu=cpu))
            continue
        pfn = m.alloc(int(rng.choice(_ORDERS)), migratetype=int(rng.integers(3)), cpu=cpu)
        results.append(pfn)
        if pfn >= 0:
            live.append(pfn)
    check_invariants(m)
    np.savez(out, pages=m.pages, zones=m.zones, node=m.node, pageblock_type=m.pageblock_type,
             results=np.array(results))


@pytest.mark.parametrize("kernel", ["6.1", "6.15"])
def test_pure_python_matches_compiled(kernel: str, tmp_path: Path) -> None:
    compiled, pure = tmp_path / "compiled.npz", tmp_path / "pure.npz"
    scenario_pcp(kernel, str(compiled))
    a = assert_pure_python_matches(
        f"tests.test_pcp_6_1.scenario_pcp({kernel!r}, {str(pure)!r})", compiled, pure, kernel)
    assert int(a["zones"]["pcp_count"].sum()) > 0  # the lists were in use at the end

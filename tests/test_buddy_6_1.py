"""Hand-worked sequences through the 6.1 rules of the buddy core (`mobility-6.1`), each beside
2.6.35 (`mobility-2.6.35`) where the two kernels differ. Expected values are derived in the
comments from 6.1 `mm/page_alloc.c` (6.1.y, unifreq/linux-6.1.y 07badeaa) and 2.6.35's, not
from running the model.

Geometry "S" (as in test_buddy_golden): 512 KiB flat, MAX_ORDER 5 (max-order block 16 pages),
pageblock_order 4 (a pageblock is a max-order block), 128 pages = pageblocks 0..7,
min_free_kbytes 16 (pages_min 4, low 5, high 6). pageblock_order/2 = 2. ALLOC_NO_WATERMARKS is
used to fill memory without the watermarks getting in the way.
"""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.mm.alloc import WMARK_RULE_6_1, zone_watermark_ok
from fragsim.models.mm.constants import (
    ALLOC_HARDER,
    ALLOC_NO_WATERMARKS,
    ALLOC_WMARK_MIN,
    MIGRATE_HIGHATOMIC,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_RESERVE,
    MIGRATE_UNMOVABLE,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.highatomic import unreserve_highatomic_pageblock
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.state import ZONE_DTYPE
from tests.test_buddy_golden import free_list, last_extfrag, small_machine

UNMOV, RECL, MOV = MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE
HA = MIGRATE_HIGHATOMIC
M35, M61 = "mobility-2.6.35", "mobility-6.1"
NOWM = ALLOC_NO_WATERMARKS


def test_highatomic_takes_the_reserve_slot() -> None:
    # HIGHATOMIC replaced RESERVE (4.4); the two never coexist, so they share internal slot 3.
    assert HA == MIGRATE_RESERVE == 3


# --- boot: FPI_TO_TAIL, no MIGRATE_RESERVE ----------------------------------------------------

def test_boot_frees_to_the_tail_and_keeps_no_reserve() -> None:
    # 6.1 memblock_free_pages() -> __free_pages_core() frees with FPI_TO_TAIL: each max-order
    # block is added at the tail, so the lowest heads the list. There is no
    # setup_zone_migrate_reserve. 2.6.35 adds each at the head and makes pageblock 0 RESERVE.
    new, old = small_machine(M61), small_machine(M35)
    assert free_list(new, 4, MOV) == list(range(0, 128, 16))
    assert (new.pageblock_type == MOV).all()
    assert free_list(old, 4, MOV) == list(range(112, 0, -16))
    assert free_list(old, 4, MIGRATE_RESERVE) == [0]
    big = Machine(MachineConfig(memory=64 * MiB, policy=M61))
    assert free_list(big, 10, MOV) == list(range(0, 16384, 1024))


# --- __rmqueue_fallback ----------------------------------------------------------------------

def test_fallback_takes_ownership_of_a_max_order_block() -> None:
    # 64 MiB, UNMOVABLE order 0 on a fresh 6.1 machine: find_suitable_fallback at order 10
    # finds MOVABLE (head 0). 10 >= pageblock_order: change_pageblock_range retypes pageblocks
    # 0 and 1, the block moves to the tail of UNMOVABLE order 10, and __rmqueue's retry of
    # __rmqueue_smallest takes it and expands it: UNMOVABLE order o = [1 << o].
    m = Machine(MachineConfig(memory=64 * MiB, policy=M61))
    assert m.alloc(0, migratetype=UNMOV) == 0
    assert m.pageblock_type[:3].tolist() == [UNMOV, UNMOV, MOV]
    assert [free_list(m, o, UNMOV) for o in range(10)] == [[1 << o] for o in range(10)]
    assert m.stat("pageblock_claimed") == 2
    assert last_extfrag(m) == {"pfn": 0, "alloc_order": 0, "fallback_order": 10,
                               "alloc_migratetype": UNMOV, "fallback_migratetype": MOV,
                               "fragmenting": 0, "change_ownership": 1}
    check_invariants(m)


def _two_small_unmovable_blocks(policy: str) -> tuple[Machine, int]:
    """S with one UNMOVABLE pageblock holding free blocks of order 0 and 1 only, every MOVABLE
    page allocated. Returns the machine and that pageblock's first pfn, `base`.

    UNMOVABLE order 0 falls back to the MOVABLE order-4 head (6.1: 0; 2.6.35: 112) and takes its
    pageblock; expand leaves UNMOVABLE o3 [base+8], o2 [base+4], o1 [base+2], o0 [base+1].
    Then base+1, base+8 (order 3) and base+4 (order 2) are allocated, and base+1 is freed
    again (its buddy is allocated; its higher buddy base+2 is a free order-1 block, so both
    kernels add it at the tail, alone on its list): UNMOVABLE o0 [base+1], o1 [base+2]. The
    MOVABLE order-4 blocks left are all allocated (2.6.35 keeps its free RESERVE block 0).
    """
    m = small_machine(policy)
    base = m.alloc(0, migratetype=UNMOV)
    assert m.alloc(0, migratetype=UNMOV) == base + 1
    assert m.alloc(3, migratetype=UNMOV) == base + 8
    assert m.alloc(2, migratetype=UNMOV) == base + 4
    m.free(base + 1)
    n = len(free_list(m, 4, MOV))
    assert (m.alloc_many(4, n, migratetype=MOV, alloc_flags=NOWM) >= 0).all()
    assert free_list(m, 0, UNMOV) == [base + 1] and free_list(m, 1, UNMOV) == [base + 2]
    assert [p for o in range(5) for p in free_list(m, o, MOV)] == []
    return m, base


def test_movable_fallback_steals_the_smallest_block() -> None:
    # MOVABLE order 0, nothing on the MOVABLE or RECLAIMABLE lists.
    # 6.1: largest first, order 1 has UNMOVABLE [base+2], but can_steal_fallback(1, MOVABLE) is
    # false (1 < 4/2) and 1 > 0: "goto find_smallest": order 0 has UNMOVABLE [base+1], which
    # steal_suitable_fallback (whole_block false) moves alone to MOVABLE; the retry allocates
    # it. The order-1 block stays whole.
    # 2.6.35: the largest block, base+2 (order 1, no move as 1 < 2), expanded on the UNMOVABLE
    # list: base+3 joins order 0 at the head.
    new, nbase = _two_small_unmovable_blocks(M61)
    old, obase = _two_small_unmovable_blocks(M35)
    assert (nbase, obase) == (0, 112)
    assert new.alloc(0, migratetype=MOV, alloc_flags=NOWM) == nbase + 1
    assert free_list(new, 1, UNMOV) == [nbase + 2] and free_list(new, 0, UNMOV) == []
    assert last_extfrag(new) == {"pfn": nbase + 1, "alloc_order": 0, "fallback_order": 0,
                                 "alloc_migratetype": MOV, "fallback_migratetype": UNMOV,
                                 "fragmenting": 1, "change_ownership": 0}
    assert old.alloc(0, migratetype=MOV, alloc_flags=NOWM) == obase + 2
    assert free_list(old, 1, UNMOV) == [] and free_list(old, 0, UNMOV) == [obase + 3, obase + 1]
    assert last_extfrag(old)["fallback_order"] == 1
    for m in (new, old):
        check_invariants(m)


@pytest.mark.parametrize(("policy", "base", "claimed"), [
    (M61, 112, True),
    (M35, 16, False),
])
def test_unmovable_fallback_claims_a_block_full_of_unmovable_like_pages(
        policy: str, base: int, claimed: bool) -> None:
    # Every MOVABLE order-4 block but the last on the list is allocated (6.1 leaves 112, 2.6.35
    # leaves 16), then 12 MOVABLE order-0 pages from it: base..base+11 (expand's halves are taken
    # lowest first), leaving the order-2 block base+12. The pages are not on an LRU.
    # UNMOVABLE order 0 then falls back to MOVABLE order 2, whose pageblock's free pages move.
    # 6.1 steal_suitable_fallback: free_pages 4, movable_pages (PageLRU) 0; a non-movable
    # request in a MOVABLE pageblock counts the other 12 as alike: 4 + 12 >= 8, claim.
    # 2.6.35: moved 4 < 8, no claim.
    m = small_machine(policy)
    n = len(free_list(m, 4, MOV)) - 1
    assert (m.alloc_many(4, n, migratetype=MOV, alloc_flags=NOWM) >= 0).all()
    assert free_list(m, 4, MOV) == [base]
    pfns = m.alloc_many(0, 12, migratetype=MOV, alloc_flags=NOWM)
    assert pfns.tolist() == list(range(base, base + 12))
    assert m.alloc(0, migratetype=UNMOV, alloc_flags=NOWM) == base + 12
    assert bool(m.pageblock_type[base >> 4] == UNMOV) is claimed
    assert free_list(m, 1, UNMOV) == [base + 14] and free_list(m, 0, UNMOV) == [base + 13]
    assert last_extfrag(m)["change_ownership"] == 1
    check_invariants(m)


def test_reclaimable_steal_counts_lru_pages_as_not_alike() -> None:
    # The same, with the 12 pages on the LRU (PageLRU, "movable_pages"): alike =
    # 16 - (4 + 12) = 0, and 4 < 8 does not claim on 6.1 either; the free pages still move.
    m = small_machine(M61)
    assert (m.alloc_many(4, 7, migratetype=MOV, alloc_flags=NOWM) >= 0).all()
    pfns = m.alloc_many(0, 12, migratetype=MOV, alloc_flags=NOWM)
    m.pages["flags"][pfns] |= 0x04  # PG_LRU (lru.py would link them on a list too)
    assert m.alloc(0, migratetype=RECL, alloc_flags=NOWM) == 124
    assert m.pageblock_type[7] == MOV
    assert free_list(m, 1, RECL) == [126] and free_list(m, 0, RECL) == [125]


# --- __free_one_page -------------------------------------------------------------------------

@pytest.mark.parametrize(("policy", "pfns", "order3"), [
    (M61, (0, 8, 16, 32, 48), "head"),
    (M35, (112, 120, 96, 80, 64), "tail"),
])
def test_buddy_merge_likely_stops_below_max_order_minus_2(
        policy: str, pfns: tuple[int, ...], order3: str) -> None:
    # S: MAX_ORDER 5. 6.1 buddy_merge_likely returns false from order >= MAX_ORDER - 2 = 3;
    # 2.6.35 tests every order < MAX_ORDER - 1 = 4. MOVABLE requests of order 3, 3, 4, 4, 3
    # take a, a+8 (one pageblock), c, d (two more) and e, leaving e+8 on order 3 (6.1 takes
    # the lowest blocks first, 2.6.35 the highest). Free c: c = a ^ 16, its buddy is a's
    # allocated block; order 4 = MAX_ORDER-1, head. Free a+8: its buddy a is allocated, and its
    # higher_page a has higher_buddy a ^ 16 = c, a free order-4 block. 2.6.35 adds a+8 at the
    # tail of order 3, 6.1 (order 3 >= MAX_ORDER - 2) at the head.
    m = small_machine(policy)
    a, b, c, d, e = pfns
    got = [m.alloc(o, migratetype=MOV) for o in (3, 3, 4, 4, 3)]
    assert got == [a, b, c, d, e] and c == a ^ 16
    assert free_list(m, 3, MOV) == [e + 8]
    m.free(c)
    m.free(b)
    expected = [b, e + 8] if order3 == "head" else [e + 8, b]
    assert free_list(m, 3, MOV) == expected
    assert free_list(m, 4, MOV)[0] == c
    check_invariants(m)


def test_highatomic_pageblock_does_not_merge_past_pageblock_order() -> None:
    # 64 MiB 6.1: an ALLOC_HARDER UNMOVABLE order-9 request falls back to the MOVABLE
    # order-10 block 0 (pageblocks 0 and 1 become UNMOVABLE) and gets 0; expand leaves 512 on
    # UNMOVABLE order 9. Being high-order and atomic, its pageblock 0 is reserved HIGHATOMIC
    # (nothing free in it to move). Freeing 0: its buddy 512 is a free order-9 block, but at
    # order >= pageblock_order HIGHATOMIC is not mergeable with UNMOVABLE: no merge.
    # (2.6.35 has no such rule and would merge them into order 10.)
    m = Machine(MachineConfig(memory=64 * MiB, policy=M61))
    assert m.alloc(9, migratetype=UNMOV, alloc_flags=ALLOC_WMARK_MIN | ALLOC_HARDER) == 0
    assert m.pageblock_type[:2].tolist() == [HA, UNMOV]
    assert int(m.zones[2]["nr_reserved_highatomic"]) == 512
    m.free(0)
    assert free_list(m, 9, HA) == [0] and free_list(m, 9, UNMOV) == [512]
    assert free_list(m, 10, UNMOV) == []
    check_invariants(m)


# --- MIGRATE_HIGHATOMIC -----------------------------------------------------------------------

def test_highatomic_reserve_serves_atomic_high_order_requests_only() -> None:
    # S 6.1, managed 128: at most 128 / 100 + 16 = 17 pages reserved, i.e. one pageblock.
    # 1. UNMOVABLE order 1, ALLOC_HARDER: falls back to MOVABLE block 0 (change_pageblock_range:
    #    pageblock 0 UNMOVABLE), gets 0, expand leaves o3 [8], o2 [4], o1 [2]. Then
    #    reserve_highatomic_pageblock: pageblock 0 becomes HIGHATOMIC, its free blocks move to
    #    the HIGHATOMIC lists; nr_reserved_highatomic 16.
    m = small_machine(M61)
    harder = ALLOC_WMARK_MIN | ALLOC_HARDER
    assert m.alloc(1, migratetype=UNMOV, alloc_flags=harder) == 0
    assert m.pageblock_type[0] == HA
    assert [free_list(m, o, HA) for o in range(4)] == [[], [2], [4], [8]]
    assert all(free_list(m, o, UNMOV) == [] for o in range(5))
    assert int(m.zones[2]["nr_reserved_highatomic"]) == 16
    # 2. Another atomic order-1 request: rmqueue_buddy tries __rmqueue_smallest(HIGHATOMIC)
    #    first and gets 2. The pageblock is already HIGHATOMIC: nothing more is reserved.
    assert m.alloc(1, migratetype=UNMOV, alloc_flags=harder) == 2
    assert int(m.zones[2]["nr_reserved_highatomic"]) == 16
    # 3. An ordinary order-1 request never takes the reserve: no fallbacks[] row names it, so it
    #    falls back to MOVABLE block 16 and takes that pageblock.
    assert m.alloc(1, migratetype=UNMOV) == 16
    assert m.pageblock_type[1] == UNMOV
    assert free_list(m, 2, HA) == [4] and free_list(m, 3, HA) == [8]
    # 4. unreserve_highatomic_pageblock keeps a zone's last pageblock unless forced; forced, it
    #    gives pageblock 0 back to the request's type, its free blocks to the tails of that
    #    type's lists.
    args = (m.pages, m.zones, m.pageblock_type, m.node, 2, MOV)
    assert not unreserve_highatomic_pageblock(*args, 0)
    assert unreserve_highatomic_pageblock(*args, 1)
    assert m.pageblock_type[0] == MOV and int(m.zones[2]["nr_reserved_highatomic"]) == 0
    assert free_list(m, 2, MOV) == [4] and free_list(m, 3, MOV) == [8]
    assert free_list(m, 4, MOV) == list(range(32, 128, 16))
    check_invariants(m)


# --- zone_watermark_ok ------------------------------------------------------------------------

def _zone61(free: int, nr_free_mt: dict[tuple[int, int], int], reserved: int = 0) -> np.void:
    z = np.zeros(1, dtype=ZONE_DTYPE)
    z[0]["wmark_rule"] = WMARK_RULE_6_1
    z[0]["free_pages"] = free
    z[0]["nr_reserved_highatomic"] = reserved
    for (o, mt), n in nr_free_mt.items():
        z[0]["nr_free"][o] += n
        z[0]["nr_free_mt"][o, mt] = n
    return z[0]


def test_zone_watermark_ok_6_1() -> None:
    # 20 free pages: ten order-0, one order-1 and two order-2 MOVABLE blocks.
    zone = _zone61(20, {(0, MOV): 10, (1, MOV): 1, (2, MOV): 2})
    # Order 2, mark 16: free = 20 - 3 = 17 > 16, and an order-2 block exists: ok (2.6.24's
    # per-order loop fails it: test_zone_watermark_ok_per_order_loop).
    assert zone_watermark_ok(zone, 2, 16, 2, 0)
    # Order 3: no block of order >= 3: fails whatever the mark.
    assert not zone_watermark_ok(zone, 3, 0, 2, 0)
    # With 8 pages reserved HIGHATOMIC: order 0, mark 11: free = 20 - 8 = 12 > 11 ok; mark 12
    # fails; ALLOC_HARDER does not subtract the reserve and lowers min by a quarter.
    zone = _zone61(20, {(0, MOV): 12, (3, HA): 1}, reserved=8)
    assert zone_watermark_ok(zone, 0, 11, 2, 0)
    assert not zone_watermark_ok(zone, 0, 12, 2, 0)
    assert zone_watermark_ok(zone, 0, 12, 2, ALLOC_HARDER)
    # Order 3: only the HIGHATOMIC list has such a block: only ALLOC_HARDER may count it.
    assert not zone_watermark_ok(zone, 3, 0, 2, 0)
    assert zone_watermark_ok(zone, 3, 0, 2, ALLOC_HARDER)


# --- watermark_scale_factor -------------------------------------------------------------------

def test_watermark_scale_factor_sets_the_gaps() -> None:
    # 64 MiB flat, min_free_kbytes 1024: pages_min 256 (one zone, tmp 256). 6.1
    # __setup_per_zone_wmarks: gap = max(256 >> 2, 16384 * 10 // 10000) = max(64, 16) = 64:
    # low 320, high 384, as 2.6.24 (whose high is min + min/2 = 384 too). With the factor at
    # 100: gap = max(64, 163) = 163, low 419, high 582.
    m = Machine(MachineConfig(memory=64 * MiB, policy=M61, watermark_scale_factor=10))
    assert tuple(m.zones[2]["watermark"]) == (256, 320, 384)
    m = Machine(MachineConfig(memory=64 * MiB, policy=M61, watermark_scale_factor=100))
    assert tuple(m.zones[2]["watermark"]) == (256, 419, 582)
    with pytest.raises(ValueError, match="watermark_scale_factor 0 is out of range"):
        MachineConfig(memory=64 * MiB, watermark_scale_factor=0).resolved()

"""Hand-worked sequences through the 6.15 rules of the buddy core (`mobility-6.15`), each beside
6.1 (`mobility-6.1`) where the two kernels differ. Expected values are derived in the comments
from 6.15 `mm/page_alloc.c` (`__rmqueue`, `__rmqueue_claim`, `try_to_claim_block`,
`__rmqueue_steal`, `__free_one_page`, `reserve_highatomic_pageblock`,
`unreserve_highatomic_pageblock`, `__zone_watermark_ok`) and 6.1's, not from running the model.

Geometry "S" (test_buddy_golden): 512 KiB flat, MAX_ORDER 5, pageblock_order 4, 128 pages =
pageblocks 0..7; both kernels boot with FPI_TO_TAIL, so MOVABLE order 4 is [0, 16, ..., 112].
"""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.mm import pcp
from fragsim.models.mm.constants import (
    ALLOC_FRAGMENT_OK,
    ALLOC_HARDER,
    ALLOC_HIGH,
    ALLOC_NO_WATERMARKS,
    ALLOC_NOFRAGMENT,
    ALLOC_WMARK_MIN,
    MIGRATE_HIGHATOMIC,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    PG_LRU,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.gfp import GFP_ATOMIC, GFP_KERNEL
from fragsim.models.mm.highatomic import unreserve_highatomic_pageblock
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.profiles import machine_config
from fragsim.models.mm.rmqueue_6_15 import (
    RMQUEUE_NORMAL,
    RMQUEUE_STEAL,
    alloc_flags_nofragment,
    find_suitable_fallback_6_15,
    rmqueue_6_15,
)
from fragsim.models.mm.slowpath import alloc_pages
from fragsim.models.mm.state import ZONE_DTYPE
from fragsim.models.mm.wmark_6_15 import nr_free_pages_blocks, zone_watermark_ok_free_6_15
from tests.test_buddy_golden import free_list, last_extfrag

UNMOV, RECL, MOV, HA = MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE, MIGRATE_HIGHATOMIC
M61, M615 = "mobility-6.1", "mobility-6.15"
NOWM = ALLOC_NO_WATERMARKS


def _small(policy: str, defrag_mode: bool = False) -> Machine:
    return Machine(MachineConfig(memory=512 * 1024, policy=policy, max_order=5,
                                 pageblock_order=4, min_free_kbytes=16,
                                 defrag_mode=defrag_mode))


def _two_mixed_pageblocks(m: Machine) -> None:
    """S with pageblocks 0..5 allocated as order-4 MOVABLE blocks, and pageblocks 6 (96..111)
    and 7 (112..127) filled with MOVABLE order-0 pages (lowest first: expand's halves) of
    which 108..111 and 126..127 are freed again: MOVABLE o2 [108] and o1 [126]. 96..107 are
    marked PageLRU ("movable" to `try_to_claim_block`), 112..125 are not."""
    assert (m.alloc_many(4, 6, migratetype=MOV, alloc_flags=NOWM) >= 0).all()
    pfns = m.alloc_many(0, 32, migratetype=MOV, alloc_flags=NOWM)
    assert pfns.tolist() == list(range(96, 128))
    for p in (108, 109, 110, 111, 126, 127):
        m.free(p)
    m.pages["flags"][96:108] |= PG_LRU
    assert free_list(m, 2, MOV) == [108] and free_list(m, 1, MOV) == [126]
    assert [free_list(m, o, MOV) for o in (0, 3, 4)] == [[], [], []]


def test_claim_tries_lower_orders_where_6_1_steals_from_the_largest() -> None:
    # UNMOVABLE order 0 with only the two MOVABLE blocks free.
    # 6.1 __rmqueue_fallback: largest first: order 2, MOVABLE [108], can_steal (UNMOVABLE):
    # steal_suitable_fallback moves pageblock 6's free pages (just 108) to UNMOVABLE; free 4,
    # movable 12 (PageLRU), alike 16 - 16 = 0: 4 < 8, no claim. __rmqueue_smallest(0,
    # UNMOVABLE) takes 108 and leaves o1 [110], o0 [109] on UNMOVABLE lists inside a MOVABLE
    # pageblock. Pageblock 7 is untouched.
    # 6.15 __rmqueue_claim: order 2: try_to_claim_block(108) fails the same test, so order 1:
    # MOVABLE [126]: free 2, movable 0, alike 16 - 2 = 14: 16 >= 8: __move_freepages_block
    # makes pageblock 7 UNMOVABLE with 126 at the tail of UNMOVABLE o1; __rmqueue_smallest
    # takes 126 and leaves o0 [127]. Pageblock 6 is untouched.
    old, new = _small(M61), _small(M615)
    for m in (old, new):
        _two_mixed_pageblocks(m)
    assert old.alloc(0, migratetype=UNMOV, alloc_flags=NOWM) == 108
    assert old.pageblock_type[6:8].tolist() == [MOV, MOV]
    assert free_list(old, 1, UNMOV) == [110] and free_list(old, 0, UNMOV) == [109]
    assert free_list(old, 1, MOV) == [126]
    assert new.alloc(0, migratetype=UNMOV, alloc_flags=NOWM) == 126
    assert new.pageblock_type[6:8].tolist() == [MOV, UNMOV]
    assert free_list(new, 0, UNMOV) == [127] and free_list(new, 1, UNMOV) == []
    assert free_list(new, 2, MOV) == [108]
    assert new.stat("pageblock_claimed") == 1
    assert last_extfrag(new) == {"pfn": 126, "alloc_order": 0, "fallback_order": 1,
                                 "alloc_migratetype": UNMOV, "fallback_migratetype": MOV,
                                 "fragmenting": 1, "change_ownership": 1}


def test_steal_leaves_the_remainder_on_its_own_pageblock_type() -> None:
    # RECLAIMABLE order 0; only MOVABLE o2 [124] is free, in pageblock 7 whose other 12 pages
    # are PageLRU (alike 16 - (4 + 12) = 0: no claim on either kernel).
    # 6.1: steal_suitable_fallback moves 124 to RECLAIMABLE (whole_block), no claim, then
    # __rmqueue_smallest(RECLAIMABLE) splits it there: RECLAIMABLE o1 [126], o0 [125].
    # 6.15: __rmqueue_claim finds no claimable block (try_to_claim_block(124) fails, orders 1
    # and 0 are empty); __rmqueue_steal from order 0 up finds MOVABLE [124] at order 2 and
    # page_del_and_expand splits it in place: MOVABLE o1 [126], o0 [125], the pageblock's type.
    old, new = _small(M61), _small(M615)
    for m in (old, new):
        assert (m.alloc_many(4, 7, migratetype=MOV, alloc_flags=NOWM) >= 0).all()
        pfns = m.alloc_many(0, 12, migratetype=MOV, alloc_flags=NOWM)
        assert pfns.tolist() == list(range(112, 124))
        m.pages["flags"][pfns] |= PG_LRU
        assert m.alloc(0, migratetype=RECL, alloc_flags=NOWM) == 124
        assert m.pageblock_type[7] == MOV
    assert free_list(old, 1, RECL) == [126] and free_list(old, 0, RECL) == [125]
    assert free_list(old, 0, MOV) == []
    assert free_list(new, 1, MOV) == [126] and free_list(new, 0, MOV) == [125]
    assert free_list(new, 0, RECL) == [] and free_list(new, 1, RECL) == []
    assert new.stat("pageblock_claimed") == 0
    assert last_extfrag(new) == {"pfn": 124, "alloc_order": 0, "fallback_order": 2,
                                 "alloc_migratetype": RECL, "fallback_migratetype": MOV,
                                 "fragmenting": 1, "change_ownership": 0}


def test_movable_request_stops_claiming_below_half_a_pageblock() -> None:
    # find_suitable_fallback(..., claimable=true) returns -2 once should_try_claim_block says
    # no (a MOVABLE request below pageblock_order / 2 = 2), ending __rmqueue_claim; 6.15 then
    # steals the smallest block. UNMOVABLE pageblock 0 holds free o0 [1] and o1 [2] (as in
    # test_buddy_6_1's _two_small_unmovable_blocks), every MOVABLE page is allocated.
    m = _small(M615)
    assert m.alloc(0, migratetype=UNMOV) == 0
    assert m.alloc(0, migratetype=UNMOV) == 1
    assert m.alloc(3, migratetype=UNMOV) == 8
    assert m.alloc(2, migratetype=UNMOV) == 4
    m.free(1)
    assert (m.alloc_many(4, 7, migratetype=MOV, alloc_flags=NOWM) >= 0).all()
    zone = m.zones[2]
    assert find_suitable_fallback_6_15(zone, m.node[0], 1, MOV, 1) == -2
    assert find_suitable_fallback_6_15(zone, m.node[0], 1, MOV, 0) == UNMOV
    assert find_suitable_fallback_6_15(zone, m.node[0], 2, MOV, 1) == -1
    assert m.alloc(0, migratetype=MOV, alloc_flags=NOWM) == 1
    assert free_list(m, 1, UNMOV) == [2] and m.pageblock_type[0] == UNMOV
    check_invariants(m)


def test_mode_cache_goes_straight_to_stealing() -> None:
    # 6.15 __rmqueue's switch falls through from *mode: after a steal (RMQUEUE_STEAL) the next
    # call of the same rmqueue_bulk skips __rmqueue_smallest and __rmqueue_claim; a claim
    # resets the mode to RMQUEUE_NORMAL.
    m = _small(M615)
    args = (m.pages, m.zones[2], m.pageblock_type, m.node[0])
    # Fresh S: UNMOVABLE order 0 claims MOVABLE block 0 whole (order 4 >= pageblock_order):
    # the block itself is returned, expand leaves UNMOVABLE o3 [8], o2 [4], o1 [2], o0 [1].
    assert rmqueue_6_15(*args, 0, UNMOV, 0, RMQUEUE_NORMAL) == (0, RMQUEUE_NORMAL)
    assert [free_list(m, o, UNMOV) for o in range(4)] == [[1], [2], [4], [8]]
    # MOVABLE order 0 in RMQUEUE_STEAL mode: MOVABLE o4 [16] is not looked at; the steal from
    # order 0 up takes UNMOVABLE [1]. In NORMAL mode it would take 16.
    assert rmqueue_6_15(*args, 0, MOV, 0, RMQUEUE_STEAL) == (1, RMQUEUE_STEAL)
    assert rmqueue_6_15(*args, 0, MOV, 0, RMQUEUE_NORMAL) == (16, RMQUEUE_NORMAL)
    # Under ALLOC_NOFRAGMENT the STEAL mode finds nothing and fails, keeping its mode.
    assert rmqueue_6_15(*args, 0, MOV, ALLOC_NOFRAGMENT, RMQUEUE_STEAL) == (-1, RMQUEUE_STEAL)
    assert free_list(m, 1, UNMOV) == [2]


def test_rmqueue_bulk_keeps_one_mode_for_the_batch() -> None:
    # rmqueue_bulk(count 3, MOVABLE) on the machine of test_movable_request_stops_claiming:
    # call 1 (NORMAL): no MOVABLE page, claim ends at order 1 (-2), steal takes UNMOVABLE [1]
    # and sets RMQUEUE_STEAL; calls 2 and 3 steal at once: o1 [2] splits in place (its upper
    # half 3 to UNMOVABLE o0) and gives 2, then 3. The pages go to the per-cpu list queued as
    # MOVABLE, in the order taken.
    m = _small(M615)
    assert m.alloc(0, migratetype=UNMOV) == 0
    assert m.alloc(0, migratetype=UNMOV) == 1
    assert m.alloc(3, migratetype=UNMOV) == 8
    assert m.alloc(2, migratetype=UNMOV) == 4
    m.free(1)
    assert (m.alloc_many(4, 7, migratetype=MOV, alloc_flags=NOWM) >= 0).all()
    zone = m.zones[2]
    added = pcp.rmqueue_bulk(m.pages, zone, m.pageblock_type, m.node[0], 3, MOV, 0, 0, NOWM)
    assert added == 3
    got, p = [], int(zone["pcp_head"][0, 0])
    while p >= 0:
        got.append(p)
        p = int(m.pages[p]["next"])
    assert got == [1, 2, 3]
    assert all(free_list(m, o, UNMOV) == [] for o in range(4))


def test_defrag_mode_refuses_to_fragment_until_the_slow_path_gives_up() -> None:
    # The machine of test_claim_tries_lower_orders with defrag_mode: every allocation has
    # ALLOC_NOFRAGMENT (alloc_flags_nofragment / gfp_to_alloc_flags), so __rmqueue_claim starts
    # at pageblock_order (no free block of order 4) and __rmqueue_steal is skipped: the fast
    # path fails although 6 pages are free. GFP_ATOMIC cannot enter direct reclaim and never
    # reaches the "Reclaim/compaction failed to prevent the fallback" retry: it fails too.
    # GFP_KERNEL: reclaim finds nothing (no LRU lists here), should_reclaim_retry says no, and
    # the retry without ALLOC_NOFRAGMENT claims pageblock 7 (126) as 6.15 does without
    # defrag_mode.
    m = _small(M615, defrag_mode=True)
    _two_mixed_pageblocks(m)
    nd = m.node[0]
    assert alloc_flags_nofragment(nd, ALLOC_WMARK_MIN) == ALLOC_WMARK_MIN | ALLOC_NOFRAGMENT
    assert alloc_flags_nofragment(nd, ALLOC_FRAGMENT_OK) == ALLOC_FRAGMENT_OK
    assert m.alloc(0, migratetype=UNMOV, alloc_flags=ALLOC_WMARK_MIN) == -1
    assert not alloc_pages(m, 0, int(GFP_ATOMIC), migratetype=UNMOV).success
    assert m.pageblock_type[6:8].tolist() == [MOV, MOV]
    attempt = alloc_pages(m, 0, int(GFP_KERNEL), migratetype=UNMOV)
    assert attempt.pfn == 126
    assert m.pageblock_type[6:8].tolist() == [MOV, UNMOV]
    assert free_list(m, 2, MOV) == [108]
    # Without defrag_mode the fast path takes 126 at once.
    plain = _small(M615)
    _two_mixed_pageblocks(plain)
    assert plain.alloc(0, migratetype=UNMOV, alloc_flags=ALLOC_WMARK_MIN) == 126


def test_defrag_mode_still_claims_whole_pageblocks() -> None:
    # Under ALLOC_NOFRAGMENT __rmqueue_claim still takes a free block of order >=
    # pageblock_order: fresh S, UNMOVABLE order 0 gets block 0 as without defrag_mode.
    m = _small(M615, defrag_mode=True)
    assert m.alloc(0, migratetype=UNMOV) == 0
    assert m.pageblock_type[0] == UNMOV
    assert [free_list(m, o, UNMOV) for o in range(4)] == [[1], [2], [4], [8]]
    check_invariants(m)


def test_defrag_mode_is_refused_before_6_15() -> None:
    with pytest.raises(ValueError, match="kernel 6.1 has no vm.defrag_mode"):
        MachineConfig(memory=64 * MiB, policy=M61, defrag_mode=True).resolved()
    assert machine_config("6.15", memory=64 * MiB).defrag_mode is False
    assert machine_config("6.15", memory=64 * MiB, defrag_mode=True).defrag_mode is True


# --- __free_one_page --------------------------------------------------------------------------

def _s8(policy: str) -> Machine:
    """S with pageblock_order 3: pageblocks of 8 pages, so order-3 blocks merge across two."""
    return Machine(MachineConfig(memory=512 * 1024, policy=policy, max_order=5,
                                 pageblock_order=3, min_free_kbytes=16))


@pytest.mark.parametrize(("policy", "types"), [(M61, [UNMOV, MOV]), (M615, [UNMOV, UNMOV])])
def test_merge_retypes_the_buddy_pageblock(policy: str, types: list[int]) -> None:
    # UNMOVABLE order 3 takes MOVABLE block 0 (order 4 >= pageblock_order 3: pageblocks 0 and 1
    # become UNMOVABLE), leaving UNMOVABLE o3 [8]. The 7 other MOVABLE order-4 blocks are
    # allocated; MOVABLE order 3 then takes UNMOVABLE [8] whole (pageblock 1 back to MOVABLE).
    # Free 8 (buddy 0 allocated: MOVABLE o3 [8]), then free 0: at order 3 >= pageblock_order
    # the buddy 8 is in a MOVABLE pageblock, both mergeable: they merge into order 4 at 0 on
    # UNMOVABLE (pageblock 0's type). 6.15 "Match buddy type": set_pageblock_migratetype(8,
    # UNMOVABLE); 6.1 leaves pageblock 1 MOVABLE under an UNMOVABLE free block.
    m = _s8(policy)
    assert m.alloc(3, migratetype=UNMOV, alloc_flags=NOWM) == 0
    assert free_list(m, 3, UNMOV) == [8]
    assert (m.alloc_many(4, 7, migratetype=MOV, alloc_flags=NOWM) >= 0).all()
    assert m.alloc(3, migratetype=MOV, alloc_flags=NOWM) == 8
    assert m.pageblock_type[:2].tolist() == [UNMOV, MOV]
    m.free(8)
    assert free_list(m, 3, MOV) == [8]
    m.free(0)
    assert free_list(m, 4, UNMOV) == [0] and free_list(m, 3, MOV) == []
    assert m.pageblock_type[:2].tolist() == types
    check_invariants(m)


# --- MIGRATE_HIGHATOMIC -----------------------------------------------------------------------

def test_no_highatomic_reserve_when_one_percent_is_below_a_pageblock() -> None:
    # S, managed 128: 6.15 returns at once as 128 / 100 = 1 < 16; 6.1 reserves up to
    # 128 / 100 + 16 = 17 pages (test_buddy_6_1's test_highatomic_reserve_serves...).
    harder = ALLOC_WMARK_MIN | ALLOC_HARDER
    old, new = _small(M61), _small(M615)
    for m in (old, new):
        assert m.alloc(1, migratetype=UNMOV, alloc_flags=harder) == 0
    assert old.pageblock_type[0] == HA and int(old.zones[2]["nr_reserved_highatomic"]) == 16
    assert new.pageblock_type[0] == UNMOV and int(new.zones[2]["nr_reserved_highatomic"]) == 0
    assert [free_list(new, o, UNMOV) for o in range(4)] == [[], [2], [4], [8]]


@pytest.mark.parametrize(("policy", "reserved", "types_after"), [
    (M61, 512, [MOV, UNMOV]),
    (M615, 1024, [MOV, MOV]),
])
def test_highatomic_reserve_of_a_multi_pageblock_block(
        policy: str, reserved: int, types_after: list[int]) -> None:
    # 256 MiB flat (65536 pages, pageblock 512): 6.15 max_managed = ALIGN(655, 512) = 1024,
    # 6.1 655 + 512 = 1167. An atomic UNMOVABLE order-10 request takes MOVABLE block 0 whole
    # (both pageblocks UNMOVABLE). reserve_highatomic_pageblock: 6.1 retypes the page's one
    # pageblock and counts 512; 6.15 (order >= pageblock_order) change_pageblock_range over
    # both and counts 1 << 10. Freed, the block goes to HIGHATOMIC o10 (pageblock 0's type).
    # unreserve_highatomic_pageblock(force): 6.1 gives pageblock 0 back (-512) and moves the
    # block; 6.15 takes max(512, 1024) off the count, moves the block to MOVABLE and retypes
    # both pageblocks.
    m = Machine(MachineConfig(memory=256 * MiB, policy=policy))
    assert m.alloc(10, migratetype=UNMOV, alloc_flags=ALLOC_WMARK_MIN | ALLOC_HARDER) == 0
    expect = [HA, UNMOV] if policy == M61 else [HA, HA]
    assert m.pageblock_type[:2].tolist() == expect
    assert int(m.zones[2]["nr_reserved_highatomic"]) == reserved
    m.free(0)
    assert free_list(m, 10, HA) == [0]
    assert unreserve_highatomic_pageblock(m.pages, m.zones, m.pageblock_type, m.node, 2, MOV,
                                          1)
    assert int(m.zones[2]["nr_reserved_highatomic"]) == 0
    assert m.pageblock_type[:2].tolist() == types_after
    assert free_list(m, 10, MOV)[-1] == 0 and free_list(m, 10, HA) == []
    if policy == M615:
        check_invariants(m)


def test_order0_atomic_may_use_highatomic_after_failing() -> None:
    # 6.15 rmqueue_buddy: when __rmqueue fails, ALLOC_NON_BLOCK (the model's ALLOC_HARDER)
    # requests of any order take __rmqueue_smallest(HIGHATOMIC). 256 MiB: reserve pageblock 0
    # by an atomic order-9 request (claiming block 0, leaving o9 [512] UNMOVABLE), allocate
    # every other page, free 0: HIGHATOMIC o9 [0] is the only free block. An order-0
    # ALLOC_HARDER request then gets 0 (expand keeps the halves on HIGHATOMIC); an ordinary
    # one fails. (6.1 gives order 0 nothing from HIGHATOMIC.)
    for policy, expect in ((M615, 0), (M61, -1)):
        m = Machine(MachineConfig(memory=256 * MiB, policy=policy))
        assert m.alloc(9, migratetype=UNMOV, alloc_flags=ALLOC_WMARK_MIN | ALLOC_HARDER) == 0
        assert m.pageblock_type[0] == HA
        assert m.alloc(9, migratetype=UNMOV, alloc_flags=NOWM) == 512
        n = len(free_list(m, 10, MOV))
        assert (m.alloc_many(10, n, migratetype=MOV, alloc_flags=NOWM) >= 0).all()
        m.free(0)
        assert free_list(m, 9, HA) == [0]
        assert m.alloc(0, migratetype=UNMOV, alloc_flags=NOWM) == -1
        assert m.alloc(0, migratetype=UNMOV, alloc_flags=NOWM | ALLOC_HARDER) == expect


# --- watermarks -------------------------------------------------------------------------------

def _zone(free: int, nr_free_mt: dict[tuple[int, int], int], reserved: int = 0) -> np.void:
    z = np.zeros(1, dtype=ZONE_DTYPE)
    z[0]["free_pages"] = free
    z[0]["nr_reserved_highatomic"] = reserved
    for (o, mt), n in nr_free_mt.items():
        z[0]["nr_free"][o] += n
        z[0]["nr_free_mt"][o, mt] = n
    return z[0]


def test_zone_watermark_ok_6_15() -> None:
    # 20 free pages: 12 MOVABLE order 0, one HIGHATOMIC order-3 block (8 pages), one
    # pageblock (16 pages) reserved. 6.15 subtracts nr_free_highatomic (8), 6.1 the reserve
    # (16): order 0, mark 11: 20 - 8 = 12 > 11 passes on 6.15 (6.1: 4 <= 11 fails).
    zone = _zone(20, {(0, MOV): 12, (3, HA): 1}, reserved=16)
    ok = zone_watermark_ok_free_6_15
    assert ok(zone, 0, 11, 2, 0, 20)
    assert not ok(zone, 0, 12, 2, 0, 20)
    # ALLOC_HARDER alone (ALLOC_NON_BLOCK, e.g. GFP_NOWAIT) uses the reserves but no longer
    # lowers min (6.1: min - min/4): free 20 > 19 passes, 20 does not.
    assert ok(zone, 0, 19, 2, ALLOC_HARDER, 20)
    assert not ok(zone, 0, 20, 2, ALLOC_HARDER, 20)
    # ALLOC_HIGH (__GFP_HIGH): min/2; with ALLOC_HARDER a quarter of that more: mark 48 ->
    # 24 -> 18 < 20.
    assert not ok(zone, 0, 48, 2, ALLOC_HIGH, 20)
    assert ok(zone, 0, 48, 2, ALLOC_HIGH | ALLOC_HARDER, 20)
    # Order 3 needs the HIGHATOMIC block: only ALLOC_HIGHATOMIC (ALLOC_HARDER, order > 0).
    assert not ok(zone, 3, 0, 2, ALLOC_HIGH, 20)
    assert ok(zone, 3, 0, 2, ALLOC_HARDER, 20)


def test_nr_free_pages_blocks_counts_whole_free_pageblocks() -> None:
    # NR_FREE_PAGES_BLOCKS: free blocks of order >= pageblock_order (4 here), any type but
    # ISOLATE. Fresh S: all 128 pages; after one order-0 allocation 112 (block 0 is split).
    m = _small(M615)
    assert nr_free_pages_blocks(m.zones[2], 4) == 128
    assert m.alloc(0, migratetype=MOV) == 0
    assert nr_free_pages_blocks(m.zones[2], 4) == 112
    assert int(m.zones[2]["free_pages"]) == 127


# --- invariants -------------------------------------------------------------------------------

def test_invariants_know_the_typed_free_lists() -> None:
    # The 6.1 state of test_steal_leaves_the_remainder... (RECLAIMABLE blocks inside a MOVABLE
    # pageblock) is valid for 6.1 and a violation of 6.15's accounting.
    m = _small(M61)
    assert (m.alloc_many(4, 7, migratetype=MOV, alloc_flags=NOWM) >= 0).all()
    pfns = m.alloc_many(0, 12, migratetype=MOV, alloc_flags=NOWM)
    m.pages["flags"][pfns] |= PG_LRU
    assert m.alloc(0, migratetype=RECL, alloc_flags=NOWM) == 112 + 12
    check_invariants(m)
    m.node[0]["typed_freelists"] = 1
    with pytest.raises(AssertionError, match=r"free block at pfn 125 order 0 is on "
                                             r"free_list\[1\] but its pageblock has type 2"):
        check_invariants(m)


@pytest.mark.parametrize(("pbo", "defrag_mode", "seed"), [
    (4, False, 0), (4, True, 1), (3, False, 2), (3, True, 3),
])
def test_random_requests_keep_6_15_invariants(pbo: int, defrag_mode: bool, seed: int) -> None:
    # Random allocations (all types and orders, some atomic) and frees on S (pageblock order 4
    # or 3), the invariants checked after every step: free blocks stay on their pageblock
    # type's lists through claims, steals, HIGHATOMIC reserves and merges.
    rng = np.random.default_rng(seed)
    m = Machine(MachineConfig(memory=512 * 1024, policy=M615, max_order=5, pageblock_order=pbo,
                              min_free_kbytes=16, defrag_mode=defrag_mode))
    live: list[int] = []
    for _ in range(400):
        if live and rng.random() < 0.45:
            m.free(live.pop(int(rng.integers(len(live)))))
        else:
            order = int(rng.choice([0, 0, 0, 1, 2, 3, 4]))
            mt = int(rng.choice([UNMOV, RECL, MOV]))
            flags = NOWM if rng.random() < 0.5 else ALLOC_WMARK_MIN
            if rng.random() < 0.2:
                flags |= ALLOC_HARDER
            if defrag_mode and rng.random() < 0.3:
                flags |= ALLOC_FRAGMENT_OK
            pfn = m.alloc(order, migratetype=mt, alloc_flags=flags)
            if pfn >= 0:
                live.append(pfn)
        check_invariants(m)

"""Hand-worked sequences through the buddy core; each expected value is derived in comments from
the kernel algorithm (2.6.24 `mm/page_alloc.c`; 2.6.20 for vanilla; 2.6.35 for
`mobility-2.6.35`, whose section runs each scenario on both kernels), not from running the model.

Two geometries:

- x86_64, 64 MiB flat: 16384 pages, MAX_ORDER 11 (max-order block 1024 pages), pageblock_order
  9 (512 pages, 32 pageblocks). Default min_free_kbytes = int_sqrt(65536 kB * 16) = 1024, so
  pages_min 256, low 320, high 384; RESERVE = roundup(256, 512) >> 9 = 1 pageblock.
- "S": 512 KiB flat, MAX_ORDER 5 (max-order block 16 pages), pageblock_order 4 (16 pages: a
  pageblock is a max-order block), 128 pages = pageblocks 0..7; min_free_kbytes 16, so
  pages_min 4, low 5, high 6, RESERVE = roundup(4, 16) >> 4 = 1 pageblock. pageblock_order/2 = 2:
  a fallback moves the pageblock's free pages only from order 2 up (or for RECLAIMABLE).
"""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.mm.alloc import zone_watermark_ok
from fragsim.models.mm.buddy import move_freepages_block
from fragsim.models.mm.constants import (
    ALLOC_HARDER,
    ALLOC_HIGH,
    ALLOC_NO_WATERMARKS,
    ALLOC_WMARK_MIN,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_RESERVE,
    MIGRATE_UNMOVABLE,
    ZONE_DMA,
    ZONE_DMA32,
    ZONE_MOVABLE,
    ZONE_NORMAL,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.gfp import (
    GFP_DMA,
    GFP_DMA32,
    GFP_HIGHUSER,
    GFP_HIGHUSER_MOVABLE,
    GFP_KERNEL,
)
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.state import EXTFRAG_FIELDS, ZONE_DTYPE
from tests.conftest import MakeMachine

N = ZONE_NORMAL
UNMOV, RECL, MOV, RES = MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE, MIGRATE_RESERVE


def free_list(m: Machine, order: int, mt: int, z: int = N) -> list[int]:
    """`free_area[order].free_list[mt]` of zone `z`, head first."""
    out, pfn = [], int(m.zones[z]["head"][order, mt])
    while pfn >= 0:
        out.append(pfn)
        pfn = int(m.pages[pfn]["next"])
    return out


def last_extfrag(m: Machine) -> dict[str, int]:
    nd = m.node[0]
    row = nd["extfrag"][(int(nd["extfrag_count"]) - 1) % nd["extfrag"].shape[0]]
    return dict(zip(EXTFRAG_FIELDS, (int(v) for v in row), strict=True))


def small_machine(policy: str = "mobility") -> Machine:
    return Machine(MachineConfig(memory=512 * 1024, policy=policy, max_order=5,
                                 pageblock_order=4, min_free_kbytes=16))


def filled_small_machine(policy: str = "mobility") -> Machine:
    """S with every MOVABLE pageblock allocated to MOVABLE order-0 pages (RESERVE left free).

    Boot leaves MOVABLE order-4 = [112, 96, ..., 16] and RESERVE order-4 = [0]. Each request
    takes the head block; expand() leaves the upper halves on the lists, so the next requests
    take its pages lowest first: 112..127, then 96..111, ..., 16..31. The 112th request sees
    128 - 111 = 17 free pages > low 5, so all succeed.
    """
    m = small_machine(policy)
    pfns = m.alloc_many(0, 112, migratetype=MOV)
    expected = [p for block in range(112, 0, -16) for p in range(block, block + 16)]
    assert pfns.tolist() == expected
    assert m.free_pages() == 16
    return m


# --- LIFO and boot ------------------------------------------------------------------------------

def test_lifo_last_freed_is_first_allocated(machine: Machine) -> None:
    # Four order-0 requests split the head max-order block 15360: 15360 (expand leaves 15361 at
    # order 0, 15362 at order 1, ...), 15361, 15362 (splitting 15362's order-1 block), 15363.
    # Free A = 15360 (its buddy 15361 is allocated: no merge) then B = 15362 (buddy 15363
    # allocated): the order-0 list is [B, A]. The next two requests get B, then A.
    # Under mobility the first request falls back and claims pageblock 30 for UNMOVABLE, so
    # all of this happens on the UNMOVABLE lists, the list of every page freed here.
    # 6.1 (and 6.15) frees boot memory to the tail (FPI_TO_TAIL), so its head max-order block
    # is 0; A's and B's higher buddies (2 at order 1, 0 at order 1) are not free blocks of
    # order 1, so 6.1 adds both at the head too.
    base = 0 if machine.policy.name in ("mobility-6.1", "mobility-6.15") else 15360
    pfns = machine.alloc_many(0, 4, migratetype=UNMOV)
    assert pfns.tolist() == [base, base + 1, base + 2, base + 3]
    machine.free(base)
    machine.free(base + 2)
    assert free_list(machine, 0, UNMOV) == [base + 2, base]
    assert machine.alloc(0, migratetype=UNMOV) == base + 2
    assert machine.alloc(0, migratetype=UNMOV) == base
    check_invariants(machine)


def test_boot_vanilla(vanilla_machine: Machine) -> None:
    # Pages are freed in increasing pfn order; each max-order block is completed by its last
    # page and added at the head, so the highest block heads the single order-10 list.
    m = vanilla_machine
    assert free_list(m, 10, 0) == list(range(15360, -1, -1024))
    assert m.zones[N]["nr_free"][10] == 16 and m.zones[N]["nr_free"][:10].sum() == 0
    assert (m.pageblock_type == UNMOV).all()
    assert tuple(m.zones[N]["watermark"]) == (256, 320, 384)
    assert m.min_free_kbytes == 1024


def test_boot_mobility_reserve(mobility_machine: Machine) -> None:
    # Every pageblock starts MOVABLE; setup_zone_migrate_reserve() turns the first
    # roundup(256, 512) >> 9 = 1 pageblock into RESERVE and moves its free block (the order-10
    # block at 0, which also spans pageblock 1) to the RESERVE list.
    m = mobility_machine
    assert m.pageblock_type[0] == RES
    assert (m.pageblock_type[1:] == MOV).all()
    assert free_list(m, 10, RES) == [0]
    assert free_list(m, 10, MOV) == list(range(15360, 0, -1024))
    assert m.zones[N]["nr_free"][10] == 16


def test_reserve_count_follows_min_free_kbytes(mobility_machine: Machine) -> None:
    m = mobility_machine
    # 2048 kB -> pages_min 512 -> roundup(512, 512) >> 9 = 1 block.
    m.set_min_free_kbytes(2048)
    assert np.flatnonzero(m.pageblock_type == RES).tolist() == [0]
    # 2052 kB -> pages_min 513 -> 2 blocks: pageblock 1 too. Its pages belong to the free block
    # headed at pfn 0 (in pageblock 0), so move_freepages_block() moves nothing.
    m.set_min_free_kbytes(2052)
    assert np.flatnonzero(m.pageblock_type == RES).tolist() == [0, 1]
    assert free_list(m, 10, RES) == [0]
    # 8192 kB -> pages_min 2048 -> 4 blocks: pageblock 2 holds the head of block 1024, which
    # moves to the head of the RESERVE list; pageblock 3 moves nothing.
    m.set_min_free_kbytes(8192)
    assert np.flatnonzero(m.pageblock_type == RES).tolist() == [0, 1, 2, 3]
    assert free_list(m, 10, RES) == [1024, 0]
    assert free_list(m, 10, MOV) == list(range(15360, 1024, -1024))
    # Back to 1024 kB: one block is kept (the first met) and the others given back as MOVABLE,
    # with their free blocks moved to the head of the MOVABLE list.
    m.set_min_free_kbytes(1024)
    assert np.flatnonzero(m.pageblock_type == RES).tolist() == [0]
    assert free_list(m, 10, RES) == [0]
    assert free_list(m, 10, MOV) == [1024] + list(range(15360, 1024, -1024))
    check_invariants(m)


def test_boot_zones_layout(make_machine: MakeMachine) -> None:
    # x86_64 zones at 64 MiB: DMA [0, 4096), DMA32 [4096, 16384). lowmem = 16384 pages, so
    # min_free_kbytes 1024, pages_min 256 split by size: DMA 256*4096/16384 = 64 (low 80,
    # high 96), DMA32 192 (low 240, high 288). Each zone gets roundup(min, 512) >> 9 = 1 RESERVE
    # pageblock at its start.
    m = make_machine(layout="zones")
    assert [(int(z["start_pfn"]), int(z["end_pfn"])) for z in m.zones[:2]] == [
        (0, 4096), (4096, 16384)]
    assert tuple(m.zones[ZONE_DMA]["watermark"]) == (64, 80, 96)
    assert tuple(m.zones[ZONE_DMA32]["watermark"]) == (192, 240, 288)
    assert free_list(m, 10, RES, ZONE_DMA) == [0]
    assert free_list(m, 10, MOV, ZONE_DMA) == [3072, 2048, 1024]
    assert free_list(m, 10, RES, ZONE_DMA32) == [4096]
    assert free_list(m, 10, MOV, ZONE_DMA32) == list(range(15360, 4096, -1024))
    # lowmem_reserve: DMA keeps DMA32's 12288 pages / 256 = 48 from requests whose classzone is
    # DMA32 or above; DMA32 keeps 0 (Normal and Movable are empty).
    assert m.zones[ZONE_DMA]["lowmem_reserve"].tolist() == [0, 48, 48, 48, 48]
    assert m.zones[ZONE_DMA32]["lowmem_reserve"].tolist() == [0, 0, 0, 0, 0]


# --- __rmqueue_fallback ----------------------------------------------------------------------

def test_fallback_claims_pageblock_of_large_block(mobility_machine: Machine) -> None:
    # UNMOVABLE order 0 on a fresh machine: UNMOVABLE lists are empty. The fallback scans from
    # order 10 down: RECLAIMABLE is empty, MOVABLE order 10 has head 15360. 10 >= 9/2, so
    # move_freepages_block() on pageblock 30 moves the whole 1024-page block (>= 256): claim
    # pageblock 30. current_order 10 != pageblock_order: pageblock 31 keeps MOVABLE although
    # expand() puts its half (15872, order 9) on the UNMOVABLE list.
    m = mobility_machine
    assert m.alloc(0, migratetype=UNMOV) == 15360
    assert m.pageblock_type[30] == UNMOV and m.pageblock_type[31] == MOV
    assert [free_list(m, o, UNMOV) for o in range(10)] == [
        [15360 + (1 << o)] for o in range(10)]
    assert m.stat("pageblock_claimed") == 1
    assert last_extfrag(m) == {"pfn": 15360, "alloc_order": 0, "fallback_order": 10,
                               "alloc_migratetype": UNMOV, "fallback_migratetype": MOV,
                               "fragmenting": 0, "change_ownership": 1}
    check_invariants(m)


def test_fallback_small_block_does_not_claim() -> None:
    # After the fill, free 114 and 115: they merge into the order-1 block 114 (its order-1 buddy
    # 112 is allocated), on the MOVABLE list (pageblock 7 is MOVABLE). UNMOVABLE order 0: the
    # fallback finds nothing from order 4 down to 2, then MOVABLE order 1 = [114]. 1 < 4/2 and
    # the request is not RECLAIMABLE: nothing moves, pageblock 7 stays MOVABLE, and expand()
    # leaves 115 on the MOVABLE (fallback type's) order-0 list.
    m = filled_small_machine()
    m.free(114)
    m.free(115)
    assert free_list(m, 1, MOV) == [114]
    assert m.alloc(0, migratetype=UNMOV) == 114
    assert m.pageblock_type[7] == MOV
    assert free_list(m, 0, MOV) == [115]
    assert all(not free_list(m, o, UNMOV) for o in range(5))
    assert m.stat("pageblock_claimed") == 0
    assert last_extfrag(m) == {"pfn": 114, "alloc_order": 0, "fallback_order": 1,
                               "alloc_migratetype": UNMOV, "fallback_migratetype": MOV,
                               "fragmenting": 1, "change_ownership": 0}
    check_invariants(m)


def test_fallback_moves_and_claims_at_half_a_block() -> None:
    # Free 112..119: they coalesce into the order-3 block 112 (its buddy 120 is allocated).
    # UNMOVABLE order 0 falls back to MOVABLE order 3 = [112]: 3 >= 2, so the pageblock's free
    # pages move: 8 pages >= 2^(4-1) = 8, so pageblock 7 becomes UNMOVABLE; expand() puts 116
    # (order 2), 114 (order 1), 113 (order 0) on the UNMOVABLE lists.
    m = filled_small_machine()
    for pfn in range(112, 120):
        m.free(pfn)
    assert free_list(m, 3, MOV) == [112]
    assert m.alloc(0, migratetype=UNMOV) == 112
    assert m.pageblock_type[7] == UNMOV
    assert [free_list(m, o, UNMOV) for o in range(3)] == [[113], [114], [116]]
    assert last_extfrag(m)["change_ownership"] == 1
    assert last_extfrag(m)["fragmenting"] == 1
    check_invariants(m)


def test_fallback_moves_without_claiming_below_half() -> None:
    # Free 112..115: order-2 block 112. 2 >= 2 moves the free pages (4 < 8: no claim) and the
    # remainder goes to the request's lists: 114 (order 1) and 113 (order 0) on UNMOVABLE.
    m = filled_small_machine()
    for pfn in range(112, 116):
        m.free(pfn)
    assert m.alloc(0, migratetype=UNMOV) == 112
    assert m.pageblock_type[7] == MOV
    assert [free_list(m, o, UNMOV) for o in range(2)] == [[113], [114]]
    assert last_extfrag(m)["change_ownership"] == 0
    # Freeing 112 again: the list is its pageblock's type (MOVABLE). It merges with 113 and 114
    # (unlinked from the UNMOVABLE lists) into the order-2 block 112, whose buddy 116 is
    # allocated; the result goes on the MOVABLE order-2 list.
    m.free(112)
    assert free_list(m, 2, MOV) == [112]
    assert all(not free_list(m, o, UNMOV) for o in range(5))
    check_invariants(m)


def test_reclaimable_fallback_steals_small_block_and_claims() -> None:
    # Free the odd pages 113, 115, ..., 127 of pageblock 7 (none merge: their even buddies are
    # allocated): MOVABLE order 0 = [127, 125, ..., 113] (LIFO). RECLAIMABLE order 0: no
    # RECLAIMABLE or UNMOVABLE blocks anywhere; MOVABLE order 0 has head 127. Order 0 < 2, but a
    # RECLAIMABLE request always moves the pageblock's free pages: the walk from 112 up moves
    # 113, 115, ..., 127 to the head of the RECLAIMABLE list in turn (127 ends at the head);
    # 8 pages >= 8: pageblock 7 becomes RECLAIMABLE. 127 is taken.
    m = filled_small_machine()
    for pfn in range(113, 128, 2):
        m.free(pfn)
    assert free_list(m, 0, MOV) == list(range(127, 112, -2))
    assert m.alloc(0, migratetype=RECL) == 127
    assert m.pageblock_type[7] == RECL
    assert free_list(m, 0, RECL) == list(range(125, 112, -2))
    assert free_list(m, 0, MOV) == []
    assert last_extfrag(m) == {"pfn": 127, "alloc_order": 0, "fallback_order": 0,
                               "alloc_migratetype": RECL, "fallback_migratetype": MOV,
                               "fragmenting": 1, "change_ownership": 1}
    check_invariants(m)


def test_reclaimable_fallback_steals_without_claiming() -> None:
    # Only 113, ..., 125 (7 pages) free: all move to RECLAIMABLE, 125 is taken, but 7 < 8 so
    # pageblock 7 stays MOVABLE. Freeing 127 afterwards goes by the pageblock: MOVABLE list.
    m = filled_small_machine()
    for pfn in range(113, 126, 2):
        m.free(pfn)
    assert m.alloc(0, migratetype=RECL) == 125
    assert m.pageblock_type[7] == MOV
    assert free_list(m, 0, RECL) == list(range(123, 112, -2))
    m.free(127)
    assert free_list(m, 0, MOV) == [127]
    check_invariants(m)


def test_reserve_only_when_every_fallback_fails() -> None:
    # UNMOVABLE first: claims pageblock 7 (order-4 block 112 moved whole), expand leaves 120
    # (o3), 116 (o2), 114 (o1), 113 (o0) on UNMOVABLE. Then 96 MOVABLE pages use pageblocks
    # 6..1. The next MOVABLE request falls back: RECLAIMABLE is empty; UNMOVABLE order 3 =
    # [120] (3 >= 2): pageblock 7's 15 free pages move to MOVABLE (15 >= 8: claimed back),
    # 120 is split: 124 (o2), 122 (o1), 121 (o0) on MOVABLE. RESERVE is not touched.
    m = small_machine()
    assert m.alloc(0, migratetype=UNMOV) == 112
    assert [free_list(m, o, UNMOV) for o in range(4)] == [[113], [114], [116], [120]]
    movable = m.alloc_many(0, 96, migratetype=MOV)
    assert movable.tolist() == [p for b in range(96, 0, -16) for p in range(b, b + 16)]
    assert m.alloc(0, migratetype=MOV) == 120
    assert m.pageblock_type[7] == MOV
    assert [free_list(m, o, MOV) for o in range(3)] == [[121, 113], [122, 114], [124, 116]]
    assert free_list(m, 4, RES) == [0]
    assert m.stat("alloc_reserve") == 0


def test_reserve_used_when_all_fallbacks_fail() -> None:
    # After the fill only the RESERVE block is free (16 pages > low 5). MOVABLE order 0: own
    # lists empty, RECLAIMABLE and UNMOVABLE empty at every order, so
    # __rmqueue_smallest(RESERVE) splits block 0: 8 (o3), 4 (o2), 2 (o1), 1 (o0) stay on the
    # RESERVE lists. No extfrag event; the pageblock stays RESERVE.
    m = filled_small_machine()
    events = int(m.node[0]["extfrag_count"])
    assert m.alloc(0, migratetype=MOV) == 0
    assert [free_list(m, o, RES) for o in range(4)] == [[1], [2], [4], [8]]
    assert m.stat("alloc_reserve") == 1
    assert int(m.node[0]["extfrag_count"]) == events
    assert m.pageblock_type[0] == RES
    check_invariants(m)


def test_merge_across_pageblocks_of_different_types(mobility_machine: Machine) -> None:
    # UNMOVABLE order 9: fallback takes MOVABLE order-10 block 15360, moves it (claims
    # pageblock 30), and expand() puts 15872 (pageblock 31, still MOVABLE) on the UNMOVABLE
    # order-9 list. A second UNMOVABLE order-9 request takes 15872 from that list.
    m = mobility_machine
    assert m.alloc(9, migratetype=UNMOV) == 15360
    assert m.alloc(9, migratetype=UNMOV) == 15872
    assert (m.pageblock_type[30], m.pageblock_type[31]) == (UNMOV, MOV)
    # Free 15360 (pageblock 30, UNMOVABLE): its buddy is allocated; UNMOVABLE order-9 list.
    m.free(15360)
    assert free_list(m, 9, UNMOV) == [15360]
    # Free 15872 (pageblock 31, MOVABLE): its buddy 15360 is free at order 9 on another list;
    # it is unlinked and merged into the order-10 block 15360, which goes on the list of the
    # freed page's pageblock: MOVABLE. Pageblock types do not change on free.
    m.free(15872)
    assert free_list(m, 10, MOV)[0] == 15360
    assert all(not free_list(m, o, UNMOV) for o in range(11))
    assert (m.pageblock_type[30], m.pageblock_type[31]) == (UNMOV, MOV)
    check_invariants(m)


def test_move_freepages_block_zone_bounds() -> None:
    # After the fill, free 112 and 120 (order-0 blocks on MOVABLE, in pageblock 7 = 112..127).
    m = filled_small_machine()
    m.free(112)
    m.free(120)
    zone = m.zones[N]
    # A pageblock ending past the zone's end moves nothing and returns 0: the kernel tests its
    # last pfn, start + pageblock_nr_pages - 1 = 127, against zone_start + spanned_pages.
    for end in (124, 127):
        zone["end_pfn"] = end
        assert move_freepages_block(m.pages, zone, 120, UNMOV, 4) == 0
        assert free_list(m, 0, MOV) == [120, 112]
    zone["end_pfn"] = 128
    # A pageblock starting before the zone's start is walked from the page itself: only 120.
    zone["start_pfn"] = 116
    assert move_freepages_block(m.pages, zone, 120, UNMOV, 4) == 1
    assert free_list(m, 0, UNMOV) == [120] and free_list(m, 0, MOV) == [112]
    zone["start_pfn"] = 0
    # Inside the zone the whole pageblock is walked, upward: 112 then 120 moved.
    assert move_freepages_block(m.pages, zone, 120, RECL, 4) == 2
    assert free_list(m, 0, RECL) == [120, 112]
    check_invariants(m)


# --- zone_watermark_ok and zones -----------------------------------------------------------

def _zone(free: int, nr_free: dict[int, int], reserve: int = 0) -> np.void:
    z = np.zeros(1, dtype=ZONE_DTYPE)
    z[0]["free_pages"] = free
    for o, n in nr_free.items():
        z[0]["nr_free"][o] = n
    z[0]["lowmem_reserve"][1] = reserve
    return z[0]


@pytest.mark.parametrize(("mark", "flags", "ok"), [
    # free = 10 - 1 + 1 = 10; ok iff 10 > min.
    (9, 0, True),
    (10, 0, False),
    (10, ALLOC_HIGH, True),  # min = 10 - 5 = 5
    (12, ALLOC_HARDER, True),  # min = 12 - 3 = 9
    (14, ALLOC_HARDER, False),  # min = 14 - 3 = 11
    (24, ALLOC_HIGH | ALLOC_HARDER, True),  # 24 - 12 = 12, 12 - 3 = 9
    (28, ALLOC_HIGH | ALLOC_HARDER, False),  # 28 - 14 = 14, 14 - 3 = 11
])
def test_zone_watermark_ok_order0(mark: int, flags: int, ok: bool) -> None:
    assert zone_watermark_ok(_zone(10, {0: 10}), 0, mark, 2, flags) is ok


def test_zone_watermark_ok_lowmem_reserve() -> None:
    # free 10; mark 7 plus lowmem_reserve[classzone 1] = 3: 10 <= 10 fails; classzone 2: 0.
    zone = _zone(10, {0: 10}, reserve=3)
    assert not zone_watermark_ok(zone, 0, 7, 1, 0)
    assert zone_watermark_ok(zone, 0, 7, 2, 0)
    assert zone_watermark_ok(zone, 0, 6, 1, 0)


def test_zone_watermark_ok_per_order_loop() -> None:
    # 20 free pages: ten order-0, one order-1, two order-2 blocks. Order 2, mark 16:
    # free = 20 - 4 + 1 = 17 > 16; o=0: free 17 - 10 = 7, min 8: 7 <= 8 fails.
    zone = _zone(20, {0: 10, 1: 1, 2: 2})
    assert not zone_watermark_ok(zone, 2, 16, 2, 0)
    # Mark 12: 17 > 12; o=0: 7 > 6; o=1: 7 - 2 = 5 > 3: ok.
    assert zone_watermark_ok(zone, 2, 12, 2, 0)
    # Order 3 with mark 0: free = 20 - 8 + 1 = 13 > 0; o=0: 3 > 0; o=1: 1 > 0;
    # o=2: 1 - 8 = -7 <= 0 fails (no order-3 block exists).
    assert not zone_watermark_ok(zone, 3, 0, 2, 0)


def test_watermark_selection_and_lowmem_reserve_in_zones(make_machine: MakeMachine) -> None:
    # Vanilla, zones layout (see test_boot_zones_layout): DMA low 80, min 64, reserve for
    # classzone DMA32 = 48. Take all of DMA32 (12 order-10 blocks, no watermarks), then leave
    # DMA with 128 free pages.
    m = make_machine(layout="zones", policy="vanilla")
    big = m.alloc_many(10, 12, GFP_KERNEL, alloc_flags=ALLOC_NO_WATERMARKS)
    assert big.tolist() == list(range(15360, 4095, -1024))
    assert (m.alloc_many(0, 4096 - 128, GFP_DMA, alloc_flags=ALLOC_NO_WATERMARKS) >= 0).all()
    assert int(m.zones[ZONE_DMA]["free_pages"]) == 128
    # GFP_KERNEL (classzone DMA32): DMA32 is empty (0 <= 240); DMA: 128 <= 80 + 48 fails.
    assert m.alloc(0, GFP_KERNEL) == -1
    # GFP_DMA (classzone DMA, reserve 0): 128 > 80.
    assert 0 <= m.alloc(0, GFP_DMA) < 4096
    # Now 127 free: GFP_KERNEL at WMARK_MIN passes DMA: 127 > 64 + 48.
    assert 0 <= m.alloc(0, GFP_KERNEL, alloc_flags=ALLOC_WMARK_MIN) < 4096
    check_invariants(m)


def test_zones_gfp_dma_only_dma_and_kernel_falls_back(make_machine: MakeMachine) -> None:
    m = make_machine(layout="zones", policy="vanilla")
    # GFP_DMA's zonelist is DMA alone: the head of DMA's order-10 list, 3072.
    assert m.alloc(0, GFP_DMA) == 3072
    # GFP_KERNEL and GFP_DMA32 start at DMA32 (Normal is empty): its head block 15360.
    assert m.alloc(0, GFP_KERNEL) == 15360
    assert m.alloc(0, GFP_DMA32) == 15361
    # Order-10 GFP_KERNEL requests at LOW. DMA32 has 12286 free pages: 11 order-10 blocks
    # [14336, ..., 4096] plus 1022 pages at orders 1..9 left by splitting 15360. Request k+1
    # (k done) passes DMA32 iff 12286 - 1024k - 1023 > 240 (the per-order loop then only
    # removes those 1022 pages against a halved min), i.e. k <= 10: 11 requests. The 12th
    # goes to DMA: 4095 - 1023 > 80 + lowmem_reserve 48; DMA's order-10 list is [2048, 1024, 0]
    # since 3072 was split.
    got = m.alloc_many(10, 12, GFP_KERNEL)
    assert got[:11].tolist() == list(range(14336, 4095, -1024))
    assert got[11] == 2048
    # Drain DMA entirely; GFP_DMA then fails although DMA32 still has free pages.
    m.alloc_many(0, 4096, GFP_DMA, alloc_flags=ALLOC_NO_WATERMARKS)
    assert int(m.zones[ZONE_DMA]["free_pages"]) == 0
    assert int(m.zones[ZONE_DMA32]["free_pages"]) > 0
    assert m.alloc(0, GFP_DMA, alloc_flags=ALLOC_NO_WATERMARKS) == -1
    check_invariants(m)


def test_kernelcore_creates_zone_movable(make_machine: MakeMachine) -> None:
    # kernelcore=16M: 4096 pages stay in Normal; ZONE_MOVABLE starts at 4096 (already
    # MAX_ORDER aligned) and takes the rest. Default min_free_kbytes comes from Normal's 4096
    # pages: int_sqrt(16384 * 16) = 512, pages_min 128, split by size over Normal (32: low 40)
    # and Movable (96); each gets one RESERVE pageblock.
    m = make_machine(kernelcore=16 * MiB)
    assert (int(m.zones[N]["start_pfn"]), int(m.zones[N]["end_pfn"])) == (0, 4096)
    mz = m.zones[ZONE_MOVABLE]
    assert (int(mz["start_pfn"]), int(mz["end_pfn"])) == (4096, 16384)
    assert tuple(m.zones[N]["watermark"]) == (32, 40, 48)
    # GFP_HIGHUSER_MOVABLE's zonelist starts at Movable: head of its MOVABLE list.
    assert m.alloc(0, GFP_HIGHUSER_MOVABLE) == 15360
    # GFP_HIGHUSER (not movable) and GFP_KERNEL use Normal: UNMOVABLE falls back to Normal's
    # MOVABLE head 3072.
    assert m.alloc(0, GFP_KERNEL) == 3072
    assert m.alloc(0, GFP_HIGHUSER) == 3073
    # Drain with GFP_KERNEL at LOW: Normal serves while free > 40: 4096 - 40 - 2 = 4054 more;
    # none lands in Movable.
    got = m.alloc_many(0, 5000, GFP_KERNEL)
    ok = got[got >= 0]
    assert ok.size == 4054 and ok.max() < 4096
    assert int(mz["free_pages"]) == 12288 - 1
    check_invariants(m)


# --- grouping disabled -------------------------------------------------------------------------

@pytest.mark.parametrize(("memory", "max_order", "pbo", "grouping"), [
    (8 * MiB, None, None, False),  # 2048 pages < 512 * 5
    (12 * MiB, None, None, True),  # 3072 pages >= 2560
    (256 * 1024, 5, 4, False),  # 64 pages < 16 * 5
    (320 * 1024, 5, 4, True),  # 80 pages: not below 80
])
def test_grouping_disabled_below_five_pageblocks(make_machine: MakeMachine, memory: int,
                                                 max_order: int | None, pbo: int | None,
                                                 grouping: bool) -> None:
    m = make_machine(memory=memory, max_order=max_order, pageblock_order=pbo)
    assert m.grouping is grouping
    if not grouping:
        assert (m.pageblock_type == UNMOV).all()
        assert m.zones[N]["nr_free_mt"][:, 1:].sum() == 0


def test_grouping_disabled_uses_one_list(make_machine: MakeMachine) -> None:
    # 8 MiB: lists [1024, 0] at order 10, all UNMOVABLE. A MOVABLE request takes 1024, a
    # RECLAIMABLE one then its buddy page 1025: every type shares the one list, no fallback.
    m = make_machine(memory=8 * MiB)
    assert free_list(m, 10, 0) == [1024, 0]
    assert m.alloc(0, migratetype=MOV) == 1024
    assert m.alloc(0, migratetype=RECL) == 1025
    assert m.stat("extfrag_fallback") == 0
    check_invariants(m)



# --- 2.6.35 (`mobility-2.6.35`) against 2.6.24 ----------------------------------------------

M35 = "mobility-2.6.35"


def _free_tail_scenario(policy: str) -> Machine:
    """S filled, then 98, 99, 116..119, 114, 115 freed in that order (2.6.35 `__free_one_page`).

    - 98 (buddy 99 allocated; higher_page 98, higher_buddy 96 allocated): head of order 0.
      99 merges it: order-1 block 98 (buddy 96 allocated); higher_page 96, higher_buddy 100
      allocated: head. MOVABLE order 1 = [98].
    - 116, 117 make the order-1 block 116 (higher_buddy 112 allocated: head); 118 (buddy 119
      allocated) has higher_page 118, higher_buddy 116 free at order 1: 2.6.35 adds it at the
      TAIL of order 0 (alone there, so no visible difference); 119 merges all into the order-2
      block 116 (buddy 112 allocated; higher_buddy 120 allocated: head).
    - 114 (buddy 115 allocated; higher_buddy 112 not free): head. 115 merges: order-1 block 114;
      its buddy 112 is allocated, but higher_page 112's buddy 116 is free at order 2, so
      2.6.35 adds 114 at the TAIL: MOVABLE order 1 = [98, 114]; 2.6.24 at the head: [114, 98].
    """
    m = filled_small_machine(policy)
    for pfn in (98, 99, 116, 117, 118, 119, 114, 115):
        m.free(pfn)
    return m


def test_free_one_page_tail_when_higher_buddy_is_free() -> None:
    old, new = _free_tail_scenario("mobility"), _free_tail_scenario(M35)
    assert free_list(old, 1, MOV) == [114, 98]
    assert free_list(new, 1, MOV) == [98, 114]
    for m in (old, new):
        assert free_list(m, 2, MOV) == [116] and free_list(m, 0, MOV) == []
    # An order-1 MOVABLE request takes the head: 2.6.24 breaks up the block that was about to
    # merge, 2.6.35 takes 98 and leaves 114 free.
    assert old.alloc(1, migratetype=MOV) == 114
    assert new.alloc(1, migratetype=MOV) == 98
    # Freeing 112 and 113: on 2.6.35 they merge with 114 (order 1) and 116 (order 2) into the
    # order-3 block 112 (buddy 120 allocated; higher_buddy 96 allocated: head); on 2.6.24 114 is
    # allocated, so they stop at the order-1 block 112, whose higher_buddy 116 is free (2.6.24
    # adds at the head regardless).
    for m in (old, new):
        m.free(112)
        m.free(113)
    assert [free_list(new, o, MOV) for o in range(4)] == [[], [], [], [112]]
    assert [free_list(old, o, MOV) for o in range(4)] == [[], [112, 98], [116], []]
    check_invariants(old)
    check_invariants(new)


def test_free_one_page_tail_needs_a_free_higher_buddy_of_that_order() -> None:
    # 2.6.35 tests page_is_buddy(higher_page, higher_buddy, order + 1): a free higher buddy of
    # another order does not count. S filled; free 116 (order-0 block, head of order 0), then
    # 98 and 99 (order-1 block 98, head of order 1), then 114: its higher_buddy is 112
    # (allocated). Free 113: buddy 112 allocated; higher_page 112, higher_buddy 114 is free but
    # at order 0, not 1: head. Order 0 = [113, 114, 116] on both kernels.
    for policy in ("mobility", M35):
        m = filled_small_machine(policy)
        for pfn in (116, 98, 99, 114, 113):
            m.free(pfn)
        assert free_list(m, 0, MOV) == [113, 114, 116]
        assert free_list(m, 1, MOV) == [98]
        check_invariants(m)


def test_free_one_page_max_order_goes_to_the_head() -> None:
    # A block of MAX_ORDER-1 has no higher buddy: head, as on 2.6.24. Boot therefore gives the
    # same lists on both kernels (every zone is whole max-order blocks).
    a = Machine(MachineConfig(memory=64 * MiB, policy="mobility"))
    b = Machine(MachineConfig(memory=64 * MiB, policy=M35))
    assert free_list(b, 10, MOV) == free_list(a, 10, MOV) == list(range(15360, 0, -1024))
    pfn = b.alloc(10, migratetype=MOV)
    assert pfn == 15360
    b.free(pfn)
    assert free_list(b, 10, MOV)[0] == 15360


def test_fallback_2_6_35_retypes_the_whole_range() -> None:
    # UNMOVABLE order 0 on a fresh 64 MiB machine falls back to MOVABLE order-10 block 15360
    # (pageblocks 30 and 31). move_freepages_block() moves it whole and claims pageblock 30 on
    # both kernels; current_order 10 >= pageblock_order 9, so 2.6.35's
    # change_pageblock_range(page, 10, UNMOVABLE) also retypes pageblock 31, which 2.6.24
    # (current_order == pageblock_order only) leaves MOVABLE.
    old = Machine(MachineConfig(memory=64 * MiB, policy="mobility"))
    new = Machine(MachineConfig(memory=64 * MiB, policy=M35))
    for m in (old, new):
        assert m.alloc(0, migratetype=UNMOV) == 15360
        assert [free_list(m, o, UNMOV) for o in range(10)] == [
            [15360 + (1 << o)] for o in range(10)]
    assert (old.pageblock_type[30], old.pageblock_type[31]) == (UNMOV, MOV)
    assert (new.pageblock_type[30], new.pageblock_type[31]) == (UNMOV, UNMOV)
    assert old.stat("pageblock_claimed") == 1 and new.stat("pageblock_claimed") == 2
    # 2.6.35's tracepoint gets `migratetype`, already start_migratetype after the move.
    assert last_extfrag(new) == {"pfn": 15360, "alloc_order": 0, "fallback_order": 10,
                                 "alloc_migratetype": UNMOV, "fallback_migratetype": UNMOV,
                                 "fragmenting": 0, "change_ownership": 1}
    assert last_extfrag(old)["fallback_migratetype"] == MOV
    # The upper half 15872 (order 9, pageblock 31), taken and freed, goes back by its
    # pageblock's type: MOVABLE on 2.6.24, UNMOVABLE on 2.6.35 (its buddy 15360 is allocated).
    for m in (old, new):
        assert m.alloc(9, migratetype=UNMOV) == 15872
        m.free(15872)
    assert free_list(old, 9, MOV) == [15872] and free_list(old, 9, UNMOV) == []
    assert free_list(new, 9, UNMOV) == [15872] and free_list(new, 9, MOV) == []
    check_invariants(old)
    check_invariants(new)


def test_fallback_2_6_35_at_pageblock_order_is_one_block() -> None:
    # S: pageblock_order 4 == MAX_ORDER-1, so change_pageblock_range covers one pageblock and
    # both kernels claim the same (UNMOVABLE takes MOVABLE order-4 block 112: pageblock 7).
    for policy in ("mobility", M35):
        m = small_machine(policy)
        assert m.alloc(0, migratetype=UNMOV) == 112
        assert np.flatnonzero(m.pageblock_type == UNMOV).tolist() == [7]
        assert m.stat("pageblock_claimed") == 1


@pytest.mark.parametrize(("policy", "fallback_mt", "change_ownership"), [
    ("mobility", MOV, 0),  # the list it came from; the pageblock is still MOVABLE
    (M35, UNMOV, 1),  # 2.6.35: migratetype = start_migratetype once the pages were moved
])
def test_extfrag_fields_when_pages_move_without_a_claim(policy: str, fallback_mt: int,
                                                        change_ownership: int) -> None:
    # As test_fallback_moves_without_claiming_below_half: free 112..115 (order-2 block 112);
    # UNMOVABLE order 0 moves the 4 free pages (2 >= 4/2) but 4 < 8 claims nothing. The lists
    # and pageblock are the same on both kernels; only the event's fields differ.
    m = filled_small_machine(policy)
    for pfn in range(112, 116):
        m.free(pfn)
    assert m.alloc(0, migratetype=UNMOV) == 112
    assert m.pageblock_type[7] == MOV
    assert [free_list(m, o, UNMOV) for o in range(2)] == [[113], [114]]
    assert last_extfrag(m) == {"pfn": 112, "alloc_order": 0, "fallback_order": 2,
                               "alloc_migratetype": UNMOV, "fallback_migratetype": fallback_mt,
                               "fragmenting": 1, "change_ownership": change_ownership}
    assert m.stat("extfrag_change_ownership") == change_ownership


def test_extfrag_fields_small_steal_are_the_same() -> None:
    # No move (order 1 < 4/2, not RECLAIMABLE): migratetype stays the fallback list's on 2.6.35
    # too, and change_ownership is 0 on both.
    for policy in ("mobility", M35):
        m = filled_small_machine(policy)
        m.free(114)
        m.free(115)
        assert m.alloc(0, migratetype=UNMOV) == 114
        assert last_extfrag(m)["fallback_migratetype"] == MOV
        assert last_extfrag(m)["change_ownership"] == 0


def test_migrate_reserve_capped_at_two_blocks_on_2_6_35() -> None:
    # 8192 kB -> pages_min 2048 -> roundup(2048, 512) >> 9 = 4 pageblocks on 2.6.24; 2.6.35's
    # min(2, reserve) keeps 2: pageblocks 0 and 1, both inside the order-10 block 0, so only
    # block 0 is on the RESERVE list and 1024 stays MOVABLE.
    old = Machine(MachineConfig(memory=64 * MiB, policy="mobility"))
    new = Machine(MachineConfig(memory=64 * MiB, policy=M35))
    for m in (old, new):
        m.set_min_free_kbytes(8192)
    assert np.flatnonzero(old.pageblock_type == RES).tolist() == [0, 1, 2, 3]
    assert np.flatnonzero(new.pageblock_type == RES).tolist() == [0, 1]
    assert free_list(old, 10, RES) == [1024, 0]
    assert free_list(new, 10, RES) == [0]
    assert free_list(new, 10, MOV) == list(range(15360, 0, -1024))
    # At the default (1 block wanted) both keep pageblock 0 only.
    for m in (old, new):
        m.set_min_free_kbytes(1024)
        assert np.flatnonzero(m.pageblock_type == RES).tolist() == [0]
    check_invariants(new)

"""`models.mm.invariants`: passes on sound states, and each check catches a corrupted one.

Corruptions are made with the pure-Python bodies of the buddy list primitives (`.py_func`), so
they write through the record views exactly as the compiled core would.
"""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.mm.buddy import list_add, list_del
from fragsim.models.mm.constants import (
    MIGRATE_MOVABLE,
    MIGRATE_UNMOVABLE,
    PG_BUDDY,
    PG_HEAD,
    ZONE_NORMAL,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.invariants import InvariantError, check_invariants
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.state import STAT
from tests.conftest import MakeMachine

Z = ZONE_NORMAL  # the flat layout's only zone

_list_add = list_add.py_func
_list_del = list_del.py_func


def _zone(m: Machine) -> np.void:
    return m.zones[Z]


def _list(m: Machine, order: int, mt: int) -> list[int]:
    out, pfn = [], int(m.zones[Z]["head"][order, mt])
    while pfn >= 0:
        out.append(pfn)
        pfn = int(m.pages[pfn]["next"])
    return out


@pytest.fixture
def busy(machine: Machine) -> Machine:
    """The policy's machine after a mix of allocations and frees (several lists non-empty)."""
    pfns = machine.alloc_many(0, 300, migratetype=MIGRATE_MOVABLE)
    machine.alloc_many(2, 40, migratetype=MIGRATE_UNMOVABLE)
    machine.free_batch(pfns[::2])
    check_invariants(machine)
    return machine


def test_fresh_machines_pass(machine: Machine, make_machine: MakeMachine) -> None:
    check_invariants(machine)
    for kwargs in ({"layout": "zones"}, {"kernelcore": 16 * MiB}, {"memory": 8 * MiB},
                   {"profile": "x86", "layout": "zones", "memory": 1024 * MiB},
                   {"max_order": 5, "pageblock_order": 3, "memory": 512 * 1024}):
        check_invariants(make_machine(policy=machine.policy.name, **kwargs))


def test_passes_after_operations(busy: Machine) -> None:
    pfns = busy.alloc_many(3, 20, migratetype=MIGRATE_MOVABLE)
    check_invariants(busy)
    busy.free_batch(pfns)
    check_invariants(busy)


def test_zone_span_outside_memory(busy: Machine) -> None:
    busy.zones[Z]["end_pfn"] = busy.nr_pages + 1
    with pytest.raises(InvariantError, match=r"zone Normal .*outside the 16384 pages"):
        check_invariants(busy)


def test_zone_spans_overlap(busy: Machine) -> None:
    busy.zones[0]["end_pfn"] = 10
    with pytest.raises(InvariantError, match="overlaps another zone"):
        check_invariants(busy)


def test_free_and_allocated_flags_together(busy: Machine) -> None:
    pfn = int(_zone(busy)["head"][10, _list_type(busy)])
    busy.pages[pfn]["flags"] |= PG_HEAD
    with pytest.raises(InvariantError, match=f"pfn {pfn} is both a free"):
        check_invariants(busy)


def _list_type(m: Machine) -> int:
    """The list type boot-time max-order blocks sit on."""
    return MIGRATE_MOVABLE if m.grouping else MIGRATE_UNMOVABLE


def test_order_out_of_range(busy: Machine) -> None:
    pfn = int(_zone(busy)["head"][10, _list_type(busy)])
    busy.pages[pfn]["order"] = 11
    with pytest.raises(InvariantError, match=f"free block at pfn {pfn} has order 11"):
        check_invariants(busy)


def test_block_in_no_zone(machine: Machine) -> None:
    machine.zones[Z]["end_pfn"] -= 1024
    with pytest.raises(InvariantError, match="block at pfn 15360 order 10 is in no zone"):
        check_invariants(machine)


def test_block_not_aligned(busy: Machine) -> None:
    pfn = int(_zone(busy)["head"][10, _list_type(busy)])
    busy.pages[pfn + 2]["flags"] = PG_HEAD
    busy.pages[pfn + 2]["order"] = 2
    with pytest.raises(InvariantError, match=f"block at pfn {pfn + 2} is not aligned to its "
                                             "order 2"):
        check_invariants(busy)


def test_block_runs_past_zone_end(machine: Machine) -> None:
    machine.zones[Z]["end_pfn"] -= 1
    with pytest.raises(InvariantError, match="pfn 15360 order 10 runs past the zone end 16383"):
        check_invariants(machine)


def test_page_in_no_block(busy: Machine) -> None:
    pfn = int(busy.alloc(0, migratetype=MIGRATE_UNMOVABLE))
    busy.pages[pfn]["flags"] = 0
    with pytest.raises(InvariantError, match=f"pfn {pfn} is in no free or allocated block"):
        check_invariants(busy)


def test_page_in_two_blocks(busy: Machine) -> None:
    pfn = int(_zone(busy)["head"][10, _list_type(busy)])
    busy.pages[pfn + 1]["flags"] = PG_HEAD
    busy.pages[pfn + 1]["order"] = 0
    with pytest.raises(InvariantError, match=f"pfn {pfn + 1} is in 2 blocks: free pfn {pfn} "
                                             f"order 10, allocated pfn {pfn + 1} order 0"):
        check_invariants(busy)


def test_unmerged_buddies(machine: Machine) -> None:
    a = machine.alloc(0, migratetype=MIGRATE_UNMOVABLE)
    b = machine.alloc(0, migratetype=MIGRATE_UNMOVABLE)
    assert b == a ^ 1
    machine.free(a)
    # Free b by hand without merging, as a broken __free_one_page would.
    machine.pages[b]["flags"] = 0
    _list_add(machine.pages, _zone(machine), 0, 0, b)
    machine.zones[Z]["free_pages"] += 1
    machine.node[0]["stat"][STAT["pgfree"]] += 1
    with pytest.raises(InvariantError, match=f"free blocks at pfn {a} and its buddy {b} "
                                             r"\(order 0\) were not merged"):
        check_invariants(machine)


def _two_element_list(m: Machine) -> tuple[int, int, list[int]]:
    """(order, mt, elements) of a free list with at least two blocks."""
    for o in range(m.max_order):
        for mt in range(5):
            elems = _list(m, o, mt)
            if len(elems) >= 2:
                return o, mt, elems
    raise AssertionError("no list with two blocks")


def test_list_element_wrong_mt(busy: Machine) -> None:
    o, mt, elems = _two_element_list(busy)
    busy.pages[elems[1]]["mt"] = 4
    with pytest.raises(InvariantError, match=rf"free_area\[{o}\]\.free_list\[{mt}\]: list "
                                             f"element pfn {elems[1]} has mt 4"):
        check_invariants(busy)


def test_list_element_wrong_order(busy: Machine) -> None:
    # Relink an order-10 block onto the order-9 list of its type, keeping every count right.
    zone = _zone(busy)
    t = _list_type(busy)
    blk = int(zone["head"][10, t])
    _list_del(busy.pages, zone, blk)
    old = int(zone["head"][9, t])
    busy.pages[blk]["next"] = old
    busy.pages[blk]["prev"] = -1
    busy.pages[blk]["flags"] |= PG_BUDDY
    if old >= 0:
        busy.pages[old]["prev"] = blk
    else:
        zone["tail"][9, t] = blk
    zone["head"][9, t] = blk
    zone["nr_free"][9] += 1
    zone["nr_free_mt"][9, t] += 1
    with pytest.raises(InvariantError, match=rf"free_area\[9\]\.free_list\[{t}\]: list element "
                                             f"pfn {blk} has order 10"):
        check_invariants(busy)


def test_list_bad_prev(busy: Machine) -> None:
    o, mt, elems = _two_element_list(busy)
    busy.pages[elems[1]]["prev"] = -1
    with pytest.raises(InvariantError, match=f"list element pfn {elems[1]} has prev -1"):
        check_invariants(busy)


def test_list_head_prev_not_minus_one(busy: Machine) -> None:
    o, mt, elems = _two_element_list(busy)
    busy.pages[elems[0]]["prev"] = elems[1]
    with pytest.raises(InvariantError, match=f"list element pfn {elems[0]} has prev "
                                             f"{elems[1]}"):
        check_invariants(busy)


def test_list_bad_tail(busy: Machine) -> None:
    o, mt, elems = _two_element_list(busy)
    _zone(busy)["tail"][o, mt] = elems[0]
    with pytest.raises(InvariantError, match=f"walk ends at pfn {elems[-1]} but tail is "
                                             f"{elems[0]}"):
        check_invariants(busy)


def test_list_cycle(busy: Machine) -> None:
    o, mt, elems = _two_element_list(busy)
    busy.pages[elems[1]]["next"] = elems[0]
    with pytest.raises(InvariantError, match=f"walk does not end: pfn {elems[0]} comes round"):
        check_invariants(busy)


def test_list_count_mismatch(busy: Machine) -> None:
    o, mt, elems = _two_element_list(busy)
    _zone(busy)["nr_free_mt"][o, mt] += 1
    with pytest.raises(InvariantError, match=f"list holds {len(elems)} blocks but nr_free_mt "
                                             f"is {len(elems) + 1}"):
        check_invariants(busy)


def test_empty_list_with_count(busy: Machine) -> None:
    _zone(busy)["nr_free_mt"][0, 4] = 1
    with pytest.raises(InvariantError, match=r"free_list\[4\]: list holds 0 blocks"):
        check_invariants(busy)


def test_empty_list_with_tail(busy: Machine) -> None:
    _zone(busy)["tail"][0, 4] = 7
    with pytest.raises(InvariantError, match=r"free_list\[4\]: list is empty but tail is 7"):
        check_invariants(busy)


def test_list_points_at_allocated_page(busy: Machine) -> None:
    pfn = busy.alloc(0, migratetype=MIGRATE_UNMOVABLE)
    _zone(busy)["head"][0, 4] = pfn
    with pytest.raises(InvariantError, match=f"list element pfn {pfn} is not a free block"):
        check_invariants(busy)


def test_list_element_on_two_lists(busy: Machine) -> None:
    o, mt, elems = _two_element_list(busy)
    zone = _zone(busy)
    zone["head"][o, 7] = elems[-1]  # list 7 is walked after list mt
    zone["tail"][o, 7] = elems[-1]
    with pytest.raises(InvariantError, match=rf"free_list\[7\]: pfn {elems[-1]} is on this list "
                                             "and on another"):
        check_invariants(busy)


def test_free_block_on_no_list(busy: Machine) -> None:
    o, mt, elems = _two_element_list(busy)
    zone = _zone(busy)
    zone["head"][o, mt] = elems[1]
    busy.pages[elems[1]]["prev"] = -1
    zone["nr_free_mt"][o, mt] -= 1
    zone["nr_free"][o] -= 1
    with pytest.raises(InvariantError, match=f"free block at pfn {elems[0]} order {o} "
                                             rf"\(mt {mt}\) is on no free list"):
        check_invariants(busy)


def test_nr_free_mismatch(busy: Machine) -> None:
    _zone(busy)["nr_free"][3] += 1
    with pytest.raises(InvariantError, match=r"nr_free\[3\] is \d+ but its lists hold"):
        check_invariants(busy)


def test_free_pages_mismatch(busy: Machine) -> None:
    _zone(busy)["free_pages"] += 1
    with pytest.raises(InvariantError, match="free_pages is .* but free blocks hold"):
        check_invariants(busy)


def test_present_pages_mismatch(busy: Machine) -> None:
    _zone(busy)["present_pages"] -= 1
    with pytest.raises(InvariantError, match=r"pages != present_pages 16383"):
        check_invariants(busy)


def test_pageblock_type_invalid(busy: Machine) -> None:
    busy.pageblock_type[3] = 7
    with pytest.raises(InvariantError, match=r"pageblock 3 \(pfn 1536\) has type 7"):
        check_invariants(busy)


def test_grouping_off_pageblock_not_unmovable(vanilla_machine: Machine) -> None:
    vanilla_machine.pageblock_type[5] = MIGRATE_MOVABLE
    with pytest.raises(InvariantError, match=r"grouping is off but pageblock 5 \(pfn 2560\)"):
        check_invariants(vanilla_machine)


def test_grouping_off_free_block_off_list_zero(vanilla_machine: Machine) -> None:
    zone = _zone(vanilla_machine)
    pfn = int(zone["head"][10, 0])
    _list_del(vanilla_machine.pages, zone, pfn)
    _list_add(vanilla_machine.pages, zone, 10, MIGRATE_MOVABLE, pfn)
    with pytest.raises(InvariantError, match=rf"grouping is off but free_area\[10\]"
                                             rf"\.free_list\[2\] holds blocks \(pfn {pfn}\)"):
        check_invariants(vanilla_machine)


def test_grouping_on_list_type_out_of_range(mobility_machine: Machine) -> None:
    zone = _zone(mobility_machine)
    pfn = int(zone["head"][10, MIGRATE_MOVABLE])
    _list_del(mobility_machine.pages, zone, pfn)
    _list_add(mobility_machine.pages, zone, 10, 6, pfn)
    with pytest.raises(InvariantError, match=r"free_list\[6\] holds blocks of a type outside"):
        check_invariants(mobility_machine)


def test_pgalloc_pgfree_mismatch(busy: Machine) -> None:
    busy.node[0]["stat"][STAT["pgalloc"]] += 1
    with pytest.raises(InvariantError, match="pgalloc - pgfree is"):
        check_invariants(busy)


def test_error_is_an_assertion_error() -> None:
    assert issubclass(InvariantError, AssertionError)

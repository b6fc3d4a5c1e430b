"""`sim.trace_gfp.GfpCheck`: the gfp text of 6.1 `mm_page_alloc` lines, checked line by line."""

from __future__ import annotations

import pytest

from fragsim.models.mm.gfp import GFP, GFP_HIGHUSER_MOVABLE
from fragsim.sim.trace import TraceFormatError
from fragsim.sim.trace_gfp import GfpCheck

PREFIX = "             cat-212     [000] .....     2.500000: "


def alloc(order: int, mt: int, gfp: str, page: str = "00000000a1b2c3d4") -> str:
    return (f"{PREFIX}mm_page_alloc: page={page} pfn=0x1234 order={order} migratetype={mt} "
            f"gfp_flags={gfp}\n")


def test_counts() -> None:
    check = GfpCheck()
    for line in (alloc(0, 1, "GFP_HIGHUSER_MOVABLE"),
                 alloc(0, 1, "GFP_HIGHUSER_MOVABLE"),
                 alloc(0, 0, "GFP_HIGHUSER_MOVABLE"),  # printed type is not the flags'
                 alloc(3, 0, "GFP_ATOMIC|__GFP_NOWARN|__GFP_COMP"),
                 alloc(0, 0, "GFP_ATOMIC"),  # atomic, but order 0
                 f"{PREFIX}mm_page_free: page=00000000a1b2c3d4 pfn=0x1234 order=0\n",
                 f"{PREFIX}mm_page_alloc_zone_locked: page=00000000a1b2c3d4 pfn=0x1234 "
                 "order=0 migratetype=1 percpu_refill=1\n"):
        check.line(line)
    assert (check.checked, check.mismatches, check.atomic_high_order) == (5, 1, 1)
    assert len(check.masks) == 3
    model, n = check.masks[next(iter(check.masks))]
    assert model == GFP_HIGHUSER_MOVABLE and n == 3
    rows = dict(check.rows())
    assert rows["gfp_checked_allocs"] == 5 and rows["gfp_migratetype_mismatches"] == 1
    assert GFP.HIGH in check.masks[list(check.masks)[1]][0]


def test_unknown_flag_names_line() -> None:
    with pytest.raises(TraceFormatError) as info:
        GfpCheck().line(alloc(0, 0, "GFP_KERNEL|__GFP_OTHER_NODE"), 7, "t.trace")
    assert str(info.value).startswith("t.trace:7: malformed trace line (unknown gfp flag "
                                      "'__GFP_OTHER_NODE'")
    assert "\n" not in str(info.value)


def test_other_field_orders_are_left_to_the_reader() -> None:
    check = GfpCheck()
    check.line(f"{PREFIX}mm_page_alloc: page=00000000a1b2c3d4 order=0 migratetype=1 "
               "gfp_flags=__GFP_BOGUS\n")  # no pfn=: sim.trace reports it as malformed
    assert check.checked == 0

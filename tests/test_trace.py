"""Tests for sim.trace: reading `kmem` ftrace lines (include/trace/events/kmem.h) of every era."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fragsim.sim.trace as trace
from fragsim.models.mm.constants import MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE
from fragsim.sim.trace import (
    ALLOC,
    ALLOC_FAILED,
    FREE,
    FREE_BATCHED,
    TraceEvent,
    TraceFormatError,
    iter_batches,
    parse_line,
    parse_lines,
)

PREFIX = "         kswapd0-52      [001] .....  1234.567890: "
MODERN_ALLOC = ("mm_page_alloc: page=0xffffea0004a3b2c0 pfn=0x128ecb order=0 migratetype=1 "
                "gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO")


def test_public_names_exist() -> None:
    for name in trace.__all__:
        assert hasattr(trace, name), name


@pytest.mark.parametrize("prefix", [
    "",
    PREFIX,
    "     Web Content-3388    [005] d..1.  4711.000289: ",  # a task name with a space
    "  kswapd0-52    [001] ....  1234.567890: ",  # 4-character flags (older kernels)
    "         kswapd0    52 [001]  1234.567890: kmem:",  # perf script
])
def test_modern_alloc_with_or_without_prefix(prefix: str) -> None:
    assert parse_line(prefix + MODERN_ALLOC) == TraceEvent(ALLOC, 0x128ECB, 0, MIGRATE_MOVABLE)


@pytest.mark.parametrize(("line", "event"), [
    ("mm_page_free: page=0xffffea0004a3b2c0 pfn=0x128ecb order=2",
     TraceEvent(FREE, 0x128ECB, 2, -1)),
    ("mm_page_free_batched: page=0xffffea0004a3b2c0 pfn=0x128ecb order=0",
     TraceEvent(FREE_BATCHED, 0x128ECB, 0, -1)),
    # 3.3-4.x: decimal pfn, and `cold=`
    ("mm_page_free_batched: page=ffffea0004a3b2c0 pfn=1216203 order=0 cold=0",
     TraceEvent(FREE_BATCHED, 1216203, 0, -1)),
    ("mm_page_alloc: page=ffffea0004a3b2c0 pfn=1219275 order=3 migratetype=0 gfp_flags=GFP_KERNEL",
     TraceEvent(ALLOC, 1219275, 3, MIGRATE_UNMOVABLE)),
    # before 3.3
    ("mm_page_free_direct: page=ffffea0004a3b2c0 pfn=1219275 order=1",
     TraceEvent(FREE, 1219275, 1, -1)),
    ("mm_pagevec_free: page=ffffea0004a3b2c0 pfn=1219275 order=0 cold=1",
     TraceEvent(FREE_BATCHED, 1219275, 0, -1)),
    # fields in another order: read by the careful path
    ("mm_page_alloc: page=0x1 pfn=0x10 order=2 gfp_flags=GFP_KERNEL migratetype=2",
     TraceEvent(ALLOC, 0x10, 2, MIGRATE_RECLAIMABLE)),
    ("mm_page_free: pfn=0x10 order=1 page=0x1", TraceEvent(FREE, 0x10, 1, -1)),
    # hashed %p pointers
    ("mm_page_free: page=00000000d8e9e4b8 pfn=0x1b1e02 order=0",
     TraceEvent(FREE, 0x1B1E02, 0, -1)),
])
def test_event_names_and_pfn_bases(line: str, event: TraceEvent) -> None:
    assert parse_line(PREFIX + line) == event
    assert parse_line(line) == event
    batch = parse_lines([line])
    assert not batch.malformed
    assert (batch.kinds.tolist(), batch.pfns.tolist(), batch.orders.tolist(),
            batch.migratetypes.tolist()) == ([event.kind], [event.pfn], [event.order],
                                             [event.migratetype])


@pytest.mark.parametrize("line", [
    "",
    "\n",
    "# tracer: nop",
    "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION",
    "# mm_page_alloc: page=0x1 pfn=0x1 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
    "CPU:3 [LOST 12 EVENTS]",
    PREFIX + "mm_page_alloc_zone_locked: page=0xffffea0004a3b2c0 pfn=0x128ecb order=0 "
             "migratetype=1 percpu_refill=1",
    PREFIX + "mm_page_pcpu_drain: page=0xffffea0004a3b2c0 pfn=0x128ecb order=0 migratetype=1",
    PREFIX + "mm_page_alloc_extfrag: page=0xffffea0004a3b2c0 pfn=0x128ecb alloc_order=0 "
             "fallback_order=9 pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 "
             "fragmenting=0 change_ownership=1",
    PREFIX + "kmalloc: call_site=alloc_pipe_info+0x4f/0x120 ptr=00000000a3c2b1d4 bytes_req=640",
    PREFIX + "sched_switch: prev_comm=bash prev_pid=1234",
    PREFIX + "xmm_page_alloc: page=0x1 pfn=0x1 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
])
def test_irrelevant_lines(line: str) -> None:
    assert parse_line(line) is None


@pytest.mark.parametrize("page", ["(null)", "0000000000000000", "0x0"])
def test_failed_traced_allocation(page: str) -> None:
    line = f"mm_page_alloc: page={page} pfn=0x0 order=9 migratetype=1 gfp_flags=GFP_TRANSHUGE"
    assert parse_line(PREFIX + line) == TraceEvent(ALLOC_FAILED, -1, 9, MIGRATE_MOVABLE)


def test_failed_allocation_with_meaningless_pfn() -> None:
    # 2.6.3x computed page_to_pfn(NULL): a huge number, ignored for a NULL page
    line = ("mm_page_alloc: page=(null) pfn=18446719884453740544 order=4 migratetype=0 "
            "gfp_flags=GFP_KERNEL")
    assert parse_line(line) == TraceEvent(ALLOC_FAILED, -1, 4, MIGRATE_UNMOVABLE)


@pytest.mark.parametrize(("line", "reason"), [
    # very old format: no pfn at all
    ("mm_page_alloc: page=ffffea0004a3b2c0 order=0 migratetype=2 gfp_flags=GFP_HIGHUSER_MOVABLE",
     "mm_page_alloc without pfn="),
    ("mm_page_free: page=0xffffea0004169a80 pfn=0x105a6a ord", "mm_page_free without order="),
    ("mm_page_free: page=0xffffea0004169a80 pfn=0x105a6a order=", "order= is not a decimal"),
    ("mm_page_free: page=0xffffea0004169a80 pfn=0x105a6a order=x", "order=x is not a decimal"),
    ("mm_page_free: page=0xffffea0004169a80 pfn=0x105a6a order=0x1",
     "order=0x1 is not a decimal number"),
    ("mm_page_free: page=0xffffea0004169a80 pfn=\u0661\u0662 order=0",
     "pfn=\u0661\u0662 is not a decimal or 0x hex number"),
    ("mm_page_alloc: page=0xffffea0004a3b2c0 pfn=0x128ecb order=0 migratetype=one gfp_flags=x",
     "migratetype=one is not a decimal number"),
    ("mm_page_free: page=0xffffea0004169a80 pfn=0xZZ order=0",
     "pfn=0xZZ is not a decimal or 0x hex number"),
    ("mm_page_free: page=0xffffea0004169a80 pfn=-5 order=0",
     "pfn=-5 is not a decimal or 0x hex number"),
    ("mm_page_alloc: page=0xffffea0004a3b2c0 pfn=0x128ecb order=0 gfp_flags=GFP_KERNEL",
     "mm_page_alloc without migratetype="),
    ("mm_page_alloc: page=0xffffea0004a3b2c0 pfn=0x128ecb order=0 migratetype=3 gfp_flags=x",
     "migratetype=3 is not a request type in modern numbering: allowed 0 (Unmovable), "
     "1 (Movable), 2 (Reclaimable)"),
    ("mm_page_alloc: page=0xffffea0004a3b2c0 pfn=0x128ecb order=0 migratetype=-1 gfp_flags=x",
     "migratetype=-1 is not a request type"),
    ("mm_page_free: page=0xffffea0004169a80 pfn=0x105a6a order=64",
     "order=64 is out of range 0..63"),
    ("mm_page_free: page=0xffffea0004169a80 pfn=0x8000000000000000 order=0",
     "pfn=0x8000000000000000 is out of range"),
    ("mm_page_free:", "mm_page_free without page="),
])
def test_malformed_lines(line: str, reason: str) -> None:
    with pytest.raises(TraceFormatError) as info:
        parse_line(PREFIX + line)
    assert reason in info.value.reason
    assert "\n" not in str(info.value)
    batch = parse_lines([PREFIX + line + "\n"])
    assert len(batch) == 0 and [e.reason for e in batch.malformed] == [info.value.reason]


@pytest.mark.parametrize(("numbering", "value", "expected"), [
    ("modern", 0, MIGRATE_UNMOVABLE),
    ("modern", 1, MIGRATE_MOVABLE),
    ("modern", 2, MIGRATE_RECLAIMABLE),
    ("2.6.24", 0, MIGRATE_UNMOVABLE),
    ("2.6.24", 1, MIGRATE_RECLAIMABLE),
    ("2.6.24", 2, MIGRATE_MOVABLE),
])
def test_migratetype_numberings(numbering: str, value: int, expected: int) -> None:
    line = f"mm_page_alloc: page=0x1 pfn=0x10 order=0 migratetype={value} gfp_flags=GFP_KERNEL"
    event = parse_line(line, numbering)
    assert event is not None and event.migratetype == expected
    batch = parse_lines([line], numbering)
    assert batch.migratetypes.tolist() == [expected]


def test_old_numbering_rejects_reserve_requests() -> None:
    line = "mm_page_alloc: page=0x1 pfn=0x10 order=0 migratetype=3 gfp_flags=GFP_KERNEL"
    with pytest.raises(TraceFormatError, match=r"allowed 0 \(Unmovable\), 1 \(Reclaimable\), "
                                               r"2 \(Movable\)"):
        parse_line(line, "2.6.24")


def test_unknown_numbering() -> None:
    with pytest.raises(ValueError, match=r"unknown migratetype numbering '3.0': allowed are "
                                         r"modern, 2.6.24"):
        parse_line(MODERN_ALLOC, "3.0")


def test_parse_lines_arrays_and_line_numbers() -> None:
    lines = [
        "# tracer: nop\n",
        PREFIX + MODERN_ALLOC + "\n",
        "mm_page_alloc: page=ffffea00 order=0 migratetype=1 gfp_flags=GFP_KERNEL\n",
        "mm_page_alloc: page=(null) pfn=0x0 order=9 migratetype=1 gfp_flags=GFP_TRANSHUGE\n",
        "\n",
        PREFIX + "mm_page_free: page=0xffffea0004a3b2c0 pfn=0x128ecb order=0\n",
        "mm_page_free_batched: page=ffffea0004a3b2c0 pfn=1216203 order=0 cold=0\n",
    ]
    batch = parse_lines(lines, first_lineno=10, source="t.trace")
    assert batch.lines == 7 and len(batch) == 4
    assert batch.kinds.dtype == np.int64
    assert batch.kinds.tolist() == [ALLOC, ALLOC_FAILED, FREE, FREE_BATCHED]
    assert batch.pfns.tolist() == [0x128ECB, -1, 0x128ECB, 1216203]
    assert batch.orders.tolist() == [0, 9, 0, 0]
    assert batch.migratetypes.tolist() == [MIGRATE_MOVABLE, MIGRATE_MOVABLE, -1, -1]
    (bad,) = batch.malformed
    assert bad.lineno == 12
    assert str(bad) == ("t.trace:12: malformed trace line (mm_page_alloc without pfn= (the traced "
                        "kernel did not print it; replay needs it)): 'mm_page_alloc: "
                        "page=ffffea00 order=0 migratetype=1 gfp_flags=GFP_KERNEL'")


def test_cpu_and_cold_when_asked_for() -> None:
    lines = [
        PREFIX + MODERN_ALLOC,
        "  kswapd0    52 [003]  1234.567890: kmem:mm_page_free: page=0x1 pfn=0x10 order=0",
        "mm_page_alloc: page=0x1 pfn=0x10 order=0 migratetype=1 gfp_flags=GFP_USER|__GFP_COLD",
        "   cc1-77 [012] d..1 3.5: mm_pagevec_free: page=ffffea00 pfn=16 order=0 cold=1",
        "   cc1-77 [002] d..1 3.5: mm_page_free_batched: page=ffffea00 pfn=16 order=0 cold=0",
    ]
    batch = parse_lines(lines, with_cpu=True)
    assert batch.cpus.tolist() == [1, 3, 0, 12, 2]
    assert batch.colds.tolist() == [0, 0, 1, 1, 0]
    plain = parse_lines(lines)
    assert plain.cpus.tolist() == plain.colds.tolist() == [0] * 5
    assert plain.kinds.tolist() == batch.kinds.tolist()


def test_iter_batches_keeps_line_numbers_across_batches() -> None:
    text = "".join([PREFIX + MODERN_ALLOC + "\n"] * 4 + ["mm_page_free: page=0x1 pfn=0x1\n"]
                   + [PREFIX + MODERN_ALLOC + "\n"] * 2)
    batches = list(iter_batches(io.StringIO(text), batch_lines=2, source="s"))
    assert [b.lines for b in batches] == [2, 2, 2, 1]
    assert sum(len(b) for b in batches) == 6
    assert sum(b.chars for b in batches) == len(text)
    (bad,) = [e for b in batches for e in b.malformed]
    assert bad.lineno == 5 and str(bad).startswith("s:5: malformed trace line (")


def test_long_malformed_line_is_shortened() -> None:
    line = "mm_page_free: page=0x1 order=0 " + "x" * 500
    with pytest.raises(TraceFormatError) as info:
        parse_line(line)
    assert len(str(info.value)) < 350 and str(info.value).endswith("...'")


@given(
    kind=st.sampled_from(["mm_page_alloc", "mm_page_free", "mm_page_free_batched",
                          "mm_page_free_direct", "mm_pagevec_free"]),
    pfn=st.integers(0, (1 << 62) - 1),
    order=st.integers(0, 63),
    mt=st.integers(0, 2),
    hex_pfn=st.booleans(),
    prefixed=st.booleans(),
    tail=st.sampled_from(["", " cold=0", " gfp_flags=GFP_KERNEL|__GFP_ZERO"]),
)
def test_fast_and_careful_paths_agree(kind: str, pfn: int, order: int, mt: int, hex_pfn: bool,
                                      prefixed: bool, tail: str) -> None:
    pfn_text = hex(pfn) if hex_pfn else str(pfn)
    fields = f"page=0xffffea{pfn:x} pfn={pfn_text} order={order}"
    if kind == "mm_page_alloc":
        fields += f" migratetype={mt}"
    line = (PREFIX if prefixed else "") + f"{kind}: {fields}{tail}"
    event = parse_line(line)
    assert event is not None and event.pfn == pfn and event.order == order
    batch = parse_lines([line])
    assert (batch.kinds.tolist(), batch.pfns.tolist(), batch.orders.tolist(),
            batch.migratetypes.tolist()) == ([event.kind], [pfn], [order], [event.migratetype])

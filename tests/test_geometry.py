"""`models.mm.geometry`: sizes, profiles, zone spans and ZONE_MOVABLE sizing (2.6.23)."""

from __future__ import annotations

import pytest

from fragsim.models.mm.constants import (
    ZONE_DMA,
    ZONE_DMA32,
    ZONE_HIGHMEM,
    ZONE_MOVABLE,
    ZONE_NORMAL,
)
from fragsim.models.mm.geometry import (
    PROFILES,
    GiB,
    MiB,
    check_orders,
    get_profile,
    memory_pages,
    parse_size,
    split_movable,
    zone_spans,
)


@pytest.mark.parametrize(("text", "value"), [
    ("64MiB", 64 * MiB), ("64M", 64 * MiB), ("4GiB", 4 * GiB), ("4 gb", 4 * GiB),
    ("512k", 512 * 1024), ("1048576", 1 << 20), (4096, 4096), ("1T", 1 << 40),
])
def test_parse_size(text: str | int, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "abc", "12 furlongs", "1.5G", "-4M", "0", 0])
def test_parse_size_rejects(text: str | int) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_profiles() -> None:
    assert (PROFILES["x86_64"].max_order, PROFILES["x86_64"].pageblock_order) == (11, 9)
    assert (PROFILES["x86"].max_order, PROFILES["x86"].pageblock_order) == (11, 10)
    assert (PROFILES["ppc64"].max_order, PROFILES["ppc64"].pageblock_order) == (13, 12)
    assert get_profile("x86") is PROFILES["x86"]
    with pytest.raises(ValueError, match="unknown machine profile 'arm'.*ppc64, x86, x86_64"):
        get_profile("arm")


def test_check_orders() -> None:
    check_orders(11, 9)
    check_orders(2, 1)
    with pytest.raises(ValueError, match="max-order 17 is out of range: allowed 2..16"):
        check_orders(17, 9)
    with pytest.raises(ValueError, match=r"pageblock-order 11 is out of range: allowed 1..10"):
        check_orders(11, 11)
    with pytest.raises(ValueError, match="pageblock-order 0"):
        check_orders(11, 0)


def test_memory_pages() -> None:
    assert memory_pages(64 * MiB, 11) == 16384
    assert memory_pages(64 * 1024, 5) == 16
    with pytest.raises(ValueError, match="not a positive multiple of the max-order block "
                                         r"\(4096 KiB with max-order 11\)"):
        memory_pages(6 * MiB, 11)
    with pytest.raises(ValueError, match="too large"):
        memory_pages(8 << 40, 11)


def test_zone_spans_x86_64() -> None:
    # DMA below 16 MiB (pfn 4096), DMA32 below 4 GiB (pfn 1048576), Normal the rest.
    spans = zone_spans(PROFILES["x86_64"], 2097152)  # 8 GiB
    assert spans[ZONE_DMA] == (0, 4096)
    assert spans[ZONE_DMA32] == (4096, 1048576)
    assert spans[ZONE_NORMAL] == (1048576, 2097152)
    assert spans[ZONE_HIGHMEM][0] == spans[ZONE_HIGHMEM][1]
    # 8 MiB: only DMA has pages.
    small = zone_spans(PROFILES["x86_64"], 2048)
    assert small[ZONE_DMA] == (0, 2048)
    assert [e - s for s, e in small[1:]] == [0, 0, 0, 0]


def test_zone_spans_x86_and_ppc64() -> None:
    # x86 2 GiB: DMA < 16 MiB, Normal < 896 MiB (pfn 229376), HighMem above.
    spans = zone_spans(PROFILES["x86"], 524288)
    assert spans[ZONE_DMA] == (0, 4096)
    assert spans[ZONE_NORMAL] == (4096, 229376)
    assert spans[ZONE_HIGHMEM] == (229376, 524288)
    assert zone_spans(PROFILES["ppc64"], 262144)[ZONE_DMA] == (0, 262144)


def test_zone_spans_flat() -> None:
    spans = zone_spans(None, 16384)
    assert spans[ZONE_NORMAL] == (0, 16384)
    assert sum(e - s for s, e in spans) == 16384


def test_split_movable_kernelcore() -> None:
    flat = zone_spans(None, 16384)
    # No kernelcore/movablecore: no ZONE_MOVABLE.
    assert split_movable(flat, None, None, 11) == flat
    # kernelcore=100 pages: ZONE_MOVABLE starts at 100 rounded up to MAX_ORDER_NR_PAGES.
    out = split_movable(flat, 100, None, 11)
    assert out[ZONE_NORMAL] == (0, 1024) and out[ZONE_MOVABLE] == (1024, 16384)
    # kernelcore at least all of memory: ZONE_MOVABLE would be empty, spans unchanged.
    assert split_movable(flat, 20000, None, 11) == flat


def test_split_movable_lower_zones_count_as_kernelcore() -> None:
    # x86_64 8 GiB, kernelcore=3 GiB: DMA + DMA32 (4 GiB) already exceed it, so all of Normal
    # becomes ZONE_MOVABLE (find_zone_movable_pfns_for_nodes: kernel_pages below
    # usable_startpfn are subtracted first).
    spans = zone_spans(PROFILES["x86_64"], 2097152)
    out = split_movable(spans, 786432, None, 11)
    assert out[ZONE_NORMAL][0] == out[ZONE_NORMAL][1]
    assert out[ZONE_MOVABLE] == (1048576, 2097152)
    # kernelcore=5 GiB: 1 GiB of Normal stays; the rest is movable.
    out = split_movable(spans, 5 * 262144, None, 11)
    assert out[ZONE_NORMAL] == (1048576, 1310720)
    assert out[ZONE_MOVABLE] == (1310720, 2097152)


def test_split_movable_movablecore() -> None:
    # movablecore=3000 pages rounds up to 3072 (3 max-order blocks): kernelcore 13312.
    out = split_movable(zone_spans(None, 16384), None, 3000, 11)
    assert out[ZONE_NORMAL] == (0, 13312) and out[ZONE_MOVABLE] == (13312, 16384)
    # Both given: kernelcore = max(kernelcore, total - movablecore).
    out = split_movable(zone_spans(None, 16384), 14000, 3000, 11)
    assert out[ZONE_MOVABLE] == (14336, 16384)

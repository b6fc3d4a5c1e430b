"""Tests for models.mm.metrics: the mm/vmstat.c indices, checked against hand arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fragsim.models.mm import metrics
from fragsim.models.mm.metrics import (
    fill_contig_page_info,
    format_index,
    fragmentation_index,
    high_order_free_share,
    unusable_index,
)

# A DMA zone from a real x86_64 /proc/buddyinfo: 3975 free pages in 12 blocks.
DMA = [1, 1, 1, 0, 2, 1, 1, 0, 1, 1, 3]


def test_all_is_exported() -> None:
    for name in metrics.__all__:
        assert hasattr(metrics, name)


def test_fill_contig_page_info_by_hand() -> None:
    info = fill_contig_page_info(DMA, 9)
    assert info.free_pages == 1 + 2 + 4 + 32 + 32 + 64 + 256 + 512 + 3 * 1024
    assert info.free_blocks_total == 12
    assert info.free_blocks_suitable == 1 + 3 * 2


def test_unusable_index_by_hand() -> None:
    # order 9: 7 suitable blocks of 512 pages = 3584 of 3975 pages usable.
    assert unusable_index(DMA, 9) == (3975 - 3584) * 1000 // 3975 == 98
    # order 0: every free page is usable.
    assert unusable_index(DMA, 0) == 0
    # order 10: 3 blocks of 1024 usable.
    assert unusable_index(DMA, 10) == (3975 - 3072) * 1000 // 3975 == 227


def test_unusable_index_no_free_memory_is_all_unusable() -> None:
    assert unusable_index([0] * 11, 0) == 1000
    assert unusable_index([0] * 11, 5) == 1000


def test_unusable_index_no_suitable_block_is_1000() -> None:
    assert unusable_index([7, 3, 0, 0], 2) == 1000


def test_fragmentation_index_cases() -> None:
    assert fragmentation_index([0] * 11, 3) == 0  # no free blocks at all
    assert fragmentation_index(DMA, 10) == -1000  # a block is there
    # 10 order-0 and 5 order-1 blocks = 20 pages, 15 blocks, asking for order 2 (4 pages):
    # 1000 - (1000 + 20 * 1000 // 4) // 15 = 1000 - 6000 // 15 = 600.
    assert fragmentation_index([10, 5, 0, 0], 2) == 600


def test_fragmentation_index_can_be_negative_beyond_minus_1000() -> None:
    # One free page, asking for order 1: 1000 - (1000 + 500) // 1 = -500 (lack of memory).
    assert fragmentation_index([1, 0, 0], 1) == -500


def test_fragmentation_index_real_normal_zone() -> None:
    nr_free = [24155, 12432, 5120, 1987, 640, 221, 81, 22, 7, 1, 0]
    free_pages = sum(c << o for o, c in enumerate(nr_free))
    assert free_pages == 113011
    assert sum(nr_free) == 44666
    # 113011000 // 1024 = 110362; (1000 + 110362) // 44666 = 2.
    assert fragmentation_index(nr_free, 10) == 998
    assert unusable_index(nr_free, 10) == 1000


@pytest.mark.parametrize(("value", "text"), [
    (0, "0.000"),
    (5, "0.005"),
    (98, "0.098"),
    (600, "0.600"),
    (1000, "1.000"),
    (-1000, "-1.000"),
    # C: -500 / 1000 == 0 and -500 % 1000 == -500; "%03d" of -500 is "-500".
    (-500, "0.-500"),
    (-5, "0.-05"),
    (-1500, "-1.-500"),
])
def test_format_index_uses_c_division(value: int, text: str) -> None:
    assert format_index(value) == text


def test_high_order_free_share() -> None:
    assert high_order_free_share(DMA, 9) == pytest.approx(3584 / 3975)
    assert high_order_free_share([0] * 11, 9) == 0.0
    assert high_order_free_share(DMA, 0) == 1.0


def test_accepts_numpy_vectors() -> None:
    nr_free = np.array(DMA, dtype=np.int64)
    assert unusable_index(nr_free, 9) == 98
    assert fragmentation_index(nr_free.astype(np.int32), 9) == -1000


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="negative"):
        unusable_index([1, -1], 0)
    with pytest.raises(ValueError, match="order"):
        fragmentation_index([1, 1], -1)


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=14), st.integers(0, 13))
def test_indices_stay_in_range(nr_free: list[int], order: int) -> None:
    u = unusable_index(nr_free, order)
    f = fragmentation_index(nr_free, order)
    assert 0 <= u <= 1000
    assert -1000 <= f <= 1000
    share = high_order_free_share(nr_free, order)
    if sum(nr_free):
        # The share is the unrounded complement of the unusable index.
        assert 1000 - u - 1 < share * 1000 <= 1000 - u + 1e-9

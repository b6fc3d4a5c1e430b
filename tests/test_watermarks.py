"""`models.mm.watermarks`: 2.6.24 min_free_kbytes, pages_min/low/high, lowmem_reserve and
MIGRATE_RESERVE set-up, with values worked by hand from `mm/page_alloc.c`."""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.mm.constants import (
    MIGRATE_MOVABLE,
    MIGRATE_RESERVE,
    ZONE_DMA,
    ZONE_DMA32,
    ZONE_HIGHMEM,
    ZONE_MOVABLE,
    ZONE_NORMAL,
)
from fragsim.models.mm.geometry import GiB, MiB
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.watermarks import (
    default_min_free_kbytes,
    is_highmem,
    lowmem_reserve_ratios,
    lowmem_reserves,
    setup_zone_migrate_reserve,
    zone_watermarks,
)


@pytest.mark.parametrize(("lowmem", "kbytes"), [
    (GiB, 4096),  # int_sqrt(1048576 * 16) = 4096
    (64 * MiB, 1024),  # int_sqrt(65536 * 16) = 1024
    (16 * MiB, 512),  # int_sqrt(16384 * 16) = 512
    (896 * MiB, 3831),  # int_sqrt(917504 * 16) = int_sqrt(14680064) = 3831 (3832^2 > it)
    (1 * MiB, 128),  # int_sqrt(1024 * 16) = 128, the floor
    (256 * 1024, 128),  # int_sqrt(4096) = 64, clamped up to 128
    (256 * GiB, 65536),  # int_sqrt(2^28 * 16) = 65536, the ceiling
    (1 << 40, 65536),  # int_sqrt(2^34) = 131072, clamped down
])
def test_default_min_free_kbytes(lowmem: int, kbytes: int) -> None:
    assert default_min_free_kbytes(lowmem >> 12) == kbytes


def test_zone_watermarks_split_by_size() -> None:
    # 1024 kB -> pages_min 256 over 16384 lowmem pages: DMA (4096) gets 64, DMA32 (12288) 192;
    # low = min + min/4, high = min + min/2.
    present = [4096, 12288, 0, 0, 0]
    marks = zone_watermarks(present, 1024, movable_is_highmem=False)
    assert marks[ZONE_DMA] == (64, 80, 96)
    assert marks[ZONE_DMA32] == (192, 240, 288)
    assert marks[ZONE_NORMAL] == (0, 0, 0)


def test_zone_watermarks_highmem() -> None:
    # x86 2 GiB: DMA 4096, Normal 225280, HighMem 294912 pages; lowmem 229376 pages.
    # min_free_kbytes 3831 -> pages_min 957.
    # DMA: tmp = 957 * 4096 // 229376 = 17 -> (17, 17 + 4, 17 + 8).
    # Normal: tmp = 957 * 225280 // 229376 = 939 -> (939, 939 + 234, 939 + 469).
    # HighMem: tmp = 957 * 294912 // 229376 = 1230, but pages_min is
    # clamp(294912 / 1024 = 288, 32, 128) = 128 -> (128, 128 + 307, 128 + 615).
    present = [4096, 0, 225280, 294912, 0]
    marks = zone_watermarks(present, 3831, movable_is_highmem=False)
    assert marks[ZONE_DMA] == (17, 21, 25)
    assert marks[ZONE_NORMAL] == (939, 1173, 1408)
    assert marks[ZONE_HIGHMEM] == (128, 435, 743)
    # A small highmem zone gets SWAP_CLUSTER_MAX (32) as pages_min.
    small = zone_watermarks([4096, 0, 225280, 8192, 0], 3831, movable_is_highmem=False)
    assert small[ZONE_HIGHMEM][0] == 32


def test_is_highmem() -> None:
    assert is_highmem(ZONE_HIGHMEM, False)
    assert not is_highmem(ZONE_NORMAL, True)
    assert is_highmem(ZONE_MOVABLE, True)
    assert not is_highmem(ZONE_MOVABLE, False)


def test_lowmem_reserve_ratios() -> None:
    # 2.6.24: {256 (DMA), 256 (DMA32), [32 (CONFIG_HIGHMEM)], 32} over the configured zones.
    assert lowmem_reserve_ratios() == [256, 256, 32, 32, 32]


def test_lowmem_reserves_x86() -> None:
    # reserve[idx][j] = (present pages of zones idx+1..j) / ratio[idx].
    present = [4096, 0, 225280, 294912, 0]
    r = lowmem_reserves(present)
    assert r[ZONE_DMA][ZONE_DMA] == 0
    assert r[ZONE_DMA][ZONE_NORMAL] == 225280 // 256  # 880
    assert r[ZONE_NORMAL][ZONE_HIGHMEM] == 294912 // 32  # 9216
    assert r[ZONE_DMA][ZONE_HIGHMEM] == (225280 + 294912) // 256  # 2032
    assert r[ZONE_HIGHMEM] == [0, 0, 0, 0, 0]


def test_lowmem_reserves_x86_64_movable() -> None:
    present = [4096, 1044480, 262144, 0, 786432]
    r = lowmem_reserves(present)
    assert r[ZONE_NORMAL][ZONE_MOVABLE] == 786432 // 32  # 24576
    assert r[ZONE_DMA32][ZONE_NORMAL] == 262144 // 256
    assert r[ZONE_DMA32][ZONE_MOVABLE] == (786432 + 262144) // 256


def test_setup_zone_migrate_reserve_direct(mobility_machine: Machine) -> None:
    # Ask for 3 blocks: pageblocks 0 (already RESERVE), 1 and 2 (MOVABLE -> RESERVE). Block 1's
    # pages belong to the free block at 0; block 2 holds the head of the free block 1024.
    m = mobility_machine
    setup_zone_migrate_reserve(m.pages, m.zones, m.pageblock_type, m.node, ZONE_NORMAL, 3)
    assert np.flatnonzero(m.pageblock_type == MIGRATE_RESERVE).tolist() == [0, 1, 2]
    assert m.zones[ZONE_NORMAL]["nr_free_mt"][10, MIGRATE_RESERVE] == 2
    # Asking for 0 gives every RESERVE block back as MOVABLE.
    setup_zone_migrate_reserve(m.pages, m.zones, m.pageblock_type, m.node, ZONE_NORMAL, 0)
    assert (m.pageblock_type == MIGRATE_MOVABLE).all()
    assert m.zones[ZONE_NORMAL]["nr_free_mt"][10, MIGRATE_MOVABLE] == 16

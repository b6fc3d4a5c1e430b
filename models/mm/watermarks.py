"""Watermarks, lowmem_reserve and MIGRATE_RESERVE: 2.6.24 `mm/page_alloc.c` set-up code.

- `default_min_free_kbytes`: `init_per_zone_pages_min()`, `int_sqrt(lowmem_kbytes * 16)`
  clamped to [128, 65536].
- `zone_watermarks`: `setup_per_zone_pages_min()`: pages_min split over zones by size (highmem
  zones get a small fixed min), `low = min + tmp/4`, `high = min + tmp/2`. With a
  `watermark_scale_factor` (4.6+; 6.1 `__setup_per_zone_wmarks`): the gap is
  `max(tmp/4, managed * watermark_scale_factor / 10000)`, `low = min + gap`,
  `high = min + 2 * gap`. These are 6.1's `_watermark[]`: checks add the zone's 5.0+
  `watermark_boost` (`models.mm.boost.wmark_pages`), which `Machine.set_min_free_kbytes`
  resets to 0 as `__setup_per_zone_wmarks()` does.
- `lowmem_reserves`: `setup_per_zone_lowmem_reserve()` with `sysctl_lowmem_reserve_ratio`.
- `setup_zone_migrate_reserve`: walk pageblocks from the zone start, turning MOVABLE ones into
  RESERVE until `roundup(pages_min, pageblock_nr_pages) >> pageblock_order` exist, and giving
  back any RESERVE beyond that. 2.6.35 caps the count, `reserve = min(2, reserve)`: the caller
  (`Machine.set_min_free_kbytes`) applies the policy's `max_reserve_blocks`.
"""

from __future__ import annotations

import math

import numpy as np

from fragsim.models.mm.buddy import move_freepages_block
from fragsim.models.mm.constants import (
    MAX_NR_ZONES,
    MIGRATE_MOVABLE,
    MIGRATE_RESERVE,
    PAGE_SHIFT,
    ZONE_DMA,
    ZONE_DMA32,
    ZONE_HIGHMEM,
    ZONE_MOVABLE,
)
from fragsim.models.mm.jit import compiled

__all__ = [
    "SWAP_CLUSTER_MAX",
    "WATERMARK_SCALE_FACTOR_RANGE",
    "default_min_free_kbytes",
    "is_highmem",
    "lowmem_reserve_ratios",
    "lowmem_reserves",
    "setup_zone_migrate_reserve",
    "zone_watermarks",
]

#: SWAP_CLUSTER_MAX, the floor of a highmem zone's pages_min.
SWAP_CLUSTER_MAX = 32


def default_min_free_kbytes(lowmem_pages: int) -> int:
    """2.6.24 `init_per_zone_pages_min()`: `int_sqrt(lowmem_kbytes * 16)` in [128, 65536].

    `lowmem_pages` is `nr_free_buffer_pages()` at boot: the present pages of the zones GFP_USER
    may use (DMA, DMA32, Normal).
    """
    lowmem_kbytes = lowmem_pages << (PAGE_SHIFT - 10)
    return min(max(math.isqrt(lowmem_kbytes * 16), 128), 65536)


def is_highmem(ztype: int, movable_is_highmem: bool) -> bool:
    """2.6.24 `is_highmem()`: HighMem, and Movable when it was carved out of HighMem."""
    return ztype == ZONE_HIGHMEM or (ztype == ZONE_MOVABLE and movable_is_highmem)


#: /proc/sys/vm/watermark_scale_factor's range in 6.1 (SYSCTL_ONE .. SYSCTL_THREE_THOUSAND).
WATERMARK_SCALE_FACTOR_RANGE = (1, 3000)


def zone_watermarks(present: list[int], min_free_kbytes: int, movable_is_highmem: bool,
                    watermark_scale_factor: int | None = None) -> list[tuple[int, int, int]]:
    """2.6.24 `setup_per_zone_pages_min()`: (pages_min, pages_low, pages_high) per zone type.

    With `watermark_scale_factor` (None: the kernel has none, before 4.6), 6.1
    `__setup_per_zone_wmarks()`: "Set the kswapd watermarks distance according to the scale
    factor in proportion to available memory, but ensure a minimum size on small systems":
    `tmp = max(tmp >> 2, mult_frac(managed, watermark_scale_factor, 10000))`, low = min + tmp,
    high = min + tmp * 2 (managed pages are the present pages here).
    """
    pages_min = min_free_kbytes >> (PAGE_SHIFT - 10)
    lowmem_pages = sum(p for z, p in enumerate(present) if not is_highmem(z, movable_is_highmem))
    marks = []
    for z, zone_present in enumerate(present):
        tmp = pages_min * zone_present // lowmem_pages if lowmem_pages else 0
        if is_highmem(z, movable_is_highmem):
            # __GFP_HIGH and PF_MEMALLOC allocations usually don't need highmem pages, so cap
            # pages_min to a small value here.
            zmin = min(max(zone_present // 1024, SWAP_CLUSTER_MAX), 128)
        else:
            zmin = tmp
        if watermark_scale_factor is None:
            marks.append((zmin, zmin + (tmp >> 2), zmin + (tmp >> 1)))
        else:
            gap = max(tmp >> 2, zone_present * watermark_scale_factor // 10000)
            marks.append((zmin, zmin + gap, zmin + 2 * gap))
    return marks


def lowmem_reserve_ratios() -> list[int]:
    """2.6.24 `sysctl_lowmem_reserve_ratio[]` per zone type.

    The kernel array is `{256 (DMA), 256 (DMA32), 32 (HIGHMEM configured), 32}` over the
    configured zones, so on every profile DMA and DMA32 have 256 and Normal and HighMem 32.
    ZONE_MOVABLE is always the highest zone and never needs a ratio.
    """
    ratios = [32] * MAX_NR_ZONES
    ratios[ZONE_DMA] = 256
    ratios[ZONE_DMA32] = 256
    return ratios


def lowmem_reserves(present: list[int]) -> list[list[int]]:
    """2.6.24 `setup_per_zone_lowmem_reserve()`: `reserve[z][j]` for a request whose classzone
    is j."""
    ratios = lowmem_reserve_ratios()
    reserve = [[0] * MAX_NR_ZONES for _ in range(MAX_NR_ZONES)]
    for j in range(MAX_NR_ZONES):
        present_pages = present[j]
        idx = j
        while idx:
            idx -= 1
            reserve[idx][j] = present_pages // ratios[idx]
            present_pages += present[idx]
    return reserve


@compiled("pages, zones, pageblock_type, node, int, int")
def setup_zone_migrate_reserve(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                               node: np.ndarray, z: int, reserve: int) -> None:
    """2.6.24 `setup_zone_migrate_reserve()` for zone `z` with `reserve` pageblocks wanted.

    The walk is the same in 2.6.35 (which also skips PageReserved blocks; the model has no
    reserved memory); its `min(2, reserve)` is applied to `reserve` by the caller.
    """
    zone = zones[z]
    pbo = node[0]["pageblock_order"]
    pfn = zone["start_pfn"]
    end = zone["end_pfn"]
    while pfn < end:
        block_mt = pageblock_type[pfn >> pbo]
        if reserve > 0 and block_mt == MIGRATE_RESERVE:
            reserve -= 1
        elif reserve > 0 and block_mt == MIGRATE_MOVABLE:
            pageblock_type[pfn >> pbo] = MIGRATE_RESERVE
            move_freepages_block(pages, zone, pfn, MIGRATE_RESERVE, pbo)
            reserve -= 1
        elif block_mt == MIGRATE_RESERVE:
            # The reserve is met and this is a previous reserved block: take it back.
            pageblock_type[pfn >> pbo] = MIGRATE_MOVABLE
            move_freepages_block(pages, zone, pfn, MIGRATE_MOVABLE, pbo)
        pfn += 1 << pbo

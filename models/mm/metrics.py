"""External fragmentation metrics over a zone's free areas: `mm/vmstat.c` of Linux 2.6.35.

Every function takes a zone's `nr_free` vector (index = order, as `zone->free_area[order].nr_free`)
and follows `fill_contig_page_info()`, `unusable_free_index()` and `__fragmentation_index()`
exactly, in integer arithmetic, so that a simulated zone and a real machine's /proc/buddyinfo
give the same numbers. `format_index` prints a value as debugfs `extfrag/*` does, with C's
truncating division and remainder (so -500 prints as "0.-500", as the kernel really prints it).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "ContigPageInfo",
    "fill_contig_page_info",
    "format_index",
    "fragmentation_index",
    "high_order_free_share",
    "unusable_index",
]


class ContigPageInfo(NamedTuple):
    """`struct contig_page_info`: the zone's free memory as seen from one order."""

    free_pages: int
    free_blocks_total: int
    free_blocks_suitable: int


def _counts(nr_free: ArrayLike) -> list[int]:
    """`nr_free` as plain Python ints (no overflow, exact integer arithmetic)."""
    counts = [int(c) for c in np.asarray(nr_free).ravel()]
    if any(c < 0 for c in counts):
        raise ValueError(f"nr_free has a negative count: {counts}")
    return counts


def fill_contig_page_info(nr_free: ArrayLike, order: int) -> ContigPageInfo:
    """2.6.35 `fill_contig_page_info()`: free pages, free blocks, and blocks usable at `order`.

    `free_blocks_suitable` counts each free block of order >= `order` as `2^(o-order)` blocks.
    """
    if order < 0:
        raise ValueError(f"order {order} must be >= 0")
    free_pages = free_blocks_total = suitable = 0
    for o, blocks in enumerate(_counts(nr_free)):
        free_blocks_total += blocks
        free_pages += blocks << o
        if o >= order:
            suitable += blocks << (o - order)
    return ContigPageInfo(free_pages, free_blocks_total, suitable)


def unusable_index(nr_free: ArrayLike, order: int) -> int:
    """`unusable_free_index()` in thousandths: the share of free memory unusable at `order`.

    1000 when there is no free memory at all.
    """
    info = fill_contig_page_info(nr_free, order)
    if info.free_pages == 0:
        return 1000
    usable = info.free_blocks_suitable << order
    return (info.free_pages - usable) * 1000 // info.free_pages


def fragmentation_index(nr_free: ArrayLike, order: int) -> int:
    """`__fragmentation_index()` in thousandths.

    0 with no free blocks; -1000 when a block of `order` is free (the allocation would succeed);
    else `1000 - (1000 + free_pages * 1000 // 2^order) // free_blocks_total`: towards 1000 the
    failure is due to fragmentation, towards 0 (or below) to lack of memory.
    """
    info = fill_contig_page_info(nr_free, order)
    if info.free_blocks_total == 0:
        return 0
    if info.free_blocks_suitable:
        return -1000
    requested = 1 << order
    return 1000 - (1000 + info.free_pages * 1000 // requested) // info.free_blocks_total


def format_index(value: int) -> str:
    """The kernel's `"%d.%03d"` of `value / 1000, value % 1000` with C integer semantics.

    C division truncates towards zero and the remainder takes the dividend's sign, so -1000
    prints "-1.000" but -500 prints "0.-500" and -1500 "-1.-500": this is what the kernel shows.
    """
    quotient = abs(value) // 1000
    if value < 0:
        quotient = -quotient
    remainder = value - quotient * 1000
    return f"{quotient:d}.{remainder:03d}"


def high_order_free_share(nr_free: ArrayLike, order: int) -> float:
    """Share (0..1) of free memory that lies in free blocks of order >= `order`; 0.0 if none free.

    Equals `1 - unusable_index / 1000` without the rounding to thousandths.
    """
    info = fill_contig_page_info(nr_free, order)
    if info.free_pages == 0:
        return 0.0
    return (info.free_blocks_suitable << order) / info.free_pages

"""Machine geometry: page and block sizes, zones as pfn ranges on node 0, ZONE_MOVABLE sizing.

Profiles follow the architectures the anti-fragmentation postings were measured on:

- `x86_64`: MAX_ORDER 11, pageblock_order 9 (2 MiB huge pages); DMA below 16 MiB, DMA32 below
  4 GiB, Normal above.
- `x86`: non-PAE 32-bit, MAX_ORDER 11, pageblock_order 10 (4 MiB huge pages); DMA below 16 MiB,
  Normal below 896 MiB, HighMem above.
- `ppc64`: 4 KiB pages, MAX_ORDER 13, pageblock_order 12 (16 MiB huge pages); all memory in
  ZONE_DMA, as on that architecture.

The `flat` layout puts all memory in one Normal zone from pfn 0 (replay's default, so results
can be checked by hand). ZONE_MOVABLE follows 2.6.23 `find_zone_movable_pfns_for_nodes()`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fragsim.models.mm.constants import (
    MAX_NR_ZONES,
    MAX_ORDER_MAX,
    MAX_ORDER_MIN,
    PAGE_SHIFT,
    PAGE_SIZE,
    ZONE_DMA,
    ZONE_DMA32,
    ZONE_HIGHMEM,
    ZONE_MOVABLE,
    ZONE_NORMAL,
)

__all__ = [
    "GiB",
    "MiB",
    "PROFILES",
    "Profile",
    "check_orders",
    "get_profile",
    "memory_pages",
    "parse_size",
    "split_movable",
    "zone_spans",
]

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Profile:
    """An architecture's constants and zone boundaries (byte addresses, exclusive ends)."""

    name: str
    max_order: int
    pageblock_order: int
    #: (zone type, end address) in increasing order; the last zone takes the rest of memory.
    zone_ends: tuple[tuple[int, int | None], ...]


PROFILES: dict[str, Profile] = {
    "x86_64": Profile("x86_64", 11, 9,
                      ((ZONE_DMA, 16 * MiB), (ZONE_DMA32, 4 * GiB), (ZONE_NORMAL, None))),
    "x86": Profile("x86", 11, 10,
                   ((ZONE_DMA, 16 * MiB), (ZONE_NORMAL, 896 * MiB), (ZONE_HIGHMEM, None))),
    "ppc64": Profile("ppc64", 13, 12, ((ZONE_DMA, None),)),
}

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": MiB, "mb": MiB,
          "mib": MiB, "g": GiB, "gb": GiB, "gib": GiB, "t": 1 << 40, "tb": 1 << 40,
          "tib": 1 << 40}
_SIZE_RE = re.compile(r"^\s*(-?\d+)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str | int) -> int:
    """`64MiB`, `4GiB`, `512M`, `1048576` (bytes) -> bytes. Units are binary (kernel style)."""
    if isinstance(text, int):
        value = text
    else:
        m = _SIZE_RE.match(text)
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError(f"size {text!r} is not a size: use e.g. 64MiB, 4GiB or a byte count")
        value = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if value <= 0:
        raise ValueError(f"size {text!r} must be positive")
    return value


def get_profile(name: str) -> Profile:
    """The named profile; ValueError naming the allowed ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown machine profile {name!r}: allowed are "
                         f"{', '.join(sorted(PROFILES))}") from None


def check_orders(max_order: int, pageblock_order: int) -> None:
    """MAX_ORDER in [2, 16]; pageblock_order in [1, MAX_ORDER-1] (`pageblock_order` may not
    exceed MAX_ORDER-1 in the kernel)."""
    if not MAX_ORDER_MIN <= max_order <= MAX_ORDER_MAX:
        raise ValueError(f"max-order {max_order} is out of range: allowed "
                         f"{MAX_ORDER_MIN}..{MAX_ORDER_MAX}")
    if not 1 <= pageblock_order <= max_order - 1:
        raise ValueError(f"pageblock-order {pageblock_order} is out of range: allowed "
                         f"1..{max_order - 1} (MAX_ORDER-1) with max-order {max_order}")


def memory_pages(memory: int, max_order: int) -> int:
    """Bytes -> pages, refusing sizes that are not a positive multiple of the max-order block."""
    block = PAGE_SIZE << (max_order - 1)
    if memory <= 0 or memory % block:
        raise ValueError(f"memory size {memory} bytes is not a positive multiple of the "
                         f"max-order block ({block // 1024} KiB with max-order {max_order})")
    pages = memory >> PAGE_SHIFT
    if pages >= 1 << 31:
        raise ValueError(f"memory size {memory} bytes is too large: at most 8 TiB")
    return pages


def zone_spans(profile: Profile | None, nr_pages: int) -> list[tuple[int, int]]:
    """Per zone type, its (start_pfn, end_pfn); empty zones are (x, x). `None`: flat layout."""
    spans = [(0, 0)] * MAX_NR_ZONES
    if profile is None:
        spans[ZONE_NORMAL] = (0, nr_pages)
        return spans
    start = 0
    for ztype, end in profile.zone_ends:
        stop = nr_pages if end is None else min(nr_pages, end >> PAGE_SHIFT)
        if stop > start:
            spans[ztype] = (start, stop)
            start = stop
        else:
            spans[ztype] = (start, start)
    return spans


def split_movable(spans: list[tuple[int, int]], kernelcore_pages: int | None,
                  movablecore_pages: int | None, max_order: int) -> list[tuple[int, int]]:
    """Carve ZONE_MOVABLE out of the highest populated zone: 2.6.23
    `find_zone_movable_pfns_for_nodes()` for one node.

    `kernelcore` pages stay in the ordinary zones (lower zones count towards it first);
    `movablecore` is the converse (kernelcore = max(kernelcore, total - roundup(movablecore))).
    ZONE_MOVABLE's start is rounded up to MAX_ORDER_NR_PAGES. Without either, no ZONE_MOVABLE.
    """
    max_block = 1 << (max_order - 1)
    total = sum(end - start for start, end in spans)
    required = kernelcore_pages or 0
    if movablecore_pages:
        movable = -(-movablecore_pages // max_block) * max_block
        required = max(required, total - movable)
    if required <= 0:
        return spans
    populated = [z for z in range(ZONE_MOVABLE) if spans[z][1] > spans[z][0]]
    movable_zone = populated[-1]
    usable_start = spans[movable_zone][0]
    remaining = required - min(required, usable_start)  # pages below count as kernelcore
    movable_start = usable_start + remaining
    movable_start = -(-movable_start // max_block) * max_block
    zend = spans[movable_zone][1]
    if movable_start >= zend:
        return spans
    out = list(spans)
    out[movable_zone] = (spans[movable_zone][0], movable_start)
    out[ZONE_MOVABLE] = (movable_start, zend)
    return out

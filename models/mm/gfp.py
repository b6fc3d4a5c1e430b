"""GFP flags and how a request resolves to (highest allowed zone, migratetype): 2.6.24 `gfp.h`.

`gfp_zone()` picks the zonelist (the highest zone a request may use; the zonelist is that zone
down to DMA) and `allocflags_to_migratetype()` the free lists. Only requests with both
`__GFP_HIGHMEM` and `__GFP_MOVABLE` may be placed in ZONE_MOVABLE.
"""

from __future__ import annotations

from enum import IntFlag

from fragsim.models.mm.constants import (
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    ZONE_DMA,
    ZONE_DMA32,
    ZONE_HIGHMEM,
    ZONE_MOVABLE,
    ZONE_NORMAL,
)

__all__ = [
    "GFP",
    "GFP_ATOMIC",
    "GFP_DMA",
    "GFP_DMA32",
    "GFP_HIGHUSER",
    "GFP_HIGHUSER_MOVABLE",
    "GFP_HIGHUSER_PAGECACHE",
    "GFP_KERNEL",
    "GFP_NAMES",
    "GFP_NOFS",
    "GFP_NOIO",
    "GFP_NOWAIT",
    "GFP_TEMPORARY",
    "GFP_USER",
    "GFP_USER_PAGECACHE",
    "default_gfp_for",
    "gfp_zone",
    "gfpflags_to_migratetype",
    "parse_gfp",
]


class GFP(IntFlag):
    """`__GFP_*` bits with their 2.6.24 values, plus 2.6.38's `__GFP_NO_KSWAPD`.

    NO_KSWAPD (2.6.38-4.3 `include/linux/gfp.h`, 0x400000u) was added for transparent huge
    pages: the request does not wake kswapd. 4.4+ says the same by leaving out
    `__GFP_KSWAPD_RECLAIM` (WAIT here stands for 4.4+'s `__GFP_DIRECT_RECLAIM`), so the model
    keeps 2.6.24's bits and spells "no kswapd" as this one flag.
    """

    DMA = 0x01
    HIGHMEM = 0x02
    DMA32 = 0x04
    WAIT = 0x10
    HIGH = 0x20
    IO = 0x40
    FS = 0x80
    COLD = 0x100
    NOWARN = 0x200
    REPEAT = 0x400
    NOFAIL = 0x800
    NORETRY = 0x1000
    COMP = 0x4000
    ZERO = 0x8000
    NOMEMALLOC = 0x10000
    HARDWALL = 0x20000
    THISNODE = 0x40000
    RECLAIMABLE = 0x80000
    MOVABLE = 0x100000
    NO_KSWAPD = 0x400000


GFP_ATOMIC = GFP.HIGH
GFP_NOWAIT = GFP(0)
GFP_NOIO = GFP.WAIT
GFP_NOFS = GFP.WAIT | GFP.IO
GFP_KERNEL = GFP.WAIT | GFP.IO | GFP.FS
GFP_TEMPORARY = GFP_KERNEL | GFP.RECLAIMABLE
GFP_USER = GFP_KERNEL | GFP.HARDWALL
GFP_HIGHUSER = GFP_USER | GFP.HIGHMEM
GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | GFP.MOVABLE
GFP_USER_PAGECACHE = GFP_USER | GFP.MOVABLE
GFP_HIGHUSER_PAGECACHE = GFP_HIGHUSER_MOVABLE
GFP_DMA = GFP.DMA
GFP_DMA32 = GFP.DMA32

#: Named GFP masks, as ftrace prints them (`show_gfp_flags`), for parsing and for configs.
GFP_NAMES: dict[str, GFP] = {
    "GFP_ATOMIC": GFP_ATOMIC,
    "GFP_NOWAIT": GFP_NOWAIT,
    "GFP_NOIO": GFP_NOIO,
    "GFP_NOFS": GFP_NOFS,
    "GFP_KERNEL": GFP_KERNEL,
    "GFP_TEMPORARY": GFP_TEMPORARY,
    "GFP_USER": GFP_USER,
    "GFP_HIGHUSER": GFP_HIGHUSER,
    "GFP_HIGHUSER_MOVABLE": GFP_HIGHUSER_MOVABLE,
    "GFP_USER_PAGECACHE": GFP_USER_PAGECACHE,
    "GFP_HIGHUSER_PAGECACHE": GFP_HIGHUSER_PAGECACHE,
    "GFP_DMA": GFP_DMA,
    "GFP_DMA32": GFP_DMA32,
}
GFP_NAMES.update({f"__GFP_{flag.name}": flag for flag in GFP if flag.name})


def parse_gfp(text: str) -> GFP:
    """Parse `GFP_KERNEL|__GFP_ZERO` style text (unknown later-kernel flags are ignored).

    Raises ValueError when no part is a known flag.
    """
    value = GFP(0)
    known = False
    for part in text.strip().split("|"):
        part = part.strip()
        if part in GFP_NAMES:
            value |= GFP_NAMES[part]
            known = True
        elif part.startswith("0x"):
            value |= GFP(int(part, 16) & sum(GFP))
            known = True
    if not known:
        raise ValueError(f"gfp flags {text!r} name no known flag (e.g. GFP_KERNEL, "
                         "GFP_HIGHUSER_MOVABLE, __GFP_ZERO)")
    return value


def gfp_zone(flags: int) -> int:
    """2.6.24 `gfp_zone()`: the highest zone the request may be placed in."""
    if flags & GFP.DMA:
        return ZONE_DMA
    if flags & GFP.DMA32:
        return ZONE_DMA32
    if (flags & (GFP.HIGHMEM | GFP.MOVABLE)) == (GFP.HIGHMEM | GFP.MOVABLE):
        return ZONE_MOVABLE
    if flags & GFP.HIGHMEM:
        return ZONE_HIGHMEM
    return ZONE_NORMAL


def gfpflags_to_migratetype(flags: int) -> int:
    """2.6.24 `allocflags_to_migratetype()` (before the grouping-disabled override).

    Both __GFP_MOVABLE and __GFP_RECLAIMABLE is a kernel bug (it WARNs); it is refused here.
    """
    movable = bool(flags & GFP.MOVABLE)
    reclaimable = bool(flags & GFP.RECLAIMABLE)
    if movable and reclaimable:
        raise ValueError("gfp flags set both __GFP_MOVABLE and __GFP_RECLAIMABLE")
    if movable:
        return MIGRATE_MOVABLE
    if reclaimable:
        return MIGRATE_RECLAIMABLE
    return MIGRATE_UNMOVABLE


def default_gfp_for(migratetype: int) -> GFP:
    """The GFP mask a typical caller of that migratetype uses (reference section 3)."""
    if migratetype == MIGRATE_MOVABLE:
        return GFP_HIGHUSER_MOVABLE
    if migratetype == MIGRATE_RECLAIMABLE:
        return GFP_TEMPORARY
    return GFP_KERNEL

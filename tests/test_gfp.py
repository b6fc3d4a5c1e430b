"""`models.mm.gfp`: 2.6.24 GFP values, `gfp_zone()` and `allocflags_to_migratetype()`."""

from __future__ import annotations

import pytest

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
from fragsim.models.mm.gfp import (
    GFP,
    GFP_ATOMIC,
    GFP_DMA,
    GFP_HIGHUSER,
    GFP_HIGHUSER_MOVABLE,
    GFP_KERNEL,
    GFP_NOFS,
    GFP_NOIO,
    GFP_NOWAIT,
    GFP_TEMPORARY,
    GFP_USER,
    default_gfp_for,
    gfp_zone,
    gfpflags_to_migratetype,
    parse_gfp,
)


def test_2_6_24_values() -> None:
    # include/linux/gfp.h of 2.6.24.
    assert (GFP.DMA, GFP.HIGHMEM, GFP.DMA32) == (0x01, 0x02, 0x04)
    assert (GFP.WAIT, GFP.HIGH, GFP.IO, GFP.FS) == (0x10, 0x20, 0x40, 0x80)
    assert (GFP.RECLAIMABLE, GFP.MOVABLE) == (0x80000, 0x100000)
    assert GFP_KERNEL == 0x10 | 0x40 | 0x80
    assert GFP_USER == GFP_KERNEL | GFP.HARDWALL
    assert GFP_HIGHUSER == GFP_USER | GFP.HIGHMEM
    assert GFP_HIGHUSER_MOVABLE == GFP_HIGHUSER | GFP.MOVABLE
    assert GFP_TEMPORARY == GFP_KERNEL | GFP.RECLAIMABLE
    assert (GFP_ATOMIC, GFP_NOWAIT, GFP_NOIO, GFP_NOFS) == (0x20, 0, 0x10, 0x50)


@pytest.mark.parametrize(("flags", "zone"), [
    (GFP_KERNEL, ZONE_NORMAL),
    (GFP_ATOMIC, ZONE_NORMAL),
    (GFP_DMA, ZONE_DMA),
    (GFP_KERNEL | GFP.DMA32, ZONE_DMA32),
    (GFP_HIGHUSER, ZONE_HIGHMEM),
    (GFP_HIGHUSER_MOVABLE, ZONE_MOVABLE),
    # Only __GFP_HIGHMEM together with __GFP_MOVABLE may use ZONE_MOVABLE.
    (GFP_KERNEL | GFP.MOVABLE, ZONE_NORMAL),
    # __GFP_DMA wins over everything, then __GFP_DMA32.
    (GFP_HIGHUSER_MOVABLE | GFP.DMA, ZONE_DMA),
    (GFP_HIGHUSER_MOVABLE | GFP.DMA32, ZONE_DMA32),
])
def test_gfp_zone(flags: int, zone: int) -> None:
    assert gfp_zone(flags) == zone


def test_migratetype() -> None:
    assert gfpflags_to_migratetype(GFP_KERNEL) == MIGRATE_UNMOVABLE
    assert gfpflags_to_migratetype(GFP_ATOMIC) == MIGRATE_UNMOVABLE
    assert gfpflags_to_migratetype(GFP_HIGHUSER) == MIGRATE_UNMOVABLE
    assert gfpflags_to_migratetype(GFP_TEMPORARY) == MIGRATE_RECLAIMABLE
    assert gfpflags_to_migratetype(GFP_HIGHUSER_MOVABLE) == MIGRATE_MOVABLE
    with pytest.raises(ValueError, match="both __GFP_MOVABLE and __GFP_RECLAIMABLE"):
        gfpflags_to_migratetype(GFP.MOVABLE | GFP.RECLAIMABLE)


def test_default_gfp_round_trips() -> None:
    for mt in (MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE):
        assert gfpflags_to_migratetype(default_gfp_for(mt)) == mt
    assert gfp_zone(default_gfp_for(MIGRATE_MOVABLE)) == ZONE_MOVABLE


def test_parse_gfp() -> None:
    assert parse_gfp("GFP_KERNEL") == GFP_KERNEL
    assert parse_gfp(" GFP_KERNEL | __GFP_ZERO ") == GFP_KERNEL | GFP.ZERO
    assert parse_gfp("GFP_HIGHUSER_MOVABLE|__GFP_NOTRACK") == GFP_HIGHUSER_MOVABLE
    assert parse_gfp("0xd0") == GFP_KERNEL
    assert parse_gfp("__GFP_DMA") == GFP.DMA
    with pytest.raises(ValueError, match="name no known flag"):
        parse_gfp("__GFP_NOTRACK")
    with pytest.raises(ValueError, match="name no known flag"):
        parse_gfp("")

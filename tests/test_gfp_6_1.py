"""6.1's GFP bits as its tracepoints print them (`models.mm.gfp_6_1`): `show_gfp_flags` in
mmflags.h order, its inverse, and the model's GFP of each mask."""

from __future__ import annotations

import pytest

from fragsim.models.mm.gfp import GFP, GFP_ATOMIC, GFP_HIGHUSER_MOVABLE, GFP_KERNEL
from fragsim.models.mm.gfp_6_1 import (
    GFP_BITS_6_1,
    GFP_FLAG_NAMES_6_1,
    GFP_MASKS_6_1,
    gfp_migratetype,
    parse_gfp_flags,
    show_gfp_flags,
    to_model_gfp,
)

B, M = GFP_BITS_6_1, GFP_MASKS_6_1


@pytest.mark.parametrize(("mask", "text"), [
    (0, "none"),
    (M["GFP_KERNEL"] | B["__GFP_COMP"], "GFP_KERNEL|__GFP_COMP"),
    (M["GFP_KERNEL_ACCOUNT"] | B["__GFP_ZERO"], "GFP_KERNEL_ACCOUNT|__GFP_ZERO"),
    # GFP_USER goes first and takes the reclaim bits: GFP_KERNEL_ACCOUNT no longer matches.
    (M["GFP_USER"] | B["__GFP_ACCOUNT"], "GFP_USER|__GFP_ACCOUNT"),
    (B["__GFP_KSWAPD_RECLAIM"], "GFP_NOWAIT"),
    (B["__GFP_DIRECT_RECLAIM"], "__GFP_DIRECT_RECLAIM"),
    (M["GFP_TRANSHUGE"], "GFP_TRANSHUGE"),
    (M["GFP_TRANSHUGE_LIGHT"], "GFP_TRANSHUGE_LIGHT"),
    (M["GFP_HIGHUSER_MOVABLE"] | B["__GFP_RETRY_MAYFAIL"],
     "GFP_HIGHUSER_MOVABLE|__GFP_RETRY_MAYFAIL"),
    (M["GFP_ATOMIC"] | B["__GFP_NOWARN"] | B["__GFP_COMP"] | 0x8000000,
     "GFP_ATOMIC|__GFP_NOWARN|__GFP_COMP|0x8000000"),
])
def test_show_and_parse_gfp_flags(mask: int, text: str) -> None:
    assert show_gfp_flags(mask) == text
    assert parse_gfp_flags(text) == mask


@pytest.mark.parametrize(("text", "model"), [
    ("GFP_KERNEL", GFP_KERNEL),
    ("GFP_HIGHUSER_MOVABLE", GFP_HIGHUSER_MOVABLE),
    ("GFP_ATOMIC", GFP_ATOMIC),
    ("GFP_KERNEL|__GFP_COMP", GFP_KERNEL | GFP.COMP),
    ("GFP_KERNEL_ACCOUNT", GFP_KERNEL),  # __GFP_ACCOUNT (memcg) has no model bit
    ("__GFP_KSWAPD_RECLAIM", GFP(0)),  # GFP_NOWAIT: no direct reclaim, kswapd woken
    ("__GFP_IO|__GFP_FS", GFP.IO | GFP.FS | GFP.NO_KSWAPD),
    ("GFP_USER|__GFP_RETRY_MAYFAIL", GFP_KERNEL | GFP.HARDWALL | GFP.REPEAT),
    ("GFP_TRANSHUGE", GFP_HIGHUSER_MOVABLE | GFP.COMP | GFP.NOMEMALLOC | GFP.NOWARN
     | GFP.NO_KSWAPD),
])
def test_to_model_gfp(text: str, model: GFP) -> None:
    assert to_model_gfp(parse_gfp_flags(text)) == model


def test_table_covers_every_bit_once() -> None:
    """Every 6.1 bit prints as one name of the table (GFP_DMA, GFP_DMA32 and GFP_NOWAIT for
    three of them), and the table is mmflags.h's 36."""
    names = dict(GFP_FLAG_NAMES_6_1)
    assert len(GFP_FLAG_NAMES_6_1) == 36
    for bit in B.values():
        assert names[show_gfp_flags(bit)] == bit
    assert show_gfp_flags(B["__GFP_DMA32"]) == "GFP_DMA32"
    assert show_gfp_flags(sum(B.values())).startswith("GFP_TRANSHUGE|")


@pytest.mark.parametrize(("text", "mt"), [
    ("GFP_KERNEL", 0), ("GFP_HIGHUSER_MOVABLE", 1), ("GFP_KERNEL|__GFP_RECLAIMABLE", 2),
    ("GFP_TRANSHUGE_LIGHT", 1),
])
def test_gfp_migratetype(text: str, mt: int) -> None:
    assert gfp_migratetype(parse_gfp_flags(text)) == mt


@pytest.mark.parametrize("text", ["__GFP_WAIT", "GFP_TEMPORARY", "__GFP_COLD", "0x", "0xZZ", ""])
def test_names_6_1_never_prints_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="unknown gfp flag"):
        parse_gfp_flags(f"GFP_KERNEL|{text}")

"""Linux 6.1's GFP bits, how its tracepoints print them, and what they are in the model's GFP.

- `GFP_BITS_6_1`: the `___GFP_*` values of 6.1 include/linux/gfp_types.h (x86_64: no
  CONFIG_KASAN_HW_TAGS, so the three __GFP_SKIP_* bits are 0 and print nowhere; no LOCKDEP).
- `GFP_FLAG_NAMES_6_1`: `__def_gfpflag_names` of 6.1 include/trace/events/mmflags.h, in order,
  with each name's mask. `show_gfp_flags` prints a mask as `trace_print_flags_seq()`
  (kernel/trace/trace_output.c) does: names in table order whose whole mask is still set, each
  clearing its bits, `|` between, leftover bits as `0x%lx`, and `none` for 0.
- `parse_gfp_flags`: the inverse, a `gfp_flags=` text back to its 6.1 mask. A name 6.1 never
  prints is refused (ValueError naming it): a trace from another kernel, or a damaged line.
- `gfp_migratetype`: 6.1 `gfp_migratetype()` (include/linux/gfp.h) with grouping on, in the
  trace's (4.4+) numbering: 0 Unmovable, 1 Movable, 2 Reclaimable.
- `to_model_gfp`: the model's 2.6.24-based `GFP` (models/mm/gfp.py). Bits with a 2.6.24 twin
  map to it (__GFP_DIRECT_RECLAIM is 2.6.24's __GFP_WAIT; __GFP_RETRY_MAYFAIL, 4.13's rename
  of __GFP_REPEAT, to REPEAT); a mask without __GFP_KSWAPD_RECLAIM gets the model's NO_KSWAPD.
  Bits the model has no use for are dropped: __GFP_ATOMIC (6.1's ALLOC_HARDER marker; replay
  serves every request with ALLOC_NO_WATERMARKS), __GFP_MEMALLOC, __GFP_ACCOUNT (memcg),
  __GFP_WRITE (dirty-limit spreading), __GFP_ZEROTAGS and __GFP_SKIP_* (KASAN/MTE).
"""

from __future__ import annotations

from typing import Final

from fragsim.models.mm.gfp import GFP

__all__ = [
    "GFP_BITS_6_1",
    "GFP_FLAG_NAMES_6_1",
    "GFP_MASKS_6_1",
    "gfp_migratetype",
    "parse_gfp_flags",
    "show_gfp_flags",
    "to_model_gfp",
]

#: 6.1 include/linux/gfp_types.h `___GFP_*` (x86_64 config: KASAN_HW_TAGS off, LOCKDEP off).
GFP_BITS_6_1: Final = {
    "__GFP_DMA": 0x01, "__GFP_HIGHMEM": 0x02, "__GFP_DMA32": 0x04, "__GFP_MOVABLE": 0x08,
    "__GFP_RECLAIMABLE": 0x10, "__GFP_HIGH": 0x20, "__GFP_IO": 0x40, "__GFP_FS": 0x80,
    "__GFP_ZERO": 0x100, "__GFP_ATOMIC": 0x200, "__GFP_DIRECT_RECLAIM": 0x400,
    "__GFP_KSWAPD_RECLAIM": 0x800, "__GFP_WRITE": 0x1000, "__GFP_NOWARN": 0x2000,
    "__GFP_RETRY_MAYFAIL": 0x4000, "__GFP_NOFAIL": 0x8000, "__GFP_NORETRY": 0x10000,
    "__GFP_MEMALLOC": 0x20000, "__GFP_COMP": 0x40000, "__GFP_NOMEMALLOC": 0x80000,
    "__GFP_HARDWALL": 0x100000, "__GFP_THISNODE": 0x200000, "__GFP_ACCOUNT": 0x400000,
    "__GFP_ZEROTAGS": 0x800000,
}
_B = GFP_BITS_6_1
_RECLAIM = _B["__GFP_DIRECT_RECLAIM"] | _B["__GFP_KSWAPD_RECLAIM"]
_KERNEL = _RECLAIM | _B["__GFP_IO"] | _B["__GFP_FS"]
_USER = _KERNEL | _B["__GFP_HARDWALL"]
_HIGHUSER_MOVABLE = _USER | _B["__GFP_HIGHMEM"] | _B["__GFP_MOVABLE"]
_TRANSHUGE_LIGHT = ((_HIGHUSER_MOVABLE | _B["__GFP_COMP"] | _B["__GFP_NOMEMALLOC"]
                     | _B["__GFP_NOWARN"]) & ~_RECLAIM)

#: 6.1 gfp_types.h composite masks.
GFP_MASKS_6_1: Final = {
    "GFP_TRANSHUGE": _TRANSHUGE_LIGHT | _B["__GFP_DIRECT_RECLAIM"],
    "GFP_TRANSHUGE_LIGHT": _TRANSHUGE_LIGHT,
    "GFP_HIGHUSER_MOVABLE": _HIGHUSER_MOVABLE,
    "GFP_HIGHUSER": _USER | _B["__GFP_HIGHMEM"],
    "GFP_USER": _USER,
    "GFP_KERNEL_ACCOUNT": _KERNEL | _B["__GFP_ACCOUNT"],
    "GFP_KERNEL": _KERNEL,
    "GFP_NOFS": _RECLAIM | _B["__GFP_IO"],
    "GFP_ATOMIC": _B["__GFP_HIGH"] | _B["__GFP_ATOMIC"] | _B["__GFP_KSWAPD_RECLAIM"],
    "GFP_NOIO": _RECLAIM,
    "GFP_NOWAIT": _B["__GFP_KSWAPD_RECLAIM"],
    "GFP_DMA": _B["__GFP_DMA"],
    "GFP_DMA32": _B["__GFP_DMA32"],
    "__GFP_RECLAIM": _RECLAIM,
}


def _mask(name: str) -> int:
    return GFP_MASKS_6_1[name] if name in GFP_MASKS_6_1 else GFP_BITS_6_1[name]


#: 6.1 mmflags.h `__def_gfpflag_names`: (name, mask), most bits first, in print order.
GFP_FLAG_NAMES_6_1: Final = tuple((name, _mask(name)) for name in (
    "GFP_TRANSHUGE", "GFP_TRANSHUGE_LIGHT", "GFP_HIGHUSER_MOVABLE", "GFP_HIGHUSER", "GFP_USER",
    "GFP_KERNEL_ACCOUNT", "GFP_KERNEL", "GFP_NOFS", "GFP_ATOMIC", "GFP_NOIO", "GFP_NOWAIT",
    "GFP_DMA", "__GFP_HIGHMEM", "GFP_DMA32", "__GFP_HIGH", "__GFP_ATOMIC", "__GFP_IO",
    "__GFP_FS", "__GFP_NOWARN", "__GFP_RETRY_MAYFAIL", "__GFP_NOFAIL", "__GFP_NORETRY",
    "__GFP_COMP", "__GFP_ZERO", "__GFP_NOMEMALLOC", "__GFP_MEMALLOC", "__GFP_HARDWALL",
    "__GFP_THISNODE", "__GFP_RECLAIMABLE", "__GFP_MOVABLE", "__GFP_ACCOUNT", "__GFP_WRITE",
    "__GFP_RECLAIM", "__GFP_DIRECT_RECLAIM", "__GFP_KSWAPD_RECLAIM", "__GFP_ZEROTAGS",
))
_BY_NAME: Final = dict(GFP_FLAG_NAMES_6_1)

#: 6.1 bit -> the model's GFP bit (bits not listed have no model counterpart).
_TO_MODEL: Final = {
    "__GFP_DMA": GFP.DMA, "__GFP_HIGHMEM": GFP.HIGHMEM, "__GFP_DMA32": GFP.DMA32,
    "__GFP_MOVABLE": GFP.MOVABLE, "__GFP_RECLAIMABLE": GFP.RECLAIMABLE, "__GFP_HIGH": GFP.HIGH,
    "__GFP_IO": GFP.IO, "__GFP_FS": GFP.FS, "__GFP_ZERO": GFP.ZERO,
    "__GFP_DIRECT_RECLAIM": GFP.WAIT, "__GFP_NOWARN": GFP.NOWARN,
    "__GFP_RETRY_MAYFAIL": GFP.REPEAT, "__GFP_NOFAIL": GFP.NOFAIL,
    "__GFP_NORETRY": GFP.NORETRY, "__GFP_COMP": GFP.COMP, "__GFP_NOMEMALLOC": GFP.NOMEMALLOC,
    "__GFP_HARDWALL": GFP.HARDWALL, "__GFP_THISNODE": GFP.THISNODE,
}


def show_gfp_flags(mask: int) -> str:
    """`show_gfp_flags(flags)` of 6.1: `trace_print_flags_seq(p, "|", flags, gfpflag_names)`."""
    if not mask:
        return "none"
    parts = []
    for name, bits in GFP_FLAG_NAMES_6_1:
        if not mask:
            break
        if mask & bits == bits:
            parts.append(name)
            mask &= ~bits
    if mask:
        parts.append(f"0x{mask:x}")
    return "|".join(parts)


def parse_gfp_flags(text: str) -> int:
    """The 6.1 mask a `gfp_flags=` text shows; ValueError naming a part 6.1 never prints."""
    if text == "none":
        return 0
    mask = 0
    for part in text.split("|"):
        bits = _BY_NAME.get(part)
        if bits is None:
            if part[:2] != "0x" or not part[2:] or any(c not in "0123456789abcdef"
                                                        for c in part[2:]):
                raise ValueError(f"unknown gfp flag {part!r}: 6.1 prints "
                                 "GFP_KERNEL, __GFP_COMP, ... (mmflags.h) or leftover bits "
                                 "as 0x...")
            bits = int(part, 16)
        mask |= bits
    return mask


def gfp_migratetype(mask: int) -> int:
    """6.1 `gfp_migratetype()` with grouping on: `(gfp & GFP_MOVABLE_MASK) >> 3`, in the trace's
    numbering (1 Movable, 2 Reclaimable, 0 Unmovable; both bits, 3, is a kernel bug)."""
    return (mask & (_B["__GFP_MOVABLE"] | _B["__GFP_RECLAIMABLE"])) >> 3


def to_model_gfp(mask: int) -> GFP:
    """The model's GFP for a 6.1 mask (see the module doc for the dropped bits)."""
    out = GFP(0)
    for name, flag in _TO_MODEL.items():
        if mask & GFP_BITS_6_1[name]:
            out |= flag
    if not mask & _B["__GFP_KSWAPD_RECLAIM"]:
        out |= GFP.NO_KSWAPD
    return out

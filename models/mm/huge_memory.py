"""Transparent huge pages on anonymous faults: which faults try a huge page, with which GFP mask.

Kernels from 2.6.38 back anonymous memory with PMD-sized pages on fault. In Linux 6.1
`mm/huge_memory.c`, `do_huge_pmd_anonymous_page()` allocates one `HPAGE_PMD_ORDER` folio
(order 9 on x86_64) with the mask `vma_thp_gfp_mask(vma)` returns; when that fails it counts
`THP_FAULT_FALLBACK` and returns `VM_FAULT_FALLBACK`, and the fault is served by order-0 pages
(`do_anonymous_page`); on success `__do_huge_pmd_anonymous_page()` counts `THP_FAULT_ALLOC`.
(2.6.38-4.5 named the mask function `alloc_hugepage_gfpmask`/`alloc_hugepage_direct_gfpmask`.)

Whether a fault tries a huge page at all is `/sys/kernel/mm/transparent_hugepage/enabled`:
`always`, `madvise` (only VM_HUGEPAGE regions, i.e. `madvise(MADV_HUGEPAGE)`) or `never`.
How hard the allocation tries is `/sys/kernel/mm/transparent_hugepage/defrag`, in
`vma_thp_gfp_mask()` (6.1; the same since 4.6, whose default became `madvise`):

| defrag          | VM_HUGEPAGE region                 | other region                           |
|-----------------|------------------------------------|----------------------------------------|
| `always`        | GFP_TRANSHUGE                      | GFP_TRANSHUGE \\| __GFP_NORETRY         |
| `defer`         | GFP_TRANSHUGE_LIGHT \\| KSWAPD      | GFP_TRANSHUGE_LIGHT \\| KSWAPD          |
| `defer+madvise` | GFP_TRANSHUGE_LIGHT \\| DIRECT      | GFP_TRANSHUGE_LIGHT \\| KSWAPD          |
| `madvise`       | GFP_TRANSHUGE_LIGHT \\| DIRECT      | GFP_TRANSHUGE_LIGHT                    |
| `never`         | GFP_TRANSHUGE_LIGHT                | GFP_TRANSHUGE_LIGHT                    |

with (6.1 `include/linux/gfp_types.h`, 4.8+ `gfp.h`)
`GFP_TRANSHUGE_LIGHT = (GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC | __GFP_NOWARN)
& ~__GFP_RECLAIM` and `GFP_TRANSHUGE = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM`. In the
model's 2.6.24 bits (`models.mm.gfp`), __GFP_DIRECT_RECLAIM is `__GFP_WAIT` (direct reclaim
and, with compaction, direct compaction) and the absence of __GFP_KSWAPD_RECLAIM is
`__GFP_NO_KSWAPD` (2.6.38's spelling of the same thing).
"""

from __future__ import annotations

from typing import Final

from fragsim.models.mm.gfp import GFP, GFP_HIGHUSER_MOVABLE

__all__ = [
    "GFP_TRANSHUGE",
    "GFP_TRANSHUGE_LIGHT",
    "THP_DEFRAG_MODES",
    "THP_ENABLED_MODES",
    "check_thp_settings",
    "thp_fault_enabled",
    "vma_thp_gfp_mask",
]

#: /sys/kernel/mm/transparent_hugepage/enabled values.
THP_ENABLED_MODES: Final = ("always", "madvise", "never")
#: /sys/kernel/mm/transparent_hugepage/defrag values (4.6+; 2.6.38-4.5 had always/madvise/never).
THP_DEFRAG_MODES: Final = ("always", "defer", "defer+madvise", "madvise", "never")



def check_thp_settings(enabled: str, defrag: str, has_thp: bool, kernel: str,
                       prefix: str = "") -> None:
    """ValueError (one line, naming the value and what is allowed) for a bad THP setting, or
    for THP asked of `kernel` when it has none (THP came in 2.6.38)."""
    if enabled not in THP_ENABLED_MODES:
        raise ValueError(f"{prefix}thp_enabled {enabled!r} is unknown: allowed are "
                         f"{', '.join(THP_ENABLED_MODES)}")
    if defrag not in THP_DEFRAG_MODES:
        raise ValueError(f"{prefix}thp_defrag {defrag!r} is unknown: allowed are "
                         f"{', '.join(THP_DEFRAG_MODES)}")
    if enabled != "never" and not has_thp:
        raise ValueError(f"{prefix}thp_enabled {enabled!r}: kernel {kernel} has no transparent "
                         "huge pages (2.6.38 or later): allowed is never")


GFP_TRANSHUGE_LIGHT: Final = ((GFP_HIGHUSER_MOVABLE | GFP.COMP | GFP.NOMEMALLOC | GFP.NOWARN)
                              & ~GFP.WAIT) | GFP.NO_KSWAPD
GFP_TRANSHUGE: Final = GFP_TRANSHUGE_LIGHT | GFP.WAIT


def thp_fault_enabled(enabled: str, madvised: bool) -> bool:
    """Whether an anonymous fault in a region tries a huge page (6.1 `hugepage_vma_check()`
    for a fault: `enabled` always, or madvise and the region is VM_HUGEPAGE)."""
    if enabled not in THP_ENABLED_MODES:
        raise ValueError(f"thp enabled {enabled!r} is unknown: allowed are "
                         f"{', '.join(THP_ENABLED_MODES)}")
    return enabled == "always" or (enabled == "madvise" and madvised)


def vma_thp_gfp_mask(defrag: str, madvised: bool) -> GFP:
    """6.1 `vma_thp_gfp_mask()`: the GFP mask of a huge page fault (module table)."""
    if defrag == "always":
        return GFP_TRANSHUGE | (GFP(0) if madvised else GFP.NORETRY)
    if defrag == "defer":
        return GFP_TRANSHUGE_LIGHT & ~GFP.NO_KSWAPD
    if defrag == "defer+madvise":
        return (GFP_TRANSHUGE_LIGHT | GFP.WAIT) if madvised \
            else (GFP_TRANSHUGE_LIGHT & ~GFP.NO_KSWAPD)
    if defrag == "madvise":
        return (GFP_TRANSHUGE_LIGHT | GFP.WAIT) if madvised else GFP_TRANSHUGE_LIGHT
    if defrag == "never":
        return GFP_TRANSHUGE_LIGHT
    raise ValueError(f"thp defrag {defrag!r} is unknown: allowed are "
                     f"{', '.join(THP_DEFRAG_MODES)}")

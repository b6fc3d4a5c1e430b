"""The `gfp_flags=` of a trace's `mm_page_alloc` lines, read as the tracing kernel prints them.

`sim.trace` reads an allocation's order and migratetype and leaves its gfp text alone (but for
__GFP_COLD). `fragsim replay --gfp-flags 6.1` also reads that text as 6.1's `show_gfp_flags()`
prints it (`models.mm.gfp_6_1`) and checks it against the line:

- a flag name 6.1 never prints is an error naming it (the trace is not from a 6.1 kernel, or
  the line is damaged), whatever `--strict` says: the check was asked for;
- the printed migratetype is 6.1's `gfp_migratetype()` of the flags (`__alloc_pages()` traces
  `ac.migratetype`, which `prepare_alloc_pages()` sets from the mask), unless the traced kernel
  disabled grouping; a line where they differ is counted (`mismatches`), not refused;
- the masks are mapped to the model's GFP (`to_model_gfp`), so each distinct one resolves to
  the model's (highest zone, migratetype) (`Machine.resolve`, 2.6.24 `gfp_zone()`);
- high-order allocations with __GFP_ATOMIC are counted: 6.1 gives them ALLOC_HARDER, and
  `get_page_from_freelist()` may reserve a HIGHATOMIC pageblock for them, which replay (always
  ALLOC_NO_WATERMARKS, no ALLOC_HARDER) does not do.

Lines without an allocation, failed allocations (`page=` NULL) and malformed lines are left to
`sim.trace`, which reports the latter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from fragsim.models.mm.gfp import GFP
from fragsim.models.mm.gfp_6_1 import (
    GFP_BITS_6_1,
    gfp_migratetype,
    parse_gfp_flags,
    to_model_gfp,
)
from fragsim.sim.trace import TraceFormatError

__all__ = ["GFP_FLAG_FORMATS", "GfpCheck"]

#: `--gfp-flags` values: how a trace's gfp_flags text is read (None: not read).
GFP_FLAG_FORMATS: Final = ("ignore", "6.1")

_ALLOC_RE: Final = re.compile(
    r"(?:^|[\s:])mm_page_alloc:\s+page=\S+\s+pfn=\S+\s+order=(\d+)\s+migratetype=(-?\d+)"
    r"\s+gfp_flags=(\S+)", re.ASCII)
_ATOMIC: Final = GFP_BITS_6_1["__GFP_ATOMIC"]


@dataclass
class GfpCheck:
    """Counts over the checked `mm_page_alloc` lines (see the module doc)."""

    checked: int = 0
    mismatches: int = 0
    atomic_high_order: int = 0
    #: 6.1 mask -> (model GFP, allocations with it).
    masks: dict[int, tuple[GFP, int]] = field(default_factory=dict)

    def line(self, text: str, lineno: int = 0, source: str = "") -> None:
        """Check one line (any line: only allocations are looked at)."""
        if "mm_page_alloc:" not in text:
            return
        m = _ALLOC_RE.search(text)
        if m is None:
            return  # not the 6.1 field order: sim.trace judges the line
        order_text, mt_text, flags = m.groups()
        try:
            mask = parse_gfp_flags(flags)
        except ValueError as exc:
            raise TraceFormatError(str(exc), text, lineno, source) from None
        self.checked += 1
        if gfp_migratetype(mask) != int(mt_text):
            self.mismatches += 1
        if mask & _ATOMIC and int(order_text) > 0:
            self.atomic_high_order += 1
        model, n = self.masks.get(mask, (to_model_gfp(mask), 0))
        self.masks[mask] = (model, n + 1)

    def rows(self) -> list[tuple[str, object]]:
        """`key: value` rows for the replay summary."""
        return [
            ("gfp_checked_allocs", self.checked),
            ("gfp_migratetype_mismatches", self.mismatches),
            ("gfp_distinct_masks", len(self.masks)),
            ("gfp_atomic_high_order_allocs", self.atomic_high_order),
        ]

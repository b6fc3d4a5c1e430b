"""kcompactd (4.6): placeholder until the kcompactd branch merges."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = ["wakeup_kcompactd"]


def wakeup_kcompactd(m: Machine, order: int, highest_zoneidx: int) -> None:
    """6.1 `wakeup_kcompactd(pgdat, order, highest_zoneidx)`: placeholder until the kcompactd
    branch merges. Records the request as `m.kcompactd_order` (the highest order asked)."""
    m.kcompactd_order = max(getattr(m, "kcompactd_order", -1), order)  # type: ignore[attr-defined]

"""Many allocations of one kind in one compiled call, stopping where the slow path must begin.

A simulated agent asks for many pages at once (a file read, a process faulting in its memory);
in the kernel each page is its own `__alloc_pages()` call whose first step is
`get_page_from_freelist()` at the LOW watermark (or MIN after kswapd was woken). `alloc_until_fail`
runs that first step for each request in turn, with the same `prep_new_page` and counters as
`alloc_one`, and stops at the first request that fails, *without* counting it as a failed
allocation: the caller continues with the slow path for it, as `__alloc_pages()` does, and the
failure is counted only if that fails too. User pages can be put on the LRU on the way
(`lru_cache_add` / `lru_cache_add_active`), dirty or clean, as `models.mm.reclaim.alloc_lru_pages`
does for a single batch.
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.alloc import get_page_from_freelist, prep_new_page
from fragsim.models.mm.buddy import zone_of_pfn
from fragsim.models.mm.constants import KIND_ANON, KIND_FILE_MAPPED, PG_DIRTY, PG_HEAD
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.lru import lru_add
from fragsim.models.mm.state import KIND_SHIFT, STAT

__all__ = ["LRU_NONE", "alloc_until_fail", "count_failures", "count_mapped"]

#: `lru` argument: leave the pages off the LRU.
LRU_NONE = -1

_S_ALLOC_SUCCESS = STAT["alloc_success"]
_S_ALLOC_FAIL = STAT["alloc_fail"]


@compiled("pages, zones, pageblock_type, node, int, int, int, int, const int[], int, int, int, "
          "int[], int")
def alloc_until_fail(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                     node: np.ndarray, order: int, high_zone: int, mt: int, alloc_flags: int,
                     owners: np.ndarray, kind: int, lru: int, dirty: int, out: np.ndarray,
                     start: int) -> int:
    """Allocate `out[start:]` one block of `order` each, owner `owners[i]`, until one fails.

    `lru`: LRU_NONE, 0 (inactive list) or 1 (active list), for order-0 anonymous and file pages;
    `dirty`: set PG_DIRTY on them. Returns the index of the first request not served (len(out)
    when all were); that request is not counted as a failure.
    """
    nd = node[0]
    n: int = out.shape[0]
    for i in range(start, n):
        pfn = get_page_from_freelist(pages, zones, pageblock_type, nd, order, high_zone, mt,
                                     alloc_flags, -1, 0)
        if pfn < 0:
            return i
        prep_new_page(pages, pfn, order, mt, owners[i], kind)
        nd["stat"][_S_ALLOC_SUCCESS] += 1
        nd["alloc_order"][order] += 1
        if lru >= 0 and order == 0:
            lru_add(pages, zones[zone_of_pfn(zones, pfn)], pfn, lru == 1)
            if dirty:
                pages[pfn]["flags"] |= PG_DIRTY
        out[i] = pfn
    return n


@compiled("node, int, int")
def count_failures(node: np.ndarray, order: int, nr: int) -> None:
    """Count `nr` failed allocation calls of `order` (each a whole `__alloc_pages()` that
    failed)."""
    nd = node[0]
    nd["stat"][_S_ALLOC_FAIL] += nr
    nd["fail_order"][order] += nr


@compiled("pages")
def count_mapped(pages: np.ndarray) -> int:
    """NR_ANON_PAGES + NR_FILE_MAPPED: allocated heads of anonymous or mapped file pages."""
    n = 0
    for pfn in range(pages.shape[0]):
        if pages[pfn]["flags"] & PG_HEAD:
            kind = pages[pfn]["mt"] >> KIND_SHIFT
            if kind in (KIND_ANON, KIND_FILE_MAPPED):
                n += 1
    return n

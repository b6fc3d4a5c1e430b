"""Writeback and swap slots: what a dirty page needs before reclaim can free it.

2.6.24 `mm/vmscan.c` `pageout()` calls `->writepage()`, which clears PG_dirty
(`clear_page_dirty_for_io`) and sets PG_writeback; the I/O completes later in
`end_page_writeback()`, which clears PG_writeback and, for a page reclaim wrote
(PG_reclaim), `rotate_reclaimable_page()` moves it to the tail of the inactive list so the next
scan frees it (vmstat `pgrotated`). The model keeps the I/O as a queue of batches, each done
`config.writeback_delay` simulated seconds after it started; `complete_writeback(m, now)` ends
every batch due by `now`. A page under writeback is skipped by reclaim (or waited for, by the
synchronous lumpy pass).

Only `pageout()` sets PG_reclaim (`SetPageReclaim(page)` before `->writepage()`), so only the
batches reclaim queues (`queue_writeback(m, pfns)`) rotate when they complete. A flusher's
writeback (`start_writeback`: pdflush's `wb_kupdate`/`background_writeout`, `sync`) has no
PG_reclaim: `end_page_writeback()` only clears PG_writeback and the page stays where it is on
its LRU list. PG_reclaim itself is not a page flag in the model: it lives only while the page
is under writeback, so the batch carries it (`WritebackBatch.reclaim`, and `flagged` for single
pages). 2.6.24 keeps a page reclaim meets under writeback without the flag. 6.1's
`shrink_folio_list` (the 6.1 and 6.15 presets, `node['writeback_rule']` WRITEBACK_RULE_6_1)
sets PG_reclaim on it (`set_reclaim`) and activates it, and when the write ends
`folio_end_writeback` -> `folio_rotate_reclaimable` -> `lru_move_tail_fn` deactivates a clean
page and moves it to the inactive tail, active or not (2.6.24 rotates only inactive pages).

Anonymous pages are written to swap (`add_to_swap()` takes a slot, `swap_writepage()` counts
`pswpout`). The model keeps no swap map: `node['total_swap_pages']` and `node['nr_swap_pages']`
(free slots) count slots, and an anonymous page's PG_DIRTY says whether its contents are only in
memory. A new anonymous page is PG_DIRTY (`models.mm.reclaim.alloc_lru_pages` sets it); after its
swap write completes it is clean, i.e. a swap-cache page that reclaim frees at once. Its slot stays
in use (the data lives in swap) until the owner lets it go with `swap_free` (process exit, or the
page swapped back in), or frees the clean page itself (`free_lru_pages`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.mm.buddy import zone_of_pfn
from fragsim.models.mm.constants import (
    KIND_FILE,
    PG_ACTIVE,
    PG_DIRTY,
    PG_HEAD,
    PG_LRU,
    PG_WRITEBACK,
    WRITEBACK_RULE_6_1,
)
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.lru import lru_add_tail, lru_del, page_kind
from fragsim.models.mm.reclaim_state import WritebackBatch, reclaim_state
from fragsim.models.mm.state import STAT

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = [
    "complete_writeback",
    "nr_writeback",
    "queue_writeback",
    "set_reclaim",
    "start_writeback",
    "swap_free",
    "swap_pages",
]

_S_PGROTATED = STAT["pgrotated"]


@compiled("pages, zones, node, const int[], const int[], uint8[]")
def end_page_writeback(pages: np.ndarray, zones: np.ndarray, node: np.ndarray,
                       pfns: np.ndarray, owners: np.ndarray, reclaim: np.ndarray) -> int:
    """2.6.24 `end_page_writeback()` for each page still under writeback by the same owner.

    `TestClearPageReclaim(page)`: only a page with PG_reclaim (`reclaim[i]`) is rotated, by
    `rotate_reclaimable_page()`: on the inactive list it moves to the tail (pgrotated). On
    6.1's rule (`node['writeback_rule']`), `folio_end_writeback` -> `folio_rotate_reclaimable`
    -> `lru_move_tail_fn`: a clean page on either LRU list is deactivated and moved to the
    inactive tail. Returns how many pages completed.
    """
    nd = node[0]
    done = 0
    for i in range(pfns.shape[0]):
        pfn = pfns[i]
        f = pages[pfn]["flags"]
        if not (f & PG_WRITEBACK) or not (f & PG_HEAD) or pages[pfn]["owner"] != owners[i]:
            continue  # completed by a synchronous wait, or the page was freed meanwhile
        pages[pfn]["flags"] = f & (0xFF ^ PG_WRITEBACK)
        done += 1
        if not reclaim[i] or not (f & PG_LRU):
            continue
        if nd["writeback_rule"] == WRITEBACK_RULE_6_1:
            rotate = not (f & PG_DIRTY)
        else:
            rotate = not (f & PG_ACTIVE)
        if rotate:
            zone = zones[zone_of_pfn(zones, pfn)]
            lru_del(pages, zone, pfn)
            lru_add_tail(pages, zone, pfn)
            nd["stat"][_S_PGROTATED] += 1
    return done


@compiled("pages, const int[], int[]")
def _set_writeback(pages: np.ndarray, pfns: np.ndarray, out: np.ndarray) -> int:
    """Clear PG_DIRTY and set PG_WRITEBACK on dirty page-cache pages; their pfns go to `out`."""
    n = 0
    for i in range(pfns.shape[0]):
        pfn = pfns[i]
        f = pages[pfn]["flags"]
        if (f & PG_HEAD) and (f & PG_DIRTY) and not (f & PG_WRITEBACK) \
                and page_kind(pages, pfn) == KIND_FILE:
            pages[pfn]["flags"] = (f & (0xFF ^ PG_DIRTY)) | PG_WRITEBACK
            out[n] = pfn
            n += 1
    return n


def queue_writeback(m: Machine, pfns: np.ndarray, *, reclaim: bool = True) -> None:
    """Record that writeback of `pfns` (already PG_WRITEBACK) started now.

    `reclaim`: `pageout()` started it (PG_reclaim), so completion rotates the pages.
    """
    if pfns.shape[0] == 0:
        return
    pfns = np.array(pfns, dtype=np.int64)
    owners = m.pages["owner"][pfns].astype(np.int64)
    batch = WritebackBatch(done_at=float(m.now) + float(m.config.writeback_delay), pfns=pfns,
                           owners=owners, reclaim=reclaim)
    st = reclaim_state(m)
    if not reclaim and st.reclaim_dirty:
        batch.flagged = _take_reclaim_dirty(m, pfns)
    st.writeback.append(batch)


def _take_reclaim_dirty(m: Machine, pfns: np.ndarray) -> np.ndarray | None:
    """PG_reclaim that 6.1 reclaim set on dirty pages stays through their write: the flags of
    `pfns` (whose writeback starts now) as a batch's `flagged`, or None. What stays pending is
    what is still the same owner's dirty page; an entry whose page was freed or written
    meanwhile goes (the kernel clears PG_reclaim when a page is freed)."""
    st = reclaim_state(m)
    n = len(st.reclaim_dirty)
    keys = np.fromiter(st.reclaim_dirty.keys(), np.int64, n)
    owners = np.fromiter(st.reclaim_dirty.values(), np.int64, n)
    valid = m.pages["owner"][keys] == owners
    flagged = np.isin(pfns, keys[valid]).astype(np.uint8)
    keep = valid & ((m.pages["flags"][keys] & PG_DIRTY) != 0)
    st.reclaim_dirty = dict(zip(keys[keep].tolist(), owners[keep].tolist(), strict=True))
    return flagged if flagged.any() else None


def start_writeback(m: Machine, pfns: np.ndarray) -> int:
    """Start writeback of the dirty page-cache pages among `pfns` (a flusher, or `fsync`).

    Others (clean, already under writeback, not page cache) are left alone. Returns how many
    started; they complete `writeback_delay` seconds from `m.now`, without PG_reclaim, so they
    are not rotated.
    """
    pfns = np.ascontiguousarray(pfns, dtype=np.int64)
    out = np.empty(pfns.shape[0], dtype=np.int64)
    n = int(_set_writeback(m.pages, pfns, out))
    queue_writeback(m, out[:n], reclaim=False)
    return n


def complete_writeback(m: Machine, now: float | None = None) -> int:
    """End the writeback of every batch due by `now` (default `m.now`). Returns pages completed."""
    st = reclaim_state(m)
    t = float(m.now if now is None else now)
    if not st.writeback:
        return 0
    due = [b for b in st.writeback if b.done_at <= t]
    if not due:
        return 0
    st.writeback = [b for b in st.writeback if b.done_at > t]
    pfns = np.concatenate([b.pfns for b in due])
    owners = np.concatenate([b.owners for b in due])
    reclaim = np.concatenate([np.full(b.pfns.shape[0], b.reclaim, np.uint8)
                              if b.flagged is None else b.flagged | np.uint8(b.reclaim)
                              for b in due])
    return int(end_page_writeback(m.pages, m.zones, m.node, pfns, owners, reclaim))


def set_reclaim(m: Machine, pfns: np.ndarray) -> None:
    """`folio_set_reclaim()` on pages 6.1 reclaim met under writeback or dirty
    (`shrink_folio_list`): the flag is kept with the batch each page is being written in
    (module docstring); a dirty page's until its writeback starts (`queue_writeback`)."""
    st = reclaim_state(m)
    for b in st.writeback:
        if b.reclaim:
            continue  # pageout() set it already
        hit = np.isin(b.pfns, pfns)
        if hit.any():
            flagged = np.zeros(b.pfns.shape[0], np.uint8) if b.flagged is None else b.flagged
            b.flagged = flagged | hit.astype(np.uint8)
    flags = m.pages["flags"][pfns]
    dirty = pfns[((flags & PG_DIRTY) != 0) & ((flags & PG_WRITEBACK) == 0)]
    st.reclaim_dirty.update(zip(dirty.tolist(), m.pages["owner"][dirty].tolist(), strict=True))


def nr_writeback(m: Machine) -> int:
    """Pages under writeback now (vmstat `nr_writeback`)."""
    return int(np.count_nonzero(m.pages["flags"] & PG_WRITEBACK))


def swap_pages(m: Machine) -> tuple[int, int]:
    """(total_swap_pages, nr_swap_pages): slots configured and slots free."""
    reclaim_state(m)  # swapon on first use
    nd = m.node[0]
    return int(nd["total_swap_pages"]), int(nd["nr_swap_pages"])


def swap_free(m: Machine, nr: int) -> None:
    """Release `nr` swap slots (`swap_free()`): swapped-out pages of an exiting or faulting
    owner."""
    reclaim_state(m)
    nd = m.node[0]
    if nr < 0:
        raise ValueError(f"cannot free {nr} swap slots")
    nd["nr_swap_pages"] = min(int(nd["total_swap_pages"]), int(nd["nr_swap_pages"]) + nr)

"""Page migration: `mm/migrate.c` of Linux 2.6.35 (`migrate_pages`, `unmap_and_move`,
`move_to_new_page`, `migrate_page_copy`).

A movable page is an allocated order-0 anonymous or page-cache page (KIND_ANON, KIND_FILE) that
is not under writeback. Migrating it moves its contents to a target page and frees the old one:

- the target is an allocated order-0 page that holds nothing yet (PG_HEAD only, KIND_NONE, not on
  the LRU): what `get_new_page` hands `unmap_and_move`, a page with one reference, either freshly
  allocated (`new_node_page`) or split off a free block by the compaction free scanner
  (`split_free_page` leaves refcounted order-0 pages; the model marks them allocated likewise);
- the target takes the old page's owner, requested migratetype and kind (`page->mapping`,
  `page->index`), and `migrate_page_copy` carries PG_referenced, PG_active and PG_dirty over. A
  dirty page-cache page migrates: 2.6.35 moves dirty pagecache through the mapping's
  `migratepage` operation (`migrate_page` / `buffer_migrate_page`) without writing it out;
- LRU: the old page was isolated from its LRU list before migration and the target goes back with
  `putback_lru_page(newpage)`, which adds it at the *head* of the active or inactive list
  (`lru_cache_add_lru`), not at the old page's position. The model does the same;
- the old page is freed straight to the buddy lists (`free_one_page`). The kernel frees it to the
  per-cpu list, and `__alloc_pages_direct_compact` drains that list right after compaction so
  that the freed pages merge; freeing to the buddy at once gives the same free lists.

A page under writeback fails. 2.6.35 `unmap_and_move` skips it on the first three passes and
then (`force`, pass > 2) sleeps in `wait_on_page_writeback`; a synchronous call of the core
cannot wait in simulated time, so the model fails it (as asynchronous compaction does from 2.6.38).
Unmovable, slab, hugetlb, free and per-cpu pages fail too. Counters: `pgmigrate_success`,
`pgmigrate_fail` (3.8 vmstat names). Owners learn where their pages went from `m.migrated`:
rows (old_pfn, new_pfn, owner).

Accounting: a target page was counted in `pgalloc` when it was allocated or isolated; the old
page is counted in `pgfree` when it is freed, so `pgalloc - pgfree` stays the allocated pages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.mm.alloc import free_one
from fragsim.models.mm.buddy import free_one_page, zone_of_pfn
from fragsim.models.mm.constants import (
    KIND_ANON,
    KIND_FILE,
    KIND_FILE_MAPPED,
    MIGRATE_MOVABLE,
    PG_ACTIVE,
    PG_BUDDY,
    PG_DIRTY,
    PG_HEAD,
    PG_LRU,
    PG_PCP,
    PG_REFERENCED,
    PG_WRITEBACK,
)
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.lru import lru_add, lru_del
from fragsim.models.mm.reclaim_state import record_migrated
from fragsim.models.mm.state import KIND_SHIFT, STAT

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = [
    "ROW_COLUMNS",
    "is_migrate_target",
    "migrate_page",
    "migrate_pages",
    "move_to_new_page",
    "new_page_movable",
    "page_movable",
]

#: Columns of a `m.migrated` row.
ROW_COLUMNS = ("old_pfn", "new_pfn", "owner")

_S_PGFREE = STAT["pgfree"]
_S_PGMIGRATE_SUCCESS = STAT["pgmigrate_success"]
_S_PGMIGRATE_FAIL = STAT["pgmigrate_fail"]

#: Page flags `migrate_page_copy` carries from the old page to the new one.
_COPIED_FLAGS = PG_REFERENCED | PG_ACTIVE | PG_DIRTY
_NOT_ALLOCATED = PG_BUDDY | PG_PCP


@compiled("pages, int", inline=True)
def page_movable(pages: np.ndarray, pfn: int) -> bool:
    """Whether `unmap_and_move` can move the page now: allocated order-0 anon or file page, not
    under writeback (on the LRU or already isolated from it)."""
    flags = pages[pfn]["flags"]
    if not (flags & PG_HEAD) or (flags & _NOT_ALLOCATED) or (flags & PG_WRITEBACK):
        return False
    if pages[pfn]["order"] != 0:
        return False
    kind = (pages[pfn]["mt"] >> KIND_SHIFT) & 0x0F
    return kind in (KIND_ANON, KIND_FILE, KIND_FILE_MAPPED)


@compiled("pages, int", inline=True)
def is_migrate_target(pages: np.ndarray, pfn: int) -> bool:
    """Whether the page can receive a migrated page: allocated order 0, holding nothing yet."""
    return bool(pages[pfn]["flags"] == PG_HEAD and pages[pfn]["order"] == 0
                and (pages[pfn]["mt"] >> KIND_SHIFT) == 0)


@compiled("pages, zones, pageblock_type, nd, int, int, bool", inline=True)
def move_to_new_page(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                     nd: np.ndarray, old_pfn: int, new_pfn: int, putback: bool) -> None:
    """`move_to_new_page` + `migrate_page_copy` + the putbacks of a successful `unmap_and_move`.

    The caller has checked both pages and taken the old one off its LRU list. The new page
    inherits owner, migratetype and kind, and the referenced, active and dirty bits; with
    `putback` it goes to the head of its LRU list (`putback_lru_page`). The old page is freed.
    """
    old_flags = pages[old_pfn]["flags"]
    pages[new_pfn]["owner"] = pages[old_pfn]["owner"]
    pages[new_pfn]["mt"] = pages[old_pfn]["mt"]
    pages[new_pfn]["flags"] = PG_HEAD | (old_flags & _COPIED_FLAGS)
    if putback:
        z_new = zone_of_pfn(zones, new_pfn)
        lru_add(pages, zones[z_new], new_pfn, (old_flags & PG_ACTIVE) != 0)
    # The old page loses its mapping and its last reference: __free_pages -> __free_one_page.
    pages[old_pfn]["flags"] = 0
    pages[old_pfn]["owner"] = -1
    nd["stat"][_S_PGFREE] += 1
    free_one_page(pages, zones[zone_of_pfn(zones, old_pfn)], pageblock_type, nd, old_pfn, 0)
    nd["stat"][_S_PGMIGRATE_SUCCESS] += 1


@compiled("pages, zones, pageblock_type, node, int, int")
def migrate_page(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                 node: np.ndarray, old_pfn: int, new_pfn: int) -> bool:
    """Migrate the page at `old_pfn` to the target `new_pfn` (`unmap_and_move`, 2.6.35).

    `new_pfn` must be an allocated order-0 page holding nothing (see the module doc). A page on
    the LRU is isolated first and its successor goes to the head of the same list; a page that
    is not on the LRU stays off it. On failure (page not movable, or target unusable) nothing
    changes, `pgmigrate_fail` is counted and the caller still owns the target.
    """
    nd = node[0]
    n = pages.shape[0]
    if (old_pfn < 0 or old_pfn >= n or new_pfn < 0 or new_pfn >= n or old_pfn == new_pfn
            or zone_of_pfn(zones, old_pfn) < 0 or zone_of_pfn(zones, new_pfn) < 0
            or not page_movable(pages, old_pfn) or not is_migrate_target(pages, new_pfn)):
        nd["stat"][_S_PGMIGRATE_FAIL] += 1
        return False
    on_lru = (pages[old_pfn]["flags"] & PG_LRU) != 0
    if on_lru:
        lru_del(pages, zones[zone_of_pfn(zones, old_pfn)], old_pfn)
    move_to_new_page(pages, zones, pageblock_type, nd, old_pfn, new_pfn, on_lru)
    return True


def new_page_movable(m: Machine, old_pfn: int) -> int:
    """A `new_page_fn` for `migrate_pages`: one order-0 GFP_HIGHUSER_MOVABLE page from the
    allocator, as 2.6.35 memory hot-remove's `new_node_page` asks for; -1 if none."""
    return m.alloc(0, migratetype=MIGRATE_MOVABLE, owner=-1)


def migrate_pages(m: Machine, pfns: Iterable[int],
                  new_page_fn: Callable[[Machine, int], int] = new_page_movable
                  ) -> tuple[int, int]:
    """2.6.35 `migrate_pages(from, get_new_page, ...)`: migrate each pfn in turn (one pass).

    `new_page_fn(m, old_pfn)` returns a target (an allocated order-0 page holding nothing) or
    -1; like `unmap_and_move` returning -ENOMEM, -1 stops the walk and the pages not yet tried
    stay where they are, counted neither way. A target whose migration failed is freed, as
    `putback_lru_page(newpage)` frees it. Moved rows are appended to `m.migrated`.
    Returns (migrated, failed).
    """
    rows: list[tuple[int, int, int]] = []
    failed = 0
    for pfn in pfns:
        old = int(pfn)
        new = int(new_page_fn(m, old))
        if new < 0:
            break
        owner = int(m.pages[old]["owner"]) if 0 <= old < m.nr_pages else -1
        if migrate_page(m.pages, m.zones, m.pageblock_type, m.node, old, new):
            rows.append((old, new, owner))
        else:
            failed += 1
            if 0 <= new < m.nr_pages and is_migrate_target(m.pages, new):
                free_one(m.pages, m.zones, m.pageblock_type, m.node, new)
    if rows:
        record_migrated(m, np.array(rows, dtype=np.int64))
    return len(rows), failed

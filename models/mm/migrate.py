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
- the old page is freed (`free_migrated_page`). 2.6.35 `unmap_and_move` hands it to
  `putback_lru_page`, whose `lru_cache_add_lru` holds the last reference in the cpu's LRU
  pagevec; when that drains, `release_pages` -> `__pagevec_free` -> `free_hot_cold_page(page,
  0)`: a hot page on the per-cpu list. So on `mobility-2.6.35` (MIGRATE_2_6_35) with per-cpu
  lists on, the old page goes to the head of the migrating cpu's list at once (the pagevec's
  delay of up to 14 pages is not modelled), as do a target whose migration failed
  (`putback_lru_page(newpage)`) and compaction's unused targets (`release_freepages` ->
  `__free_page`); `__alloc_pages_direct_compact` then drains that cpu's lists
  (`drain_pages(get_cpu())`) "but we want merging". On 6.1's per-order lists
  (`node['pcp_per_order']`, the 6.1 and 6.15 presets) the last `folio_put` frees them with
  `free_unref_page(page, 0)` on the migrating cpu (`models.mm.pcp_6_1`). Every other policy,
  and pcp off, frees them straight to the buddy lists (`__free_one_page`).

A page under writeback: what happens is the policy's migrate rule (`node['migrate_rule']`, from
`Policy.migrate_rule`):

- MIGRATE_ONE_PASS (every policy but `mobility-2.6.35`): one pass, and a page under writeback
  fails (as asynchronous compaction does from 2.6.38);
- MIGRATE_2_6_35: 2.6.35 `migrate_pages()`: `for (pass = 0; pass < 10 && retry; pass++)` over
  the pages still listed, `unmap_and_move(..., force = pass > 2)`. A page under writeback is
  -EAGAIN on passes 0-2 (it stays listed and its target goes back: `putback_lru_page(newpage)`
  frees it); from pass 3 `wait_on_page_writeback(page)` and it migrates. The core cannot sleep
  in simulated time, so the wait ends the page's writeback at once, as the synchronous lumpy
  pass does (`models.mm.vmscan`); the writeback queue then skips the page.

Unmovable, slab, hugetlb, free and per-cpu pages fail at once, whatever the rule (a permanent
failure: `nr_failed++`). Counters: `pgmigrate_success`,
`pgmigrate_fail` (3.8 vmstat names). Owners learn where their pages went from `m.migrated`:
rows (old_pfn, new_pfn, owner).

Accounting: a target page was counted in `pgalloc` when it was allocated or isolated; the old
page is counted in `pgfree` when it is freed, so `pgalloc - pgfree` stays the allocated pages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.mm.alloc import free_one_pcp
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
from fragsim.models.mm.pcp import free_hot_cold_page
from fragsim.models.mm.pcp_6_1 import free_unref_page
from fragsim.models.mm.reclaim_state import record_migrated
from fragsim.models.mm.state import KIND_SHIFT, STAT

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = [
    "MIGRATE_2_6_35",
    "MIGRATE_ONE_PASS",
    "MIGRATE_PASSES",
    "MIGRATE_FORCE_PASS",
    "ROW_COLUMNS",
    "push_row",
    "is_migrate_target",
    "migrate_page",
    "migrate_pages",
    "free_migrated_page",
    "move_to_new_page",
    "new_page_movable",
    "page_migratable",
    "page_movable",
]

#: Migrate rules (`node['migrate_rule']`): one pass, writeback fails; or 2.6.35 migrate_pages.
MIGRATE_ONE_PASS = 0
MIGRATE_2_6_35 = 1
#: 2.6.35 `migrate_pages()`: at most 10 passes; `force` (wait on writeback) when pass > 2.
MIGRATE_PASSES = 10
MIGRATE_FORCE_PASS = 3

#: Columns of a `m.migrated` row.
ROW_COLUMNS = ("old_pfn", "new_pfn", "owner")

_S_PGFREE = STAT["pgfree"]
_S_PGMIGRATE_SUCCESS = STAT["pgmigrate_success"]
_S_PGMIGRATE_FAIL = STAT["pgmigrate_fail"]

#: Page flags `migrate_page_copy` carries from the old page to the new one.
_COPIED_FLAGS = PG_REFERENCED | PG_ACTIVE | PG_DIRTY
_NOT_ALLOCATED = PG_BUDDY | PG_PCP


@compiled("int[][], int, int, int, int", nrt=True)
def push_row(rows: np.ndarray, n_rows: int, old: int, new: int, owner: int) -> np.ndarray:
    """Write row `n_rows` (old_pfn, new_pfn, owner) of a compaction's migrated pages,
    growing `rows` when it is full; returns the (possibly new) array."""
    if n_rows == rows.shape[0]:
        grown = np.empty((2 * n_rows + 64, 3), dtype=np.int64)
        grown[:n_rows] = rows[:n_rows]
        rows = grown
    rows[n_rows, 0] = old
    rows[n_rows, 1] = new
    rows[n_rows, 2] = owner
    return rows


@compiled("pages, int", inline=True)
def page_migratable(pages: np.ndarray, pfn: int) -> bool:
    """Whether the page is one `unmap_and_move` can move at all, now or once its writeback is
    done: allocated order-0 anon or file page (on the LRU or already isolated from it)."""
    flags = pages[pfn]["flags"]
    if not (flags & PG_HEAD) or (flags & _NOT_ALLOCATED):
        return False
    if pages[pfn]["order"] != 0:
        return False
    kind = (pages[pfn]["mt"] >> KIND_SHIFT) & 0x0F
    return kind in (KIND_ANON, KIND_FILE, KIND_FILE_MAPPED)


@compiled("pages, int", inline=True)
def page_movable(pages: np.ndarray, pfn: int) -> bool:
    """Whether `unmap_and_move` can move the page now: allocated order-0 anon or file page, not
    under writeback (on the LRU or already isolated from it)."""
    return not (pages[pfn]["flags"] & PG_WRITEBACK) and page_migratable(pages, pfn)


@compiled("pages, int", inline=True)
def is_migrate_target(pages: np.ndarray, pfn: int) -> bool:
    """Whether the page can receive a migrated page: allocated order 0, holding nothing yet."""
    return bool(pages[pfn]["flags"] == PG_HEAD and pages[pfn]["order"] == 0
                and (pages[pfn]["mt"] >> KIND_SHIFT) == 0)


@compiled("pages, zones, pageblock_type, nd, int, int", inline=True)
def free_migrated_page(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                       nd: np.ndarray, pfn: int, cpu: int) -> None:
    """Free an order-0 page migration is done with (the old page, an unused target), flags
    already cleared and `pgfree` counted: on MIGRATE_2_6_35 with per-cpu lists on and `cpu >=
    0`, `free_hot_cold_page(page, 0)` on `cpu` (module docstring); on 6.1's per-order lists
    (`node['pcp_per_order']`) with `cpu >= 0`, `free_unref_page(page, 0)` on `cpu`; else
    `__free_one_page`."""
    zone = zones[zone_of_pfn(zones, pfn)]
    if cpu >= 0 and nd["pcp"] != 0 and nd["pcp_per_order"] != 0:
        # 6.1: the last `folio_put` frees the page with `free_unref_page(page, 0)` on `cpu`.
        free_unref_page(pages, zone, pageblock_type, nd, pfn, 0, cpu)
    elif cpu >= 0 and nd["pcp"] != 0 and nd["migrate_rule"] == MIGRATE_2_6_35:
        free_hot_cold_page(pages, zone, pageblock_type, nd, pfn, cpu, 0)
    else:
        free_one_page(pages, zone, pageblock_type, nd, pfn, 0)


@compiled("pages, zones, pageblock_type, nd, int, int, bool, int", inline=True)
def move_to_new_page(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                     nd: np.ndarray, old_pfn: int, new_pfn: int, putback: bool,
                     cpu: int) -> None:
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
    # The old page loses its mapping and its last reference (putback_lru_page, put_page).
    pages[old_pfn]["flags"] = 0
    pages[old_pfn]["owner"] = -1
    nd["stat"][_S_PGFREE] += 1
    free_migrated_page(pages, zones, pageblock_type, nd, old_pfn, cpu)
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
    move_to_new_page(pages, zones, pageblock_type, nd, old_pfn, new_pfn, on_lru, 0)
    return True


def new_page_movable(m: Machine, old_pfn: int) -> int:
    """A `new_page_fn` for `migrate_pages`: one order-0 GFP_HIGHUSER_MOVABLE page from the
    allocator, as 2.6.35 memory hot-remove's `new_node_page` asks for; -1 if none."""
    return m.alloc(0, migratetype=MIGRATE_MOVABLE, owner=-1)


def migrate_pages(m: Machine, pfns: Iterable[int],
                  new_page_fn: Callable[[Machine, int], int] = new_page_movable
                  ) -> tuple[int, int]:
    """2.6.35 `migrate_pages(from, get_new_page, ...)`: migrate the pfns, in list order.

    `new_page_fn(m, old_pfn)` returns a target (an allocated order-0 page holding nothing) or
    -1; like `unmap_and_move` returning -ENOMEM, -1 stops the walk and the pages not yet tried
    (and any waiting for a retry) stay where they are, counted neither way. A target whose
    migration failed is freed, as `putback_lru_page(newpage)` frees it. Moved rows are appended
    to `m.migrated`. With MIGRATE_ONE_PASS each page is tried once; with MIGRATE_2_6_35 (the
    policy's `migrate_rule`) a page under writeback is retried on passes 0-2 (each time its
    target is freed) and waited on from pass 3, up to 10 passes while some page asked for a
    retry (see the module doc). Returns (migrated, failed): 2.6.35's `nr_failed + retry`.
    """
    rows: list[tuple[int, int, int]] = []
    failed = 0
    wait = int(m.node[0]["migrate_rule"]) == MIGRATE_2_6_35
    # putback_lru_page(newpage) frees an unused target as free_migrated_page does (cpu 0).
    cpu = 0 if wait else -1
    listed = [int(pfn) for pfn in pfns]
    enomem = False
    for pass_ in range(MIGRATE_PASSES if wait else 1):
        retry: list[int] = []
        for old in listed:
            new = int(new_page_fn(m, old))
            if new < 0:  # -ENOMEM: the rest stay where they are
                enomem = True
                break
            valid = 0 <= old < m.nr_pages
            if (wait and valid and int(m.pages[old]["flags"]) & PG_WRITEBACK
                    and page_migratable(m.pages, old)):
                if pass_ < MIGRATE_FORCE_PASS:
                    # -EAGAIN: putback_lru_page(newpage) frees the target; retry later.
                    if 0 <= new < m.nr_pages and is_migrate_target(m.pages, new):
                        free_one_pcp(m.pages, m.zones, m.pageblock_type, m.node, new, cpu, 0)
                    retry.append(old)
                    continue
                # force: wait_on_page_writeback(page) ends its writeback now.
                m.pages[old]["flags"] = int(m.pages[old]["flags"]) & (0xFF ^ PG_WRITEBACK)
            owner = int(m.pages[old]["owner"]) if valid else -1
            if migrate_page(m.pages, m.zones, m.pageblock_type, m.node, old, new):
                rows.append((old, new, owner))
            else:
                failed += 1
                if 0 <= new < m.nr_pages and is_migrate_target(m.pages, new):
                    free_one_pcp(m.pages, m.zones, m.pageblock_type, m.node, new, cpu, 0)
        if enomem:
            break
        listed = retry
        if not retry:
            break
    else:
        failed += len(listed)  # still asking for a retry after the last pass
    if rows:
        record_migrated(m, np.array(rows, dtype=np.int64))
    return len(rows), failed

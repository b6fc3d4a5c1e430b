"""Reclaim state that does not fit the record arrays: writeback in flight, shrinkers, tunables.

Everything reclaim needs per page or per zone lives in `pages`, `zones` and `node` (LRU links and
flags, `pages_scanned`, `prev_priority`, swap slot counts). What is left is variable-sized or
Python-shaped, and lives in one `ReclaimState` per machine:

- the writeback queue: batches of pfns whose I/O was started (2.6.24 `pageout()` ->
  `->writepage()`, or `start_writeback` for a flusher) with the simulated time it completes
  (`end_page_writeback()`), see `models.mm.writeback`;
- the registered shrinkers (`register_shrinker()` in 2.6.24 `mm/vmscan.c`): the reclaimable slab
  caches of `models.mm.slab`, and the list of all caches; and the superblock shrinkers 6.1 has
  instead of a dentry and an inode cache's own (`models.mm.slab_6_1`, read only by 6.1's
  `shrink_slab`);
- the sysctls reclaim reads (`vm_swappiness`, `vfs_cache_pressure`) and a count of the
  `congestion_wait()` naps reclaim would have taken, for the caller to turn into stall time;
- page hooks (`PageHook`): what must happen at once when reclaim frees a page or migration
  moves one, as the kernel's page-cache removal frees the page's radix-tree node slot and
  buffer heads (`__remove_from_page_cache`, `try_to_free_buffers`). `record_reclaimed` and
  `record_migrated` hand every row to the hooks and leave it in `m.reclaimed` / `m.migrated`
  for the page owners; a probe copy gets copies of the hooks.

The state is found with `reclaim_state(m)`, which creates it on first use. `Machine.copy()` makes a
probe copy with four array copies; the copy must not share this state, so the state remembers the
`node` array of its machine, and a copy (which has a new `node`) gets a deep copy of the state
the first time it asks. `copy_reclaim_state(src, dst)` does that eagerly, for `Machine.copy()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from fragsim.models.mm.constants import PAGE_SHIFT

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = [
    "DEF_PRIORITY",
    "PageHook",
    "ReclaimState",
    "Shrinker",
    "SuperShrinker",
    "WritebackBatch",
    "copy_reclaim_state",
    "reclaim_state",
    "record_migrated",
    "record_reclaimed",
]

#: 2.6.24 `DEF_PRIORITY`: scan 1/4096th of each list at first.
DEF_PRIORITY = 12
#: 2.6.24 `vm_swappiness` default.
DEFAULT_SWAPPINESS = 60
#: 2.6.24 `sysctl_vfs_cache_pressure` default.
DEFAULT_VFS_CACHE_PRESSURE = 100

_ATTR = "reclaim_state"


class Shrinker(Protocol):
    """2.6.24 `struct shrinker`: `shrink(nr, gfp)` plus `seeks` and the carried-over `nr`."""

    name: str
    seeks: int
    nr: int

    def shrinker_count(self, vfs_cache_pressure: int) -> int:
        """`shrink(0, gfp)`: how many objects could be freed, as the shrinker reports it."""
        ...

    def shrink_objects(self, m: Machine, nr_to_scan: int) -> int:
        """Free up to `nr_to_scan` unused objects, oldest first; returns slab pages freed."""
        ...

    def clone(self) -> Shrinker:
        """A deep copy for a probe copy of the machine."""
        ...


class SuperShrinker(Protocol):
    """6.1 `sb->s_shrink`: one shrinker over a dentry and an inode cache (`models.mm.slab_6_1`)."""

    def clone(self, caches: dict[int, Shrinker]) -> SuperShrinker:
        """A deep copy for a probe copy of the machine; `caches` maps `id()` of this machine's
        slab caches to the copy's."""
        ...


class PageHook(Protocol):
    """Work the freeing or moving of a page does at once (module docstring)."""

    def reclaimed(self, m: Machine, rows: np.ndarray) -> None:
        """Rows (pfn, owner, kind) of pages reclaim just freed."""
        ...

    def migrated(self, m: Machine, rows: np.ndarray) -> None:
        """Rows (old_pfn, new_pfn, owner) of pages migration just moved."""
        ...

    def clone(self, caches: dict[int, Shrinker]) -> PageHook:
        """A deep copy for a probe copy of the machine; `caches` maps `id()` of this machine's
        slab caches to the copy's."""
        ...


@dataclass
class WritebackBatch:
    """Pages whose writeback started together: they complete at `done_at` simulated seconds."""

    done_at: float
    pfns: np.ndarray  # int64
    owners: np.ndarray  # int64: the owner when writeback started (a freed page is skipped)
    reclaim: bool = True  # PG_reclaim: `pageout()` started it, so completion rotates the pages
    #: PG_reclaim set later on some of its pages (6.1 `shrink_folio_list` meeting them under
    #: writeback), one byte a page, or None
    flagged: np.ndarray | None = None


@dataclass
class ReclaimState:
    """One machine's reclaim bookkeeping outside the record arrays (see the module docstring)."""

    node: np.ndarray
    writeback: list[WritebackBatch] = field(default_factory=list)
    caches: list[Shrinker] = field(default_factory=list)
    shrinkers: list[Shrinker] = field(default_factory=list)
    #: 6.1 superblock shrinkers (`models.mm.slab_6_1.register_super`), in registration order.
    supers: list[SuperShrinker] = field(default_factory=list)
    hooks: list[PageHook] = field(default_factory=list)
    swappiness: int = DEFAULT_SWAPPINESS
    vfs_cache_pressure: int = DEFAULT_VFS_CACHE_PRESSURE
    #: `congestion_wait(WRITE, HZ/10)` calls reclaim made (each 100 ms in the kernel).
    congestion_waits: int = 0
    #: What the last `try_to_free_pages` would have returned in 2.6.24 (progress, 0 or 1).
    last_progress: int = 0
    #: NR_ANON_PAGES as last counted and the simulated time of the count (see
    #: `models.mm.reclaim.nr_anon_pages`).
    nr_anon: int = -1
    nr_anon_at: float = -1.0
    #: 6.1 `pgdat->kswapd_failures`: kswapd runs in a row that reclaimed nothing
    #: (`models.mm.kswapd_6_1`); any reclaim progress resets it. Unused before 6.1.
    kswapd_failures: int = 0
    #: 6.1 `lruvec->anon_cost` and `file_cost` (`models.mm.reclaim_6_1.lru_note_cost`).
    anon_cost: int = 0
    file_cost: int = 0
    #: PG_reclaim on dirty page-cache pages 6.1 reclaim met before their writeback started
    #: (pfn -> owner then); `models.mm.writeback.queue_writeback` moves the flag onto the batch.
    reclaim_dirty: dict[int, int] = field(default_factory=dict)

    def clone(self, node: np.ndarray) -> ReclaimState:
        """A deep copy belonging to the machine whose node array is `node`."""
        by_id = {id(c): c.clone() for c in self.caches}
        for s in self.shrinkers:
            by_id.setdefault(id(s), s.clone())
        return ReclaimState(
            node=node,
            writeback=[WritebackBatch(b.done_at, b.pfns.copy(), b.owners.copy(), b.reclaim,
                                      None if b.flagged is None else b.flagged.copy())
                       for b in self.writeback],
            caches=[by_id[id(c)] for c in self.caches],
            shrinkers=[by_id[id(s)] for s in self.shrinkers],
            supers=[s.clone(by_id) for s in self.supers],
            hooks=[h.clone(by_id) for h in self.hooks],
            swappiness=self.swappiness,
            vfs_cache_pressure=self.vfs_cache_pressure,
            congestion_waits=self.congestion_waits,
            last_progress=self.last_progress,
            nr_anon=self.nr_anon,
            nr_anon_at=self.nr_anon_at,
            kswapd_failures=self.kswapd_failures,
            anon_cost=self.anon_cost,
            file_cost=self.file_cost,
            reclaim_dirty=dict(self.reclaim_dirty),
        )


def _init_machine(m: Machine) -> None:
    """Boot-time values reclaim needs that the allocator core does not set.

    `swapon`: total_swap_pages and nr_swap_pages from `config.swap`; `free_area_init_core()`:
    every zone's `prev_priority` starts at DEF_PRIORITY. Done once, when the state is created,
    and only where the machine left the field at zero.
    """
    nd = m.node[0]
    total = int(m.config.swap) >> PAGE_SHIFT
    if nd["total_swap_pages"] == 0 and total > 0:
        nd["total_swap_pages"] = total
        nd["nr_swap_pages"] = total
    for z in range(m.zones.shape[0]):
        if m.zones[z]["prev_priority"] == 0:
            m.zones[z]["prev_priority"] = DEF_PRIORITY


def reclaim_state(m: Machine) -> ReclaimState:
    """The machine's `ReclaimState`, created on first use (a copy of a machine gets its own)."""
    st: ReclaimState | None = m.__dict__.get(_ATTR)
    if st is None:
        st = ReclaimState(node=m.node)
        _init_machine(m)
        setattr(m, _ATTR, st)
    elif st.node is not m.node:
        st = st.clone(m.node)
        setattr(m, _ATTR, st)
    return st


def copy_reclaim_state(src: Machine, dst: Machine) -> None:
    """Give `dst` (a fresh `src.copy()`) a deep copy of `src`'s reclaim state, if it has one."""
    st: ReclaimState | None = src.__dict__.get(_ATTR)
    if st is not None:
        setattr(dst, _ATTR, st.clone(dst.node))


def record_reclaimed(m: Machine, rows: np.ndarray) -> None:
    """Reclaim freed the pages of `rows` (pfn, owner, kind): page hooks first, then the rows
    wait in `m.reclaimed` for the owners."""
    if rows.shape[0] == 0:
        return
    st: ReclaimState | None = m.__dict__.get(_ATTR)
    if st is not None:
        for hook in st.hooks:
            hook.reclaimed(m, rows)
    m.reclaimed.append(rows)


def record_migrated(m: Machine, rows: np.ndarray) -> None:
    """Migration moved the pages of `rows` (old_pfn, new_pfn, owner); hooks, then owners."""
    if rows.shape[0] == 0:
        return
    st: ReclaimState | None = m.__dict__.get(_ATTR)
    if st is not None:
        for hook in st.hooks:
            hook.migrated(m, rows)
    m.migrated.append(rows)

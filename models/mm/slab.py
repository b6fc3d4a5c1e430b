"""Slab caches and their shrinkers: objects in order-0 pages, freed page by page.

A `SlabCache` (`kmem_cache_create`) packs `objs_per_page` objects into each order-0 page it
allocates, owned by the cache's id. Caches made with SLAB_RECLAIM_ACCOUNT (dentry, inode) ask for
RECLAIMABLE pages (`__GFP_RECLAIMABLE`, KIND_SLAB) and register a shrinker; the others ask for
UNMOVABLE pages (KIND_KERNEL) and are never shrunk. Each object is

- free (its slot in a live page is available), or
- in use: pinned by an agent (a dentry with references), or
- unused but cached: on the cache's LRU (`dentry_unused`), freed by the shrinker oldest first.

New objects fill free slots of pages the cache already holds before a new page is taken (the
partial lists of SLAB and SLUB); slots are reused last-freed first, as the per-cpu object arrays
hand them out. A page goes back to the buddy allocator only when its last object goes
(`kmem_freepages`); its in-use count is also kept in `pages['next']` (the kernel's
`page->inuse`). Objects are addressed by handles `generation << 32 | slot`, so a handle to an
object the shrinker freed is recognised as stale (`get` returns False for it).

The shrinker follows 2.6.24 `shrink_dcache_memory` / `shrink_icache_memory`: it reports
`(nr_unused / 100) * vfs_cache_pressure` objects, bails out (-1) without __GFP_FS, and
`prune_dcache(nr)` frees the `nr` least recently unused objects (DCACHE_REFERENCED rotation and
the dentry -> inode pinning are not modelled). `shrink_slab` is 2.6.24 `shrink_slab()`, with
SHRINK_BATCH 128; `drop_slab` is `fs/drop_caches.c`. 6.1's shrinking of the same caches (its
`do_shrink_slab`, the superblock shrinker) is `models.mm.slab_6_1`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.mm.constants import (
    ALLOC_WMARK_LOW,
    KIND_KERNEL,
    KIND_SLAB,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
)
from fragsim.models.mm.gfp import GFP, GFP_KERNEL
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.reclaim_state import reclaim_state, record_reclaimed
from fragsim.models.mm.state import STAT

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = [
    "DEFAULT_SEEKS",
    "SHRINK_BATCH",
    "SLAB_OWNER_BASE",
    "SlabCache",
    "drop_slab",
    "kmem_cache_create",
    "shrink_slab",
]

#: 2.6.24 `SHRINK_BATCH`.
SHRINK_BATCH = 128
#: 2.6.24 `DEFAULT_SEEKS`.
DEFAULT_SEEKS = 2
#: 2.6.24 `SWAP_CLUSTER_MAX` (shrink_slab's default scan).
_SWAP_CLUSTER_MAX = 32
#: Owner ids of slab pages start here (cache i owns its pages as SLAB_OWNER_BASE + i).
SLAB_OWNER_BASE = 1 << 28

OBJ_FREE = 0
OBJ_INUSE = 1
OBJ_UNUSED = 2

_SLOT_MASK = (1 << 32) - 1


@compiled("int[], int, int, int8[], int[], int[], int[], int, pages, int[], int")
def _take_slots(stack: np.ndarray, nr_stack: int, k: int, state: np.ndarray, gen: np.ndarray,
                page_inuse: np.ndarray, page_pfn: np.ndarray, opp: int, pages: np.ndarray,
                out: np.ndarray, got: int) -> int:
    """Pop `k` free slots off the top of the stack into use: handles go to `out[got:]`, the
    pages' in-use counts (and their `page->inuse` mirror) go up. Returns the new stack size."""
    for j in range(k):
        slot = stack[nr_stack - 1 - j]
        state[slot] = OBJ_INUSE
        p = slot // opp
        page_inuse[p] += 1
        out[got + j] = (gen[slot] << 32) | slot
        pfn = page_pfn[p]
        if pfn >= 0:
            pages[pfn]["next"] = page_inuse[p]
    return nr_stack - k


@compiled("int[], int8[], int[], int[], int[], int, int[], int, pages, int[]", nrt=True)
def _release_slots(slots: np.ndarray, state: np.ndarray, gen: np.ndarray,
                   page_inuse: np.ndarray, page_pfn: np.ndarray, opp: int, stack: np.ndarray,
                   nr_stack: int, pages: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Free the objects at `slots` (distinct): their slots on surviving pages are pushed on the
    stack in the order given; pages left empty are dropped (their slots leave the stack).
    `counts` gets (new stack size, in-use freed, unused freed); returns the emptied page
    indices in increasing order (their pfns are still in `page_pfn`)."""
    n_inuse = 0
    n_unused = 0
    for i in range(slots.shape[0]):
        s = slots[i]
        st = state[s]
        if st == OBJ_INUSE:
            n_inuse += 1
        elif st == OBJ_UNUSED:
            n_unused += 1
        state[s] = OBJ_FREE
        gen[s] += 1
        page_inuse[s // opp] -= 1
    nr_empty = 0
    empty = np.empty(slots.shape[0], np.int64)
    for i in range(slots.shape[0]):
        s = slots[i]
        p = s // opp
        if page_inuse[p] > 0:
            stack[nr_stack] = s
            nr_stack += 1
        elif page_inuse[p] == 0:
            empty[nr_empty] = p
            nr_empty += 1
            page_inuse[p] = -1  # marks it taken once; reset below
    empty = np.sort(empty[:nr_empty])
    for i in range(nr_empty):
        page_inuse[empty[i]] = 0
    for i in range(slots.shape[0]):
        p = slots[i] // opp
        pfn = page_pfn[p]
        if pfn >= 0:
            pages[pfn]["next"] = page_inuse[p]
    if nr_empty:
        for i in range(nr_empty):
            page_pfn[empty[i]] = -(page_pfn[empty[i]] + 2)  # dropped; decoded by the caller
        keep = 0
        for i in range(nr_stack):
            if page_pfn[stack[i] // opp] >= 0:
                stack[keep] = stack[i]
                keep += 1
        nr_stack = keep
    counts[0] = nr_stack
    counts[1] = n_inuse
    counts[2] = n_unused
    return empty


def _grow(a: np.ndarray, need: int, fill: int) -> np.ndarray:
    if need <= a.shape[0]:
        return a
    out = np.full(max(need, 2 * a.shape[0], 16), fill, dtype=a.dtype)
    out[:a.shape[0]] = a
    return out


class SlabCache:
    """One `struct kmem_cache` with its objects' state in numpy arrays (module docstring)."""

    def __init__(self, name: str, objs_per_page: int, owner: int, reclaimable: bool,
                 seeks: int = DEFAULT_SEEKS) -> None:
        if objs_per_page < 1:
            raise ValueError(f"objs_per_page {objs_per_page} must be >= 1")
        self.name = name
        self.objs_per_page = objs_per_page
        self.owner = owner
        self.reclaimable = reclaimable
        self.seeks = seeks
        self.nr = 0  # shrinker->nr: scan carried over to the next shrink_slab
        #: 6.1 `shrinker->nr_deferred` when the cache is a shrinker of its own under 6.1
        #: (`models.mm.slab_6_1`); unused by 2.6.24's `shrink_slab`.
        self.nr_deferred = 0
        self.migratetype = MIGRATE_RECLAIMABLE if reclaimable else MIGRATE_UNMOVABLE
        self.kind = KIND_SLAB if reclaimable else KIND_KERNEL
        self.page_pfn = np.full(0, -1, np.int64)  # per page index: its pfn, -1 if none
        self.page_inuse = np.zeros(0, np.int64)  # objects in use or unused on the page
        self.free_pages: list[int] = []  # page indices without a page, for reuse
        self.state = np.zeros(0, np.int8)  # per slot: OBJ_*
        self.gen = np.zeros(0, np.int64)  # per slot: generation, bumped when the object goes
        self.lru_seq = np.zeros(0, np.int64)  # per slot: sequence of its LRU entry
        self.stack = np.zeros(0, np.int64)  # free slots of live pages; top = end
        self.nr_stack = 0
        self.lru_slot = np.zeros(0, np.int64)  # LRU entries, oldest at lru_head
        self.lru_entry_seq = np.zeros(0, np.int64)
        self.lru_head = 0
        self.lru_tail = 0
        self.seq = 0
        self.nr_inuse = 0
        self.nr_unused = 0
        self.nr_pages = 0

    # --- Shrinker protocol ------------------------------------------------------------------
    def shrinker_count(self, vfs_cache_pressure: int) -> int:
        """`shrink(0, gfp)`: `(nr_unused / 100) * sysctl_vfs_cache_pressure`."""
        return (self.nr_unused // 100) * vfs_cache_pressure

    def shrink_objects(self, m: Machine, nr_to_scan: int) -> int:
        """`prune_dcache(nr)`: free the `nr_to_scan` oldest unused objects; returns pages freed."""
        return self._release(m, self._oldest_unused(nr_to_scan), reclaim=True)

    def prune(self, m: Machine, nr_to_scan: int, newest_first: bool = False) -> tuple[int, int]:
        """Free up to `nr_to_scan` of the oldest unused objects (an LRU walk that isolates
        every entry it meets, as 6.1 `list_lru_shrink_walk` with `dentry_lru_isolate` or
        `inode_lru_isolate` on an LRU of unused objects). `newest_first` frees the taken
        objects in reverse (6.1 `dispose_list` takes inodes off the head of a list the walk
        pushed them onto). Returns (objects freed, slab pages freed)."""
        slots = self._oldest_unused(nr_to_scan)
        if newest_first:
            slots = slots[::-1]
        return int(slots.shape[0]), self._release(m, slots, reclaim=True)

    def clone(self) -> SlabCache:
        new = object.__new__(SlabCache)
        new.__dict__.update(self.__dict__)
        for k, v in self.__dict__.items():
            if isinstance(v, np.ndarray):
                setattr(new, k, v.copy())
        new.free_pages = list(self.free_pages)
        return new

    # --- object life cycle ------------------------------------------------------------------
    def alloc(self, m: Machine, n: int, alloc_flags: int = ALLOC_WMARK_LOW) -> np.ndarray:
        """`kmem_cache_alloc` x n: handles of `n` new in-use objects (-1 where no page could be
        had). Free slots of held pages are used first; then new pages come from the buddy
        allocator's fast path (`cache_grow`)."""
        out = np.full(n, -1, np.int64)
        got = 0
        while got < n:
            k = min(n - got, self.nr_stack)
            if k == 0:
                if not self._grow_pages(m, -(-(n - got) // self.objs_per_page), alloc_flags):
                    break
                continue
            self.nr_stack = int(_take_slots(self.stack, self.nr_stack, k, self.state, self.gen,
                                            self.page_inuse, self.page_pfn,
                                            self.objs_per_page, m.pages, out, got))
            got += k
            self.nr_inuse += k
        return out

    def put(self, handles: np.ndarray) -> int:
        """`dput` to zero: in-use objects become unused and join the LRU (newest end)."""
        slots = self._valid(handles, OBJ_INUSE)
        k = int(slots.shape[0])
        if k == 0:
            return 0
        self.state[slots] = OBJ_UNUSED
        seqs = np.arange(self.seq, self.seq + k, dtype=np.int64)
        self.seq += k
        self.lru_seq[slots] = seqs
        need = self.lru_tail + k
        if need > self.lru_slot.shape[0] and self.lru_head > 0:  # compact the ring
            live = self.lru_tail - self.lru_head
            self.lru_slot[:live] = self.lru_slot[self.lru_head:self.lru_tail]
            self.lru_entry_seq[:live] = self.lru_entry_seq[self.lru_head:self.lru_tail]
            self.lru_head, self.lru_tail = 0, live
            need = live + k
        self.lru_slot = _grow(self.lru_slot, need, -1)
        self.lru_entry_seq = _grow(self.lru_entry_seq, need, -1)
        self.lru_slot[self.lru_tail:need] = slots
        self.lru_entry_seq[self.lru_tail:need] = seqs
        self.lru_tail = need
        self.nr_inuse -= k
        self.nr_unused += k
        return k

    def get(self, handles: np.ndarray) -> np.ndarray:
        """A cache lookup (`d_lookup` hit): unused objects still cached become in use again.
        Returns, per handle, whether it hit (False: freed by the shrinker, or not unused)."""
        handles = np.asarray(handles, dtype=np.int64)
        slots = handles & _SLOT_MASK
        ok = (handles >= 0) & (slots < self.state.shape[0])
        ok[ok] = (self.state[slots[ok]] == OBJ_UNUSED) & (self.gen[slots[ok]] == handles[ok] >> 32)
        hit = slots[ok]
        self.state[hit] = OBJ_INUSE
        self.nr_unused -= hit.shape[0]
        self.nr_inuse += hit.shape[0]
        return ok

    def free(self, m: Machine, handles: np.ndarray) -> int:
        """`kmem_cache_free`: the objects (in use or unused) go; emptied pages are freed to the
        buddy allocator. Returns pages freed."""
        handles = np.asarray(handles, dtype=np.int64)
        slots = handles & _SLOT_MASK
        ok = (handles >= 0) & (slots < self.state.shape[0])
        ok[ok] = (self.state[slots[ok]] != OBJ_FREE) & (self.gen[slots[ok]] == handles[ok] >> 32)
        return self._release(m, np.unique(slots[ok]), reclaim=False)

    # --- queries ----------------------------------------------------------------------------
    def pfns(self) -> np.ndarray:
        """Pfns of the pages the cache holds."""
        return self.page_pfn[self.page_pfn >= 0].copy()

    def objects(self) -> tuple[int, int]:
        """(in use, unused) object counts (`/proc/slabinfo` active and cached)."""
        return self.nr_inuse, self.nr_unused

    # --- internals --------------------------------------------------------------------------
    def _valid(self, handles: np.ndarray, want: int) -> np.ndarray:
        handles = np.asarray(handles, dtype=np.int64)
        slots = handles & _SLOT_MASK
        ok = (handles >= 0) & (slots < self.state.shape[0])
        ok[ok] = (self.state[slots[ok]] == want) & (self.gen[slots[ok]] == handles[ok] >> 32)
        valid = slots[ok]
        first = np.unique(valid, return_index=True)[1]
        out: np.ndarray = valid[np.sort(first)]
        return out  # in the caller's order (the LRU order), once each

    def _grow_pages(self, m: Machine, nr: int, alloc_flags: int) -> bool:
        high_zone, mt = m.resolve(None, self.migratetype)
        ones = np.ones(nr, np.int64)
        pfns = m.alloc_batch(0 * ones, high_zone * ones, mt * ones, alloc_flags * ones,
                             self.owner * ones, self.kind * ones)
        pfns = pfns[pfns >= 0]
        if pfns.shape[0] == 0:
            return False
        opp = self.objs_per_page
        new_idx: list[int] = []
        for pfn in pfns.tolist():
            if self.free_pages:
                idx = self.free_pages.pop()
            else:
                idx = self.page_pfn.shape[0]
                self.page_pfn = _grow(self.page_pfn, idx + 1, -1)
                self.page_inuse = _grow(self.page_inuse, idx + 1, 0)
                self.free_pages.extend(range(self.page_pfn.shape[0] - 1, idx, -1))
                cap = self.page_pfn.shape[0] * opp
                self.state = _grow(self.state, cap, OBJ_FREE)
                self.gen = _grow(self.gen, cap, 0)
                self.lru_seq = _grow(self.lru_seq, cap, -1)
            self.page_pfn[idx] = pfn
            self.page_inuse[idx] = 0
            new_idx.append(idx)
        # Push the slots so that the first new page's slot 0 is handed out first.
        base = np.array(new_idx[::-1], np.int64)[:, None] * opp
        slots = (base + np.arange(opp - 1, -1, -1, dtype=np.int64)[None, :]).ravel()
        self.stack = _grow(self.stack, self.nr_stack + slots.shape[0], -1)
        self.stack[self.nr_stack:self.nr_stack + slots.shape[0]] = slots
        self.nr_stack += slots.shape[0]
        self.nr_pages += pfns.shape[0]
        return True

    def _oldest_unused(self, nr: int) -> np.ndarray:
        """The `nr` oldest valid LRU entries' slots, removed from the LRU."""
        taken: list[np.ndarray] = []
        need = nr
        while need > 0 and self.lru_head < self.lru_tail:
            w = min(self.lru_tail - self.lru_head, max(need, 1024))
            sl = self.lru_slot[self.lru_head:self.lru_head + w]
            sq = self.lru_entry_seq[self.lru_head:self.lru_head + w]
            valid = np.flatnonzero((self.state[sl] == OBJ_UNUSED) & (self.lru_seq[sl] == sq))
            if valid.shape[0] > need:
                self.lru_head += int(valid[need])
                valid = valid[:need]
            else:
                self.lru_head += w
            taken.append(sl[valid])
            need -= valid.shape[0]
        return np.concatenate(taken) if taken else np.zeros(0, np.int64)

    def _release(self, m: Machine, slots: np.ndarray, reclaim: bool) -> int:
        """Free objects at `slots` (distinct); pages left without objects go to the buddy
        allocator. The freed slots of surviving pages are pushed last (used first)."""
        if slots.shape[0] == 0:
            return 0
        slots = np.ascontiguousarray(slots, dtype=np.int64)
        self.stack = _grow(self.stack, self.nr_stack + slots.shape[0], -1)
        counts = np.zeros(3, np.int64)
        empty = _release_slots(slots, self.state, self.gen, self.page_inuse, self.page_pfn,
                               self.objs_per_page, self.stack, self.nr_stack, m.pages, counts)
        self.nr_stack = int(counts[0])
        self.nr_inuse -= int(counts[1])
        self.nr_unused -= int(counts[2])
        if empty.shape[0]:
            dead_pfns = -(self.page_pfn[empty] + 2)
            self.page_pfn[empty] = -1
            self.free_pages.extend(empty.tolist())
            # Each object of a freed page is gone: its slots must not look free any more.
            m.free_batch(dead_pfns)
            self.nr_pages -= empty.shape[0]
            if reclaim:
                rows = np.empty((dead_pfns.shape[0], 3), np.int64)
                rows[:, 0] = dead_pfns
                rows[:, 1] = self.owner
                rows[:, 2] = self.kind
                record_reclaimed(m, rows)
        return int(empty.shape[0])

    def _sync_inuse(self, m: Machine, idx: np.ndarray) -> None:
        """Mirror the in-use counts of pages `idx` into `pages['next']` (`page->inuse`)."""
        idx = idx[self.page_pfn[idx] >= 0]
        m.pages["next"][self.page_pfn[idx]] = self.page_inuse[idx]


def kmem_cache_create(m: Machine, name: str, objs_per_page: int, *, reclaimable: bool = True,
                      owner: int | None = None, seeks: int = DEFAULT_SEEKS) -> SlabCache:
    """`kmem_cache_create()`: a new cache on `m`; a reclaimable one registers its shrinker."""
    st = reclaim_state(m)
    cache = SlabCache(name, objs_per_page,
                      SLAB_OWNER_BASE + len(st.caches) if owner is None else owner,
                      reclaimable, seeks)
    st.caches.append(cache)
    if reclaimable:
        st.shrinkers.append(cache)
    return cache


def shrink_slab(m: Machine, scanned: int, gfp_mask: int, lru_pages: int) -> tuple[int, int]:
    """2.6.24 `shrink_slab()`: age every shrinker in proportion to the LRU scan.

    `delta = 4 * scanned / seeks * max_pass / (lru_pages + 1)` is added to the shrinker's `nr`
    (capped at twice max_pass) and scanned in SHRINK_BATCH batches; what is left carries over.
    Without __GFP_FS the shrinkers bail out. Returns (objects freed as the shrinkers count them,
    the kernel's return value; slab pages freed, `reclaim_state->reclaimed_slab`).
    """
    st = reclaim_state(m)
    if scanned == 0:
        scanned = _SWAP_CLUSTER_MAX
    ret = 0
    pages_freed = 0
    nd = m.node[0]
    for shrinker in st.shrinkers:
        max_pass = shrinker.shrinker_count(st.vfs_cache_pressure)
        delta = (4 * scanned) // shrinker.seeks
        delta = delta * max_pass // (lru_pages + 1)
        shrinker.nr += delta
        shrinker.nr = min(shrinker.nr, 2 * max_pass)
        total_scan = shrinker.nr
        shrinker.nr = 0
        batches = total_scan // SHRINK_BATCH
        if batches and gfp_mask & GFP.FS:
            # Each batch frees the SHRINK_BATCH oldest unused objects; the per-batch
            # `nr_before - shrink_ret` sums to the difference over all of them.
            this_scan = batches * SHRINK_BATCH
            pages_freed += shrinker.shrink_objects(m, this_scan)
            ret += max(0, max_pass - shrinker.shrinker_count(st.vfs_cache_pressure))
            nd["stat"][STAT["slabs_scanned"]] += this_scan
            total_scan -= this_scan
        shrinker.nr += total_scan
    return ret, pages_freed


def drop_slab(m: Machine) -> int:
    """2.6.24 `drop_slab()`: `shrink_slab(1000, GFP_KERNEL, 1000)` until it frees 10 or fewer.
    Returns slab pages freed."""
    freed = 0
    while True:
        nr_objects, pages = shrink_slab(m, 1000, int(GFP_KERNEL), 1000)
        freed += pages
        if nr_objects <= 10:
            return freed

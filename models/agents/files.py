"""Files, their page cache, and the dentry and inode caches: the file system as memory sees it.

A file is an id with a size in pages. Its cached pages are order-0 MOVABLE page-cache pages
(GFP_HIGHUSER_PAGECACHE in 2.6.24, `mm/filemap.c`), owned by `OWNER_FILE_BASE + fid`, on the
LRU: new pages join the inactive list (`add_to_page_cache_lru`), and every read of a cached
page calls `mark_page_accessed()`, so a file read twice is promoted to the active list, as in
2.6.24. Reads bring the whole file in (readahead reads small files whole; the model does not
track which offsets of a large file are cached, only how many pages). Writes add dirty pages,
which pdflush (`models.agents.daemons.Flusher`) writes back.

Opening a file walks its path: a `dentry` and an `ext3_inode_cache` object (both
SLAB_RECLAIM_ACCOUNT caches, so RECLAIMABLE pages, in 2.6.24 `fs/dcache.c`,
`fs/ext3/super.c`) are found in the caches or allocated; after the operation both are unused
and sit on their cache's LRU, where the shrinker (`prune_dcache`, `prune_icache`) frees the
oldest under memory pressure. A file held open by a long-lived program is `pinned`: its
objects stay in use. Deleting a file frees its pages and its objects.

Directory blocks (what updatedb reads) are page cache of the block device in ext3
(`ext3_bread` -> `__getblk` -> `grow_dev_page`, GFP_USER | __GFP_MOVABLE in 2.6.24
`fs/buffer.c`): the model reads them as files of a directory group with that mask.

Simplifications (README model limits): no radix-tree nodes or buffer heads (the page-cache
bookkeeping objects that are freed with their pages); an inode is freed by the shrinker on its
own LRU, independently of its dentry (the kernel frees the dentry first, then the inode), and
freeing an inode does not drop the file's clean pages (2.6.24 `prune_icache` invalidates them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fragsim.models.agents.base import OWNER_FILE_BASE, OWNER_PROC_BASE, Proc, param
from fragsim.models.agents.owned import OwnerPages
from fragsim.models.mm.constants import KIND_FILE
from fragsim.models.mm.gfp import GFP_HIGHUSER_PAGECACHE
from fragsim.models.mm.lru import mark_accessed_batch

if TYPE_CHECKING:
    from fragsim.models.agents.base import KernelAPI
    from fragsim.models.agents.daemons import Flusher

__all__ = ["FileSystem", "FileSystemParams"]

_MAX_FILES = OWNER_PROC_BASE - OWNER_FILE_BASE


@dataclass(frozen=True)
class FileSystemParams:
    """Objects per slab page of the file-system caches (2.6.2x x86_64 /proc/slabinfo)."""

    dentry_objs_per_page: int = param(20, "dentry objects per 4 KiB slab page")
    inode_objs_per_page: int = param(5, "ext3_inode_cache objects per 4 KiB slab page")


class FileSystem:
    """The files of a run, their page cache and their dentry/inode objects."""

    name = "filesystem"

    def __init__(self, kernel: KernelAPI, params: FileSystemParams,
                 flusher: Flusher | None = None, capacity: int = 4096) -> None:
        self.kernel = kernel
        self.params = params
        self.flusher = flusher
        cap = max(capacity, 16)
        self.size = np.zeros(cap, np.int64)  # pages
        self.alive = np.zeros(cap, bool)
        self.pinned = np.zeros(cap, bool)
        self.dentry = np.full(cap, -1, np.int64)
        self.inode = np.full(cap, -1, np.int64)
        self.nr_files = 0
        self.pc = OwnerPages(kernel.machine.nr_pages, cap)
        self.dcache = kernel.slab_cache("dentry", params.dentry_objs_per_page, True)
        self.icache = kernel.slab_cache("ext3_inode_cache", params.inode_objs_per_page, True)
        kernel.register_owner(OWNER_FILE_BASE, OWNER_PROC_BASE, self._reclaimed,
                              self._migrated)
        self.reads = 0
        self.read_pages = 0
        self.written_pages = 0

    # --- owner notifications ------------------------------------------------------------------
    def _reclaimed(self, rows: np.ndarray) -> None:
        self.pc.unlink(rows[:, 0])

    def _migrated(self, rows: np.ndarray) -> None:
        self.pc.relink(rows[:, 0], rows[:, 1])

    # --- the file population ------------------------------------------------------------------
    def create(self, sizes_pages: np.ndarray) -> np.ndarray:
        """New files of the given sizes, on disk and not cached; returns their ids."""
        sizes = np.maximum(np.asarray(sizes_pages, np.int64), 0)
        n = sizes.shape[0]
        first = self.nr_files
        need = first + n
        if need > _MAX_FILES:
            raise ValueError(f"{need} files exceed the model's {_MAX_FILES}")
        if need > self.size.shape[0]:
            cap = max(need, 2 * self.size.shape[0])
            self.size = _grow(self.size, cap, 0)
            self.alive = _grow(self.alive, cap, False)
            self.pinned = _grow(self.pinned, cap, False)
            self.dentry = _grow(self.dentry, cap, -1)
            self.inode = _grow(self.inode, cap, -1)
        fids = np.arange(first, need, dtype=np.int64)
        self.size[fids] = sizes
        self.alive[fids] = True
        self.nr_files = need
        return fids

    def cached_pages(self, fids: np.ndarray | None = None) -> int:
        if fids is None:
            return int(self.pc.count.sum())
        return int(self.pc.counts(np.asarray(fids, np.int64)).sum())

    # --- operations ---------------------------------------------------------------------------
    def lookup(self, fids: np.ndarray, source: str = "") -> Proc:
        """Path walk of each file: find or allocate its dentry and inode; leave them unused."""
        uniq = np.unique(np.asarray(fids, np.int64))
        uniq = uniq[self.alive[uniq] & ~self.pinned[uniq]]
        if uniq.shape[0] == 0:
            return
        for cache, handles in ((self.dcache, self.dentry), (self.icache, self.inode)):
            hit = cache.get(handles[uniq])
            miss = uniq[~hit]
            if miss.shape[0]:
                got = yield from self.kernel.slab_alloc(cache, int(miss.shape[0]), source)
                handles[miss] = got
            cache.put(handles[uniq])

    def pin(self, fids: np.ndarray) -> Proc:
        """A long-lived program opens the files: their dentries and inodes stay in use."""
        fids = np.unique(np.asarray(fids, np.int64))
        fids = fids[self.alive[fids] & ~self.pinned[fids]]
        if fids.shape[0] == 0:
            return
        for cache, handles in ((self.dcache, self.dentry), (self.icache, self.inode)):
            hit = cache.get(handles[fids])
            miss = fids[~hit]
            if miss.shape[0]:
                got = yield from self.kernel.slab_alloc(cache, int(miss.shape[0]), "pin")
                handles[miss] = got
        self.pinned[fids] = True

    def unpin(self, fids: np.ndarray) -> None:
        """The program closed them: the objects become unused (reclaimable)."""
        fids = np.unique(np.asarray(fids, np.int64))
        fids = fids[self.pinned[fids]]
        self.pinned[fids] = False
        self.dcache.put(self.dentry[fids])
        self.icache.put(self.inode[fids])

    def read(self, fids: np.ndarray, source: str = "",
             gfp: int = int(GFP_HIGHUSER_PAGECACHE)) -> Proc:
        """Read the files whole, in the order given: cached pages are accessed, missing ones
        allocated (clean, inactive LRU). Returns the pages brought in."""
        fids = np.asarray(fids, np.int64)
        fids = fids[self.alive[fids]]
        if fids.shape[0] == 0:
            return 0
        yield from self.lookup(fids, source)
        m = self.kernel.machine
        cached = self.pc.pages_of(fids)
        if cached.shape[0]:
            mark_accessed_batch(m.pages, m.zones, cached)
        _, first = np.unique(fids, return_index=True)
        order = fids[np.sort(first)]
        need = np.maximum(self.size[order] - self.pc.counts(order), 0)
        self.reads += int(fids.shape[0])
        total = int(need.sum())
        if total == 0:
            return 0
        slots = np.repeat(order, need)
        pfns = yield from self.kernel.alloc(total, 0, gfp, OWNER_FILE_BASE + slots, KIND_FILE,
                                            lru=0, on_alloc=self._linker(slots), source=source)
        got = int(np.count_nonzero(pfns >= 0))
        self.read_pages += got
        return got

    def write(self, fids: np.ndarray, pages_each: np.ndarray | int, source: str = "") -> Proc:
        """Append `pages_each` new dirty pages to each file (a write that extends it)."""
        fids = np.asarray(fids, np.int64)
        each = np.broadcast_to(np.asarray(pages_each, np.int64), fids.shape)
        keep = self.alive[fids] & (each > 0)
        fids, each = fids[keep], each[keep]
        if fids.shape[0] == 0:
            return 0
        yield from self.lookup(fids, source)
        slots = np.repeat(fids, each)
        pfns = yield from self.kernel.alloc(int(slots.shape[0]), 0, int(GFP_HIGHUSER_PAGECACHE),
                                            OWNER_FILE_BASE + slots, KIND_FILE, lru=0,
                                            dirty=True, on_alloc=self._linker(slots),
                                            source=source)
        np.add.at(self.size, fids, each)
        if self.flusher is not None:
            self.flusher.dirtied(pfns)
        got = int(np.count_nonzero(pfns >= 0))
        self.written_pages += got
        return got

    def delete(self, fids: np.ndarray) -> int:
        """`unlink()` of the files: their pages and objects are freed. Returns pages freed."""
        fids = np.unique(np.asarray(fids, np.int64))
        fids = fids[self.alive[fids]]
        if fids.shape[0] == 0:
            return 0
        pfns = self.pc.take(fids)
        self.kernel.free_lru(pfns)
        self.dcache.free(self.kernel.machine, self.dentry[fids])
        self.icache.free(self.kernel.machine, self.inode[fids])
        self.dentry[fids] = -1
        self.inode[fids] = -1
        self.alive[fids] = False
        self.pinned[fids] = False
        self.size[fids] = 0
        return int(pfns.shape[0])

    def _linker(self, slots: np.ndarray) -> Any:
        pc = self.pc

        def link(pfns: np.ndarray, idx: np.ndarray) -> None:
            pc.link(pfns, slots[idx])

        return link


def _grow(a: np.ndarray, cap: int, fill: Any) -> np.ndarray:
    out = np.full(cap, fill, dtype=a.dtype)
    out[:a.shape[0]] = a
    return out

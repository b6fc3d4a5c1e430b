"""Files, their page cache, and the dentry and inode caches: the file system as memory sees it.

A file is an id with a size in pages. Its cached pages are order-0 MOVABLE page-cache pages
(GFP_HIGHUSER_PAGECACHE in 2.6.24, `mm/filemap.c`), owned by `OWNER_FILE_BASE + fid`, on the
LRU: new pages join the inactive list (`add_to_page_cache_lru`), and every page a read copies
out, cached or just read in, is marked accessed (2.6.24 `do_generic_mapping_read`'s `page_ok:`,
6.1 `filemap_read`: `mark_page_accessed`/`folio_mark_accessed`), so a file read twice is
promoted to the active list. Writes mark nothing (2.6.24 `generic_perform_write`, 6.1
`grab_cache_page_write_begin` without FGP_ACCESSED). Reads bring the whole file in (readahead
reads small files whole; the model does not track which offsets of a large file are cached,
only how many pages). Writes add dirty pages, which pdflush (`models.agents.daemons.Flusher`)
writes back.

Opening a file walks its path: a `dentry` and an `ext3_inode_cache` object (both
SLAB_RECLAIM_ACCOUNT caches, so RECLAIMABLE pages, in 2.6.24 `fs/dcache.c`,
`fs/ext3/super.c`) are found in the caches or allocated; after the operation both are unused
and sit on their cache's LRU, where the shrinker (`prune_dcache`, `prune_icache`) frees the
oldest under memory pressure. In 6.1 the two caches share their superblock's shrinker
(`models.mm.slab_6_1.register_super`; 2.6.24 shrinks each on its own). A file held open by a
long-lived program is `pinned`: its objects stay in use. Deleting a file frees its pages and
its objects.

Directory blocks (what updatedb reads) are page cache of the block device in ext3
(`ext3_bread` -> `__getblk` -> `grow_dev_page`, GFP_USER | __GFP_MOVABLE in 2.6.24
`fs/buffer.c`): the model reads them as files of a directory group with that mask.

A file's cached pages carry kernel objects that live and die with them (`FileObjects`):
radix-tree nodes (`radix_tree_node`, 64 slots each, `lib/radix-tree.c`: a file with one page
needs none, one with up to 64 pages one, and so on up the tree; UNMOVABLE slabs in 2.6.24, whose
`cache_grow()` masks off the __GFP_RECLAIMABLE the radix tree asks for, RECLAIMABLE in 2.6.35)
and, for block-device pages and written pages, buffer heads (`buffer_head`, one per 4 KiB block,
SLAB_RECLAIM_ACCOUNT). They are allocated when pages come in and freed when reclaim, truncation
or deletion takes the pages, never by a shrinker. `PageCache` keeps the pages and these objects
per file and is a page hook of the machine (`models.mm.reclaim_state.PageHook`): reclaim frees
the objects of the pages it frees at once, as `__remove_from_page_cache` and
`try_to_free_buffers` do, and a probe copy of the machine carries a copy of it.

Simplifications (README model limits): the cached pages of a file count as a dense prefix of it
(for radix-tree sizing); an inode is freed by the shrinker on its own LRU, independently of its
dentry (the kernel frees the dentry first, then the inode), and freeing an inode does not drop
the file's clean pages (2.6.24 `prune_icache` invalidates them); a dentry does not pin its parent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fragsim.models.agents.base import OWNER_FILE_BASE, OWNER_PROC_BASE, Proc, param
from fragsim.models.agents.owned import OwnerPages
from fragsim.models.mm.constants import KIND_FILE, KIND_FILE_MAPPED, PG_REFERENCED
from fragsim.models.mm.gfp import GFP_HIGHUSER_PAGECACHE
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.lru import mark_accessed_batch
from fragsim.models.mm.reclaim_state import reclaim_state
from fragsim.models.mm.slab_6_1 import register_super
from fragsim.models.mm.state import KIND_SHIFT, MT_MASK, STAT

if TYPE_CHECKING:
    from fragsim.models.agents.base import KernelAPI
    from fragsim.models.agents.daemons import Flusher
    from fragsim.models.mm.machine import Machine
    from fragsim.models.mm.slab import SlabCache

__all__ = ["FileObjects", "FileSystem", "FileSystemParams", "PageCache", "radix_tree_nodes"]

_MAX_FILES = OWNER_PROC_BASE - OWNER_FILE_BASE
#: RADIX_TREE_MAP_SHIFT 6: slots per radix-tree node.
RADIX_TREE_MAP_SIZE = 64


@compiled("const int[]", nrt=True)
def _radix_tree_nodes(pages: np.ndarray) -> np.ndarray:
    out = np.zeros(pages.shape[0], np.int64)
    for i in range(pages.shape[0]):
        if pages[i] <= 1:
            continue
        level = (pages[i] + RADIX_TREE_MAP_SIZE - 1) // RADIX_TREE_MAP_SIZE
        total = level
        while level > 1:
            level = (level + RADIX_TREE_MAP_SIZE - 1) // RADIX_TREE_MAP_SIZE
            total += level
        out[i] = total
    return out


def radix_tree_nodes(pages: np.ndarray) -> np.ndarray:
    """Nodes of a radix tree holding a dense run of `pages` entries from index 0: none for
    one page (the root points at it), otherwise every level of 64-slot nodes up to one."""
    out: np.ndarray = _radix_tree_nodes(np.ascontiguousarray(pages, dtype=np.int64))
    return out


class FileObjects:
    """Per-file objects of one slab cache whose number follows the file's cached pages."""

    def __init__(self, cache: SlabCache) -> None:
        self.cache = cache
        self.held: dict[int, list[int]] = {}
        self.count = np.zeros(1024, np.int64)  # objects held per file
        self.total = 0

    def clone(self, caches: dict[int, Any]) -> FileObjects:
        new = FileObjects(caches.get(id(self.cache), self.cache))
        new.held = {f: list(h) for f, h in self.held.items()}
        new.count = self.count.copy()
        new.total = self.total
        return new

    def counts(self, fids: np.ndarray) -> np.ndarray:
        fids = np.asarray(fids, np.int64)
        out = np.zeros(fids.shape[0], np.int64)
        inside = fids < self.count.shape[0]
        out[inside] = self.count[fids[inside]]
        return out

    def trim(self, m: Machine, fids: np.ndarray, want: np.ndarray) -> int:
        """Free objects of files holding more than `want`; returns objects freed."""
        over = self.counts(fids) > want
        if not over.any():
            return 0
        held = self.held
        out: list[int] = []
        for f, w in zip(fids[over].tolist(), want[over].tolist(), strict=True):
            lst = held[f]
            out.extend(lst[w:])
            del lst[w:]
            self.count[f] = w
            if not lst:
                del held[f]
        self.cache.free(m, np.array(out, np.int64))
        self.total -= len(out)
        return len(out)

    def deficit(self, fids: np.ndarray, want: np.ndarray) -> np.ndarray:
        """For files holding fewer than `want`: each file id once per missing object."""
        have = self.counts(fids)
        need = np.maximum(want - have, 0)
        return np.repeat(fids, need)

    def add(self, fids: np.ndarray, handles: np.ndarray) -> None:
        held = self.held
        ok = handles >= 0
        if not ok.any():
            return
        top = int(fids[ok].max()) + 1
        if top > self.count.shape[0]:
            self.count = _grow(self.count, max(top, 2 * self.count.shape[0]), 0)
        for f, h in zip(fids[ok].tolist(), handles[ok].tolist(), strict=True):
            held.setdefault(f, []).append(h)
        np.add.at(self.count, fids[ok], 1)
        self.total += int(ok.sum())


class PageCache:
    """Each file's cached pages and the objects they carry (module docstring); a page hook."""

    def __init__(self, nr_pages: int, cap: int, radix: FileObjects, bh: FileObjects) -> None:
        self.pc = OwnerPages(nr_pages, cap)
        self.radix = radix
        self.bh = bh
        #: Files whose cached pages carry buffer heads (block-device metadata, written data).
        self.buffers = np.zeros(cap, bool)

    def grow(self, cap: int) -> None:
        self.buffers = _grow(self.buffers, cap, False)

    def want(self, fids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Radix-tree nodes and buffer heads the files' cached pages need."""
        cached = self.pc.counts(fids)
        return radix_tree_nodes(cached), np.where(self.buffers[fids], cached, 0)

    def trim(self, m: Machine, fids: np.ndarray) -> None:
        """Pages went: free the objects they no longer need."""
        radix, bh = self.want(fids)
        self.radix.trim(m, fids, radix)
        self.bh.trim(m, fids, bh)

    # --- PageHook ---------------------------------------------------------------------------
    def reclaimed(self, m: Machine, rows: np.ndarray) -> None:
        sel = (rows[:, 1] >= OWNER_FILE_BASE) & (rows[:, 1] < OWNER_PROC_BASE)
        if not sel.any():
            return
        slots = self.pc.unlink(rows[sel, 0])
        fids = np.unique(slots[slots >= 0])
        if fids.shape[0]:
            self.trim(m, fids)

    def migrated(self, m: Machine, rows: np.ndarray) -> None:
        sel = (rows[:, 2] >= OWNER_FILE_BASE) & (rows[:, 2] < OWNER_PROC_BASE)
        if sel.any():
            self.pc.relink(rows[sel, 0], rows[sel, 1])

    def clone(self, caches: dict[int, Any]) -> PageCache:
        new = object.__new__(PageCache)
        new.pc = self.pc.copy()
        new.radix = self.radix.clone(caches)
        new.bh = self.bh.clone(caches)
        new.buffers = self.buffers.copy()
        return new

@dataclass(frozen=True)
class FileSystemParams:
    """Objects per slab page of the file-system caches (2.6.2x x86_64 /proc/slabinfo)."""

    dentry_objs_per_page: int = param(20, "dentry objects per 4 KiB slab page")
    inode_objs_per_page: int = param(5, "ext3_inode_cache objects per 4 KiB slab page")
    filp_objs_per_page: int = param(16, "filp (struct file) objects per slab page")
    radix_objs_per_page: int = param(7, "radix_tree_node objects per slab page")
    bh_objs_per_page: int = param(37, "buffer_head objects per slab page")


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
        self.filp = np.full(cap, -1, np.int64)
        #: Processes mapping each file (its binary or a library): its pages are mapped.
        self.mapcount = np.zeros(cap, np.int64)
        self.nr_files = 0
        self.dcache = kernel.slab_cache("dentry", params.dentry_objs_per_page, True)
        self.icache = kernel.slab_cache("ext3_inode_cache", params.inode_objs_per_page, True)
        # get_empty_filp(): kmem_cache_zalloc(filp_cachep, GFP_KERNEL), an UNMOVABLE cache.
        self.filp_cache = kernel.slab_cache("filp", params.filp_objs_per_page, False)
        radix = FileObjects(kernel.slab_cache(
            "radix_tree_node", params.radix_objs_per_page,
            bool(kernel.machine.config.radix_tree_node_reclaimable)))
        bh = FileObjects(kernel.slab_cache("buffer_head", params.bh_objs_per_page, True))
        # The mount's superblock shrinker over the two VFS caches, 6.1's in place of their own.
        register_super(kernel.machine, self.dcache, self.icache)
        self.cache = PageCache(kernel.machine.nr_pages, cap, radix, bh)
        reclaim_state(kernel.machine).hooks.append(self.cache)
        self.pc = self.cache.pc
        self.radix, self.bh = radix, bh
        self.reads = 0
        self.read_pages = 0
        self.written_pages = 0

    @property
    def buffers(self) -> np.ndarray:
        """Files whose cached pages carry buffer heads."""
        return self.cache.buffers

    def _grow_objects(self, fids: np.ndarray, source: str) -> Proc:
        """Pages came in: allocate the radix-tree nodes and buffer heads they need."""
        radix, bh = self.cache.want(fids)
        for objs, want in ((self.radix, radix), (self.bh, bh)):
            need = objs.deficit(fids, want)
            if need.shape[0]:
                handles = yield from self.kernel.slab_alloc(objs.cache, int(need.shape[0]),
                                                            source)
                objs.add(need, handles)

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
            self.filp = _grow(self.filp, cap, -1)
            self.mapcount = _grow(self.mapcount, cap, 0)
            self.cache.grow(cap)
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
        """A long-lived program opens the files (`open()`): a `struct file` each, and their
        dentries and inodes stay in use while they are open."""
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
        self.filp[fids] = yield from self.kernel.slab_alloc(self.filp_cache,
                                                            int(fids.shape[0]), "pin")
        self.pinned[fids] = True

    def _set_kind(self, fids: np.ndarray, kind: int) -> None:
        pfns = self.pc.pages_of(fids)
        if pfns.shape[0]:
            mt = self.kernel.machine.pages["mt"]
            mt[pfns] = (mt[pfns] & MT_MASK) | (kind << KIND_SHIFT)

    def map(self, fids: np.ndarray) -> None:
        """A process maps the files (`mmap` of its binary and libraries, `vma->vm_file`): their
        cached pages, and pages read later, are mapped page cache (KIND_FILE_MAPPED), which
        reclaim treats as `page_mapped()`."""
        fids = np.unique(np.asarray(fids, np.int64))
        fids = fids[self.alive[fids]]
        first = fids[self.mapcount[fids] == 0]
        self.mapcount[fids] += 1
        if first.shape[0]:
            self._set_kind(first, KIND_FILE_MAPPED)

    def unmap(self, fids: np.ndarray) -> None:
        """The process unmapped them (exit, `munmap`); the last one makes them plain page
        cache again."""
        fids = np.unique(np.asarray(fids, np.int64))
        fids = fids[self.mapcount[fids] > 0]
        self.mapcount[fids] -= 1
        last = fids[self.mapcount[fids] == 0]
        if last.shape[0]:
            self._set_kind(last, KIND_FILE)

    def reference_mapped(self, fids: np.ndarray) -> None:
        """The mapping process ran: the PTE young bits of the files' pages (PG_REFERENCED)."""
        pfns = self.pc.pages_of(np.unique(np.asarray(fids, np.int64)))
        if pfns.shape[0]:
            self.kernel.machine.pages["flags"][pfns] |= PG_REFERENCED

    def unpin(self, fids: np.ndarray) -> None:
        """The program closed them (`fput`): the file objects go, the dentries and inodes
        become unused (reclaimable)."""
        fids = np.unique(np.asarray(fids, np.int64))
        fids = fids[self.pinned[fids]]
        self.pinned[fids] = False
        self.filp_cache.free(self.kernel.machine, self.filp[fids])
        self.filp[fids] = -1
        self.dcache.put(self.dentry[fids])
        self.icache.put(self.inode[fids])

    def read(self, fids: np.ndarray, source: str = "",
             gfp: int = int(GFP_HIGHUSER_PAGECACHE)) -> Proc:
        """Read the files whole, in the order given: cached pages are accessed, missing ones
        allocated (clean, inactive LRU) and accessed. Returns the pages brought in."""
        fids = np.asarray(fids, np.int64)
        fids = fids[self.alive[fids]]
        if fids.shape[0] == 0:
            return 0
        yield from self.lookup(fids, source)
        m = self.kernel.machine
        cached = self.pc.pages_of(fids)
        if cached.shape[0]:
            m.node[0]["stat"][STAT["pgactivate"]] += mark_accessed_batch(m.pages, m.zones, cached)
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
        yield from self._grow_objects(order[need > 0], source)
        new = pfns[pfns >= 0]
        if new.shape[0]:
            m.node[0]["stat"][STAT["pgactivate"]] += mark_accessed_batch(m.pages, m.zones, new)
        got = int(new.shape[0])
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
        # block_prepare_write(): ext3 attaches buffer heads to the pages it writes.
        self.buffers[fids] = True
        yield from self._grow_objects(np.unique(fids), source)
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
        self.cache.trim(self.kernel.machine, fids)
        self.dcache.free(self.kernel.machine, self.dentry[fids])
        self.icache.free(self.kernel.machine, self.inode[fids])
        self.filp_cache.free(self.kernel.machine, self.filp[fids])
        self.dentry[fids] = -1
        self.inode[fids] = -1
        self.filp[fids] = -1
        self.alive[fids] = False
        self.pinned[fids] = False
        self.mapcount[fids] = 0
        self.size[fids] = 0
        return int(pfns.shape[0])

    def _linker(self, slots: np.ndarray) -> Any:
        pc = self.pc
        mapcount = self.mapcount
        mt = self.kernel.machine.pages["mt"]

        def link(pfns: np.ndarray, idx: np.ndarray) -> None:
            files = slots[idx]
            pc.link(pfns, files)
            mapped = pfns[mapcount[files] > 0]
            if mapped.shape[0]:  # a page read into a mapped file is mapped at its next fault
                mt[mapped] = (mt[mapped] & MT_MASK) | (KIND_FILE_MAPPED << KIND_SHIFT)

        return link


def _grow(a: np.ndarray, cap: int, fill: Any) -> np.ndarray:
    out = np.full(cap, fill, dtype=a.dtype)
    out[:a.shape[0]] = a
    return out

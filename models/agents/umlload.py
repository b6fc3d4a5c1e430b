"""The scripted load of `experiments/uml/load.sh`, as a fragsim scenario (`uml-load`).

`experiments/uml/` boots the real Linux 6.1 under user-mode-linux and runs a load in stages,
keeping /proc/buddyinfo, /proc/pagetypeinfo and /proc/vmstat after each. This scenario runs the
same stages with the same sizes against the model and keeps the model's rendering of the same
files (`models.mm.procfs`) after each, so both sides are parsed and tabulated by the same code
(`experiments/uml/run_fragsim.py`). The stages (`STAGES`):

1. `boot`: the state the real guest's /proc/pagetypeinfo shows when init starts, replayed
   (`replay_boot`): its pageblocks per type and its free blocks per type and order; what is
   not free is the kernel's boot-time memory (memblock-reserved pages, slab, stacks, page
   tables, init's pages), held as unmovable kernel pages;
2. `page_cache`: read a tree of files (the sizes `run_uml.make_tree` draws, passed in by the
   driver) 100 per directory, as `find ... -exec cat` does, with each directory's ext2
   metadata blocks (`ext2_metadata_blocks`);
3. `anon`: one process faults in `anon_mib` of anonymous memory (`hog MIB`);
4. `forks`: a process forks `forks` children, each faulting in `fork_mib` (`hog 0 ... N M`);
5. `ext2_write`: `dd bs=1M count=write_mib` into a new file at `dd_mb_s`, then `sync`
   (writeback of every dirty page, waited for);
6. `freed`: every hog exits, the dd file is deleted;
7. `drop_caches`: `sync; echo 3 > /proc/sys/vm/drop_caches`;
8. `compact`: `echo 1 > /proc/sys/vm/compact_memory` (`compaction.compact_memory`: the
   preset's `compact_node`).

What the model lacks (README "Model limits"): the boot is a replay of the guest's free lists,
not a model of boot (where each free block lies inside its pageblocks is invented, and the
boot's movable pages, init's file and anonymous pages, are held as unmovable kernel pages);
ext2's bitmaps and the dd file's indirect blocks are not modelled; SLUB's
order-1..3 slabs are order-0 slab pages; no high-order atomic allocations (so no HighAtomic
pageblocks); no per-cpu lists (the presets run without them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from fragsim.models.agents.base import Proc, param
from fragsim.models.agents.daemons import Flusher, FlusherParams
from fragsim.models.agents.files import FileSystem, FileSystemParams
from fragsim.models.agents.processes import Processes, TaskParams
from fragsim.models.mm import compaction, procfs, writeback
from fragsim.models.mm.census import page_kinds
from fragsim.models.mm.constants import ALLOC_NO_WATERMARKS, KIND_KERNEL, PAGE_SIZE
from fragsim.models.mm.gfp import GFP_USER_PAGECACHE
from fragsim.models.mm.reclaim_state import reclaim_state

if TYPE_CHECKING:
    from fragsim.models.agents.base import KernelAPI
    from fragsim.models.mm.machine import Machine

__all__ = ["STAGES", "BootParams", "BootSnapshot", "UmlLoadParams", "UmlLoadScenario",
           "ext2_metadata_blocks", "replay_boot", "tree_pages"]

STAGES = ("boot", "page_cache", "anon", "forks", "ext2_write", "freed", "drop_caches",
          "compact")
#: Owner of the boot-time kernel pages (a kernel subsystem without an owner object).
OWNER_BOOT = 4
_MIB = 1 << 20


@dataclass(frozen=True)
class BootParams:
    """The guest's memory at boot (its pagetypeinfo is replayed: `replay_boot`)."""

    present_pages: int = param(65536, "pages of the zone (mem=256M); must be the machine's")


@dataclass(frozen=True)
class UmlLoadParams:
    """The stages' sizes (load.sh and run_uml.py `Load` defaults)."""

    files_per_dir: int = param(100, "files read per directory (make_tree: 100 a folder)")
    block_size: int = param(4096, "ext2 block size (mkfs.ext2 of the 536 MiB image)")
    inode_size: int = param(256, "ext2 inode size (mke2fs's default)")
    direct_blocks: int = param(12, "block pointers in an ext2 inode (EXT2_NDIR_BLOCKS)")
    anon_mib: int = param(48, "anonymous memory of the first hog")
    forks: int = param(32, "children the second hog forks")
    fork_mib: int = param(1, "anonymous memory each child faults in")
    write_mib: int = param(384, "dd bs=1M count=this")
    dd_mb_s: float = param(631.0, "dd's write speed (1e6 bytes/s)")
    stage_gap_s: float = param(0.1, "idle time between stages")


def tree_pages(sizes_bytes: np.ndarray) -> np.ndarray:
    """Pages of page cache a file of each size fills (the last page partly)."""
    return -(-np.asarray(sizes_bytes, np.int64) // PAGE_SIZE)


def ext2_metadata_blocks(sizes_bytes: np.ndarray, p: UmlLoadParams) -> int:
    """Metadata blocks reading the files of one directory brings into the block device's page
    cache (`sb_bread`, __GFP_MOVABLE): the directory's own block, the inode-table blocks of
    its inodes (allocated together, so contiguous), and each file's indirect blocks (one per
    `block_size / 4` data blocks past the `direct_blocks` direct ones, plus a double-indirect
    block past the first indirect block's reach; fs/ext2/inode.c `ext2_block_to_path`)."""
    blocks = -(-np.asarray(sizes_bytes, np.int64) // p.block_size)
    per = p.block_size // 4
    past = np.maximum(blocks - p.direct_blocks, 0)
    indirect = -(-past // per) + (past > per)
    itable = -(-blocks.shape[0] * p.inode_size // p.block_size)
    return int(1 + itable + indirect.sum()) * p.block_size // PAGE_SIZE


class UmlLoadScenario:
    """`load.sh` against the model (module docstring). Ends after the `compact` stage.

    `tree` (file sizes in bytes) is the tree `page_cache` reads and `boot_snapshot` the boot
    to replay; `experiments/uml/run_fragsim.py` sets both before `start()`. Without them
    (`fragsim run experiments/uml/fragsim-load.toml`) the machine boots the model's way and
    the page-cache stage reads nothing."""

    name = "uml-load"
    SECTIONS: ClassVar[dict[str, type]] = {
        "fs": FileSystemParams,
        "tasks": TaskParams,
        "flusher": FlusherParams,
        "boot": BootParams,
        "load": UmlLoadParams,
    }
    periodic_probes = False

    def __init__(self, kernel: KernelAPI, params: dict[str, Any], days: float) -> None:
        self.kernel = kernel
        self.boot: BootParams = params["boot"]
        self.load: UmlLoadParams = params["load"]
        m = kernel.machine
        if self.boot.present_pages != m.nr_pages:
            raise ValueError(f"boot.present_pages {self.boot.present_pages} is not the "
                             f"machine's {m.nr_pages} pages: set machine.memory to match")
        self.flusher = Flusher(kernel, params["flusher"])
        self.fs = FileSystem(kernel, params["fs"], self.flusher, capacity=4096)
        self.procs = Processes(kernel, self.fs, params["tasks"])
        # No swap device in the guest: anonymous pages are never reclaimed.
        reclaim_state(m).swappiness = 0 if m.config.swap == 0 else reclaim_state(m).swappiness
        self.tree = np.zeros(0, np.int64)
        #: Free counts per type and order and pageblocks per type of the real boot
        #: (`BootSnapshot`); None boots the model's own way (every page free).
        self.boot_snapshot: BootSnapshot | None = None
        self.snapshots: list[tuple[str, float, dict[str, str]]] = []
        self.done = kernel.env.event()
        self.duration_s = float("inf")

    def start(self) -> None:
        env = self.kernel.env
        env.process(self.flusher.run())
        env.process(self.run())

    # --- snapshots ----------------------------------------------------------------------------
    def snap(self, stage: str) -> None:
        """load.sh `snap`: the three /proc files as the model renders them."""
        k = self.kernel
        k.sync()
        writeback.complete_writeback(k.machine)
        m = k.machine
        views = {"buddyinfo": procfs.buddyinfo(m), "pagetypeinfo": procfs.pagetypeinfo(m),
                 "vmstat": procfs.vmstat(m) + _kinds_vmstat(m)}
        self.snapshots.append((stage, float(k.env.now), views))
        k.event("uml_stage", self.name, detail=stage)

    # --- the stages ---------------------------------------------------------------------------
    def _boot(self) -> None:
        """The boot snapshot's free lists and pageblock types (`replay_boot`)."""
        if self.boot_snapshot is not None:
            replay_boot(self.kernel.machine, self.boot_snapshot)

    def _page_cache(self) -> Proc:
        """find | cat, a directory at a time: its metadata blocks (buffer heads attached),
        then its files whole, then the metadata again: every lookup and block mapping of the
        directory's files touches its blocks (`__find_get_block` -> `touch_buffer` ->
        `mark_page_accessed`), so they are accessed more than once and go active."""
        fids = self.fs.create(tree_pages(self.tree))
        step = max(1, self.load.files_per_dir)
        for start in range(0, fids.shape[0], step):
            meta = self.fs.create(np.array([ext2_metadata_blocks(
                self.tree[start:start + step], self.load)], np.int64))
            self.fs.buffers[meta] = True
            yield from self.fs.read(meta, "find", gfp=int(GFP_USER_PAGECACHE))
            yield from self.fs.read(fids[start:start + step], "cat")
            yield from self.fs.read(meta, "cat", gfp=int(GFP_USER_PAGECACHE))

    def _hog(self, mib: int) -> Proc:
        slot = yield from self.procs.spawn(1, None, "hog")
        yield from self.procs.grow(slot, mib * _MIB // PAGE_SIZE, "hog")
        return slot

    def _dd(self) -> Proc:
        """dd of `write_mib` 1 MiB blocks at `dd_mb_s`, then sync (every page written back)."""
        lp = self.load
        k = self.kernel
        fid = self.fs.create(np.zeros(1, np.int64))
        dt = _MIB / (lp.dd_mb_s * 1e6)
        for _ in range(lp.write_mib):
            yield from self.fs.write(fid, _MIB // PAGE_SIZE, "dd")
            yield k.env.timeout(dt)
        yield from self._sync()
        return fid

    def _sync(self) -> Proc:
        """sys_sync: start writeback of every dirty page and wait for it."""
        k = self.kernel
        m = k.machine
        self.flusher.sync()
        yield k.env.timeout(m.config.writeback_delay)
        k.sync()
        writeback.complete_writeback(m)

    def run(self) -> Proc:
        k = self.kernel
        env = k.env
        lp = self.load
        gap = lp.stage_gap_s
        self._boot()
        self.snap("boot")
        yield env.timeout(gap)
        yield from self._page_cache()
        self.snap("page_cache")
        yield env.timeout(gap)
        anon = yield from self._hog(lp.anon_mib)
        self.snap("anon")
        yield env.timeout(gap)
        parent = yield from self._hog(0)
        children = []
        for _ in range(lp.forks):
            child = yield from self._hog(lp.fork_mib)
            children.append(child)
        self.snap("forks")
        yield env.timeout(gap)
        fill = yield from self._dd()
        self.snap("ext2_write")
        yield env.timeout(gap)
        for slot in [*children, parent, anon]:
            self.procs.exit(slot)
        self.fs.delete(fill)
        self.snap("freed")
        yield env.timeout(gap)
        yield from self._sync()
        k.drop_caches(3)
        self.snap("drop_caches")
        yield env.timeout(gap)
        k.sync()
        compaction.compact_memory(k.machine)
        k.drain()
        self.snap("compact")
        self.duration_s = float(env.now)
        self.done.succeed()

    def outcome(self) -> dict[str, float]:
        return {"stages": float(len(self.snapshots)),
                "processes_spawned": float(self.procs.spawned)}


@dataclass(frozen=True)
class BootSnapshot:
    """One zone of a real boot's /proc/pagetypeinfo: free blocks per type name and order, and
    pageblocks per type name (`procparse.PagetypeZone.free` and `.pageblocks`)."""

    free: dict[str, tuple[int, ...]]
    pageblocks: dict[str, int]


def _place(state: np.ndarray, order: int) -> int:
    """An offset in one pageblock's page states (0 unassigned, 1 to be freed, 2 kept
    allocated as a guard) for a free block of `order` that cannot merge with its buddy: the
    buddy keeps an allocated page. Marks it; -1 when no offset fits."""
    size = 1 << order
    for x in range(0, state.shape[0], size):
        if state[x:x + size].any():
            continue
        if size < state.shape[0]:
            buddy = state[x ^ size:(x ^ size) + size]
            if not (buddy == 2).any():
                spare = np.flatnonzero(buddy == 0)
                if spare.shape[0] == 0:
                    continue
                buddy[spare[0]] = 2
        state[x:x + size] = 1
        return x
    return -1


def replay_boot(m: Machine, snap: BootSnapshot) -> None:
    """Put the machine's one zone into the state a real boot's pagetypeinfo shows: as many
    pageblocks of each type, and free blocks of each type and order as its free lists hold.

    The kernel's boot-time memory (memblock-reserved pages, slab, stacks, page tables, init's
    pages) is what is not free: order-0 unmovable kernel pages (KIND_KERNEL: never moved or
    reclaimed) of the pageblock's type. Where inside its pageblocks each free block lies is not
    in the snapshot: free blocks are placed largest first, each at the lowest aligned offset
    whose buddy keeps an allocated page (so it cannot merge). Done with the fast path under
    ALLOC_NO_WATERMARKS, before any agent runs: (1) every pageblock allocated as one block of
    its type (the fallback claims whole pageblocks); (2) each pageblock that is not wholly free
    freed and reallocated as 1024 order-0 pages of its type; (3) the free blocks' pages freed;
    (4) the wholly free pageblocks freed."""
    names = {name: mt for mt, name in m.policy.migratetype_names}
    unknown = [t for t, n in snap.pageblocks.items() if n and t not in names]
    if unknown:
        raise ValueError(f"boot snapshot: pageblock type(s) {', '.join(unknown)} are not "
                         f"{m.policy.name}'s ({', '.join(names)})")
    pbo = m.pageblock_order
    if sum(snap.pageblocks.values()) << pbo != m.nr_pages:
        raise ValueError(f"boot snapshot: {sum(snap.pageblocks.values())} pageblocks of "
                         f"{1 << pbo} pages are not the machine's {m.nr_pages} pages")
    flags = ALLOC_NO_WATERMARKS
    blocks: dict[str, list[int]] = {}
    for t, n in snap.pageblocks.items():
        blocks[t] = []
        for _ in range(n):
            pfn = m.alloc(pbo, migratetype=names[t], owner=OWNER_BOOT, kind=KIND_KERNEL,
                          alloc_flags=flags)
            if pfn < 0:
                raise ValueError(f"boot snapshot: no pageblock left for a {t} one")
            blocks[t].append(pfn)
    whole: list[int] = []
    to_free: list[np.ndarray] = []
    for t, pfns in blocks.items():
        free = list(snap.free.get(t, ()))
        free += [0] * (m.max_order - len(free))
        nr_whole = sum(free[o] << (o - pbo) for o in range(pbo, m.max_order))
        if nr_whole > len(pfns):
            raise ValueError(f"boot snapshot: {nr_whole} free {t} pageblocks, {len(pfns)} "
                             "pageblocks of that type")
        whole += pfns[:nr_whole]
        partial = pfns[nr_whole:]
        for start in partial:
            m.free(start)
            got = m.alloc_many(0, 1 << pbo, migratetype=names[t], owner=OWNER_BOOT,
                               kind=KIND_KERNEL, alloc_flags=flags)
            if not np.array_equal(np.sort(got), np.arange(start, start + (1 << pbo))):
                raise RuntimeError(f"boot replay: pageblock at pfn {start} was not reused")
        states = [np.zeros(1 << pbo, np.int8) for _ in partial]
        for order in range(min(pbo, m.max_order) - 1, -1, -1):
            for _ in range(free[order]):
                for i, state in enumerate(states):
                    x = _place(state, order)
                    if x >= 0:
                        to_free.append(np.arange(partial[i] + x, partial[i] + x + (1 << order)))
                        break
                else:
                    raise ValueError(f"boot snapshot: no room for a free {t} block of order "
                                     f"{order} in its {len(partial)} partly used pageblocks")
    for block in to_free:
        m.free_batch(block)
    m.free_batch(np.array(whole, np.int64))


def _kinds_vmstat(m: Machine) -> str:
    """The model's page kinds as /proc/vmstat names (`sim.run` samples the same)."""
    return "".join(f"{name} {value:d}\n" for name, value in page_kinds(m).items())

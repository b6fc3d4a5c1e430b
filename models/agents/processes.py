"""User processes: what a task costs the kernel, and the anonymous memory it faults in.

A process (`Processes.spawn`) is a slot with owner id `OWNER_PROC_BASE + slot`. What it holds:

- a kernel stack per thread: `alloc_thread_info()` = `__get_free_pages(GFP_KERNEL,
  THREAD_ORDER)`, order 1 (8 KiB) on x86_64 2.6.24 (`include/asm-x86/thread_info_64.h`);
- kernel objects in UNMOVABLE slab caches: a `task_struct` per thread, an `mm_struct`, its
  `vm_area_struct`s, a `files_struct` (`kernel/fork.c` `copy_process`, `dup_mm`);
- page-table pages (`pte_alloc_one`: GFP_KERNEL|__GFP_REPEAT, UNMOVABLE): `pt_pages_base` for
  the pgd, pud, pmd and the PTE pages of the binary, libraries and stack, and more as its
  anonymous memory grows (one x86_64 PTE page maps 2 MiB; heaps are sparse, so the default is
  more than 0.5 per MiB);
- anonymous pages (GFP_HIGHUSER_MOVABLE, `do_anonymous_page` -> `lru_cache_add_active`): MOVABLE,
  on the active LRU, dirty until swapped out; reclaim may swap them out when swap is configured
  (the process is told, and releases the swap slots when it exits).

Exec reads the program's files through the page cache (`FileSystem.read`): mostly hits.
A process's memory churns as programs free and reallocate heap (`churn`), and it references
a share of its pages now and then (`touch`, standing for the PTE young bits `page_referenced()`
reads, which the model has no page tables for). `exit` frees everything (`do_exit`, `exit_mmap`).

Swapped-out pages are never faulted back in (a swapped page stays in swap until exit).

Transparent huge pages (2.6.38+, when the kernel has them and `kernel.thp_enabled` is not
never): of a `grow`, each whole 2 MiB extent of a THP-enabled region (every region with
`always`; the `thp_madvise_share` of it with `madvise`) first tries one huge page
(`Kernel.thp_fault`, 6.1 `do_huge_pmd_anonymous_page`); an extent whose huge page fails, the
rest of the grow and every grow under 2 MiB fault order-0 pages (`do_anonymous_page`; a grow's
remainder stands for extents not wholly inside a VMA, which `transhuge_vma_suitable` refuses).
A huge page is off the LRU, so never reclaimed or migrated; `shrink` unmaps it whole (no
split: of the pages to unmap, the huge pages' share is taken as whole 2 MiB extents) and
`exit` frees it as one order-9 block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.agents.base import OWNER_PROC_BASE, OWNER_SLAB_BASE, Proc, param
from fragsim.models.agents.owned import OwnerPages
from fragsim.models.mm import writeback
from fragsim.models.mm.constants import KIND_ANON, KIND_KERNEL, PG_HEAD, PG_REFERENCED
from fragsim.models.mm.gfp import GFP_HIGHUSER_MOVABLE, GFP_KERNEL
from fragsim.models.mm.huge_memory import thp_fault_enabled
from fragsim.models.mm.lru import LRU_ACTIVE, LRU_INACTIVE, new_anon_active
from fragsim.models.mm.state import KIND_SHIFT

if TYPE_CHECKING:
    from fragsim.models.agents.base import KernelAPI
    from fragsim.models.agents.files import FileSystem
    from fragsim.models.mm.slab import SlabCache

__all__ = ["Processes", "TaskParams"]

_MIB_PAGES = 256  # 4 KiB pages per MiB


@dataclass(frozen=True)
class TaskParams:
    """Kernel memory of one task (2.6.24 x86_64; objects per 4 KiB slab page as
    /proc/slabinfo reports them)."""

    stack_order: int = param(1, "THREAD_ORDER: 8 KiB kernel stacks on x86_64")
    task_struct_per_page: int = param(2, "task_struct objects per slab page")
    mm_struct_per_page: int = param(5, "mm_struct objects per slab page")
    vma_per_page: int = param(24, "vm_area_struct objects per slab page")
    files_per_page: int = param(5, "files_cache (files_struct) objects per slab page")
    vmas_base: int = param(30, "vm_area_structs of a small process before its heap grows: "
                           "binary, each library's text/data/bss, stack, vdso")
    vmas_per_mib: float = param(0.5, "further vm_area_structs per MiB of anonymous memory")
    pt_pages_base: int = param(20, "page-table pages of a small new process: 1 pgd, 3 pud, "
                               "3 pmd and the PTE pages of its binary, stack and ~5 libraries "
                               "(x86_64 leaves a 2 MiB gap between a library's text and data, "
                               "so each costs 1-2 PTE pages)")
    pt_pages_per_mib: float = param(0.75, "further PTE pages per MiB of anonymous memory "
                                    "(one PTE page maps 2 MiB; heaps are sparse)")
    thp_madvise_share: float = param(0.0, "share of anonymous memory in madvise("
                                     "MADV_HUGEPAGE) regions (matters with transparent huge "
                                     "pages on: enabled=madvise, and defrag's madvised masks); "
                                     "a 2007 desktop's programs madvise nothing",
                                     added_later=True)


class Processes:
    """Every process of a run (module docstring)."""

    name = "processes"

    def __init__(self, kernel: KernelAPI, fs: FileSystem, params: TaskParams) -> None:
        self.kernel = kernel
        self.fs = fs
        self.params = params
        self.op = OwnerPages(kernel.machine.nr_pages, 256)
        cap = 256
        self.alive = np.zeros(cap, bool)
        self.anon = np.zeros(cap, np.int64)  # anonymous pages resident
        self.pt = np.zeros(cap, np.int64)  # page-table pages
        self.swapped = np.zeros(cap, np.int64)  # pages in swap
        self.vmas = np.zeros(cap, np.int64)
        self.base_pt = np.zeros(cap, np.int64)
        self.base_vmas = np.zeros(cap, np.int64)
        self.objects: dict[int, list[tuple[SlabCache, np.ndarray]]] = {}
        self.exe: dict[int, np.ndarray] = {}  # files each process maps
        self._free_slots: list[int] = []
        self.nr_slots = 0
        self.spawned = 0
        self.exited = 0
        self.task_cache = kernel.slab_cache("task_struct", params.task_struct_per_page, False)
        self.mm_cache = kernel.slab_cache("mm_struct", params.mm_struct_per_page, False)
        self.vma_cache = kernel.slab_cache("vm_area_struct", params.vma_per_page, False)
        self.files_cache = kernel.slab_cache("files_cache", params.files_per_page, False)
        #: /sys/kernel/mm/transparent_hugepage/enabled of the machine (never: no THP faults).
        self._thp_enabled = kernel.machine.config.thp_enabled
        #: The list a new anonymous page goes on (`models.mm.lru.new_anon_active`).
        self._anon_lru = (LRU_ACTIVE if new_anon_active(kernel.machine.policy.reclaim)
                          else LRU_INACTIVE)
        kernel.register_owner(OWNER_PROC_BASE, OWNER_SLAB_BASE, self._reclaimed,
                              self._migrated)

    # --- owner notifications ------------------------------------------------------------------
    def _reclaimed(self, rows: np.ndarray) -> None:
        """Anonymous pages swapped out (or a clean swap-cache page dropped)."""
        slots = self.op.unlink(rows[:, 0])
        anon = (rows[:, 2] == KIND_ANON) & (slots >= 0)
        np.subtract.at(self.anon, slots[anon], 1)
        np.add.at(self.swapped, slots[anon], 1)

    def _migrated(self, rows: np.ndarray) -> None:
        self.op.relink(rows[:, 0], rows[:, 1])

    def owner(self, slot: int) -> int:
        return OWNER_PROC_BASE + slot

    @property
    def nr_alive(self) -> int:
        return int(self.alive.sum())

    def _new_slot(self) -> int:
        if self._free_slots:
            return self._free_slots.pop()
        slot = self.nr_slots
        self.nr_slots += 1
        if slot >= self.alive.shape[0]:
            cap = 2 * self.alive.shape[0]
            for name in ("alive", "anon", "pt", "swapped", "vmas", "base_pt", "base_vmas"):
                old = getattr(self, name)
                new = np.zeros(cap, old.dtype)
                new[:old.shape[0]] = old
                setattr(self, name, new)
        return slot

    # --- life cycle ---------------------------------------------------------------------------
    def spawn(self, threads: int = 1, exe_files: np.ndarray | None = None,
              source: str = "", pt_pages: int | None = None,
              vmas: int | None = None) -> Proc:
        """fork + exec: stacks, task objects, page tables, the program's files. `pt_pages` and
        `vmas` (default: the small-process values of TaskParams) size a bigger program.
        Returns the slot."""
        p = self.params
        slot = self._new_slot()
        base_pt = p.pt_pages_base if pt_pages is None else int(pt_pages)
        base_vmas = p.vmas_base if vmas is None else int(vmas)
        self.alive[slot] = True
        self.anon[slot] = self.pt[slot] = self.swapped[slot] = 0
        self.base_pt[slot] = base_pt
        self.base_vmas[slot] = base_vmas
        self.vmas[slot] = base_vmas
        owner = self.owner(slot)
        threads = max(1, int(threads))
        k = self.kernel
        stacks = yield from k.alloc(threads, p.stack_order, int(GFP_KERNEL), owner, KIND_KERNEL,
                                    on_alloc=self._linker(slot), source=source)
        objs: list[tuple[SlabCache, np.ndarray]] = []
        for cache, n in ((self.task_cache, threads), (self.mm_cache, 1),
                         (self.vma_cache, base_vmas), (self.files_cache, 1)):
            h = yield from k.slab_alloc(cache, n, source)
            objs.append((cache, h))
        self.objects[slot] = objs
        yield from self._page_tables(slot, base_pt, source)
        if exe_files is not None and len(exe_files):
            exe = np.unique(np.asarray(exe_files, np.int64))
            self.fs.map(exe)  # mmap of the binary and libraries, then the faults read them
            self.exe[slot] = exe
            yield from self.fs.read(exe, source)
        self.spawned += 1
        del stacks
        return slot

    def _linker(self, slot: int):  # type: ignore[no-untyped-def]
        op = self.op

        def link(pfns: np.ndarray, idx: np.ndarray) -> None:
            op.link(pfns, slot)

        return link

    def _page_tables(self, slot: int, n: int, source: str) -> Proc:
        if n <= 0:
            return
        pfns = yield from self.kernel.alloc(n, 0, int(GFP_KERNEL), self.owner(slot),
                                            KIND_KERNEL, on_alloc=self._linker(slot),
                                            source=source)
        self.pt[slot] += int(np.count_nonzero(pfns >= 0))

    def grow(self, slot: int, pages: int, source: str = "") -> Proc:
        """Page faults on `pages` new anonymous pages, with the page tables and VMAs they
        need. Returns the pages faulted in."""
        if pages <= 0 or not self.alive[slot]:
            return 0
        p = self.params
        pages = int(pages)
        got = 0
        if self._thp_enabled != "never":
            huge, pages = yield from self._thp_faults(slot, pages, source)
            got += huge
        pfns = yield from self.kernel.alloc(pages, 0, int(GFP_HIGHUSER_MOVABLE),
                                            self.owner(slot), KIND_ANON, lru=self._anon_lru,
                                            on_alloc=self._linker(slot), source=source)
        got += int(np.count_nonzero(pfns >= 0))
        self.anon[slot] += got
        mib = (self.anon[slot] + self.swapped[slot]) / _MIB_PAGES
        want_pt = self.base_pt[slot] + math.ceil(mib * p.pt_pages_per_mib)
        if want_pt > self.pt[slot]:
            yield from self._page_tables(slot, int(want_pt - self.pt[slot]), source)
        want_vmas = self.base_vmas[slot] + int(mib * p.vmas_per_mib)
        if want_vmas > self.vmas[slot]:
            h = yield from self.kernel.slab_alloc(self.vma_cache,
                                                  int(want_vmas - self.vmas[slot]), source)
            self.objects[slot].append((self.vma_cache, h))
            self.vmas[slot] = want_vmas
        return got

    def _thp_faults(self, slot: int, pages: int, source: str) -> Proc:
        """The huge page faults of a grow of `pages` (module docstring). Returns (pages faulted
        in as huge pages, pages left for order-0 faults)."""
        nr = 1 << self.kernel.machine.pageblock_order  # HPAGE_PMD_NR
        madv = int(pages * self.params.thp_madvise_share)
        # (madvised?, pages of such regions) and whole extents of each that try a huge page.
        regions = ((True, madv), (False, pages - madv))
        huge = 0
        owner = self.owner(slot)
        link = self.op.link
        for madvised, n in regions:
            if not thp_fault_enabled(self._thp_enabled, madvised):
                continue
            for _ in range(n // nr):
                pfn = yield from self.kernel.thp_fault(owner, madvised, source)
                if pfn >= 0:
                    link(np.array([pfn], np.int64), slot)
                    huge += nr
        return huge, pages - huge

    def anon_pages(self, slot: int) -> np.ndarray:
        """The process's resident anonymous pages."""
        pfns = self.op.pages(slot)
        m = self.kernel.machine
        kinds = m.pages["mt"][pfns] >> KIND_SHIFT
        anon: np.ndarray = pfns[kinds == KIND_ANON]
        return anon

    def shrink(self, slot: int, pages: int, rng: np.random.Generator) -> int:
        """`munmap()` of `pages` random anonymous pages (glibc returns large blocks with
        munmap), with the page tables and VMAs of the unmapped ranges (`unmap_region` ->
        `free_pgtables`, `remove_vma_list`, 2.6.24 mm/mmap.c). Returns pages freed."""
        if pages <= 0 or not self.alive[slot]:
            return 0
        anon = self.anon_pages(slot)
        if anon.shape[0] == 0:
            return 0
        m = self.kernel.machine
        huge = anon[m.pages["order"][anon] > 0]
        if huge.shape[0]:
            pick, freed = self._pick_with_thp(anon, huge, int(pages), rng)
        else:
            pick = rng.choice(anon, size=min(int(pages), anon.shape[0]), replace=False)
            freed = int(pick.shape[0])
        self.op.unlink(pick)
        self.kernel.free_lru(pick)
        self.anon[slot] -= freed
        p = self.params
        mib = (self.anon[slot] + self.swapped[slot]) / _MIB_PAGES
        surplus = int(self.pt[slot]) - int(self.base_pt[slot]
                                           + math.ceil(mib * p.pt_pages_per_mib))
        if surplus > 0:
            self._free_page_tables(slot, surplus, rng)
        surplus = int(self.vmas[slot]) - int(self.base_vmas[slot] + int(mib * p.vmas_per_mib))
        if surplus > 0:
            self._free_vmas(slot, surplus)
        return freed

    def _pick_with_thp(self, anon: np.ndarray, huge: np.ndarray, pages: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """Heads to unmap for `pages` pages when some of `anon` are huge pages: the huge
        pages' share of `pages` as whole huge pages (stochastically rounded), the rest as
        order-0 pages. Returns (heads, pages freed)."""
        nr = 1 << self.kernel.machine.pageblock_order
        small = anon[self.kernel.machine.pages["order"][anon] == 0]
        total = int(small.shape[0]) + nr * int(huge.shape[0])
        pages = min(pages, total)
        want = pages * int(huge.shape[0]) / total  # huge pages to unmap, fractional
        k = min(int(want) + int(rng.random() < want - int(want)), int(huge.shape[0]))
        n_small = min(pages - k * nr, int(small.shape[0])) if pages > k * nr else 0
        pick = np.concatenate([rng.choice(huge, size=k, replace=False),
                               rng.choice(small, size=n_small, replace=False)])
        return pick, k * nr + n_small

    def _free_page_tables(self, slot: int, n: int, rng: np.random.Generator) -> None:
        """Free `n` of the process's PTE pages (order-0 kernel pages; stacks are order 1)."""
        m = self.kernel.machine
        pfns = self.op.pages(slot)
        kinds = m.pages["mt"][pfns] >> KIND_SHIFT
        pt = pfns[(kinds == KIND_KERNEL) & (m.pages["order"][pfns] == 0)]
        base = int(self.base_pt[slot])
        if pt.shape[0] <= base:
            return
        n = min(n, int(pt.shape[0]) - base)
        pick = rng.choice(pt, size=n, replace=False)
        self.op.unlink(pick)
        self.kernel.free(pick)
        self.pt[slot] -= n

    def _free_vmas(self, slot: int, n: int) -> None:
        """Free the `n` newest of the process's heap VMAs."""
        objs = self.objects.get(slot, [])
        heap = [i for i, (cache, _) in enumerate(objs) if cache is self.vma_cache][1:]
        for i in reversed(heap):
            if n <= 0:
                break
            cache, handles = objs[i]
            take = min(n, handles.shape[0])
            cache.free(self.kernel.machine, handles[handles.shape[0] - take:])
            objs[i] = (cache, handles[:handles.shape[0] - take])
            n -= take
            self.vmas[slot] -= take

    def churn(self, slot: int, fraction: float, rng: np.random.Generator,
              source: str = "") -> Proc:
        """Free a random `fraction` of the anonymous pages and fault as many in again."""
        n = int(round(fraction * self.anon[slot]))
        freed = self.shrink(slot, n, rng)
        if freed:
            yield from self.grow(slot, freed, source)

    def touch(self, slot: int, fraction: float, rng: np.random.Generator) -> None:
        """The program references a random `fraction` of its anonymous pages and, when it runs
        at all, the pages of its binary and libraries (PTE young bits)."""
        exe = self.exe.get(slot)
        if exe is not None and fraction > 0:
            self.fs.reference_mapped(exe)
        anon = self.anon_pages(slot)
        if anon.shape[0] == 0 or fraction <= 0:
            return
        pick = anon[rng.random(anon.shape[0]) < fraction]
        self.kernel.machine.pages["flags"][pick] |= PG_REFERENCED

    def exit(self, slot: int) -> None:
        """`do_exit`: every page, swap slot and kernel object of the process goes."""
        if not self.alive[slot]:
            return
        pfns = self.op.take(np.array([slot]))
        m = self.kernel.machine
        heads = pfns[(m.pages["flags"][pfns] & PG_HEAD) != 0]
        self.kernel.free_lru(heads)
        if self.swapped[slot]:
            writeback.swap_free(m, int(self.swapped[slot]))
        for cache, handles in self.objects.pop(slot, []):
            cache.free(m, handles)
        exe = self.exe.pop(slot, None)
        if exe is not None:
            self.fs.unmap(exe)
        self.alive[slot] = False
        self.anon[slot] = self.pt[slot] = self.swapped[slot] = self.vmas[slot] = 0
        self.base_pt[slot] = self.base_vmas[slot] = 0
        self._free_slots.append(slot)
        self.exited += 1

"""Write a SYNTHETIC `kmem` trace in Linux 6.1's exact tracepoint formats.

Why synthetic: the only 6.1 kernel here is Debian's user-mode-linux (`/usr/bin/linux.uml`,
6.1.176, see experiments/uml/README.md), and it cannot trace. Its config
(/usr/share/doc/user-mode-linux/config.gz) has `# CONFIG_FTRACE is not set` and
`# CONFIG_DEBUG_FS is not set`, so no tracepoints are compiled in; booted, its /proc/filesystems
lists no tracefs or debugfs and /sys/kernel has no `tracing` directory (mounting tracefs there
fails: the mount point does not exist). So no real 6.1 trace could be recorded.

The formats are 6.1's `include/trace/events/kmem.h` (6.1.y, unifreq/linux-6.1.y 525d1212),
as `/sys/kernel/tracing/trace` prints them after `trace_print_context()`:

- `mm_page_alloc: page=%p pfn=0x%lx order=%d migratetype=%d gfp_flags=%s`, the gfp text from
  `show_gfp_flags()` (`fragsim.models.mm.gfp_6_1.show_gfp_flags`, mmflags.h order) of masks
  the 6.1 call sites build (below); a failed allocation prints the NULL page `0000000000000000`
  and `pfn=0x0`;
- `mm_page_free: page=%p pfn=0x%lx order=%d`, `mm_page_free_batched: page=%p pfn=0x%lx
  order=0` (6.1 `free_unref_page_list()`: every page's mm_page_free first, from
  `free_pages_prepare()`, then each page's mm_page_free_batched);
- `mm_page_alloc_zone_locked: page=%p pfn=0x%lx order=%u migratetype=%d percpu_refill=%d`
  (`__rmqueue_smallest()`; percpu_refill=1 when the block refills a per-cpu list);
- `mm_page_pcpu_drain: page=%p pfn=0x%lx order=%d migratetype=%d` (`free_pcppages_bulk()`);
- `mm_page_alloc_extfrag: page=%p pfn=0x%lx alloc_order=%d fallback_order=%d
  pageblock_order=%d alloc_migratetype=%d fallback_migratetype=%d fragmenting=%d
  change_ownership=%d` (`__rmqueue_fallback()`).

`%p` prints a hashed pointer: 64-bit 6.1 masks the siphash to 32 bits and pads to 16 digits
(`ptr_to_id()`, lib/vsprintf.c); a fixed multiplicative hash stands in for the siphash here.

The traced machine is made up to look like the UML guest: 256 MiB, one Normal zone of 65536
pages from an invented first pfn, pageblock order 10, MAX_ORDER 11, one cpu, SLUB, no THP. Its
allocator is a toy, not 6.1's buddy allocator: per migratetype, LIFO stacks of freed blocks
over a bump pointer in pageblocks that type owns; a type that runs out takes a never-used
pageblock, which for Unmovable and Reclaimable requests is 6.1's whole-pageblock fallback from
Movable (an extfrag event with fallback_order 10 and change_ownership 1); once none is left it
takes another type's freed block (fragmenting=1, change_ownership 0). Orders 0-3 go through a
per-cpu list per (type, order) as 6.1's `pcp_allowed_order()` has it: an empty list is refilled
with `max(batch >> order, 2)` blocks (`rmqueue_pcplist()`, batch 15 as `zone_batchsize()` gives
this zone); when the list holds `high` (620, the low watermark) pages, `batch` pages are drained
to the buddy stacks. The load follows load.sh's stages at a small scale: boot, page_cache,
anon, forks, ext2_write (with reclaim's batched frees), freed (the hog exits: batched frees),
drop_caches.

Call-site masks (6.1): anonymous faults `GFP_HIGHUSER_MOVABLE` (UML has the generic
`alloc_zeroed_user_highpage_movable()`, no __GFP_ZERO); page tables `GFP_PGTABLE_USER`
(GFP_KERNEL_ACCOUNT|__GFP_ZERO); kernel stacks THREADINFO_GFP, order 2; readahead
`readahead_gfp_mask()` = mapping mask | __GFP_NORETRY | __GFP_NOWARN; buffered writes add
__GFP_WRITE (FGP_WRITE); SLUB slabs `allocate_slab()`: flags | s->allocflags | __GFP_NOWARN |
__GFP_NORETRY, and above the cache's minimum order | __GFP_NOMEMALLOC & ~__GFP_RECLAIM.

Same arguments, same bytes (one seeded `numpy.random.Generator`).

    python experiments/traces/make_6_1_trace.py            # writes kmem-6.1-synthetic.trace
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

import numpy as np

from fragsim.models.mm.gfp_6_1 import GFP_BITS_6_1 as B
from fragsim.models.mm.gfp_6_1 import GFP_MASKS_6_1 as M
from fragsim.models.mm.gfp_6_1 import show_gfp_flags

SEED = 20221211  # the day Linux 6.1 was released
DEFAULT_OUT = Path(__file__).with_name("kmem-6.1-synthetic.trace")
FIRST_PFN = 0x7C00  # invented
ZONE_PAGES = 4096  # 16 MiB, so that a small trace fills it
#: Reclaim frees page cache while fewer pages than this are free (about the low watermark).
RECLAIM_BELOW = 400
PAGEBLOCK_ORDER = 10
PCP_BATCH = 15
PCP_HIGH = 620
UNMOVABLE, MOVABLE, RECLAIMABLE = 0, 1, 2  # 6.1 enum migratetype

_SLUB_MIN = B["__GFP_NOWARN"] | B["__GFP_NORETRY"]
#: (name, 6.1 mask, orders, task)
ANON = ("anon", M["GFP_HIGHUSER_MOVABLE"], (0,))
PGTABLE = ("pgtable", M["GFP_KERNEL_ACCOUNT"] | B["__GFP_ZERO"], (0,))
STACK = ("stack", M["GFP_KERNEL_ACCOUNT"] | B["__GFP_ZERO"], (2,))
READAHEAD = ("readahead", M["GFP_HIGHUSER_MOVABLE"] | B["__GFP_NORETRY"] | B["__GFP_NOWARN"],
             (0,))
WRITE = ("write", M["GFP_HIGHUSER_MOVABLE"] | B["__GFP_WRITE"], (0,))
DENTRY = ("dentry", M["GFP_KERNEL"] | B["__GFP_RECLAIMABLE"] | _SLUB_MIN, (0,))
INODE = ("inode", (M["GFP_KERNEL"] | B["__GFP_RECLAIMABLE"] | B["__GFP_COMP"] | _SLUB_MIN
                   | B["__GFP_NOMEMALLOC"]) & ~M["__GFP_RECLAIM"], (1,))
KMALLOC = ("kmalloc", (M["GFP_KERNEL"] | B["__GFP_COMP"] | _SLUB_MIN | B["__GFP_NOMEMALLOC"])
           & ~M["__GFP_RECLAIM"], (1, 2, 3))
SKB = ("skb", M["GFP_ATOMIC"] | B["__GFP_NOWARN"] | B["__GFP_COMP"], (0, 3))

HEADER = """\
# tracer: nop
#
# entries-in-buffer/entries-written: {n}/{n}   #P:1
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
"""


def migratetype_of(mask: int) -> int:
    """6.1 `gfp_migratetype()`."""
    return (mask & (B["__GFP_MOVABLE"] | B["__GFP_RECLAIMABLE"])) >> 3


def page_ptr(pfn: int) -> str:
    """A stand-in for `%p` of `pfn_to_page(pfn)`: 32 hashed bits, zero-padded to 16 digits."""
    return f"{((pfn + 1) * 0x9E3779B1) & 0xFFFFFFFF:016x}"


class Out:
    """Event lines as ftrace prints them (`trace_print_context()` then the event)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.lines: list[str] = []
        self.clock = 2.104
        self.task = "init-1"

    def emit(self, text: str) -> None:
        self.clock += float(self.rng.exponential(0.00005))
        comm, _, pid = self.task.rpartition("-")
        self.lines.append(f"{comm:>16s}-{pid:<7s} [000] ..... {self.clock:12.6f}: {text}\n")


class Traced:
    """The traced machine's toy allocator (see the module doc), writing its events."""

    def __init__(self, out: Out) -> None:
        self.out = out
        self.bump: dict[int, tuple[int, int]] = {}  # mt -> (next pfn, end of its pageblock)
        self.next_block = FIRST_PFN >> PAGEBLOCK_ORDER << PAGEBLOCK_ORDER
        self.next_block += 1 << PAGEBLOCK_ORDER if self.next_block < FIRST_PFN else 0
        self.stacks: dict[tuple[int, int], list[int]] = {}  # (mt, order) -> freed pfns
        self.pcp: dict[tuple[int, int], list[int]] = {}
        self.pcp_pages = 0
        self.in_use = 0  # pages of allocated blocks

    def free_pages(self) -> int:
        """NR_FREE_PAGES: neither allocated nor on a per-cpu list."""
        return ZONE_PAGES - self.in_use - self.pcp_pages

    def _ev(self, name: str, pfn: int, fields: str) -> None:
        self.out.emit(f"{name}: page={page_ptr(pfn)} pfn=0x{pfn:x} {fields}")

    def _buddy(self, order: int, mt: int, refill: bool) -> int:
        """`__rmqueue()`: one block, with its zone_locked (and extfrag) events; -1 if none."""
        pfn = self._take(order, mt)
        if pfn >= 0:
            self._ev("mm_page_alloc_zone_locked", pfn,
                     f"order={order} migratetype={mt} percpu_refill={int(refill)}")
        return pfn

    def _split(self, pfn: int, order: int, high: int, mt: int) -> int:
        """`expand()`: keep the first 2^order pages of a 2^high block, stack the rest as mt's."""
        while high > order:
            high -= 1
            self.stacks.setdefault((mt, high), []).append(pfn + (1 << high))
        return pfn

    def _take(self, order: int, mt: int) -> int:
        for high in range(order, PAGEBLOCK_ORDER + 1):
            stack = self.stacks.get((mt, high))
            if stack:
                return self._split(stack.pop(), order, high, mt)
        size = 1 << order
        nxt, end = self.bump.get(mt, (0, 0))
        nxt = -(-nxt // size) * size
        if nxt + size <= end:
            self.bump[mt] = (nxt + size, end)
            return nxt
        if self.next_block + (1 << PAGEBLOCK_ORDER) <= FIRST_PFN + ZONE_PAGES:
            block = self.next_block
            self.next_block += 1 << PAGEBLOCK_ORDER
            if mt != MOVABLE:  # boot left every free pageblock Movable: steal a whole one
                self._ev("mm_page_alloc_extfrag", block,
                         f"alloc_order={order} fallback_order={PAGEBLOCK_ORDER} "
                         f"pageblock_order={PAGEBLOCK_ORDER} alloc_migratetype={mt} "
                         f"fallback_migratetype={MOVABLE} fragmenting=0 change_ownership=1")
            self.bump[mt] = (block + size, block + (1 << PAGEBLOCK_ORDER))
            return block
        for high in range(PAGEBLOCK_ORDER, order - 1, -1):  # fragmenting fallback, largest first
            for other in (UNMOVABLE, RECLAIMABLE, MOVABLE):
                stack = self.stacks.get((other, high))
                if other != mt and stack:
                    pfn = stack.pop()
                    self._ev("mm_page_alloc_extfrag", pfn,
                             f"alloc_order={order} fallback_order={high} "
                             f"pageblock_order={PAGEBLOCK_ORDER} alloc_migratetype={mt} "
                             f"fallback_migratetype={other} fragmenting=1 change_ownership=0")
                    return self._split(pfn, order, high, mt)
        for other in (UNMOVABLE, RECLAIMABLE, MOVABLE):  # the rest of another's pageblock
            nxt, end = self.bump.get(other, (0, 0))
            nxt = -(-nxt // size) * size
            if other != mt and nxt + size <= end:
                high = order
                while (high < PAGEBLOCK_ORDER and nxt % (2 << high) == 0
                       and nxt + (2 << high) <= end):
                    high += 1
                self.bump[other] = (nxt + (1 << high), end)
                self._ev("mm_page_alloc_extfrag", nxt,
                         f"alloc_order={order} fallback_order={high} "
                         f"pageblock_order={PAGEBLOCK_ORDER} alloc_migratetype={mt} "
                         f"fallback_migratetype={other} fragmenting={int(high < PAGEBLOCK_ORDER)} "
                         "change_ownership=0")
                return self._split(nxt, order, high, mt)
        return -1

    def alloc(self, mask: int, order: int) -> int:
        """`__alloc_pages()`: the block's pfn (-1: failed), after its mm_page_alloc event."""
        mt = migratetype_of(mask)
        if order <= 3:  # pcp_allowed_order()
            lst = self.pcp.setdefault((mt, order), [])
            if not lst:
                for _ in range(max(PCP_BATCH >> order, 2)):
                    pfn = self._buddy(order, mt, True)
                    if pfn < 0:
                        break
                    lst.append(pfn)
                    self.pcp_pages += 1 << order
            pfn = lst.pop(0) if lst else -1
            if pfn >= 0:
                self.pcp_pages -= 1 << order
        else:
            pfn = self._buddy(order, mt, False)
        if pfn < 0:
            self.out.emit(f"mm_page_alloc: page=0000000000000000 pfn=0x0 order={order} "
                          f"migratetype={mt} gfp_flags={show_gfp_flags(mask)}")
        else:
            self._ev("mm_page_alloc", pfn, f"order={order} migratetype={mt} "
                     f"gfp_flags={show_gfp_flags(mask)}")
            self.in_use += 1 << order
        return pfn

    def free(self, blocks: list[tuple[int, int, int]], batched: bool = False) -> None:
        """Free (pfn, order, mt) blocks: one `__free_pages()` each, or (batched, order-0 only)
        one `free_unref_page_list()`: all mm_page_free events, then mm_page_free_batched."""
        for pfn, order, mt in blocks:
            self._ev("mm_page_free", pfn, f"order={order}")
            self.in_use -= 1 << order
            if not batched:
                self._commit(pfn, order, mt)
        if batched:
            for pfn, order, mt in blocks:
                assert order == 0
                self._ev("mm_page_free_batched", pfn, "order=0")
                self._commit(pfn, order, mt)

    def _commit(self, pfn: int, order: int, mt: int) -> None:
        """`free_unref_page_commit()` (orders 0-3) or `__free_one_page()` (larger)."""
        if order > 3:
            self.stacks.setdefault((mt, order), []).append(pfn)
            return
        self.pcp.setdefault((mt, order), []).insert(0, pfn)
        self.pcp_pages += 1 << order
        if self.pcp_pages >= PCP_HIGH:
            self._drain(PCP_BATCH)

    def _drain(self, count: int) -> None:
        """`free_pcppages_bulk()`: `count` pages from the lists' tails, round robin."""
        keys = sorted(self.pcp)
        while count > 0 and self.pcp_pages > 0:
            for key in keys:
                lst = self.pcp[key]
                if lst and count > 0:
                    pfn = lst.pop()
                    mt, order = key
                    self._ev("mm_page_pcpu_drain", pfn, f"order={order} migratetype={mt}")
                    self.stacks.setdefault((mt, order), []).append(pfn)
                    self.pcp_pages -= 1 << order
                    count -= 1 << order


class Load:
    """load.sh's stages at a small scale; `live` holds what each owner has allocated."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.out = Out(rng)
        self.m = Traced(self.out)
        self.live: dict[str, list[tuple[int, int, int]]] = {}

    def alloc(self, owner: str, task: str, site: tuple[str, int, tuple[int, ...]],
              n: int = 1) -> None:
        self.out.task = task
        _, mask, orders = site
        for _ in range(n):
            order = orders[int(self.rng.integers(len(orders)))]
            pfn = self.m.alloc(mask, order)
            if pfn >= 0:
                self.live.setdefault(owner, []).append((pfn, order, migratetype_of(mask)))

    def free(self, owner: str, task: str, n: int | None = None, batched: bool = False,
             chunk: int = 31) -> None:
        """Free `n` (all) of `owner`'s blocks, oldest first; batched frees go `chunk` at a
        time, as `release_pages()` hands its list to `free_unref_page_list()`."""
        self.out.task = task
        blocks = self.live.get(owner, [])
        take = blocks if n is None else blocks[:n]
        self.live[owner] = blocks[len(take):]
        if batched:
            for i in range(0, len(take), chunk):
                self.m.free(take[i:i + chunk], batched=True)
        else:
            for block in take:
                self.m.free([block])


def generate(scale: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    w = Load(rng)
    # boot: init's own kernel memory
    w.alloc("kernel", "init-1", KMALLOC, 4 * scale)
    w.alloc("init", "init-1", PGTABLE, scale)
    # page_cache: find | cat over the tree on ext2: readahead, dentries and inodes
    for _ in range(10 * scale):
        w.alloc("cache", "cat-212", READAHEAD, int(rng.integers(1, 9)))
        if rng.random() < 0.3:
            w.alloc("dentry", "find-211", DENTRY)
        if rng.random() < 0.2:
            w.alloc("inode", "find-211", INODE)
    # anon: one hog faults in anonymous memory
    for _ in range(8 * scale):
        w.alloc("hog", "hog-230", ANON, 4)
        if rng.random() < 0.02:
            w.alloc("hog_pt", "hog-230", PGTABLE)
    # forks: kernel stacks, page tables, a few pages of their own
    for child in range(32):
        task = f"hog-{240 + child}"
        w.alloc("stacks", task, STACK)
        w.alloc("forks_pt", task, PGTABLE, 2)
        w.alloc("forks", task, ANON, scale // 4)
        w.alloc("kernel", task, KMALLOC)
        w.alloc("skb", "<idle>-0", SKB)
    # ext2_write: dirty page cache past memory size; below the low mark kswapd frees the
    # oldest cache (shrink_folio_list -> free_unref_page_list), the tree's first
    for _ in range(40 * scale):
        w.alloc("write", "dd-260", WRITE, 8)
        while w.m.free_pages() < RECLAIM_BELOW:
            w.free("cache" if w.live.get("cache") else "write", "kswapd0-31", 32,
                   batched=True)
        if rng.random() < 0.05:
            w.alloc("inode", "dd-260", INODE)
        if rng.random() < 0.05:
            w.alloc("skb", "<idle>-0", SKB)
    # freed: the hogs exit (zap_pte_range -> release_pages), rm /mnt/fill
    w.free("forks", "hog-240", batched=True)
    w.free("hog", "hog-230", batched=True)
    w.free("stacks", "hog-240")
    w.free("forks_pt", "hog-240")
    w.free("hog_pt", "hog-230")
    w.free("write", "rm-270", batched=True)
    # drop_caches: the page cache, then the slab caches give back their pages
    w.free("cache", "sh-280", batched=True)
    w.free("dentry", "sh-280")
    w.free("inode", "sh-280")
    w.free("skb", "ksoftirqd/0-10")
    return w.out.lines


def write(lines: list[str], stream: TextIO) -> None:
    stream.write(HEADER.format(n=len(lines)))
    stream.writelines(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", default=str(DEFAULT_OUT), help="file, or - for stdout")
    parser.add_argument("--scale", type=int, default=6, help="size of every stage")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    lines = generate(args.scale, args.seed)
    if args.output == "-":
        write(lines, sys.stdout)
    else:
        with open(args.output, "w", encoding="utf-8") as fh:
            write(lines, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())

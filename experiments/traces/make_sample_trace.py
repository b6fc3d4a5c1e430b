"""Write a synthetic but realistic `kmem` ftrace text: the sample trace `fragsim replay` reads.

The lines look like a 6.x kernel's `/sys/kernel/tracing/trace` with the `kmem:mm_page_alloc`,
`kmem:mm_page_free` and `kmem:mm_page_free_batched` events enabled (`include/trace/events/kmem.h`).
The workload has three phases:

1. desktop: page faults and page cache (order 0, Movable), page tables and kmalloc (Unmovable),
   dentry/inode slab (Reclaimable, SLUB slabs of order 1-3), a few network buffers and
   transparent huge pages (order 9), with a live set that settles near `--target-pages`;
2. hog: a `stress-ng` process faults in `--hog-pages` of anonymous memory (THPs and 4 KiB
   pages; one THP fault fails on the traced machine, `page=(null)`); once it holds them, the
   nightly updatedb grows the dentry and inode caches by `--slab-pages` (Reclaimable) while
   memory is nearly full, which is when the model's Reclaimable fallbacks fragment;
3. exit: the hog's memory is freed (order-0 pages through `release_pages()`, so each gets an
   `mm_page_free` and then an `mm_page_free_batched`, as 5.x+ kernels emit them).

The traced machine's pfns come from a small LIFO allocator of its own, so a freed pfn is soon
reused, as on a real machine. The output also has the ftrace header, some irrelevant events and
two malformed lines (an old-kernel line without `pfn=` and a truncated one), which replay skips.
Same arguments, same bytes: one `numpy.random.Generator` seeded from `--seed` draws everything.

    python experiments/traces/make_sample_trace.py            # writes sample-kmem.trace
    python experiments/traces/make_sample_trace.py --events 1000000 -o /tmp/big.trace
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple, TextIO

import numpy as np

SEED = 20070905  # the day the v30 grouping-by-mobility patches were posted for merging
DEFAULT_OUT = Path(__file__).with_name("sample-kmem.trace")
VMEMMAP = 0xFFFFEA0000000000  # x86_64 vmemmap base; struct page is 64 bytes
FIRST_PFN = 0x100000  # the traced machine's ZONE_NORMAL starts at 4 GiB


class Request(NamedTuple):
    """A kind of allocation: modern migratetype number, orders, gfp text, who asks, weight."""

    name: str
    migratetype: int  # modern numbering: 0 Unmovable, 1 Movable, 2 Reclaimable
    orders: tuple[int, ...]
    gfp: str
    tasks: tuple[str, ...]
    weight: float
    stickiness: float  # relative chance of staying live when something is freed


DESKTOP = (
    Request("anon", 1, (0,), "GFP_HIGHUSER_MOVABLE|__GFP_ZERO",
            ("firefox-3021", "Web Content-3388", "gcc-5120", "cc1-5133", "bash-1234"), 44, 1.0),
    Request("pagecache", 1, (0,), "GFP_HIGHUSER_MOVABLE",
            ("make-5101", "tar-4417", "kworker/u16:2-187", "Xorg-911"), 22, 1.0),
    Request("pagetable", 0, (0,), "GFP_KERNEL_ACCOUNT|__GFP_ZERO",
            ("firefox-3021", "gcc-5120", "bash-1234"), 9, 3.0),
    Request("kmalloc", 0, (0, 1, 2, 3), "GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP",
            ("systemd-1", "kworker/2:1-98", "Xorg-911"), 8, 4.0),
    Request("dentry", 2, (0, 1, 2, 3), "GFP_NOFS|__GFP_NOWARN|__GFP_RECLAIMABLE|__GFP_COMP",
            ("make-5101", "updatedb-6001", "tar-4417"), 10, 3.0),
    Request("skb", 0, (0, 1, 2, 3), "GFP_ATOMIC|__GFP_NOWARN|__GFP_COMP",
            ("<idle>-0", "ksoftirqd/1-22"), 4, 0.5),
    Request("thp", 1, (9,), "GFP_TRANSHUGE", ("firefox-3021", "cc1-5133"), 0.4, 1.0),
)
ORDER_WEIGHTS = {0: 60.0, 1: 20.0, 2: 12.0, 3: 8.0}
UPDATEDB = Request("updatedb", 2, (0, 1, 2, 3),
                   "GFP_NOFS|__GFP_NOWARN|__GFP_RECLAIMABLE|__GFP_COMP", ("updatedb-6001",), 0, 2.0)
HOG = Request("hog", 1, (9,), "GFP_TRANSHUGE", ("stress-ng-7777",), 0, 1.0)
HOG_SMALL = Request("hog", 1, (0,), "GFP_HIGHUSER_MOVABLE|__GFP_ZERO", ("stress-ng-7777",), 0, 1.0)

HEADER = """\
# tracer: nop
#
# entries-in-buffer/entries-written: {n}/{n}   #P:8
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


class TracedMachine:
    """The traced kernel's pfns: per-order LIFO free stacks over a bump pointer (never overlap)."""

    def __init__(self) -> None:
        self.next_pfn = FIRST_PFN
        self.free: dict[int, list[int]] = {}

    def alloc(self, order: int) -> int:
        stack = self.free.get(order)
        if stack:
            return stack.pop()
        size = 1 << order
        pfn = -(-self.next_pfn // size) * size
        self.next_pfn = pfn + size
        return pfn

    def release(self, pfn: int, order: int) -> None:
        self.free.setdefault(order, []).append(pfn)


class Writer:
    """Formats events as ftrace prints them (`trace_print_context()` then the event)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.lines: list[str] = []
        self.clock = 4711.0

    def _prefix(self, task: str) -> str:
        self.clock += float(self.rng.exponential(0.0004))
        comm, _, pid = task.rpartition("-")
        cpu = int(self.rng.integers(8))
        flags = "d..1." if self.rng.random() < 0.2 else "....."
        return f"{comm:>16s}-{pid:<7s} [{cpu:03d}] {flags} {self.clock:12.6f}: "

    def alloc(self, task: str, pfn: int, order: int, mt: int, gfp: str) -> None:
        page = f"0x{VMEMMAP + 64 * pfn:x}" if pfn >= 0 else "(null)"
        self.lines.append(self._prefix(task) + f"mm_page_alloc: page={page} "
                          f"pfn=0x{max(pfn, 0):x} order={order} migratetype={mt} "
                          f"gfp_flags={gfp}\n")

    def free(self, task: str, pfn: int, order: int, batched: bool = False) -> None:
        page = f"0x{VMEMMAP + 64 * pfn:x}"
        self.lines.append(self._prefix(task) + f"mm_page_free: page={page} pfn=0x{pfn:x} "
                          f"order={order}\n")
        if batched:  # 5.x+: free_unref_page_list() emits it after free_pages_prepare()'s event
            self.lines.append(self._prefix(task) + f"mm_page_free_batched: page={page} "
                              f"pfn=0x{pfn:x} order=0\n")

    def raw(self, task: str, text: str) -> None:
        self.lines.append(self._prefix(task) + text + "\n")


class Workload:
    """Live allocations, and the choice of what to allocate or free next."""

    def __init__(self, rng: np.random.Generator, out: Writer) -> None:
        self.rng = rng
        self.out = out
        self.machine = TracedMachine()
        self.live: list[tuple[int, int, Request, str]] = []  # pfn, order, request, task
        self.live_pages = 0
        self.hogs: list[tuple[int, int, Request, str]] = []  # the hog's, freed when it exits
        self.hog_pages = 0
        self.updatedb_pages = 0  # live dentry/inode slab of the updatedb run
        weights = np.array([r.weight for r in DESKTOP])
        self.request_p = weights / weights.sum()

    def alloc(self, req: Request, order: int | None = None) -> None:
        if order is None:
            if len(req.orders) == 1:
                order = req.orders[0]
            else:
                w = np.array([ORDER_WEIGHTS[o] for o in req.orders])
                order = int(self.rng.choice(req.orders, p=w / w.sum()))
        task = req.tasks[int(self.rng.integers(len(req.tasks)))]
        pfn = self.machine.alloc(order)
        self.out.alloc(task, pfn, order, req.migratetype, req.gfp)
        if req.name == "hog":
            self.hogs.append((pfn, order, req, task))
            self.hog_pages += 1 << order
        else:
            self.live.append((pfn, order, req, task))
            self.live_pages += 1 << order
            if req is UPDATEDB:
                self.updatedb_pages += 1 << order

    def free_at(self, i: int) -> None:
        pfn, order, req, task = self.live[i]
        self.live[i] = self.live[-1]
        self.live.pop()
        self.live_pages -= 1 << order
        if req is UPDATEDB:
            self.updatedb_pages -= 1 << order
        self._release(pfn, order, req, task)

    def free_hog(self) -> None:
        pfn, order, req, task = self.hogs.pop()
        self.hog_pages -= 1 << order
        self._release(pfn, order, req, task)

    def _release(self, pfn: int, order: int, req: Request, task: str) -> None:
        self.machine.release(pfn, order)
        batched = order == 0 and req.migratetype == 1 and self.rng.random() < 0.5
        self.out.free(task, pfn, order, batched)

    def free_one(self) -> None:
        """Free a live allocation; sticky ones (kernel memory) are picked less often."""
        for _ in range(8):
            i = int(self.rng.integers(len(self.live)))
            if self.rng.random() < 1 / self.live[i][2].stickiness:
                self.free_at(i)
                return

    def desktop_step(self, target_pages: int) -> None:
        p_free = 0.5 * min(1.0, self.live_pages / target_pages) if self.live else 0.0
        if self.rng.random() < p_free:
            self.free_one()
        else:
            self.alloc(DESKTOP[int(self.rng.choice(len(DESKTOP), p=self.request_p))])


def irrelevant(out: Writer, rng: np.random.Generator) -> None:
    """A line replay ignores: another kmem event, or ftrace's note of lost events."""
    pick = int(rng.integers(4))
    pfn = FIRST_PFN + int(rng.integers(1 << 16))
    if pick == 0:
        out.raw("kworker/2:1-98", f"mm_page_alloc_zone_locked: page=0x{VMEMMAP + 64 * pfn:x} "
                f"pfn=0x{pfn:x} order=0 migratetype=1 percpu_refill=1")
    elif pick == 1:
        out.raw("kswapd0-52", f"mm_page_pcpu_drain: page=0x{VMEMMAP + 64 * pfn:x} "
                f"pfn=0x{pfn:x} order=0 migratetype=1")
    elif pick == 2:
        out.raw("systemd-1", "kmalloc: call_site=alloc_pipe_info+0x4f/0x120 "
                "ptr=00000000a3c2b1d4 bytes_req=640 bytes_alloc=1024 "
                "gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO node=-1 accounted=true")
    else:
        out.lines.append(f"CPU:{int(rng.integers(8))} [LOST {int(rng.integers(1, 40))} EVENTS]\n")


def generate(events: int, seed: int, target_pages: int, hog_pages: int,
             slab_pages: int) -> list[str]:
    """The trace's lines after the header (about `events` event lines)."""
    rng = np.random.default_rng(seed)
    out = Writer(rng)
    work = Workload(rng, out)
    phase1, phase2 = int(events * 0.45), int(events * 0.7)
    hog_failed = False
    malformed_at = {int(events * 0.3), int(events * 0.8)}
    while len(out.lines) < events:
        n = len(out.lines)
        if n in malformed_at:
            malformed_at.discard(n)
            pfn = FIRST_PFN + int(rng.integers(1 << 16))
            if n < phase1:  # a kernel that printed no pfn: replay cannot use such a line
                out.raw("gcc-5120", f"mm_page_alloc: page=ffffea{64 * pfn:010x} order=0 "
                        "migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE")
            else:  # a line cut short when the buffer was copied
                out.raw("make-5101", f"mm_page_free: page=0x{VMEMMAP + 64 * pfn:x} pfn=0x{pfn:x} "
                        "ord")
            continue
        if rng.random() < 0.01:
            irrelevant(out, rng)
            continue
        if n < phase1:
            work.desktop_step(target_pages)
        elif n < phase2:
            if rng.random() < 0.2:
                work.desktop_step(target_pages)
            elif work.hog_pages < hog_pages:
                if not hog_failed and rng.random() < 0.05:
                    hog_failed = True  # compaction gave up on the traced machine
                    out.alloc("stress-ng-7777", -1, 9, 1, HOG.gfp)
                elif rng.random() < 0.15:
                    work.alloc(HOG)
                else:
                    work.alloc(HOG_SMALL)
            elif work.updatedb_pages < slab_pages:  # the nightly updatedb, while the hog runs
                work.alloc(UPDATEDB)
            else:
                work.desktop_step(target_pages)
        else:
            if work.hogs and rng.random() < 0.6:
                work.free_hog()
            else:
                work.desktop_step(target_pages)
    return out.lines


def write(lines: list[str], stream: TextIO) -> None:
    events = sum(1 for line in lines if "mm_page" in line)
    stream.write(HEADER.format(n=events))
    stream.writelines(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", default=str(DEFAULT_OUT), help="file, or - for stdout")
    parser.add_argument("--events", type=int, default=2600, help="event lines (about)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--target-pages", type=int, default=6000,
                        help="desktop live set the workload settles near")
    parser.add_argument("--hog-pages", type=int, default=14000,
                        help="pages the hog process faults in")
    parser.add_argument("--slab-pages", type=int, default=2500,
                        help="reclaimable slab updatedb builds up while the hog runs")
    args = parser.parse_args(argv)
    lines = generate(args.events, args.seed, args.target_pages, args.hog_pages, args.slab_pages)
    if args.output == "-":
        write(lines, sys.stdout)
    else:
        with open(args.output, "w", encoding="utf-8") as fh:
            write(lines, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())

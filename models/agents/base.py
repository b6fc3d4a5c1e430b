"""What every agent shares: the kernel interface it calls, owner ids, parameters, processes.

Agents are SimPy processes that behave like a machine's users of memory: kernel subsystems, user
processes, the page cache, device drivers and daemons. They never touch the allocator's arrays
themselves for allocation: they call a `KernelAPI` (implemented by `fragsim.sim.kernel.Kernel`),
which runs the fast path in batches and the slow path (kswapd wake-ups, direct reclaim stalls)
with SimPy waits, and tells owners what reclaim and migration did to their pages.

Owner ids (`pages['owner']`) say who holds a page, as `page->mapping` does:

| owner                           | who                                                   |
|---------------------------------|-------------------------------------------------------|
| `OWNER_NETBUF` ... `OWNER_DMA`  | kernel subsystems without an owner object (1..15)     |
| `OWNER_FILE_BASE + fid`         | page cache of file `fid`                              |
| `OWNER_PROC_BASE + slot`        | a process: anonymous memory, page tables, its stack   |
| `SLAB_OWNER_BASE + i`           | slab cache `i` (`models.mm.slab`)                     |

Every agent has a frozen parameter dataclass; each field's metadata carries its documentation
(`doc`) and, for byte sizes, `unit="bytes"` (so workload files may write "64MiB"). The workload
loader (`fragsim.sim.config`) reads these dataclasses to check a workload file key by key.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import field
from typing import Any, Protocol

import numpy as np
import simpy

from fragsim.models.mm.machine import Machine
from fragsim.models.mm.slab import SLAB_OWNER_BASE, SlabCache

__all__ = [
    "OWNER_DMA",
    "OWNER_FILE_BASE",
    "OWNER_MODULES",
    "OWNER_NETBUF",
    "OWNER_PROC_BASE",
    "OWNER_SLAB_BASE",
    "KernelAPI",
    "Proc",
    "param",
]

OWNER_NETBUF = 1
OWNER_MODULES = 2
OWNER_DMA = 3
OWNER_FILE_BASE = 1 << 20
OWNER_PROC_BASE = 1 << 25
OWNER_SLAB_BASE = SLAB_OWNER_BASE

#: A SimPy process body: a generator of events.
Proc = Generator[simpy.Event, Any, Any]


def param(default: Any, doc: str, unit: str = "", added_later: bool = False) -> Any:
    """A parameter field: its default, its documentation, and its unit ("bytes" for sizes).

    `added_later` marks a key added after run ids were first recorded: while it has its
    default it is left out of the config id (`Workload.config_id`), so a config written before
    the key existed keeps its id (and a sweep directory of it stays resumable)."""
    meta: dict[str, Any] = {"doc": doc, "unit": unit}
    if added_later:
        meta["added_later"] = True
    return field(default=default, metadata=meta)


class KernelAPI(Protocol):
    """The calls agents make into the simulated kernel (`fragsim.sim.kernel.Kernel`)."""

    env: simpy.Environment
    machine: Machine

    def alloc(self, n: int, order: int, gfp: int, owners: np.ndarray | int, kind: int, *,
              lru: int = -1, dirty: bool = False,
              on_alloc: Callable[[np.ndarray, np.ndarray], None] | None = None,
              source: str = "") -> Generator[simpy.Event, Any, np.ndarray]:
        """Allocate `n` blocks of `order` (fast path in batches, then the slow path); returns
        their pfns, -1 where an allocation failed. `on_alloc(pfns, index)` is called with each
        served sub-batch before anything can reclaim it."""
        ...

    def free(self, pfns: np.ndarray) -> None:
        """Free blocks (`__free_pages`)."""
        ...

    def sync(self) -> None:
        """Give the core the simulated time (`machine.now`)."""
        ...

    def drain(self) -> None:
        """Hand reclaimed and migrated rows to their owners."""
        ...

    def wake_kswapd(self, order: int, high_zone: int) -> None:
        """`wakeup_kswapd()`."""
        ...

    def drop_caches(self, mode: int) -> int:
        """Write `mode` to /proc/sys/vm/drop_caches; returns pages freed."""
        ...

    def free_lru(self, pfns: np.ndarray) -> None:
        """Free user pages (leaving the LRU; swap-cache slots released)."""
        ...

    def slab_cache(self, name: str, objs_per_page: int, reclaimable: bool) -> SlabCache:
        """`kmem_cache_create`."""
        ...

    def slab_alloc(self, cache: SlabCache, n: int, source: str = "",
                   gfp: int = ...) -> Generator[simpy.Event, Any, np.ndarray]:
        """`kmem_cache_alloc(cache, gfp)` x n, growing the cache through the slow path."""
        ...

    def alloc_pages(self, order: int, gfp: int, owner: int, kind: int,
                    source: str = "") -> Generator[simpy.Event, Any, int]:
        """One `alloc_pages(gfp, order)` through the whole slow path; the pfn or -1."""
        ...

    def thp_fault(self, owner: int, madvised: bool,
                  source: str = "") -> Generator[simpy.Event, Any, int]:
        """The huge page allocation of an anonymous fault on a 2 MiB extent (counts
        thp_fault_alloc / thp_fault_fallback); the pfn, or -1 to fall back to order-0 pages."""
        ...

    def register_owner(self, lo: int, hi: int,
                       reclaimed: Callable[[np.ndarray], None] | None,
                       migrated: Callable[[np.ndarray], None] | None) -> None:
        """Owners in [lo, hi) are told of reclaimed rows (pfn, owner, kind) and migrated rows
        (old_pfn, new_pfn, owner)."""
        ...

    def event(self, name: str, source: str = "", **fields: Any) -> None:
        """Record an event (`events` table)."""
        ...

    def stream(self, name: str) -> np.random.Generator:
        """The named random stream of an agent."""
        ...

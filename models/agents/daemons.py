"""Kernel daemons as SimPy processes: kswapd and the pdflush writeback threads.

- `Kswapd` is 2.6.24 `kswapd()`: it sleeps until `wakeup_kswapd()` records an order for a zone
  (the allocator's slow path does that, and on 6.1 `rmqueue` for a boosted zone;
  `fragsim.sim.kernel.Kernel.wake_kswapd` makes this process runnable), then runs
  `balance_pgdat()` for the highest order asked, up to the highest zone woken (6.1's
  `kswapd_highest_zoneidx`, which bounds the boost accounting), and sleeps again.
  The kernel's balance_pgdat naps in `congestion_wait(WRITE, HZ/10)` between priorities; the
  model counts those naps and lets that much simulated time pass after each call, during which
  allocators find kswapd busy and reclaim directly. One call is capped at `max_passes`
  balance passes (the kernel loops until the zones are balanced); if the zones are still
  unbalanced and the call reclaimed something, kswapd naps HZ/10 and goes again; if it reclaimed
  nothing it sleeps until the next wake-up (the kernel would spin; see README model limits).
  On a kernel with kcompactd (6.1 preset), going to sleep after balancing is 6.1
  `kswapd_try_to_sleep()`'s kcompactd part (`models.mm.kcompactd.kswapd_try_to_sleep`): with
  the order it was woken for (`alloc_order`, the last balance's), the highest zone asked since
  it woke, and `reclaim_order` 0 once it reclaimed `compact_gap(alloc_order)` pages since it
  woke (6.1 `kswapd_shrink_node`), it wakes kcompactd if the node is balanced at
  `reclaim_order`. While awake (balancing or napping) it counts as running
  (`machine.kswapd_running`, 6.1 `kswapd_is_running`: proactive compaction backs off).
- `Flusher` is 2.6.20-2.6.24 pdflush: `wb_kupdate()` every `dirty_writeback_centisecs` (5 s)
  writes back data dirtied more than `dirty_expire_centisecs` (30 s) ago, and
  `background_writeout()` starts when dirty pages pass `dirty_background_ratio` of dirtyable
  memory (free + page cache), writing the oldest first until below it; the ratio is the
  kernel's: 10 in 2.6.20, 5 from 2.6.22 (`MachineConfig.dirty_background_ratio`). Writers are
  not throttled at `dirty_ratio` (`balance_dirty_pages()`): a fast writer such as dd is given a
  rate instead.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import simpy

from fragsim.models.agents.base import Proc, param
from fragsim.models.mm import reclaim, writeback
from fragsim.models.mm.kcompactd import kswapd_reclaim_order, kswapd_try_to_sleep
from fragsim.models.mm.reclaim_state import reclaim_state
from fragsim.models.mm.slowpath import RECLAIM_CONGESTION_WAIT_S, kswapd_highest_zoneidx

if TYPE_CHECKING:
    from fragsim.models.agents.base import KernelAPI

__all__ = ["Flusher", "FlusherParams", "Kswapd"]


class Kswapd:
    """kswapd0 of node 0 (module docstring)."""

    name = "kswapd0"

    def __init__(self, env: simpy.Environment, kernel: KernelAPI, max_passes: int = 8) -> None:
        self.env = env
        self.kernel = kernel
        self.max_passes = max_passes
        self.wakeup = env.event()
        self.sleeping = True
        self.runs = 0
        self.reclaimed = 0
        #: Whether going to sleep wakes kcompactd (6.1 `kswapd_try_to_sleep`).
        self.kcompactd = bool(kernel.machine.config.kcompactd)

    def kick(self) -> None:
        """Make a sleeping kswapd runnable (the order is already in `machine.kswapd_order`)."""
        if self.sleeping and not self.wakeup.triggered:
            self.wakeup.succeed()

    def _pending_order(self) -> int:
        orders = self.kernel.machine.kswapd_order
        return max(orders) if orders else -1

    def _balanced(self, order: int) -> bool:
        # Every zone OK at its high watermark, boost included (`reclaim.zone_ok`'s default).
        m = self.kernel.machine
        return all(reclaim.zone_ok(m, z, order) for z in m.populated_zones())

    def run(self) -> Proc:
        m = self.kernel.machine
        # Since kswapd last woke: the order of its last balance, the highest zone asked, and
        # the pages reclaimed (6.1 balance_pgdat's sc.nr_reclaimed over one call).
        alloc_order, highest_zoneidx, nr_reclaimed = 0, -1, 0
        while True:
            if self._pending_order() < 0:
                if self.kcompactd and highest_zoneidx >= 0:
                    kswapd_try_to_sleep(m, alloc_order,
                                        kswapd_reclaim_order(alloc_order, nr_reclaimed),
                                        highest_zoneidx)
                alloc_order, highest_zoneidx, nr_reclaimed = 0, -1, 0
                self.sleeping = True
                m.kswapd_running = False
                yield self.wakeup
                self.wakeup = self.env.event()
                self.sleeping = False
                m.kswapd_running = True
            order = self._pending_order()
            if order < 0:
                continue
            alloc_order = order
            pass_zoneidx = kswapd_highest_zoneidx(m)
            highest_zoneidx = max(highest_zoneidx, pass_zoneidx)
            m.kswapd_order = [-1] * len(m.kswapd_order)
            m.now = float(self.env.now)
            st = reclaim_state(m)
            naps = st.congestion_waits
            got = int(reclaim.balance_pgdat(m, order, max_passes=self.max_passes,
                                            highest_zoneidx=pass_zoneidx))
            self.kernel.drain()
            self.runs += 1
            self.reclaimed += got
            nr_reclaimed += got
            naps = st.congestion_waits - naps
            if naps:
                yield self.env.timeout(naps * RECLAIM_CONGESTION_WAIT_S)
            if got and not self._balanced(order):
                # Not done: nap once more and balance again for the same order.
                m.kswapd_order = [max(o, order) for o in m.kswapd_order]
                yield self.env.timeout(RECLAIM_CONGESTION_WAIT_S)


@dataclass(frozen=True)
class FlusherParams:
    """pdflush tunables (2.6.20-2.6.24 defaults, `mm/page-writeback.c`)."""

    writeback_interval_s: float = param(5.0, "dirty_writeback_centisecs = 500: wb_kupdate "
                                        "runs every 5 s")
    expire_s: float = param(30.0, "dirty_expire_centisecs = 3000: data dirty for 30 s is "
                            "written back")


class Flusher:
    """pdflush (module docstring). Writers call `dirtied(pfns)` after dirtying page cache."""

    name = "pdflush"

    def __init__(self, kernel: KernelAPI, params: FlusherParams) -> None:
        self.kernel = kernel
        self.params = params
        self.queue: deque[tuple[float, np.ndarray]] = deque()
        self.queued = 0
        self.started = 0
        self._wake = kernel.env.event()

    def dirtied(self, pfns: np.ndarray) -> None:
        """Dirty page-cache pages to write back later (oldest first)."""
        pfns = pfns[pfns >= 0]
        if pfns.shape[0] == 0:
            return
        self.queue.append((float(self.kernel.env.now), pfns.astype(np.int64)))
        self.queued += int(pfns.shape[0])
        if not self._wake.triggered:
            self._wake.succeed()
        background = self._background_limit()
        if self.queued > background:  # background_writeout()
            self._write_oldest(self.queued - background)

    def _background_limit(self) -> int:
        """Pages: the kernel's dirty_background_ratio of dirtyable memory (free + LRU)."""
        m = self.kernel.machine
        dirtyable = m.free_pages() + int(m.zones["nr_lru"].sum())
        return m.config.dirty_background_ratio * dirtyable // 100

    def sync(self) -> None:
        """`sys_sync()`: start writeback of every queued dirty page (the caller waits)."""
        self._write_oldest(self.queued)

    def _write_oldest(self, nr: int) -> None:
        """Start writeback of the oldest queued data, about `nr` pages."""
        m = self.kernel.machine
        m.now = float(self.kernel.env.now)
        while nr > 0 and self.queue:
            _, pfns = self.queue.popleft()
            self.queued -= int(pfns.shape[0])
            nr -= int(pfns.shape[0])
            self.started += writeback.start_writeback(m, pfns)

    def run(self) -> Proc:
        env = self.kernel.env
        m = self.kernel.machine
        while True:
            if not self.queue:
                yield self._wake
                self._wake = env.event()
            yield env.timeout(self.params.writeback_interval_s)
            m.now = float(env.now)
            writeback.complete_writeback(m)
            expired = float(env.now) - self.params.expire_s
            while self.queue and self.queue[0][0] <= expired:
                _, pfns = self.queue.popleft()
                self.queued -= int(pfns.shape[0])
                self.started += writeback.start_writeback(m, pfns)

"""Kernel daemons as SimPy processes: kswapd and the pdflush writeback threads.

- `Kswapd` is 2.6.24 `kswapd()`, or on the 6.1 and 6.15 presets 6.1's (below): it sleeps
  until `wakeup_kswapd()` records an order for a zone (the allocator's slow path does that;
  `fragsim.sim.kernel.Kernel.wake_kswapd` makes this process runnable), then runs
  `balance_pgdat()` for the highest order asked, and sleeps again.
  The kernel's balance_pgdat naps in `congestion_wait(WRITE, HZ/10)` between priorities; the
  model counts those naps and lets that much simulated time pass after each call, during which
  allocators find kswapd busy and reclaim directly. One call is capped at `max_passes`
  balance passes (the kernel loops until the zones are balanced); if the zones are still
  unbalanced and the call reclaimed something, kswapd naps HZ/10 and goes again; if it reclaimed
  nothing it sleeps until the next wake-up (the kernel would spin; see README model limits).
  With kcompactd on (no 2.6.x preset has it) going to sleep wakes it as 6.1's
  `kswapd_try_to_sleep` does, with `reclaim_order` 0 once `compact_gap(alloc_order)` pages
  were reclaimed since kswapd woke. While awake (balancing or napping) kswapd counts as running
  (`machine.kswapd_running`, 6.1 `kswapd_is_running`: proactive compaction backs off).
- 6.1 `kswapd()` (`Policy.kswapd == "6.1"`, `models.mm.kswapd_6_1`): `kswapd_try_to_sleep`
  with the order it was woken for (`alloc_order`) and the order its last `balance_pgdat`
  stopped at (`reclaim_order`): if `prepare_kswapd_sleep` holds at `reclaim_order` (the node
  balanced, or hopeless after 16 runs that reclaimed nothing) it wakes kcompactd for
  `alloc_order` and sleeps until a wake-up that 6.1 `wakeup_kswapd` would deliver (none while
  the node is hopeless, or balanced at the order asked and not boosted); then it reads and
  clears the recorded order and zone, and runs 6.1 `balance_pgdat`; if that dropped to order 0
  it tries to sleep with the two orders, else with the order recorded meanwhile. Between two
  `balance_pgdat` calls that leave the node unbalanced the model lets HZ/10 pass (the kernel
  goes on at once; its scanning takes time, the model's none). The short HZ/10 nap of
  `kswapd_try_to_sleep` and its premature-wake-up check are not modelled: kswapd sleeps at
  once.
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
from fragsim.models.mm.kswapd_6_1 import (
    balance_pgdat_6_1,
    kswapd_hopeless,
    kswapd_reclaim_order,
    kswapd_try_to_sleep,
    pgdat_balanced,
    pgdat_watermark_boosted,
)
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
        # Every zone OK at its high watermark, boost included (2.6.24's test).
        return reclaim.pgdat_balanced(self.kernel.machine, order)

    def _highest_zoneidx(self, prev: int) -> int:
        """6.1 `kswapd_highest_zoneidx(pgdat, prev_highest_zoneidx)`: the highest zone woken
        for, or `prev` when none was."""
        hz = kswapd_highest_zoneidx(self.kernel.machine)
        return prev if hz < 0 else hz

    def run(self) -> Proc:
        """`kswapd()`: 6.1's on a kernel whose policy says so, else 2.6.24's."""
        if self.kernel.machine.policy.kswapd == "6.1":
            return self._run_6_1()
        return self._run_2_6_24()

    def _sleep_6_1(self, highest_zoneidx: int) -> Proc:
        """Sleep until a wake-up 6.1 `wakeup_kswapd()` would deliver: none while the node is
        hopeless, or balanced at the order asked and not boosted ("leave it to direct
        reclaim"; the order stays recorded, as `pgdat->kswapd_order` does)."""
        m = self.kernel.machine
        while True:
            self.sleeping = True
            m.kswapd_running = False
            yield self.wakeup
            self.wakeup = self.env.event()
            hz = self._highest_zoneidx(highest_zoneidx)
            order = max(self._pending_order(), 0)
            if kswapd_hopeless(m) or (pgdat_balanced(m, order, hz)
                                      and not pgdat_watermark_boosted(m, hz)):
                continue
            self.sleeping = False
            m.kswapd_running = True
            return

    def _run_6_1(self) -> Proc:
        """6.1 `kswapd()` (module docstring)."""
        m = self.kernel.machine
        st = reclaim_state(m)
        alloc_order = reclaim_order = 0
        highest_zoneidx = m.zones.shape[0] - 1
        while True:
            # kswapd_try_sleep:
            if kswapd_try_to_sleep(m, alloc_order, reclaim_order, highest_zoneidx):
                yield from self._sleep_6_1(highest_zoneidx)
            else:
                # Model: the kernel calls balance_pgdat again at once, and its scan takes
                # time; the model's takes none, so HZ/10 passes first (README, model limits).
                self.sleeping = False
                m.kswapd_running = True
                yield self.env.timeout(RECLAIM_CONGESTION_WAIT_S)
            # Read the new order and highest_zoneidx.
            alloc_order = max(self._pending_order(), 0)
            highest_zoneidx = self._highest_zoneidx(highest_zoneidx)
            m.kswapd_order = [-1] * len(m.kswapd_order)
            m.now = float(self.env.now)
            naps = st.congestion_waits
            got, reclaim_order = balance_pgdat_6_1(m, alloc_order, highest_zoneidx)
            self.kernel.drain()
            self.runs += 1
            self.reclaimed += got
            naps = st.congestion_waits - naps
            if naps:
                yield self.env.timeout(naps * RECLAIM_CONGESTION_WAIT_S)
            if reclaim_order < alloc_order:
                continue  # goto kswapd_try_sleep
            alloc_order = reclaim_order = max(self._pending_order(), 0)
            highest_zoneidx = self._highest_zoneidx(highest_zoneidx)

    def _run_2_6_24(self) -> Proc:
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

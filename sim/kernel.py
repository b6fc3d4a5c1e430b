"""The simulated kernel as agents see it: allocation with SimPy waits, frees, owner notification.

`Kernel` is the one place where the synchronous allocator core (`fragsim.models.mm`) meets
simulated time. For each request of `n` blocks it follows 2.6.24 `__alloc_pages()` page by page,
but runs the pages of one request in compiled batches:

1. `get_page_from_freelist` at the LOW watermark for as many as it can (`alloc_until_fail`),
   with the flags 6.1 `__alloc_pages` adds for its first attempt (`alloc_flags_nofragment`:
   ALLOC_KSWAPD, ALLOC_NOFRAGMENT; 5.0+);
2. where that fails, `wakeup_kswapd` and let the kswapd process run (a SimPy yield at the same
   instant: an agent's request stands for allocations spread over a short time, during which the
   kernel's kswapd thread runs too), then LOW again;
3. if kswapd did not help (it is asleep in `congestion_wait`, or could not reclaim), the
   allocation continues at MIN (ALLOC_HARDER for callers that cannot sleep, ALLOC_HIGH for
   __GFP_HIGH), as `__alloc_pages` does after waking kswapd;
4. below MIN, one page goes through the whole slow path (`models.mm.slowpath.alloc_pages`:
   direct reclaim, lumpy reclaim, direct compaction as the kernel preset has them); its stall
   (congestion waits) is simulated time the agent waits; then 3 again. A request that cannot
   sleep, or whose slow path fails, fails with all its remaining pages.

After every reclaim or compaction the kernel drains `Machine.take_notifications()` and hands the
rows to the owners registered for them (`register_owner`), before any page can be reallocated, so
an owner's view of its pages never goes stale. `mm_page_alloc_extfrag` events are copied from the
node's ring into the recorder after every request, and a kswapd wake-up the compiled `rmqueue`
left for a boosted zone (5.0+, `slowpath.boost_wakeups`) makes the kswapd process runnable.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from fragsim.models.agents.daemons import Kswapd
from fragsim.models.agents.kcompactd import Kcompactd
from fragsim.models.mm import reclaim, slowpath
from fragsim.models.mm.boost import alloc_flags_kswapd, alloc_flags_nofragment
from fragsim.models.mm.bulk import LRU_NONE, alloc_until_fail, count_failures
from fragsim.models.mm.constants import (
    ALLOC_HARDER,
    ALLOC_HIGH,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MIN,
    KIND_ANON,
)
from fragsim.models.mm.gfp import GFP, GFP_KERNEL
from fragsim.models.mm.huge_memory import vma_thp_gfp_mask
from fragsim.models.mm.lru import lru_add_batch, set_dirty_batch
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.slab import SlabCache, kmem_cache_create
from fragsim.models.mm.state import EXTFRAG_RING, STAT
from fragsim.sim.recorder import Recorder
from fragsim.sim.streams import Streams

__all__ = ["Kernel"]

_S_ALLOC_FAIL = STAT["alloc_fail"]
_S_THP_FAULT_ALLOC = STAT["thp_fault_alloc"]
_S_THP_FAULT_FALLBACK = STAT["thp_fault_fallback"]
# GFP bits as plain ints: IntFlag arithmetic costs microseconds on this path.
_WAIT = int(GFP.WAIT)
_HIGH = int(GFP.HIGH)
_NO_KSWAPD = int(GFP.NO_KSWAPD)

Handler = Callable[[np.ndarray], None]


class Kernel:
    """The kernel facade of one run (module docstring); implements `models.agents.KernelAPI`."""

    def __init__(self, env: simpy.Environment, machine: Machine, recorder: Recorder,
                 streams: Streams, *, kswapd_passes: int = 8) -> None:
        self.env = env
        self.machine = machine
        self.recorder = recorder
        self.streams = streams
        self._owners: list[tuple[int, int, Handler | None, Handler | None]] = []
        self._extfrag_seen = 0
        #: mm_page_alloc_extfrag events the ring overwrote before they were copied.
        self.extfrag_lost = 0
        #: Simulated seconds agents spent stalled in direct reclaim / compaction.
        self.stall_s = 0.0
        self.direct_reclaims = 0
        self.kswapd = Kswapd(env, self, max_passes=kswapd_passes)
        env.process(self.kswapd.run())
        #: kcompactd0, on a kernel that has it (4.6+; the 6.1 preset).
        self.kcompactd: Kcompactd | None = None
        if machine.config.kcompactd:
            self.kcompactd = Kcompactd(env, self)
            env.process(self.kcompactd.run())

    # --- helpers ------------------------------------------------------------------------------
    def sync(self) -> None:
        """Give the core the simulated time (writeback completes against it)."""
        self.machine.now = float(self.env.now)

    def stream(self, name: str) -> np.random.Generator:
        return self.streams.get(name)

    def event(self, name: str, source: str = "", **fields: Any) -> None:
        self.recorder.event(self.env.now, name, source, **fields)

    def register_owner(self, lo: int, hi: int, reclaimed: Handler | None,
                       migrated: Handler | None) -> None:
        if lo >= hi:
            raise ValueError(f"owner range [{lo}, {hi}) is empty")
        for a, b, _, _ in self._owners:
            if lo < b and a < hi:
                raise ValueError(f"owner range [{lo}, {hi}) overlaps [{a}, {b})")
        self._owners.append((lo, hi, reclaimed, migrated))

    def drain(self) -> None:
        """Hand reclaimed and migrated rows to their owners (call after reclaim/compaction)."""
        mig, rec = self.machine.take_notifications()
        if not (mig.shape[0] or rec.shape[0]):
            return
        for lo, hi, on_rec, on_mig in self._owners:
            if on_rec is not None and rec.shape[0]:
                sel = (rec[:, 1] >= lo) & (rec[:, 1] < hi)
                if sel.any():
                    on_rec(rec[sel])
            if on_mig is not None and mig.shape[0]:
                sel = (mig[:, 2] >= lo) & (mig[:, 2] < hi)
                if sel.any():
                    on_mig(mig[sel])

    def drain_extfrag(self, source: str = "") -> None:
        """Copy new `mm_page_alloc_extfrag` events from the node's ring to the recorder."""
        nd = self.machine.node[0]
        count = int(nd["extfrag_count"])
        new = count - self._extfrag_seen
        if new <= 0:
            return
        if new > EXTFRAG_RING:
            self.extfrag_lost += new - EXTFRAG_RING
            new = EXTFRAG_RING
        idx = np.arange(count - new, count) % EXTFRAG_RING
        self.recorder.extfrag(self.env.now, nd["extfrag"][idx], source)
        self._extfrag_seen = count

    def wake_kswapd(self, order: int, high_zone: int) -> None:
        """`wake_all_kswapds()` for the zonelist, and make the kswapd process runnable."""
        slowpath.wake_all_kswapds(self.machine, order, high_zone)
        self.kswapd.kick()

    def boost_wakeups(self) -> None:
        """6.1 `rmqueue()`'s wake-up of kswapd for a zone with ZONE_BOOSTED_WATERMARK: the
        compiled core left it in `node['boost_wake']` (`slowpath.boost_wakeups`)."""
        if self.machine.node[0]["boost_wake"] and slowpath.boost_wakeups(self.machine):
            self.kswapd.kick()

    # --- allocation ---------------------------------------------------------------------------
    def alloc(self, n: int, order: int, gfp: int, owners: np.ndarray | int, kind: int, *,
              lru: int = LRU_NONE, dirty: bool = False,
              on_alloc: Callable[[np.ndarray, np.ndarray], None] | None = None,
              source: str = "") -> Generator[simpy.Event, Any, np.ndarray]:
        """Allocate `n` blocks of `order` for `owners` (one id, or one per block) as the module
        docstring describes; returns their pfns, -1 where an allocation failed."""
        m = self.machine
        m.check_order(order)
        high_zone, mt = m.resolve(int(gfp))
        gfp = int(gfp)
        if isinstance(owners, np.ndarray):
            own = np.ascontiguousarray(owners, dtype=np.int64)
        else:
            own = np.full(n, owners, np.int64)
        out = np.full(n, -1, np.int64)
        wait = bool(gfp & _WAIT)
        low_flags = ALLOC_WMARK_LOW | alloc_flags_nofragment(m.zones, m.node, high_zone, gfp)
        min_flags = ALLOC_WMARK_MIN | (0 if wait else ALLOC_HARDER) \
            | (ALLOC_HIGH if gfp & _HIGH else 0) | alloc_flags_kswapd(gfp)
        d = 1 if dirty or kind == KIND_ANON else 0  # anonymous memory is dirty until swapped
        pages, zones, pbt, node = m.pages, m.zones, m.pageblock_type, m.node
        i = 0
        kswapd_tried = False
        while i < n:
            j = int(alloc_until_fail(pages, zones, pbt, node, order, high_zone, mt,
                                     low_flags, own, kind, lru, d, out, i))
            self.boost_wakeups()
            if j > i:
                if on_alloc is not None:
                    on_alloc(out[i:j], np.arange(i, j))
                i = j
                kswapd_tried = False
                continue
            self.wake_kswapd(order, high_zone)
            if not kswapd_tried:
                kswapd_tried = True
                yield self.env.timeout(0)  # kswapd runs now, before this request goes on
                continue
            j = int(alloc_until_fail(pages, zones, pbt, node, order, high_zone, mt, min_flags,
                                     own, kind, lru, d, out, i))
            self.boost_wakeups()
            if j > i:
                if on_alloc is not None:
                    on_alloc(out[i:j], np.arange(i, j))
                i = j
                continue
            if not wait:
                break
            # Below MIN: one page through the whole slow path (direct reclaim/compaction).
            self.sync()
            attempt = slowpath.alloc_pages(m, order, int(gfp), owner=int(own[i]), kind=kind)
            self.direct_reclaims += attempt.reclaim_rounds
            self.drain()
            slowpath.boost_wakeups(m)
            if m.kswapd_order and max(m.kswapd_order) >= 0:
                self.kswapd.kick()
            if attempt.success:
                # The core's slow path does not know the LRU: add the page as the bulk path does.
                out[i] = attempt.pfn
                if lru >= 0 and order == 0:
                    one = out[i:i + 1]
                    lru_add_batch(pages, zones, one, np.array([lru], np.int64))
                    if d:
                        set_dirty_batch(pages, one, True)
                if on_alloc is not None:
                    on_alloc(out[i:i + 1], np.arange(i, i + 1))
                i += 1
            else:
                i += 1  # alloc_pages counted this failure
                count_failures(node, order, n - i)
                self._failed(order, gfp, n - i + 1, source)
                i = n
            if attempt.stall_s > 0:
                self.stall_s += attempt.stall_s
                yield self.env.timeout(attempt.stall_s)
        if i < n:  # cannot sleep, and MIN failed: every remaining allocation fails
            count_failures(node, order, n - i)
            self._failed(order, gfp, n - i, source)
        self.drain_extfrag(source)
        return out

    def _failed(self, order: int, gfp: int, nr: int, source: str) -> None:
        """`warn_alloc_failed()`: "page allocation failure. order:N, mode:0x..." as an event."""
        self.event("page_allocation_failure", source, order=order, value=float(nr),
                   detail=f"mode:{int(gfp):#x}")

    def free(self, pfns: np.ndarray) -> None:
        if len(pfns):
            self.machine.free_batch(np.asarray(pfns, np.int64))

    def free_lru(self, pfns: np.ndarray) -> None:
        if len(pfns):
            reclaim.free_lru_pages(self.machine, np.asarray(pfns, np.int64))

    # --- slab ---------------------------------------------------------------------------------
    def slab_cache(self, name: str, objs_per_page: int, reclaimable: bool) -> SlabCache:
        return kmem_cache_create(self.machine, name, objs_per_page, reclaimable=reclaimable)

    def slab_alloc(self, cache: SlabCache, n: int, source: str = "",
                   gfp: int = int(GFP_KERNEL)) -> Generator[simpy.Event, Any, np.ndarray]:
        """`kmem_cache_alloc(cache, gfp)` x n: held slabs first; new slab pages through the fast
        path at LOW, then (after kswapd ran) at MIN, then, if `gfp` may sleep, direct reclaim
        rounds while the policy's retry rule says so (`AllocRetry.order0_retry`; at most
        `MAX_RETRY_ROUNDS`) and (6.15 with defrag_mode) one try without ALLOC_NOFRAGMENT.
        Returns the object handles, -1 where no page could be had."""
        m = self.machine
        nd = m.node[0]
        out = np.full(n, -1, np.int64)
        todo = np.arange(n)
        gfp = int(gfp)
        wait = bool(gfp & _WAIT)
        high_zone, _ = m.resolve(None, cache.migratetype)
        retry = slowpath.ALLOC_RETRY_RULES[m.policy.alloc_retry]
        retry_state = retry.new_state()
        low_flags = ALLOC_WMARK_LOW | alloc_flags_nofragment(m.zones, m.node, high_zone, gfp)
        min_flags = ALLOC_WMARK_MIN | (0 if wait else ALLOC_HARDER) \
            | (ALLOC_HIGH if gfp & _HIGH else 0) | alloc_flags_kswapd(gfp)
        for step in range(2 + slowpath.MAX_RETRY_ROUNDS):
            fails, fail0 = int(nd["stat"][_S_ALLOC_FAIL]), int(nd["fail_order"][0])
            got = cache.alloc(m, int(todo.shape[0]), low_flags if step == 0 else min_flags)
            self.boost_wakeups()
            # Attempts that the slow path follows up are not failures of their own.
            nd["stat"][_S_ALLOC_FAIL] = fails
            nd["fail_order"][0] = fail0
            out[todo] = got
            todo = todo[got < 0]
            if todo.shape[0] == 0:
                break
            if step == 0:
                self.wake_kswapd(0, high_zone)
                yield self.env.timeout(0)
                continue
            if not wait:
                break
            self.sync()
            freed = reclaim.try_to_free_pages(m, 0, gfp, high_zone)
            self.direct_reclaims += 1
            self.drain()
            # The policy's retry decision at order 0 (6.1: should_reclaim_retry).
            if not retry.order0_retry(m, gfp, high_zone, cache.migratetype, min_flags, int(freed),
                                      retry_state):
                break
        if todo.shape[0] and wait:
            # 6.15 defrag_mode: "Reclaim/compaction failed to prevent the fallback": once more
            # without ALLOC_NOFRAGMENT before failing (`AllocRetry615.defrag_fallback`).
            retry = slowpath.ALLOC_RETRY_RULES[m.policy.alloc_retry]
            flags = retry.defrag_fallback(m, gfp, 0, min_flags)
            if flags is not None:
                fails, fail0 = int(nd["stat"][_S_ALLOC_FAIL]), int(nd["fail_order"][0])
                got = cache.alloc(m, int(todo.shape[0]), flags)
                nd["stat"][_S_ALLOC_FAIL] = fails
                nd["fail_order"][0] = fail0
                out[todo] = got
                todo = todo[got < 0]
        if todo.shape[0]:
            count_failures(m.node, 0, int(todo.shape[0]))
            self._failed(0, gfp, int(todo.shape[0]), source)
        self.drain_extfrag(source)
        return out

    def alloc_pages(self, order: int, gfp: int, owner: int, kind: int,
                    source: str = "") -> Generator[simpy.Event, Any, int]:
        """One `alloc_pages(gfp, order)` exactly as the core's slow path runs it (no batching):
        for probes that must behave like a single kernel call. Returns the pfn or -1."""
        self.sync()
        attempt = slowpath.alloc_pages(self.machine, order, int(gfp), owner=owner, kind=kind)
        self.direct_reclaims += attempt.reclaim_rounds
        self.drain()
        slowpath.boost_wakeups(self.machine)
        self.kswapd.kick()
        self.drain_extfrag(source)
        if attempt.stall_s > 0:
            self.stall_s += attempt.stall_s
            yield self.env.timeout(attempt.stall_s)
        return int(attempt.pfn)

    def thp_fault(self, owner: int, madvised: bool,
                  source: str = "") -> Generator[simpy.Event, Any, int]:
        """The huge page allocation of one anonymous fault on an aligned 2 MiB extent (6.1
        `do_huge_pmd_anonymous_page`): one order-`pageblock_order` (HPAGE_PMD_ORDER, 9 on
        x86_64) MOVABLE allocation with the mask `vma_thp_gfp_mask` gives for the machine's
        defrag setting; counts `thp_fault_alloc` or `thp_fault_fallback`. Returns the pfn, or
        -1 when the caller falls back to order-0 pages.

        With __GFP_WAIT (direct reclaim) it is one `slowpath.alloc_pages` call, so direct
        compaction (on a preset that has it) and direct reclaim run and their stall is waited.
        Without it: the freelists at LOW, then (waking kswapd unless __GFP_NO_KSWAPD) at MIN,
        never ALLOC_HARDER (2.6.38+ `gfp_to_alloc_flags` gives a __GFP_NOMEMALLOC request no
        ALLOC_HARDER). __GFP_NOWARN: a failure is no `page_allocation_failure` event, but it
        counts in `alloc_fail` and `allocfail_order_9` like every failed request. The block is
        not put on the LRU (model limit: a THP is neither reclaimed, split nor migrated)."""
        m = self.machine
        cfg = m.config
        order = m.pageblock_order
        gfp = int(vma_thp_gfp_mask(cfg.thp_defrag, madvised))
        high_zone, mt = m.resolve(gfp)
        nd = m.node[0]
        self.sync()
        if gfp & _WAIT:
            saved = list(m.kswapd_order)
            attempt = slowpath.alloc_pages(m, order, gfp, owner=owner, kind=KIND_ANON)
            if gfp & _NO_KSWAPD:
                # 2.6.24's slow path always wakes kswapd; GFP_TRANSHUGE does not (no
                # __GFP_KSWAPD_RECLAIM), so its wake-up record is undone.
                m.kswapd_order = saved
            slowpath.boost_wakeups(m)  # rmqueue's wake-up needs no __GFP_KSWAPD_RECLAIM
            self.direct_reclaims += attempt.reclaim_rounds
            self.drain()
            if max(m.kswapd_order, default=-1) >= 0:
                self.kswapd.kick()
            pfn = int(attempt.pfn)
            if attempt.stall_s > 0:
                self.stall_s += attempt.stall_s
                yield self.env.timeout(attempt.stall_s)
        else:
            low_flags = ALLOC_WMARK_LOW | alloc_flags_nofragment(m.zones, m.node, high_zone, gfp)
            pfn = m.alloc_request(order, high_zone, mt, low_flags, owner, KIND_ANON)
            self.boost_wakeups()
            if pfn < 0:
                # Only the request's final failure counts (as `slowpath._attempt` does).
                nd["stat"][_S_ALLOC_FAIL] -= 1
                nd["fail_order"][order] -= 1
                if not gfp & _NO_KSWAPD:
                    self.wake_kswapd(order, high_zone)
                pfn = m.alloc_request(order, high_zone, mt,
                                      ALLOC_WMARK_MIN | alloc_flags_kswapd(gfp), owner,
                                      KIND_ANON)
                self.boost_wakeups()
        if pfn >= 0:
            # Anonymous memory is dirty until swapped out (`Kernel.alloc` does the same).
            set_dirty_batch(m.pages, np.array([pfn], np.int64), True)
            nd["stat"][_S_THP_FAULT_ALLOC] += 1
        else:
            nd["stat"][_S_THP_FAULT_FALLBACK] += 1
        self.drain_extfrag(source)
        return pfn

    def drop_caches(self, mode: int) -> int:
        """`echo mode > /proc/sys/vm/drop_caches` (2.6.24 `fs/drop_caches.c`)."""
        self.sync()
        freed = int(reclaim.drop_caches(self.machine, mode))
        self.drain()
        return freed

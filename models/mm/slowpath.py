"""The allocation slow path: 2.6.24 `__alloc_pages()`, with 2.6.35 direct compaction when enabled.

1. `get_page_from_freelist` at the LOW watermark (the fast path), with 6.1's
   `alloc_flags_nofragment` (ALLOC_KSWAPD, ALLOC_NOFRAGMENT; 5.0+, `models.mm.boost`).
2. Wake kswapd for every zone of the zonelist (`wakeup_kswapd`): recorded in `m.kswapd_order`;
   whoever drives time (the SimPy kswapd daemon, or a probe between its steps) runs
   `run_kswapd`, which calls reclaim's `balance_pgdat`.
3. Retry at MIN, with ALLOC_HARDER for callers that cannot sleep and ALLOC_HIGH for __GFP_HIGH
   (and ALLOC_KSWAPD unless __GFP_NO_KSWAPD, as 6.1 `gfp_to_alloc_flags`; no ALLOC_NOFRAGMENT).
4. The rest is the policy's retry rule's `slowpath` (`ALLOC_RETRY_RULES[m.policy.alloc_retry]`):
   6.1 (`AllocRetry61`) runs 6.1's own `__alloc_pages_slowpath` loop, `models.mm.slowpath_6_1`;
   2.6.24 and 2.6.35 run steps 5-8 here.
5. A caller that cannot sleep (no __GFP_WAIT) fails here.
6. With compaction (2.6.35 `__alloc_pages_direct_compact`): for order > 0 unless deferred,
   `try_to_compact_pages`, drain the per-cpu lists, retry; on failure `defer_compaction`.
7. Direct reclaim (`try_to_free_pages`), drain per-cpu lists for order > 0, retry if progress.
8. Retry from 6 while the retry rule says so. 2.6.24 `__alloc_pages()`: order <=
   PAGE_ALLOC_COSTLY_ORDER, or __GFP_REPEAT, or __GFP_NOFAIL; __GFP_NORETRY never. So a huge
   page request gets one round. 2.6.35 `should_alloc_retry()`: the same, except that a costly
   order with __GFP_REPEAT retries only while the pages reclaimed over the call
   (`pages_reclaimed += did_some_progress`) are fewer than `1 << order`.

Simplifications (also in the README): there is no OOM killer, so a low-order request that
makes no progress fails instead of killing a task and restarting; and every retry loop is capped
at `MAX_RETRY_ROUNDS` rounds (2.6.24 would loop for ever on __GFP_REPEAT/__GFP_NOFAIL); under
6.15's defrag_mode a capped request gets the last retry without ALLOC_NOFRAGMENT first.
`congestion_wait(WRITE, HZ/50)` between rounds is counted, not slept: the caller turns
`AllocAttempt.congestion_waits` into simulated stall time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fragsim.models.mm.boost import alloc_flags_kswapd, alloc_flags_nofragment
from fragsim.models.mm.constants import (
    ALLOC_FRAGMENT_OK,
    ALLOC_HARDER,
    ALLOC_HIGH,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MIN,
    KIND_NONE,
    PAGE_ALLOC_COSTLY_ORDER,
)
from fragsim.models.mm.gfp import GFP
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.state import STAT

__all__ = [
    "ALLOC_RETRY_RULES",
    "CONGESTION_WAIT_S",
    "MAX_RETRY_ROUNDS",
    "RECLAIM_CONGESTION_WAIT_S",
    "AllocAttempt",
    "AllocRetry",
    "AllocRetry2624",
    "AllocRetry2635",
    "AllocRetry61",
    "AllocRetry615",
    "alloc_pages",
    "boost_wakeups",
    "kswapd_highest_zoneidx",
    "run_kswapd",
    "wake_all_kswapds",
    "wakeup_kswapd",
]

#: `congestion_wait(WRITE, HZ/50)`: 20 ms of simulated time per wait.
CONGESTION_WAIT_S = 0.02
#: `congestion_wait(WRITE, HZ/10)` in `try_to_free_pages`: 100 ms.
RECLAIM_CONGESTION_WAIT_S = 0.1
#: Cap on slow-path rounds (the kernel has none for __GFP_REPEAT/__GFP_NOFAIL in 2.6.24).
MAX_RETRY_ROUNDS = 16

# COMPACT_SKIPPED in 2.6.35 mm/compaction.c: compaction did not run.
_COMPACT_SKIPPED = 0


class AllocRetry:
    """A slow path's answers after the attempt at MIN failed: what counts as progress, whether
    to go round again, and (`slowpath`) the loop itself. Subclasses follow one kernel each."""

    def did_some_progress(self, nr_reclaimed: int, ret: int) -> int:
        """`try_to_free_pages()`'s return, from the pages reclaimed and the 2.6.24 return
        (`ret`: 1 on the reclaim target, or when some zone was not all_unreclaimable)."""
        raise NotImplementedError

    def should_alloc_retry(self, gfp: int, order: int, pages_reclaimed: int) -> bool:
        """Whether to retry; `pages_reclaimed` is the sum of did_some_progress so far."""
        raise NotImplementedError

    def new_state(self) -> object:
        """Loop state for `order0_retry` across one batched request's rounds."""
        return None

    def order0_retry(self, m: Machine, gfp: int, high_zone: int, mt: int, alloc_flags: int,
                     nr_reclaimed: int, state: object) -> bool:
        """After a round of direct reclaim for an order-0 batch (`Kernel.slab_alloc`): go round
        again? 2.6.24/2.6.35: while reclaim freed pages or `try_to_free_pages` returned 1 (some
        zone not all_unreclaimable)."""
        from fragsim.models.mm.reclaim_state import reclaim_state

        return bool(nr_reclaimed or reclaim_state(m).last_progress)

    def slowpath(self, m: Machine, order: int, gfp: int, high_zone: int, mt: int, owner: int,
                 kind: int, cpu: int, cold: bool, pfn: int, attempt: AllocAttempt) -> int:
        """The rest of the slow path after the attempt at MIN (whose result is `pfn`): the
        2.6.24/2.6.35 loop of direct compaction, direct reclaim and `should_alloc_retry`."""
        return _slowpath_2_6(m, self, order, gfp, high_zone, mt, owner, kind, cpu, cold, pfn,
                             attempt)

    def defrag_fallback(self, m: Machine, gfp: int, order: int, alloc_flags: int) -> int | None:
        """When the slow path is about to give up after `retry_before_failing`: the alloc_flags
        of one more round, or None to give up (6.15's defrag_mode retry). None before 6.15."""
        return None


class AllocRetry2624(AllocRetry):
    """2.6.24 `__alloc_pages()` (`do_retry`) and `try_to_free_pages()`."""

    def did_some_progress(self, nr_reclaimed: int, ret: int) -> int:
        return ret

    def should_alloc_retry(self, gfp: int, order: int, pages_reclaimed: int) -> bool:
        if gfp & GFP.NORETRY:
            return False
        return bool(order <= PAGE_ALLOC_COSTLY_ORDER or gfp & (GFP.REPEAT | GFP.NOFAIL))


class AllocRetry2635(AllocRetry):
    """2.6.35 `should_alloc_retry()` and `do_try_to_free_pages()`'s return."""

    def did_some_progress(self, nr_reclaimed: int, ret: int) -> int:
        # `if (sc->nr_reclaimed) return sc->nr_reclaimed;` then 1 if some zone was not
        # all_unreclaimable (the 2.6.24 value when nothing was reclaimed).
        return nr_reclaimed if nr_reclaimed else ret

    def should_alloc_retry(self, gfp: int, order: int, pages_reclaimed: int) -> bool:
        # Do not loop if specifically requested.
        if gfp & GFP.NORETRY:
            return False
        # order <= PAGE_ALLOC_COSTLY_ORDER means __GFP_NOFAIL in this implementation.
        if order <= PAGE_ALLOC_COSTLY_ORDER:
            return True
        # For a costly order with __GFP_REPEAT, retry until an order of pages at least as large
        # as the allocation's was reclaimed.
        if gfp & GFP.REPEAT and pages_reclaimed < (1 << order):
            return True
        return bool(gfp & GFP.NOFAIL)


class AllocRetry61(AllocRetry):
    """6.1 `__alloc_pages_slowpath`: its own loop (`models.mm.slowpath_6_1`): direct compaction
    first for costly and non-movable high-order requests, `should_reclaim_retry`
    (MAX_RECLAIM_RETRIES, `no_progress_loops`, reclaimable + free against MIN),
    `should_compact_retry` (compaction priorities, MAX_COMPACT_RETRIES), HIGHATOMIC pageblocks
    given back by `__alloc_pages_direct_reclaim` and before failing, __GFP_RETRY_MAYFAIL (the
    model's __GFP_REPEAT bit) and __GFP_NOFAIL. Progress is 6.1's: pages reclaimed only."""

    def did_some_progress(self, nr_reclaimed: int, ret: int) -> int:
        # 6.1 do_try_to_free_pages: sc->nr_reclaimed, else 1 only when reclaim stopped for
        # compaction (compaction_ready, not modelled); "some zone still reclaimable" is gone.
        return nr_reclaimed

    def new_state(self) -> object:
        from fragsim.models.mm.slowpath_6_1 import RetryState

        return RetryState()

    def order0_retry(self, m: Machine, gfp: int, high_zone: int, mt: int, alloc_flags: int,
                     nr_reclaimed: int, state: object) -> bool:
        """6.1 `should_reclaim_retry` at order 0 (progress: pages reclaimed)."""
        from fragsim.models.mm.slowpath_6_1 import RetryState, should_reclaim_retry

        assert isinstance(state, RetryState)
        return should_reclaim_retry(m, 0, alloc_flags, high_zone, mt, nr_reclaimed > 0, state)

    def slowpath(self, m: Machine, order: int, gfp: int, high_zone: int, mt: int, owner: int,
                 kind: int, cpu: int, cold: bool, pfn: int, attempt: AllocAttempt) -> int:
        from fragsim.models.mm.slowpath_6_1 import slowpath_6_1

        return slowpath_6_1(m, order, gfp, high_zone, mt, owner, kind, cpu, cold, pfn, attempt)


class AllocRetry615(AllocRetry61):
    """6.15: 6.1's rules as the model has them (6.15's `__alloc_pages_direct_reclaim` and
    `should_reclaim_retry` give HIGHATOMIC pageblocks back the same way), plus defrag_mode's
    last resort in `__alloc_pages_slowpath`, after `should_reclaim_retry` and
    `should_compact_retry` said no: "Reclaim/compaction failed to prevent the fallback": `if
    (defrag_mode && (alloc_flags & ALLOC_NOFRAGMENT)) { alloc_flags &= ~ALLOC_NOFRAGMENT; goto
    retry; }`. Only requests that get that far: those that may enter direct reclaim (the
    loop's `wait`), not __GFP_NORETRY (`goto nopage` after direct compaction), and a costly
    order only with __GFP_RETRY_MAYFAIL (the model's __GFP_REPEAT)."""

    def defrag_fallback(self, m: Machine, gfp: int, order: int, alloc_flags: int) -> int | None:
        if m.node[0]["defrag_mode"] == 0 or alloc_flags & ALLOC_FRAGMENT_OK:
            return None
        if gfp & GFP.NORETRY:
            return None
        if order > PAGE_ALLOC_COSTLY_ORDER and not gfp & GFP.REPEAT:
            return None
        return alloc_flags | ALLOC_FRAGMENT_OK


#: Retry rules by the name a policy gives (`Policy.alloc_retry`).
ALLOC_RETRY_RULES: dict[str, AllocRetry] = {
    "2.6.24": AllocRetry2624(),
    "2.6.35": AllocRetry2635(),
    "6.1": AllocRetry61(),
    "6.15": AllocRetry615(),
}


@dataclass
class AllocAttempt:
    """What one `alloc_pages` call did, for latency reports (mmtests reports the same)."""

    pfn: int = -1
    order: int = 0
    fast_path: bool = False
    reclaim_rounds: int = 0
    nr_reclaimed: int = 0
    compaction_runs: int = 0
    congestion_waits: int = 0
    reclaim_congestion_waits: int = 0
    wall_s: float = 0.0

    @property
    def success(self) -> bool:
        return self.pfn >= 0

    @property
    def stall_s(self) -> float:
        """Simulated time the caller waited: the allocator's HZ/50 naps between rounds and
        direct reclaim's HZ/10 naps."""
        return (self.congestion_waits * CONGESTION_WAIT_S
                + self.reclaim_congestion_waits * RECLAIM_CONGESTION_WAIT_S)


def _attempt(m: Machine, order: int, high_zone: int, mt: int, alloc_flags: int, owner: int,
             kind: int, cpu: int = 0, cold: bool = False) -> int:
    """`get_page_from_freelist` + `prep_new_page`, without counting a failure (only the whole
    slow path's failure counts as an allocation failure)."""
    nd = m.node[0]
    pfn = m.alloc_request(order, high_zone, mt, alloc_flags, owner, kind, cpu, cold)
    if pfn < 0:
        nd["stat"][STAT["alloc_fail"]] -= 1
        nd["fail_order"][order] -= 1
    return pfn


def wakeup_kswapd(m: Machine, order: int, high_zone: int) -> None:
    """2.6.24 `wakeup_kswapd()` for each zone of the zonelist: remember the highest order asked.

    The kernel wakes kswapd only for a zone below its LOW watermark; `balance_pgdat` checks
    every zone at HIGH anyway, so recording the order is enough.
    """
    for z in range(high_zone, -1, -1):
        if m.zones[z]["present_pages"] > 0:
            m.kswapd_order[z] = max(m.kswapd_order[z], order)


def wake_all_kswapds(m: Machine, order: int, high_zone: int) -> None:
    """The slow path's `wake_all_kswapds()`: `wakeup_kswapd` for the zonelist, for `order`, or
    under 6.15's defrag_mode for `max(order, pageblock_order)` ("reclaim_order";
    `models.mm.defrag_mode.wake_all_kswapds_order`)."""
    from fragsim.models.mm.defrag_mode import wake_all_kswapds_order

    wakeup_kswapd(m, wake_all_kswapds_order(order, m.pageblock_order, m.config.defrag_mode),
                  high_zone)


def boost_wakeups(m: Machine) -> bool:
    """The Python half of 6.1 `rmqueue()`'s "if (test_bit(ZONE_BOOSTED_WATERMARK, ...))":
    for each zone whose flag the compiled `rmqueue_zone` cleared since the last call (bits of
    `node['boost_wake']`), `wakeup_kswapd(zone, 0, 0, zone_idx(zone))`. Whether it woke
    kswapd. `alloc_pages` leaves the record for its caller, which drives time and makes the
    kswapd process runnable (`fragsim.sim.kernel.Kernel.boost_wakeups`); `run_kswapd` takes it
    first."""
    nd = m.node[0]
    wake = int(nd["boost_wake"])
    if wake == 0:
        return False
    nd["boost_wake"] = 0
    for z in range(m.zones.shape[0]):
        if wake & (1 << z):
            wakeup_kswapd(m, 0, z)
    return True


def kswapd_highest_zoneidx(m: Machine) -> int:
    """6.1 `pgdat->kswapd_highest_zoneidx`: the highest zone kswapd was woken for (each
    `wakeup_kswapd` records every zone from its zone down), or -1."""
    woken = [z for z, o in enumerate(m.kswapd_order) if o >= 0]
    return max(woken) if woken else -1


def run_kswapd(m: Machine) -> int:
    """Run kswapd once if it was woken (including by a boosted zone, `boost_wakeups`):
    `balance_pgdat` for the highest order asked. With 6.1's kswapd (`Policy.kswapd`), then
    `kswapd_try_to_sleep` as 6.1 `kswapd()` does after a balance: a node it may sleep on gets
    its compaction skip hints reset (`reset_isolation_suitable`) and kcompactd's order
    recorded. Returns pages reclaimed."""
    boost_wakeups(m)
    highest_zoneidx = kswapd_highest_zoneidx(m)
    if highest_zoneidx < 0:
        return 0
    from fragsim.models.mm import reclaim

    order = max(o for o in m.kswapd_order if o >= 0)
    m.kswapd_order = [-1] * len(m.kswapd_order)
    if m.policy.kswapd != "6.1":
        return int(reclaim.balance_pgdat(m, order, highest_zoneidx=highest_zoneidx))
    from fragsim.models.mm.kswapd_6_1 import balance_pgdat_6_1, kswapd_try_to_sleep

    reclaimed, reclaim_order = balance_pgdat_6_1(m, order, highest_zoneidx)
    kswapd_try_to_sleep(m, order, reclaim_order, highest_zoneidx)
    return int(reclaimed)


def _drain_pcp(m: Machine) -> None:
    """`drain_all_pages()`: every cpu's per-cpu lists (no-op with pcp off)."""
    if m.config.pcp:
        from fragsim.models.mm import pcp

        pcp.drain_pages(m)


def _drain_local(m: Machine, cpu: int) -> None:
    """`drain_pages(get_cpu())` / `drain_local_pages(NULL)`: the allocating cpu's lists only."""
    if m.config.pcp:
        from fragsim.models.mm import pcp

        pcp.drain_local_pages(m, cpu)


def _direct_compact(m: Machine, order: int, gfp: int, high_zone: int, mt: int,
                    alloc_flags: int, owner: int, kind: int, cpu: int, cold: bool,
                    attempt: AllocAttempt) -> int:
    """2.6.35 `__alloc_pages_direct_compact()`: `try_to_compact_pages` on the allocating cpu,
    then `drain_pages(get_cpu())` ("Page migration frees to the PCP lists but we want
    merging": that cpu's lists only) and one attempt."""
    from fragsim.models.mm import compaction

    preferred = m.preferred_zone(high_zone)
    if order == 0 or compaction.compaction_deferred(m, preferred):
        return -1
    status = compaction.try_to_compact_pages(m, order, gfp, high_zone, cpu)
    attempt.compaction_runs += 1
    if status == _COMPACT_SKIPPED:
        return -1
    _drain_local(m, cpu)
    pfn = _attempt(m, order, high_zone, mt, alloc_flags, owner, kind, cpu, cold)
    nd = m.node[0]
    if pfn >= 0:
        m.zones[preferred]["compact_considered"] = 0
        m.zones[preferred]["compact_defer_shift"] = 0
        nd["stat"][STAT["compact_success"]] += 1
        return pfn
    nd["stat"][STAT["compact_fail"]] += 1
    compaction.defer_compaction(m, preferred)
    return -1


def alloc_pages(m: Machine, order: int, gfp: int, *, owner: int = 0, kind: int = KIND_NONE,
                migratetype: int | None = None, cpu: int = 0) -> AllocAttempt:
    """Allocate `2^order` pages as the kernel's `__alloc_pages()` would, slow path included.

    `cpu` picks the per-cpu lists (when on); `__GFP_COLD` in `gfp` asks for a cold page."""
    t0 = time.perf_counter()
    attempt = AllocAttempt(order=order)
    high_zone, mt = m.resolve(gfp, migratetype)
    m.check_order(order)
    cold = bool(gfp & GFP.COLD)
    # 6.1 __alloc_pages: alloc_flags = ALLOC_WMARK_LOW | alloc_flags_nofragment(preferred, gfp).
    fast_flags = ALLOC_WMARK_LOW | alloc_flags_nofragment(m.zones, m.node, high_zone, gfp)
    pfn = _attempt(m, order, high_zone, mt, fast_flags, owner, kind, cpu, cold)
    if pfn >= 0:
        attempt.pfn, attempt.fast_path = pfn, True
        attempt.wall_s = time.perf_counter() - t0
        return attempt
    wake_all_kswapds(m, order, high_zone)
    wait = bool(gfp & GFP.WAIT)
    alloc_flags = ALLOC_WMARK_MIN | alloc_flags_kswapd(gfp)
    if not wait:
        alloc_flags |= ALLOC_HARDER
    if gfp & GFP.HIGH:
        alloc_flags |= ALLOC_HIGH
    pfn = _attempt(m, order, high_zone, mt, alloc_flags, owner, kind, cpu, cold)
    retry = ALLOC_RETRY_RULES[m.policy.alloc_retry]
    pfn = retry.slowpath(m, order, gfp, high_zone, mt, owner, kind, cpu, cold, pfn, attempt)
    attempt.pfn = pfn
    if pfn < 0:
        nd = m.node[0]
        nd["stat"][STAT["alloc_fail"]] += 1
        nd["fail_order"][order] += 1
    attempt.wall_s = time.perf_counter() - t0
    return attempt


def _slowpath_2_6(m: Machine, retry: AllocRetry, order: int, gfp: int, high_zone: int, mt: int,
                  owner: int, kind: int, cpu: int, cold: bool, pfn: int,
                  attempt: AllocAttempt) -> int:
    """Steps 5-7 of the module docstring (2.6.24 `__alloc_pages()`, 2.6.35
    `__alloc_pages_slowpath()`), after the attempt at MIN whose result is `pfn`."""
    wait = bool(gfp & GFP.WAIT)
    alloc_flags = ALLOC_WMARK_MIN
    if not wait:
        alloc_flags |= ALLOC_HARDER
    if gfp & GFP.HIGH:
        alloc_flags |= ALLOC_HIGH
    pages_reclaimed = 0
    rounds = 0
    while pfn < 0 and wait and rounds < MAX_RETRY_ROUNDS:
        rounds += 1
        if m.config.compaction:
            pfn = _direct_compact(m, order, gfp, high_zone, mt, alloc_flags, owner, kind, cpu,
                                  cold, attempt)
            if pfn >= 0:
                break
        from fragsim.models.mm import reclaim
        from fragsim.models.mm.reclaim_state import reclaim_state

        rs = reclaim_state(m)
        naps = rs.congestion_waits
        reclaimed = int(reclaim.try_to_free_pages(m, order, gfp, high_zone))
        # did_some_progress: pages reclaimed, or some zone not yet all_unreclaimable.
        progress = retry.did_some_progress(reclaimed, rs.last_progress)
        attempt.reclaim_rounds += 1
        attempt.nr_reclaimed += reclaimed
        attempt.reclaim_congestion_waits += rs.congestion_waits - naps
        if order != 0:
            _drain_pcp(m)  # __alloc_pages_direct_reclaim: drain_all_pages()
        if progress:
            pfn = _attempt(m, order, high_zone, mt, alloc_flags, owner, kind, cpu, cold)
            if pfn >= 0:
                break
        elif gfp & GFP.FS and not gfp & GFP.NORETRY:
            # No progress: the OOM killer does not help orders above PAGE_ALLOC_COSTLY_ORDER
            # (nopage), and for lower orders the model has no OOM killer: fail too.
            break
        pages_reclaimed += progress
        if not retry.should_alloc_retry(gfp, order, pages_reclaimed):
            break
        attempt.congestion_waits += 1
    return pfn

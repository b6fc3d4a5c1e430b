"""The 6.1 slow path: `__alloc_pages_slowpath` with its two retry loops, and 6.1 direct compaction
(`mm/page_alloc.c`, `mm/compaction.c`,
`include/linux/compaction.h` of 6.1.y, read at unifreq/linux-6.1.y 07badeaa).

`AllocRetry61.slowpath` (models.mm.slowpath) runs `slowpath_6_1` after the fast path failed,
kswapd was woken and the attempt at MIN failed, in 6.1's order:

1. costly orders, and order > 0 requests that are not MOVABLE, first try
   `__alloc_pages_direct_compact` at COMPACT_PRIO_ASYNC (INIT_COMPACT_PRIORITY); a costly
   `__GFP_NORETRY` request (THP faults with defrag `always` outside MADV_HUGEPAGE regions) then
   fails at once if compaction was SKIPPED or DEFERRED, and otherwise keeps ASYNC;
2. `retry:` `get_page_from_freelist`; a request that cannot sleep fails;
3. `__alloc_pages_direct_reclaim`: `try_to_free_pages` (progress: pages reclaimed); with
   progress, an attempt, and if it fails `unreserve_highatomic_pageblock(ac, false)`,
   `drain_all_pages` and one more attempt;
4. `__alloc_pages_direct_compact` at the current priority (DEF_COMPACT_PRIORITY, SYNC_LIGHT);
5. `__GFP_NORETRY` fails; a costly order fails unless it has `__GFP_RETRY_MAYFAIL` (the model's
   `__GFP_REPEAT` bit, which 4.13 renamed) and compaction is allowed;
6. `should_reclaim_retry`: `no_progress_loops` is reset by progress for orders <=
   PAGE_ALLOC_COSTLY_ORDER and counts up otherwise; past MAX_RECLAIM_RETRIES (16) no retry;
   else retry if some zone would pass `__zone_watermark_ok(order, min, highest_zoneidx,
   alloc_flags, reclaimable + free)`. When it says no, `unreserve_highatomic_pageblock(ac,
   true)` decides ("Before OOM, exhaust highatomic_reserve");
7. with progress and compaction allowed, `should_compact_retry`: COMPACT_SUCCESS counts a
   `compaction_retries` (at most MAX_COMPACT_RETRIES, a quarter of it for costly orders);
   COMPACT_COMPLETE (`compaction_failed`) and DEFERRED/PARTIAL_SKIPPED/CONTENDED
   (`compaction_withdrawn`) raise the priority (SYNC_LIGHT for costly orders, SYNC_FULL for
   the rest, resetting the retries); SKIPPED retries while `compaction_zonelist_suitable`;
8. `__alloc_pages_may_oom`: the model has no OOM killer, so it frees nothing; a __GFP_NOFAIL
   request of order <= 3 without __GFP_RETRY_MAYFAIL whose zonelist reaches ZONE_NORMAL gets
   its ALLOC_NO_WATERMARKS attempt there (the WARN_ON_ONCE_GFP branch) and retries;
9. `nopage`: a __GFP_NOFAIL request tries ALLOC_MIN_RESERVE (`__alloc_pages_cpuset_fallback`)
   and goes round again; anything else fails.

6.1 direct compaction (`try_to_compact_pages`, `compact_zone_order`, `compaction_suitable`,
`compaction_deferred`/`defer_compaction`/`compaction_defer_reset` with `compact_order_failed`)
runs 6.1's scanners (`models.mm.compaction_6_1.compact_zone`, direct_compaction set):

- COMPACT_PRIO_ASYNC: MIGRATE_ASYNC (migration sources only from pageblocks of the request's
  type, `skip_on_failure`, the free scanner's stride); never defers;
- COMPACT_PRIO_SYNC_LIGHT: MIGRATE_SYNC_LIGHT; a COMPLETE or PARTIAL_SKIPPED zone is deferred;
- COMPACT_PRIO_SYNC_FULL (MIN_COMPACT_PRIORITY): MIGRATE_SYNC_LIGHT with `whole_zone`,
  `ignore_skip_hint` and `ignore_block_suitable`; ignores deferral.

Below MIGRATE_SYNC no mode isolates a page under writeback. A successful allocation after
compaction clears the zone's `compact_blockskip_flush`. The __GFP_FS of the request decides
whether file pages may be isolated.

Simplified (also in the README): no page capture (`capture_control`) or lock contention. No
`congestion_wait` between rounds (6.1 has none: reclaim throttles itself), and
`zone_reclaimable_pages` counts every LRU page while swap has free slots, else every non-anon
one (the model has one LRU pair). `SAFETY_ROUNDS` caps the loop (a __GFP_NOFAIL request that
can never succeed would loop for ever).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.mm import compaction, kcompactd
from fragsim.models.mm.compaction_6_1 import (
    COMPACT_COMPLETE,
    COMPACT_CONTENDED,
    COMPACT_CONTINUE,
    COMPACT_DEFERRED,
    COMPACT_PARTIAL_SKIPPED,
    COMPACT_SKIPPED,
    COMPACT_SUCCESS,
    MIGRATE_ASYNC,
    MIGRATE_SYNC_LIGHT,
)
from fragsim.models.mm.compaction_6_1 import compact_zone as compact_zone_6_1
from fragsim.models.mm.constants import (
    ALLOC_HARDER,
    ALLOC_HIGH,
    ALLOC_NO_WATERMARKS,
    ALLOC_WMARK_MIN,
    KIND_ANON,
    MIGRATE_MOVABLE,
    PAGE_ALLOC_COSTLY_ORDER,
    PG_LRU,
    WMARK_MIN,
    ZONE_NORMAL,
)
from fragsim.models.mm.gfp import GFP
from fragsim.models.mm.kcompactd import (
    compaction_defer_reset,
    compaction_deferred,
    defer_compaction,
    watermark_ok_free,
)
from fragsim.models.mm.state import KIND_SHIFT, STAT

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine
    from fragsim.models.mm.slowpath import AllocAttempt

__all__ = [
    "COMPACT_COMPLETE",
    "COMPACT_CONTENDED",
    "COMPACT_CONTINUE",
    "COMPACT_DEFERRED",
    "COMPACT_PARTIAL_SKIPPED",
    "COMPACT_PRIO_ASYNC",
    "COMPACT_PRIO_SYNC_FULL",
    "COMPACT_PRIO_SYNC_LIGHT",
    "COMPACT_SKIPPED",
    "COMPACT_SUCCESS",
    "MAX_COMPACT_RETRIES",
    "MAX_RECLAIM_RETRIES",
    "SAFETY_ROUNDS",
    "RetryState",
    "compaction_suitable",
    "compaction_zonelist_suitable",
    "should_compact_retry",
    "should_reclaim_retry",
    "slowpath_6_1",
    "try_to_compact_pages",
    "zone_reclaimable_pages",
]

# enum compact_priority (6.1 include/linux/compaction.h): lower is harder.
COMPACT_PRIO_SYNC_FULL = 0
MIN_COMPACT_PRIORITY = COMPACT_PRIO_SYNC_FULL
COMPACT_PRIO_SYNC_LIGHT = 1
MIN_COMPACT_COSTLY_PRIORITY = COMPACT_PRIO_SYNC_LIGHT
DEF_COMPACT_PRIORITY = COMPACT_PRIO_SYNC_LIGHT
COMPACT_PRIO_ASYNC = 2
INIT_COMPACT_PRIORITY = COMPACT_PRIO_ASYNC

#: 6.1 mm/internal.h: no-progress rounds before should_reclaim_retry gives up.
MAX_RECLAIM_RETRIES = 16
#: 6.1 mm/page_alloc.c: compaction retries with progress before the OOM path.
MAX_COMPACT_RETRIES = 16
#: The model's cap on `retry:` rounds (6.1 has none; __GFP_NOFAIL loops for ever).
SAFETY_ROUNDS = 1000

_S_STALL = STAT["compact_stall"]
_S_FAIL = STAT["compact_fail"]
_S_SUCCESS = STAT["compact_success"]
_S_DEFERRED = STAT["compact_deferred"]


class RetryState:
    """The loop state `__alloc_pages_slowpath` keeps across `retry:` (6.1 locals)."""

    def __init__(self) -> None:
        self.compaction_retries = 0
        self.no_progress_loops = 0
        self.compact_result = COMPACT_SKIPPED
        self.compact_priority = DEF_COMPACT_PRIORITY


def _zonelist(m: Machine, high_zone: int) -> list[int]:
    return [z for z in range(high_zone, -1, -1) if m.zones[z]["present_pages"] > 0]


def zone_reclaimable_pages(m: Machine, z: int) -> int:
    """6.1 mm/vmscan.c `zone_reclaimable_pages`: the file LRU pages, and the anon ones when
    `can_reclaim_anon_pages` (swap has free slots). The model's LRU pair holds both kinds, so
    without free swap the anonymous pages on it are counted out of the page array."""
    zone = m.zones[z]
    nr = int(zone["nr_lru"].sum())
    if int(m.node[0]["nr_swap_pages"]) > 0 or nr == 0:
        return nr
    span = m.pages[int(zone["start_pfn"]):int(zone["end_pfn"])]
    anon = ((span["flags"] & PG_LRU) != 0) & ((span["mt"] >> KIND_SHIFT) == KIND_ANON)
    return nr - int(np.count_nonzero(anon))


# --- 6.1 mm/compaction.c --------------------------------------------------------------------
def _compaction_deferred(m: Machine, z: int, order: int) -> bool:
    """6.1 `compaction_deferred(zone, order)` (`models.mm.kcompactd`); counts fragsim's
    `compact_deferred` on a skip."""
    if not compaction_deferred(m, z, order):
        return False
    m.node[0]["stat"][_S_DEFERRED] += 1
    return True


#: 6.1 `defer_compaction` and `compaction_defer_reset`, shared with kcompactd.
_defer_compaction = defer_compaction
_compaction_defer_reset = compaction_defer_reset


def compaction_zonelist_suitable(m: Machine, order: int, alloc_flags: int,
                                 high_zone: int) -> bool:
    """6.1 `compaction_zonelist_suitable`: would some zone pass `__compaction_suitable` with
    its free pages plus `zone_reclaimable_pages / order`?"""
    zl = _zonelist(m, high_zone)
    classzone = zl[0] if zl else high_zone
    for z in zl:
        available = zone_reclaimable_pages(m, z) // order + int(m.zones[z]["free_pages"])
        if kcompactd.compaction_suitable_free(m, z, order, alloc_flags, classzone,
                                              available) == compaction.COMPACT_CONTINUE:
            return True
    return False


def compaction_suitable(m: Machine, z: int, order: int, alloc_flags: int,
                        classzone: int) -> int:
    """6.1 `compaction_suitable` (`models.mm.kcompactd.compaction_suitable`) in 6.1's enum:
    COMPACT_SKIPPED, COMPACT_CONTINUE or COMPACT_SUCCESS."""
    return kcompactd.SUITABLE_6_1[kcompactd.compaction_suitable(m, z, order, alloc_flags,
                                                                classzone)]


def _compact_zone_order(m: Machine, z: int, order: int, mt: int, prio: int, alloc_flags: int,
                        classzone: int, cpu: int, fs: bool) -> int:
    """6.1 `compact_zone_order`: `compaction_suitable`, then `compact_zone`
    (`models.mm.compaction_6_1`) as a direct compaction at MIGRATE_ASYNC for
    COMPACT_PRIO_ASYNC and MIGRATE_SYNC_LIGHT otherwise; MIN_COMPACT_PRIORITY (SYNC_FULL) also
    compacts the whole zone and ignores skip hints and block suitability."""
    ret = compaction_suitable(m, z, order, alloc_flags, classzone)
    if ret in (COMPACT_SUCCESS, COMPACT_SKIPPED):
        return ret
    full = prio == MIN_COMPACT_PRIORITY
    return compact_zone_6_1(m, z, order, mt, MIGRATE_ASYNC if prio == COMPACT_PRIO_ASYNC
                            else MIGRATE_SYNC_LIGHT, direct=True, whole_zone=full,
                            ignore_skip_hint=full, ignore_block_suitable=full, fs=fs, cpu=cpu,
                            highest_zoneidx=classzone)


def try_to_compact_pages(m: Machine, order: int, gfp: int, alloc_flags: int, high_zone: int,
                         mt: int, prio: int, cpu: int = 0) -> int:
    """6.1 `try_to_compact_pages`: each zone of the zonelist, deferred ones skipped unless at
    COMPACT_PRIO_SYNC_FULL; stop at the first COMPACT_SUCCESS; a sync run that scanned a zone
    without success defers it. Returns the highest COMPACT_* result."""
    rc = COMPACT_SKIPPED
    if not gfp & GFP.IO:  # gfp_compaction_allowed
        return rc
    zl = _zonelist(m, high_zone)
    classzone = zl[0] if zl else high_zone
    for z in zl:
        if prio > MIN_COMPACT_PRIORITY and _compaction_deferred(m, z, order):
            rc = max(COMPACT_DEFERRED, rc)
            continue
        status = _compact_zone_order(m, z, order, mt, prio, alloc_flags, classzone, cpu,
                                     bool(gfp & GFP.FS))
        rc = max(status, rc)
        if status == COMPACT_SUCCESS:
            _compaction_defer_reset(m, z, order, False)
            break
        if prio != COMPACT_PRIO_ASYNC and status in (COMPACT_COMPLETE, COMPACT_PARTIAL_SKIPPED):
            _defer_compaction(m, z, order)
    return rc


# --- 6.1 mm/page_alloc.c --------------------------------------------------------------------
def should_reclaim_retry(m: Machine, order: int, alloc_flags: int, high_zone: int, mt: int,
                         did_some_progress: bool, st: RetryState) -> bool:
    """6.1 `should_reclaim_retry` (module docstring, step 6), its HIGHATOMIC last resort
    included."""
    from fragsim.models.mm.highatomic import unreserve_highatomic_pageblock

    if did_some_progress and order <= PAGE_ALLOC_COSTLY_ORDER:
        st.no_progress_loops = 0
    else:
        st.no_progress_loops += 1
    ret = False
    if st.no_progress_loops <= MAX_RECLAIM_RETRIES:
        zl = _zonelist(m, high_zone)
        classzone = zl[0] if zl else high_zone
        for z in zl:
            available = zone_reclaimable_pages(m, z) + int(m.zones[z]["free_pages"])
            # min_wmark_pages(zone): the MIN mark plus the zone's boost.
            mark = int(m.zones[z]["watermark"][WMARK_MIN] + m.zones[z]["watermark_boost"])
            if watermark_ok_free(m.zones, z, order, mark, classzone, alloc_flags, available):
                ret = True
                break
    if not ret:
        return bool(unreserve_highatomic_pageblock(m.pages, m.zones, m.pageblock_type, m.node,
                                                   high_zone, mt, 1))
    return ret


def should_compact_retry(m: Machine, order: int, alloc_flags: int, high_zone: int,
                         st: RetryState) -> bool:
    """6.1 `should_compact_retry` (module docstring, step 7); updates the priority and the
    retries in `st`."""
    if not order:
        return False
    result = st.compact_result
    if result == COMPACT_SUCCESS:  # compaction_made_progress
        st.compaction_retries += 1
    if result == COMPACT_COMPLETE:  # compaction_failed
        return _check_priority(order, st)
    if result == COMPACT_SKIPPED:  # compaction_needs_reclaim
        return compaction_zonelist_suitable(m, order, alloc_flags, high_zone)
    if result in (COMPACT_DEFERRED, COMPACT_CONTENDED, COMPACT_PARTIAL_SKIPPED):
        return _check_priority(order, st)  # compaction_withdrawn
    max_retries = MAX_COMPACT_RETRIES
    if order > PAGE_ALLOC_COSTLY_ORDER:
        max_retries //= 4
    if st.compaction_retries <= max_retries:
        return True
    return _check_priority(order, st)


def _check_priority(order: int, st: RetryState) -> bool:
    """`check_priority:` raise the compaction priority once more if allowed."""
    min_priority = (MIN_COMPACT_COSTLY_PRIORITY if order > PAGE_ALLOC_COSTLY_ORDER
                    else MIN_COMPACT_PRIORITY)
    if st.compact_priority > min_priority:
        st.compact_priority -= 1
        st.compaction_retries = 0
        return True
    return False


def _zone_of(m: Machine, pfn: int) -> int:
    for z in range(m.zones.shape[0]):
        if m.zones[z]["start_pfn"] <= pfn < m.zones[z]["end_pfn"]:
            return z
    raise ValueError(f"pfn {pfn} is in no zone")


def _direct_compact(m: Machine, order: int, gfp: int, alloc_flags: int, high_zone: int,
                    mt: int, owner: int, kind: int, cpu: int, cold: bool, prio: int,
                    st: RetryState, attempt: AllocAttempt) -> int:
    """6.1 `__alloc_pages_direct_compact`: sets `st.compact_result` (not for order 0); without
    compaction (`config.compaction` off) the !CONFIG_COMPACTION stub."""
    from fragsim.models.mm.slowpath import _attempt

    if not order:
        return -1
    if not m.config.compaction:  # !CONFIG_COMPACTION: the stub says COMPACT_SKIPPED
        st.compact_result = COMPACT_SKIPPED
        return -1
    rc = try_to_compact_pages(m, order, gfp, alloc_flags, high_zone, mt, prio, cpu)
    st.compact_result = rc
    attempt.compaction_runs += 1
    if rc == COMPACT_SKIPPED:
        return -1
    nd = m.node[0]
    nd["stat"][_S_STALL] += 1
    pfn = _attempt(m, order, high_zone, mt, alloc_flags, owner, kind, cpu, cold)
    if pfn >= 0:
        z = _zone_of(m, pfn)
        m.zones[z]["compact_blockskip_flush"] = 0
        _compaction_defer_reset(m, z, order, True)
        nd["stat"][_S_SUCCESS] += 1
        return pfn
    nd["stat"][_S_FAIL] += 1
    return -1


def slowpath_6_1(m: Machine, order: int, gfp: int, high_zone: int, mt: int, owner: int,
                 kind: int, cpu: int, cold: bool, pfn: int, attempt: AllocAttempt) -> int:
    """6.1 `__alloc_pages_slowpath` from its first `get_page_from_freelist` (whose result is
    `pfn`) on (module docstring); returns the pfn or -1. Counts in `attempt`."""
    from fragsim.models.mm import reclaim
    from fragsim.models.mm.boost import alloc_flags_kswapd
    from fragsim.models.mm.highatomic import unreserve_highatomic_pageblock
    from fragsim.models.mm.reclaim_state import reclaim_state
    from fragsim.models.mm.slowpath import ALLOC_RETRY_RULES, _attempt, _drain_pcp

    if pfn >= 0:
        return pfn
    wait = bool(gfp & GFP.WAIT)
    costly = order > PAGE_ALLOC_COSTLY_ORDER
    can_compact = bool(m.config.compaction and gfp & GFP.IO)
    # 6.1 gfp_to_alloc_flags: ALLOC_KSWAPD from __GFP_KSWAPD_RECLAIM (watermark boosting).
    alloc_flags = ALLOC_WMARK_MIN | (0 if wait else ALLOC_HARDER) | \
        (ALLOC_HIGH if gfp & GFP.HIGH else 0) | alloc_flags_kswapd(gfp)
    st = RetryState()
    if wait and can_compact and (costly or (order > 0 and mt != MIGRATE_MOVABLE)):
        pfn = _direct_compact(m, order, gfp, alloc_flags, high_zone, mt, owner, kind, cpu, cold,
                              INIT_COMPACT_PRIORITY, st, attempt)
        if pfn >= 0:
            return pfn
        if costly and gfp & GFP.NORETRY:
            if st.compact_result in (COMPACT_SKIPPED, COMPACT_DEFERRED):
                return -1
            st.compact_priority = INIT_COMPACT_PRIORITY
    rounds = 0
    while rounds < SAFETY_ROUNDS:
        rounds += 1
        # retry:
        pfn = _attempt(m, order, high_zone, mt, alloc_flags, owner, kind, cpu, cold)
        if pfn >= 0 or not wait:
            return pfn
        # __alloc_pages_direct_reclaim
        rs = reclaim_state(m)
        naps = rs.congestion_waits
        reclaimed = int(reclaim.try_to_free_pages(m, order, gfp, high_zone))
        attempt.reclaim_rounds += 1
        attempt.nr_reclaimed += reclaimed
        attempt.reclaim_congestion_waits += rs.congestion_waits - naps
        progress = reclaimed > 0  # 6.1 do_try_to_free_pages: sc->nr_reclaimed
        if progress:
            pfn = _attempt(m, order, high_zone, mt, alloc_flags, owner, kind, cpu, cold)
            if pfn < 0:
                unreserve_highatomic_pageblock(m.pages, m.zones, m.pageblock_type, m.node,
                                               high_zone, mt, 0)
                _drain_pcp(m)  # drain_all_pages(NULL)
                pfn = _attempt(m, order, high_zone, mt, alloc_flags, owner, kind, cpu, cold)
            if pfn >= 0:
                return pfn
        pfn = _direct_compact(m, order, gfp, alloc_flags, high_zone, mt, owner, kind, cpu, cold,
                              st.compact_priority, st, attempt)
        if pfn >= 0:
            return pfn
        if gfp & GFP.NORETRY:
            return -1
        if costly and (not can_compact or not gfp & GFP.REPEAT):
            return -1
        if should_reclaim_retry(m, order, alloc_flags, high_zone, mt, progress, st):
            continue
        if progress and can_compact and should_compact_retry(m, order, alloc_flags, high_zone,
                                                             st):
            continue
        # 6.15: "Reclaim/compaction failed to prevent the fallback": with defrag_mode, clear
        # ALLOC_NOFRAGMENT and `goto retry` (`AllocRetry615.defrag_fallback`; None before 6.15).
        fallback = ALLOC_RETRY_RULES[m.policy.alloc_retry].defrag_fallback(m, gfp, order,
                                                                           alloc_flags)
        if fallback is not None:
            alloc_flags = fallback
            continue
        # __alloc_pages_may_oom: no OOM killer. Only its __GFP_NOFAIL warning branch acts.
        if (gfp & GFP.NOFAIL and not costly and not gfp & (GFP.REPEAT | GFP.THISNODE)
                and high_zone >= ZONE_NORMAL):
            pfn = _attempt(m, order, high_zone, mt, ALLOC_NO_WATERMARKS, owner, kind, cpu, cold)
            if pfn >= 0:
                return pfn
            st.no_progress_loops = 0
            continue
        # nopage:
        if gfp & GFP.NOFAIL:
            pfn = _attempt(m, order, high_zone, mt, ALLOC_WMARK_MIN | ALLOC_HIGH, owner, kind,
                           cpu, cold)
            if pfn >= 0:
                return pfn
            continue
        return -1
    return -1

"""kcompactd and proactive compaction: Linux 6.1 `mm/compaction.c` (4.6 kcompactd, 5.9 proactive).

The allocator side of the per-node compaction daemon, without SimPy (the daemon's process is
`models.agents.kcompactd.Kcompactd`). Read at unifreq/linux-6.1.y 07badeaa (6.1.141).

- `wakeup_kcompactd(m, order, highest_zoneidx)`: nothing for order 0; else remember the
  highest order and the lowest highest_zoneidx asked (`m.kcompactd_order`,
  `m.kcompactd_highest_zoneidx`), and wake the daemon if it sleeps (`m.kcompactd_sleeper`,
  6.1's `wq_has_sleeper`) and `kcompactd_node_suitable` says some zone is worth compacting.
  Callers: kswapd going to sleep (6.1 `kswapd_try_to_sleep`, `models.agents.daemons`), and
  watermark boosting's kswapd (5.0, `wakeup_kcompactd(m, pageblock_order, ...)`).
- `kcompactd_do_work(m)`: counts `compact_daemon_wake`; for each populated zone up to
  highest_zoneidx not deferred (6.1 `compaction_deferred`, with `compact_order_failed`) and
  `compaction_suitable` (COMPACT_CONTINUE), `compact_zone` for the recorded order as
  GFP_KERNEL (UNMOVABLE) asks it (which first asks `compaction_suitable` again with the node's
  highest_zoneidx, and may return SUCCESS or SKIPPED at once); SUCCESS:
  `compaction_defer_reset(zone, order, false)`; COMPLETE or PARTIAL_SKIPPED: drain the
  per-cpu lists and `defer_compaction(zone, order)`; counts the pages each
  run's scanners looked at in `compact_daemon_migrate_scanned`/`_free_scanned`. Then it
  forgets the order and zone index it served (unless a higher/tighter one came meanwhile).
- Proactive compaction (5.9; 6.1's form): `fragmentation_score_zone` is `extfrag_for_order`
  at COMPACTION_HPAGE_ORDER (HPAGE_PMD_ORDER; the model's pageblock_order, as its THP faults
  use); a node's score is the zones' scores weighted by present pages over node present pages
  + 1; the low watermark is `max(100 - compaction_proactiveness, 5)`, the high one low + 10
  (at most 100). `should_proactive_compact_node`: proactiveness on, kswapd not running, node
  score above the high mark. `proactive_compact_node` compacts every populated zone whole
  (order -1) until its own score is at most the low mark (6.1 `__compact_finished`).
  `kcompactd_proactive` is what `kcompactd()` does when its HPAGE_FRAG_CHECK_INTERVAL_MSEC
  (500 ms) wait times out with no work asked: the next timeout, 500 ms, or
  `500 ms << COMPACT_MAX_DEFER_SHIFT` (32 s) when proactive compaction did not lower the score.
- kswapd's side (6.1 mm/vmscan.c: `kswapd_try_to_sleep`, `pgdat_balanced`) is in
  `models.mm.kswapd_6_1`: kswapd going to sleep wakes kcompactd for the order it was woken
  for (`alloc_order`) when the node is balanced at the order balance_pgdat finished at
  (`reclaim_order`).

Both runs use 6.1's scanners (`models.mm.compaction_6_1`): kcompactd's as 6.1
`kcompactd_do_work` sets them up (MIGRATE_SYNC_LIGHT, skip hints honoured, cached scanner
positions, so a run whose scanners meet ends COMPACT_PARTIAL_SKIPPED unless it started at the
zone start), proactive compaction's as `proactive_compact_node` does (`whole_zone`,
`ignore_skip_hint`). `kcompactd_do_work` answers in 6.1's `enum compact_result`.

Model limits (also in the README): compaction takes no simulated time. The sysctl
write's `proactive_compact_trigger` is not modelled (proactiveness is fixed for a run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np

from fragsim.models.mm import compaction_6_1 as c61
from fragsim.models.mm.alloc import wmark_of, zone_watermark_ok
from fragsim.models.mm.compaction import (
    COMPACT_CONTINUE,
    COMPACT_MAX_DEFER_SHIFT,
    COMPACT_PARTIAL,
    COMPACT_SKIPPED,
    extfrag_for_order,
)
from fragsim.models.mm.constants import (
    MIGRATE_UNMOVABLE,
    PAGE_ALLOC_COSTLY_ORDER,
    WMARK_LOW,
    WMARK_MIN,
)
from fragsim.models.mm.defrag_mode import compaction_suit_free_pages, kcompactd_alloc_flags
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.metrics import fragmentation_index
from fragsim.models.mm.state import STAT

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = [
    "COMPACT_SUCCESS",
    "DEFAULT_COMPACTION_PROACTIVENESS",
    "HPAGE_FRAG_CHECK_INTERVAL_S",
    "compaction_defer_reset",
    "compaction_deferred",
    "compaction_suitable",
    "compaction_suitable_free",
    "defer_compaction",
    "fragmentation_score_node",
    "fragmentation_score_wmark",
    "fragmentation_score_zone",
    "fragmentation_score_zone_weighted",
    "kcompactd_do_work",
    "kcompactd_node_suitable",
    "kcompactd_proactive",
    "kcompactd_work_requested",
    "proactive_compact_node",
    "should_proactive_compact_node",
    "wakeup_kcompactd",
    "watermark_ok_free",
]

#: 6.1 COMPACT_SUCCESS ("direct compaction terminated after concluding that the allocation
#: should now succeed") as `compaction_suitable` answers it: the model's (2.6.35)
#: COMPACT_PARTIAL.
COMPACT_SUCCESS: Final = COMPACT_PARTIAL
#: `compaction_suitable`'s answers in 6.1's `enum compact_result` (`models.mm.compaction_6_1`),
#: whose order `try_to_compact_pages`'s `rc = max(status, rc)` relies on.
SUITABLE_6_1: Final = {COMPACT_SKIPPED: c61.COMPACT_SKIPPED,
                       COMPACT_CONTINUE: c61.COMPACT_CONTINUE,
                       COMPACT_PARTIAL: c61.COMPACT_SUCCESS}
#: `sysctl_compaction_proactiveness` at boot (5.9+).
DEFAULT_COMPACTION_PROACTIVENESS: Final = 20
#: HPAGE_FRAG_CHECK_INTERVAL_MSEC (500 ms): kcompactd's wait when proactive compaction is on.
HPAGE_FRAG_CHECK_INTERVAL_S: Final = 0.5

_S_WAKE = STAT["compact_daemon_wake"]
_S_DAEMON_MIGRATE = STAT["compact_daemon_migrate_scanned"]
_S_DAEMON_FREE = STAT["compact_daemon_free_scanned"]
_S_MIGRATE_SCANNED = STAT["compact_migrate_scanned"]
_S_FREE_SCANNED = STAT["compact_free_scanned"]


# --- deferral (6.1 form, with compact_order_failed) ------------------------------------------
def compaction_deferred(m: Machine, z: int, order: int) -> bool:
    """6.1 `compaction_deferred(zone, order)`: skip this compaction? Never below
    `compact_order_failed`; otherwise the considered count climbs to `1 << compact_defer_shift`
    (and stays there), and the attempt is skipped until it gets there. (No counter: 6.1 has only
    a tracepoint; the model's `compact_deferred` counts direct compaction's.)"""
    zones = m.zones
    if order < int(zones["compact_order_failed"][z]):
        return False
    defer_limit = 1 << int(zones["compact_defer_shift"][z])
    considered = int(zones["compact_considered"][z]) + 1
    if considered >= defer_limit:
        zones["compact_considered"][z] = defer_limit
        return False
    zones["compact_considered"][z] = considered
    return True


def defer_compaction(m: Machine, z: int, order: int) -> None:
    """6.1 `defer_compaction(zone, order)`: considered 0, shift + 1 (at most
    COMPACT_MAX_DEFER_SHIFT), and `compact_order_failed` lowered to `order`."""
    zones = m.zones
    zones["compact_considered"][z] = 0
    zones["compact_order_failed"][z] = min(int(zones["compact_order_failed"][z]), order)
    zones["compact_defer_shift"][z] = min(int(zones["compact_defer_shift"][z]) + 1,
                                          COMPACT_MAX_DEFER_SHIFT)


def compaction_defer_reset(m: Machine, z: int, order: int, alloc_success: bool) -> None:
    """6.1 `compaction_defer_reset(zone, order, alloc_success)`: an allocation succeeded
    (considered and shift back to 0), or is expected to; `compact_order_failed` above `order`."""
    zones = m.zones
    if alloc_success:
        zones["compact_considered"][z] = 0
        zones["compact_defer_shift"][z] = 0
    if order >= int(zones["compact_order_failed"][z]):
        zones["compact_order_failed"][z] = order + 1


# --- compaction_suitable ---------------------------------------------------------------------
def watermark_ok_free(zones: np.ndarray, z: int, order: int, mark: int, classzone_idx: int,
                      alloc_flags: int, free_pages: int) -> bool:
    """`__zone_watermark_ok(z, order, mark, highest_zoneidx, alloc_flags, free_pages)`: the
    zone's own watermark rule with `free_pages` in place of NR_FREE_PAGES."""
    zone = zones[z]
    saved = zone["free_pages"]
    zone["free_pages"] = free_pages
    ok = zone_watermark_ok(zone, order, mark, classzone_idx, alloc_flags)
    zone["free_pages"] = saved
    return bool(ok)


def compaction_suitable_free(m: Machine, z: int, order: int, alloc_flags: int,
                             highest_zoneidx: int, wmark_target: int, *,
                             kcompactd: bool = False) -> int:
    """6.1 `__compaction_suitable()`: COMPACT_SUCCESS when the order's watermark (`wmark_pages(zone,
    alloc_flags & ALLOC_WMARK_MASK)`, boost included; kcompactd's alloc_flags 0 is 6.1's
    ALLOC_WMARK_MIN, i.e. the MIN mark) is met already; COMPACT_SKIPPED unless `wmark_target`
    free pages pass (`low_wmark_pages` for costly orders, else `min_wmark_pages`) +
    `compact_gap(order)` = 2 << order at order 0; else COMPACT_CONTINUE. For kcompactd under
    6.15's defrag_mode the first test counts only NR_FREE_PAGES_BLOCKS
    (`compaction_suit_allocation_order(..., kcompactd)`,
    `models.mm.defrag_mode.compaction_suit_free_pages`)."""
    zone = m.zones[z]
    boost = int(zone["watermark_boost"])
    mark = int(zone["watermark"][wmark_of(alloc_flags) if alloc_flags else WMARK_MIN]) + boost
    free = compaction_suit_free_pages(zone, m.pageblock_order, kcompactd,
                                      bool(m.config.defrag_mode))
    if watermark_ok_free(m.zones, z, order, mark, highest_zoneidx, alloc_flags, free):
        return COMPACT_SUCCESS
    base = WMARK_LOW if order > PAGE_ALLOC_COSTLY_ORDER else WMARK_MIN
    watermark = int(zone["watermark"][base]) + boost + (2 << order)
    # __zone_watermark_ok(zone, 0, watermark, highest_zoneidx, ALLOC_CMA, free): no CMA here,
    # and no ALLOC_HARDER, so HIGHATOMIC is unusable.
    if not watermark_ok_free(m.zones, z, 0, watermark, highest_zoneidx, 0, wmark_target):
        return COMPACT_SKIPPED
    return COMPACT_CONTINUE


def compaction_suitable(m: Machine, z: int, order: int, alloc_flags: int,
                        highest_zoneidx: int, *, kcompactd: bool = False) -> int:
    """6.1 `compaction_suitable()`: `compaction_suitable_free` with NR_FREE_PAGES, then for a
    costly order COMPACT_SKIPPED (COMPACT_NOT_SUITABLE_ZONE) when the fragmentation index is in
    [0, extfrag_threshold] (the failure would be lack of memory). Order -1
    (`is_via_compact_memory`) is always CONTINUE. The one version for kcompactd and direct
    compaction (`models.mm.slowpath_6_1`)."""
    if order < 0:
        return COMPACT_CONTINUE
    ret = compaction_suitable_free(m, z, order, alloc_flags, highest_zoneidx,
                                   int(m.zones[z]["free_pages"]), kcompactd=kcompactd)
    if ret == COMPACT_CONTINUE and order > PAGE_ALLOC_COSTLY_ORDER:
        fragindex = fragmentation_index(m.zones[z]["nr_free"][: m.max_order], order)
        if 0 <= fragindex <= m.config.extfrag_threshold:
            ret = COMPACT_SKIPPED
    return ret


# --- kcompactd -------------------------------------------------------------------------------
def kcompactd_work_requested(m: Machine) -> bool:
    """6.1 `kcompactd_work_requested()` (no kthread_should_stop, no sysctl trigger)."""
    return m.kcompactd_order > 0


def kcompactd_node_suitable(m: Machine) -> bool:
    """6.1 `kcompactd_node_suitable()`: some populated zone up to the recorded highest_zoneidx
    is COMPACT_CONTINUE for the recorded order (ALLOC_WMARK_MIN; ALLOC_WMARK_HIGH under 6.15's
    defrag_mode, `models.mm.defrag_mode.kcompactd_alloc_flags`)."""
    hz = m.kcompactd_highest_zoneidx
    flags = kcompactd_alloc_flags(bool(m.config.defrag_mode))
    for z in range(hz + 1):
        if m.zones[z]["present_pages"] == 0:
            continue
        if compaction_suitable(m, z, m.kcompactd_order, flags, hz,
                               kcompactd=True) == COMPACT_CONTINUE:
            return True
    return False


def wakeup_kcompactd(m: Machine, order: int, highest_zoneidx: int) -> None:
    """6.1 `wakeup_kcompactd(pgdat, order, highest_zoneidx)` (module docstring)."""
    if not order:
        return
    if m.kcompactd_order < order:
        m.kcompactd_order = order
    if m.kcompactd_highest_zoneidx > highest_zoneidx:
        m.kcompactd_highest_zoneidx = highest_zoneidx
    sleeper = m.kcompactd_sleeper
    if sleeper is None:  # !wq_has_sleeper(&pgdat->kcompactd_wait)
        return
    if not kcompactd_node_suitable(m):
        return
    sleeper()  # wake_up_interruptible(&pgdat->kcompactd_wait)


def _drain_all_pages(m: Machine) -> None:
    """`drain_all_pages(zone)`: the model drains every zone's per-cpu lists (when it has them)."""
    if m.config.pcp:
        from fragsim.models.mm import pcp

        pcp.drain_pages(m)


def kcompactd_do_work(m: Machine) -> list[tuple[int, int]]:
    """6.1 `kcompactd_do_work()` (module docstring). Returns (zone, COMPACT_* status) for each
    zone compacted."""
    order = m.kcompactd_order
    hz = m.kcompactd_highest_zoneidx
    flags = kcompactd_alloc_flags(bool(m.config.defrag_mode))
    finish = c61.FINISH_DEFRAG_6_15 if m.config.defrag_mode else c61.FINISH_6_1
    stat = m.node[0]["stat"]
    stat[_S_WAKE] += 1
    out: list[tuple[int, int]] = []
    for z in range(hz + 1):
        if m.zones[z]["present_pages"] == 0:
            continue
        if compaction_deferred(m, z, order):
            continue
        if compaction_suitable(m, z, order, flags, z, kcompactd=True) != COMPACT_CONTINUE:
            continue
        migrate0, free0 = int(stat[_S_MIGRATE_SCANNED]), int(stat[_S_FREE_SCANNED])
        # 6.1 compact_zone() asks compaction_suitable again, with cc->highest_zoneidx (the
        # node's, not the zone's: a larger lowmem_reserve), and returns SUCCESS or SKIPPED.
        status = SUITABLE_6_1[compaction_suitable(m, z, order, flags, hz, kcompactd=True)]
        if status == c61.COMPACT_CONTINUE:
            # cc.gfp_mask = GFP_KERNEL: compact_zone asks for an UNMOVABLE block.
            status = c61.compact_zone(m, z, order, MIGRATE_UNMOVABLE, c61.MIGRATE_SYNC_LIGHT,
                                      direct=False, finish=finish, highest_zoneidx=hz)
        if status == c61.COMPACT_SUCCESS:
            compaction_defer_reset(m, z, order, False)
        elif status in (c61.COMPACT_PARTIAL_SKIPPED, c61.COMPACT_COMPLETE):
            _drain_all_pages(m)
            defer_compaction(m, z, order)
        stat[_S_DAEMON_MIGRATE] += int(stat[_S_MIGRATE_SCANNED]) - migrate0
        stat[_S_DAEMON_FREE] += int(stat[_S_FREE_SCANNED]) - free0
        out.append((z, status))
    # Done until woken up next, but keep an order/zone index asked meanwhile.
    if m.kcompactd_order <= order:
        m.kcompactd_order = 0
    if m.kcompactd_highest_zoneidx >= hz:
        m.kcompactd_highest_zoneidx = m.nr_zones - 1
    return out


# --- proactive compaction --------------------------------------------------------------------
def _proactiveness(m: Machine) -> int:
    value = m.config.compaction_proactiveness
    return 0 if value is None else int(value)


@compiled("zones, int, int, int")
def _score_zone(zones: np.ndarray, z: int, max_order: int, order: int) -> int:
    """`extfrag_for_order(zones[z], order)`, callable from Python."""
    return extfrag_for_order(zones[z], max_order, order)


def fragmentation_score_zone(m: Machine, z: int) -> int:
    """6.1 `fragmentation_score_zone()`: `extfrag_for_order(zone, COMPACTION_HPAGE_ORDER)`."""
    return int(_score_zone(m.zones, z, m.max_order, m.pageblock_order))


def fragmentation_score_zone_weighted(m: Machine, z: int) -> int:
    """6.1 `fragmentation_score_zone_weighted()`: the score times the zone's present pages,
    over the node's present pages + 1."""
    node_present = int(m.zones["present_pages"].sum())
    return int(m.zones[z]["present_pages"]) * fragmentation_score_zone(m, z) \
        // (node_present + 1)


@compiled("zones, int, int")
def _score_node(zones: np.ndarray, max_order: int, order: int) -> int:
    """`fragmentation_score_node()` as one compiled pass over the zones."""
    node_present = 0
    for z in range(zones.shape[0]):
        node_present += zones[z]["present_pages"]
    score = 0
    for z in range(zones.shape[0]):
        present = zones[z]["present_pages"]
        if present:
            score += present * extfrag_for_order(zones[z], max_order, order) \
                // (node_present + 1)
    return score


def fragmentation_score_node(m: Machine) -> int:
    """6.1 `fragmentation_score_node()`: the sum of the zones' weighted scores."""
    return int(_score_node(m.zones, m.max_order, m.pageblock_order))


def fragmentation_score_wmark(m: Machine, low: bool) -> int:
    """6.1 `fragmentation_score_wmark()`: low `max(100 - proactiveness, 5)`, high low + 10
    (at most 100)."""
    wmark_low = max(100 - _proactiveness(m), 5)
    return wmark_low if low else min(wmark_low + 10, 100)


def should_proactive_compact_node(m: Machine) -> bool:
    """6.1 `should_proactive_compact_node()`: proactiveness on, kswapd not running
    (`m.kswapd_running`), and the node's score above the high watermark."""
    if not _proactiveness(m) or m.kswapd_running:
        return False
    return fragmentation_score_node(m) > fragmentation_score_wmark(m, False)


def proactive_compact_node(m: Machine) -> list[tuple[int, int]]:
    """6.1 `proactive_compact_node()`: each populated zone, lowest first, compacted whole
    (order -1, GFP_KERNEL, MIGRATE_SYNC_LIGHT) until its score is at most the low watermark.
    Returns (zone, status) pairs. (6.1 counts no kcompactd counter here.)"""
    wmark_low = fragmentation_score_wmark(m, True)
    return [(z, c61.compact_zone(m, z, -1, MIGRATE_UNMOVABLE, c61.MIGRATE_SYNC_LIGHT,
                                 direct=False, whole_zone=True, ignore_skip_hint=True,
                                 proactive_wmark=wmark_low))
            for z in m.populated_zones()]


def kcompactd_proactive(m: Machine) -> tuple[float, bool]:
    """The proactive part of 6.1 `kcompactd()`, after a timed-out wait with no work asked:
    compact proactively if `should_proactive_compact_node`. Returns the next timeout in
    seconds (HPAGE_FRAG_CHECK_INTERVAL_MSEC, or that `<< COMPACT_MAX_DEFER_SHIFT` when the
    node's score did not go down) and whether proactive compaction ran."""
    timeout = HPAGE_FRAG_CHECK_INTERVAL_S
    if not should_proactive_compact_node(m):
        return timeout, False
    prev_score = fragmentation_score_node(m)
    proactive_compact_node(m)
    score = fragmentation_score_node(m)
    if score >= prev_score:
        timeout = HPAGE_FRAG_CHECK_INTERVAL_S * (1 << COMPACT_MAX_DEFER_SHIFT)
    return timeout, True

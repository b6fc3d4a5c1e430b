"""kswapd's boosted reclaim: the watermark-boost parts of Linux 6.1 `balance_pgdat()`
(`mm/vmscan.c` of 6.1.y, read at unifreq/linux-6.1.y 07badeaa), around the model's 2.6.24
`balance_pgdat` (`models.mm.reclaim.balance_pgdat_2_6_24`).

6.1 `balance_pgdat(pgdat, order, highest_zoneidx)`, as modelled by `balance_pgdat_boost`:

1. "Account for the reclaim boost": `nr_boost_reclaim` is the sum of `watermark_boost` over the
   populated zones up to `highest_zoneidx`, `zone_boosts[i]` each one; `boosted` whether any.
   "the zone boost is left in place": every watermark check meanwhile sees it.
2. Boosted reclaim (`boosted_reclaim`), the priority loop while `nr_boost_reclaim`: "If the
   pgdat is imbalanced then ignore boosting ... and restart": the normal reclaim below; with
   the boost reclaimed and the node balanced: done. `sc.may_writepage = !nr_boost_reclaim`,
   `sc.may_swap = !nr_boost_reclaim` ("Do not writeback or swap pages for boosted reclaim"),
   writepage allowed again below DEF_PRIORITY - 2; "Limit the priority of boosting to avoid
   reclaim writeback": no raise at DEF_PRIORITY - 2; no raise when the scan reached
   `nr_to_reclaim` (`kswapd_shrink_node`: the sum of `max(high_wmark_pages, SWAP_CLUSTER_MAX)`);
   `nr_boost_reclaim -= min(nr_boost_reclaim, nr_reclaimed)`; "If reclaim made no progress for
   a boost, stop reclaim"; the priority drops when it may be raised or nothing was reclaimed;
   the loop runs while priority >= 1. `kswapd_shrink_node`'s order reset (order 0 once
   `compact_gap(order)` pages were reclaimed) applies to the balance test.
3. Normal reclaim (not boosted, or the restart): the model's 2.6.24 `balance_pgdat`.
4. "If reclaim was boosted, account for the reclaim done in this pass": each zone's
   `watermark_boost -= min(watermark_boost, zone_boosts[i])`, and "As there is now likely
   space, wakeup kcompact to defragment pageblocks": `wakeup_kcompactd(pgdat,
   pageblock_order, highest_zoneidx)`.

What stays 2.6.24 (README, model limits): "balanced" is 2.6.24's test, every zone OK at its
(boosted) high watermark (6.1's `pgdat_balanced` needs one eligible zone); reclaim in both
loops is 2.6.24's per-zone `shrink_zone` and `shrink_slab` on one active/inactive LRU pair
(6.1 `shrink_node` on the node's LRUs, with its anon/file balance and MGLRU), so `may_swap`
keeps mapped pages as 2.6.24's `shrink_page_list` does (6.1 instead scans no anon LRU);
a boost reclaimed with the node still unbalanced goes to 2.6.24's passes from DEF_PRIORITY
(6.1 carries on at its priority); no `kswapd_failures`, no `pgdat->flags`, and the boosted
pass counts one pageoutrun, as each 2.6.24 pass does (6.1 counts one per call).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fragsim.models.mm import reclaim
from fragsim.models.mm.gfp import GFP_KERNEL
from fragsim.models.mm.kcompactd import wakeup_kcompactd
from fragsim.models.mm.lru import LRU_ACTIVE, LRU_INACTIVE
from fragsim.models.mm.reclaim_state import DEF_PRIORITY
from fragsim.models.mm.slab import shrink_slab
from fragsim.models.mm.state import STAT
from fragsim.models.mm.writeback import complete_writeback

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = ["balance_pgdat_boost", "boosted_reclaim"]


def boosted_reclaim(m: Machine, order: int, highest_zoneidx: int,
                    nr_boost_reclaim: int) -> tuple[int, bool]:
    """The loop of 6.1 `balance_pgdat()` while `nr_boost_reclaim` (module docstring, 2).

    Returns (pages reclaimed, whether normal reclaim follows): True when the node was or became
    unbalanced (6.1's restart, or its loop going on with the boost reclaimed), False when it
    ended balanced, stopped for lack of progress, or ran out of priorities.
    """
    complete_writeback(m)
    m.node[0]["stat"][STAT["pageoutrun"]] += 1
    zones = [z for z in m.populated_zones() if z <= highest_zoneidx]
    sc = reclaim.scan_control(m, order, int(GFP_KERNEL), kswapd=True)
    sc_order = order
    total = 0
    priority = DEF_PRIORITY
    while priority >= 1:
        raise_priority = True
        balanced = reclaim.pgdat_balanced(m, sc_order)
        if not balanced and nr_boost_reclaim:
            return total, True  # nr_boost_reclaim = 0; goto restart
        if not nr_boost_reclaim:
            # balanced: goto out; else 6.1 reclaims on unboosted, which here is 2.6.24's.
            return total, not balanced
        # Limit the priority of boosting to avoid reclaim writeback.
        if priority == DEF_PRIORITY - 2:
            raise_priority = False
        # Do not writeback or swap pages for boosted reclaim.
        sc.may_writepage = False
        sc.may_swap = False
        # If we're getting trouble reclaiming, start doing writepage even in laptop mode.
        if priority < DEF_PRIORITY - 2:
            sc.may_writepage = True
        # kswapd_shrink_node(): reclaim in proportion to the zones, then check the scan.
        nr_to_reclaim = sum(max(reclaim.high_wmark_pages(m, z), reclaim.SWAP_CLUSTER_MAX)
                            for z in zones)
        lru_pages = sum(int(m.zones[z]["nr_lru"][LRU_ACTIVE] + m.zones[z]["nr_lru"][LRU_INACTIVE])
                        for z in zones)
        nr_reclaimed = 0
        scanned = 0
        for z in zones:
            sc.nr_scanned = 0
            nr_reclaimed += reclaim.shrink_zone(m, z, priority, sc)
            scanned += sc.nr_scanned
        nr_reclaimed += shrink_slab(m, scanned, int(GFP_KERNEL), lru_pages)[1]
        total += nr_reclaimed
        if sc_order and total >= (2 << sc_order):  # compact_gap(sc->order)
            sc_order = 0
        if scanned >= nr_to_reclaim:
            raise_priority = False
        nr_boost_reclaim -= min(nr_boost_reclaim, nr_reclaimed)
        # If reclaim made no progress for a boost, stop reclaim as IO cannot be queued.
        if nr_boost_reclaim and not nr_reclaimed:
            break
        if raise_priority or not nr_reclaimed:
            priority -= 1
    return total, False


def balance_pgdat_boost(m: Machine, order: int, highest_zoneidx: int, *,
                        max_passes: int = 1000) -> int:
    """6.1 `balance_pgdat(pgdat, order, highest_zoneidx)`'s boost handling (module docstring)
    around the model's 2.6.24 reclaim. Returns pages reclaimed."""
    zone_boosts = [0] * m.zones.shape[0]
    for z in m.populated_zones():
        if z <= highest_zoneidx:
            zone_boosts[z] = int(m.zones[z]["watermark_boost"])
    nr_boost_reclaim = sum(zone_boosts)
    boosted = nr_boost_reclaim > 0
    total = 0
    normal = True
    if boosted:
        total, normal = boosted_reclaim(m, order, highest_zoneidx, nr_boost_reclaim)
    if normal:
        total += reclaim.balance_pgdat_2_6_24(m, order, max_passes=max_passes)
    if boosted:
        for z, boost in enumerate(zone_boosts):
            if boost:
                zone = m.zones[z]
                zone["watermark_boost"] -= min(int(zone["watermark_boost"]), boost)
        wakeup_kcompactd(m, m.pageblock_order, highest_zoneidx)
    return total

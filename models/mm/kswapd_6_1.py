"""kswapd as Linux 6.1 has it: `balance_pgdat()`, `pgdat_balanced()`, `kswapd_shrink_node()`,
`prepare_kswapd_sleep()`, `kswapd_try_to_sleep()`'s kcompactd wake-up and `kswapd_failures`
(`mm/vmscan.c` of 6.1.y, read at unifreq/linux-6.1.y 07badeaa), over 6.1's `shrink_node`
(`models.mm.reclaim_6_1`). The 6.1 and
6.15 presets use it (`Policy.kswapd == "6.1"`); `models.agents.daemons.Kswapd` is 6.1
`kswapd()` around it.

`balance_pgdat_6_1(m, order, highest_zoneidx)` is 6.1 `balance_pgdat`:

1. "Account for the reclaim boost": `nr_boost_reclaim` is the sum of `watermark_boost` over the
   populated zones up to `highest_zoneidx`, `zone_boosts[i]` each one; `boosted` whether any.
   `set_reclaim_active` sets ZONE_RECLAIM_ACTIVE on those zones until `out:`'s
   `clear_reclaim_active` ("Page allocator PCP high watermark is lowered if reclaim is
   active": 6.1 `nr_pcp_high`, `models.mm.pcp_6_1`).
2. The priority loop from DEF_PRIORITY while priority >= 1 (the restart starts it again):
   `balanced = pgdat_balanced(sc.order)`; unbalanced with a boost: `nr_boost_reclaim = 0`,
   restart; balanced without one: out. Boosted reclaim neither writes nor swaps
   (`sc.may_writepage = sc.may_swap = !nr_boost_reclaim`), and does not raise the priority
   past DEF_PRIORITY - 2; writepage is allowed again below DEF_PRIORITY - 2.
   `kswapd_shrink_node`: `nr_to_reclaim` is the sum of `max(high_wmark_pages,
   SWAP_CLUSTER_MAX)` over the zones up to `highest_zoneidx`; reclaim; `sc.order = 0` once
   `sc.nr_reclaimed >= compact_gap(sc.order)` (2 << order: "Fragmentation may mean that the
   system cannot be rebalanced for high-order allocations"); no priority raise when the scan
   reached `nr_to_reclaim`. Then `nr_boost_reclaim -= min(nr_boost_reclaim, nr_reclaimed)`;
   a boost that made no progress stops the loop; the priority drops when it may be raised or
   nothing was reclaimed.
3. A loop that reclaimed nothing at all counts a `kswapd_failure` (`reclaim_state(m)`); any
   reclaim that frees something resets the count (6.1 `shrink_node`: "On reclaim progress,
   reset the failure counter", direct reclaim included). From MAX_RECLAIM_RETRIES (16)
   failures kswapd is "hopeless": `prepare_kswapd_sleep` lets it sleep and the daemon ignores
   wake-ups (`wakeup_kswapd`'s "Hopeless node, leave it to direct reclaim").
4. "If reclaim was boosted, account for the reclaim done in this pass": each zone's
   `watermark_boost -= min(watermark_boost, zone_boosts[i])`, and `wakeup_kcompactd(pgdat,
   pageblock_order, highest_zoneidx)`.
5. It returns `sc.order`, the order kswapd stopped reclaiming at (`reclaim_order`).

`pgdat_balanced` is 6.1's (some populated zone up to `highest_zoneidx` meets
`high_wmark_pages`, boost included, at the order, with `highest_zoneidx` as the classzone),
and 6.15's under `vm.defrag_mode` (`models.mm.defrag_mode.pgdat_balanced_6_15`: while the order
is above 0 it counts only the free pages in whole pageblocks, NR_FREE_PAGES_BLOCKS).

Reclaim inside the loop is 6.1 `shrink_node` (`models.mm.reclaim_6_1`; a policy with 6.1's
kswapd has 6.1's reclaim).

Simplified (README, model limits): no `kswapd_age_node` (6.1 ages the anon list only with
swap, which `shrink_lruvec`'s closing `shrink_active_list` does in the model), no
`buffer_heads_over_limit`, no memcg soft limit, no PGDAT_WRITEBACK/`reclaim_throttle`;
`pageoutrun` counts once per call as in 6.1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fragsim.models.mm import reclaim
from fragsim.models.mm.alloc import zone_watermark_ok
from fragsim.models.mm.compaction_6_1 import reset_isolation_suitable
from fragsim.models.mm.constants import ZONE_RECLAIM_ACTIVE
from fragsim.models.mm.defrag_mode import pgdat_balanced_6_15
from fragsim.models.mm.gfp import GFP_KERNEL
from fragsim.models.mm.kcompactd import wakeup_kcompactd
from fragsim.models.mm.reclaim_6_1 import ScanControl61, shrink_node
from fragsim.models.mm.reclaim_state import DEF_PRIORITY, reclaim_state
from fragsim.models.mm.state import STAT
from fragsim.models.mm.writeback import complete_writeback

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = [
    "MAX_RECLAIM_RETRIES",
    "balance_pgdat_6_1",
    "kswapd_hopeless",
    "kswapd_reclaim_order",
    "kswapd_try_to_sleep",
    "pgdat_balanced",
    "pgdat_watermark_boosted",
    "prepare_kswapd_sleep",
]

#: 6.1 `MAX_RECLAIM_RETRIES` (mm/internal.h): kswapd failures before the node is hopeless.
MAX_RECLAIM_RETRIES = 16


def pgdat_balanced(m: Machine, order: int, highest_zoneidx: int) -> bool:
    """6.1 `pgdat_balanced()`: some populated zone up to `highest_zoneidx`, bottom up, passes
    `zone_watermark_ok_safe(zone, order, high_wmark_pages(zone), highest_zoneidx)` (the
    boost is in the mark); true with no populated zone. Under 6.15's defrag_mode,
    `pgdat_balanced_6_15` (NR_FREE_PAGES_BLOCKS while `order` > 0)."""
    hz = min(highest_zoneidx, m.zones.shape[0] - 1)
    if m.config.defrag_mode:
        return pgdat_balanced_6_15(m.zones, m.pageblock_order, order, hz, True)
    seen = False
    for z in range(hz + 1):
        if m.zones[z]["present_pages"] == 0:
            continue
        seen = True
        if zone_watermark_ok(m.zones[z], order, reclaim.high_wmark_pages(m, z), hz, 0):
            return True
    return not seen


def pgdat_watermark_boosted(m: Machine, highest_zoneidx: int) -> bool:
    """6.1 `pgdat_watermark_boosted()`: a populated zone up to `highest_zoneidx` is boosted."""
    hz = min(highest_zoneidx, m.zones.shape[0] - 1)
    return any(m.zones[z]["present_pages"] > 0 and m.zones[z]["watermark_boost"] > 0
               for z in range(hz + 1))


def kswapd_hopeless(m: Machine) -> bool:
    """`pgdat->kswapd_failures >= MAX_RECLAIM_RETRIES`: "Hopeless node, leave it to direct
    reclaim"."""
    return reclaim_state(m).kswapd_failures >= MAX_RECLAIM_RETRIES


def prepare_kswapd_sleep(m: Machine, order: int, highest_zoneidx: int) -> bool:
    """6.1 `prepare_kswapd_sleep()`: kswapd may sleep when the node is hopeless or balanced at
    `order` (no pfmemalloc waiters in the model)."""
    return kswapd_hopeless(m) or pgdat_balanced(m, order, highest_zoneidx)


def kswapd_reclaim_order(alloc_order: int, nr_reclaimed: int) -> int:
    """The order 6.1 `balance_pgdat()` returns (`reclaim_order`) after `nr_reclaimed` pages:
    `kswapd_shrink_node` drops `sc->order` to 0 once `compact_gap(order)` = 2 << order pages
    were reclaimed ("assume that a process requested a high-order can direct
    reclaim/compact")."""
    if alloc_order and nr_reclaimed >= (2 << alloc_order):
        return 0
    return alloc_order


def kswapd_try_to_sleep(m: Machine, alloc_order: int, reclaim_order: int,
                        highest_zoneidx: int) -> bool:
    """6.1 `kswapd_try_to_sleep()` up to its short nap: when `prepare_kswapd_sleep(pgdat,
    reclaim_order, highest_zoneidx)` holds, `wakeup_kcompactd(pgdat, alloc_order,
    highest_zoneidx)` ("We have freed the memory, now we should compact it to make allocation
    of the requested order possible"), after `reset_isolation_suitable(pgdat)`
    (`models.mm.compaction_6_1`). Returns whether kswapd may sleep."""
    if not prepare_kswapd_sleep(m, reclaim_order, highest_zoneidx):
        return False
    if m.config.compaction:
        # "Compaction records what page blocks it recently failed to isolate pages from and
        # skips them in the future scanning. When kswapd is going to sleep, it is reasonable
        # to assume that pages and compaction may succeed so reset the cache."
        reset_isolation_suitable(m)
    if m.config.kcompactd:
        wakeup_kcompactd(m, alloc_order, highest_zoneidx)
    return True


def balance_pgdat_6_1(m: Machine, order: int, highest_zoneidx: int) -> tuple[int, int]:
    """6.1 `balance_pgdat(pgdat, order, highest_zoneidx)` (module docstring). Returns (pages
    reclaimed, the order kswapd stopped reclaiming at)."""
    st = reclaim_state(m)
    complete_writeback(m)
    m.node[0]["stat"][STAT["pageoutrun"]] += 1
    zones = [z for z in m.populated_zones() if z <= highest_zoneidx]
    zone_boosts = {z: int(m.zones[z]["watermark_boost"]) for z in zones}
    nr_boost_reclaim = sum(zone_boosts.values())
    boosted = nr_boost_reclaim > 0
    sc = ScanControl61(gfp_mask=int(GFP_KERNEL), order=order, reclaim_idx=highest_zoneidx,
                       nr_to_reclaim=0, kswapd=True)
    sc_order = order
    total = 0  # sc.nr_reclaimed
    balanced_out = False
    restart = True
    # set_reclaim_active() (at `restart:`; clear_reclaim_active() at `out:`): "Page allocator
    # PCP high watermark is lowered if reclaim is active" (6.1 `nr_pcp_high`, models.mm.pcp_6_1).
    for z in zones:
        m.zones[z]["flags"] |= ZONE_RECLAIM_ACTIVE
    while restart:
        restart = False
        priority = DEF_PRIORITY
        while True:
            raise_priority = True
            balanced = pgdat_balanced(m, sc_order, highest_zoneidx)
            if not balanced and nr_boost_reclaim:
                nr_boost_reclaim = 0
                restart = True
                break
            if not nr_boost_reclaim and balanced:
                balanced_out = True
                break
            # Limit the priority of boosting to avoid reclaim writeback.
            if nr_boost_reclaim and priority == DEF_PRIORITY - 2:
                raise_priority = False
            # Do not writeback or swap pages for boosted reclaim.
            sc.may_writepage = not nr_boost_reclaim
            sc.may_swap = not nr_boost_reclaim
            # If we're getting trouble reclaiming, start doing writepage even in laptop mode.
            if priority < DEF_PRIORITY - 2:
                sc.may_writepage = True
            # kswapd_shrink_node(): reclaim in proportion to the zones, then check the scan.
            nr_to_reclaim = sum(max(reclaim.high_wmark_pages(m, z), reclaim.SWAP_CLUSTER_MAX)
                                for z in zones)
            # 6.1 reclaim (`models.mm.reclaim_6_1`): shrink_node(pgdat, sc), which also resets
            # kswapd_failures on progress.
            sc.priority = priority
            sc.order = sc_order
            sc.nr_to_reclaim = nr_to_reclaim
            sc.nr_scanned = 0
            before = sc.nr_reclaimed
            shrink_node(m, sc)
            nr_reclaimed = sc.nr_reclaimed - before
            scanned = sc.nr_scanned
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
            if priority < 1:
                break
    if not balanced_out and not total:
        st.kswapd_failures += 1
    # out:
    for z in zones:
        m.zones[z]["flags"] &= ~ZONE_RECLAIM_ACTIVE
    if boosted:
        for z, boost in zone_boosts.items():
            if boost:
                zone = m.zones[z]
                zone["watermark_boost"] -= min(int(zone["watermark_boost"]), boost)
        wakeup_kcompactd(m, m.pageblock_order, highest_zoneidx)
    return total, sc_order

"""Watermark boosting and ALLOC_NOFRAGMENT (Linux 5.0), as 6.1 has them (`mm/page_alloc.c`,
`include/linux/mmzone.h` of 6.1.y, read at unifreq/linux-6.1.y 07badeaa).

- `wmark_pages(zone, i)`: 6.1's `wmark_pages()`/`min_wmark_pages()`/`low_wmark_pages()`/
  `high_wmark_pages()`, `zone->_watermark[i] + zone->watermark_boost`. Every check of the model
  that reads a zone's watermark reads it through this (the allocator's zonelist walk, kswapd's
  balance test, compaction's suitability test); `zone['watermark']` is `_watermark`, which 6.1
  reads directly only in `boost_watermark`, `zone_watermark_fast`'s GFP_ATOMIC clause and the
  watermark set-up.
- `boost_watermark(zone, node)`: raise `watermark_boost` by a pageblock, up to
  `max(pageblock_nr_pages, mult_frac(_watermark[WMARK_HIGH], watermark_boost_factor, 10000))`.
  `steal_suitable_fallback` (`models.mm.fallback_6_1`) calls it and sets ZONE_BOOSTED_WATERMARK
  for an ALLOC_KSWAPD request; `rmqueue` (`models.mm.alloc`) clears the flag and records a
  kswapd wake-up for the zone in `node['boost_wake']`, which the Python side turns into
  `wakeup_kswapd(zone, 0, 0, zone_idx(zone))` (`models.mm.slowpath.boost_wakeups`). kswapd's
  boosted reclaim and the reset of the boost are in `models.mm.kswapd_6_1`.
- `alloc_flags_nofragment(zones, node, high_zone, gfp)`: the alloc_flags `__alloc_pages` adds
  for its first attempt, ALLOC_KSWAPD and (CONFIG_ZONE_DMA32, preferred zone ZONE_NORMAL)
  ALLOC_NOFRAGMENT. `__rmqueue_fallback` then takes only blocks of pageblock_order or more, and
  `get_page_from_freelist` retries the zonelist without the flag when the first pass failed.

A kernel before 5.0 has `node['watermark_boost_factor']` 0 and `node['nofragment']` 0: the
boost stays 0 and the flag is never set, so those kernels run exactly as before.
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.constants import (
    ALLOC_KSWAPD,
    ALLOC_NOFRAGMENT,
    WMARK_HIGH,
    ZONE_NORMAL,
)
from fragsim.models.mm.gfp import GFP
from fragsim.models.mm.jit import compiled

__all__ = [
    "WATERMARK_BOOST_FACTOR_DEFAULT",
    "WATERMARK_BOOST_FACTOR_RANGE",
    "alloc_flags_kswapd",
    "alloc_flags_nofragment",
    "boost_watermark",
    "wmark_pages",
]

#: 6.1 `int watermark_boost_factor __read_mostly = 15000;`
WATERMARK_BOOST_FACTOR_DEFAULT = 15000
#: /proc/sys/vm/watermark_boost_factor's range in 6.1 (`proc_dointvec_minmax`, extra1
#: SYSCTL_ZERO, no upper bound: an int).
WATERMARK_BOOST_FACTOR_RANGE = (0, (1 << 31) - 1)

_NO_KSWAPD = int(GFP.NO_KSWAPD)


@compiled("zone, int", inline=True)
def wmark_pages(zone: np.ndarray, i: int) -> int:
    """6.1 `wmark_pages(z, i)`: `z->_watermark[i] + z->watermark_boost`."""
    mark: int = zone["watermark"][i] + zone["watermark_boost"]
    return mark


@compiled("zone, nd", inline=True)
def boost_watermark(zone: np.ndarray, node: np.ndarray) -> bool:
    """6.1 `boost_watermark()`: raise `zone->watermark_boost` by pageblock_nr_pages, up to
    `max_boost`; whether it did.

    Not at all when `watermark_boost_factor` is 0; not in a zone whose managed pages (the
    present pages here) are fewer than 4 pageblocks ("On small machines ... boosting the
    watermark can cause an out of memory situation immediately"); not while
    `max_boost = mult_frac(_watermark[WMARK_HIGH], watermark_boost_factor, 10000)` is 0 ("high
    watermark may be uninitialised if fragmentation occurs very early in boot"). Then
    `max_boost = max(pageblock_nr_pages, max_boost)` and
    `watermark_boost = min(watermark_boost + pageblock_nr_pages, max_boost)`.
    """
    factor = node["watermark_boost_factor"]
    if factor == 0:
        return False
    pageblock_nr_pages = 1 << node["pageblock_order"]
    if pageblock_nr_pages * 4 > zone["present_pages"]:
        return False
    # mult_frac(x, n, d) is x * n / d without the overflow; the same value for these sizes.
    max_boost = zone["watermark"][WMARK_HIGH] * factor // 10000
    if max_boost == 0:
        return False
    max_boost = max(pageblock_nr_pages, max_boost)
    zone["watermark_boost"] = min(zone["watermark_boost"] + pageblock_nr_pages, max_boost)
    return True


def alloc_flags_kswapd(gfp: int) -> int:
    """ALLOC_KSWAPD when the request may wake kswapd: 6.1 `gfp_to_alloc_flags` and
    `alloc_flags_nofragment` copy `__GFP_KSWAPD_RECLAIM` into it; in the model's 2.6.24 GFP
    bits, that is every request without `__GFP_NO_KSWAPD`."""
    return 0 if gfp & _NO_KSWAPD else ALLOC_KSWAPD


def alloc_flags_nofragment(zones: np.ndarray, node: np.ndarray, high_zone: int,
                           gfp: int) -> int:
    """6.1 `alloc_flags_nofragment(ac.preferred_zoneref->zone, gfp)`, the flags
    `__alloc_pages` adds to ALLOC_WMARK_LOW for the first `get_page_from_freelist`.

    ALLOC_KSWAPD from the gfp mask (`alloc_flags_kswapd`). With CONFIG_ZONE_DMA32
    (`node['nofragment']`, 5.0+ on an architecture with ZONE_DMA32): nothing more when the
    preferred zone (the first populated zone from `high_zone` down) is not ZONE_NORMAL;
    otherwise ALLOC_NOFRAGMENT. The check that the zone below is populated is made only with
    more than one node online ("Also assume on UMA that if Normal is populated then so is
    DMA32"): the model has one node, so a flat layout's lone Normal zone gets the flag too. On
    a kernel without boosting (before 5.0) the result is unused: nothing reads either flag.
    """
    alloc_flags = alloc_flags_kswapd(gfp)
    nd = node[0]
    if nd["nofragment"] == 0:
        return alloc_flags
    preferred = -1
    for z in range(high_zone, -1, -1):
        if zones[z]["present_pages"] != 0:
            preferred = z
            break
    if preferred < 0:
        return alloc_flags
    if int(zones[preferred]["zone_type"]) != ZONE_NORMAL:
        return alloc_flags
    return alloc_flags | ALLOC_NOFRAGMENT

"""Kernel profiles: named presets of every allocator option, as data.

| profile | policy          | lumpy reclaim | compaction | kcompactd | ZONE_MOVABLE |
|---------|-----------------|---------------|------------|-----------|--------------|
| 2.6.20  | vanilla         | no            | no         | no        | no           |
| 2.6.23  | vanilla         | yes           | no         | no        | available    |
| 2.6.24  | mobility        | yes           | no         | no        | available    |
| 2.6.35  | mobility-2.6.35 | yes           | yes        | no        | available    |
| 6.1     | mobility-6.1    | no (3.5)      | yes        | yes (4.6) | available    |
| 6.15    | mobility-6.15   | no (3.5)      | yes        | yes (4.6) | available    |

`mobility-2.6.35` is 2.6.35's own placement (`models.mm.policy`): merging buddies added at the
tail, `change_pageblock_range`, at most 2 RESERVE pageblocks, `should_alloc_retry`.
`mobility-6.1` is 6.1's (`find_suitable_fallback`/`steal_suitable_fallback`,
`buddy_merge_likely`, MIGRATE_HIGHATOMIC instead of RESERVE, 6.1 `__zone_watermark_ok`,
ALLOC_NOFRAGMENT). The 6.1 preset also has `watermark_scale_factor` 10 (4.6),
`watermark_boost_factor` 15000 (5.0: watermark boosting on a fragmenting steal, rmqueue's
kswapd wake-up and kswapd's boosted reclaim, `models.mm.boost` and `models.mm.kswapd_6_1`;
0 turns it off; the presets before 5.0 have no such option), transparent huge pages (2.6.38;
the sysfs knobs keep the model's defaults, `never`/`madvise`), 6.1's slow path and direct
compaction (`models.mm.slowpath_6_1`), and 6.1's kcompactd (4.6) with proactive compaction (5.9,
`compaction_proactiveness` 20) (`models.mm.kcompactd`), all on 6.1's compaction scanners
(`models.mm.compaction_6_1`: skip hints, cached positions, the fast searches).
`mobility-6.15` is 6.15's (`__rmqueue_claim`/`__rmqueue_steal` with the mode cache, free pages
always on their pageblock type's lists, 6.15's HIGHATOMIC and `__zone_watermark_ok`); the 6.15
preset keeps everything else of the 6.1 preset (boosting, kcompactd, proactive
compaction), and has `defrag_mode` (/proc/sys/vm/defrag_mode,
default 0; `machine_config("6.15", memory=..., defrag_mode=True)`).

Writeback limits (`vm_dirty_ratio`, `dirty_background_ratio`, mm/page-writeback.c): 40/10 in
2.6.20, 10/5 from 2.6.22, 20/10 in 2.6.35 and 6.1. `radix_tree_node` slabs are UNMOVABLE before
2.6.35 (`lib/radix-tree.c` asks for __GFP_RECLAIMABLE, but 2.6.24 `cache_grow()` masks it off)
and RECLAIMABLE from 2.6.35 (SLAB_RECLAIM_ACCOUNT).

Per-cpu lists exist in every version; they are off by default in the presets (a probe or replay
asks for them) because they matter for realism more than for fragmentation. Which lists a
version has is its policy's: 2.6.24's hot/cold lists, 2.6.35's per-migratetype lists
(`pcp_sublists`), and on 6.1 and 6.15 6.1's per-order lists (`pcp_per_order`,
`models.mm.pcp_6_1`; orders up to 3 and, with THP, pageblock_order). Any option can be
overridden: `machine_config("2.6.24", memory=..., lumpy_reclaim=False)`.
ZONE_MOVABLE is "available" from 2.6.23: it exists only when `kernelcore=`/`movablecore=` is set,
and setting either on 2.6.20 is refused, as that kernel has no such parameter.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from fragsim.models.mm.machine import MachineConfig

__all__ = ["KERNEL_PROFILES", "kernel_profile", "machine_config", "migratetype_labels"]

KERNEL_PROFILES: dict[str, dict[str, Any]] = {
    "2.6.20": {"policy": "vanilla", "lumpy_reclaim": False, "compaction": False,
               "dirty_ratio": 40, "dirty_background_ratio": 10},
    "2.6.23": {"policy": "vanilla", "lumpy_reclaim": True, "compaction": False,
               "dirty_ratio": 10, "dirty_background_ratio": 5},
    "2.6.24": {"policy": "mobility", "lumpy_reclaim": True, "compaction": False,
               "dirty_ratio": 10, "dirty_background_ratio": 5},
    "2.6.35": {"policy": "mobility-2.6.35", "lumpy_reclaim": True, "compaction": True,
               "dirty_ratio": 20, "dirty_background_ratio": 10,
               "radix_tree_node_reclaimable": True},
    "6.1": {"policy": "mobility-6.1", "lumpy_reclaim": False, "compaction": True,
            "dirty_ratio": 20, "dirty_background_ratio": 10,
            "radix_tree_node_reclaimable": True, "thp": True, "watermark_scale_factor": 10,
            "kcompactd": True, "compaction_proactiveness": 20,
            "watermark_boost_factor": 15000},
    "6.15": {"policy": "mobility-6.15", "lumpy_reclaim": False, "compaction": True,
             "dirty_ratio": 20, "dirty_background_ratio": 10,
             "radix_tree_node_reclaimable": True, "thp": True, "watermark_scale_factor": 10,
             "kcompactd": True, "compaction_proactiveness": 20,
             "watermark_boost_factor": 15000},
}

_NO_ZONE_MOVABLE = {"2.6.20"}


def kernel_profile(name: str) -> dict[str, Any]:
    """The option values of a named kernel; ValueError naming the allowed ones otherwise."""
    try:
        return dict(KERNEL_PROFILES[name])
    except KeyError:
        raise ValueError(f"unknown kernel profile {name!r}: allowed are "
                         f"{', '.join(KERNEL_PROFILES)}") from None


def migratetype_labels(kernel: str) -> tuple[str, ...]:
    """The names of the internal migratetype slots 0..4 on `kernel` (a profile, or a policy
    name as `fragsim replay --policy` records it): its policy's `migratetype_labels`, so slot
    3 is `HighAtomic` on 6.1 and `Reserve` before. Anything else gets the 2.6.24 names."""
    from fragsim.models.mm.policy import POLICIES

    policy = KERNEL_PROFILES.get(kernel, {}).get("policy", kernel)
    chosen = POLICIES.get(policy, POLICIES["mobility"])
    return chosen.migratetype_labels


def machine_config(kernel: str, **overrides: Any) -> MachineConfig:
    """A MachineConfig for `kernel` with `overrides` (memory is required) applied on top."""
    values = kernel_profile(kernel)
    known = {f.name for f in fields(MachineConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown machine option(s) {', '.join(unknown)}: allowed are "
                         f"{', '.join(sorted(known))}")
    values.update(overrides)
    if kernel in _NO_ZONE_MOVABLE and (values.get("kernelcore") or values.get("movablecore")):
        raise ValueError(f"kernel {kernel} has no ZONE_MOVABLE: kernelcore=/movablecore= need "
                         "2.6.23 or later")
    if "memory" not in values:
        raise ValueError("a machine needs a memory size")
    return MachineConfig(**values).resolved()

"""A machine: one node's zones, free lists and pageblocks, booted and ready to allocate.

`Machine` is the Python face of the compiled core: it builds the geometry, boots (every
pageblock MOVABLE, memory freed in increasing pfn order, then watermarks and MIGRATE_RESERVE as
`init_per_zone_pages_min()` sets them), and offers allocation and free calls, single and batched.
Requests are given as GFP masks (resolved with `gfp_zone` and `allocflags_to_migratetype`) or as
a bare migratetype. `copy()` is a cheap deep copy for probes: four byte copies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from fragsim.models.mm import alloc as _alloc
from fragsim.models.mm import pcp as _pcp
from fragsim.models.mm.boost import WATERMARK_BOOST_FACTOR_RANGE
from fragsim.models.mm.constants import (
    ALLOC_WMARK_LOW,
    KIND_NONE,
    MIGRATE_MOVABLE,
    MIGRATE_TYPES_2_6_24,
    MIGRATE_UNMOVABLE,
    PAGE_SHIFT,
    ZONE_DMA,
    ZONE_DMA32,
    ZONE_HIGHMEM,
    ZONE_MOVABLE,
    ZONE_NAMES,
    ZONE_NORMAL,
)
from fragsim.models.mm.geometry import (
    check_orders,
    get_profile,
    memory_pages,
    split_movable,
    zone_spans,
)
from fragsim.models.mm.gfp import GFP, default_gfp_for, gfp_zone, gfpflags_to_migratetype
from fragsim.models.mm.huge_memory import check_thp_settings
from fragsim.models.mm.jit import entry_point
from fragsim.models.mm.pcp_6_1 import zone_pcp_update
from fragsim.models.mm.policy import Policy, get_policy
from fragsim.models.mm.reclaim_state import DEF_PRIORITY, copy_reclaim_state
from fragsim.models.mm.state import (
    KCOMPACTD_STAT_NAMES,
    RECLAIM_6_1_STAT_NAMES,
    STAT,
    STAT_NAMES,
    THP_STAT_NAMES,
    new_node,
    new_pages,
    new_zones,
    state_bytes,
)
from fragsim.models.mm.watermarks import (
    WATERMARK_SCALE_FACTOR_RANGE,
    default_min_free_kbytes,
    lowmem_reserves,
    setup_zone_migrate_reserve,
    zone_watermarks,
)

__all__ = [
    "Machine",
    "MachineConfig",
]


def _raw_copy(a: np.ndarray) -> np.ndarray:
    """A copy of a C-contiguous state array made as one byte copy (a memcpy): numpy copies a
    15-byte record array field by field, several times slower."""
    return a.view(np.uint8).copy().view(a.dtype).reshape(a.shape)


@dataclass(frozen=True)
class MachineConfig:
    """What a machine is made of. Sizes in bytes; None means the profile's or kernel's default.

    `layout="flat"` puts all memory in one Normal zone from pfn 0; `layout="zones"` uses the
    profile's DMA/DMA32/Normal/HighMem boundaries.
    """

    memory: int
    policy: str = "mobility"
    profile: str = "x86_64"
    layout: str = "flat"
    max_order: int | None = None
    pageblock_order: int | None = None
    min_free_kbytes: int | None = None
    kernelcore: int | None = None
    movablecore: int | None = None
    #: Slow-path mechanisms (issue 4); `models.mm.profiles` names the kernel presets.
    lumpy_reclaim: bool = False
    compaction: bool = False
    pcp: bool = False
    nr_cpus: int = 1
    swap: int = 0  # bytes of swap space; 0: anonymous pages cannot be reclaimed
    extfrag_threshold: int = 500  # /proc/sys/vm/extfrag_threshold (2.6.35)
    writeback_delay: float = 0.5  # simulated seconds a dirty page's writeback takes
    #: Kernel facts the agents above the core follow (`models.mm.profiles` sets them per
    #: version): /proc/sys/vm/dirty_ratio and dirty_background_ratio (mm/page-writeback.c),
    #: and whether radix-tree node slabs are RECLAIMABLE (2.6.35 SLAB_RECLAIM_ACCOUNT) or
    #: UNMOVABLE (2.6.24 strips the per-call __GFP_RECLAIMABLE in cache_grow()).
    dirty_ratio: int = 10
    dirty_background_ratio: int = 5
    radix_tree_node_reclaimable: bool = False
    #: Transparent huge pages (2.6.38+, `models.mm.huge_memory`): whether the kernel has them
    #: (a preset fact; no preset up to 2.6.35 does), and the two sysfs knobs the agents' anonymous
    #: faults follow, /sys/kernel/mm/transparent_hugepage/enabled and .../defrag.
    thp: bool = False
    thp_enabled: str = "never"
    thp_defrag: str = "madvise"
    #: /proc/sys/vm/watermark_scale_factor (4.6+; the 6.1 preset sets its default, 10); None:
    #: a kernel without it, whose low/high watermarks are min + min/4 and min + min/2.
    watermark_scale_factor: int | None = None
    #: kcompactd, the per-node compaction daemon (4.6; `models.mm.kcompactd`): a preset fact
    #: (the 6.1 preset has it), and /proc/sys/vm/compaction_proactiveness (5.9; 0..100, 6.1's
    #: default 20; None: a kernel without proactive compaction).
    kcompactd: bool = False
    compaction_proactiveness: int | None = None
    #: /proc/sys/vm/watermark_boost_factor (5.0+; the 6.1 preset sets its default, 15000; 0
    #: turns boosting off); None: a kernel without watermark boosting.
    watermark_boost_factor: int | None = None
    #: /proc/sys/vm/defrag_mode (6.15): every allocation asks for ALLOC_NOFRAGMENT and only the
    #: slow path's last retry may fragment a pageblock. Needs a policy that has it.
    defrag_mode: bool = False

    def resolved(self) -> MachineConfig:
        """The config with profile defaults filled in and every value checked."""
        profile = get_profile(self.profile)
        policy = get_policy(self.policy)
        if self.defrag_mode and not policy.has_defrag_mode:
            raise ValueError(f"defrag_mode: kernel {policy.kernel} has no vm.defrag_mode "
                             "(6.15 or later)")
        if self.layout not in ("flat", "zones"):
            raise ValueError(f"unknown layout {self.layout!r}: allowed are flat, zones")
        max_order = profile.max_order if self.max_order is None else self.max_order
        pbo = profile.pageblock_order if self.pageblock_order is None else self.pageblock_order
        if self.max_order is not None and self.pageblock_order is None:
            pbo = min(pbo, max_order - 1)
        check_orders(max_order, pbo)
        memory_pages(self.memory, max_order)
        if self.min_free_kbytes is not None and self.min_free_kbytes < 0:
            raise ValueError(f"min_free_kbytes {self.min_free_kbytes} must be >= 0")
        if not 1 <= self.nr_cpus <= 8:
            raise ValueError(f"nr_cpus {self.nr_cpus} is out of range: allowed 1..8")
        if not 0 <= self.extfrag_threshold <= 1000:
            raise ValueError(f"extfrag_threshold {self.extfrag_threshold} is out of range: "
                             "allowed 0..1000")
        if self.writeback_delay < 0:
            raise ValueError(f"writeback_delay {self.writeback_delay} must be >= 0")
        check_thp_settings(self.thp_enabled, self.thp_defrag, self.thp, "of this config")
        if self.watermark_scale_factor is not None:
            lo, hi = WATERMARK_SCALE_FACTOR_RANGE
            if not lo <= self.watermark_scale_factor <= hi:
                raise ValueError(f"watermark_scale_factor {self.watermark_scale_factor} is out "
                                 f"of range: allowed {lo}..{hi}")
        if self.compaction_proactiveness is not None:
            if not self.kcompactd:
                raise ValueError(f"compaction_proactiveness {self.compaction_proactiveness}: "
                                 "this kernel has no kcompactd (4.6 or later): allowed is None")
            if not 0 <= self.compaction_proactiveness <= 100:
                raise ValueError(f"compaction_proactiveness {self.compaction_proactiveness} is "
                                 "out of range: allowed 0..100")
        if self.watermark_boost_factor is not None:
            lo, hi = WATERMARK_BOOST_FACTOR_RANGE
            if not lo <= self.watermark_boost_factor <= hi:
                raise ValueError(f"watermark_boost_factor {self.watermark_boost_factor} is out "
                                 f"of range: allowed {lo}..{hi}")
        for name in ("kernelcore", "movablecore", "swap"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} {value} must be >= 0")
        return replace(self, max_order=max_order, pageblock_order=pbo)


class Machine:
    """One simulated node: state arrays plus the policy and geometry that shaped them."""

    def __init__(self, config: MachineConfig) -> None:
        cfg = config.resolved()
        assert cfg.max_order is not None and cfg.pageblock_order is not None
        self.config = cfg
        self.policy: Policy = get_policy(cfg.policy)
        self.max_order: int = cfg.max_order
        self.pageblock_order: int = cfg.pageblock_order
        self.profile = get_profile(cfg.profile)
        nr_pages = memory_pages(cfg.memory, self.max_order)
        self.nr_pages = nr_pages
        boot_spans = zone_spans(None if cfg.layout == "flat" else self.profile, nr_pages)
        spans = split_movable(
            boot_spans,
            None if cfg.kernelcore is None else cfg.kernelcore >> PAGE_SHIFT,
            None if cfg.movablecore is None else cfg.movablecore >> PAGE_SHIFT,
            self.max_order,
        )
        self.pages = new_pages(nr_pages)
        self.zones = new_zones(len(spans))
        self.node = new_node()
        nr_blocks = -(-nr_pages // (1 << self.pageblock_order))
        self.pageblock_type = np.zeros(nr_blocks, dtype=np.int8)
        #: PB_migrate_skip of each pageblock (6.1 compaction's skip hints,
        #: `models.mm.compaction_6_1`).
        self.pageblock_skip = np.zeros(nr_blocks, dtype=np.uint8)
        for z, (start, end) in enumerate(spans):
            self.zones[z]["zone_type"] = z
            self.zones[z]["start_pfn"] = start
            self.zones[z]["end_pfn"] = end
            self.zones[z]["present_pages"] = end - start
        # 6.1 compaction's cached positions start unset: the kernel's zero lies below every
        # zone (pfn 0 is never in one), the model's DMA zone starts at pfn 0, so -1 says it.
        self.zones["compact_cached_free_pfn"] = -1
        self.zones["compact_cached_migrate_pfn"] = -1
        self.zones["compact_init_migrate_pfn"] = -1
        # ZONE_MOVABLE counts as highmem when it was carved out of HighMem (x86 32-bit).
        self.movable_is_highmem = (spans[ZONE_MOVABLE][1] > spans[ZONE_MOVABLE][0]
                                   and boot_spans[ZONE_HIGHMEM][1] > boot_spans[ZONE_HIGHMEM][0])
        nd = self.node[0]
        nd["max_order"] = self.max_order
        nd["pageblock_order"] = self.pageblock_order
        nd["nr_zones"] = len(spans)
        nd["claim_rule"] = self.policy.claim_rule
        nd["free_tail"] = self.policy.free_rule
        nd["pcp_sublists"] = 1 if self.policy.pcp_sublists else 0
        # 6.1 per-order pcp lists; CONFIG_TRANSPARENT_HUGEPAGE adds pageblock_order to them.
        nd["pcp_per_order"] = 1 if self.policy.pcp_per_order else 0
        nd["pcp_thp"] = 1 if cfg.thp else 0
        nd["migrate_rule"] = self.policy.migrate_rule
        nd["writeback_rule"] = self.policy.writeback_rule
        if self.policy.reclaim == "6.1":  # 2.6.28+ split anon/file LRU (models.mm.lru)
            self.zones["split_lru"] = 1
        self.zones["wmark_rule"] = self.policy.wmark_rule
        nd["fallbacks"] = self.policy.fallback_table()
        # build_all_zonelists(): grouping is off when memory is too small to be worth it.
        self.grouping_disabled = nr_pages < (1 << self.pageblock_order) * MIGRATE_TYPES_2_6_24
        grouping = self.policy.grouping and not self.grouping_disabled
        nd["grouping"] = 1 if grouping else 0
        # MIGRATE_HIGHATOMIC reserves need grouping: with it disabled the model keeps 2.6.24's
        # single list per order (6.1 would still reserve HIGHATOMIC pageblocks then).
        nd["highatomic"] = 1 if self.policy.highatomic and grouping else 0
        # 5.0+: watermark boosting (the sysctl; 0 and absent both mean none) and
        # ALLOC_NOFRAGMENT, which exists only with CONFIG_ZONE_DMA32 (an architecture with a
        # DMA32 zone: x86_64 here, whatever the layout).
        nd["watermark_boost_factor"] = cfg.watermark_boost_factor or 0
        has_dma32 = any(ztype == ZONE_DMA32 for ztype, _ in self.profile.zone_ends)
        nd["nofragment"] = 1 if self.policy.nofragment and has_dma32 else 0
        nd["typed_freelists"] = 1 if self.policy.typed_freelists and grouping else 0
        nd["defrag_mode"] = 1 if cfg.defrag_mode and grouping else 0
        # memmap_init_zone(): every pageblock starts MOVABLE (UNMOVABLE when not grouping).
        self.pageblock_type[:] = MIGRATE_MOVABLE if grouping else MIGRATE_UNMOVABLE
        self._boot()
        # zone_pcp_init(): per-cpu list sizes; the lists are used only when cfg.pcp.
        _pcp.setup_pagesets(self)
        self._pcp = cfg.pcp  # config.pcp, one attribute load away for the hot path
        lowmem = sum(self.present_pages(z) for z in (ZONE_DMA, ZONE_DMA32, ZONE_NORMAL))
        self.default_min_free_kbytes = default_min_free_kbytes(lowmem)
        self.set_min_free_kbytes(
            self.default_min_free_kbytes if cfg.min_free_kbytes is None else cfg.min_free_kbytes
        )
        self._request_cache: dict[tuple[int | None, int | None], tuple[int, int]] = {}
        # Compiled entry points of the one-page calls, fetched on first use (`entry_point`).
        self._alloc_entry: Callable[..., int] | None = None
        self._free_entry: Callable[..., int] | None = None
        # swapon(): the swap area; free_area_init_core(): prev_priority starts at DEF_PRIORITY.
        nd["total_swap_pages"] = nd["nr_swap_pages"] = cfg.swap >> PAGE_SHIFT
        self.zones["prev_priority"] = DEF_PRIORITY
        #: Simulated time in seconds; the caller advances it (writeback completes against it).
        self.now = 0.0
        #: Owner notifications the slow path leaves for the page owners (agents) to collect:
        #: migrated rows (old_pfn, new_pfn, owner), reclaimed rows (pfn, owner, kind).
        self.migrated: list[np.ndarray] = []
        self.reclaimed: list[np.ndarray] = []
        #: Per zone, the order kswapd was last woken for and has not yet served (-1: asleep).
        self.kswapd_order: list[int] = [-1] * self.zones.shape[0]
        #: Whether the kswapd thread is awake (6.1 `kswapd_is_running`); its daemon sets it.
        self.kswapd_running = False
        #: 6.1 `pgdat->nr_zones`: the highest populated zone's index + 1.
        self.nr_zones = max(self.populated_zones(), default=-1) + 1
        #: 6.1 `pgdat->kcompactd_max_order` and `kcompactd_highest_zoneidx`, as `kcompactd()`
        #: initialises them: 0 (no order asked: `wakeup_kcompactd` records only orders > 0)
        #: and nr_zones - 1.
        self.kcompactd_order = 0
        self.kcompactd_highest_zoneidx = self.nr_zones - 1
        #: `wq_has_sleeper(&pgdat->kcompactd_wait)`: while the kcompactd daemon sleeps, the
        #: call that wakes it (`models.agents.kcompactd`); None otherwise (no daemon, or busy).
        self.kcompactd_sleeper: Callable[[], None] | None = None

    # --- set-up -------------------------------------------------------------------------------
    def _boot(self) -> None:
        """`free_all_bootmem()`: each zone's pages freed in increasing pfn order."""
        for z in range(self.zones.shape[0]):
            start, end = int(self.zones[z]["start_pfn"]), int(self.zones[z]["end_pfn"])
            if end > start:
                _alloc.free_range_boot(self.pages, self.zones, self.pageblock_type, self.node,
                                       z, start, end)

    def set_min_free_kbytes(self, kbytes: int) -> None:
        """Write `/proc/sys/vm/min_free_kbytes`: recompute watermarks and MIGRATE_RESERVE."""
        if kbytes < 0:
            raise ValueError(f"min_free_kbytes {kbytes} must be >= 0")
        self.min_free_kbytes = kbytes
        present = [self.present_pages(z) for z in range(self.zones.shape[0])]
        marks = zone_watermarks(present, kbytes, self.movable_is_highmem,
                                self.config.watermark_scale_factor)
        reserves = lowmem_reserves(present)
        pbo = self.pageblock_order
        for z in range(self.zones.shape[0]):
            self.zones[z]["watermark"] = marks[z]
            # 6.1 __setup_per_zone_wmarks(): `zone->watermark_boost = 0` (always 0 before 5.0).
            self.zones[z]["watermark_boost"] = 0
            self.zones[z]["lowmem_reserve"] = reserves[z]
            if present[z] and self.policy.migrate_reserve and self.node[0]["grouping"]:
                pages_min = marks[z][0]
                blocks = -(-pages_min // (1 << pbo)) if pages_min else 0
                if self.policy.max_reserve_blocks is not None:
                    blocks = min(blocks, self.policy.max_reserve_blocks)
                setup_zone_migrate_reserve(self.pages, self.zones, self.pageblock_type,
                                           self.node, z, blocks)
        if self.node[0]["pcp_per_order"]:
            # 6.1 setup_per_zone_wmarks(): "The watermark size have changed so update the pcpu
            # batch and high limits" (`zone_pcp_update(zone, 0)`: high follows the low mark).
            zone_pcp_update(self)

    # --- queries ------------------------------------------------------------------------------
    def present_pages(self, z: int) -> int:
        return int(self.zones[z]["present_pages"])

    def populated_zones(self) -> list[int]:
        """Zone indices with pages, low to high."""
        return [z for z in range(self.zones.shape[0]) if self.zones[z]["present_pages"] > 0]

    def zone_name(self, z: int) -> str:
        return ZONE_NAMES[int(self.zones[z]["zone_type"])]

    @property
    def grouping(self) -> bool:
        """Whether pages are grouped by mobility (policy on and not disabled for small memory)."""
        return bool(self.node[0]["grouping"])

    def free_pages(self) -> int:
        return int(self.zones["free_pages"].sum())

    def vmstat(self) -> dict[str, int]:
        """Node counters by name (`STAT_NAMES`), plus pgalloc per zone and per-order counts."""
        nd = self.node[0]
        out = {name: int(nd["stat"][i]) for i, name in enumerate(STAT_NAMES)
               if (self.config.thp or name not in THP_STAT_NAMES)
               and (self.config.kcompactd or name not in KCOMPACTD_STAT_NAMES)
               and (self.policy.reclaim == "6.1" or name not in RECLAIM_6_1_STAT_NAMES)}
        out["nr_free_pages"] = self.free_pages()
        for z in self.populated_zones():
            out[f"pgalloc_{self.zone_name(z).lower()}"] = int(nd["pgalloc_zone"][z])
        for o in range(self.max_order):
            out[f"alloc_order_{o}"] = int(nd["alloc_order"][o])
            out[f"allocfail_order_{o}"] = int(nd["fail_order"][o])
            out[f"extfrag_fallback_order_{o}"] = int(nd["fallback_order"][o])
        return out

    def stat(self, name: str) -> int:
        return int(self.node[0]["stat"][STAT[name]])

    def state_bytes(self) -> int:
        return (state_bytes(self.pages, self.zones, self.pageblock_type, self.node)
                + self.pageblock_skip.nbytes)

    # --- requests -----------------------------------------------------------------------------
    def resolve(self, gfp: int | None = None, migratetype: int | None = None) -> tuple[int, int]:
        """(highest zone, migratetype) of a request given as a GFP mask and/or a migratetype.

        A bare migratetype uses the GFP mask its typical callers use (MOVABLE: HIGHUSER_MOVABLE,
        so it may use ZONE_MOVABLE; RECLAIMABLE: GFP_TEMPORARY; UNMOVABLE: GFP_KERNEL).
        """
        key = (gfp, migratetype)
        hit = self._request_cache.get(key)
        if hit is not None:
            return hit
        if gfp is None:
            if migratetype is None:
                raise ValueError("a request needs a gfp mask or a migratetype")
            gfp = default_gfp_for(migratetype)
        mt = gfpflags_to_migratetype(gfp) if migratetype is None else migratetype
        if not 0 <= mt < MIGRATE_TYPES_2_6_24:
            raise ValueError(f"migratetype {mt} out of range 0..{MIGRATE_TYPES_2_6_24 - 1}")
        out = (gfp_zone(gfp), mt)
        self._request_cache[key] = out
        return out

    def check_order(self, order: int) -> None:
        if not 0 <= order < self.max_order:
            raise ValueError(f"order {order} out of range 0..{self.max_order - 1}")

    def check_cpu(self, cpu: int) -> int:
        """`cpu` if it is one of the machine's cpus (0..nr_cpus-1); ValueError otherwise."""
        if not 0 <= cpu < self.config.nr_cpus:
            raise ValueError(f"cpu {cpu} out of range 0..{self.config.nr_cpus - 1}")
        return cpu

    def _pcp_arrays(self, n: int, cpu: int | np.ndarray,
                    cold: bool | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-request cpu and cold (0/1) arrays of length `n`, checked."""
        cpus = np.ascontiguousarray(np.broadcast_to(np.asarray(cpu, dtype=np.int64), (n,)))
        if cpus.size and (cpus.min() < 0 or cpus.max() >= self.config.nr_cpus):
            raise ValueError(f"cpus must be in 0..{self.config.nr_cpus - 1}")
        colds = np.ascontiguousarray(np.broadcast_to(np.asarray(cold) != 0, (n,)),
                                     dtype=np.int64)
        return cpus, colds

    def alloc(self, order: int, gfp: int | None = None, cpu: int = 0, cold: bool = False, *,
              migratetype: int | None = None, owner: int = 0, kind: int = KIND_NONE,
              alloc_flags: int = ALLOC_WMARK_LOW) -> int:
        """Allocate one block (`get_page_from_freelist`): its pfn, or -1 when no zone can serve it.

        With neither gfp nor migratetype the request is GFP_KERNEL (UNMOVABLE). With per-cpu
        lists on, an order-0 request uses `cpu`'s lists, cold if `cold` or gfp has __GFP_COLD
        (6.1's per-order lists: orders up to 3 and, with THP, pageblock_order; no cold).
        `alloc_flags` are used as given: the 5.0+ bits a kernel's caller adds (ALLOC_KSWAPD,
        ALLOC_NOFRAGMENT: `models.mm.boost.alloc_flags_nofragment`) are added by the slow path
        and the simulated kernel, not here.
        """
        # This is the one-page-per-call hot path: keep it to a dict hit and one compiled call.
        req = self._request_cache.get((gfp, migratetype))
        if req is None:
            req = self.resolve(gfp, MIGRATE_UNMOVABLE if gfp is None and migratetype is None
                               else migratetype)
            self._request_cache[(gfp, migratetype)] = req
        if not 0 <= order < self.max_order:
            self.check_order(order)
        if self._pcp:
            cold = cold or (gfp is not None and bool(gfp & GFP.COLD))
            return int(_alloc.alloc_one_pcp(self.pages, self.zones, self.pageblock_type,
                                            self.node, order, req[0], req[1], alloc_flags,
                                            owner, kind, self.check_cpu(cpu), 1 if cold else 0))
        ep = self._alloc_entry
        if ep is None:
            ep = self._alloc_entry = entry_point(_alloc.alloc_one)
        return ep(self.pages, self.zones, self.pageblock_type, self.node, order, req[0], req[1],
                  alloc_flags, owner, kind)

    def alloc_request(self, order: int, high_zone: int, migratetype: int, alloc_flags: int,
                      owner: int = 0, kind: int = KIND_NONE, cpu: int = 0,
                      cold: bool = False) -> int:
        """One attempt with an already resolved request (the slow path's retries)."""
        if self._pcp:
            return int(_alloc.alloc_one_pcp(self.pages, self.zones, self.pageblock_type,
                                            self.node, order, high_zone, migratetype,
                                            alloc_flags, owner, kind, self.check_cpu(cpu),
                                            1 if cold else 0))
        return int(_alloc.alloc_one(self.pages, self.zones, self.pageblock_type, self.node,
                                    order, high_zone, migratetype, alloc_flags, owner, kind))

    def preferred_zone(self, high_zone: int) -> int:
        """The first populated zone of the zonelist starting at `high_zone`."""
        for z in range(high_zone, -1, -1):
            if self.zones[z]["present_pages"] > 0:
                return z
        raise ValueError(f"no populated zone at or below {ZONE_NAMES[high_zone]}")

    def alloc_many(self, order: int, count: int, gfp: int | None = None, *,
                   migratetype: int | None = None, owner: int = 0, kind: int = KIND_NONE,
                   alloc_flags: int = ALLOC_WMARK_LOW, cpu: int = 0,
                   cold: bool = False) -> np.ndarray:
        """`count` blocks of one kind of request in one call; -1 where an allocation failed."""
        if gfp is None and migratetype is None:
            migratetype = MIGRATE_UNMOVABLE
        high_zone, mt = self.resolve(gfp, migratetype)
        self.check_order(order)
        n = int(count)
        return self.alloc_batch(np.full(n, order, np.int64), np.full(n, high_zone, np.int64),
                                np.full(n, mt, np.int64), np.full(n, alloc_flags, np.int64),
                                np.full(n, owner, np.int64), np.full(n, kind, np.int64),
                                cpu=cpu, cold=cold)

    def alloc_batch(self, orders: np.ndarray, high_zones: np.ndarray, migratetypes: np.ndarray,
                    alloc_flags: np.ndarray, owners: np.ndarray, kinds: np.ndarray, *,
                    cpu: int | np.ndarray = 0, cold: bool | np.ndarray = False) -> np.ndarray:
        """Allocate a batch of mixed requests in one compiled call (arrays of equal length, int64;
        use `resolve()` for each request's zone and type). Returns pfns, -1 for failures.
        `cpu` and `cold` (one value, or one per request) matter only with per-cpu lists on."""
        orders = np.ascontiguousarray(orders, dtype=np.int64)
        if orders.size and (orders.min() < 0 or orders.max() >= self.max_order):
            raise ValueError(f"orders must be in 0..{self.max_order - 1}")
        out = np.empty(orders.shape[0], dtype=np.int64)
        if self.config.pcp:
            cpus, colds = self._pcp_arrays(orders.shape[0], cpu, cold)
            _alloc.alloc_batch_pcp(self.pages, self.zones, self.pageblock_type, self.node, orders,
                                   np.ascontiguousarray(high_zones, dtype=np.int64),
                                   np.ascontiguousarray(migratetypes, dtype=np.int64),
                                   np.ascontiguousarray(alloc_flags, dtype=np.int64),
                                   np.ascontiguousarray(owners, dtype=np.int64),
                                   np.ascontiguousarray(kinds, dtype=np.int64), out, cpus, colds)
            return out
        _alloc.alloc_batch(self.pages, self.zones, self.pageblock_type, self.node, orders,
                           np.ascontiguousarray(high_zones, dtype=np.int64),
                           np.ascontiguousarray(migratetypes, dtype=np.int64),
                           np.ascontiguousarray(alloc_flags, dtype=np.int64),
                           np.ascontiguousarray(owners, dtype=np.int64),
                           np.ascontiguousarray(kinds, dtype=np.int64), out)
        return out

    def free(self, pfn: int, cpu: int = 0, cold: bool = False) -> int:
        """Free the block headed by `pfn`: FREE_OK, or a FREE_* code (nothing changed). With
        per-cpu lists on, an order-0 page goes to `cpu`'s hot list, or its cold one if `cold`
        (6.1's per-order lists: any order up to 3, and pageblock_order with THP)."""
        if self._pcp:
            return int(_alloc.free_one_pcp(self.pages, self.zones, self.pageblock_type,
                                           self.node, pfn, self.check_cpu(cpu), 1 if cold else 0))
        ep = self._free_entry
        if ep is None:
            ep = self._free_entry = entry_point(_alloc.free_one)
        return ep(self.pages, self.zones, self.pageblock_type, self.node, int(pfn))

    def free_batch(self, pfns: np.ndarray, *, cpu: int | np.ndarray = 0,
                   cold: bool | np.ndarray = False) -> np.ndarray:
        """Free many blocks in one compiled call, in order; returns each FREE_* status. `cpu`
        and `cold` (one value, or one per pfn) matter only with per-cpu lists on."""
        pfns = np.ascontiguousarray(pfns, dtype=np.int64)
        out = np.empty(pfns.shape[0], dtype=np.int64)
        if self.config.pcp:
            cpus, colds = self._pcp_arrays(pfns.shape[0], cpu, cold)
            _alloc.free_batch_pcp(self.pages, self.zones, self.pageblock_type, self.node, pfns,
                                  out, cpus, colds)
        else:
            _alloc.free_batch(self.pages, self.zones, self.pageblock_type, self.node, pfns, out)
        return out

    def take_notifications(self) -> tuple[np.ndarray, np.ndarray]:
        """Collect and clear the (migrated, reclaimed) rows since the last call."""
        mig = (np.concatenate(self.migrated) if self.migrated
               else np.empty((0, 3), np.int64))
        rec = (np.concatenate(self.reclaimed) if self.reclaimed
               else np.empty((0, 3), np.int64))
        self.migrated, self.reclaimed = [], []
        return mig, rec

    # --- probes -------------------------------------------------------------------------------
    def copy(self) -> Machine:
        """A deep copy sharing nothing mutable: probes work on it and leave this one alone."""
        new = object.__new__(Machine)
        new.__dict__.update(self.__dict__)
        new.pages = _raw_copy(self.pages)
        new.zones = _raw_copy(self.zones)
        new.node = _raw_copy(self.node)
        new.pageblock_type = _raw_copy(self.pageblock_type)
        new.pageblock_skip = _raw_copy(self.pageblock_skip)
        new._request_cache = dict(self._request_cache)
        new.migrated = list(self.migrated)
        new.reclaimed = list(self.reclaimed)
        new.kswapd_order = list(self.kswapd_order)
        new.kcompactd_sleeper = None  # a probe's copy must not wake the run's daemon
        copy_reclaim_state(self, new)
        return new

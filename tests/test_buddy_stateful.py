"""Hypothesis stateful tests of the buddy core against a pure-Python reference allocator.

`RefAllocator` is written from the kernel text (2.6.24 `mm/page_alloc.c`; with grouping off it
is 2.6.20's single LIFO list per order; for `mobility-2.6.35` the 2.6.35 `__free_one_page`
tail rule, `change_pageblock_range` and `min(2, reserve)`; for `mobility-6.1` 6.1's
`__rmqueue_fallback`/`steal_suitable_fallback`, `__free_one_page` with `buddy_merge_likely`,
FPI_TO_TAIL at boot, MIGRATE_HIGHATOMIC and `__zone_watermark_ok`) with Python lists as free lists
(index 0 = head) and
dicts for page state; it shares no code with `models.mm`. Boot frees every page one at a time in
increasing pfn order, as `free_all_bootmem()` does, then sets up MIGRATE_RESERVE. It reads only
configuration from the machine (zone spans, watermarks, lowmem_reserve, which policy).

Every rule runs the same request on the machine and the reference and asserts the same pfn;
after every step `check_invariants` runs and the free lists (their exact order), pageblock
types, free counts and fallback/RESERVE counters must be equal.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fragsim.models.mm.constants import (
    ALLOC_HARDER,
    ALLOC_HIGH,
    ALLOC_NO_WATERMARKS,
    ALLOC_WMARK_HIGH,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MIN,
    FREE_NOT_ALLOCATED,
    FREE_OK,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_RESERVE,
    MIGRATE_UNMOVABLE,
    PG_BUDDY,
    PG_HEAD,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.gfp import (
    GFP_ATOMIC,
    GFP_DMA,
    GFP_DMA32,
    GFP_HIGHUSER_MOVABLE,
    GFP_KERNEL,
    GFP_TEMPORARY,
)
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.machine import Machine, MachineConfig

# 2.6.24 fallbacks[] (RESERVE is skipped in the loop and used last).
FALLBACKS = {
    MIGRATE_UNMOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE),
    MIGRATE_RECLAIMABLE: (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE),
    MIGRATE_MOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE),
}
NR_TYPES = 5
HIGHATOMIC = 3  # 6.1 MIGRATE_HIGHATOMIC, in RESERVE's slot


class RefZone:
    """One zone's free_area as Python lists, following the kernel functions by name."""

    def __init__(self, start: int, end: int, max_order: int, pbo: int, grouping: bool,
                 pb_type: list[int], kernel: str = "2.6.24") -> None:
        self.start, self.end = start, end
        self.max_order, self.pbo, self.grouping = max_order, pbo, grouping
        self.kernel = kernel  # "2.6.35": that kernel's __free_one_page, fallback and reserve
        self.pb_type = pb_type  # shared by every zone, indexed by pfn >> pbo
        self.free_list = [[[] for _ in range(NR_TYPES)] for _ in range(max_order)]
        self.buddy: dict[int, int] = {}  # free head pfn -> order (PageBuddy + page_order)
        self.list_of: dict[int, int] = {}  # free head pfn -> list type
        self.nr_free_pages = 0
        self.fallbacks = 0
        self.reserve_allocs = 0
        self.nr_reserved_highatomic = 0  # 6.1

    def get_pageblock_migratetype(self, pfn: int) -> int:
        # 2.6.24 returns UNMOVABLE whenever page_group_by_mobility_disabled.
        return self.pb_type[pfn >> self.pbo] if self.grouping else MIGRATE_UNMOVABLE

    def list_add(self, pfn: int, order: int, mt: int) -> None:
        self.free_list[order][mt].insert(0, pfn)
        self.buddy[pfn] = order
        self.list_of[pfn] = mt

    def list_add_tail(self, pfn: int, order: int, mt: int) -> None:
        self.free_list[order][mt].append(pfn)
        self.buddy[pfn] = order
        self.list_of[pfn] = mt

    def list_del(self, pfn: int) -> None:
        order = self.buddy.pop(pfn)
        self.free_list[order][self.list_of.pop(pfn)].remove(pfn)

    def expand(self, pfn: int, low: int, high: int, mt: int) -> None:
        while high > low:
            high -= 1
            self.list_add(pfn + (1 << high), high, mt)

    def rmqueue_smallest(self, order: int, mt: int) -> int:
        for current in range(order, self.max_order):
            if not self.free_list[current][mt]:
                continue
            pfn = self.free_list[current][mt][0]
            self.list_del(pfn)
            self.nr_free_pages -= 1 << order
            self.expand(pfn, order, current, mt)
            return pfn
        return -1

    def move_freepages_block(self, pfn: int, mt: int) -> int:
        """2.6.24 to the list heads; 6.1 `move_to_free_list()`, a list_move_tail. (6.1 also
        counts PageLRU pages as movable: this test allocates none.)"""
        start = pfn & ~((1 << self.pbo) - 1)
        end = start + (1 << self.pbo) - 1
        if start < self.start:
            start = pfn
        if end >= self.end:
            return 0
        moved, p = 0, start
        while p <= end:
            if p not in self.buddy:
                p += 1
                continue
            order = self.buddy[p]
            self.list_del(p)
            if self.kernel == "6.1":
                self.list_add_tail(p, order, mt)
            else:
                self.list_add(p, order, mt)
            p += 1 << order
            moved += 1 << order
        return moved

    # --- 6.1 ---------------------------------------------------------------------------------
    def find_suitable_fallback(self, order: int, start_mt: int) -> tuple[int, bool]:
        if not any(self.free_list[order][t] for t in range(NR_TYPES)):  # area->nr_free == 0
            return -1, False
        for mt in FALLBACKS[start_mt]:
            if not self.free_list[order][mt]:
                continue
            # can_steal_fallback()
            can_steal = (order >= self.pbo or order >= self.pbo // 2
                         or start_mt in (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE))
            return mt, can_steal
        return -1, False

    def steal_suitable_fallback(self, pfn: int, start_type: int, whole_block: bool) -> None:
        current_order = self.buddy[pfn]
        old_block_type = self.pb_type[pfn >> self.pbo]
        single_page = True
        if old_block_type != HIGHATOMIC:
            if current_order >= self.pbo:
                for i in range(1 << (current_order - self.pbo)):
                    self.pb_type[(pfn >> self.pbo) + i] = start_type
            elif whole_block:
                free_pages = self.move_freepages_block(pfn, start_type)
                movable_pages = 0
                if start_type == MIGRATE_MOVABLE:
                    alike_pages = movable_pages
                elif old_block_type == MIGRATE_MOVABLE:
                    alike_pages = (1 << self.pbo) - (free_pages + movable_pages)
                else:
                    alike_pages = 0
                if free_pages:
                    if free_pages + alike_pages >= 1 << (self.pbo - 1):
                        self.pb_type[pfn >> self.pbo] = start_type
                    single_page = False
        if single_page:
            order = self.buddy[pfn]
            self.list_del(pfn)
            self.list_add_tail(pfn, order, start_type)

    def rmqueue_fallback_6_1(self, order: int, start_mt: int) -> int:
        found = None
        for current in range(self.max_order - 1, order - 1, -1):
            fallback_mt, can_steal = self.find_suitable_fallback(current, start_mt)
            if fallback_mt == -1:
                continue
            if not can_steal and start_mt == MIGRATE_MOVABLE and current > order:
                for smallest in range(order, self.max_order):
                    fallback_mt, can_steal = self.find_suitable_fallback(smallest, start_mt)
                    if fallback_mt != -1:
                        found = (smallest, fallback_mt, can_steal)
                        break
            else:
                found = (current, fallback_mt, can_steal)
            break
        if found is None:
            return -1
        current, fallback_mt, can_steal = found
        page = self.free_list[current][fallback_mt][0]
        self.steal_suitable_fallback(page, start_mt, can_steal)
        self.fallbacks += 1
        return self.rmqueue_smallest(order, start_mt)

    def reserve_highatomic_pageblock(self, pfn: int) -> None:
        max_managed = (self.end - self.start) // 100 + (1 << self.pbo)
        if self.nr_reserved_highatomic >= max_managed or not self.grouping:
            return  # (the model keeps no reserves with grouping disabled)
        if self.pb_type[pfn >> self.pbo] in (MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE,
                                              MIGRATE_MOVABLE):
            self.nr_reserved_highatomic += 1 << self.pbo
            self.pb_type[pfn >> self.pbo] = HIGHATOMIC
            self.move_freepages_block(pfn, HIGHATOMIC)

    def rmqueue_fallback(self, order: int, start_mt: int) -> int:
        if self.kernel == "6.1":
            return self.rmqueue_fallback_6_1(order, start_mt)
        for current in range(self.max_order - 1, order - 1, -1):
            for mt in FALLBACKS[start_mt]:
                if not self.free_list[current][mt]:
                    continue
                pfn = self.free_list[current][mt][0]
                if current >= (self.pbo >> 1) or start_mt == MIGRATE_RECLAIMABLE:
                    if self.move_freepages_block(pfn, start_mt) >= (1 << (self.pbo - 1)):
                        self.pb_type[pfn >> self.pbo] = start_mt
                    mt = start_mt
                self.list_del(pfn)
                self.nr_free_pages -= 1 << order
                if self.kernel == "2.6.35":
                    # Take ownership for orders >= pageblock_order: change_pageblock_range().
                    if current >= self.pbo:
                        for i in range(1 << (current - self.pbo)):
                            self.pb_type[(pfn >> self.pbo) + i] = start_mt
                elif current == self.pbo:
                    self.pb_type[pfn >> self.pbo] = start_mt
                self.expand(pfn, order, current, mt)
                self.fallbacks += 1
                return pfn
        pfn = self.rmqueue_smallest(order, MIGRATE_RESERVE)
        if pfn >= 0:
            self.reserve_allocs += 1
        return pfn

    def rmqueue(self, order: int, mt: int, flags: int = 0) -> int:
        if not self.grouping:
            return self.rmqueue_smallest(order, MIGRATE_UNMOVABLE)
        if self.kernel == "6.1" and order > 0 and flags & ALLOC_HARDER:
            # 6.1.0 rmqueue_buddy(): the HIGHATOMIC reserve first.
            pfn = self.rmqueue_smallest(order, HIGHATOMIC)
            if pfn >= 0:
                return pfn
        pfn = self.rmqueue_smallest(order, mt)
        return pfn if pfn >= 0 else self.rmqueue_fallback(order, mt)

    def free_one_page(self, pfn: int, order: int, to_tail: bool = False) -> None:
        mt = self.get_pageblock_migratetype(pfn)
        self.nr_free_pages += 1 << order
        while order < self.max_order - 1:
            buddy = pfn ^ (1 << order)
            if not self.start <= buddy < self.end or self.buddy.get(buddy) != order:
                break
            if self.kernel == "6.1" and order >= self.pbo and self.grouping:
                buddy_mt = self.get_pageblock_migratetype(buddy)
                mergeable = (MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE)
                if mt != buddy_mt and (mt not in mergeable or buddy_mt not in mergeable):
                    break
            self.list_del(buddy)
            pfn &= ~(1 << order)
            order += 1
        if to_tail:  # FPI_TO_TAIL
            self.list_add_tail(pfn, order, mt)
            return
        # 6.1 buddy_merge_likely(): false from order >= MAX_ORDER - 2.
        limit = {"2.6.35": self.max_order - 1, "6.1": self.max_order - 2}.get(self.kernel, 0)
        if order < limit:
            # If the buddy of the next-highest order is free, add at the tail.
            higher_page = pfn & ~(1 << order)
            higher_buddy = higher_page ^ (1 << (order + 1))
            if (self.start <= higher_page < self.end and self.start <= higher_buddy < self.end
                    and self.buddy.get(higher_buddy) == order + 1):
                self.list_add_tail(pfn, order, mt)
                return
        self.list_add(pfn, order, mt)

    def setup_zone_migrate_reserve(self, pages_min: int) -> None:
        pb = 1 << self.pbo
        reserve = -(-pages_min // pb)  # roundup(pages_min, pageblock_nr_pages) >> order
        if self.kernel == "2.6.35":
            reserve = min(2, reserve)
        for pfn in range(self.start, self.end, pb):
            t = self.get_pageblock_migratetype(pfn)
            if reserve > 0 and t == MIGRATE_RESERVE:
                reserve -= 1
            elif reserve > 0 and t == MIGRATE_MOVABLE:
                self.pb_type[pfn >> self.pbo] = MIGRATE_RESERVE
                self.move_freepages_block(pfn, MIGRATE_RESERVE)
                reserve -= 1
            elif t == MIGRATE_RESERVE:
                self.pb_type[pfn >> self.pbo] = MIGRATE_MOVABLE
                self.move_freepages_block(pfn, MIGRATE_MOVABLE)


class RefAllocator:
    """The zones of one node plus `get_page_from_freelist()` and `__free_pages()`."""

    def __init__(self, m: Machine) -> None:
        self.m = m
        max_order, pbo = m.max_order, m.pageblock_order
        grouping = m.policy.grouping and m.nr_pages >= (1 << pbo) * 5
        assert grouping == m.grouping
        nblocks = -(-m.nr_pages // (1 << pbo))
        self.pb_type = [MIGRATE_MOVABLE if grouping else MIGRATE_UNMOVABLE] * nblocks
        self.zones: dict[int, RefZone] = {}
        self.allocated: dict[int, int] = {}
        for z in range(m.zones.shape[0]):
            start, end = int(m.zones[z]["start_pfn"]), int(m.zones[z]["end_pfn"])
            if end > start:
                zone = RefZone(start, end, max_order, pbo, grouping, self.pb_type,
                               m.policy.kernel)
                for pfn in range(start, end):  # free_all_bootmem(): one page at a time
                    zone.free_one_page(pfn, 0, to_tail=m.policy.kernel == "6.1")
                self.zones[z] = zone
        self.setup_reserve()

    def setup_reserve(self) -> None:
        if not (self.m.policy.migrate_reserve and self.m.grouping):
            return
        for z, zone in self.zones.items():
            zone.setup_zone_migrate_reserve(int(self.m.zones[z]["watermark"][0]))

    def zone_watermark_ok(self, z: int, order: int, mark: int, classzone: int,
                          flags: int) -> bool:
        zone, rec = self.zones[z], self.m.zones[z]
        if zone.kernel == "6.1":
            return self.zone_watermark_ok_6_1(z, order, mark, classzone, flags)
        free = zone.nr_free_pages - (1 << order) + 1
        min_ = mark
        if flags & ALLOC_HIGH:
            min_ -= min_ // 2
        if flags & ALLOC_HARDER:
            min_ -= min_ // 4
        if free <= min_ + int(rec["lowmem_reserve"][classzone]):
            return False
        for o in range(order):
            free -= sum(len(lst) for lst in zone.free_list[o]) << o
            min_ >>= 1
            if free <= min_:
                return False
        return True

    def zone_watermark_ok_6_1(self, z: int, order: int, mark: int, classzone: int,
                              flags: int) -> bool:
        """6.1.0 `__zone_watermark_ok()` (`alloc_harder` is ALLOC_HARDER here)."""
        zone, rec = self.zones[z], self.m.zones[z]
        free = zone.nr_free_pages - ((1 << order) - 1)
        if not flags & ALLOC_HARDER:
            free -= zone.nr_reserved_highatomic
        min_ = mark
        if flags & ALLOC_HIGH:
            min_ -= min_ // 2
        if flags & ALLOC_HARDER:
            min_ -= min_ // 4
        if free <= min_ + int(rec["lowmem_reserve"][classzone]):
            return False
        if order == 0:
            return True
        for o in range(order, self.m.max_order):
            lists = zone.free_list[o]
            if any(lists[t] for t in (MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE)):
                return True
            if flags & ALLOC_HARDER and lists[HIGHATOMIC]:
                return True
        return False

    def alloc(self, order: int, high_zone: int, mt: int, flags: int) -> int:
        zonelist = [z for z in range(high_zone, -1, -1) if z in self.zones]
        for z in zonelist:
            if not flags & ALLOC_NO_WATERMARKS:
                wm = self.m.zones[z]["watermark"]
                mark = int(wm[0] if flags & ALLOC_WMARK_MIN else
                           wm[1] if flags & ALLOC_WMARK_LOW else wm[2])
                if not self.zone_watermark_ok(z, order, mark, zonelist[0], flags):
                    continue
            pfn = self.zones[z].rmqueue(order, mt, flags)
            if pfn >= 0:
                self.allocated[pfn] = order
                if self.zones[z].kernel == "6.1" and order > 0 and flags & ALLOC_HARDER:
                    self.zones[z].reserve_highatomic_pageblock(pfn)
                return pfn
        return -1

    def free(self, pfn: int) -> None:
        order = self.allocated.pop(pfn)
        zone = next(zn for zn in self.zones.values() if zn.start <= pfn < zn.end)
        zone.free_one_page(pfn, order)


def machine_lists(m: Machine, z: int, order: int, mt: int) -> list[int]:
    out, pfn = [], int(m.zones[z]["head"][order, mt])
    while pfn >= 0:
        out.append(pfn)
        pfn = int(m.pages[pfn]["next"])
    return out


ALLOC_FLAGS = st.sampled_from([
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MIN,
    ALLOC_WMARK_HIGH,
    ALLOC_WMARK_MIN | ALLOC_HARDER | ALLOC_HIGH,
    ALLOC_WMARK_LOW | ALLOC_HIGH,
    ALLOC_NO_WATERMARKS,
    0,  # no watermark bit: pages_high
])
MIGRATETYPES = st.sampled_from([MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE])
GFPS = st.sampled_from([None, None, None, GFP_KERNEL, GFP_HIGHUSER_MOVABLE, GFP_TEMPORARY,
                        GFP_ATOMIC, GFP_DMA, GFP_DMA32])
MIN_FREE_KBYTES = st.sampled_from([0, 16, 64, 128, 512, 1024, 2048, 4096])


class BuddyStateMachine(RuleBasedStateMachine):
    """Random allocations and frees on one machine, mirrored on the reference."""

    config: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.m = Machine(MachineConfig(**self.config))
        self.ref = RefAllocator(self.m)
        self.live: list[int] = []
        self.orders = st.integers(0, self.m.max_order - 1)

    # --- requests --------------------------------------------------------------------------
    def _request(self, gfp: int | None, mt: int) -> tuple[int, int]:
        return self.m.resolve(gfp, None if gfp is not None else mt)

    def _ref_mt(self, mt: int) -> int:
        return mt if self.m.grouping else MIGRATE_UNMOVABLE

    @rule(data=st.data(), mt=MIGRATETYPES, gfp=GFPS, flags=ALLOC_FLAGS)
    def alloc(self, data: st.DataObject, mt: int, gfp: int | None, flags: int) -> None:
        order = data.draw(st.one_of(st.integers(0, 3), self.orders), label="order")
        high_zone, rmt = self._request(gfp, mt)
        pfn = self.m.alloc(order, gfp, migratetype=None if gfp is not None else mt,
                           alloc_flags=flags)
        assert pfn == self.ref.alloc(order, high_zone, self._ref_mt(rmt), flags)
        if pfn >= 0:
            self.live.append(pfn)

    @rule(data=st.data(), mt=MIGRATETYPES, count=st.integers(1, 400), flags=ALLOC_FLAGS)
    def alloc_many(self, data: st.DataObject, mt: int, count: int, flags: int) -> None:
        order = data.draw(st.integers(0, 3), label="order")
        high_zone, rmt = self._request(None, mt)
        out = self.m.alloc_many(order, count, migratetype=mt, alloc_flags=flags)
        expected = [self.ref.alloc(order, high_zone, self._ref_mt(rmt), flags)
                    for _ in range(count)]
        assert out.tolist() == expected
        self.live.extend(int(p) for p in out if p >= 0)

    @rule(data=st.data())
    def alloc_batch(self, data: st.DataObject) -> None:
        reqs = data.draw(st.lists(st.tuples(self.orders, MIGRATETYPES, GFPS, ALLOC_FLAGS),
                                  max_size=12), label="requests")
        resolved = [self._request(gfp, mt) for _, mt, gfp, _ in reqs]
        out = self.m.alloc_batch(
            np.array([r[0] for r in reqs], np.int64),
            np.array([hz for hz, _ in resolved], np.int64),
            np.array([rmt for _, rmt in resolved], np.int64),
            np.array([r[3] for r in reqs], np.int64),
            np.full(len(reqs), 7, np.int64), np.zeros(len(reqs), np.int64))
        expected = [self.ref.alloc(order, hz, self._ref_mt(rmt), flags)
                    for (order, _, _, flags), (hz, rmt) in zip(reqs, resolved, strict=True)]
        assert out.tolist() == expected
        self.live.extend(int(p) for p in out if p >= 0)

    @precondition(lambda self: self.live)
    @rule(i=st.integers(0, 1 << 30))
    def free(self, i: int) -> None:
        pfn = self.live.pop(i % len(self.live))
        assert self.m.free(pfn) == FREE_OK
        self.ref.free(pfn)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), bogus=st.booleans())
    def free_batch(self, data: st.DataObject, bogus: bool) -> None:
        picks = data.draw(st.lists(st.integers(0, len(self.live) - 1), unique=True,
                                   max_size=len(self.live)), label="picks")
        pfns = [self.live[i] for i in picks]
        chosen = set(picks)
        self.live = [p for i, p in enumerate(self.live) if i not in chosen]
        if bogus and pfns:
            # Freeing a block twice is refused and changes nothing.
            pfns.append(pfns[0])
        out = self.m.free_batch(np.array(pfns, np.int64))
        for pfn in pfns[: len(picks)]:
            self.ref.free(pfn)
        assert out[: len(picks)].tolist() == [FREE_OK] * len(picks)
        assert out[len(picks):].tolist() == [FREE_NOT_ALLOCATED] * (len(pfns) - len(picks))

    @rule(kbytes=MIN_FREE_KBYTES)
    def set_min_free_kbytes(self, kbytes: int) -> None:
        self.m.set_min_free_kbytes(kbytes)
        self.ref.setup_reserve()

    # --- checks ------------------------------------------------------------------------------
    @invariant()
    def state_matches_reference(self) -> None:
        m, ref = self.m, self.ref
        check_invariants(m)
        assert m.pageblock_type.tolist() == ref.pb_type
        heads = np.flatnonzero(m.pages["flags"] & PG_HEAD)
        assert sorted(ref.allocated) == heads.tolist()
        assert sorted(self.live) == heads.tolist()
        fallbacks = reserve = 0
        for z, zone in ref.zones.items():
            assert int(m.zones[z]["free_pages"]) == zone.nr_free_pages
            for o in range(m.max_order):
                for mt in range(NR_TYPES):
                    assert machine_lists(m, z, o, mt) == zone.free_list[o][mt], (z, o, mt)
            fallbacks += zone.fallbacks
            reserve += zone.reserve_allocs
        assert len(ref.zones) == sum(
            1 for z in range(m.zones.shape[0]) if m.zones[z]["present_pages"])
        assert int(np.count_nonzero(m.pages["flags"] & PG_BUDDY)) == sum(
            len(zone.buddy) for zone in ref.zones.values())
        assert m.stat("extfrag_fallback") == fallbacks
        assert m.stat("alloc_reserve") == reserve


_SETTINGS = settings(max_examples=50, stateful_step_count=30, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


def _case(name: str, **config: Any) -> type:
    cls = type(name, (BuddyStateMachine,), {"config": config})
    case = cls.TestCase
    case.settings = _SETTINGS
    return case


# x86_64 geometry (MAX_ORDER 11, pageblock_order 9), 16 MiB: grouping on, one RESERVE block.
TestMobility16M = _case("Mobility16M", memory=16 * MiB, policy="mobility")
TestVanilla16M = _case("Vanilla16M", memory=16 * MiB, policy="vanilla")
# 8 MiB < pageblock_nr_pages * MIGRATE_TYPES (10 MiB): grouping disabled under `mobility`.
TestMobilityTiny = _case("MobilityTiny", memory=8 * MiB, policy="mobility")
# Small geometry: 128 pages, 16 pageblocks of 8 pages; fallbacks and claims happen quickly.
TestMobilitySmallBlocks = _case("MobilitySmallBlocks", memory=512 * 1024, policy="mobility",
                                max_order=5, pageblock_order=3)
# Several zones: DMA + DMA32, and a ZONE_MOVABLE carved by kernelcore=.
TestMobilityZones = _case("MobilityZones", memory=32 * MiB, policy="mobility", layout="zones")
TestVanillaZones = _case("VanillaZones", memory=32 * MiB, policy="vanilla", layout="zones")
TestMobilityKernelcore = _case("MobilityKernelcore", memory=32 * MiB, policy="mobility",
                               kernelcore=8 * MiB)
# 2.6.35 (tail-add of merging buddies, change_pageblock_range, at most 2 RESERVE blocks).
TestMobility2635_16M = _case("Mobility2635_16M", memory=16 * MiB, policy="mobility-2.6.35")
# pageblock_order 3 < MAX_ORDER-1 = 4: fallbacks of order 4 retype two pageblocks.
TestMobility2635SmallBlocks = _case("Mobility2635SmallBlocks", memory=512 * 1024,
                                    policy="mobility-2.6.35", max_order=5, pageblock_order=3)
TestMobility2635Zones = _case("Mobility2635Zones", memory=32 * MiB, policy="mobility-2.6.35",
                              layout="zones")
# 6.1 (find_suitable_fallback/steal_suitable_fallback, buddy_merge_likely, FPI_TO_TAIL boot,
# MIGRATE_HIGHATOMIC, __zone_watermark_ok).
TestMobility61_16M = _case("Mobility61_16M", memory=16 * MiB, policy="mobility-6.1")
TestMobility61SmallBlocks = _case("Mobility61SmallBlocks", memory=512 * 1024,
                                  policy="mobility-6.1", max_order=5, pageblock_order=3)
TestMobility61Zones = _case("Mobility61Zones", memory=32 * MiB, policy="mobility-6.1",
                            layout="zones")
TestMobility61Tiny = _case("Mobility61Tiny", memory=8 * MiB, policy="mobility-6.1")

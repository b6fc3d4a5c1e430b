"""Property test of the slow path: random workloads mixing allocation, reclaim, lumpy reclaim,
slab shrinking, writeback, migration, compaction and per-cpu lists, with `check_invariants` after
every step, on every kernel profile."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fragsim.models.mm import compaction, migrate, pcp, reclaim, slab, writeback
from fragsim.models.mm.constants import KIND_ANON, KIND_FILE, KIND_KERNEL, PG_LRU, ZONE_NORMAL
from fragsim.models.mm.gfp import GFP, GFP_HIGHUSER_MOVABLE, GFP_KERNEL
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.probes import advance
from fragsim.models.mm.profiles import machine_config
from fragsim.models.mm.slowpath import alloc_pages

SETTINGS = settings(max_examples=40, stateful_step_count=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


class SlowPathMachine(RuleBasedStateMachine):
    kernel = "2.6.24"
    extra: dict[str, object] = {}

    def __init__(self) -> None:
        super().__init__()
        self.m = Machine(machine_config(self.kernel, memory=16 << 20, swap=4 << 20,
                                        **self.extra))  # type: ignore[arg-type]
        self.user: list[int] = []  # LRU pages the test owns
        self.kernel_pages: list[int] = []
        self.cache = slab.kmem_cache_create(self.m, "dentry", 21)
        self.objects: list[int] = []

    def _live_user(self) -> np.ndarray:
        pfns = np.array(self.user, dtype=np.int64)
        if pfns.size == 0:
            return pfns
        alive = ((self.m.pages["flags"][pfns] & PG_LRU) != 0) & (self.m.pages["owner"][pfns] >= 1)
        self.user = pfns[alive].tolist()
        return pfns[alive]

    @rule(n=st.integers(1, 3000), anon=st.booleans(), dirty=st.booleans())
    def alloc_user(self, n: int, anon: bool, dirty: bool) -> None:
        pfns = reclaim.alloc_lru_pages(self.m, n, KIND_ANON if anon else KIND_FILE, owner=1,
                                       dirty=dirty)
        self.user += pfns[pfns >= 0].tolist()

    @rule(n=st.integers(1, 200))
    def alloc_kernel(self, n: int) -> None:
        for _ in range(n):
            a = alloc_pages(self.m, 0, GFP_KERNEL, owner=2, kind=KIND_KERNEL)
            if a.success:
                self.kernel_pages.append(a.pfn)

    @rule(data=st.data())
    def free_some(self, data: st.DataObject) -> None:
        live = self._live_user()
        if live.size:
            k = data.draw(st.integers(0, int(live.size)))
            reclaim.free_lru_pages(self.m, live[:k])
            self.user = live[k:].tolist()
        if self.kernel_pages:
            k = data.draw(st.integers(0, len(self.kernel_pages)))
            self.m.free_batch(np.array(self.kernel_pages[:k], dtype=np.int64))
            self.kernel_pages = self.kernel_pages[k:]

    @rule(n=st.integers(1, 500), put=st.booleans())
    def slab_objects(self, n: int, put: bool) -> None:
        handles = self.cache.alloc(self.m, n)
        handles = handles[handles >= 0]
        if put:
            self.cache.put(handles)
        else:
            self.objects += handles.tolist()

    @rule(order=st.sampled_from([0, 1, 3, 4, 9]), repeat=st.booleans())
    def slow_path(self, order: int, repeat: bool) -> None:
        gfp = GFP_HIGHUSER_MOVABLE | (GFP.REPEAT if repeat else 0)
        a = alloc_pages(self.m, order, gfp, owner=5)
        if a.success:
            self.m.free(a.pfn)

    @rule(order=st.sampled_from([0, 4, 9]))
    def direct_reclaim(self, order: int) -> None:
        reclaim.try_to_free_pages(self.m, order, GFP_KERNEL, ZONE_NORMAL)

    @rule(order=st.sampled_from([0, 9]))
    def kswapd(self, order: int) -> None:
        reclaim.balance_pgdat(self.m, order)

    @rule(mode=st.sampled_from([1, 2, 3]))
    def drop_caches(self, mode: int) -> None:
        reclaim.drop_caches(self.m, mode)

    @rule(seconds=st.floats(0.0, 2.0))
    def time_passes(self, seconds: float) -> None:
        advance(self.m, seconds)
        writeback.complete_writeback(self.m, self.m.now)

    @rule()
    def compact(self) -> None:
        compaction.compact_node(self.m)

    @rule(order=st.sampled_from([4, 9]))
    def direct_compact(self, order: int) -> None:
        compaction.try_to_compact_pages(self.m, order, GFP_HIGHUSER_MOVABLE, ZONE_NORMAL)

    @rule(data=st.data())
    def migrate_some(self, data: st.DataObject) -> None:
        live = self._live_user()
        if live.size:
            k = data.draw(st.integers(1, min(64, int(live.size))))
            migrate.migrate_pages(self.m, live[:k].tolist())

    @rule()
    def drain(self) -> None:
        if self.m.config.pcp:
            pcp.drain_pages(self.m)

    @invariant()
    def consistent(self) -> None:
        check_invariants(self.m)


def _case(kernel: str, **extra: object) -> type[SlowPathMachine]:
    cls = type(f"SlowPath_{kernel.replace('.', '_')}", (SlowPathMachine,),
               {"kernel": kernel, "extra": extra})
    return cls


TestSlowPath2620 = SETTINGS(_case("2.6.20")).TestCase
TestSlowPath2624 = SETTINGS(_case("2.6.24")).TestCase
TestSlowPath2635 = SETTINGS(_case("2.6.35")).TestCase
TestSlowPath2635Pcp = SETTINGS(_case("2.6.35", pcp=True, nr_cpus=2)).TestCase
# 6.1's per-order per-cpu lists (`models.mm.pcp_6_1`) under reclaim, compaction and migration.
TestSlowPath61Pcp = SETTINGS(_case("6.1", pcp=True, nr_cpus=2)).TestCase
TestSlowPath615Pcp = SETTINGS(_case("6.15", pcp=True, nr_cpus=2)).TestCase

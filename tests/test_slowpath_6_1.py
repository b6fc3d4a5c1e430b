"""6.1 `__alloc_pages_slowpath` (models.mm.slowpath_6_1) against 2.6.35's loop: golden cases
where the two kernels' sources give different rounds, counters or outcomes."""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.mm import compaction, reclaim
from fragsim.models.mm import compaction_6_1 as c61
from fragsim.models.mm.constants import (
    ALLOC_NO_WATERMARKS,
    ALLOC_WMARK_MIN,
    KIND_ANON,
    KIND_FILE,
    MIGRATE_MOVABLE,
    MIGRATE_UNMOVABLE,
    PG_WRITEBACK,
    ZONE_NORMAL,
)
from fragsim.models.mm.gfp import GFP, GFP_HIGHUSER_MOVABLE, GFP_KERNEL
from fragsim.models.mm.huge_memory import GFP_TRANSHUGE
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.policy import POLICIES
from fragsim.models.mm.reclaim_state import reclaim_state
from fragsim.models.mm.slowpath import (
    ALLOC_RETRY_RULES,
    MAX_RETRY_ROUNDS,
    AllocRetry61,
    alloc_pages,
)
from fragsim.models.mm.slowpath_6_1 import (
    COMPACT_COMPLETE,
    COMPACT_CONTENDED,
    COMPACT_DEFERRED,
    COMPACT_PARTIAL_SKIPPED,
    COMPACT_PRIO_ASYNC,
    COMPACT_PRIO_SYNC_FULL,
    COMPACT_PRIO_SYNC_LIGHT,
    COMPACT_SKIPPED,
    COMPACT_SUCCESS,
    MAX_RECLAIM_RETRIES,
    RetryState,
    should_compact_retry,
    try_to_compact_pages,
    zone_reclaimable_pages,
)

MiB = 1 << 20
POLICY = {"2.6.35": "mobility-2.6.35", "6.1": "mobility-6.1"}
COUNTERS = ("allocstall", "compact_stall", "compact_fail", "compact_success", "alloc_fail")


def machine(kernel: str) -> Machine:
    # One 64 MiB ZONE_NORMAL (16384 pages; 6.1 watermarks 256/320/384), no swap, no lumpy
    # reclaim (6.1 has none; 2.6.35's is switched off so that only the loops differ).
    return Machine(MachineConfig(memory=64 * MiB, policy=POLICY[kernel], lumpy_reclaim=False,
                                 compaction=True))


def counters(m: Machine) -> dict[str, int]:
    return {name: m.stat(name) for name in COUNTERS}


def delta(m: Machine, before: dict[str, int]) -> dict[str, int]:
    return {name: m.stat(name) - before[name] for name in COUNTERS}


def anon_below_min(kernel: str) -> Machine:
    """Anonymous memory up to LOW, then kernel pages down to MIN: nothing is reclaimable (no
    swap) and an order-0 GFP_KERNEL request fails at MIN."""
    m = machine(kernel)
    while not (reclaim.alloc_lru_pages(m, 4096, KIND_ANON, owner=3) < 0).any():
        pass
    while m.alloc(0, migratetype=MIGRATE_UNMOVABLE, alloc_flags=ALLOC_WMARK_MIN) >= 0:
        pass
    return m


def anon_holes(kernel: str) -> Machine:
    """Every other page anonymous (no swap: reclaim frees nothing), the rest free as order-0
    holes in MOVABLE pageblocks; what LOW kept free is taken by unmovable kernel pages."""
    m = machine(kernel)
    pfns = reclaim.alloc_lru_pages(m, m.nr_pages, KIND_ANON, owner=3)
    while m.alloc(0, migratetype=MIGRATE_MOVABLE, alloc_flags=ALLOC_NO_WATERMARKS) >= 0:
        pass
    pfns = np.sort(pfns[pfns >= 0])
    reclaim.free_lru_pages(m, pfns[::2])
    assert m.zones[ZONE_NORMAL]["nr_free"][1:].sum() == 0
    return m


def test_the_6_1_policy_runs_its_own_loop() -> None:
    assert POLICIES["mobility-6.1"].alloc_retry == "6.1"
    assert isinstance(ALLOC_RETRY_RULES["6.1"], AllocRetry61)
    assert type(ALLOC_RETRY_RULES["6.1"]).slowpath is not type(ALLOC_RETRY_RULES["2.6.35"]).slowpath


def test_nothing_reclaimable_fails_after_one_round_on_6_1() -> None:
    # 2.6.35: did_some_progress is 1 while a zone is not all_unreclaimable, order 0 retries
    # (should_alloc_retry), so the request runs the model's 16 rounds, each followed by
    # congestion_wait(HZ/50). 6.1: progress is pages reclaimed (0), no_progress_loops 1, and
    # should_reclaim_retry sees reclaimable 0 + free 255 under MIN 256: no retry, no reserve
    # to give back, no OOM killer in the model: fail after one round, no congestion_wait.
    got = {}
    for kernel in POLICY:
        m = anon_below_min(kernel)
        assert zone_reclaimable_pages(m, ZONE_NORMAL) == 0
        before = counters(m)
        a = alloc_pages(m, 0, GFP_KERNEL)
        got[kernel] = (a.success, a.reclaim_rounds, a.congestion_waits, delta(m, before))
        check_invariants(m)
    assert got["2.6.35"][:3] == (False, MAX_RETRY_ROUNDS, MAX_RETRY_ROUNDS)
    assert got["2.6.35"][3]["allocstall"] == MAX_RETRY_ROUNDS
    assert got["6.1"][:3] == (False, 1, 0)
    assert got["6.1"][3] == {"allocstall": 1, "compact_stall": 0, "compact_fail": 0,
                             "compact_success": 0, "alloc_fail": 1}


def test_nofail_gets_the_oom_branch_reserves_on_6_1() -> None:
    # __GFP_NOFAIL, order 0, GFP_KERNEL (zonelist reaches ZONE_NORMAL): 6.1's
    # __alloc_pages_may_oom finds no OOM victim in the model, but WARN_ON_ONCE_GFP(__GFP_NOFAIL)
    # counts as progress and tries ALLOC_NO_WATERMARKS: the page below MIN is taken after one
    # round. 2.6.35 loops (the model's 16 rounds) at MIN and fails.
    got = {}
    for kernel in POLICY:
        m = anon_below_min(kernel)
        a = alloc_pages(m, 0, GFP_KERNEL | GFP.NOFAIL)
        got[kernel] = (a.success, a.reclaim_rounds)
    assert got == {"2.6.35": (False, MAX_RETRY_ROUNDS), "6.1": (True, 1)}


def test_no_progress_loops_end_after_max_reclaim_retries(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Reclaim that never frees a page (its 2.6.24-style return still says "some zone is
    # reclaimable") on memory whose LRU is clean page cache: 6.1's should_reclaim_retry sees
    # reclaimable + free pass MIN, so only no_progress_loops ends it: rounds 1..16 retry,
    # round 17 (no_progress_loops 17 > MAX_RECLAIM_RETRIES) does not. 2.6.35 retries order 0
    # on that return value until the model's cap of 16 rounds.
    def nothing(m: Machine, order: int, gfp: int, high_zone: int, **_: object) -> int:
        reclaim_state(m).last_progress = 1
        m.node[0]["stat"][reclaim.STAT["allocstall"]] += 1
        return 0

    got = {}
    for kernel in POLICY:
        m = machine(kernel)
        while not (reclaim.alloc_lru_pages(m, 4096, KIND_FILE, owner=1) < 0).any():
            pass
        while m.alloc(0, migratetype=MIGRATE_UNMOVABLE, alloc_flags=ALLOC_WMARK_MIN) >= 0:
            pass
        assert zone_reclaimable_pages(m, ZONE_NORMAL) > 10000
        monkeypatch.setattr(reclaim, "try_to_free_pages", nothing)
        a = alloc_pages(m, 0, GFP_KERNEL)
        monkeypatch.undo()
        got[kernel] = (a.success, a.reclaim_rounds, a.congestion_waits)
    assert got == {"2.6.35": (False, MAX_RETRY_ROUNDS, MAX_RETRY_ROUNDS),
                   "6.1": (False, MAX_RECLAIM_RETRIES + 1, 0)}


def test_thp_noretry_fails_without_reclaim_when_compaction_is_skipped() -> None:
    # GFP_TRANSHUGE | __GFP_NORETRY (defrag=always outside MADV_HUGEPAGE) on memory full of
    # clean page cache down to LOW (320 free). 6.1: the first __alloc_pages_direct_compact
    # (ASYNC) finds compaction_suitable SKIPPED (order 0 needs low 320 + compact_gap 1024), so
    # no compact_stall, and "costly_order && __GFP_NORETRY" with COMPACT_SKIPPED is nopage: no
    # direct reclaim at all. 2.6.35 counts a compact_stall in try_to_compact_pages, skips the
    # zone on its watermark, then runs its one round of direct reclaim.
    got = {}
    for kernel in POLICY:
        m = machine(kernel)
        while not (reclaim.alloc_lru_pages(m, 4096, KIND_FILE, owner=1) < 0).any():
            pass
        before = counters(m)
        a = alloc_pages(m, 9, GFP_TRANSHUGE | GFP.NORETRY)
        got[kernel] = (a.success, a.reclaim_rounds, delta(m, before))
    assert got["6.1"] == (False, 0, {"allocstall": 0, "compact_stall": 0, "compact_fail": 0,
                                     "compact_success": 0, "alloc_fail": 1})
    assert got["2.6.35"] == (False, 1, {"allocstall": 1, "compact_stall": 1, "compact_fail": 0,
                                        "compact_success": 0, "alloc_fail": 1})


def test_non_costly_unmovable_request_is_compacted_on_6_1_only() -> None:
    # Order 2 UNMOVABLE into order-0 holes between anonymous pages (nothing reclaimable).
    # 2.6.35's try_to_compact_pages, called every round, skips order <= PAGE_ALLOC_COSTLY_ORDER
    # (no compact_stall), and reclaim frees nothing: 16 rounds, failure. 6.1: order > 0 and
    # not MOVABLE, so direct compaction first, at ASYNC:
    # suitable_migration_source takes sources only from UNMOVABLE pageblocks, and every
    # pageblock is MOVABLE, so the zone is scanned without a move (COMPACT_COMPLETE, a
    # compact_fail; ASYNC never defers). Then retry: reclaim frees nothing, and compaction at
    # DEF_COMPACT_PRIORITY (SYNC_LIGHT) migrates from MOVABLE pageblocks: COMPACT_SUCCESS, the
    # request takes an order-2 block by fallback.
    got = {}
    for kernel in POLICY:
        m = anon_holes(kernel)
        before = counters(m)
        a = alloc_pages(m, 2, GFP_KERNEL)
        got[kernel] = (a.success, a.reclaim_rounds, a.compaction_runs, delta(m, before))
        check_invariants(m)
    assert got["2.6.35"] == (False, MAX_RETRY_ROUNDS, MAX_RETRY_ROUNDS,
                             {"allocstall": MAX_RETRY_ROUNDS, "compact_stall": 0,
                              "compact_fail": 0, "compact_success": 0, "alloc_fail": 1})
    assert got["6.1"] == (True, 1, 2, {"allocstall": 1, "compact_stall": 2, "compact_fail": 1,
                                       "compact_success": 1, "alloc_fail": 0})


def test_async_compaction_leaves_writeback_pages_and_other_types_alone() -> None:
    # 6.1 isolate_migratepages_block: below MIGRATE_SYNC a page under writeback stays on the
    # LRU (ISOLATE_ASYNC_MIGRATE), and async direct compaction takes sources only from
    # pageblocks of the request's type (suitable_migration_source); MIGRATE_SYNC
    # (/proc/sys/vm/compact_memory) isolates them and waits on the writeback from pass 3.
    m = anon_holes("6.1")
    m.pages["flags"][m.pages["flags"] & 0x04 != 0] |= PG_WRITEBACK  # every LRU page
    fails = m.stat("pgmigrate_fail")
    # Not a whole-zone run: the scanners meeting is PARTIAL_SKIPPED.
    assert try_to_compact_pages(m, 9, int(GFP_HIGHUSER_MOVABLE), ALLOC_WMARK_MIN, ZONE_NORMAL,
                                MIGRATE_UNMOVABLE, COMPACT_PRIO_ASYNC) == COMPACT_PARTIAL_SKIPPED
    assert m.stat("compact_isolated") == 0 and m.stat("pgmigrate_fail") == fails
    status = c61.compact_zone(m, ZONE_NORMAL, 9, MIGRATE_MOVABLE, c61.MIGRATE_SYNC_LIGHT,
                              direct=True, whole_zone=True, ignore_skip_hint=True,
                              ignore_block_suitable=True)
    assert status == COMPACT_COMPLETE and m.stat("compact_isolated") == 0
    assert m.stat("pgmigrate_success") == 0
    c61.compact_node(m)
    # Every page moves but one: where the scanners meet, the last page finds no target
    # (-ENOMEM), which 6.1 counts in nr_failed_pages.
    assert m.stat("pgmigrate_success") > 0 and m.stat("pgmigrate_fail") == fails + 1
    check_invariants(m)


@pytest.mark.parametrize(("order", "result", "prio", "retries", "want", "prio_after",
                          "retries_after"), [
    (0, COMPACT_SUCCESS, COMPACT_PRIO_SYNC_LIGHT, 0, False, COMPACT_PRIO_SYNC_LIGHT, 0),
    # compaction_made_progress counts; up to MAX_COMPACT_RETRIES (16) for order <= 3 ...
    (2, COMPACT_SUCCESS, COMPACT_PRIO_SYNC_LIGHT, 15, True, COMPACT_PRIO_SYNC_LIGHT, 16),
    (2, COMPACT_SUCCESS, COMPACT_PRIO_SYNC_LIGHT, 16, True, COMPACT_PRIO_SYNC_FULL, 0),
    (2, COMPACT_SUCCESS, COMPACT_PRIO_SYNC_FULL, 16, False, COMPACT_PRIO_SYNC_FULL, 17),
    # ... a quarter of them (4) for costly orders, whose highest priority is SYNC_LIGHT
    (9, COMPACT_SUCCESS, COMPACT_PRIO_SYNC_LIGHT, 3, True, COMPACT_PRIO_SYNC_LIGHT, 4),
    (9, COMPACT_SUCCESS, COMPACT_PRIO_SYNC_LIGHT, 4, False, COMPACT_PRIO_SYNC_LIGHT, 5),
    (9, COMPACT_SUCCESS, COMPACT_PRIO_ASYNC, 4, True, COMPACT_PRIO_SYNC_LIGHT, 0),
    # compaction_failed (COMPLETE) and compaction_withdrawn: raise the priority if allowed
    (2, COMPACT_COMPLETE, COMPACT_PRIO_SYNC_LIGHT, 3, True, COMPACT_PRIO_SYNC_FULL, 0),
    (2, COMPACT_COMPLETE, COMPACT_PRIO_SYNC_FULL, 3, False, COMPACT_PRIO_SYNC_FULL, 3),
    (9, COMPACT_COMPLETE, COMPACT_PRIO_SYNC_LIGHT, 0, False, COMPACT_PRIO_SYNC_LIGHT, 0),
    (9, COMPACT_DEFERRED, COMPACT_PRIO_ASYNC, 2, True, COMPACT_PRIO_SYNC_LIGHT, 0),
    (2, COMPACT_PARTIAL_SKIPPED, COMPACT_PRIO_SYNC_FULL, 0, False, COMPACT_PRIO_SYNC_FULL, 0),
    (2, COMPACT_CONTENDED, COMPACT_PRIO_ASYNC, 0, True, COMPACT_PRIO_SYNC_LIGHT, 0),
])
def test_should_compact_retry(order: int, result: int, prio: int, retries: int, want: bool,
                              prio_after: int, retries_after: int) -> None:
    m = machine("6.1")
    st = RetryState()
    st.compact_result, st.compact_priority, st.compaction_retries = result, prio, retries
    assert should_compact_retry(m, order, ALLOC_WMARK_MIN, ZONE_NORMAL, st) is want
    assert (st.compact_priority, st.compaction_retries) == (prio_after, retries_after)


def test_should_compact_retry_after_skipped_asks_whether_reclaim_can_help() -> None:
    # COMPACT_SKIPPED (compaction_needs_reclaim): retry only if some zone would pass
    # __compaction_suitable with free + zone_reclaimable_pages / order.
    st = RetryState()
    st.compact_result = COMPACT_SKIPPED
    m = anon_below_min("6.1")  # nothing reclaimable, free under MIN
    assert not should_compact_retry(m, 2, ALLOC_WMARK_MIN, ZONE_NORMAL, st)
    m = machine("6.1")
    while not (reclaim.alloc_lru_pages(m, 4096, KIND_FILE, owner=1) < 0).any():
        pass
    # 320 free + 16000 / 9 clean cache pages pass low 320 + 1024 at order 0.
    assert should_compact_retry(m, 9, ALLOC_WMARK_MIN, ZONE_NORMAL, st)
    assert st.compact_priority == COMPACT_PRIO_SYNC_LIGHT and st.compaction_retries == 0


def test_deferral_is_per_order_on_6_1() -> None:
    # 6.1 compaction_deferred(zone, order): orders below compact_order_failed are never
    # deferred; defer_compaction lowers it, compaction_defer_reset raises it past a success.
    # 2.6.35's compaction_deferred(zone) has no order: a deferred zone is deferred for all.
    from fragsim.models.mm import slowpath_6_1 as s61

    m = machine("6.1")
    z = ZONE_NORMAL
    s61._compaction_defer_reset(m, z, 4, True)  # an order-4 success: order_failed 5
    s61._defer_compaction(m, z, 9)  # an order-9 failure: shift 1, order_failed stays 5
    assert (int(m.zones[z]["compact_defer_shift"]), int(m.zones[z]["compact_order_failed"])) \
        == (1, 5)
    assert not s61._compaction_deferred(m, z, 4)
    assert s61._compaction_deferred(m, z, 9)  # considered 1 < 1 << 1
    assert not s61._compaction_deferred(m, z, 9)  # considered 2: the limit, go
    s61._defer_compaction(m, z, 3)  # an order-3 failure lowers order_failed to 3
    assert int(m.zones[z]["compact_order_failed"]) == 3
    assert s61._compaction_deferred(m, z, 4)
    old = machine("2.6.35")
    compaction.defer_compaction(old, z)
    assert compaction.compaction_deferred(old, z)


def test_batched_order0_retry_follows_the_policy() -> None:
    # Kernel.slab_alloc's rounds: 2.6.35 goes round again while try_to_free_pages returned 1
    # (a zone not all_unreclaimable), even with nothing reclaimed; 6.1 asks
    # should_reclaim_retry, which with nothing reclaimable and free under MIN says no.
    got = {}
    for kernel in POLICY:
        m = anon_below_min(kernel)
        reclaim_state(m).last_progress = 1
        rule = ALLOC_RETRY_RULES[m.policy.alloc_retry]
        got[kernel] = rule.order0_retry(m, int(GFP_KERNEL), ZONE_NORMAL, MIGRATE_UNMOVABLE,
                                        ALLOC_WMARK_MIN, 0, rule.new_state())
    assert got == {"2.6.35": True, "6.1": False}


def test_thp_fault_defrag_always_noretry_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Kernel.thp_fault with defrag=always: a region without MADV_HUGEPAGE gets GFP_TRANSHUGE |
    # __GFP_NORETRY (vma_thp_gfp_mask). On memory full of clean page cache 6.1's async
    # compaction is SKIPPED (order 0 below low + compact_gap), so the fault falls back with no
    # direct reclaim; the madvised region (no __GFP_NORETRY, costly, no __GFP_RETRY_MAYFAIL)
    # reclaims once: 6.1's shrink_node goes on for the costly order (should_continue_reclaim)
    # until compaction_suitable says COMPACT_CONTINUE (free above low + compact_gap(9)), so
    # the compaction that follows has room and finds the order-9 block among the clean page
    # cache it migrates. 2.6.35's loop (THP allowed on a test preset) reclaims once either way.
    import simpy

    from fragsim.models.mm.profiles import KERNEL_PROFILES, machine_config
    from fragsim.sim.kernel import Kernel
    from fragsim.sim.recorder import Recorder
    from fragsim.sim.streams import Streams
    from tests.conftest_tiny import drive

    monkeypatch.setitem(KERNEL_PROFILES, "thp-2.6.35", {**KERNEL_PROFILES["2.6.35"], "thp": True})
    got = {}
    for preset in ("6.1", "thp-2.6.35"):
        for madvised in (False, True):
            m = Machine(machine_config(preset, memory=64 * MiB, layout="flat", swap=0,
                                       lumpy_reclaim=False, thp_enabled="always",
                                       thp_defrag="always"))
            while not (reclaim.alloc_lru_pages(m, 4096, KIND_FILE, owner=1) < 0).any():
                pass
            k = Kernel(simpy.Environment(), m, Recorder(), Streams(0))
            before = counters(m)
            pfn = drive(k, k.thp_fault(1 << 25, madvised))
            got[preset, madvised] = (pfn, m.stat("thp_fault_fallback"),
                                     delta(m, before)["allocstall"])
    assert got[("6.1", False)] == (-1, 1, 0)
    pfn, fallbacks, stalls = got[("6.1", True)]
    assert pfn >= 0 and (fallbacks, stalls) == (0, 1)
    assert got[("thp-2.6.35", False)] == (-1, 1, 1)


def test_6_1_without_compaction_never_compacts() -> None:
    # !CONFIG_COMPACTION (compaction off): the stub returns COMPACT_SKIPPED, can_compact is
    # false, so a costly __GFP_RETRY_MAYFAIL request stops after its first round.
    m = Machine(MachineConfig(memory=64 * MiB, policy="mobility-6.1", lumpy_reclaim=False,
                              compaction=False))
    while not (reclaim.alloc_lru_pages(m, 4096, KIND_FILE, owner=1) < 0).any():
        pass
    stall = m.stat("compact_stall")
    a = alloc_pages(m, 9, GFP_HIGHUSER_MOVABLE | GFP.REPEAT)
    assert (a.compaction_runs, m.stat("compact_stall") - stall) == (0, 0)
    assert a.reclaim_rounds == 1

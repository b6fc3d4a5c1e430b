"""The slow path (`__alloc_pages` 2.6.24, direct compaction and `should_alloc_retry` 2.6.35),
hand-worked end to end."""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.mm import reclaim
from fragsim.models.mm.constants import KIND_ANON, KIND_FILE, ZONE_NORMAL
from fragsim.models.mm.gfp import GFP, GFP_ATOMIC, GFP_HIGHUSER_MOVABLE, GFP_KERNEL
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.policy import POLICIES
from fragsim.models.mm.profiles import machine_config
from fragsim.models.mm.slowpath import ALLOC_RETRY_RULES, MAX_RETRY_ROUNDS, alloc_pages

MiB = 1 << 20


def fill_with_cache(m: Machine) -> None:
    """Clean page cache until the LOW watermark refuses more."""
    while True:
        pfns = reclaim.alloc_lru_pages(m, 4096, KIND_FILE, owner=1)
        if (pfns < 0).any():
            return


def test_fast_path_needs_no_reclaim() -> None:
    m = Machine(machine_config("2.6.24", memory=64 * MiB))
    a = alloc_pages(m, 0, GFP_KERNEL)
    assert a.success and a.fast_path and a.reclaim_rounds == 0
    assert m.kswapd_order == [-1] * 5


def test_low_watermark_failure_wakes_kswapd_and_reclaims() -> None:
    m = Machine(machine_config("2.6.24", memory=64 * MiB))
    fill_with_cache(m)
    low = int(m.zones[ZONE_NORMAL]["watermark"][1])
    assert m.free_pages() <= low + 1
    # Take the pages between MIN and LOW so that the MIN retry fails too.
    while alloc_pages(m, 0, GFP_KERNEL).fast_path is False and m.free_pages() > 0:
        if m.zones[ZONE_NORMAL]["free_pages"] <= m.zones[ZONE_NORMAL]["watermark"][0]:
            break
    a = alloc_pages(m, 0, GFP_KERNEL)
    assert a.success and not a.fast_path
    assert m.kswapd_order[ZONE_NORMAL] == 0
    check_invariants(m)


def test_atomic_request_never_reclaims() -> None:
    m = Machine(machine_config("2.6.24", memory=64 * MiB))
    fill_with_cache(m)
    before = m.stat("pgsteal")
    for _ in range(2000):
        a = alloc_pages(m, 0, GFP_ATOMIC)
        assert a.reclaim_rounds == 0
        if not a.success:
            break
    assert not a.success
    assert m.stat("pgsteal") == before
    # ALLOC_HIGH | ALLOC_HARDER: an atomic request digs below pages_min (min/2 - min/8).
    zmin = int(m.zones[ZONE_NORMAL]["watermark"][0])
    assert m.zones[ZONE_NORMAL]["free_pages"] <= zmin - zmin // 2 - (zmin - zmin // 2) // 4 + 1


def test_huge_page_gets_one_round_and_lumpy_makes_the_difference() -> None:
    results = {}
    for lumpy in (False, True):
        m = Machine(machine_config("2.6.24", memory=64 * MiB, lumpy_reclaim=lumpy))
        fill_with_cache(m)
        fails = m.stat("alloc_fail")
        a = alloc_pages(m, 9, GFP_HIGHUSER_MOVABLE)
        # order 9 > PAGE_ALLOC_COSTLY_ORDER and no __GFP_REPEAT: one round of direct reclaim.
        assert a.reclaim_rounds == 1
        assert m.stat("alloc_fail") == fails + (0 if a.success else 1)
        results[lumpy] = a.success
        check_invariants(m)
    # Plain LRU reclaim frees 32 scattered pages; lumpy frees the whole aligned block.
    assert results == {False: False, True: True}


def test_repeat_retries_up_to_the_cap() -> None:
    m = Machine(machine_config("2.6.24", memory=64 * MiB, lumpy_reclaim=False))
    fill_with_cache(m)
    a = alloc_pages(m, 9, GFP_HIGHUSER_MOVABLE | GFP.REPEAT)
    assert 1 < a.reclaim_rounds <= MAX_RETRY_ROUNDS
    # congestion_wait(HZ/50) between rounds: none after the round that succeeds.
    assert a.congestion_waits == a.reclaim_rounds - (1 if a.success else 0)


def test_direct_compaction_runs_before_reclaim() -> None:
    results = {}
    for kernel in ("2.6.24", "2.6.35"):
        # Anonymous memory and no swap: reclaim can free nothing, only compaction helps.
        m = Machine(machine_config(kernel, memory=64 * MiB))
        pfns = reclaim.alloc_lru_pages(m, m.nr_pages, KIND_ANON, owner=3)
        pfns = np.sort(pfns[pfns >= 0])
        reclaim.free_lru_pages(m, pfns[::2])  # every other page: order-0 holes only
        assert m.zones[ZONE_NORMAL]["nr_free"][9:].sum() == 0
        a = alloc_pages(m, 9, GFP_HIGHUSER_MOVABLE)
        results[kernel] = (a.success, a.compaction_runs)
        check_invariants(m)
    assert results["2.6.35"] == (True, 1)
    assert results["2.6.24"][1] == 0


# --- should_alloc_retry: 2.6.24 against 2.6.35 ------------------------------------------------

def test_every_policy_names_a_retry_rule() -> None:
    assert {p.alloc_retry for p in POLICIES.values()} <= set(ALLOC_RETRY_RULES)
    assert POLICIES["mobility"].alloc_retry == "2.6.24"
    assert POLICIES["mobility-2.6.35"].alloc_retry == "2.6.35"


@pytest.mark.parametrize(("gfp", "order", "pages_reclaimed", "old", "new"), [
    (GFP_KERNEL, 3, 0, True, True),  # order <= PAGE_ALLOC_COSTLY_ORDER: always
    (GFP_KERNEL | GFP.NORETRY, 0, 0, False, False),  # __GFP_NORETRY: never
    (GFP_HIGHUSER_MOVABLE, 9, 0, False, False),  # costly, no __GFP_REPEAT: one round
    (GFP_HIGHUSER_MOVABLE | GFP.REPEAT, 9, 511, True, True),  # 511 < 1 << 9
    (GFP_HIGHUSER_MOVABLE | GFP.REPEAT, 9, 512, True, False),  # 2.6.35 stops at 1 << order
    (GFP_HIGHUSER_MOVABLE | GFP.REPEAT | GFP.NOFAIL, 9, 4096, True, True),  # __GFP_NOFAIL
    (GFP_HIGHUSER_MOVABLE | GFP.REPEAT | GFP.NORETRY, 9, 0, False, False),
])
def test_should_alloc_retry(gfp: int, order: int, pages_reclaimed: int, old: bool,
                            new: bool) -> None:
    assert ALLOC_RETRY_RULES["2.6.24"].should_alloc_retry(gfp, order, pages_reclaimed) is old
    assert ALLOC_RETRY_RULES["2.6.35"].should_alloc_retry(gfp, order, pages_reclaimed) is new


def test_did_some_progress() -> None:
    # 2.6.24 try_to_free_pages returns 1/0; 2.6.35 do_try_to_free_pages returns nr_reclaimed
    # when it reclaimed anything, else 1 when some zone was not all_unreclaimable.
    assert ALLOC_RETRY_RULES["2.6.24"].did_some_progress(40, 1) == 1
    assert ALLOC_RETRY_RULES["2.6.24"].did_some_progress(5, 0) == 0
    assert ALLOC_RETRY_RULES["2.6.35"].did_some_progress(40, 1) == 40
    assert ALLOC_RETRY_RULES["2.6.35"].did_some_progress(5, 0) == 5
    assert ALLOC_RETRY_RULES["2.6.35"].did_some_progress(0, 1) == 1


def _unmergeable_cache(policy: str) -> Machine:
    """64 MiB: every even page anonymous (no swap: never reclaimed), every odd one clean page
    cache up to the LOW watermark. Reclaim makes progress every round but never an order-1
    block, so an order-9 request fails however many rounds it gets."""
    m = Machine(MachineConfig(memory=64 * MiB, policy=policy, lumpy_reclaim=False))
    pfns = reclaim.alloc_lru_pages(m, m.nr_pages, KIND_ANON, owner=3)
    pfns = np.sort(pfns[pfns >= 0])
    reclaim.free_lru_pages(m, pfns[::2])
    fill_with_cache(m)
    return m


def test_repeat_stops_once_an_order_of_pages_was_reclaimed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rounds: dict[str, list[int]] = {}
    real = reclaim.try_to_free_pages
    for policy in ("mobility", "mobility-2.6.35"):
        m = _unmergeable_cache(policy)
        got: list[int] = []
        rounds[policy] = got

        def recording(*args: object, _got: list[int] = got, **kwargs: object) -> int:
            n = int(real(*args, **kwargs))  # type: ignore[arg-type]
            _got.append(n)
            return n

        monkeypatch.setattr(reclaim, "try_to_free_pages", recording)
        a = alloc_pages(m, 9, GFP_HIGHUSER_MOVABLE | GFP.REPEAT)
        monkeypatch.setattr(reclaim, "try_to_free_pages", real)
        assert not a.success and a.reclaim_rounds == len(got)
        assert all(n > 0 for n in got)
        check_invariants(m)
    # 2.6.24 retries __GFP_REPEAT while reclaim makes progress: up to the model's cap.
    assert len(rounds["mobility"]) == MAX_RETRY_ROUNDS
    # 2.6.35 stops after the round that brings pages_reclaimed to 1 << 9.
    total = np.cumsum(rounds["mobility-2.6.35"])
    assert len(total) < MAX_RETRY_ROUNDS
    assert total[-1] >= 512 and (len(total) == 1 or total[-2] < 512)


# --- 6.1: HIGHATOMIC pageblocks given back by the slow path -----------------------------------

def _reserved_small_machine() -> Machine:
    """512 KiB 6.1 (MAX_ORDER 5, pageblock_order 4): an atomic order-1 UNMOVABLE request makes
    pageblock 0 HIGHATOMIC (reserve_highatomic_pageblock; the zone's limit is one pageblock)."""
    from fragsim.models.mm.constants import ALLOC_HARDER, ALLOC_WMARK_MIN

    m = Machine(MachineConfig(memory=512 * 1024, policy="mobility-6.1", max_order=5,
                              pageblock_order=4, min_free_kbytes=16))
    assert m.alloc(1, migratetype=0, alloc_flags=ALLOC_WMARK_MIN | ALLOC_HARDER) == 0
    assert m.pageblock_type[0] == 3 and int(m.zones[2]["nr_reserved_highatomic"]) == 16
    return m


def test_6_1_should_reclaim_retry_gives_the_reserve_back_before_failing() -> None:
    # should_reclaim_retry: nothing reclaimable and 14 free pages cannot pass MIN at order 0
    # once the 16 reserved pages are unusable, so "Before OOM, exhaust highatomic_reserve":
    # unreserve_highatomic_pageblock(ac, true) gives pageblock 0 back and says retry.
    from fragsim.models.mm.constants import ALLOC_NO_WATERMARKS, ALLOC_WMARK_MIN
    from fragsim.models.mm.slowpath_6_1 import RetryState, should_reclaim_retry

    m = _reserved_small_machine()
    while m.alloc(0, migratetype=0, alloc_flags=ALLOC_NO_WATERMARKS) >= 0:
        pass
    st = RetryState()
    assert should_reclaim_retry(m, 0, ALLOC_WMARK_MIN, 2, 0, False, st)
    assert st.no_progress_loops == 1 and m.pageblock_type[0] == 0
    # Now nothing is reserved and 14 free pages pass MIN (14 > 4): the watermark says retry.
    assert should_reclaim_retry(m, 0, ALLOC_WMARK_MIN, 2, 0, False, st)
    assert st.no_progress_loops == 2
    # All memory allocated and nothing to give back: no retry.
    while m.alloc(0, migratetype=0, alloc_flags=ALLOC_NO_WATERMARKS) >= 0:
        pass
    assert not should_reclaim_retry(m, 0, ALLOC_WMARK_MIN, 2, 0, False, st)
    check_invariants(m)


def test_6_1_order0_request_gets_the_reserve_back_before_failing() -> None:
    # S 6.1 with pageblock 0 reserved HIGHATOMIC (free there: 2 at order 1, 4 at 2, 8 at 3),
    # every other page allocated as unmovable kernel memory (nothing to reclaim). GFP_KERNEL
    # order 0: __zone_watermark_ok counts the 16 reserved pages as unusable (14 - 16 <= min),
    # and no fallbacks[] row reaches HIGHATOMIC, so every attempt fails and reclaim frees
    # nothing. Before failing, should_reclaim_retry unreserves (force): pageblock 0 becomes
    # UNMOVABLE, its free blocks move to the tails of the UNMOVABLE lists, and the retry's
    # get_page_from_freelist passes MIN (14 > 4) and takes the smallest: 2 (order 1, split).
    from fragsim.models.mm.constants import ALLOC_NO_WATERMARKS

    m = _reserved_small_machine()
    while m.alloc(0, migratetype=0, alloc_flags=ALLOC_NO_WATERMARKS) >= 0:
        pass
    assert m.free_pages() == 14
    a = alloc_pages(m, 0, GFP_KERNEL)
    assert a.pfn == 2 and not a.fast_path and a.reclaim_rounds >= 1
    assert m.pageblock_type[0] == 0 and int(m.zones[2]["nr_reserved_highatomic"]) == 0
    check_invariants(m)

"""`models.mm.kcompactd` and the kcompactd0 daemon: 6.1 kcompactd and proactive compaction.

The hand-worked zone: a 6.1 machine of 32 MiB flat (8192 pages, 16 pageblocks of 512),
min_free_kbytes 0 and no swap, every page allocated as an anonymous page on the inactive LRU,
then every page freed but each 8th (pfn % 8 == 0): 1024 free runs of 7 pages, each an order-0,
an order-1 and an order-2 block (pfn + 1, + 2, + 4), so no free block of order 3 or more.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from fragsim.models.mm import compaction_6_1 as c61
from fragsim.models.mm import invariants
from fragsim.models.mm.compaction import COMPACT_PARTIAL
from fragsim.models.mm.constants import (
    ALLOC_WMARK_MIN,
    KIND_ANON,
    KIND_FILE,
    KIND_KERNEL,
    MIGRATE_MOVABLE,
    MIGRATE_UNMOVABLE,
    ZONE_NORMAL,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.kcompactd import (
    COMPACT_SUCCESS,
    compaction_deferred,
    compaction_suitable,
    fragmentation_score_node,
    fragmentation_score_wmark,
    fragmentation_score_zone,
    fragmentation_score_zone_weighted,
    kcompactd_do_work,
    kcompactd_node_suitable,
    kcompactd_proactive,
    should_proactive_compact_node,
    wakeup_kcompactd,
)
from fragsim.models.mm.kswapd_6_1 import kswapd_reclaim_order, kswapd_try_to_sleep
from fragsim.models.mm.lru import lru_add_batch, set_dirty_batch
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.profiles import machine_config
from fragsim.models.mm.state import KIND_SHIFT

Z = ZONE_NORMAL
PB = 512
#: nr_free of the hand-worked zone: 1024 blocks of each of orders 0, 1, 2.
RUNS = [1024, 1024, 1024, 0, 0, 0, 0, 0, 0, 0, 0]


def _machine(kinds: dict[int, int] | None = None, version: str = "6.1",
             **kwargs: Any) -> Machine:
    """The 6.1 (or `version`) machine, every page allocated (anonymous unless `kinds` says
    otherwise, by pfn) and on the inactive LRU (kernel pages are not), anonymous pages dirty."""
    m = Machine(machine_config(version, memory=32 * MiB, layout="flat", min_free_kbytes=0,
                               **kwargs))
    n = m.nr_pages
    full = np.full
    high, mt = m.resolve(None, MIGRATE_MOVABLE)
    # MIN: 6.1's watermark_scale_factor puts LOW 8 pages above MIN (0).
    pfns = m.alloc_batch(full(n, 0), full(n, high), full(n, mt), full(n, ALLOC_WMARK_MIN),
                         1000 + np.arange(n), full(n, KIND_ANON))
    assert sorted(pfns.tolist()) == list(range(n))
    kind = np.full(n, KIND_ANON, np.int64)
    for pfn, k in (kinds or {}).items():
        kind[pfn] = k
        m.pages[pfn]["mt"] = MIGRATE_MOVABLE | (k << KIND_SHIFT)
    lru = np.flatnonzero(kind != KIND_KERNEL)
    assert lru_add_batch(m.pages, m.zones, lru, np.zeros(lru.shape[0], np.int64)) == lru.size
    # Anonymous memory is dirty until swapped (a clean one would be a droppable swap-cache page).
    set_dirty_batch(m.pages, np.flatnonzero(kind == KIND_ANON), True)
    return m


def _keep(m: Machine, keep: np.ndarray) -> None:
    drop = np.setdiff1d(np.arange(m.nr_pages), keep)
    assert (m.free_batch(drop) == 0).all()
    invariants.check_invariants(m)


def _every_8th(kinds: dict[int, int] | None = None, extra: np.ndarray | None = None,
               **kwargs: Any) -> Machine:
    m = _machine(kinds, **kwargs)
    keep = np.arange(0, m.nr_pages, 8)
    _keep(m, keep if extra is None else np.union1d(keep, extra))
    return m


def _nr_free(m: Machine) -> list[int]:
    return [int(c) for c in m.zones[Z]["nr_free"][: m.max_order]]


# --- fragmentation score ---------------------------------------------------------------------
def _score_zone() -> Machine:
    """The every-8th zone with pageblocks 14 and 15 wholly free (one order-10 block)."""
    m = _machine()
    keep = np.arange(0, 14 * PB, 8)
    _keep(m, keep)
    assert _nr_free(m) == [896, 896, 896, 0, 0, 0, 0, 0, 0, 0, 1]
    return m


def test_fragmentation_score_by_hand() -> None:
    m = _score_zone()
    # 6.1 extfrag_for_order(zone, 9): free 896 * 7 + 1024 = 7296 pages, of which the order-10
    # block is 2 blocks of order 9 = 1024 usable; (7296 - 1024) * 100 / 7296 = 85.96 -> 85.
    assert m.free_pages() == 7296
    assert fragmentation_score_zone(m, Z) == 85
    # Weighted: present 8192 * 85 / (node present 8192 + 1) = 84.99 -> 84.
    assert fragmentation_score_zone_weighted(m, Z) == 84
    assert fragmentation_score_node(m) == 84
    # Nothing free: 0 (not vmstat's unusable index 1000).
    m2 = _machine()
    assert m2.free_pages() == 0 and fragmentation_score_zone(m2, Z) == 0


@pytest.mark.parametrize(("proactiveness", "low", "high", "should"), [
    (0, 100, 100, False),  # off
    (20, 80, 90, False),  # 6.1's default
    (26, 74, 84, False),  # 84 > 84 fails
    (27, 73, 83, True),  # the first proactiveness whose high mark is below 84
    (95, 5, 15, True),  # low capped at 5
    (100, 5, 15, True),
])
def test_should_proactive_compact_node_crosses_at_the_wmark(
        proactiveness: int, low: int, high: int, should: bool) -> None:
    m = _score_zone()
    m.config = replace(m.config, compaction_proactiveness=proactiveness)
    assert fragmentation_score_wmark(m, True) == low
    assert fragmentation_score_wmark(m, False) == high
    assert should_proactive_compact_node(m) is should
    m.kswapd_running = True  # kswapd_is_running: back off
    assert should_proactive_compact_node(m) is False


def test_proactive_compaction_stops_at_the_low_score_watermark() -> None:
    m = _score_zone()
    m.config = replace(m.config, compaction_proactiveness=27)
    owners = m.pages["owner"].copy()
    timeout, ran = kcompactd_proactive(m)
    assert ran and timeout == 0.5  # the score went down: the next check in 500 ms
    invariants.check_invariants(m)
    rows, _ = m.take_notifications()
    # 6.1 proactive_compact_node: whole zone, MIGRATE_SYNC_LIGHT, skip hints ignored.
    # Round 1: the zone starts at pfn 0, so compact_zone's last_migrated_pfn = 0 lies in the
    # first pageblock and cc->rescan holds: all 64 LRU pages of pageblock 0 are isolated. The
    # free scanner starts at pageblock 15 (inside the order-10 block: no free head; scanned
    # whole, marked skip, stride 2), passes pageblock 14 (headed by a free block of order 10 >=
    # pageblock_order: 6.1 suitable_migration_target says no) and takes pageblock 13 at stride
    # 2 from 6656: the order-1 block at 6658, then (now on odd pfns) each run's order-0 page
    # 6665 + 8i until there are 64 targets; split_map_pages puts 7153 at the list head.
    assert rows[:64, 0].tolist() == list(range(504, -1, -8))
    assert rows[:64, 1].tolist() == list(range(7153, 6664, -8)) + [6659, 6658]
    # Rounds 2 and 3: pageblock 1 in halves of 32. The free scanner resumes at 7154 (stride 1
    # again): the rest of pageblock 13 (13 pages; scanned to its end: skip), then pageblock 12
    # from 6144 until 34 >= 32; the list head is 6167, the last two targets 7155, 7154 serve
    # round 3 first.
    assert rows[64:, 0].tolist() == list(range(760, 511, -8)) + list(range(1016, 767, -8))
    round2 = [b + d for b in (6160, 6152, 6144) for d in (7, 6, 5, 4, 3, 2, 1)]
    round2 += [7167, 7166, 7165, 7164, 7163, 7162, 7161, 7159, 7158, 7157, 7156]
    assert rows[64:96, 1].tolist() == round2
    assert rows[96:98, 1].tolist() == [7155, 7154]
    assert all(owners[o] == w for o, _, w in rows.tolist())
    # Pageblocks 0-1 are one free order-10 block: (7296 - 2048) * 100 / 7296 = 71 <= 73.
    assert _nr_free(m) == [698, 759, 758, 0, 0, 0, 0, 0, 0, 0, 2]
    assert fragmentation_score_zone(m, Z) == 71
    assert m.pageblock_skip.tolist() == [0] * 13 + [1, 0, 1]
    assert m.vmstat()["compact_daemon_wake"] == 0  # proactive work is no kcompactd wake


def test_proactiveness_0_leaves_the_zone() -> None:
    m = _score_zone()
    m.config = replace(m.config, compaction_proactiveness=0)
    before = _nr_free(m)
    assert kcompactd_proactive(m) == (0.5, False)
    assert _nr_free(m) == before and m.vmstat()["pgmigrate_success"] == 0


def test_proactive_defer_when_the_score_does_not_go_down() -> None:
    # Every 8th page an unmovable kernel page: nothing can move, the score stays 100.
    m = _every_8th({pfn: KIND_KERNEL for pfn in range(0, 8192, 8)})
    assert fragmentation_score_node(m) == 99
    before = _nr_free(m)
    timeout, ran = kcompactd_proactive(m)
    assert ran and timeout == 0.5 * 64  # HPAGE_FRAG_CHECK_INTERVAL_MSEC << 6
    assert _nr_free(m) == before == RUNS


# --- wakeup_kcompactd and kcompactd_do_work --------------------------------------------------
def test_order_3_compaction_of_the_runs_zone() -> None:
    m = _every_8th()
    assert _nr_free(m) == RUNS
    # 6.1 compaction_suitable(zone, 3, 0, Normal): the MIN mark at order 3 fails (no block of
    # order >= 3), order 0 passes min + 2 << 3: COMPACT_CONTINUE.
    assert compaction_suitable(m, Z, 3, 0, Z) == 1
    woke: list[int] = []
    m.kcompactd_sleeper = lambda: woke.append(1)
    wakeup_kcompactd(m, 3, Z)
    assert woke == [1] and m.kcompactd_order == 3 and m.kcompactd_highest_zoneidx == Z
    assert kcompactd_do_work(m) == [(Z, c61.COMPACT_SUCCESS)]
    invariants.check_invariants(m)
    rows, _ = m.take_notifications()
    # One round. Order 3 is not costly: no fast_find_migrateblock; the zone starts at pfn 0, so
    # cc->rescan holds on the first round and all 64 LRU pages of pageblock 0 are isolated
    # (test_and_set_skip marks pageblock 0 at its first page). The fast free search scans
    # the MOVABLE lists from their tails, lowest pfns first (256 order-2, 128 order-1 and 64
    # order-0 blocks, all below min_pfn 4096) and finds nothing; the linear scanner takes
    # pageblock 15 from 7680 at stride 1 until 64 targets; the list head is 7753.
    assert rows[:, 0].tolist() == list(range(504, -1, -8))
    targets = [7753] + [b + d for b in range(7744, 7679, -8) for d in (7, 6, 5, 4, 3, 2, 1)]
    assert rows[:, 1].tolist() == targets
    # Pages 0..511 are one free order-9 block on the MOVABLE list, which an UNMOVABLE request
    # could steal (6.1 find_suitable_fallback): COMPACT_SUCCESS, no target left over.
    assert _nr_free(m) == [950, 951, 951, 0, 0, 0, 0, 0, 0, 1, 0]
    vm = m.vmstat()
    assert vm["compact_daemon_wake"] == 1
    assert vm["compact_daemon_migrate_scanned"] == 256 == vm["compact_migrate_scanned"]
    # 448 free-list entries, then 9 runs of 8 pages and the 10th run's first two.
    assert vm["compact_daemon_free_scanned"] == vm["compact_free_scanned"] == 448 + 74
    assert m.pageblock_skip.tolist() == [1] + [0] * 15
    zone = m.zones[Z]
    assert int(zone["compact_cached_free_pfn"]) == 7680
    assert zone["compact_cached_migrate_pfn"].tolist() == [1024, 1024]
    # compaction_defer_reset(zone, 3, false): compact_order_failed 4; the request is cleared.
    assert int(zone["compact_order_failed"]) == 4
    assert m.kcompactd_order == 0 and m.kcompactd_highest_zoneidx == m.nr_zones - 1


def test_wakeup_kcompactd_bookkeeping() -> None:
    m = _every_8th()
    woke: list[int] = []
    wakeup_kcompactd(m, 0, 1)  # if (!order) return
    assert (m.kcompactd_order, m.kcompactd_highest_zoneidx) == (0, m.nr_zones - 1)
    wakeup_kcompactd(m, 2, 1)  # no sleeper: only recorded
    assert (m.kcompactd_order, m.kcompactd_highest_zoneidx) == (2, 1)
    m.kcompactd_sleeper = lambda: woke.append(1)
    wakeup_kcompactd(m, 1, Z)  # the highest order and the lowest zone index stay
    assert (m.kcompactd_order, m.kcompactd_highest_zoneidx) == (2, 1)
    # kcompactd_node_suitable looks only at zones 0..1 (empty here): no wake-up.
    assert woke == [] and not kcompactd_node_suitable(m)
    m.kcompactd_highest_zoneidx = Z
    wakeup_kcompactd(m, 3, Z)
    assert woke == [1] and m.kcompactd_order == 3


def test_kcompactd_defers_after_a_complete_failure() -> None:
    m = _every_8th({pfn: KIND_KERNEL for pfn in range(0, 8192, 8)})
    m.kcompactd_order, m.kcompactd_highest_zoneidx = 3, Z
    # kcompactd's run is not whole_zone (it starts at the cached positions), so the scanners
    # meeting is COMPACT_PARTIAL_SKIPPED, which kcompactd_do_work handles as COMPLETE.
    assert kcompactd_do_work(m) == [(Z, c61.COMPACT_PARTIAL_SKIPPED)]
    assert _nr_free(m) == RUNS
    # Every pageblock below the free scanner's start (pageblock 15) was scanned whole without
    # a page isolated: marked skip.
    assert m.pageblock_skip.tolist() == [1] * 15 + [0]
    zone = m.zones[Z]
    # defer_compaction(zone, 3): shift 1, considered 0; compact_order_failed starts at 0 (a
    # zeroed struct zone) and only goes down.
    assert (int(zone["compact_defer_shift"]), int(zone["compact_considered"]),
            int(zone["compact_order_failed"])) == (1, 0, 0)
    m.kcompactd_order = 3
    assert kcompactd_do_work(m) == []  # considered 1 < 2: deferred
    m.kcompactd_order = 3
    assert kcompactd_do_work(m) == [(Z, c61.COMPACT_PARTIAL_SKIPPED)]  # considered 2: again
    assert int(m.zones[Z]["compact_defer_shift"]) == 2
    assert m.vmstat()["compact_daemon_wake"] == 3
    m.zones[Z]["compact_order_failed"] = 4  # as compaction_defer_reset(zone, 3, ..) leaves it
    assert not compaction_deferred(m, Z, 3)  # below compact_order_failed: never deferred
    assert int(m.zones[Z]["compact_considered"]) == 0


def test_kswapd_going_to_sleep_wakes_kcompactd() -> None:
    m = _every_8th()
    woke: list[int] = []
    m.kcompactd_sleeper = lambda: woke.append(1)
    # 15 pages reclaimed for order 3 is less than compact_gap(3) = 16: balance_pgdat returns
    # order 3, and the node is not balanced at order 3: no wake-up, nothing recorded.
    assert kswapd_reclaim_order(3, 15) == 3
    assert not kswapd_try_to_sleep(m, 3, 3, Z)
    assert woke == [] and m.kcompactd_order == 0
    # 16 pages: reclaim_order 0, balanced at order 0: wakeup_kcompactd(pgdat, 3, Normal).
    assert kswapd_reclaim_order(3, 16) == 0
    assert kswapd_try_to_sleep(m, 3, 0, Z)
    assert woke == [1] and m.kcompactd_order == 3


# --- the daemon ------------------------------------------------------------------------------
def _kernel(m: Machine) -> Any:
    import simpy

    from fragsim.sim.kernel import Kernel
    from fragsim.sim.recorder import Recorder
    from fragsim.sim.streams import Streams

    env = simpy.Environment()
    return Kernel(env, m, Recorder(), Streams(0))


def test_kswapd_order_3_wakes_kcompactd0_which_compacts() -> None:
    # Block 12's pages at pfn % 8 == 1 are clean page cache: 64 on the inactive file list (the
    # rest is anonymous; no swap, so 6.1's get_scan_count scans only file). kswapd, woken for
    # order 3, runs 6.1 balance_pgdat: each kswapd_shrink_node scans lru_size >> priority
    # pages: nothing from priority 12 to 7 (64 >> 7 = 0), then 64 >> 6 = 1, 63 >> 5 = 1,
    # 62 >> 4 = 3, 59 >> 3 = 7 and 52 >> 2 = 13, all reclaimed: 25 pages, >= compact_gap(3) =
    # 16, so sc.order drops to 0 ("Fragmentation may mean that the system cannot be
    # rebalanced for high-order allocations"); the node is balanced at order 0, and kswapd
    # goes to sleep with reclaim_order 0 < alloc_order 3, waking kcompactd for order 3.
    # (2.6.24's balance_pgdat kept reclaiming for order 3 and took all 64.)
    files = np.arange(12 * PB + 1, 13 * PB, 8)
    m = _every_8th({int(p): KIND_FILE for p in files}, extra=files,
                   compaction_proactiveness=0)
    kernel = _kernel(m)
    assert kernel.kcompactd is not None and kernel.kcompactd.name == "kcompactd0"
    kernel.env.run(until=1.0)
    assert m.kcompactd_sleeper is not None  # asleep (proactiveness 0: no timeout)
    kernel.wake_kswapd(3, Z)
    kernel.env.run(until=10.0)
    assert m.stat("pgsteal") == 25 and m.stat("pageoutrun") == 1
    assert kernel.kswapd.runs == 1 and m.kcompactd_sleeper is not None
    assert kernel.kcompactd.runs == 1 and kernel.kcompactd.checks == 0
    # Reclaim made 25 of block 12's runs whole again (985 order-0 blocks); then as in
    # test_order_3_compaction_of_the_runs_zone: pageblock 0 migrated into ten runs of
    # pageblock 15 (the fast search still finds only low pfns at the lists' tails).
    assert _nr_free(m) == [985 - 64 - 10, 1024 - 64 - 9, 1024 - 64 - 9, 0, 0, 0, 0, 0, 0, 1, 0]
    assert m.vmstat()["compact_daemon_wake"] == 1 and not m.kswapd_running


def test_kcompactd0_proactive_timer() -> None:
    m = _score_zone()
    m.config = replace(m.config, compaction_proactiveness=27)
    kernel = _kernel(m)
    kernel.env.run(until=0.4)
    assert kernel.kcompactd.checks == 0
    kernel.env.run(until=0.6)  # the first 500 ms timeout: score 84 > 83, compact
    assert kernel.kcompactd.checks == 1 and kernel.kcompactd.proactive_runs == 1
    assert _nr_free(m) == [698, 759, 758, 0, 0, 0, 0, 0, 0, 0, 2]  # as proactive_compact_node
    kernel.env.run(until=10.25)  # every 500 ms: 20 checks, score 71 <= 83, no more work
    assert kernel.kcompactd.checks == 20 and kernel.kcompactd.proactive_runs == 1


def test_presets_without_kcompactd() -> None:
    for version in ("2.6.20", "2.6.24", "2.6.35"):
        m = Machine(machine_config(version, memory=32 * MiB))
        assert not m.config.kcompactd and m.config.compaction_proactiveness is None
        assert "compact_daemon_wake" not in m.vmstat()
        assert _kernel(m).kcompactd is None
    with pytest.raises(ValueError, match="no kcompactd"):
        machine_config("2.6.35", memory=32 * MiB, compaction_proactiveness=20)
    with pytest.raises(ValueError, match="out of range: allowed 0..100"):
        machine_config("6.1", memory=32 * MiB, compaction_proactiveness=101)
    m = Machine(machine_config("6.1", memory=32 * MiB))
    assert m.config.compaction_proactiveness == 20 and m.kcompactd_order == 0
    assert MIGRATE_UNMOVABLE == 0 and COMPACT_PARTIAL == COMPACT_SUCCESS


# --- runs and config -------------------------------------------------------------------------
def _run(sets: list[str]) -> Any:
    from fragsim.sim.engine import Environment
    from tests.conftest_tiny import tiny

    env = Environment(tiny("desktop", {"kernel.version": "6.1", "run.seed": 3}, sets))
    env.scenario.start()
    env.run(until=env.scenario.duration_s)
    return env


#: A tiny 6.1 desktop under pressure: 64 MiB, every anonymous fault tries a huge page and
#: `defer` wakes kswapd for order 9, whose sleep then wakes kcompactd.
PRESSED = ["machine.memory=64MiB", "kernel.thp_enabled=always", "kernel.thp_defrag=defer"]


def test_short_6_1_desktop_runs_kcompactd0_deterministically() -> None:
    a, b = _run(PRESSED), _run(PRESSED)
    assert a.kernel.kcompactd is not None and a.kernel.kcompactd.name == "kcompactd0"
    va = a.machine.vmstat()
    assert va["compact_daemon_wake"] > 0 and a.kernel.kcompactd.checks > 0
    assert va == b.machine.vmstat()
    assert a.machine.pages.tobytes() == b.machine.pages.tobytes()
    assert a.machine.zones.tobytes() == b.machine.zones.tobytes()


def test_compaction_proactiveness_key() -> None:
    from fragsim.sim.config import load_workload
    from fragsim.sim.engine import Environment
    from tests.conftest_tiny import tiny

    base = tiny("desktop", {"kernel.version": "6.1"})
    # At its default (-1: the kernel's, 20 on 6.1) the key stays out of the config hash.
    assert base.config_id() == tiny("desktop", {"kernel.version": "6.1",
                                                "kernel.compaction_proactiveness": -1}
                                    ).config_id()
    assert base.config_id() != tiny("desktop", {"kernel.version": "6.1",
                                                "kernel.compaction_proactiveness": 20}
                                    ).config_id()
    assert Environment(base).machine.config.compaction_proactiveness == 20
    env = Environment(tiny("desktop", {"kernel.version": "6.1",
                                       "kernel.compaction_proactiveness": 0}))
    assert env.machine.config.compaction_proactiveness == 0
    for version in ("2.6.20", "2.6.24", "2.6.35"):
        with pytest.raises(ValueError, match=f"kernel {version} has no kcompactd"):
            load_workload("desktop", sets=[f"kernel.version={version}",
                                           "kernel.compaction_proactiveness=20"])
    for bad in (-2, 101):
        with pytest.raises(ValueError, match=f"compaction_proactiveness {bad} is out of range"):
            load_workload("desktop", sets=["kernel.version=6.1",
                                           f"kernel.compaction_proactiveness={bad}"])

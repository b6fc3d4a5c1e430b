"""6.1 memory compaction (`models.mm.compaction_6_1`, `models.mm.compaction_scan_6_1`): golden
cases for the rules 6.1 `mm/compaction.c` has and 2.6.35's does not, a stateful random run, and
the pure-Python form.

The hand-worked zone (as in test_kcompactd): a 6.1 machine of 32 MiB flat (8192 pages, 16
pageblocks of 512), min_free_kbytes 0, every page allocated anonymous on the inactive LRU, then
every page freed but each 8th: 1024 runs of 7 free pages (an order-0, an order-1 and an
order-2 block at pfn + 1, + 2, + 4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fragsim.models.mm import compaction, invariants
from fragsim.models.mm import compaction_6_1 as c61
from fragsim.models.mm import compaction_scan_6_1 as scan
from fragsim.models.mm.constants import (
    KIND_ANON,
    KIND_KERNEL,
    MIGRATE_MOVABLE,
    MIGRATE_UNMOVABLE,
    PG_WRITEBACK,
    WMARK_LOW,
    WMARK_MIN,
    ZONE_NORMAL,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.profiles import machine_config
from tests.test_kcompactd import _machine as kcompactd_machine
from tests.test_nojit import assert_pure_python_matches

Z = ZONE_NORMAL
PB = 512


def _machine(version: str = "6.1", kinds: dict[int, int] | None = None,
             **kwargs: Any) -> Machine:
    """The hand-worked machine before the frees (test_kcompactd's, for `version`)."""
    return kcompactd_machine(kinds, version, **kwargs)


def _keep(m: Machine, keep: np.ndarray) -> Machine:
    drop = np.setdiff1d(np.arange(m.nr_pages), keep)
    assert (m.free_batch(drop) == 0).all()
    invariants.check_invariants(m)
    return m


def _every_8th(version: str = "6.1", kinds: dict[int, int] | None = None) -> Machine:
    m = _machine(version, kinds)
    return _keep(m, np.arange(0, m.nr_pages, 8))


def _nr_free(m: Machine) -> list[int]:
    return [int(c) for c in m.zones[Z]["nr_free"][: m.max_order]]


def _cc(m: Machine, **slots: int) -> np.ndarray:
    """A compact_control for calling the scanners directly."""
    cc = np.zeros(scan._CC_SIZE, dtype=np.int64)
    for name, value in slots.items():
        cc[getattr(scan, "_" + name.upper())] = value
    return cc


# --- the free scanner --------------------------------------------------------------------------
def test_a_free_pageblock_is_a_target_on_2_6_35_only() -> None:
    # Pageblocks 14 and 15 wholly free: one order-10 block at 7168.
    m = _machine()
    _keep(m, np.arange(0, 14 * PB, 8))
    assert _nr_free(m)[10] == 1
    cc = _cc(m)
    # 2.6.35 suitable_migration_target: "If the page is a large free page, then allow
    # migration"; 6.1: "If the page is a large free page, then disallow migration".
    assert compaction.suitable_migration_target(m.pages, m.pageblock_type, 7168, 9)
    assert not scan._suitable_migration_target(m.pages, m.pageblock_type, m.node[0], cc, 7168)
    # Pageblock 15 has no free head at its first page: a MOVABLE block on both.
    assert compaction.suitable_migration_target(m.pages, m.pageblock_type, 7680, 9)
    assert scan._suitable_migration_target(m.pages, m.pageblock_type, m.node[0], cc, 7680)
    # ignore_block_suitable (COMPACT_PRIO_SYNC_FULL) takes any type, still no free pageblock.
    m.pageblock_type[7680 >> 9] = MIGRATE_UNMOVABLE
    assert not scan._suitable_migration_target(m.pages, m.pageblock_type, m.node[0], cc, 7680)
    cc[scan._IGN_BLOCK] = 1
    assert scan._suitable_migration_target(m.pages, m.pageblock_type, m.node[0], cc, 7680)
    assert not scan._suitable_migration_target(m.pages, m.pageblock_type, m.node[0], cc, 7168)


def test_isolate_free_page_keeps_the_min_mark_where_2_6_35_kept_low() -> None:
    # 6.1 __isolate_free_page: zone_watermark_ok(zone, 0, _watermark[MIN] + 2^order, 0, ..);
    # 2.6.35 split_free_page: low_wmark_pages(zone) + 2^order. A zone between the two marks.
    a = _every_8th()
    b = a.copy()
    free = int(a.zones[Z]["free_pages"])
    for m in (a, b):
        m.zones[Z]["watermark"][WMARK_MIN] = free - 4 - 1  # free > min + 4: passes
        m.zones[Z]["watermark"][WMARK_LOW] = free  # free > low + 4: fails
    assert scan.isolate_free_page(a.pages, a.zones, a.pageblock_type, a.node[0], Z, 4) == 4
    assert compaction.split_free_page(b.pages, b.zones, b.pageblock_type, b.node[0], Z, 4) == 0
    assert int(a.zones[Z]["free_pages"]) == free - 4
    # Split into four allocated order-0 pages, as split_map_pages leaves them.
    assert a.pages["order"][4:8].tolist() == [0, 0, 0, 0]
    a.zones[Z]["watermark"][WMARK_MIN] = free  # now below min + 2: refused
    assert scan.isolate_free_page(a.pages, a.zones, a.pageblock_type, a.node[0], Z, 2) == 0


def test_move_freelist_head_and_tail_rotate_the_list() -> None:
    m = _every_8th()
    zone = m.zones[Z]

    def order2() -> list[int]:
        out, pfn = [], int(zone["head"][2, MIGRATE_MOVABLE])
        while pfn >= 0:
            out.append(pfn)
            pfn = int(m.pages[pfn]["next"])
        return out

    before = order2()
    assert len(before) == 1024
    x = before[10]
    # move_freelist_head: the blocks before x go to the tail; x heads the list.
    scan._move_freelist_head(m.pages, zone, 2, MIGRATE_MOVABLE, x)
    assert order2() == before[10:] + before[:10]
    scan._move_freelist_head(m.pages, zone, 2, MIGRATE_MOVABLE, x)  # first already: no change
    assert order2() == before[10:] + before[:10]
    # move_freelist_tail: the blocks up to x go to the tail; x ends the list.
    now = order2()
    y = now[5]
    scan._move_freelist_tail(m.pages, zone, 2, MIGRATE_MOVABLE, y)
    assert order2() == now[6:] + now[:6]
    assert int(zone["tail"][2, MIGRATE_MOVABLE]) == y
    invariants.check_invariants(m)


# --- skip hints and cached positions ------------------------------------------------------------
def test_skip_hints_set_by_a_failed_pass_and_cleared_when_kswapd_sleeps() -> None:
    m = _every_8th()
    lru = m.pages["flags"] & 0x04 != 0
    m.pages["flags"][lru] |= PG_WRITEBACK  # async isolation leaves every LRU page alone
    scanned = m.stat("compact_migrate_scanned")
    # Direct async compaction for a THP: every block below the free scanner's start is scanned
    # whole and nothing isolated: each is marked skip; the scanners meet (not a whole-zone run:
    # PARTIAL_SKIPPED) and the zone is flagged for a flush.
    assert c61.compact_zone(m, Z, 9, MIGRATE_MOVABLE, c61.MIGRATE_ASYNC,
                            direct=True) == c61.COMPACT_PARTIAL_SKIPPED
    assert m.pageblock_skip.tolist() == [1] * 15 + [0]
    assert int(m.zones[Z]["compact_blockskip_flush"]) == 1
    first = m.stat("compact_migrate_scanned") - scanned
    assert first > 0 and m.stat("compact_isolated") == 0
    # The next run passes the skipped blocks without scanning a page.
    assert c61.compact_zone(m, Z, 9, MIGRATE_MOVABLE, c61.MIGRATE_ASYNC,
                            direct=True) == c61.COMPACT_PARTIAL_SKIPPED
    assert m.stat("compact_migrate_scanned") - scanned == first
    # kswapd going to sleep: __reset_isolation_suitable walks the zone from both ends. The
    # migrate side samples every 8th page from each block start (pfn % 8 == 0: an LRU page)
    # and clears blocks 0-7; the free side wants a free head there and finds none, so blocks
    # 8-14 keep their bit. No target block was reset (reset_free stays at the zone start), so
    # the cached positions are left where the walks met.
    c61.reset_isolation_suitable(m)
    assert int(m.zones[Z]["compact_blockskip_flush"]) == 0
    assert m.pageblock_skip.tolist() == [0] * 8 + [1] * 7 + [0]
    assert m.zones[Z]["compact_cached_migrate_pfn"].tolist() == [4096, 4096]
    assert int(m.zones[Z]["compact_cached_free_pfn"]) == 8191 - 8 * PB
    assert int(m.zones[Z]["compact_init_migrate_pfn"]) == 0
    # Nothing flagged: a second reset changes nothing.
    skip = m.pageblock_skip.copy()
    c61.reset_isolation_suitable(m)
    assert np.array_equal(m.pageblock_skip, skip)
    invariants.check_invariants(m)


def test_kswapd_sleeping_resets_the_skip_hints() -> None:
    from fragsim.models.mm.kswapd_6_1 import kswapd_try_to_sleep

    m = _every_8th()
    m.pageblock_skip[:] = 1
    m.zones[Z]["compact_blockskip_flush"] = 1
    assert kswapd_try_to_sleep(m, 0, 0, Z)  # balanced at order 0: it sleeps
    assert int(m.zones[Z]["compact_blockskip_flush"]) == 0
    assert m.pageblock_skip[:8].tolist() == [0] * 8


def test_a_second_kcompactd_run_resumes_at_the_cached_positions() -> None:
    m = _every_8th()
    # Order 3, as kcompactd asks: pageblock 0 is migrated (rescan on the first round, since
    # the flat zone starts in pageblock 0), the migrate pfn is cached at the next block end.
    assert c61.compact_zone(m, Z, 3, MIGRATE_UNMOVABLE, c61.MIGRATE_SYNC_LIGHT,
                            direct=False) == c61.COMPACT_SUCCESS
    zone = m.zones[Z]
    assert zone["compact_cached_migrate_pfn"].tolist() == [1024, 1024]
    rows, _ = m.take_notifications()
    assert rows[:, 0].min() == 0 and rows[:, 0].max() == 504
    # Take the order-9 block away; the next run starts at pfn 1024, not at the zone start.
    assert m.alloc(9, migratetype=MIGRATE_MOVABLE) == 0
    assert c61.compact_zone(m, Z, 3, MIGRATE_UNMOVABLE, c61.MIGRATE_SYNC_LIGHT,
                            direct=False) == c61.COMPACT_SUCCESS
    rows, _ = m.take_notifications()
    assert rows.shape[0] > 0 and rows[:, 0].min() >= 1024
    invariants.check_invariants(m)


# --- the migrate scanner -----------------------------------------------------------------------
def test_fast_find_migrateblock_and_the_6_1_skip_bit_it_sets() -> None:
    # Pageblock 2 (1024..1535) has an order-3 free block at 1032 (pages 1032..1039 freed from
    # a full zone); the rest of the zone is allocated.
    m = _machine()
    assert (m.free_batch(np.arange(1032, 1040)) == 0).all()
    assert int(m.zones[Z]["head"][3, MIGRATE_MOVABLE]) == 1032
    zone = m.zones[Z]
    nd = m.node[0]
    cc = _cc(m, order=9, mt=MIGRATE_MOVABLE, direct=1, mode=c61.MIGRATE_SYNC_LIGHT,
             migrate_pfn=0, free_pfn=7680, search_order=9)
    # Starting at the zone start, distance = (7680 - 0) / 2: any block below pfn 3840; the
    # order-8..3 MOVABLE lists are scanned from their heads and the order-3 block qualifies.
    pfn = scan._fast_find_migrateblock(m.pages, zone, m.pageblock_skip, nd, cc)
    assert pfn == 1024 and cc[scan._FAST_START] == 1032 and cc[scan._FAST_FAIL] == 0
    assert m.pageblock_skip[2] == 1  # set_pageblock_skip(freepage)
    # 6.1.y isolate_migratepages_block then meets that bit at the block's first page and
    # isolates nothing (fixed in 6.3), leaving the migrate pfn at the block end.
    ml = np.empty(PB + 1, dtype=np.int64)
    scan._isolate_migratepages_block(m.pages, m.zones, m.pageblock_skip, nd, Z, cc, ml, 1024,
                                     1536)
    assert cc[scan._NR_MIGRATE] == 0 and cc[scan._MIGRATE_PFN] == 1536
    # The next search finds nothing (the only block is skipped): reinit_migrate_pfn restarts
    # the linear scan at the lowest pfn the fast search picked.
    cc[scan._MIGRATE_PFN] = 1536
    assert scan._fast_find_migrateblock(m.pages, zone, m.pageblock_skip, nd, cc) == 1032
    assert cc[scan._FAST_FAIL] == 1 and cc[scan._FAST_START] == scan._ULONG_MAX
    # Orders <= PAGE_ALLOC_COSTLY_ORDER never search.
    cc = _cc(m, order=3, mt=MIGRATE_MOVABLE, direct=1, migrate_pfn=0, free_pfn=7680)
    assert scan._fast_find_migrateblock(m.pages, zone, m.pageblock_skip, nd, cc) == 0


def test_async_direct_compaction_skips_an_order_block_at_its_first_failure() -> None:
    # skip_on_failure: for async direct compaction of order 3, a page that cannot be
    # isolated (an unmovable kernel page) gives up its order-aligned block of 8 pages and
    # puts back what was isolated from it. Every 16th page kernel, every other page of the
    # zone anonymous: blocks of 8 at 0, 16, 32, ... each hold a kernel page at their start.
    kinds = {pfn: KIND_KERNEL for pfn in range(0, 8192, 16)}
    m = _machine("6.1", kinds)
    _keep(m, np.arange(0, 8192, 2))
    cc = _cc(m, order=3, mt=MIGRATE_MOVABLE, direct=1, mode=c61.MIGRATE_ASYNC, fs=1,
             free_pfn=7680)
    ml = np.empty(PB + 1, dtype=np.int64)
    scan._isolate_migratepages_block(m.pages, m.zones, m.pageblock_skip, m.node[0], Z, cc, ml,
                                     0, PB)
    # Block 0..7 fails at 0; block 8..15 is isolated whole (8, 10, 12, 14) and migrated first:
    # the scan stops at the next order boundary with 4 pages.
    assert sorted(ml[: cc[scan._NR_MIGRATE]].tolist()) == [8, 10, 12, 14]
    assert cc[scan._MIGRATE_PFN] == 16
    # Without skip_on_failure (kcompactd) the same scan takes 32 pages, kernel pages skipped.
    cc = _cc(m, order=3, mt=MIGRATE_MOVABLE, mode=c61.MIGRATE_SYNC_LIGHT, fs=1, free_pfn=7680)
    m2 = _machine("6.1", kinds)
    _keep(m2, np.arange(0, 8192, 2))
    scan._isolate_migratepages_block(m2.pages, m2.zones, m2.pageblock_skip, m2.node[0], Z, cc,
                                     ml, 0, PB)
    got = ml[: cc[scan._NR_MIGRATE]].tolist()
    assert len(got) == 32 and all(p % 16 for p in got)


def test_gfp_nofs_compaction_takes_only_anonymous_pages() -> None:
    from fragsim.models.mm.constants import KIND_FILE

    kinds = {pfn: KIND_FILE for pfn in range(0, 512, 16)}
    m = _machine("6.1", kinds)
    _keep(m, np.arange(0, 8192, 8))
    ml = np.empty(PB + 1, dtype=np.int64)
    cc = _cc(m, order=3, mt=MIGRATE_MOVABLE, mode=c61.MIGRATE_SYNC_LIGHT, fs=0, rescan=1,
             free_pfn=7680)
    scan._isolate_migratepages_block(m.pages, m.zones, m.pageblock_skip, m.node[0], Z, cc, ml,
                                     0, PB)
    got = sorted(ml[: cc[scan._NR_MIGRATE]].tolist())
    assert got == [p for p in range(0, 512, 8) if p % 16]  # the file pages stay


# --- a stateful run ------------------------------------------------------------------------------
def _random_machine(version: str, seed: int) -> Machine:
    rng = np.random.default_rng(seed)
    m = Machine(machine_config(version, memory=64 * MiB))
    live: list[int] = []
    from fragsim.models.mm import reclaim

    for step in range(40):
        n = int(rng.integers(50, 400))
        kind = int(rng.choice([KIND_ANON, KIND_ANON, KIND_KERNEL]))
        if kind == KIND_ANON:
            got = reclaim.alloc_lru_pages(m, n, KIND_ANON, owner=step)
            live.extend(int(p) for p in got if p >= 0)
        else:
            for _ in range(n // 8):
                pfn = m.alloc(int(rng.choice([0, 0, 1, 2])), migratetype=MIGRATE_UNMOVABLE,
                              owner=step)
                if pfn >= 0 and rng.random() < 0.3:
                    m.free(pfn)
        if live and rng.random() < 0.6:
            drop = rng.choice(len(live), size=len(live) // 3, replace=False)
            pfns = np.array([live[i] for i in drop])
            reclaim.free_lru_pages(m, pfns)
            live = [p for i, p in enumerate(live) if i not in set(drop.tolist())]
    if live:
        wb = rng.choice(np.array(live), size=len(live) // 10, replace=False)
        m.pages["flags"][wb] |= PG_WRITEBACK
    return m


@pytest.mark.parametrize("version", ["6.1", "6.15"])
def test_random_compactions_keep_every_invariant(version: str) -> None:
    m = _random_machine(version, 7)
    rng = np.random.default_rng(11)
    invariants.check_invariants(m)
    allocated = m.stat("pgalloc") - m.stat("pgfree")
    owners = m.pages["owner"].copy()
    for _ in range(30):
        z = int(rng.choice(m.populated_zones()))
        order = int(rng.choice([-1, 1, 3, 4, 9]))
        mode = int(rng.choice([c61.MIGRATE_ASYNC, c61.MIGRATE_SYNC_LIGHT, c61.MIGRATE_SYNC]))
        direct = bool(rng.random() < 0.5) and order > 0
        full = bool(rng.random() < 0.3)
        status = c61.compact_zone(m, z, order, int(rng.integers(0, 3)), mode, direct=direct,
                                  whole_zone=full, ignore_skip_hint=full,
                                  ignore_block_suitable=full and direct,
                                  fs=bool(rng.random() < 0.8))
        assert status in (c61.COMPACT_COMPLETE, c61.COMPACT_PARTIAL_SKIPPED,
                          c61.COMPACT_SUCCESS, c61.COMPACT_CONTENDED)
        invariants.check_invariants(m)
        rows, _ = m.take_notifications()
        for old, new, owner in rows.tolist():
            assert owners[old] == owner and m.pages["owner"][new] == owner
            owners[new], owners[old] = owner, -1
        # Migration moves pages and gives every isolated target back: no page gained or lost.
        assert m.stat("pgalloc") - m.stat("pgfree") == allocated
        if rng.random() < 0.3:
            c61.reset_isolation_suitable(m)
    assert m.stat("pgmigrate_success") > 0
    with pytest.raises(ValueError, match="direct compaction of order -1"):
        c61.compact_zone(m, Z, -1, MIGRATE_MOVABLE, c61.MIGRATE_ASYNC, direct=True)


# --- the pure-Python form ------------------------------------------------------------------------
def scenario(out: str) -> None:
    """Compactions of the every-8th zone with some pages under writeback and some unmovable;
    every state array saved to `out` (.npz)."""
    m = _every_8th("6.1", {pfn: KIND_KERNEL for pfn in range(0, 8192, 72)})
    m.pages["flags"][np.arange(8, 8192, 40)] |= PG_WRITEBACK
    results = []
    for order, mode, direct, full in ((9, c61.MIGRATE_ASYNC, True, False),
                                      (9, c61.MIGRATE_SYNC_LIGHT, True, False),
                                      (4, c61.MIGRATE_SYNC_LIGHT, False, False),
                                      (-1, c61.MIGRATE_SYNC, False, True)):
        results.append(c61.compact_zone(m, ZONE_NORMAL, order, MIGRATE_MOVABLE, mode,
                                         direct=direct, whole_zone=full,
                                         ignore_skip_hint=full))
        c61.reset_isolation_suitable(m)
    rows, _ = m.take_notifications()
    np.savez(out, pages=m.pages, zones=m.zones, node=m.node, pageblock_type=m.pageblock_type,
             skip=m.pageblock_skip, results=np.array(results), rows=rows)


def test_pure_python_matches_compiled(tmp_path: Path) -> None:
    compiled, pure = tmp_path / "compiled.npz", tmp_path / "pure.npz"
    scenario(str(compiled))
    a = assert_pure_python_matches(f"tests.test_compaction_6_1.scenario({str(pure)!r})",
                                   compiled, pure, "6.1 compaction", timeout=600)
    assert a["rows"].shape[0] > 100  # the scenario really migrated


# --- /proc/sys/vm/compact_memory and the policy ---------------------------------------------------
def test_compact_memory_runs_the_presets_own_compact_node() -> None:
    from dataclasses import replace

    from fragsim.models.mm.policy import POLICIES

    # 6.1: compact_node is MIGRATE_SYNC over the whole zone (6.1 enum: COMPLETE is 5); 2.6.35:
    # its own compact_node (COMPACT_COMPLETE is 3 in the model's 2.6.35 values).
    m = _every_8th("6.1")
    assert compaction.compact_memory(m) == [c61.COMPACT_COMPLETE]
    assert m.stat("pgmigrate_success") > 0
    old = _every_8th("2.6.35")
    assert compaction.compact_memory(old) == [compaction.COMPACT_COMPLETE]
    # 6.1's slow path has no 2.6.35 scanners to run.
    with pytest.raises(ValueError, match="compaction must be '6.1'"):
        replace(POLICIES["mobility-6.1"], compaction="2.6.35")
    with pytest.raises(ValueError, match="compaction '7.0'"):
        replace(POLICIES["mobility"], compaction="7.0")

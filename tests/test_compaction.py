"""`models.mm.compaction`: 2.6.35 `compact_zone`, its scanners, direct-compaction gates, deferral.

The hand-worked zone: 32 MiB flat (8192 pages, 16 pageblocks of 512), min_free_kbytes 0 (so
no watermark or MIGRATE_RESERVE interferes), every page allocated as an anonymous LRU page,
then blocks 0-7 keep every 8th page and blocks 8-15 keep only their last page. 520 movable
pages, 7672 free pages, no free block of order 9.
"""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.mm import invariants
from fragsim.models.mm.compaction import (
    COMPACT_COMPLETE,
    COMPACT_PARTIAL,
    COMPACT_SKIPPED,
    compact_node,
    compact_zone,
    compaction_deferred,
    defer_compaction,
    try_to_compact_pages,
)
from fragsim.models.mm.constants import (
    ALLOC_WMARK_LOW,
    KIND_ANON,
    KIND_FILE,
    KIND_KERNEL,
    KIND_SLAB,
    MIGRATE_MOVABLE,
    MIGRATE_RESERVE,
    MIGRATE_UNMOVABLE,
    PG_ACTIVE,
    PG_BUDDY,
    PG_DIRTY,
    PG_HEAD,
    PG_LRU,
    PG_REFERENCED,
    PG_WRITEBACK,
    ZONE_NORMAL,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.gfp import GFP, GFP_HIGHUSER_MOVABLE, GFP_NOFS
from fragsim.models.mm.lru import lru_add_batch
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.metrics import fragmentation_index
from fragsim.models.mm.state import KIND_SHIFT
from tests.conftest import MakeMachine

Z = ZONE_NORMAL
PB = 512  # pageblock_nr_pages on x86_64


def _filled(make_machine: MakeMachine, **kwargs: object) -> Machine:
    """The 32 MiB machine with every page an anonymous page on the inactive LRU."""
    m = make_machine(memory=32 * MiB, min_free_kbytes=0, **kwargs)
    n = m.nr_pages
    high, mt = m.resolve(None, MIGRATE_MOVABLE)
    full = np.full
    pfns = m.alloc_batch(full(n, 0), full(n, high), full(n, mt), full(n, ALLOC_WMARK_LOW),
                         1000 + np.arange(n), full(n, KIND_ANON))
    assert (pfns >= 0).all()
    assert lru_add_batch(m.pages, m.zones, np.arange(n), np.zeros(n, np.int64)) == n
    return m


def _free_all_but(m: Machine, keep: np.ndarray) -> None:
    drop = np.setdiff1d(np.arange(m.nr_pages), keep)
    assert (m.free_batch(drop) == 0).all()


def _pattern() -> np.ndarray:
    low = np.arange(0, 8 * PB, 8)
    high = np.arange(8 * PB + PB - 1, 16 * PB, PB)
    return np.concatenate([low, high])


def _fragmented(make_machine: MakeMachine, kernel_pfn: int | None = None,
                **kwargs: object) -> Machine:
    m = _filled(make_machine, **kwargs)
    if kernel_pfn is not None:
        # Replace one kept page by an unmovable kernel page (falls back onto that very pfn).
        m.free(kernel_pfn)
        assert m.alloc(0, migratetype=MIGRATE_UNMOVABLE, kind=KIND_KERNEL) == kernel_pfn
    _free_all_but(m, _pattern())
    assert m.zones[Z]["nr_free"][9:].sum() == 0
    assert m.free_pages() == m.nr_pages - 520
    invariants.check_invariants(m)
    return m


def _check_moved(m: Machine, rows: np.ndarray, owner_before: np.ndarray) -> None:
    """Each row: the old page is no longer allocated and the new one is its copy on the LRU."""
    for old, new, owner in rows.tolist():
        assert owner == owner_before[old]
        assert new > old
        assert int(m.pages[new]["owner"]) == owner
        assert int(m.pages[new]["mt"]) >> KIND_SHIFT == KIND_ANON
        assert m.pages[new]["flags"] & (PG_HEAD | PG_LRU) == PG_HEAD | PG_LRU


def test_compaction_moves_pages_up_and_frees_an_order9_block(
        make_machine: MakeMachine) -> None:
    m = _fragmented(make_machine)
    owners = m.pages["owner"].copy()
    assert compact_zone(m, Z, 9, MIGRATE_MOVABLE) == COMPACT_PARTIAL
    invariants.check_invariants(m)
    rows, _ = m.take_notifications()
    # Round 1 isolates pfns 0..248 (32 pages) and migrates them from the list head (248)
    # down; targets come off the free list head: block 15's highest free page first (8190).
    # Each later round restarts at the page the last one stopped on and runs to
    # ALIGN(pfn + 512): 256..504, then 512..760, then 768..1016.
    olds = [p for start in (248, 504, 760, 1016) for p in range(start, start - 256, -8)]
    assert rows[:, 0].tolist() == olds
    assert rows[:, 1].tolist() == list(range(8190, 8190 - 128, -1))
    _check_moved(m, rows, owners)
    # After round 2 block 0 is a free order-9 block, but the order-9 watermark (low + 512 = 512,
    # halved per lower order: 512 >> 9 = 1) needs more than 511 + 1 pages in blocks of order
    # >= 9, so compaction goes on until block 1 is free too and merges with it.
    assert m.pages[0]["flags"] & PG_BUDDY and int(m.pages[0]["order"]) == 10
    assert int(m.zones[Z]["nr_free"][9:].sum()) == 1
    # The unused targets went back to block 15.
    assert m.free_pages() == m.nr_pages - 520
    vm = m.vmstat()
    assert vm["pgmigrate_success"] == 128 and vm["pgmigrate_fail"] == 0
    assert vm["compact_migrate_scanned"] == 249 + 3 * 257
    assert vm["compact_free_scanned"] == 10  # nine free heads of block 15 and pfn 8191
    assert vm["compact_isolated"] == 128 + 511


def test_unmovable_page_keeps_its_pageblock_from_being_freed(
        make_machine: MakeMachine) -> None:
    m = _fragmented(make_machine, kernel_pfn=8)
    owners = m.pages["owner"].copy()
    assert compact_zone(m, Z, 9, MIGRATE_MOVABLE) == COMPACT_PARTIAL
    invariants.check_invariants(m)
    rows, _ = m.take_notifications()
    _check_moved(m, rows, owners)
    assert 8 not in rows[:, 0]
    assert int(m.pages[8]["flags"]) == PG_HEAD
    assert int(m.pages[8]["mt"]) >> KIND_SHIFT == KIND_KERNEL
    # Every other page of block 0 moved, yet block 0 holds no order-9 block. Compaction went
    # on until blocks 1 and 2 were free: two order-9 blocks (not buddies) pass the watermark.
    assert not (m.pages["flags"][:PB] & PG_HEAD)[np.arange(PB) != 8].any()
    for block in (1, 2):
        head = m.pages[block * PB]
        assert head["flags"] & PG_BUDDY and int(head["order"]) == 9
    assert int(m.zones[Z]["nr_free"][9:].sum()) == 2


def test_free_scanner_skips_reserve_and_unmovable_pageblocks(
        make_machine: MakeMachine) -> None:
    m = _fragmented(make_machine)
    m.pageblock_type[15] = MIGRATE_RESERVE
    m.pageblock_type[14] = MIGRATE_UNMOVABLE
    top = m.pages[14 * PB:].copy()
    assert compact_zone(m, Z, 9, MIGRATE_MOVABLE) == COMPACT_PARTIAL
    invariants.check_invariants(m)
    rows, _ = m.take_notifications()
    assert len(rows) == 128
    assert ((rows[:, 1] >= 13 * PB) & (rows[:, 1] < 14 * PB)).all()
    for field in ("flags", "order", "owner", "mt"):  # list links may change, blocks may not
        assert (m.pages[14 * PB:][field] == top[field]).all()
    assert m.pageblock_type[14] == MIGRATE_UNMOVABLE and m.pageblock_type[15] == MIGRATE_RESERVE


def test_wholly_free_pageblock_of_any_type_is_a_target(make_machine: MakeMachine) -> None:
    m = _fragmented(make_machine)
    assert m.free(14 * PB + PB - 1) == 0  # block 14 now one free order-9 block
    m.pageblock_type[14] = MIGRATE_UNMOVABLE
    m.pageblock_type[13] = MIGRATE_UNMOVABLE  # not wholly free: never a target
    assert compact_node(m)[0] == COMPACT_COMPLETE
    invariants.check_invariants(m)
    rows, _ = m.take_notifications()
    news = rows[:, 1]
    assert ((news >= 14 * PB) & (news < 15 * PB)).any()
    assert not ((news >= 13 * PB) & (news < 14 * PB)).any()
    # split_free_page() of a block of order >= pageblock_order - 1 makes it MOVABLE.
    assert m.pageblock_type[14] == MIGRATE_MOVABLE


def test_compact_memory_packs_the_zone(make_machine: MakeMachine) -> None:
    m = _fragmented(make_machine)
    owners = m.pages["owner"].copy()
    assert compact_node(m) == [COMPACT_COMPLETE]
    invariants.check_invariants(m)
    rows, _ = m.take_notifications()
    _check_moved(m, rows, owners)
    # All but the pages of blocks 14 and 15: the free scanner took targets from both, so the
    # scanners met at block 14.
    assert len(rows) == 518
    assert set(_pattern().tolist()) - set(rows[:, 0].tolist()) == {14 * PB + PB - 1, 8191}
    # Blocks 0-13 are now free: seven order-10 blocks.
    assert int(m.zones[Z]["nr_free"][10]) == 7
    assert not (m.pages["flags"][: 14 * PB] & PG_HEAD).any()


def test_vanilla_zone_compacts_into_large_free_blocks_only(make_machine: MakeMachine) -> None:
    m = _fragmented(make_machine, policy="vanilla")
    assert compact_node(m) == [COMPACT_COMPLETE]
    invariants.check_invariants(m)
    # Every pageblock reads UNMOVABLE under 2.6.20 rules: no block is a target.
    assert m.stat("pgmigrate_success") == 0
    assert m.take_notifications()[0].shape == (0, 3)
    assert int(m.zones[Z]["nr_lru"].sum()) == 520


def test_deferral_skips_2_to_the_k_minus_1_attempts(make_machine: MakeMachine) -> None:
    m = make_machine(memory=32 * MiB)
    assert not any(compaction_deferred(m, Z) for _ in range(5))
    seen = []
    for k in range(1, 9):
        defer_compaction(m, Z)
        shift = min(k, 6)
        assert int(m.zones[Z]["compact_defer_shift"]) == shift
        answers = [compaction_deferred(m, Z) for _ in range(1 << shift)]
        assert answers == [True] * ((1 << shift) - 1) + [False]
        seen.append(sum(answers))
        assert not compaction_deferred(m, Z)  # stays allowed until the next failure
    assert m.stat("compact_deferred") == sum(seen) == 1 + 3 + 7 + 15 + 31 + 63 * 3


def test_gates_before_any_scanning(make_machine: MakeMachine) -> None:
    m = _fragmented(make_machine)
    assert try_to_compact_pages(m, 3, GFP_HIGHUSER_MOVABLE) == COMPACT_SKIPPED
    assert try_to_compact_pages(m, 9, GFP_NOFS | GFP.MOVABLE) == COMPACT_SKIPPED
    assert m.stat("compact_stall") == 0
    assert try_to_compact_pages(m, 9, GFP_HIGHUSER_MOVABLE) == COMPACT_PARTIAL
    assert m.stat("compact_stall") == 1 and m.stat("pgmigrate_success") == 128


def _few_large_fragments(make_machine: MakeMachine, threshold: int) -> Machine:
    """Free the lower half of blocks 8-15: eight order-8 blocks, index(9) = 375."""
    m = _filled(make_machine, extfrag_threshold=threshold)
    keep = np.setdiff1d(np.arange(m.nr_pages),
                        (np.arange(8, 16)[:, None] * PB + np.arange(256)).ravel())
    _free_all_but(m, keep)
    assert fragmentation_index(m.zones[Z]["nr_free"], 9) == 375
    return m


@pytest.mark.parametrize(("threshold", "runs"), [(500, False), (374, True)])
def test_fragmentation_index_gate(make_machine: MakeMachine, threshold: int,
                                  runs: bool) -> None:
    m = _few_large_fragments(make_machine, threshold)
    status = try_to_compact_pages(m, 9, GFP_HIGHUSER_MOVABLE, Z)
    assert m.stat("compact_stall") == 1
    assert (m.stat("compact_migrate_scanned") > 0) == runs
    assert (status != COMPACT_SKIPPED) == runs
    invariants.check_invariants(m)


def test_order0_watermark_gate(make_machine: MakeMachine) -> None:
    m = _filled(make_machine)
    _free_all_but(m, np.setdiff1d(np.arange(m.nr_pages), np.arange(0, 8000, 8)))
    assert m.free_pages() == 1000  # not above low + 2 * 2^9 = 1024
    assert try_to_compact_pages(m, 9, GFP_HIGHUSER_MOVABLE) == COMPACT_SKIPPED
    assert m.stat("compact_stall") == 1 and m.stat("compact_migrate_scanned") == 0


def test_zone_with_a_suitable_block(make_machine: MakeMachine) -> None:
    # fragmentation_index is -1000 (2.6.35 tests for -1, so only the watermark decides).
    # One free order-9 block does not pass the order-9 watermark: compaction runs.
    m = _fragmented(make_machine)
    assert m.free(15 * PB + PB - 1) == 0
    assert try_to_compact_pages(m, 9, GFP_HIGHUSER_MOVABLE) == COMPACT_PARTIAL
    assert m.stat("compact_migrate_scanned") > 0
    # Two of them do: compact_finished stops before scanning anything.
    m = _fragmented(make_machine)
    assert (m.free_batch(np.array([14 * PB + PB - 1, 15 * PB + PB - 1])) == 0).all()
    assert try_to_compact_pages(m, 9, GFP_HIGHUSER_MOVABLE) == COMPACT_PARTIAL
    assert m.stat("compact_migrate_scanned") == 0 and m.stat("compact_stall") == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mixed_zone_keeps_every_page_it_cannot_move(make_machine: MakeMachine,
                                                     seed: int) -> None:
    """Anon and file pages (active, referenced, dirty, some under writeback), kernel and slab
    pages, half the movable ones freed: only LRU pages not under writeback move, and each moved
    page keeps its owner, kind and flags."""
    rng = np.random.default_rng(seed)
    m = make_machine(memory=32 * MiB)
    n = 6000
    kinds = rng.choice([KIND_ANON, KIND_FILE, KIND_KERNEL, KIND_SLAB], n, p=[.5, .3, .1, .1])
    mts = np.where(kinds >= KIND_ANON, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE)
    high = np.array([m.resolve(None, int(t))[0] for t in mts])
    pfns = m.alloc_batch(np.zeros(n, np.int64), high, mts, np.full(n, ALLOC_WMARK_LOW),
                         np.arange(n), kinds)
    ok = pfns >= 0
    pfns, kinds = pfns[ok], kinds[ok]
    movable = kinds >= KIND_ANON
    lru_add_batch(m.pages, m.zones, pfns[movable], rng.integers(0, 2, int(movable.sum())))
    extra = rng.choice([0, PG_REFERENCED, PG_DIRTY, PG_WRITEBACK], pfns.shape[0],
                       p=[.6, .2, .15, .05]).astype(np.uint8)
    m.pages["flags"][pfns[movable]] |= extra[movable]
    m.free_batch(pfns[movable & (rng.random(pfns.shape[0]) < 0.5)])
    invariants.check_invariants(m)
    before = m.pages.copy()
    compact_zone(m, Z, 9, MIGRATE_MOVABLE)
    invariants.check_invariants(m)
    compact_node(m)
    invariants.check_invariants(m)
    rows, _ = m.take_notifications()
    assert len(rows) == m.stat("pgmigrate_success") > 0
    moved = {old: (new, owner) for old, new, owner in rows.tolist()}
    keep = PG_REFERENCED | PG_DIRTY | PG_ACTIVE
    for old, (new, owner) in moved.items():
        while new in moved:  # moved twice in one run
            new = moved[new][0]
        assert owner == before[old]["owner"] == m.pages[new]["owner"]
        assert m.pages[new]["mt"] == before[old]["mt"]
        assert m.pages[new]["flags"] & keep == before[old]["flags"] & keep
        assert m.pages[new]["flags"] & PG_LRU
        assert not before[old]["flags"] & PG_WRITEBACK
    # Pages the migrate scanner cannot isolate, or that fail, are where they were.
    f = before["flags"]
    stay = ((f & PG_HEAD) != 0) & (((f & PG_LRU) == 0) | ((f & PG_WRITEBACK) != 0))
    assert stay.sum() > 0 and m.stat("pgmigrate_fail") > 0
    for field in ("owner", "mt", "order"):
        assert (m.pages[stay][field] == before[stay][field]).all()


@pytest.mark.parametrize("policy", ["mobility", "mobility-2.6.35"])
def test_page_under_writeback_by_migrate_rule(make_machine: MakeMachine, policy: str) -> None:
    # The fragmented zone with kept page 8 under writeback. Compaction isolates it (an LRU
    # page); 2.6.35 migrate_pages retries it (-EAGAIN, its target freed) on passes 0-2 and
    # waits on its writeback on pass 3, so it moves; one pass (the other policies) fails it
    # and it stays where it is, under writeback, back on the LRU.
    m = _fragmented(make_machine, policy=policy)
    m.pages[8]["flags"] |= PG_WRITEBACK
    compact_zone(m, Z, 9, MIGRATE_MOVABLE)
    invariants.check_invariants(m)
    rows, _ = m.take_notifications()
    moved = {old: new for old, new, _owner in rows.tolist()}
    if policy == "mobility-2.6.35":
        assert 8 in moved and not m.pages[8]["flags"] & PG_HEAD
        assert not m.pages[moved[8]]["flags"] & PG_WRITEBACK
        assert m.stat("pgmigrate_fail") == 0
    else:
        assert 8 not in moved
        assert m.pages[8]["flags"] & (PG_HEAD | PG_LRU | PG_WRITEBACK) == (
            PG_HEAD | PG_LRU | PG_WRITEBACK)
        assert m.stat("pgmigrate_fail") == 1
    # Unused and -EAGAIN targets went back: the zone holds the same pages as before.
    assert m.free_pages() == m.nr_pages - 520

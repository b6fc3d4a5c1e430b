"""`models.mm.migrate`: 2.6.35 `unmap_and_move` keeps what the page is and frees the old copy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fragsim.models.mm import invariants
from fragsim.models.mm.constants import (
    KIND_ANON,
    KIND_FILE,
    KIND_KERNEL,
    KIND_SLAB,
    MIGRATE_MOVABLE,
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
from fragsim.models.mm.lru import LRU_ACTIVE, LRU_INACTIVE, lru_add_batch
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.migrate import is_migrate_target, migrate_page, migrate_pages, page_movable
from fragsim.models.mm.state import KIND_SHIFT, STAT

Z = ZONE_NORMAL


def _lru(m: Machine, lru: int) -> list[int]:
    out, pfn = [], int(m.zones[Z]["lru_head"][lru])
    while pfn >= 0:
        out.append(pfn)
        pfn = int(m.pages[pfn]["next"])
    return out


def _page(m: Machine, kind: int, owner: int, *, lru: bool = True, active: bool = False,
          flags: int = 0, mt: int = MIGRATE_MOVABLE) -> int:
    pfn = m.alloc(0, migratetype=mt, owner=owner, kind=kind)
    assert pfn >= 0
    if lru:
        lru_add_batch(m.pages, m.zones, np.array([pfn]), np.array([int(active)]))
    m.pages[pfn]["flags"] |= flags
    return pfn


def _target(m: Machine) -> int:
    return m.alloc(0, migratetype=MIGRATE_MOVABLE, owner=-1)


def _migrate(m: Machine, old: int, new: int) -> bool:
    return bool(migrate_page(m.pages, m.zones, m.pageblock_type, m.node, old, new))


@pytest.mark.parametrize("active", [False, True])
def test_migration_keeps_owner_kind_flags_and_lru(mobility_machine: Machine,
                                                   active: bool) -> None:
    m = mobility_machine
    lru = LRU_ACTIVE if active else LRU_INACTIVE
    others = [_page(m, KIND_ANON, 1, active=active) for _ in range(3)]
    old = _page(m, KIND_FILE, 42, active=active, flags=PG_REFERENCED | PG_DIRTY)
    more = _page(m, KIND_ANON, 2, active=active)  # the head of the list, newer than `old`
    new = _target(m)
    mt_byte = int(m.pages[old]["mt"])
    before = m.vmstat()
    assert _lru(m, lru)[:2] == [more, old]

    assert _migrate(m, old, new)

    page = m.pages[new]
    assert int(page["owner"]) == 42
    assert int(page["mt"]) == mt_byte and int(page["mt"]) >> KIND_SHIFT == KIND_FILE
    want = PG_HEAD | PG_LRU | PG_REFERENCED | PG_DIRTY | (PG_ACTIVE if active else 0)
    assert int(page["flags"]) == want
    # putback_lru_page(newpage): at the head of the same list; the old page is gone from it.
    assert _lru(m, lru) == [new, more, *others[::-1]]
    assert int(m.zones[Z]["nr_lru"][lru]) == 5
    # The old page went back to the buddy allocator.
    assert not m.pages[old]["flags"] & PG_HEAD
    after = m.vmstat()
    assert after["pgmigrate_success"] == before["pgmigrate_success"] + 1
    assert after["pgfree"] == before["pgfree"] + 1
    assert after["nr_free_pages"] == before["nr_free_pages"] + 1
    invariants.check_invariants(m)


def test_page_off_the_lru_stays_off(mobility_machine: Machine) -> None:
    m = mobility_machine
    old = _page(m, KIND_ANON, 5, lru=False)
    new = _target(m)
    assert _migrate(m, old, new)
    assert int(m.pages[new]["flags"]) == PG_HEAD
    assert int(m.pages[new]["owner"]) == 5
    assert int(m.zones[Z]["nr_lru"].sum()) == 0
    invariants.check_invariants(m)


@pytest.mark.parametrize("case", ["writeback", "kernel", "slab", "free", "bad_target",
                                  "same_page"])
def test_unmovable_pages_fail_and_change_nothing(mobility_machine: Machine, case: str) -> None:
    m = mobility_machine
    if case == "writeback":
        old = _page(m, KIND_FILE, 3, flags=PG_DIRTY | PG_WRITEBACK)
    elif case == "kernel":
        old = _page(m, KIND_KERNEL, 3, lru=False, mt=MIGRATE_UNMOVABLE)
    elif case == "slab":
        old = _page(m, KIND_SLAB, 3, lru=False, mt=MIGRATE_UNMOVABLE)
    elif case == "free":
        old = _page(m, KIND_ANON, 3, lru=False)
    else:
        old = _page(m, KIND_ANON, 3)
    if case == "bad_target":
        new = _page(m, KIND_ANON, 9)  # holds a page already
    elif case == "same_page":
        new = old
    else:
        new = _target(m)
    if case == "free":
        m.free(old)
    pages, zones = m.pages.copy(), m.zones.copy()
    fails = m.stat("pgmigrate_fail")
    assert not _migrate(m, old, new)
    assert m.stat("pgmigrate_fail") == fails + 1
    assert (m.pages == pages).all() and (m.zones == zones).all()
    invariants.check_invariants(m)


def test_movable_and_target_predicates(mobility_machine: Machine) -> None:
    m = mobility_machine
    anon = _page(m, KIND_ANON, 1)
    wb = _page(m, KIND_ANON, 1, flags=PG_WRITEBACK)
    target = _target(m)
    assert page_movable(m.pages, anon) and not page_movable(m.pages, wb)
    assert is_migrate_target(m.pages, target) and not is_migrate_target(m.pages, anon)
    free_head = int(np.flatnonzero(m.pages["flags"] & PG_BUDDY)[0])
    assert not page_movable(m.pages, free_head) and not is_migrate_target(m.pages, free_head)


def test_migrate_pages_reports_rows_and_frees_unused_targets(mobility_machine: Machine) -> None:
    m = mobility_machine
    good = [_page(m, KIND_ANON, 100 + i) for i in range(4)]
    stuck = _page(m, KIND_FILE, 200, flags=PG_WRITEBACK)
    pfns = [good[0], stuck, *good[1:]]
    free_before = m.free_pages()
    moved, failed = migrate_pages(m, pfns)
    assert (moved, failed) == (4, 1)
    rows, _ = m.take_notifications()
    assert rows.shape == (4, 3)
    assert rows[:, 0].tolist() == [good[0], *good[1:]]
    assert rows[:, 2].tolist() == [100, 101, 102, 103]
    for _old, new, owner in rows.tolist():
        assert int(m.pages[new]["owner"]) == owner and m.pages[new]["flags"] & PG_LRU
    # Four pages moved (net zero) and the writeback page's target went back to the buddy.
    assert m.free_pages() == free_before
    assert m.stat("pgmigrate_success") == 4 and m.stat("pgmigrate_fail") == 1
    invariants.check_invariants(m)


def test_migrate_pages_stops_without_targets(mobility_machine: Machine) -> None:
    m = mobility_machine
    pfns = [_page(m, KIND_ANON, 7) for _ in range(3)]
    targets = iter([_target(m)])

    def one_target(_m: Machine, _old: int) -> int:
        return next(targets, -1)

    assert migrate_pages(m, pfns, one_target) == (1, 0)
    assert m.stat("pgmigrate_fail") == 0
    assert all(m.pages[p]["flags"] & PG_LRU for p in pfns[1:])
    assert int(m.node[0]["stat"][STAT["pgmigrate_success"]]) == 1
    invariants.check_invariants(m)


# --- 2.6.35 migrate_pages passes (`mobility-2.6.35`'s migrate_rule) ----------------------------
# linux-2.6.35.3 mm/migrate.c: `for (pass = 0; pass < 10 && retry; pass++)` calls
# `unmap_and_move(get_new_page, private, page, pass > 2, offlining)`, which takes a target
# first, returns -EAGAIN for a page under writeback unless `force`, then
# `wait_on_page_writeback(page)`; `putback_lru_page(newpage)` frees an unused target.

M35 = "mobility-2.6.35"


def _counting_targets(calls: list[int]) -> Callable[[Machine, int], int]:
    def new_page(m: Machine, old: int) -> int:
        calls.append(old)
        return _target(m)
    return new_page


@pytest.mark.parametrize("policy", ["mobility", M35])
def test_migrate_pages_writeback_page_by_policy(policy: str) -> None:
    m = Machine(MachineConfig(memory=64 * MiB, policy=policy))
    good = [_page(m, KIND_ANON, 100 + i) for i in range(2)]
    stuck = _page(m, KIND_FILE, 200, flags=PG_DIRTY | PG_WRITEBACK)
    free_before = m.free_pages()
    calls: list[int] = []
    moved, failed = migrate_pages(m, [good[0], stuck, good[1]], _counting_targets(calls))
    rows, _ = m.take_notifications()
    if policy == M35:
        # Pass 0: good0 moves, stuck -EAGAIN (target freed), good1 moves; passes 1 and 2:
        # stuck -EAGAIN again; pass 3 (force): its writeback is waited on and it moves.
        assert (moved, failed) == (3, 0)
        assert calls == [good[0], stuck, good[1], stuck, stuck, stuck]
        assert rows[:, 0].tolist() == [good[0], good[1], stuck]
        new = int(rows[2, 1])
        assert m.pages[new]["flags"] & (PG_DIRTY | PG_LRU) == PG_DIRTY | PG_LRU
        assert not m.pages[new]["flags"] & PG_WRITEBACK
        assert not m.pages[stuck]["flags"] & PG_HEAD  # the old page is freed
        assert m.stat("pgmigrate_fail") == 0
    else:
        # One pass: the page under writeback fails, its target is freed.
        assert (moved, failed) == (2, 1)
        assert calls == [good[0], stuck, good[1]]
        assert m.pages[stuck]["flags"] & PG_WRITEBACK and m.pages[stuck]["flags"] & PG_LRU
        assert m.stat("pgmigrate_fail") == 1
    assert m.free_pages() == free_before  # moves are net zero, unused targets went back
    invariants.check_invariants(m)


def test_2_6_35_permanent_failure_is_not_retried() -> None:
    m = Machine(MachineConfig(memory=64 * MiB, policy=M35))
    kernel = _page(m, KIND_KERNEL, 5, lru=False, mt=MIGRATE_UNMOVABLE)
    calls: list[int] = []
    assert migrate_pages(m, [kernel], _counting_targets(calls)) == (0, 1)
    assert calls == [kernel]
    invariants.check_invariants(m)


def test_2_6_35_enomem_during_retries_leaves_the_page() -> None:
    # Two targets: passes 0 and 1 free them (-EAGAIN); pass 2 gets none: -ENOMEM, the page
    # stays under writeback on its LRU list, counted neither way.
    m = Machine(MachineConfig(memory=64 * MiB, policy=M35))
    stuck = _page(m, KIND_FILE, 9, flags=PG_WRITEBACK)
    targets = iter([_target(m), _target(m)])
    assert migrate_pages(m, [stuck], lambda _m, _old: next(targets, -1)) == (0, 0)
    assert m.pages[stuck]["flags"] & (PG_WRITEBACK | PG_LRU) == PG_WRITEBACK | PG_LRU
    assert m.stat("pgmigrate_success") == m.stat("pgmigrate_fail") == 0
    invariants.check_invariants(m)

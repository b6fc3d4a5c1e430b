"""Tests for models.mm.census: hand-built scenarios and a page-by-page reference walk."""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.mm import census
from fragsim.models.mm.census import (
    ALLOCATED_COLUMNS,
    CENSUS_COLUMNS,
    free_blocks,
    pageblock_census,
    pageblock_zones,
)
from fragsim.models.mm.constants import (
    ALLOC_NO_WATERMARKS,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_RESERVE,
    MIGRATE_UNMOVABLE,
    PG_BUDDY,
    PG_HEAD,
)
from fragsim.models.mm.machine import Machine, MachineConfig


def _reference(m: Machine) -> dict[str, np.ndarray]:
    """Walk the pfns one block at a time, as a reader of struct pages would."""
    pbo = m.pageblock_order
    nr_blocks = m.pageblock_type.shape[0]
    free = np.zeros(nr_blocks, np.int64)
    alloc = np.zeros((nr_blocks, 5), np.int64)
    pfn = 0
    while pfn < m.nr_pages:
        flags = int(m.pages[pfn]["flags"])
        if flags & (PG_BUDDY | PG_HEAD):
            size = 1 << int(m.pages[pfn]["order"])
            for p in range(pfn, pfn + size):
                if flags & PG_BUDDY:
                    free[p >> pbo] += 1
                else:
                    alloc[p >> pbo, int(m.pages[p]["mt"])] += 1
            pfn += size
        else:
            pfn += 1
    block_type = m.pageblock_type.astype(np.int64)
    return {
        "free": free,
        "alloc": alloc,
        "mixed": (alloc > 0).sum(axis=1) >= 2,
        "foreign": alloc.sum(axis=1) - alloc[np.arange(nr_blocks), block_type],
    }


def _churn(m: Machine, seed: int) -> None:
    """Random allocations of every type and a few orders, then free a random half."""
    rng = np.random.default_rng(seed)
    n = 3000
    orders = rng.choice([0, 0, 0, 1, 2, 3, 5, 9, 10], size=n)
    mts = rng.choice([MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE], size=n)
    zones = np.array([m.resolve(migratetype=int(mt))[0] for mt in mts])
    pfns = m.alloc_batch(orders, zones, mts, np.full(n, 4), np.zeros(n), np.zeros(n))
    live = pfns[pfns >= 0]
    m.free_batch(rng.permutation(live)[: live.shape[0] // 2])


def test_all_is_exported() -> None:
    for name in census.__all__:
        assert hasattr(census, name)


def test_columns_and_lengths() -> None:
    m = Machine(MachineConfig(memory=64 << 20))
    cols = pageblock_census(m)
    assert tuple(cols) == CENSUS_COLUMNS
    assert all(col.shape == (32,) for col in cols.values())
    assert cols["start_pfn"].tolist() == [512 * i for i in range(32)]


def test_fresh_machine_is_all_free() -> None:
    m = Machine(MachineConfig(memory=64 << 20))
    cols = pageblock_census(m)
    assert (cols["free"] == 512).all()
    assert (cols["allocated"] == 0).all()
    assert not cols["mixed"].any()
    assert cols["migratetype"][0] == MIGRATE_RESERVE
    assert (cols["migratetype"][1:] == MIGRATE_MOVABLE).all()


def test_fallback_leaves_foreign_pages_in_an_unclaimed_pageblock() -> None:
    m = Machine(MachineConfig(memory=64 << 20))
    assert m.alloc(0, migratetype=MIGRATE_MOVABLE) == 15360  # pageblock 30
    # UNMOVABLE falls back to the next order-10 MOVABLE block (pageblocks 28 and 29); 2.6.24
    # claims only pageblock 28, and the order-9 upper half (pageblock 29) goes on the
    # UNMOVABLE list while its pageblock stays MOVABLE.
    assert m.alloc(0, migratetype=MIGRATE_UNMOVABLE) == 14336
    assert m.alloc(9, migratetype=MIGRATE_UNMOVABLE) == 14848
    cols = pageblock_census(m)
    assert cols["migratetype"][28] == MIGRATE_UNMOVABLE
    assert cols["migratetype"][29] == MIGRATE_MOVABLE
    assert (cols["free"][28], cols["allocated_unmovable"][28], cols["foreign_pages"][28]) == (
        511, 1, 0)
    assert (cols["free"][29], cols["allocated_unmovable"][29], cols["foreign_pages"][29]) == (
        0, 512, 512)
    assert (cols["free"][30], cols["allocated_movable"][30], cols["foreign_pages"][30]) == (
        511, 1, 0)
    assert not cols["mixed"].any()
    assert int(cols["foreign_pages"].sum()) == 512


def test_vanilla_mixes_types_in_one_pageblock() -> None:
    m = Machine(MachineConfig(memory=64 << 20, policy="vanilla"))
    assert m.alloc(0, migratetype=MIGRATE_MOVABLE) == 15360
    assert m.alloc(0, migratetype=MIGRATE_UNMOVABLE) == 15361
    cols = pageblock_census(m)
    assert cols["mixed"].tolist() == [i == 30 for i in range(32)]
    # Every vanilla pageblock reads UNMOVABLE, so the movable page is the foreign one.
    assert cols["foreign_pages"][30] == 1
    assert cols["allocated"][30] == 2


def test_reserve_pageblock_counts_all_allocated_pages_as_foreign() -> None:
    m = Machine(MachineConfig(memory=64 << 20))
    # Take every MOVABLE block so that the next movable request is served from RESERVE.
    pfns = m.alloc_many(10, 15, migratetype=MIGRATE_MOVABLE, alloc_flags=ALLOC_NO_WATERMARKS)
    assert (pfns >= 0).all()
    assert m.alloc(0, migratetype=MIGRATE_MOVABLE, alloc_flags=ALLOC_NO_WATERMARKS) == 0
    cols = pageblock_census(m)
    assert cols["migratetype"][0] == MIGRATE_RESERVE
    assert (cols["allocated_movable"][0], cols["foreign_pages"][0], cols["free"][0]) == (
        1, 1, 511)
    # Pageblocks of MOVABLE type full of movable pages have nothing foreign.
    assert (cols["foreign_pages"][2:] == 0).all()


@pytest.mark.parametrize("policy", ["mobility", "vanilla"])
@pytest.mark.parametrize("seed", [1, 2])
def test_matches_page_by_page_reference(policy: str, seed: int) -> None:
    m = Machine(MachineConfig(memory=64 << 20, policy=policy))
    _churn(m, seed)
    cols = pageblock_census(m)
    ref = _reference(m)
    assert np.array_equal(cols["free"], ref["free"])
    for mt, name in enumerate(ALLOCATED_COLUMNS):
        assert np.array_equal(cols[name], ref["alloc"][:, mt]), name
    assert np.array_equal(cols["mixed"], ref["mixed"])
    assert np.array_equal(cols["foreign_pages"], ref["foreign"])
    assert int(cols["free"].sum()) == m.free_pages()
    assert int(cols["allocated"].sum()) == m.nr_pages - m.free_pages()


def test_pageblock_zones_follow_zone_spans() -> None:
    m = Machine(MachineConfig(memory=128 << 20, layout="zones"))
    zones = pageblock_zones(m)
    assert zones.tolist() == [0] * 8 + [1] * 56


def test_free_blocks_long_form() -> None:
    m = Machine(MachineConfig(memory=128 << 20, layout="zones"))
    cols = free_blocks(m)
    assert cols["nr_free"].shape == (2 * 11 * 5,)
    nonzero = np.flatnonzero(cols["nr_free"])
    got = {(int(cols["zone"][i]), int(cols["order"][i]), int(cols["migratetype"][i])):
           int(cols["nr_free"][i]) for i in nonzero}
    assert got == {(0, 10, MIGRATE_MOVABLE): 3, (0, 10, MIGRATE_RESERVE): 1,
                   (1, 10, MIGRATE_MOVABLE): 27, (1, 10, MIGRATE_RESERVE): 1}


def test_large_machine_census_is_consistent() -> None:
    m = Machine(MachineConfig(memory=4 << 30))
    pfns = m.alloc_many(0, 100_000, migratetype=MIGRATE_MOVABLE)
    m.alloc_many(3, 1000, migratetype=MIGRATE_RECLAIMABLE)
    m.free_batch(pfns[::2])
    cols = pageblock_census(m)
    assert cols["free"].shape == (2048,)
    assert int(cols["free"].sum()) == m.free_pages()
    assert int(cols["allocated_reclaimable"].sum()) == 8000
    assert int(cols["allocated_movable"].sum()) == 50_000

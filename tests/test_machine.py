"""`models.mm.machine`: configuration checks, request resolution, the batch calls, `copy()`."""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.mm.constants import (
    ALLOC_NO_WATERMARKS,
    ALLOC_WMARK_LOW,
    FREE_NOT_ALLOCATED,
    FREE_OK,
    FREE_OUT_OF_RANGE,
    KIND_ANON,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    ZONE_MOVABLE,
    ZONE_NORMAL,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.gfp import GFP_HIGHUSER_MOVABLE, GFP_KERNEL, GFP_TEMPORARY
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.state import page_kinds, page_migratetypes
from tests.conftest import MakeMachine


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"policy": "nope"}, "unknown policy 'nope': allowed are mobility, mobility-2.6.35, "
                         "mobility-6.1, mobility-6.15, vanilla"),
    ({"profile": "sparc"}, "unknown machine profile 'sparc'"),
    ({"layout": "numa"}, "unknown layout 'numa': allowed are flat, zones"),
    ({"max_order": 1}, "max-order 1 is out of range: allowed 2..16"),
    ({"pageblock_order": 11}, r"pageblock-order 11 is out of range: allowed 1..10"),
    ({"memory": 6 * MiB}, "not a positive multiple of the max-order block"),
    ({"memory": 0}, "not a positive multiple"),
    ({"min_free_kbytes": -1}, "min_free_kbytes -1 must be >= 0"),
    ({"kernelcore": -4096}, "kernelcore -4096 must be >= 0"),
    ({"movablecore": -1}, "movablecore -1 must be >= 0"),
])
def test_bad_config_is_refused_with_a_clear_message(kwargs: dict[str, object],
                                                    message: str) -> None:
    config = {"memory": 64 * MiB, **kwargs}
    with pytest.raises(ValueError, match=message):
        Machine(MachineConfig(**config))  # type: ignore[arg-type]


def test_resolved_fills_profile_defaults() -> None:
    cfg = MachineConfig(memory=64 * MiB).resolved()
    assert (cfg.max_order, cfg.pageblock_order) == (11, 9)
    # A smaller max_order alone pulls pageblock_order down to MAX_ORDER-1.
    cfg = MachineConfig(memory=64 * MiB, max_order=8).resolved()
    assert (cfg.max_order, cfg.pageblock_order) == (8, 7)
    assert MachineConfig(memory=64 * MiB, profile="x86").resolved().pageblock_order == 10


def test_geometry_and_queries(mobility_machine: Machine) -> None:
    m = mobility_machine
    assert m.nr_pages == 16384 and m.pageblock_type.shape == (32,)
    assert m.populated_zones() == [ZONE_NORMAL]
    assert m.zone_name(ZONE_NORMAL) == "Normal"
    assert m.free_pages() == 16384
    vm = m.vmstat()
    assert vm["nr_free_pages"] == 16384 and vm["pgalloc"] == 0 and "pgalloc_normal" in vm
    assert m.state_bytes() > m.pages.nbytes


def test_resolve() -> None:
    m = Machine(MachineConfig(memory=64 * MiB))
    assert m.resolve(GFP_KERNEL) == (ZONE_NORMAL, MIGRATE_UNMOVABLE)
    assert m.resolve(GFP_TEMPORARY) == (ZONE_NORMAL, MIGRATE_RECLAIMABLE)
    assert m.resolve(GFP_HIGHUSER_MOVABLE) == (ZONE_MOVABLE, MIGRATE_MOVABLE)
    # A bare migratetype uses its typical caller's mask; a given type overrides the mask's.
    assert m.resolve(migratetype=MIGRATE_MOVABLE) == (ZONE_MOVABLE, MIGRATE_MOVABLE)
    assert m.resolve(GFP_KERNEL, MIGRATE_RECLAIMABLE) == (ZONE_NORMAL, MIGRATE_RECLAIMABLE)
    with pytest.raises(ValueError, match="needs a gfp mask or a migratetype"):
        m.resolve()
    with pytest.raises(ValueError, match="migratetype 9 out of range 0..4"):
        m.resolve(migratetype=9)


def test_alloc_checks_order(machine: Machine) -> None:
    with pytest.raises(ValueError, match="order 11 out of range 0..10"):
        machine.alloc(11)
    with pytest.raises(ValueError, match="order -1 out of range"):
        machine.alloc_many(-1, 3)
    with pytest.raises(ValueError, match=r"orders must be in 0..10"):
        machine.alloc_batch(np.array([0, 11]), np.zeros(2), np.zeros(2), np.zeros(2),
                            np.zeros(2), np.zeros(2))


def test_alloc_records_owner_kind_and_type(machine: Machine) -> None:
    pfn = machine.alloc(2, GFP_HIGHUSER_MOVABLE, owner=42, kind=KIND_ANON)
    block = machine.pages[pfn:pfn + 4]
    assert (block["owner"] == 42).all()
    assert (page_migratetypes(block) == MIGRATE_MOVABLE).all()
    assert (page_kinds(block) == KIND_ANON).all()
    assert machine.stat("pgalloc") == 4 and machine.stat("alloc_success") == 1


def test_alloc_many_and_failures(machine: Machine) -> None:
    # 16 max-order blocks exist; ignoring watermarks, the 17th order-10 request fails.
    got = machine.alloc_many(10, 17, migratetype=MIGRATE_MOVABLE,
                             alloc_flags=ALLOC_NO_WATERMARKS)
    assert got.dtype == np.int64 and got.shape == (17,)
    assert sorted(got[:16].tolist()) == list(range(0, 16384, 1024)) and got[16] == -1
    assert machine.stat("alloc_fail") == 1 and machine.vmstat()["allocfail_order_10"] == 1
    check_invariants(machine)


def test_alloc_batch_matches_single_calls(make_machine: MakeMachine) -> None:
    a = make_machine(policy="mobility")
    b = make_machine(policy="mobility")
    rng = np.random.default_rng(3)
    n = 300
    orders = rng.integers(0, 4, n)
    mts = rng.integers(0, 3, n)
    zones = np.array([a.resolve(migratetype=int(t))[0] for t in mts])
    flags = np.full(n, ALLOC_WMARK_LOW)
    owners = np.arange(n)
    batch = a.alloc_batch(orders, zones, mts, flags, owners, np.zeros(n, np.int64))
    single = [b.alloc(int(o), migratetype=int(t), owner=int(w))
              for o, t, w in zip(orders, mts, owners, strict=True)]
    assert batch.tolist() == single
    assert np.array_equal(a.pages, b.pages) and np.array_equal(a.zones, b.zones)


def test_free_and_free_batch_statuses(machine: Machine) -> None:
    pfns = machine.alloc_many(1, 4, migratetype=MIGRATE_UNMOVABLE)
    assert machine.free(int(pfns[0])) == FREE_OK
    # Freed twice, the tail page of a block, and pfns outside memory are refused, unchanged.
    before = machine.pages.copy()
    assert machine.free(int(pfns[0])) == FREE_NOT_ALLOCATED
    assert machine.free(int(pfns[1]) + 1) == FREE_NOT_ALLOCATED
    assert machine.free(-1) == FREE_OUT_OF_RANGE
    assert machine.free(machine.nr_pages) == FREE_OUT_OF_RANGE
    assert np.array_equal(before, machine.pages)
    assert machine.stat("free_unmatched") == 4
    out = machine.free_batch(np.array([pfns[1], pfns[1], pfns[2], 99999]))
    assert out.tolist() == [FREE_OK, FREE_NOT_ALLOCATED, FREE_OK, FREE_OUT_OF_RANGE]
    assert machine.stat("pgfree") == 6
    check_invariants(machine)


def test_copy_is_independent(machine: Machine) -> None:
    machine.alloc_many(0, 50, migratetype=MIGRATE_MOVABLE)
    probe = machine.copy()
    snapshot = (machine.pages.copy(), machine.zones.copy(), machine.node.copy(),
                machine.pageblock_type.copy())
    got = probe.alloc_many(9, 10, migratetype=MIGRATE_UNMOVABLE)
    assert (got >= 0).any()
    probe.set_min_free_kbytes(8192)
    probe.free_batch(got[got >= 0])
    assert np.array_equal(machine.pages, snapshot[0])
    assert np.array_equal(machine.zones, snapshot[1])
    assert np.array_equal(machine.node, snapshot[2])
    assert np.array_equal(machine.pageblock_type, snapshot[3])
    assert machine.min_free_kbytes == machine.default_min_free_kbytes
    check_invariants(machine)
    check_invariants(probe)
    # The copy behaves exactly as the original would.
    assert probe.copy().alloc(0) == probe.alloc(0)


def test_set_min_free_kbytes_rejects_negative(machine: Machine) -> None:
    with pytest.raises(ValueError, match="min_free_kbytes -5 must be >= 0"):
        machine.set_min_free_kbytes(-5)

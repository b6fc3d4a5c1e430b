"""Slot 3 is MIGRATE_RESERVE up to 4.3 and MIGRATE_HIGHATOMIC on 6.1: every table and view names
it as the run's policy does (`Policy.migratetype_labels`), and earlier kernels keep `Reserve`."""

from __future__ import annotations

import pandas as pd

from fragsim.analysis.results import migratetype_names
from fragsim.models.mm.census import (
    ALLOCATED_COLUMNS,
    CENSUS_COLUMNS,
    allocated_columns,
    census_columns,
    pageblock_census,
)
from fragsim.models.mm.constants import (
    ALLOC_HARDER,
    ALLOC_WMARK_MIN,
    MIGRATE_HIGHATOMIC,
    MIGRATE_UNMOVABLE,
)
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.policy import POLICIES
from fragsim.models.mm.profiles import migratetype_labels
from fragsim.sim.tables import (
    MIGRATETYPE_DTYPE,
    free_blocks_frame,
    migratetype_dtype,
    pageblock_census_frame,
)

MiB = 1 << 20
OLD = ("Unmovable", "Reclaimable", "Movable", "Reserve", "Isolate")


def _highatomic_machine() -> Machine:
    # An atomic (ALLOC_HARDER) order-9 UNMOVABLE allocation on 6.1 reserves its pageblock
    # HIGHATOMIC (6.1 reserve_highatomic_pageblock), which is slot 3.
    m = Machine(MachineConfig(memory=64 * MiB, policy="mobility-6.1"))
    assert m.alloc(9, migratetype=MIGRATE_UNMOVABLE,
                   alloc_flags=ALLOC_WMARK_MIN | ALLOC_HARDER) == 0
    assert m.pageblock_type[0] == MIGRATE_HIGHATOMIC == 3
    return m


def test_policy_labels_by_slot() -> None:
    # Internal slots: UNMOVABLE 0, RECLAIMABLE 1, MOVABLE 2, RESERVE/HIGHATOMIC 3, ISOLATE 4
    # (the order of /proc/pagetypeinfo differs on 4.4+; the labels are by slot).
    assert POLICIES["mobility-6.1"].migratetype_labels == (
        "Unmovable", "Reclaimable", "Movable", "HighAtomic", "Isolate")
    for name in ("vanilla", "mobility", "mobility-2.6.35"):
        assert POLICIES[name].migratetype_labels == OLD
    assert migratetype_labels("6.1")[3] == "HighAtomic"
    assert migratetype_labels("mobility-6.1")[3] == "HighAtomic"
    for kernel in ("2.6.20", "2.6.24", "2.6.35", "mobility", "unknown"):
        assert migratetype_labels(kernel)[3] == "Reserve"


def test_tables_name_slot_3_highatomic_on_6_1() -> None:
    m = _highatomic_machine()
    blocks = free_blocks_frame(m)
    assert list(blocks["migratetype"].cat.categories)[3] == "HighAtomic"
    census = pageblock_census_frame(m)
    assert census["migratetype"].iloc[0] == "HighAtomic"
    assert "Reserve" not in set(census["migratetype"].astype(str))
    assert "allocated_highatomic" in census.columns and "allocated_reserve" not in census.columns
    cols = pageblock_census(m)
    assert tuple(cols) == census_columns(m.policy)
    assert allocated_columns(m.policy)[3] == "allocated_highatomic"


def test_tables_keep_reserve_before_4_4() -> None:
    m = Machine(MachineConfig(memory=64 * MiB, policy="mobility-2.6.35"))
    assert migratetype_dtype(m.policy) is MIGRATETYPE_DTYPE
    census = pageblock_census_frame(m)
    assert census["migratetype"].iloc[0] == "Reserve"  # setup_zone_migrate_reserve
    assert tuple(pageblock_census(m)) == CENSUS_COLUMNS == census_columns(m.policy)
    assert allocated_columns(m.policy) == ALLOCATED_COLUMNS
    assert list(free_blocks_frame(m)["migratetype"].cat.categories) == list(OLD)


def test_samples_and_events_named_by_their_kernel() -> None:
    # The stored tables keep slot indices; the run's kernel names them.
    table = pd.DataFrame({"kernel": pd.Categorical(["6.1", "2.6.35", "6.1", "2.6.24"]),
                          "migratetype": pd.array([3, 3, -1, 2], dtype="int8")})
    assert migratetype_names(table).tolist() == ["HighAtomic", "Reserve", pd.NA, "Movable"]
    assert migratetype_names(table.drop(columns="kernel")).tolist()[:2] == ["Reserve"] * 2

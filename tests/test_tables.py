"""Tests for sim.tables: tidy frames with categorical keys that agree with the kernel views."""

from __future__ import annotations

import pandas as pd
import pytest

from fragsim.models.mm.constants import MIGRATE_MOVABLE, MIGRATE_UNMOVABLE
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.sim import tables
from fragsim.sim.tables import (
    buddyinfo_frame,
    free_blocks_frame,
    pageblock_census_frame,
    vmstat_frame,
)


@pytest.fixture(scope="module")
def machine() -> Machine:
    m = Machine(MachineConfig(memory=128 << 20, layout="zones"))
    m.alloc_many(0, 100, migratetype=MIGRATE_MOVABLE)
    m.alloc_many(2, 10, migratetype=MIGRATE_UNMOVABLE)
    return m


def test_all_is_exported() -> None:
    for name in tables.__all__:
        assert hasattr(tables, name)


def test_free_blocks_frame(machine: Machine) -> None:
    df = free_blocks_frame(machine)
    assert list(df.columns) == ["zone", "order", "migratetype", "nr_free"]
    assert isinstance(df["zone"].dtype, pd.CategoricalDtype)
    assert list(df["zone"].cat.categories) == ["DMA", "DMA32", "Normal", "HighMem", "Movable"]
    assert list(df["migratetype"].cat.categories) == [
        "Unmovable", "Reclaimable", "Movable", "Reserve", "Isolate"]
    assert len(df) == 2 * 11 * 5
    assert set(df["zone"].unique()) == {"DMA", "DMA32"}
    pages = (df["nr_free"] * 2 ** df["order"].astype("int64")).sum()
    assert pages == machine.free_pages()


def test_buddyinfo_frame_matches_nr_free(machine: Machine) -> None:
    df = buddyinfo_frame(machine)
    assert list(df.columns) == ["zone", "order", "nr_free", "free_pages"]
    dma32 = df[df["zone"] == "DMA32"]
    assert dma32["nr_free"].tolist() == machine.zones[1]["nr_free"][:11].tolist()
    assert df["free_pages"].sum() == machine.free_pages()
    # The free-list frame summed over types is buddyinfo.
    by_order = (free_blocks_frame(machine)
                .groupby(["zone", "order"], observed=True)["nr_free"].sum())
    assert by_order.tolist() == df["nr_free"].tolist()


def test_pageblock_census_frame(machine: Machine) -> None:
    df = pageblock_census_frame(machine)
    assert len(df) == 64
    assert isinstance(df["migratetype"].dtype, pd.CategoricalDtype)
    assert df["zone"].value_counts().to_dict() == {
        "DMA32": 56, "DMA": 8, "Normal": 0, "HighMem": 0, "Movable": 0}
    counts = df.groupby("migratetype", observed=False).size()
    assert counts["Reserve"] == 2
    assert counts["Unmovable"] >= 1
    assert df["free"].sum() == machine.free_pages()
    assert df["allocated_unmovable"].sum() == 40
    assert df["allocated_movable"].sum() == 100
    assert df["mixed"].dtype == bool


def test_vmstat_frame(machine: Machine) -> None:
    df = vmstat_frame(machine)
    stats = machine.vmstat()
    assert df["name"].astype(str).tolist() == list(stats)
    assert df["value"].tolist() == list(stats.values())
    assert isinstance(df["name"].dtype, pd.CategoricalDtype)
    assert df.set_index("name").loc["pgalloc", "value"] == 140

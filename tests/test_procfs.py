"""Exact-format tests for models.mm.procfs: whole texts compared with hand-derived strings.

The expected texts follow mm/vmstat.c of 2.6.24 (buddyinfo, pagetypeinfo) and 2.6.35 (debugfs
extfrag files) character for character, trailing spaces included.
"""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.mm import procfs
from fragsim.models.mm.constants import ALLOC_NO_WATERMARKS, MIGRATE_MOVABLE
from fragsim.models.mm.machine import Machine, MachineConfig

ZERO11 = "     0 " * 11  # eleven "%6lu " zero counts


def _row(counts: list[int]) -> str:
    # Written out for readability of the expectations: each count right-aligned in 6 then " ".
    return "".join(str(c).rjust(6) + " " for c in counts)


@pytest.fixture(scope="module")
def mobility_one_page() -> Machine:
    """64 MiB, 2.6.24: one order-0 movable page taken from the head order-10 block."""
    m = Machine(MachineConfig(memory=64 << 20))
    assert m.alloc(0, migratetype=MIGRATE_MOVABLE) == 15360
    return m


@pytest.fixture(scope="module")
def vanilla_one_page() -> Machine:
    m = Machine(MachineConfig(memory=64 << 20, policy="vanilla"))
    assert m.alloc(0, migratetype=MIGRATE_MOVABLE) == 15360
    return m


def _tiny_vanilla(free: list[int]) -> Machine:
    """16 pages, orders 0..2, every page allocated, then `free` pfns freed in that order."""
    m = Machine(MachineConfig(memory=64 << 10, policy="vanilla", max_order=3,
                              min_free_kbytes=0))
    pfns = m.alloc_many(0, 16, alloc_flags=ALLOC_NO_WATERMARKS)
    assert sorted(pfns.tolist()) == list(range(16))
    for pfn in free:
        assert m.free(pfn) == 0
    return m


def test_all_is_exported() -> None:
    for name in procfs.__all__:
        assert hasattr(procfs, name)


def test_buddyinfo_mobility(mobility_one_page: Machine) -> None:
    # expand() left one block at each order 0..9; 14 movable + 1 reserve order-10 blocks.
    expected = ("Node 0, zone   Normal "
                "     1      1      1      1      1      1      1      1      1      1     15 \n")
    assert procfs.buddyinfo(mobility_one_page) == expected


def test_buddyinfo_zones_layout() -> None:
    m = Machine(MachineConfig(memory=128 << 20, layout="zones"))
    expected = ("Node 0, zone      DMA " + "     0 " * 10 + "     4 \n"
                "Node 0, zone    DMA32 " + "     0 " * 10 + "    28 \n")
    assert procfs.buddyinfo(m) == expected


def test_pagetypeinfo_mobility(mobility_one_page: Machine) -> None:
    expected = (
        "Page block order: 9\n"
        "Pages per block:  512\n"
        "\n"
        "Free pages count per migrate type at order "
        "      0      1      2      3      4      5      6      7      8      9     10 \n"
        "Node    0, zone   Normal, type    Unmovable " + ZERO11 + "\n"
        "Node    0, zone   Normal, type  Reclaimable " + ZERO11 + "\n"
        "Node    0, zone   Normal, type      Movable "
        "     1      1      1      1      1      1      1      1      1      1     14 \n"
        "Node    0, zone   Normal, type      Reserve "
        "     0      0      0      0      0      0      0      0      0      0      1 \n"
        "Node    0, zone   Normal, type      Isolate " + ZERO11 + "\n"
        "\n"
        "Number of blocks type     Unmovable  Reclaimable      Movable      Reserve      Isolate \n"
        "Node 0, zone   Normal            0            0           31            1            0 \n"
    )
    assert procfs.pagetypeinfo(mobility_one_page) == expected


def test_pagetypeinfo_vanilla_prints_everything_unmovable(vanilla_one_page: Machine) -> None:
    expected = (
        "Page block order: 9\n"
        "Pages per block:  512\n"
        "\n"
        "Free pages count per migrate type at order "
        "      0      1      2      3      4      5      6      7      8      9     10 \n"
        "Node    0, zone   Normal, type    Unmovable "
        "     1      1      1      1      1      1      1      1      1      1     15 \n"
        "Node    0, zone   Normal, type  Reclaimable " + ZERO11 + "\n"
        "Node    0, zone   Normal, type      Movable " + ZERO11 + "\n"
        "Node    0, zone   Normal, type      Reserve " + ZERO11 + "\n"
        "Node    0, zone   Normal, type      Isolate " + ZERO11 + "\n"
        "\n"
        "Number of blocks type     Unmovable  Reclaimable      Movable      Reserve      Isolate \n"
        "Node 0, zone   Normal           32            0            0            0            0 \n"
    )
    assert procfs.pagetypeinfo(vanilla_one_page) == expected


def test_pagetypeinfo_grouping_disabled_for_small_memory() -> None:
    # 8 MiB = 2048 pages < 512 * 5: build_all_zonelists() turns grouping off.
    m = Machine(MachineConfig(memory=8 << 20))
    assert not m.grouping
    text = procfs.pagetypeinfo(m)
    assert "Node    0, zone   Normal, type    Unmovable " + _row([0] * 10 + [2]) + "\n" in text
    assert text.endswith("Node 0, zone   Normal            4            0            0"
                         "            0            0 \n")


def test_pagetypeinfo_zones_layout() -> None:
    m = Machine(MachineConfig(memory=128 << 20, layout="zones"))
    text = procfs.pagetypeinfo(m)
    lines = text.split("\n")
    assert lines[4] == "Node    0, zone      DMA, type    Unmovable " + ZERO11
    assert lines[6] == "Node    0, zone      DMA, type      Movable " + _row([0] * 10 + [3])
    assert lines[7] == "Node    0, zone      DMA, type      Reserve " + _row([0] * 10 + [1])
    assert lines[11] == "Node    0, zone    DMA32, type      Movable " + _row([0] * 10 + [27])
    assert lines[12] == "Node    0, zone    DMA32, type      Reserve " + _row([0] * 10 + [1])
    # DMA: 4096 pages = 8 pageblocks (1 reserve); DMA32: 28672 pages = 56 (1 reserve).
    assert lines[-3:] == [
        "Node 0, zone      DMA            0            0            7            1            0 ",
        "Node 0, zone    DMA32            0            0           55            1            0 ",
        "",
    ]
    assert len(lines) == 4 + 10 + 1 + 1 + 2 + 1  # headers, types, blank, blocks, zones, ""


def test_unusable_index_text(mobility_one_page: Machine) -> None:
    # 16383 free pages; below order j lie 2^j - 1 of them: (2^j - 1) * 1000 // 16383.
    expected = ("Node 0, zone   Normal 0.000 0.000 0.000 0.000 0.000 0.001 0.003 0.007 0.015 "
                "0.031 0.062 \n")
    assert procfs.unusable_index(mobility_one_page) == expected


def test_extfrag_index_text_all_suitable(mobility_one_page: Machine) -> None:
    assert procfs.extfrag_index(mobility_one_page) == (
        "Node 0, zone   Normal" + " -1.000" * 11 + " \n")


def test_tiny_machine_indices() -> None:
    # Three isolated free pages (0, 2, 5): nr_free = [3, 0, 0].
    m = _tiny_vanilla([0, 2, 5])
    assert procfs.buddyinfo(m) == "Node 0, zone   Normal      3      0      0 \n"
    assert procfs.unusable_index(m) == "Node 0, zone   Normal 0.000 1.000 1.000 \n"
    # order 1: 1000 - (1000 + 3000 // 2) // 3 = 167; order 2: 1000 - (1000 + 750) // 3 = 417.
    assert procfs.extfrag_index(m) == "Node 0, zone   Normal -1.000 0.167 0.417 \n"
    # Freeing pfn 1 merges with 0: nr_free = [2, 1, 0], 4 pages in 3 blocks.
    assert m.free(1) == 0
    assert procfs.buddyinfo(m) == "Node 0, zone   Normal      2      1      0 \n"
    assert procfs.unusable_index(m) == "Node 0, zone   Normal 0.000 0.500 1.000 \n"
    assert procfs.extfrag_index(m) == "Node 0, zone   Normal -1.000 -1.000 0.334 \n"


def test_extfrag_index_negative_prints_like_c() -> None:
    # One free page: order 1 gives 1000 - 1500 = -500, printed "0.-500" as the kernel does.
    m = _tiny_vanilla([7])
    assert procfs.extfrag_index(m) == "Node 0, zone   Normal -1.000 0.-500 0.-250 \n"


def test_no_free_memory() -> None:
    m = _tiny_vanilla([])
    assert procfs.buddyinfo(m) == "Node 0, zone   Normal      0      0      0 \n"
    assert procfs.unusable_index(m) == "Node 0, zone   Normal 1.000 1.000 1.000 \n"
    assert procfs.extfrag_index(m) == "Node 0, zone   Normal 0.000 0.000 0.000 \n"


def test_pageblock_counts_sum_to_zone_pageblocks() -> None:
    m = Machine(MachineConfig(memory=128 << 20, layout="zones"))
    assert procfs.pageblock_counts(m, 0).tolist() == [0, 0, 7, 1, 0]
    assert int(procfs.pageblock_counts(m, 1).sum()) == (32768 - 4096) // 512


def test_vmstat_lines(mobility_one_page: Machine) -> None:
    text = procfs.vmstat(mobility_one_page)
    lines = text.splitlines()
    assert text.endswith("\n")
    assert lines[0] == "pgalloc 1"
    assert "nr_free_pages 16383" in lines
    assert "alloc_order_0 1" in lines
    for line in lines:
        name, value = line.split(" ")
        assert name and int(value) >= 0
    assert len(lines) == len(mobility_one_page.vmstat())


def test_views_do_not_change_the_machine(mobility_one_page: Machine) -> None:
    before = mobility_one_page.zones.copy()
    for view in (procfs.buddyinfo, procfs.pagetypeinfo, procfs.extfrag_index,
                 procfs.unusable_index, procfs.vmstat):
        view(mobility_one_page)
    assert np.array_equal(before, mobility_one_page.zones)


def test_pagetypeinfo_6_1_names_and_order() -> None:
    # 4.4+ migratetype_names[] (no CMA): Unmovable, Movable, Reclaimable, HighAtomic, Isolate.
    # 6.1 boots to the tail, so one MOVABLE page comes from the order-10 block at 0 and expand
    # leaves one block of each order 0..9; 15 order-10 blocks stay. No RESERVE pageblock.
    m = Machine(MachineConfig(memory=64 << 20, policy="mobility-6.1"))
    assert m.alloc(0, migratetype=2) == 0
    expected = (
        "Page block order: 9\n"
        "Pages per block:  512\n"
        "\n"
        "Free pages count per migrate type at order "
        "      0      1      2      3      4      5      6      7      8      9     10 \n"
        "Node    0, zone   Normal, type    Unmovable " + ZERO11 + "\n"
        "Node    0, zone   Normal, type      Movable "
        "     1      1      1      1      1      1      1      1      1      1     15 \n"
        "Node    0, zone   Normal, type  Reclaimable " + ZERO11 + "\n"
        "Node    0, zone   Normal, type   HighAtomic " + ZERO11 + "\n"
        "Node    0, zone   Normal, type      Isolate " + ZERO11 + "\n"
        "\n"
        "Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate \n"
        "Node 0, zone   Normal            0           32            0            0            0 \n"
    )
    assert procfs.pagetypeinfo(m) == expected

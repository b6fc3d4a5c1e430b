"""Tests for models.mm.procparse and `fragsim inspect` (sim.inspect_cmd).

The texts below are shaped like real /proc files: 2.6.32-style pagetypeinfo (Reserve type),
a 5.x pagetypeinfo (HighAtomic, CMA, a `>100000` capped count, mixed blocks, two nodes), and
buddyinfo from x86_64 and ppc64 machines. Index values are checked against hand arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import pytest

from fragsim.models.mm import procparse
from fragsim.models.mm.procparse import (
    Buddyinfo,
    Pagetypeinfo,
    ProcParseError,
    detect_format,
    parse_buddyinfo,
    parse_pagetypeinfo,
    parse_proc,
)
from fragsim.sim.inspect_cmd import render


# The texts are built line by line in the kernel's own formats (mm/vmstat.c), trailing spaces
# included; the real lines are longer than this file's line limit.
def _zone(node: int, zone: str, counts: list[int], width: int = 6) -> str:
    """A buddyinfo or block-count line: "Node %d, zone %8s " then "%6lu " (or "%12lu ")."""
    return f"Node {node}, zone {zone:>8} " + "".join(f"{c:>{width}} " for c in counts) + "\n"


def _free(node: int, zone: str, mtype: str, counts: Sequence[int | str]) -> str:
    """A pagetypeinfo free-list line: "Node %4d, zone %8s, type %12s " then "%s%6lu "."""
    return (f"Node {node:4d}, zone {zone:>8}, type {mtype:>12} "
            + "".join(f"{c:>6} " for c in counts) + "\n")


def _header(nr_orders: int = 11) -> str:
    return ("Page block order: 9\nPages per block:  512\n\n"
            + f"{'Free pages count per migrate type at order':<43} "
            + "".join(f"{o:6d} " for o in range(nr_orders)) + "\n")


def _blocks_header(title: str, types: tuple[str, ...]) -> str:
    return f"\n{title:<23}" + "".join(f"{t:>12} " for t in types) + "\n"


OLD_TYPES = ("Unmovable", "Reclaimable", "Movable", "Reserve", "Isolate")
NEW_TYPES = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate")
Z11 = [0] * 11
DMA_FREE = [1, 1, 1, 0, 2, 1, 1, 0, 1, 1, 3]
NORMAL_FREE = [24155, 12432, 5120, 1987, 640, 221, 81, 22, 7, 1, 0]

BUDDYINFO = (_zone(0, "DMA", DMA_FREE)
             + _zone(0, "DMA32", [3298, 2674, 1955, 1290, 719, 332, 124, 39, 17, 5, 192])
             + _zone(0, "Normal", NORMAL_FREE))

BUDDYINFO_PPC64 = (_zone(0, "DMA", [120, 33, 10, 4, 2, 1, 0, 1, 0, 0, 0, 0, 40])
                   + _zone(1, "DMA", [12, 3, 1] + [0] * 9 + [62])
                   + _zone(1, "Movable", [0, 1] + [0] * 10 + [8]))

PAGETYPEINFO_OLD = (
    _header()
    + _free(0, "DMA", "Unmovable", [1, 1, 1, 0, 2, 1, 1, 0, 1, 0, 0])
    + _free(0, "DMA", "Reclaimable", Z11)
    + _free(0, "DMA", "Movable", [0] * 10 + [3])
    + _free(0, "DMA", "Reserve", [0] * 9 + [1, 0])
    + _free(0, "DMA", "Isolate", Z11)
    + _free(0, "Normal", "Unmovable", [310, 120, 41, 6, 1, 0, 0, 0, 0, 0, 0])
    + _free(0, "Normal", "Reclaimable", [25, 11, 3, 1, 0, 0, 0, 0, 0, 0, 0])
    + _free(0, "Normal", "Movable", [2000, 1000, 500, 250, 100, 20, 5, 2, 1, 1, 2])
    + _free(0, "Normal", "Reserve", [0] * 10 + [2])
    + _free(0, "Normal", "Isolate", Z11)
    + _blocks_header("Number of blocks type ", OLD_TYPES)
    + _zone(0, "DMA", [1, 0, 6, 1, 0], 12)
    + _zone(0, "Normal", [40, 12, 458, 2, 0], 12)
)

PAGETYPEINFO_MODERN = (
    _header()
    + _free(0, "DMA", "Unmovable", [0] * 8 + [1, 0, 0])
    + _free(0, "DMA", "Movable", [0] * 9 + [1, 3])
    + "".join(_free(0, "DMA", t, Z11) for t in NEW_TYPES[2:])
    + _free(0, "Normal", "Unmovable", [3455, 1621, 590, 203, 61, 17, 3, 0, 0, 0, 0])
    + _free(0, "Normal", "Movable", [">100000", 51234, 20011, 6120, 1530, 400, 120, 41, 12, 4, 0])
    + _free(0, "Normal", "Reclaimable", [410, 208, 90, 12, 1, 0, 0, 0, 0, 0, 0])
    + "".join(_free(0, "Normal", t, Z11) for t in NEW_TYPES[3:])
    + _blocks_header("Number of blocks type ", NEW_TYPES)
    + _zone(0, "DMA", [1, 7, 0, 0, 0, 0], 12)
    + _zone(0, "Normal", [321, 15720, 343, 0, 0, 0], 12)
    + _blocks_header("Number of mixed blocks ", NEW_TYPES)
    + _zone(0, "DMA", [0] * 6, 12)
    + _zone(0, "Normal", [12, 40, 3, 0, 0, 0], 12)
    # The next node repeats every header (pagetypeinfo_show runs once per node).
    + _header()
    + _free(1, "Normal", "Unmovable", [5] + [0] * 10)
    + _free(1, "Normal", "Movable", [0] * 10 + [100])
    + "".join(_free(1, "Normal", t, Z11) for t in NEW_TYPES[2:])
    + _blocks_header("Number of blocks type ", NEW_TYPES)
    + _zone(1, "Normal", [1, 511, 0, 0, 0, 0], 12)
)


def test_texts_look_like_the_kernel_prints_them() -> None:
    lines = PAGETYPEINFO_OLD.splitlines()
    assert lines[3].startswith("Free pages count per migrate type at order       0      1 ")
    assert lines[4].startswith("Node    0, zone      DMA, type    Unmovable      1      1 ")
    assert lines[-3] == ("Number of blocks type     Unmovable  Reclaimable      Movable"
                         "      Reserve      Isolate ")
    assert lines[-2].startswith("Node 0, zone      DMA            1            0 ")
    assert " >100000  51234 " in PAGETYPEINFO_MODERN
    assert BUDDYINFO.startswith("Node 0, zone      DMA      1      1      1      0      2 ")


# Hand arithmetic for the DMA zone [1 1 1 0 2 1 1 0 1 1 3]: 3975 free pages; the pages in
# blocks below order j are 0 1 3 7 7 39 71 135 135 391 903, and the index is that * 1000 // 3975.
DMA_UNUSABLE = ("Node 0, zone      DMA 0.000 0.000 0.000 0.001 0.001 0.009 0.017 0.033 0.033 "
                "0.098 0.227 \n")
# Normal [24155 ...  1 0]: a block exists up to order 9; order 10: 113011 pages in 44666
# blocks, 1000 - (1000 + 113011000 // 1024) // 44666 = 1000 - 2 = 998.
NORMAL_EXTFRAG = "Node 0, zone   Normal" + " -1.000" * 10 + " 0.998 \n"


def test_all_is_exported() -> None:
    for name in procparse.__all__:
        assert hasattr(procparse, name)


# --- detection ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "kind"), [
    (BUDDYINFO, "buddyinfo"),
    (BUDDYINFO_PPC64, "buddyinfo"),
    (PAGETYPEINFO_OLD, "pagetypeinfo"),
    (PAGETYPEINFO_MODERN, "pagetypeinfo"),
])
def test_detect_format(text: str, kind: str) -> None:
    assert detect_format(text) == kind


@pytest.mark.parametrize("text", ["MemTotal:       16303412 kB\nMemFree:  1 kB\n", "", "\n\n"])
def test_detect_format_rejects_other_files(text: str) -> None:
    with pytest.raises(ProcParseError, match="meminfo.txt.*expected /proc/buddyinfo"):
        detect_format(text, "meminfo.txt")


# --- buddyinfo ----------------------------------------------------------------------------------
def test_parse_buddyinfo() -> None:
    info = parse_buddyinfo(BUDDYINFO)
    assert [(z.node, z.zone) for z in info.zones] == [(0, "DMA"), (0, "DMA32"), (0, "Normal")]
    assert info.zones[0].nr_free == (1, 1, 1, 0, 2, 1, 1, 0, 1, 1, 3)
    assert info.zones[2].nr_free[-1] == 0


def test_parse_buddyinfo_other_orders_and_nodes() -> None:
    info = parse_buddyinfo(BUDDYINFO_PPC64)
    assert [len(z.nr_free) for z in info.zones] == [13, 13, 13]
    assert [(z.node, z.zone) for z in info.zones] == [(0, "DMA"), (1, "DMA"), (1, "Movable")]


def test_parse_buddyinfo_zone_names() -> None:
    text = "".join(f"Node 0, zone {name:>8}      1      2 \n"
                   for name in ("DMA", "DMA32", "Normal", "HighMem", "Movable", "Device"))
    info = parse_buddyinfo(text)
    assert [z.zone for z in info.zones] == ["DMA", "DMA32", "Normal", "HighMem", "Movable",
                                            "Device"]
    assert all(z.nr_free == (1, 2) for z in info.zones)


@pytest.mark.parametrize(("line", "message"), [
    ("Node 0, zone   Normal     12     x3      4", "line 2: count 'x3' is not a number"),
    ("Node 0, zone   Normal     12     -3      4", "line 2: count '-3' is not a number"),
    ("Node 0, zone   Normal     1.5", "line 2: count '1.5' is not a number"),
    ("Node zero, zone   Normal      1", "line 2: node number 'zero' is not a number"),
    ("Node 0, zone   Normal", "line 2: no counts"),
    ("Node 0, zone      DMA      5", "line 2: zone DMA of node 0 appears twice"),
    ("garbage", "line 2: expected 'Node <n>, zone <name> <counts>'"),
])
def test_parse_buddyinfo_malformed(line: str, message: str) -> None:
    text = "Node 0, zone      DMA      1      1 \n" + line + "\n"
    with pytest.raises(ProcParseError, match=message):
        parse_buddyinfo(text, "bi")


# --- pagetypeinfo -------------------------------------------------------------------------------
def test_parse_pagetypeinfo_old() -> None:
    info = parse_pagetypeinfo(PAGETYPEINFO_OLD)
    assert (info.pageblock_order, info.pages_per_block) == (9, 512)
    assert info.types == ("Unmovable", "Reclaimable", "Movable", "Reserve", "Isolate")
    assert info.block_types == info.types
    assert not info.capped
    dma, normal = info.zones
    assert dma.nr_free == (1, 1, 1, 0, 2, 1, 1, 0, 1, 1, 3)
    assert dma.free["Reserve"][9] == 1
    assert dma.pageblocks == {"Unmovable": 1, "Reclaimable": 0, "Movable": 6, "Reserve": 1,
                              "Isolate": 0}
    assert normal.pageblocks["Movable"] == 458
    assert normal.mixed_pageblocks == {}


def test_parse_pagetypeinfo_modern_two_nodes() -> None:
    info = parse_pagetypeinfo(PAGETYPEINFO_MODERN)
    assert info.types == ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate")
    assert info.capped  # ">100000" read as 100000
    assert [(z.node, z.zone) for z in info.zones] == [(0, "DMA"), (0, "Normal"), (1, "Normal")]
    normal = info.zones[1]
    assert normal.free["Movable"][0] == 100000
    assert normal.nr_free[0] == 3455 + 100000 + 410
    assert normal.pageblocks["Movable"] == 15720
    assert normal.mixed_pageblocks["Unmovable"] == 12
    assert info.zones[2].pageblocks == {"Unmovable": 1, "Movable": 511, "Reclaimable": 0,
                                        "HighAtomic": 0, "CMA": 0, "Isolate": 0}


def _old_with(old: str, new: str) -> str:
    assert old in PAGETYPEINFO_OLD
    return PAGETYPEINFO_OLD.replace(old, new, 1)


@pytest.mark.parametrize(("text", "message"), [
    (_old_with("     41      6", "     4x      6"), r"line 10: count '4x' is not a number"),
    (_old_with("      3      1      0      0      0      0      0      0      0 \n"
               "Node    0, zone   Normal, type      Movable",
               "      3      1      0      0      0      0      0      0 \n"
               "Node    0, zone   Normal, type      Movable"),
     "line 11: 10 counts, but the header lists 11 orders"),
    (_old_with("Node 0, zone      DMA            1            0            6",
               "Node 0, zone      DMA            1            0"),
     "line 17: 4 counts, but the header names 5 types"),
    (_old_with("Page block order: 9", "Page block order: nine"),
     "line 1: page block order 'nine' is not a number"),
    (_old_with("Pages per block:  512", "Pages per block:  500"), "500 is not 2\\^9"),
    (_old_with("      0      1      2      3", "      0      2      1      3"),
     "line 4: orders .* are not 0, 1, 2"),
])
def test_parse_pagetypeinfo_malformed(text: str, message: str) -> None:
    with pytest.raises(ProcParseError, match=message):
        parse_pagetypeinfo(text, "pti")


def test_parse_pagetypeinfo_without_free_lines() -> None:
    with pytest.raises(ProcParseError, match="no free-list lines"):
        parse_pagetypeinfo("Page block order: 9\nPages per block:  512\n", "pti")


def test_parse_proc_dispatches() -> None:
    assert isinstance(parse_proc(BUDDYINFO), Buddyinfo)
    assert isinstance(parse_proc(PAGETYPEINFO_OLD), Pagetypeinfo)


# --- report -------------------------------------------------------------------------------------
def test_render_unusable_and_extfrag_lines() -> None:
    info = parse_buddyinfo(BUDDYINFO)
    unusable = render(info, "bi", show="unusable")
    assert unusable.splitlines()[0] + "\n" == DMA_UNUSABLE
    assert len(unusable.splitlines()) == 3
    extfrag = render(info, "bi", show="extfrag")
    assert extfrag.splitlines()[2] + "\n" == NORMAL_EXTFRAG


def test_render_pagetypeinfo_summary_uses_summed_free_lists() -> None:
    report = render(parse_pagetypeinfo(PAGETYPEINFO_OLD), "pti")
    # DMA is the same zone as in BUDDYINFO, seen through its per-type free lists.
    assert DMA_UNUSABLE.rstrip("\n") in report.splitlines()
    assert "pageblock order 9" in report.splitlines()[0]
    # order >= 9 share of DMA: 3584 of 3975 pages = 90.2%; 3975 free pages.
    assert "Node 0, zone      DMA   90.2% of 3975 free pages" in report
    assert "Pageblocks per type:" in report
    assert any(line.startswith("Node 0, zone   Normal") and line.split()[-5:] ==
               ["40", "12", "458", "2", "0"] for line in report.splitlines())
    assert "Free blocks per type (all orders):" in report


# --- the command --------------------------------------------------------------------------------
@pytest.fixture
def cli() -> ModuleType:
    import fragsim.sim.cli as cli_module

    return cli_module


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return _write


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("fragsim: error: ")
    assert "Traceback" not in captured.err
    return lines[0]


def test_cli_buddyinfo_summary(cli: ModuleType, write: Callable[[str, str], Path],
                               capsys: pytest.CaptureFixture[str]) -> None:
    path = write("buddyinfo", BUDDYINFO)
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert DMA_UNUSABLE in out
    assert NORMAL_EXTFRAG in out
    assert "Free memory in blocks of order >= 9 (pageblock order):" in out
    assert "Pageblocks per type" not in out


def test_cli_show_unusable_is_debugfs_text(cli: ModuleType, write: Callable[[str, str], Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = write("buddyinfo", BUDDYINFO)
    assert cli.main(["inspect", str(path), "--show", "unusable"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(DMA_UNUSABLE)
    assert len(out.splitlines()) == 3


def test_cli_pagetypeinfo_modern(cli: ModuleType, write: Callable[[str, str], Path],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = write("pagetypeinfo", PAGETYPEINFO_MODERN)
    assert cli.main(["inspect", str(path), "--show", "summary"]) == 0
    out = capsys.readouterr().out
    assert "HighAtomic" in out
    assert "lower bounds" in out
    assert "Node 1, zone   Normal " in out
    assert "Mixed pageblocks per type" in out


def test_cli_pageblock_order_option(cli: ModuleType, write: Callable[[str, str], Path],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = write("buddyinfo", BUDDYINFO)
    assert cli.main(["inspect", str(path), "--pageblock-order", "10"]) == 0
    out = capsys.readouterr().out
    # DMA: 3 order-10 blocks = 3072 of 3975 pages = 77.3%.
    assert "Free memory in blocks of order >= 10 (pageblock order):" in out
    assert "Node 0, zone      DMA   77.3% of 3975 free pages" in out


@pytest.mark.parametrize(("name", "text", "args", "fragment"), [
    ("meminfo", "MemTotal:       16303412 kB\n", [],
     "meminfo is neither /proc/buddyinfo nor /proc/pagetypeinfo"),
    ("empty", "", [], "empty: expected /proc/buddyinfo"),
    ("bad", BUDDYINFO.replace("1290", "12#0"), [], "bad line 2: count '12#0' is not a number"),
    ("pti", PAGETYPEINFO_OLD.replace("   2000", "  2,000"), [], "count '2,000'"),
    ("bi", BUDDYINFO, ["--pageblock-order", "11"], "pageblock order 11 is outside the orders"),
    ("bi", BUDDYINFO, ["--pageblock-order", "-1"], "--pageblock-order -1 must be >= 0"),
])
def test_cli_errors_are_one_line(cli: ModuleType, write: Callable[[str, str], Path],
                                 capsys: pytest.CaptureFixture[str], name: str, text: str,
                                 args: list[str], fragment: str) -> None:
    path = write(name, text)
    assert cli.main(["inspect", str(path), *args]) == 2
    assert fragment in _error_line(capsys)


def test_cli_missing_file(cli: ModuleType, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert cli.main(["inspect", str(missing)]) == 2
    assert f"no such file: {missing}" in _error_line(capsys)


def test_cli_directory_and_binary(cli: ModuleType, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["inspect", str(tmp_path)]) == 2
    assert "is a directory" in _error_line(capsys)
    binary = tmp_path / "core"
    binary.write_bytes(b"\x7fELF\xff\xfe\x00\x01")
    assert cli.main(["inspect", str(binary)]) == 2
    assert "not a text file" in _error_line(capsys)


def test_inspect_reads_stdin_and_refuses_empty(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from fragsim.sim.cli import main

    text = "Node 0, zone   Normal " + " ".join(f"{n:6d}" for n in (20, 19, 11, 11, 8, 1, 0, 1,
                                                                     1, 2, 10)) + "\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert main(["inspect", "-"]) == 0
    assert capsys.readouterr().out.startswith("<stdin>: buddyinfo")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["inspect", "-"]) == 2
    assert "<stdin> is empty" in capsys.readouterr().err

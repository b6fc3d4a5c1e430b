"""/proc/vmstat of the 6.1 preset (`models.mm.vmstat_6_1`): 6.1's names in 6.1's order, checked
against the real 6.1.176 kernel's file captured under user-mode-linux, and a golden case of the
counters derived from the model's pages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fragsim.models.mm import procfs
from fragsim.models.mm.constants import (
    KIND_ANON,
    KIND_FILE,
    KIND_FILE_MAPPED,
    KIND_SLAB,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
)
from fragsim.models.mm.lru import lru_add_batch
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.state import STAT
from fragsim.models.mm.vmstat_6_1 import VMSTAT_TEXT_6_1, vmstat_6_1

RAW = Path(__file__).resolve().parents[1] / "experiments" / "uml" / "results" / "raw" / "run-1"
STAGES = ("boot", "ext2_write", "compact")


def _names(text: str) -> list[str]:
    return [line.split()[0] for line in text.splitlines()]


def _is_ordered_subset(names: list[str], reference: list[str]) -> bool:
    """Every name is in `reference`, and they appear in the same relative order."""
    at = {name: i for i, name in enumerate(reference)}
    if any(name not in at for name in names):
        return False
    positions = [at[name] for name in names]
    return positions == sorted(positions) and len(set(positions)) == len(positions)


def _golden() -> Machine:
    """A 6.1 machine of 64 MiB, one Normal zone (as the UML guest has), no THP:
    3 anon pages on the LRU (one active), 2 file pages and 1 mapped file page on the LRU
    (the mapped one active), one order-2 reclaimable slab block, one order-1 anon block off
    the LRU; 10 pages reclaimed of which 4 by kswapd."""
    m = Machine(MachineConfig(memory=64 << 20, policy="mobility-6.1"))
    anon = [m.alloc(0, migratetype=MIGRATE_MOVABLE, kind=KIND_ANON) for _ in range(3)]
    file = [m.alloc(0, migratetype=MIGRATE_MOVABLE, kind=KIND_FILE) for _ in range(2)]
    mapped = m.alloc(0, migratetype=MIGRATE_MOVABLE, kind=KIND_FILE_MAPPED)
    assert m.alloc(2, migratetype=MIGRATE_RECLAIMABLE, kind=KIND_SLAB) >= 0
    assert m.alloc(1, migratetype=MIGRATE_MOVABLE, kind=KIND_ANON) >= 0
    pfns = np.array([*anon, *file, mapped], dtype=np.int64)
    active = np.array([1, 0, 0, 0, 0, 1], dtype=np.int64)
    assert lru_add_batch(m.pages, m.zones, pfns, active) == 6
    m.node[0]["stat"][STAT["pgsteal"]] = 10
    m.node[0]["stat"][STAT["kswapd_steal"]] = 4
    return m


@pytest.mark.parametrize("stage", STAGES)
def test_real_6_1_file_is_in_vmstat_text_order(stage: str) -> None:
    """The table is 6.1's: every line of the real kernel's /proc/vmstat is in it, in order."""
    real = _names((RAW / stage / "vmstat").read_text())
    assert (RAW / "kernel").read_text().startswith("6.1.")
    assert len(real) > 100
    assert _is_ordered_subset(real, list(VMSTAT_TEXT_6_1))


@pytest.mark.parametrize("stage", STAGES)
def test_fragsim_6_1_names_exist_in_real_file_in_same_order(stage: str) -> None:
    """Every counter fragsim prints for a 6.1 machine like the guest (one Normal zone, no THP)
    exists in the real 6.1.176 file and appears in the same relative order."""
    real = _names((RAW / stage / "vmstat").read_text())
    ours = _names(procfs.vmstat(_golden()))
    assert len(ours) >= 30
    assert _is_ordered_subset(ours, real), [n for n in ours if n not in real]
    assert ours[0] == "nr_free_pages" and ours[-1] == "nr_unstable"


def test_golden_derived_counters() -> None:
    m = _golden()
    vm = vmstat_6_1(m)
    expected = {
        "nr_zone_inactive_anon": 2, "nr_zone_active_anon": 1,
        "nr_zone_inactive_file": 2, "nr_zone_active_file": 1,
        "nr_inactive_anon": 2, "nr_active_anon": 1, "nr_inactive_file": 2, "nr_active_file": 1,
        "nr_slab_reclaimable": 4, "nr_anon_pages": 3 + 2, "nr_mapped": 1, "nr_file_pages": 3,
        "pgsteal_kswapd": 4, "pgsteal_direct": 6, "pgalloc_normal": 3 + 2 + 1 + 4 + 2,
        "nr_unstable": 0,
    }
    assert {k: vm[k] for k in expected} == expected
    lru = ("nr_inactive_anon", "nr_active_anon", "nr_inactive_file", "nr_active_file")
    assert sum(vm[k] for k in lru) == int(m.zones["nr_lru"].sum())  # the model's LRU, split
    assert vm["nr_free_pages"] == m.free_pages() == m.nr_pages - 12
    text = procfs.vmstat(m)
    assert "pgsteal_kswapd 4\npgsteal_direct 6\n" in text
    assert "\npgsteal " not in text and "kswapd_steal" not in text  # 2.6 names are gone
    assert text.endswith("nr_unstable 0\n")


def test_6_1_zones_and_thp_names() -> None:
    """A zoned THP machine: per-zone pgalloc with 6.1's suffixes, THP fault counters, all in
    `vmstat_text` order."""
    m = Machine(MachineConfig(memory=512 << 20, policy="mobility-6.1", layout="zones",
                              thp=True))
    names = _names(procfs.vmstat(m))
    zones = [n for n in names if n.startswith("pgalloc_")]
    assert zones == [f"pgalloc_{m.zone_name(z).lower()}" for z in m.populated_zones()]
    assert "thp_fault_alloc" in names and "thp_fault_fallback" in names
    assert _is_ordered_subset(names, list(VMSTAT_TEXT_6_1))


def test_2_6_output_unchanged() -> None:
    """Policies of 2.6.x keep `Machine.vmstat()` in its order, with its names."""
    for policy in ("vanilla", "mobility", "mobility-2.6.35"):
        m = Machine(MachineConfig(memory=64 << 20, policy=policy))
        m.alloc(0, migratetype=MIGRATE_MOVABLE)
        assert m.policy.vmstat_view == "2.6"
        assert procfs.vmstat(m) == "".join(f"{k} {v}\n" for k, v in m.vmstat().items())

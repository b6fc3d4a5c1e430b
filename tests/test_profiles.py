"""Kernel profiles are data: presets of MachineConfig options, each overridable."""

from __future__ import annotations

import pytest

from fragsim.models.mm.constants import ZONE_MOVABLE
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.profiles import KERNEL_PROFILES, kernel_profile, machine_config


@pytest.mark.parametrize(
    ("kernel", "policy", "lumpy", "compaction"),
    [
        ("2.6.20", "vanilla", False, False),
        ("2.6.23", "vanilla", True, False),
        ("2.6.24", "mobility", True, False),
        ("2.6.35", "mobility-2.6.35", True, True),
        ("6.1", "mobility-6.1", False, True),
    ],
)
def test_presets(kernel: str, policy: str, lumpy: bool, compaction: bool) -> None:
    cfg = machine_config(kernel, memory=64 << 20)
    assert (cfg.policy, cfg.lumpy_reclaim, cfg.compaction) == (policy, lumpy, compaction)


def test_override_wins() -> None:
    cfg = machine_config("2.6.35", memory=64 << 20, compaction=False, pcp=True)
    assert not cfg.compaction and cfg.pcp and cfg.lumpy_reclaim


def test_profiles_are_plain_data() -> None:
    for values in KERNEL_PROFILES.values():
        assert all(isinstance(v, (str, bool, int)) for v in values.values())
    values = kernel_profile("2.6.24")
    values["policy"] = "vanilla"  # a copy: the registry is unchanged
    assert KERNEL_PROFILES["2.6.24"]["policy"] == "mobility"


def test_unknown_kernel_and_option() -> None:
    with pytest.raises(ValueError, match=r"unknown kernel profile '2\.6\.99': allowed are"):
        machine_config("2.6.99", memory=64 << 20)
    with pytest.raises(ValueError, match="unknown machine option"):
        machine_config("2.6.24", memory=64 << 20, lumpy=True)


def test_zone_movable_needs_2_6_23() -> None:
    with pytest.raises(ValueError, match="no ZONE_MOVABLE"):
        machine_config("2.6.20", memory=256 << 20, kernelcore=64 << 20)
    m = Machine(machine_config("2.6.23", memory=256 << 20, kernelcore=64 << 20))
    assert m.present_pages(ZONE_MOVABLE) == (256 - 64) << 8


def test_6_1_kernel_facts() -> None:
    # 6.1: lumpy reclaim gone (3.5), dirty ratios 20/10 (mm/page-writeback.c), radix-tree
    # nodes RECLAIMABLE, transparent huge pages (2.6.38), watermark_scale_factor 10 (4.6).
    cfg = machine_config("6.1", memory=64 << 20)
    assert (cfg.dirty_ratio, cfg.dirty_background_ratio) == (20, 10)
    assert cfg.radix_tree_node_reclaimable and cfg.thp and cfg.watermark_scale_factor == 10
    assert machine_config("2.6.35", memory=64 << 20).watermark_scale_factor is None

"""The 6.1 preset end to end: a tiny desktop completes, with 6.1's watermarks and views."""

from __future__ import annotations

from fragsim.models.mm.profiles import machine_config
from fragsim.sim.config import load_workload
from fragsim.sim.engine import Environment
from fragsim.sim.run import run_workload
from tests.conftest_tiny import tiny


def test_tiny_desktop_completes_on_6_1() -> None:
    result = run_workload(tiny("desktop", {"kernel.version": "6.1", "run.seed": 1}))
    runs = result.runs
    assert runs["status"].tolist() == ["ok"]
    assert runs["kernel"].tolist() == ["6.1"]


def test_watermark_scale_factor_key() -> None:
    # 128 MiB, zones DMA (4096 pages) and DMA32 (28672): min_free_kbytes =
    # int_sqrt(131072 * 16) = 1448, pages_min 362, split 45 and 316. 6.1
    # __setup_per_zone_wmarks: gap = max(min >> 2, managed * wsf // 10000): at the default 10,
    # DMA max(11, 4) = 11, DMA32 max(79, 28) = 79; at 100, max(11, 40) = 40, max(79, 286) = 286.
    base = tiny("desktop", {"kernel.version": "6.1"})
    assert base.config_id() == tiny("desktop", {"kernel.version": "6.1",
                                                "kernel.watermark_scale_factor": -1}).config_id()
    zones = Environment(base).machine.zones
    assert [tuple(zones[z]["watermark"]) for z in (0, 1)] == [(45, 56, 67), (316, 395, 474)]
    zones = Environment(tiny("desktop", {"kernel.version": "6.1",
                                         "kernel.watermark_scale_factor": 100})).machine.zones
    assert [tuple(zones[z]["watermark"]) for z in (0, 1)] == [(45, 85, 125), (316, 602, 888)]
    assert machine_config("6.1", memory=128 << 20).watermark_scale_factor == 10
    assert load_workload("desktop", sets=["kernel.version=6.1"]).kernel.version == "6.1"

"""The 6.15 preset end to end: tiny desktops under 6.15, with and without defrag_mode, finish
with the allocator's invariants intact (6.15's typed free lists included) and reproduce; the
config key `kernel.defrag_mode` is checked and stays out of the config hash at its default."""

from __future__ import annotations

import pytest

from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.profiles import machine_config
from fragsim.sim.config import load_workload
from fragsim.sim.engine import Environment
from fragsim.sim.run import run_workload
from tests.conftest_tiny import tiny

_STABLE = ("status", "kernel", "hugepages_pct", "alloc_fail", "extfrag_fallback",
           "extfrag_fragmenting", "pageblock_claimed", "pgscan_kswapd", "pgscan_direct",
           "compact_stall")


@pytest.mark.parametrize("defrag_mode", [0, 1])
def test_tiny_desktop_on_6_15_keeps_invariants(defrag_mode: int) -> None:
    w = tiny("desktop", {"kernel.version": "6.15", "kernel.defrag_mode": defrag_mode,
                         "run.seed": 1})
    env = Environment(w)
    m = env.machine
    assert int(m.node[0]["typed_freelists"]) == 1
    assert int(m.node[0]["defrag_mode"]) == defrag_mode
    env.scenario.start()
    env.run(until=env.scenario.duration_s)
    check_invariants(m)
    assert m.stat("alloc_success") > 0


@pytest.mark.parametrize("defrag_mode", [0, 1])
def test_tiny_desktop_on_6_15_reproduces(defrag_mode: int) -> None:
    w = tiny("desktop", {"kernel.version": "6.15", "kernel.defrag_mode": defrag_mode,
                         "run.seed": 2})
    a, b = run_workload(w).runs, run_workload(w).runs
    assert a["status"].tolist() == ["ok"]
    assert a["kernel"].tolist() == ["6.15"]
    for col in _STABLE:
        assert a[col].tolist() == b[col].tolist(), col


def test_defrag_mode_key() -> None:
    base = tiny("desktop", {"kernel.version": "6.15"})
    assert base.config_id() == tiny("desktop", {"kernel.version": "6.15",
                                                "kernel.defrag_mode": 0}).config_id()
    on = tiny("desktop", {"kernel.version": "6.15", "kernel.defrag_mode": 1})
    assert on.config_id() != base.config_id()
    assert load_workload("desktop", sets=["kernel.version=6.15"]).kernel.version == "6.15"
    with pytest.raises(ValueError, match="kernel.defrag_mode 1: kernel 6.1 has no vm.defrag_mode"):
        tiny("desktop", {"kernel.version": "6.1", "kernel.defrag_mode": 1})
    with pytest.raises(ValueError, match="kernel.defrag_mode 2 is out of range: allowed 0, 1"):
        tiny("desktop", {"kernel.version": "6.15", "kernel.defrag_mode": 2})
    cfg = machine_config("6.15", memory=128 << 20)
    assert cfg.watermark_scale_factor == 10 and cfg.thp and not cfg.defrag_mode

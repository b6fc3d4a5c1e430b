"""experiments/presets_table.py: the all-presets table is built from the sweep's own tables."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from fragsim.models.mm.profiles import KERNEL_PROFILES
from fragsim.sim.sweep import expand, load_spec

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "experiments" / "sweeps" / "presets-desktop.toml"


def test_spec_runs_every_preset_on_one_workload_and_seed() -> None:
    runs = expand(load_spec(SPEC))
    versions = {r.values["kernel.version"] for r in runs}
    assert versions == set(KERNEL_PROFILES)
    assert {r.seed for r in runs} == {0}
    # Only the kernel differs: every other key of every run's config is the same.
    kernel_keys = ("kernel.version", "kernel.thp_enabled", "kernel.defrag_mode")
    configs = [{k: v for k, v in r.workload.flat().items() if k not in kernel_keys}
               for r in runs]
    assert all(c == configs[0] for c in configs)


def test_table_from_a_short_sweep(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "presets_table.py"), "--out", str(out),
         "--days", "0.02", "--workers", "2"],
        capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    t = pd.read_csv(out / "table.csv")
    assert len(t) == len(expand(load_spec(SPEC)))
    for r in t.itertuples(index=False):
        counts = [int(n) for n in re.findall(r"(\d+)", str(r.pageblocks))]
        assert sum(counts) == 512, r  # 1 GiB of 2 MiB pageblocks, every block counted once
        assert 0.0 <= r.hugepages_pct <= 100.0
        if r.thp == "never":
            assert pd.isna(r.thp_success_pct)
        else:
            assert r.thp_fault_alloc + r.thp_fault_fallback > 0
            assert 0.0 <= r.thp_success_pct <= 100.0
    assert (t.loc[t["kernel"] == "2.6.20", "pageblocks"].str.contains("untyped")).all()
    assert "| 2.6.20 | never | 0 |" in (out / "table.md").read_text()

"""The reproduction: one workload for every kernel, statistics, table and figure."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fragsim.analysis import reproduce as rep
from fragsim.sim.reproduce_cmd import KERNELS, plan


def test_plan_gives_every_kernel_the_same_workload() -> None:
    tasks = plan(True, 2, KERNELS, ("default", "16384"), {}, ["files.reads_per_min=5"])
    assert len(tasks) == 2 * 2 * len(KERNELS) * 2
    groups: dict[tuple[str, str, int], set[tuple[tuple[str, object], ...]]] = {}
    for t in tasks:
        others = tuple((k, v) for k, v in t.values if k != "kernel.version")
        groups.setdefault((t.workload, t.min_free_setting, t.seed), set()).add(others)
        assert t.sets == ("files.reads_per_min=5",)
        assert dict(t.values)["kernel.version"] == t.kernel
    # Within a comparison (workload, min_free setting, seed) only the kernel differs.
    assert all(len(v) == 1 for v in groups.values())
    assert {t.seed for t in tasks} == {0, 1}
    assert all(dict(t.values).get("kernel.min_free_kbytes") == 16384
               for t in tasks if t.min_free_setting == "16384")


def _runs() -> pd.DataFrame:
    rows = []
    for kernel, base in (("2.6.20", 2.0), ("2.6.24", 60.0)):
        for seed in range(4):
            rows.append({"run_id": f"{kernel}-{seed}", "workload": "desktop", "kernel": kernel,
                         "seed": seed, "status": "ok", "min_free_setting": "default",
                         "min_free_kbytes": 4096, "hugepages_pct": base + seed})
    rows.append({"run_id": "bad", "workload": "desktop", "kernel": "2.6.24", "seed": 9,
                 "status": "failed", "min_free_setting": "default", "min_free_kbytes": 4096,
                 "hugepages_pct": float("nan")})
    return pd.DataFrame(rows)


def test_summary_mean_and_t_interval() -> None:
    s = rep.summarize(_runs())
    row = s[s["kernel"] == "2.6.24"].iloc[0]
    v = np.array([60.0, 61.0, 62.0, 63.0])
    half = 3.182446305284263 * v.std(ddof=1) / 2.0  # t(0.975, 3) * sd / sqrt(4)
    assert row["n"] == 4 and row["failed"] == 1
    assert row["mean"] == pytest.approx(61.5)
    assert row["ci_low"] == pytest.approx(61.5 - half)
    assert row["ci_high"] == pytest.approx(61.5 + half)
    assert row["published"] == "60-70%"


def test_table_and_single_seed() -> None:
    runs = _runs()
    one = runs[runs["seed"] == 0]
    s = rep.summarize(one)
    assert math.isnan(s["ci_low"].iloc[0])
    text = rep.table(rep.summarize(runs), ["2.6.20", "2.6.24"])
    lines = text.strip().splitlines()
    assert lines[0].startswith("| figure |") and len(lines) == 3
    assert "< 1% / 60-70%" in lines[2] and "61.5% [" in lines[2]


def test_uptime_figure(tmp_path: Path) -> None:
    runs = _runs()
    samples = pd.DataFrame({
        "run_id": np.repeat(runs["run_id"].to_numpy(), 3),
        "kernel": np.repeat(runs["kernel"].to_numpy(), 3),
        "metric": "hugepages_pct",
        "uptime_days": np.tile([0.25, 0.5, 1.0], runs.shape[0]),
        "value": np.tile([90.0, 70.0, 50.0], runs.shape[0]),
    })
    path = rep.uptime_figure(samples, runs, tmp_path / "u.png", ["2.6.20", "2.6.24"])
    assert path.stat().st_size > 10_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_rows_on_one_worker_or_two() -> None:
    from fragsim.sim.reproduce_cmd import _execute
    from tests.conftest_tiny import TINY_DESKTOP

    tasks = plan(True, 2, ("2.6.20", "2.6.24"), ("default",), {}, TINY_DESKTOP)
    tasks = [t for t in tasks if t.workload == "desktop"]
    one = pd.concat([r.runs for r in _execute(tasks, 1, False)], ignore_index=True)
    two = pd.concat([r.runs for r in _execute(tasks, 2, False)], ignore_index=True)
    cols = [c for c in one.columns if c not in ("wall_s",)]
    pd.testing.assert_frame_equal(one[cols], two[cols])
    assert one["run_id"].nunique() == len(tasks)

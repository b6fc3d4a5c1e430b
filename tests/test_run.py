"""The run life cycle: every workload at a tiny scale, tables and keys, determinism, failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fragsim.sim.run import run_workload, write_tables
from tests.conftest_tiny import tiny


@pytest.fixture(scope="module")
def desktop_2_6_24() -> object:
    return run_workload(tiny("desktop", {"kernel.version": "2.6.24", "run.seed": 1}))


@pytest.mark.parametrize("kernel", ["2.6.20", "2.6.23", "2.6.24", "2.6.35"])
def test_desktop_smoke_every_kernel(kernel: str) -> None:
    r = run_workload(tiny("desktop", {"kernel.version": kernel}))
    row = r.runs.iloc[0]
    assert row["status"] == "ok", row.get("traceback")
    assert row["kernel"] == kernel and row["sim_s"] == pytest.approx(0.08 * 86400)
    assert 0.0 <= row["hugepages_pct"] <= 100.0
    assert row["probes"] >= 2
    assert row["processes_spawned"] > 0 and row["file_pages_read"] > 0


@pytest.mark.parametrize("kernel", ["2.6.20", "2.6.24"])
def test_stress_smoke(kernel: str) -> None:
    r = run_workload(tiny("stress-highalloc", {"kernel.version": kernel}))
    row = r.runs.iloc[0]
    assert row["status"] == "ok", row.get("traceback")
    for i in (1, 2, 3):
        assert 0.0 <= row[f"pass{i}_pct"] <= 100.0
    assert row["compile_jobs"] > 10
    phases = r.events[r.events["event"] == "stress_phase"]["detail"].tolist()
    assert phases[0].startswith("unpack") and phases[-1] == "pass3"
    passes = r.events[r.events["event"] == "stress_highalloc_pass"]
    assert passes["value"].round(6).tolist() == [round(row[f"pass{i}_pct"], 6) for i in (1, 2, 3)]


def test_vmregress_variant_smoke() -> None:
    from fragsim.sim.config import load_workload
    from tests.conftest_tiny import TINY_STRESS

    w = load_workload("stress-highalloc-vmregress", sets=TINY_STRESS + [
        "build.builds=2", "updatedb.files_per_s=50000"])
    r = run_workload(w)
    row = r.runs.iloc[0]
    assert row["status"] == "ok", row.get("traceback")
    assert row["builds"] == 2 and 0.0 <= row["pass3_pct"] <= 100.0
    phases = r.events[r.events["event"] == "stress_phase"]["detail"].tolist()
    assert "drop caches" not in phases  # vmregress did not drop caches


def test_tables_share_keys(desktop_2_6_24: object) -> None:
    r = desktop_2_6_24
    run_id = r.runs["run_id"].iloc[0]  # type: ignore[attr-defined]
    for frame in (r.samples, r.events):  # type: ignore[attr-defined]
        assert list(frame.columns[:4]) == ["run_id", "workload", "kernel", "seed"]
        assert (frame["run_id"] == run_id).all() and (frame["seed"] == 1).all()
        assert isinstance(frame["kernel"].dtype, pd.CategoricalDtype)
    s = r.samples  # type: ignore[attr-defined]
    metrics = set(s["metric"].astype(str))
    assert {"hugepages_pct", "buddyinfo", "pageblocks", "pageblocks_pinned",
            "nr_free_pages"} <= metrics
    probes = s[s["metric"] == "hugepages_pct"]
    assert probes["t_s"].is_monotonic_increasing and probes.shape[0] >= 2


def test_census_adds_up(desktop_2_6_24: object) -> None:
    s = desktop_2_6_24.samples  # type: ignore[attr-defined]
    last = s[s["t_s"] == s["t_s"].max()]
    total = last.loc[last["metric"] == "pageblocks_total", "value"].sum()
    by_type = last.loc[last["metric"] == "pageblocks", "value"].sum()
    assert total == by_type == (128 << 20) // (2 << 20)  # 2 MiB pageblocks
    pinned = last.loc[last["metric"] == "pageblocks_pinned", "value"].sum()
    unmov = last.loc[last["metric"] == "pageblocks_with_unmovable", "value"].sum()
    recl = last.loc[last["metric"] == "pageblocks_with_reclaimable", "value"].sum()
    assert max(unmov, recl) <= pinned <= min(total, unmov + recl)


def test_same_seed_identical_tables_different_seed_differs() -> None:
    a = run_workload(tiny("desktop", {"run.seed": 5}))
    b = run_workload(tiny("desktop", {"run.seed": 5}))
    c = run_workload(tiny("desktop", {"run.seed": 6}))
    cols = [c_ for c_ in a.runs.columns if c_ != "wall_s"]
    pd.testing.assert_frame_equal(a.runs[cols], b.runs[cols])
    pd.testing.assert_frame_equal(a.samples, b.samples)
    pd.testing.assert_frame_equal(a.events, b.events)
    assert not a.samples["value"].equals(c.samples["value"])


def test_a_failing_run_returns_its_row(monkeypatch: pytest.MonkeyPatch) -> None:
    from fragsim.models.agents import user

    def broken(self: object) -> object:
        raise RuntimeError("agent broke")
        yield  # pragma: no cover

    monkeypatch.setattr(user.Commands, "run", broken)
    r = run_workload(tiny("desktop"))
    row = r.runs.iloc[0]
    assert row["status"] == "failed"
    assert row["error"] == "RuntimeError: agent broke"
    assert row["wall_s"] > 0 and "Traceback" in row["traceback"]


def test_parquet_round_trip(desktop_2_6_24: object, tmp_path: Path) -> None:
    r = desktop_2_6_24
    paths = write_tables(r, tmp_path / "out")  # type: ignore[arg-type]
    assert [p.name for p in paths] == ["runs.parquet", "samples.parquet", "events.parquet"]
    back = pd.read_parquet(tmp_path / "out" / "samples.parquet")
    assert back.shape == r.samples.shape  # type: ignore[attr-defined]
    assert np.allclose(back["value"], r.samples["value"])  # type: ignore[attr-defined]
    assert not list((tmp_path / "out").glob(".*tmp*"))

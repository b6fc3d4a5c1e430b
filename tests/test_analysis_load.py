"""`fragsim.analysis.load`: run, reproduction and sweep directories written from tiny runs,
schema unification, temporary files skipped, one-line errors."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fragsim.analysis
from fragsim.analysis.results import load
from fragsim.sim.run import RunResult, run_workload, write_tables
from tests.conftest_tiny import tiny

KERNELS = ("2.6.20", "2.6.24")


@pytest.fixture(scope="module")
def results() -> list[RunResult]:
    """Tiny desktop runs: two kernels x two seeds (well under a second)."""
    out = [run_workload(tiny("desktop", {"kernel.version": k, "run.seed": s}))
           for k in KERNELS for s in (0, 1)]
    assert all(r.ok for r in out)
    return out


def _write_sweep(root: Path, results: list[RunResult]) -> Path:
    """A sweep directory as `fragsim.sim.store` writes it: no `kernel` column in the files, the
    sweep's columns in `runs`; the first run with a stress outcome column, the last failed."""
    for i, r in enumerate(results):
        kernel = str(r.runs["kernel"].iloc[0])
        run_id = str(r.runs["run_id"].iloc[0])
        for name in ("runs", "samples", "events"):
            frame = getattr(r, name).drop(columns=["kernel"])
            if name == "runs":
                frame = frame.assign(**{"sweep": "tiny", "replicate": i % 2,
                                        "machine.memory": 128 << 20})
                if i == 0:
                    frame = frame.assign(pass1_pct=42.0)
                if i == len(results) - 1:
                    frame = frame.assign(status="failed", traceback="Traceback ...",
                                         probes=0.5)  # int64 elsewhere: widened to double
            path = root / name / f"kernel={kernel}" / f"{run_id}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(path, index=False)
    (root / "manifest.json").write_text(json.dumps({"format": "fragsim-sweep/1"}))
    return root


def test_run_directory(tmp_path: Path, results: list[RunResult]) -> None:
    write_tables(results[1], tmp_path / "run")
    runs, samples, events = fragsim.analysis.load(tmp_path / "run")
    assert runs.shape[0] == 1 and samples.shape == results[1].samples.shape
    assert events.shape == results[1].events.shape
    assert list(samples.columns) == list(results[1].samples.columns)
    # Dictionary columns are categoricals; the rest are arrow-backed.
    for col in ("kernel", "workload", "status"):
        assert isinstance(runs[col].dtype, pd.CategoricalDtype), col
    assert isinstance(samples["metric"].dtype, pd.CategoricalDtype)
    assert isinstance(samples["value"].dtype, pd.ArrowDtype)
    assert isinstance(runs["hugepages_pct"].dtype, pd.ArrowDtype)
    assert isinstance(runs["run_id"].dtype, pd.ArrowDtype)
    assert samples["value"].sum() == pytest.approx(results[1].samples["value"].sum())
    # They group like the simulator's frames.
    counts = samples.groupby("metric", observed=True).size()
    assert counts["buddyinfo"] == (results[1].samples["metric"] == "buddyinfo").sum()


def test_reproduce_directory_of_many_runs(tmp_path: Path, results: list[RunResult]) -> None:
    out = tmp_path / "rep"
    out.mkdir()
    for name in ("runs", "samples", "events"):
        frame = pd.concat([getattr(r, name).astype({"kernel": str, "run_id": str})
                           for r in results], ignore_index=True)
        frame.to_parquet(out / f"{name}.parquet", index=False)
    runs, samples, _ = load(out)
    assert sorted(runs["kernel"].astype(str)) == sorted(k for k in KERNELS for _ in (0, 1))
    assert samples["run_id"].nunique() == len(results)


def test_sweep_directory(tmp_path: Path, results: list[RunResult]) -> None:
    root = _write_sweep(tmp_path / "sweep", results)
    write_tables(results[0], tmp_path / "run")
    runs, samples, events = load(root)
    one_runs, one_samples, _ = load(tmp_path / "run")
    assert runs.shape[0] == len(results)
    # `kernel` is back, where a run directory has it and of the same kind.
    assert list(one_runs.columns) == list(runs.columns[: one_runs.shape[1]])
    assert list(samples.columns) == list(one_samples.columns)
    assert isinstance(runs["kernel"].dtype, pd.CategoricalDtype)
    assert isinstance(samples["kernel"].dtype, pd.CategoricalDtype)
    by_run = dict(zip(runs["run_id"].astype(str), runs["kernel"].astype(str), strict=True))
    expected = {str(r.runs["run_id"].iloc[0]): str(r.runs["kernel"].iloc[0]) for r in results}
    assert by_run == expected
    assert (samples["run_id"].astype(str).map(by_run) == samples["kernel"].astype(str)).all()
    assert events.shape[0] == sum(r.events.shape[0] for r in results)
    # The sweep's columns and the unified schema: missing columns are nulls.
    assert {"sweep", "replicate", "machine.memory"} <= set(runs.columns)
    assert runs["pass1_pct"].notna().sum() == 1 and runs["traceback"].notna().sum() == 1
    assert runs["probes"].dtype == pd.ArrowDtype(pa.float64())
    assert sorted(runs["status"].astype(str)) == ["failed", "ok", "ok", "ok"]
    assert samples.groupby("kernel", observed=True)["run_id"].nunique().to_dict() == {
        k: 2 for k in KERNELS}


def test_sweep_ignores_temporary_files(tmp_path: Path, results: list[RunResult]) -> None:
    root = _write_sweep(tmp_path / "sweep", results)
    folder = root / "runs" / "kernel=2.6.24"
    (folder / ".abc.parquet.tmp-123").write_bytes(b"half a file")
    (folder / ".abc.parquet").write_bytes(b"not parquet")
    shutil.copy(next(folder.glob("*.parquet")), folder / ".copy.parquet")
    runs, _, _ = load(root)
    assert runs.shape[0] == len(results)


def test_sweep_without_manifest_and_a_failed_run_without_samples(
        tmp_path: Path, results: list[RunResult]) -> None:
    """A failed run's samples may have no columns at all; a manifest is not required."""
    root = _write_sweep(tmp_path / "sweep", results[:2])
    (root / "manifest.json").unlink()
    path = root / "samples" / "kernel=2.6.99" / "dead.parquet"
    path.parent.mkdir()
    pq.write_table(pa.table({}), path)
    runs, samples, _ = load(root)
    assert runs.shape[0] == 2
    assert samples.shape[0] == sum(r.samples.shape[0] for r in results[:2])


@pytest.mark.parametrize(("setup", "error", "words"), [
    ("missing", FileNotFoundError, "does not exist"),
    ("file", FileNotFoundError, "is not a directory"),
    ("empty", ValueError, "neither a run directory"),
    ("other", ValueError, "neither a run directory"),
    ("runs-only", ValueError, "without samples.parquet"),
    ("manifest-only", ValueError, "without finished runs"),
])
def test_errors_name_the_path_in_one_line(tmp_path: Path, setup: str,
                                          error: type[Exception], words: str) -> None:
    target = tmp_path / "target"
    if setup == "file":
        target.write_text("x")
    elif setup != "missing":
        target.mkdir()
    if setup == "other":
        (target / "notes.txt").write_text("x")
    if setup == "runs-only":
        pd.DataFrame({"run_id": ["a"]}).to_parquet(target / "runs.parquet")
    if setup == "manifest-only":
        (target / "manifest.json").write_text("{}")
    with pytest.raises(error) as info:
        load(target)
    message = str(info.value)
    assert str(target) in message and words in message and "\n" not in message


def test_package_exports_load() -> None:
    module = importlib.import_module("fragsim.analysis.results")
    assert fragsim.analysis.load is module.load  # the function, not the submodule
    assert set(fragsim.analysis.__all__) <= set(dir(fragsim.analysis))
    for name in fragsim.analysis.__all__:
        assert getattr(fragsim.analysis, name) is not None

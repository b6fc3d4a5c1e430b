"""The tables of experiments/uml/run_uml.py, from the snapshots of a real Linux 6.1 (UML) run
kept in experiments/uml/results/raw/run-1: a golden test of the parsing, no boot needed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "uml" / "results"
STAGES = ("boot", "page_cache", "anon", "forks", "ext2_write", "freed", "drop_caches",
          "compact")


def load_driver() -> ModuleType:
    """experiments/uml/run_uml.py, a script outside the package, as a module."""
    path = ROOT / "experiments" / "uml" / "run_uml.py"
    spec = importlib.util.spec_from_file_location("run_uml", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while executing it
    spec.loader.exec_module(module)
    return module


def test_stage_rows_reproduce_the_measured_table() -> None:
    driver = load_driver()
    assert driver.STAGES == STAGES
    zones, counters = driver.stage_rows(1, RESULTS / "raw" / "run-1")
    got = pd.DataFrame(zones)
    want = pd.read_csv(RESULTS / "stages.csv")
    want = want[want["run"] == 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert tuple(got["stage"]) == STAGES
    assert list(got.filter(like="pageblocks_").columns) == [
        "pageblocks_unmovable", "pageblocks_movable", "pageblocks_reclaimable",
        "pageblocks_highatomic"]
    assert {c["counter"] for c in counters} == set(driver.VMSTAT)


def test_summary_spans_the_runs() -> None:
    driver = load_driver()
    stages = pd.read_csv(RESULTS / "stages.csv")
    summary = driver.summarize(stages, pd.read_csv(RESULTS / "vmstat.csv"))
    share = summary[summary["metric"] == "high_order_free_share"].set_index("stage")
    assert list(share.index) == list(STAGES)
    assert (share["count"] == stages["run"].nunique()).all()
    assert (share["min"] <= share["mean"]).all() and (share["mean"] <= share["max"]).all()
    assert "| boot |" in driver.markdown(summary, stages["run"].nunique())

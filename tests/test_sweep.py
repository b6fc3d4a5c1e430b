"""Sweeps: spec expansion, checks, the result store, resuming, and the same rows on any executor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from fragsim.sim import sweep as sw
from fragsim.sim.cli import main
from fragsim.sim.store import ResultStore
from tests.conftest_tiny import TINY_DESKTOP

TINY_BASE = "\n".join(
    f'"{k}" = {v if v.replace(".", "").isdigit() else json.dumps(v)}'
    for k, v in (s.split("=", 1) for s in TINY_DESKTOP)
    if not k.startswith(("machine.memory", "run.days")))


def spec_text(factors: str = '"kernel.version" = ["2.6.20", "2.6.24"]', seeds: str = "count = 2",
              days: float = 0.02, extra: str = "", name: str = "pagealloc-desktop-test") -> str:
    """A tiny desktop sweep; `seeds` is a [replications] line (count = N gets root_seed 7)."""
    root = "" if seeds.startswith("seeds") else "root_seed = 7"
    return f"""
[sweep]
name = "{name}"
workload = "desktop"
[base]
"run.days" = {days}
"machine.memory" = "64MiB"
{TINY_BASE}
{extra}
[factors]
{factors}
[replications]
{seeds}
{root}
"""


def write_spec(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# --- expansion --------------------------------------------------------------------------------

def test_expand_grid_coupled_and_seeds() -> None:
    factors = ('"kernel.version" = ["2.6.20", "2.6.24"]\n'
               '[factors.coupled.size]\n"machine.memory" = ["64MiB", "96MiB", "128MiB"]\n'
               '"machine.swap" = ["32MiB", "48MiB", "64MiB"]')
    spec = sw.parse_spec(spec_text(factors, "count = 4"))
    runs = sw.expand(spec)
    assert len(runs) == 2 * 3 * 4
    # Coupled keys vary together; the grid is the product; every seed for every combination.
    pairs = {(r.workload.machine.memory, r.workload.machine.swap) for r in runs}
    assert pairs == {(64 << 20, 32 << 20), (96 << 20, 48 << 20), (128 << 20, 64 << 20)}
    seeds = [r.seed for r in runs]
    assert len(set(seeds)) == 4 and all(seeds.count(s) == 6 for s in set(seeds))
    # Seeds are spawned from the root SeedSequence, in order.
    children = np.random.SeedSequence(7).spawn(4)
    assert spec.seeds == tuple(int(c.generate_state(1, np.uint32)[0]) for c in children)
    # Ids are the config hashes: unique, stable, and independent of the rest of the spec.
    ids = [r.run_id for r in runs]
    assert len(set(ids)) == len(ids)
    assert ids == [r.run_id for r in sw.expand(sw.parse_spec(spec_text(factors, "count = 4")))]
    one = sw.expand(sw.parse_spec(spec_text('"kernel.version" = ["2.6.24"]', "count = 4")))
    first = next(r for r in runs if r.kernel == "2.6.24" and r.workload.machine.memory == 64 << 20
                 and r.seed == one[0].seed)
    assert one[0].run_id != first.run_id  # swap differs: another config
    assert runs[0].values == {"kernel.version": "2.6.20", "machine.memory": 64 << 20,
                              "machine.swap": 32 << 20}


def test_expand_nested_tables_mean_dotted_keys() -> None:
    a = sw.parse_spec(spec_text(seeds="seeds = [0, 5]"))
    text = spec_text(factors='kernel.version = ["2.6.20", "2.6.24"]', seeds="seeds = [0, 5]")
    b = sw.parse_spec(text)
    assert [r.run_id for r in sw.expand(a)] == [r.run_id for r in sw.expand(b)]
    assert b.seeds == (0, 5)


@pytest.mark.parametrize(("change", "message"), [
    (('"kernel.version" = ["2.6.20"]', '"kernel.versoin" = ["2.6.20"]'),
     r"kernel.versoin.*did you mean 'version'"),
    (('"kernel.version" = ["2.6.20", "2.6.24"]', '"kernel.version" = []'),
     r"factor kernel.version is empty"),
    (('"run.days" = 0.02', '"run.days" = "long"'), r"run.days = 'long' is not a number"),
    (('"run.days" = 0.02', '"run.dayz" = 1'), r"'run.dayz'.*did you mean 'days'"),
    (('"kernel.version" = ["2.6.20", "2.6.24"]', '"kernel.version" = ["2.6.99"]'),
     r"kernel.version '2.6.99' is unknown"),
    (('name = "pagealloc-desktop-test"', 'name = "My Sweep"'), r"sweep.name 'My Sweep'"),
    (("count = 2", "count = 0"), r"replications.count 0"),
    (("[replications]", "[replication]"), r"unknown table \[replication\]"),
    (('"kernel.version" = ["2.6.20", "2.6.24"]',
      '"kernel.version" = ["2.6.20"]\n[factors.coupled.x]\n"machine.memory" = ["64MiB"]\n'
      '"machine.swap" = ["1MiB", "2MiB"]'), r"factors.coupled.x: its lists have different"),
    (('"kernel.version" = ["2.6.20", "2.6.24"]', '"run.seed" = [1, 2]'),
     r"run.seed is set by \[replications\]"),
    (('"kernel.version" = ["2.6.20", "2.6.24"]', '"kernel.version" = ["2.6.20", "2.6.20"]'),
     r"a factor repeats a level"),
])
def test_bad_specs_name_the_key(change: tuple[str, str], message: str) -> None:
    old, new = change
    text = spec_text('"kernel.version" = ["2.6.20", "2.6.24"]')
    if old == '"kernel.version" = ["2.6.20"]':
        text = text.replace('"kernel.version" = ["2.6.20", "2.6.24"]', new)
    else:
        assert old in text
        text = text.replace(old, new)
    with pytest.raises(ValueError, match=message) as exc:
        sw.expand(sw.parse_spec(text, "bad.toml"))
    assert "\n" not in str(exc.value)


def test_cli_bad_spec_is_one_line_and_nothing_runs(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, spec_text('"kernel.version" = []'))
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "factor kernel.version is empty" in err[0]
    assert not out.exists()
    assert main(["sweep", str(tmp_path / "missing.toml")]) == 2
    assert main(["sweep", str(spec), "--scheduler", "udp://x"]) == 2
    assert main(["sweep", str(spec), "--workers", "0"]) == 2


# --- the store, resuming ----------------------------------------------------------------------

def _ids(out: Path) -> list[str]:
    return sorted(p.stem for p in (out / "runs").glob("kernel=*/*.parquet"))


def test_sweep_writes_one_file_per_run_and_skips_finished(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, spec_text())
    out = tmp_path / "out"
    outcome = sw.SweepOutcome()
    runs, samples, events = sw.sweep(spec, out, workers=1, outcome=outcome)
    plan = sw.expand(sw.load_spec(spec))
    assert outcome.ran == 4 and outcome.skipped == 0
    assert _ids(out) == sorted(r.run_id for r in plan)
    for table in ("samples", "events"):
        assert len(list((out / table).glob("kernel=*/*.parquet"))) == 4
    man = json.loads((out / "manifest.json").read_text())
    assert man["name"] == "pagealloc-desktop-test" and len(man["runs"]) == 4
    assert man["seeds"] == list(sw.load_spec(spec).seeds) and man["root_seed"] == 7
    assert sorted(runs["run_id"].astype(str)) == _ids(out)
    assert set(runs["kernel"].astype(str)) == {"2.6.20", "2.6.24"}
    assert {"sweep", "replicate", "kernel.version", "code_version"} <= set(runs.columns)
    assert samples.shape[0] > 0 and events.shape[0] > 0
    # Again: everything is skipped, nothing rewritten.
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    again = sw.SweepOutcome()
    sw.sweep(spec, out, workers=1, outcome=again)
    assert again.skipped == 4 and again.ran == 0
    assert mtimes == {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}


def test_truncated_file_is_redone(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, spec_text(seeds="count = 1"))
    out = tmp_path / "out"
    sw.sweep(spec, out, workers=1)
    victim = sorted((out / "samples").glob("kernel=2.6.24/*.parquet"))[0]
    before = pq.read_table(victim).to_pandas()
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    (victim.parent / f".{victim.name}.tmp-1234").write_bytes(b"partial")
    outcome = sw.SweepOutcome()
    sw.sweep(spec, out, workers=1, outcome=outcome)
    assert outcome.redone == 1 and outcome.ran == 1 and outcome.skipped == 1
    after = pq.read_table(victim).to_pandas()
    pd.testing.assert_frame_equal(before, after)
    assert not list(out.rglob(".*.tmp-*"))


def test_damaged_bytes_inside_an_intact_file_are_redone(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, spec_text(seeds="count = 1"))
    out = tmp_path / "out"
    sw.sweep(spec, out, workers=1)
    victim = sorted((out / "samples").glob("kernel=2.6.24/*.parquet"))[0]
    before = pq.read_table(victim).to_pandas()
    meta = pq.read_metadata(victim).row_group(0)
    col = max((meta.column(i) for i in range(meta.num_columns)),
              key=lambda c: c.total_compressed_size)
    at = col.data_page_offset + col.total_compressed_size // 2
    data = bytearray(victim.read_bytes())
    data[at] ^= 0xFF  # one byte inside a data page: the footer stays valid
    victim.write_bytes(bytes(data))
    assert pq.read_metadata(victim).num_rows == len(before)
    outcome = sw.SweepOutcome()
    sw.sweep(spec, out, workers=1, outcome=outcome)
    assert outcome.redone == 1 and outcome.ran == 1 and outcome.skipped == 1
    pd.testing.assert_frame_equal(before, pq.read_table(victim).to_pandas())


def test_other_spec_into_the_same_out_is_refused(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    a = write_spec(tmp_path, spec_text(seeds="count = 1"), "a.toml")
    b = write_spec(tmp_path, spec_text(seeds="count = 1", days=0.03), "b.toml")
    out = tmp_path / "out"
    assert main(["sweep", str(a), "--out", str(out), "--workers", "1"]) == 0
    before = _ids(out)
    capsys.readouterr()
    assert main(["sweep", str(b), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # One line, before anything else (no banner of a sweep that will not run).
    assert len(err) == 1 and "holds sweep 'pagealloc-desktop-test' with other runs" in err[0]
    assert _ids(out) == before
    # The same spec with other comments and layout is the same sweep.
    c = write_spec(tmp_path, "# a comment\n" + spec_text(seeds="count = 1"), "c.toml")
    assert main(["sweep", str(c), "--out", str(out), "--workers", "1"]) == 0


def test_failed_run_is_a_row_and_the_sweep_goes_on(tmp_path: Path) -> None:
    # 2 MiB of memory passes the config checks but cannot boot a desktop: a failure inside
    # the run, which must not stop the other runs.
    factors = '"kernel.version" = ["2.6.24"]\n"machine.memory" = ["2MiB", "64MiB"]'
    spec = write_spec(tmp_path, spec_text(factors, "count = 1"))
    out = tmp_path / "out"
    messages: list[str] = []
    outcome = sw.SweepOutcome()
    runs, _, _ = sw.sweep(spec, out, workers=2, report=messages.append, outcome=outcome)
    assert outcome.ran == 2 and outcome.failed == 1
    status = dict(zip(runs["memory_bytes"], runs["status"].astype(str), strict=True))
    assert status == {2 << 20: "failed", 64 << 20: "ok"}
    bad = runs[runs["status"].astype(str) == "failed"].iloc[0]
    assert bad["error"] and any("failed" in m for m in messages)
    again = sw.SweepOutcome()
    sw.sweep(spec, out, workers=1, outcome=again)
    assert again.skipped == 2 and again.ran == 0
    retry = sw.SweepOutcome()
    sw.sweep(spec, out, workers=1, retry_failed=True, outcome=retry)
    assert retry.ran == 1 and retry.failed == 1 and retry.skipped == 1


def _normal(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.drop(columns=[c for c in ("wall_s",) if c in frame])
    keys = [c for c in ("run_id", "t_s", "metric", "event", "zone", "order", "migratetype", "pfn")
            if c in frame]
    out = frame.copy()
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]) or isinstance(out[col].dtype,
                                                                      pd.CategoricalDtype):
            out[col] = out[col].astype(str)
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


def test_same_rows_on_one_and_two_workers_and_dask(tmp_path: Path) -> None:
    """2 kernels x 3 memory sizes x 5 seeds: identical tables on every executor."""
    factors = ('"kernel.version" = ["2.6.20", "2.6.24"]\n'
               '"machine.memory" = ["64MiB", "96MiB", "128MiB"]')
    spec = write_spec(tmp_path, spec_text(factors, "count = 5"))
    tables = {}
    for label, kw in (("one", {"workers": 1}), ("two", {"workers": 2}),
                      ("dask", {"scheduler": "local:2"})):
        tables[label] = sw.sweep(spec, tmp_path / label, **kw)  # type: ignore[arg-type]
    assert tables["one"][0].shape[0] == 30
    for label in ("two", "dask"):
        for a, b in zip(tables["one"], tables[label], strict=True):
            pd.testing.assert_frame_equal(_normal(a), _normal(b))
    # And in memory, without a store.
    mem = sw.sweep(spec, None, workers=2)
    pd.testing.assert_frame_equal(_normal(mem[0])[["run_id", "seed", "hugepages_pct"]],
                                  _normal(tables["one"][0])[["run_id", "seed", "hugepages_pct"]])


def test_sigkill_halfway_then_resume(tmp_path: Path) -> None:
    """SIGKILL the whole sweep halfway; the rerun finishes with no run missing or doubled."""
    factors = ('"kernel.version" = ["2.6.20", "2.6.24"]\n'
               '"machine.memory" = ["64MiB", "96MiB"]')
    spec = write_spec(tmp_path, spec_text(factors, "count = 5", days=0.06))
    out = tmp_path / "out"
    plan = sorted(r.run_id for r in sw.expand(sw.load_spec(spec)))
    cmd = [sys.executable, "-m", "fragsim.sim.cli", "sweep", str(spec), "--out", str(out),
           "--workers", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(_ids(out)) < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        done_before = len(_ids(out))
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert 0 < done_before < len(plan), "the sweep was not killed halfway"
    killed_ids = _ids(out)
    outcome = sw.SweepOutcome()
    runs, _, _ = sw.sweep(spec, out, workers=2, outcome=outcome)
    assert outcome.skipped >= len(killed_ids) - 1  # at most a run being renamed is redone
    assert outcome.skipped + outcome.ran == len(plan)
    assert _ids(out) == plan
    assert sorted(runs["run_id"].astype(str)) == plan  # none missing, none twice
    assert not list(out.rglob(".*.tmp-*"))
    store = ResultStore(out)
    assert all(store.state(str(k), str(r)).done
               for k, r in zip(runs["kernel"], runs["run_id"], strict=True))


def test_dask_scheduler_address(tmp_path: Path) -> None:
    """`--scheduler tcp://HOST:PORT` runs on a cluster that is already up."""
    from distributed import LocalCluster

    spec = write_spec(tmp_path, spec_text(seeds="count = 1"))
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        outcome = sw.SweepOutcome()
        runs, _, _ = sw.sweep(spec, tmp_path / "out", scheduler=address, outcome=outcome)
    assert outcome.ran == 2 and outcome.failed == 0
    local, _, _ = sw.sweep(spec, tmp_path / "local", workers=1)
    pd.testing.assert_frame_equal(_normal(runs), _normal(local))
    assert main(["sweep", str(spec), "--out", str(tmp_path / "x"), "--scheduler",
                 "tcp://127.0.0.1:1", "--connect-timeout", "2"]) == 2


def test_workload_file_relative_to_the_spec(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from fragsim.sim.config import builtin_workload_path

    (tmp_path / "w").mkdir()
    text = builtin_workload_path("desktop").read_text().replace('name = "desktop"',
                                                                 'name = "my-desktop"')
    (tmp_path / "w" / "mine.toml").write_text(text)
    spec = write_spec(tmp_path / "w", spec_text(seeds="count = 1").replace(
        'workload = "desktop"', 'workload = "mine.toml"'))
    monkeypatch.chdir(tmp_path)  # elsewhere than the spec: the path is the spec's folder's
    runs = sw.expand(sw.load_spec(spec))
    assert {r.workload.name for r in runs} == {"my-desktop"}
    bad = write_spec(tmp_path, spec_text().replace('workload = "desktop"',
                                                   'workload = "nowhere.toml"'), "bad.toml")
    with pytest.raises(ValueError, match="nowhere.toml.*no such workload file"):
        sw.load_spec(bad)

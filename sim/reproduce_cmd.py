"""`fragsim reproduce`: Mel Gorman's figures, simulated, beside the published ones.

Both workloads (`desktop`, `stress-highalloc`) run on the standard kernel of the time
(`2.6.20`), on `2.6.23` (lumpy reclaim without grouping: it separates the two effects) and on
grouping by mobility (`2.6.24`), over several seeds, at two min_free_kbytes settings: the
kernel's default (`int_sqrt(lowmem_kbytes * 16)`, 4096 kB at 1 GiB) and the 16384 kB the v28
posting advised for grouping to work well. Within one comparison every kernel runs the same
workload file with the same seeds; only `kernel.version` differs.

It prints a table of mean [95% CI] per figure, and writes into `--out` the runs, samples and
events tables (Parquet), the table (`reproduction.md`) and the uptime curve
(`uptime.png`). Runs go to a local process pool (`--workers`, default: the number of cpus).
`--quick` runs the desktop for 3 days (probed every 12 hours) with 3 seeds at the default and
16384 kB settings and is meant to finish in about five minutes on two cores; the full run adds
the 10%-of-memory setting of the v25-v27 postings (the one Gorman's 19-day desktop figure was
measured with) and uses 5 seeds and 4 days.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd

from fragsim.sim.config import load_workload
from fragsim.sim.errors import UsageError, positive_int
from fragsim.sim.progress import runs_progress, want_progress
from fragsim.sim.run import RunResult, run_workload
from fragsim.sim.run_cmd import add_common_options, overrides

__all__ = ["KERNELS", "Task", "add_parser", "plan", "run", "run_task"]

KERNELS = ("2.6.20", "2.6.23", "2.6.24")
#: min_free_kbytes settings: the kernel's default, the v28 posting's 16384 kB, and the 10% of
#: memory the v25-v27 postings asked for (Mel Gorman's 19-day desktop measurement used it).
MIN_FREE_SETTINGS = ("default", "16384", "10%")
QUICK_MIN_FREE_SETTINGS = ("default", "16384")


def min_free_kbytes_of(setting: str, memory: int) -> int | None:
    """kB for a setting: None for the kernel's default, `N` kB, or `N%` of memory."""
    if setting == "default":
        return None
    if setting.endswith("%") and setting[:-1].isdigit():
        return (memory >> 10) * int(setting[:-1]) // 100
    if setting.isdigit():
        return int(setting)
    raise UsageError(f"--min-free-settings {setting!r}: use default, a number of kB or N%")


@dataclass(frozen=True)
class Task:
    """One run of the reproduction."""

    workload: str
    kernel: str
    seed: int
    min_free_setting: str
    values: tuple[tuple[str, Any], ...]
    sets: tuple[str, ...]


def plan(quick: bool, seeds: int | None, kernels: tuple[str, ...], settings: tuple[str, ...],
         values: dict[str, Any], sets: list[str]) -> list[Task]:
    """Every run of the reproduction, desktop first (the longest)."""
    n = seeds if seeds is not None else (3 if quick else 5)
    base = dict(values)
    if "run.days" not in base:
        base["run.days"] = 3.0 if quick else 4.0
    if quick and "run.probe_interval_h" not in base:
        base["run.probe_interval_h"] = 12.0
    tasks = []
    for workload in ("desktop", "stress-highalloc"):
        for setting in settings:
            for kernel in kernels:
                for seed in range(n):
                    v = dict(base)
                    v["kernel.version"] = kernel
                    v["run.seed"] = seed
                    kb = min_free_kbytes_of(setting, int(v.get("machine.memory", 1 << 30)))
                    if kb is not None:
                        v["kernel.min_free_kbytes"] = kb
                    tasks.append(Task(workload, kernel, seed, setting,
                                      tuple(sorted(v.items())), tuple(sets)))
    return tasks


def run_task(task: Task) -> RunResult:
    """Run one task (in a worker process)."""
    workload = load_workload(task.workload, dict(task.values), list(task.sets))
    result = run_workload(workload)
    result.runs["min_free_setting"] = task.min_free_setting
    return result


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "reproduce", help="reproduce Mel Gorman's huge page figures (desktop, stress test)",
        description="Run the desktop and stress-highalloc workloads on 2.6.20, 2.6.23 and "
                    "2.6.24 over several seeds and print the published figures beside the "
                    "simulated ones.")
    p.add_argument("--quick", action="store_true",
                   help="3 seeds, 3 simulated days (about five minutes on two cores)")
    p.add_argument("--seeds", metavar="N", help="seeds per kernel (default 3 quick, 5 full)")
    p.add_argument("--workers", metavar="N", help="worker processes (default: cpus)")
    p.add_argument("--kernels", default=",".join(KERNELS), metavar="LIST",
                   help=f"kernels to compare (default {','.join(KERNELS)})")
    p.add_argument("--min-free-settings", default=None, metavar="LIST",
                   help="default, kB values, N%% of memory (default: default,16384,10%%; "
                        "quick: default,16384)")
    p.add_argument("--out", default="fragsim-reproduce", metavar="DIR",
                   help="output directory (default fragsim-reproduce)")
    add_common_options(p)
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    from fragsim.analysis import reproduce as rep

    if args.min_free_kbytes:
        raise UsageError("--min-free-kbytes is not for reproduce: use --min-free-settings")
    seeds = positive_int("--seeds", args.seeds)
    workers = positive_int("--workers", args.workers) or (os.cpu_count() or 1)
    kernels = tuple(k.strip() for k in args.kernels.split(",") if k.strip())
    text = args.min_free_settings or ",".join(QUICK_MIN_FREE_SETTINGS if args.quick
                                              else MIN_FREE_SETTINGS)
    settings = tuple(s.strip() for s in text.split(",") if s.strip())
    for s in settings:
        min_free_kbytes_of(s, 1 << 30)
    values = overrides(args)
    tasks = plan(args.quick, seeds, kernels, settings, values, args.set)
    # Check every workload and key before anything runs.
    for t in {(t.workload, t.values, t.sets) for t in tasks}:
        load_workload(t[0], dict(t[1]), list(t[2]))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out!r} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    nr_seeds = len(tasks) // (2 * len(kernels) * len(settings))
    print(f"fragsim reproduce: {len(tasks)} runs ({len(kernels)} kernels x {len(settings)} "
          f"min_free_kbytes settings x {nr_seeds} seeds x 2 workloads) on {workers} "
          "worker(s)", file=sys.stderr)
    t0 = time.perf_counter()
    results = _execute(tasks, workers, want_progress(args.progress))
    runs = pd.concat([r.runs for r in results], ignore_index=True)
    samples = pd.concat([r.samples for r in results if not r.samples.empty], ignore_index=True)
    events = pd.concat([r.events for r in results if not r.events.empty], ignore_index=True)
    for frame in (runs, samples, events):
        for col in ("run_id", "workload", "kernel", "status", "scenario", "profile"):
            if col in frame:
                frame[col] = frame[col].astype(str).astype("category")
    runs.to_parquet(out / "runs.parquet", index=False)
    samples.to_parquet(out / "samples.parquet", index=False)
    events.to_parquet(out / "events.parquet", index=False)
    summary = rep.summarize(runs)
    summary.to_csv(out / "summary.csv", index=False)
    text = rep.table(summary, list(kernels))
    mfk = sorted({int(x) for x in runs["min_free_kbytes"]})
    days = float(runs.loc[runs["workload"].astype(str) == "desktop", "days"].max())
    note = (f"Desktop after {days:g} simulated days, {int(runs['memory_bytes'].max()) >> 20} MiB; "
            f"min_free_kbytes used: {', '.join(str(k) for k in mfk)} kB (default = the kernel's "
            "formula; the v28 posting advised 16384 kB), the same for every kernel in a row. "
            f"{int((runs['status'].astype(str) != 'ok').sum())} of {runs.shape[0]} runs failed. "
            f"Wall time {time.perf_counter() - t0:.0f} s.\n")
    (out / "reproduction.md").write_text(text + "\n" + note)
    try:
        rep.uptime_figure(samples, runs, out / "uptime.png", list(kernels))
    except Exception as exc:  # a figure that cannot be drawn does not lose the tables
        print(f"fragsim: warning: uptime figure not drawn: {exc}", file=sys.stderr)
    sys.stdout.write(text + "\n" + note)
    print(f"tables, table and figure in {out}/", file=sys.stderr)
    failed = runs[runs["status"].astype(str) != "ok"]
    for _, row in failed.iterrows():
        print(f"fragsim: warning: run {row['run_id']} ({row['workload']} {row['kernel']} seed "
              f"{row['seed']}) {row['status']}: {row['error']}", file=sys.stderr)
    return 0 if failed.empty else 1


def _execute(tasks: list[Task], workers: int, progress: bool) -> list[RunResult]:
    """Run the tasks on a local pool, in order of submission; results in task order."""
    bar = runs_progress(len(tasks), "reproduce") if progress else None
    results: dict[int, RunResult] = {}
    failed = 0
    try:
        if workers == 1:
            for i, task in enumerate(tasks):
                results[i] = run_task(task)
                failed += int(not results[i].ok)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(failed=failed)
        else:
            with ProcessPoolExecutor(max_workers=workers,
                                     mp_context=get_context("spawn")) as pool:
                pending: dict[Future[RunResult], int] = {pool.submit(run_task, t): i
                                                         for i, t in enumerate(tasks)}
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        i = pending.pop(fut)
                        results[i] = fut.result()
                        failed += int(not results[i].ok)
                        if bar is not None:
                            bar.update(1)
                            bar.set_postfix(failed=failed)
    finally:
        if bar is not None:
            bar.close()
    return [results[i] for i in range(len(tasks))]

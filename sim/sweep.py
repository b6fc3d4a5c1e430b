"""Sweeps: the runs of a spec (`fragsim.sim.spec`), run locally or on Dask, into a store.

`run_sweep` executes the plan: a local process pool by default, or a Dask distributed cluster
(`scheduler="tcp://HOST:PORT"`, or `"local:N"` for a `LocalCluster` of N single-threaded worker
processes on loopback). Workers only simulate; this process writes every result into the
`ResultStore` (`fragsim.sim.store`) as it arrives, so the output directory need not be shared
with the cluster, and an interruption loses at most the runs in flight.
"""

from __future__ import annotations

import itertools
import os
import re
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd

from fragsim.sim.run import RunResult, run_workload
from fragsim.sim.spec import (
    NAME_RE,
    PlannedRun,
    Spec,
    expand,
    factor_levels,
    load_spec,
    parse_spec,
    spec_hash,
)
from fragsim.sim.store import FORMAT, ResultStore

__all__ = [
    "NAME_RE",
    "PlannedRun",
    "Spec",
    "SweepOutcome",
    "execute",
    "expand",
    "failed_result",
    "load_spec",
    "parse_spec",
    "run_sweep",
    "spec_hash",
    "sweep",
]


# --- execution ------------------------------------------------------------------------------

def execute(run: PlannedRun) -> RunResult:
    """Simulate one planned run (in a worker) and add the sweep's columns to its `runs` row."""
    from fragsim import __version__

    result = run_workload(run.workload, run_id=run.run_id)
    _annotate(result.runs, run, __version__)
    return result


def _annotate(runs: pd.DataFrame, run: PlannedRun, version: str) -> None:
    runs["sweep"] = run.sweep
    runs["replicate"] = run.replicate
    runs["code_version"] = version
    for key, value in run.values.items():
        if key not in runs:
            runs[key] = [value]


def failed_result(run: PlannedRun, error: str, tb: str = "") -> RunResult:
    """The `runs` row of a run whose worker failed outside the run life cycle."""
    from fragsim import __version__

    w = run.workload
    row = {"run_id": run.run_id, "workload": w.name, "scenario": w.scenario,
           "kernel": w.kernel.version, "memory_bytes": int(w.machine.memory),
           "profile": w.machine.profile, "seed": int(run.seed), "days": float(w.run.days),
           "min_free_kbytes": int(w.kernel.min_free_kbytes), "config_id": w.config_id(),
           "status": "failed", "error": error, "traceback": tb, "wall_s": float("nan"),
           "sim_s": float("nan")}
    runs = pd.DataFrame([row])
    _annotate(runs, run, __version__)
    return RunResult(runs=runs, samples=pd.DataFrame(), events=pd.DataFrame(), summary=row)


@dataclass
class SweepOutcome:
    """What a sweep did: runs planned, skipped (already finished), run now, failed, redone."""

    planned: int = 0
    skipped: int = 0
    ran: int = 0
    failed: int = 0
    redone: int = 0
    wall_s: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)


OnResult = Callable[[PlannedRun, RunResult], None]


def _local(runs: list[PlannedRun], workers: int, on_result: OnResult) -> None:
    if workers == 1:
        for run in runs:
            try:
                result = execute(run)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                result = failed_result(run, f"{type(exc).__name__}: {exc}",
                                       traceback.format_exc(limit=8))
            on_result(run, result)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        pending: dict[Future[RunResult], PlannedRun] = {}
        queue: Iterator[PlannedRun] = iter(runs)
        try:
            # Keep at most 2 runs per worker queued: results are written as they come, and
            # an interruption loses only what is in flight.
            for run in itertools.islice(queue, 2 * workers):
                pending[pool.submit(execute, run)] = run
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    run = pending.pop(fut)
                    try:
                        result = fut.result()
                    except Exception as exc:  # a worker that died or could not pickle
                        result = failed_result(run, f"{type(exc).__name__}: {exc}")
                    on_result(run, result)
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending[pool.submit(execute, nxt)] = nxt
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise


def _dask(runs: list[PlannedRun], scheduler: str, on_result: OnResult,
          connect_timeout_s: float) -> None:
    try:
        import importlib

        dd: Any = importlib.import_module("distributed")  # untyped: used through Any
    except ImportError:  # pragma: no cover - a declared dependency
        raise ValueError("--scheduler needs dask.distributed: pip install "
                         "'dask[distributed]'") from None
    cluster: Any = None
    if scheduler.startswith("local:"):
        n_text = scheduler.partition(":")[2]
        if not n_text.isdigit() or int(n_text) < 1:
            raise ValueError(f"--scheduler {scheduler!r}: local:N needs N >= 1 workers")
        cluster = dd.LocalCluster(n_workers=int(n_text), threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        client = dd.Client(cluster)
    elif re.match(r"^(tcp|tls|inproc|ws|wss)://[^\s]+$", scheduler):
        try:
            client = dd.Client(scheduler, timeout=connect_timeout_s)
        except OSError as exc:
            raise ValueError(f"--scheduler {scheduler!r}: cannot connect: {exc}") from None
    else:
        raise ValueError(f"--scheduler {scheduler!r}: use tcp://HOST:PORT or local:N")
    try:
        futures = {client.submit(execute, run, key=f"fragsim-run-{run.run_id}", pure=False): run
                   for run in runs}
        try:
            for fut in dd.as_completed(futures):
                run = futures[fut]
                try:
                    result = fut.result()
                except Exception as exc:  # KilledWorker, a worker without fragsim, ...
                    result = failed_result(run, f"{type(exc).__name__}: {exc}")
                on_result(run, result)
        except BaseException:
            client.cancel(list(futures))
            raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_sweep(runs: list[PlannedRun], on_result: OnResult, *, workers: int = 1,
              scheduler: str | None = None, connect_timeout_s: float = 20.0) -> None:
    """Run `runs`, calling `on_result(run, result)` in this process as each one finishes (in
    completion order). A run that fails gives a failed row; only Ctrl-C stops the sweep."""
    if not runs:
        return
    if scheduler:
        _dask(runs, scheduler, on_result, connect_timeout_s)
    else:
        _local(runs, max(1, min(workers, len(runs))), on_result)


def default_workers() -> int:
    """One worker per cpu this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def manifest(spec: Spec, runs: list[PlannedRun]) -> dict[str, Any]:
    """The manifest of a sweep directory: spec, hash, code version, seeds and runs."""
    from fragsim import __version__

    return {
        "format": FORMAT,
        "name": spec.name,
        "description": spec.description,
        "spec_source": spec.source,
        "spec_text": spec.text,
        "spec_hash": spec_hash(spec, runs),
        "workload": spec.workload,
        "workload_text": spec.workload_text,
        "code_version": __version__,
        "root_seed": spec.root_seed,
        "seeds": list(spec.seeds),
        "factors": [name for name, _ in factor_levels(spec)],
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runs": [{"run_id": r.run_id, "kernel": r.kernel, "seed": r.seed,
                  "replicate": r.replicate, "values": r.values} for r in runs],
    }


Tables = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]


def sweep(spec: str | Path | Spec, out: str | Path | None = None, *,
          workers: int | None = None, scheduler: str | None = None,
          progress: bool | None = None, retry_failed: bool = False,
          report: Callable[[str], None] | None = None,
          outcome: SweepOutcome | None = None,
          connect_timeout_s: float = 20.0) -> Tables:
    """Run a sweep and return its `runs, samples, events` DataFrames.

    `spec` is a spec file or a parsed `Spec`. With `out`, results go into that sweep directory
    (`fragsim.sim.store`): finished runs there are skipped, damaged ones redone, and the
    returned tables are `fragsim.analysis.load(out)` (every run of the sweep, old and new).
    Without `out`, results are kept in memory only. `workers` sizes the local process pool
    (default: the cpus); `scheduler` (`tcp://HOST:PORT` or `local:N`) runs on Dask instead.
    `connect_timeout_s` bounds the wait for a `tcp://` scheduler.
    `report` receives one-line messages (skips, failures); `outcome` is filled in.
    """
    from fragsim.sim.progress import runs_progress, want_progress

    parsed = load_spec(spec)
    plan = expand(parsed)
    out_path = Path(out) if out is not None else None
    info = outcome if outcome is not None else SweepOutcome()
    info.planned = len(plan)
    say = report or (lambda _text: None)
    store: ResultStore | None = None
    todo = plan
    if out_path is not None:
        store = ResultStore(out_path)
        resumed = store.open(manifest(parsed, plan))
        if resumed:
            store.clean_temporary()
            todo = []
            for run in plan:
                st = store.state(run.kernel, run.run_id)
                if st.damaged:
                    info.redone += 1
                if st.done and not (retry_failed and st.status != "ok"):
                    info.skipped += 1
                else:
                    todo.append(run)
            if info.skipped:
                say(f"{info.skipped} of {len(plan)} runs already finished in {out_path}: "
                    "skipped")
            if info.redone:
                say(f"{info.redone} damaged run(s) found in {out_path}: redoing them")
    kept: list[RunResult] = []
    bar = runs_progress(len(plan), parsed.name) if want_progress(progress) else None
    if bar is not None:
        bar.update(info.skipped)
    t0 = time.perf_counter()

    def on_result(run: PlannedRun, result: RunResult) -> None:
        if store is not None:
            store.write(run.kernel, run.run_id, result)
        else:
            kept.append(result)
        info.ran += 1
        if not result.ok:
            info.failed += 1
            err = str(result.runs["error"].iloc[0])
            info.failures.append((run.run_id, err))
            say(f"run {run.run_id} ({run.kernel}, seed {run.seed}, {run.values}) failed: {err}")
        if bar is not None:
            bar.update(1)
            bar.set_postfix(failed=info.failed, refresh=False)

    try:
        run_sweep(todo, on_result, workers=workers or default_workers(), scheduler=scheduler,
                  connect_timeout_s=connect_timeout_s)
    finally:
        info.wall_s = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        if store is not None and todo:
            store.finish({"planned": info.planned, "skipped": info.skipped, "ran": info.ran,
                          "failed": info.failed, "redone": info.redone,
                          "wall_s": round(info.wall_s, 3), "scheduler": scheduler or "local",
                          "workers": workers or default_workers()})
    if out_path is not None:
        from fragsim.analysis.results import load

        tables: Tables = load(out_path)
        return tables
    return _concat(kept, plan)


def _concat(results: list[RunResult], plan: list[PlannedRun]) -> Tables:
    """In-memory tables of `results`, in plan order, typed as `fragsim.analysis.load` types
    a sweep directory's (the same frames either way)."""
    import pyarrow as pa

    from fragsim.analysis.results import frame
    from fragsim.sim.store import storable

    order = {r.run_id: i for i, r in enumerate(plan)}
    results = sorted(results, key=lambda r: order[str(r.runs["run_id"].iloc[0])])
    frames = []
    for name in ("runs", "samples", "events"):
        parts = [pa.Table.from_pandas(storable(getattr(r, name)), preserve_index=False)
                 for r in results if getattr(r, name).shape[1]]
        table = pa.concat_tables(parts, promote_options="permissive") if parts else pa.table({})
        frames.append(frame(table))
    return frames[0], frames[1], frames[2]

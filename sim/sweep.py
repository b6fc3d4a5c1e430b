"""Sweeps: a spec of factors and replications, expanded into runs, run locally or on Dask.

A sweep spec is TOML, named in the mmtests way (`<area>-<benchmark>-<variant>`):

    [sweep]
    name = "pagealloc-desktop-smoke"
    workload = "desktop"          # built-in workload, or a .toml path (relative to the spec)
    description = "..."

    [base]                        # flat dotted keys, the keys of `fragsim run --set`
    "machine.memory" = "256MiB"
    "run.days" = 0.25

    [factors]                     # a grid: every combination of every factor's levels
    "kernel.version" = ["2.6.20", "2.6.24"]

    [factors.coupled.size]        # keys that vary together: level i takes element i of each
    "machine.memory" = ["256MiB", "512MiB"]
    "machine.swap" = ["256MiB", "512MiB"]

    [replications]                # seeds spawned from one root SeedSequence ...
    count = 3
    root_seed = 2007
    # seeds = [0, 1, 2]           # ... or listed (the seeds of `fragsim reproduce`)

Nested tables (`[base.machine] memory = ...`, or unquoted `kernel.version = [...]`) mean the
same as quoted dotted keys. `expand(spec)` is a pure function: the list of `PlannedRun`s, one per
combination of factor levels and seed, each a checked `Workload` whose id is the hash of its whole
config, seed included (`Workload.config_id`): the same config and seed always get the same id,
whatever else the spec holds. Every seed is used for every combination, so kernels can be
compared pairwise on common seeds. Any mistake (an unknown key, an empty factor, coupled lists of
different lengths, a value of the wrong type) is a ValueError naming the key, raised before
anything runs.

`run_sweep` executes the plan: a local process pool by default, or a Dask distributed cluster
(`scheduler="tcp://HOST:PORT"`, or `"local:N"` for a `LocalCluster` of N single-threaded worker
processes on loopback). Workers only simulate; this process writes every result into the
`ResultStore` (`fragsim.sim.store`) as it arrives, so the output directory need not be shared
with the cluster, and an interruption loses at most the runs in flight.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fragsim.sim.config import (
    BUILTIN_WORKLOADS,
    Workload,
    load_workload,
    schema,
    typed_value,
)
from fragsim.sim.run import RunResult, run_workload
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

#: mmtests-style names: `<area>-<benchmark>-<variant>`, lower case, the variant may hold dashes.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.]*-[a-z0-9][a-z0-9_.]*-[a-z0-9][a-z0-9_.-]*$")
_TOP = ("sweep", "base", "factors", "replications")
_SWEEP_KEYS = ("name", "workload", "description")
_REPL_KEYS = ("count", "root_seed", "seeds")


@dataclass(frozen=True)
class Spec:
    """A parsed sweep spec (raw values; `expand` types and checks them against the schema)."""

    name: str
    workload: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    coupled: dict[str, dict[str, list[Any]]]
    seeds: tuple[int, ...]
    root_seed: int | None = None
    description: str = ""
    text: str = ""
    source: str = "<spec>"
    workload_text: str | None = None

    def with_base(self, values: dict[str, Any], seeds: int | None = None) -> Spec:
        """A copy with more `[base]` values (dotted keys; checked by `expand`) and, when
        `seeds` is given, that many seeds spawned from the same root (experiment scripts'
        `--days`/`--seeds`). It is another sweep: its runs have other ids."""
        base = {**self.base, **values}
        if seeds is None:
            return replace(self, base=base)
        if seeds < 1:
            raise ValueError(f"seeds {seeds} must be at least 1")
        if self.root_seed is not None:
            return replace(self, base=base, seeds=_spawn_seeds(self.root_seed, seeds))
        return replace(self, base=base, seeds=tuple(range(seeds)))


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: its id, seed, factor levels and the checked workload."""

    run_id: str
    seed: int
    replicate: int
    values: dict[str, Any]
    workload: Workload
    sweep: str = ""

    @property
    def kernel(self) -> str:
        return self.workload.kernel.version


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, full + "."))
        else:
            out[full] = value
    return out


def _spawn_seeds(root: int, count: int) -> tuple[int, ...]:
    """`count` seeds spawned from `SeedSequence(root)` (32 bits of each child's state)."""
    children = np.random.SeedSequence(root).spawn(count)
    return tuple(int(c.generate_state(1, np.uint32)[0]) for c in children)


def _only(table: dict[str, Any], name: str, allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ValueError(f"{where}: unknown key {name}.{key}: allowed are "
                             f"{', '.join(allowed)}")


def _check_levels(label: str, levels: Any, where: str) -> None:
    if not isinstance(levels, list):
        raise ValueError(f"{where}: {label} must be a list of levels, not {levels!r}")
    if not levels:
        raise ValueError(f"{where}: {label} is empty: give it at least one level")


def parse_spec(text: str, source: str = "<spec>") -> Spec:
    """A `Spec` from TOML text; ValueError naming the first thing wrong with it."""
    where = source
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{where}: not valid TOML: {exc}") from None
    for key in data:
        if key not in _TOP:
            raise ValueError(f"{where}: unknown table [{key}]: allowed are {', '.join(_TOP)}")
    head = data.get("sweep")
    if not isinstance(head, dict):
        raise ValueError(f"{where}: needs a [sweep] table with name and workload")
    _only(head, "sweep", _SWEEP_KEYS, where)
    name = head.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"{where}: sweep.name {name!r} is not <area>-<benchmark>-<variant> "
                         "(lower case, e.g. pagealloc-desktop-smoke)")
    workload = head.get("workload")
    if not isinstance(workload, str) or not workload:
        raise ValueError(f"{where}: sweep.workload must name a workload "
                         f"({', '.join(BUILTIN_WORKLOADS)} or a .toml file)")
    base = data.get("base", {})
    if not isinstance(base, dict):
        raise ValueError(f"{where}: base must be a table ([base])")
    factors = dict(data.get("factors", {}))
    coupled_raw = factors.pop("coupled", {})
    if not isinstance(coupled_raw, dict):
        raise ValueError(f"{where}: factors.coupled must hold tables ([factors.coupled.NAME])")
    grid = _flatten(factors)
    for key, levels in grid.items():
        _check_levels(f"factor {key}", levels, where)
    coupled: dict[str, dict[str, list[Any]]] = {}
    for group, table in coupled_raw.items():
        if not isinstance(table, dict) or not table:
            raise ValueError(f"{where}: factors.coupled.{group} must be a table of lists")
        keys = _flatten(table)
        lengths = set()
        for key, levels in keys.items():
            _check_levels(f"factors.coupled.{group} key {key}", levels, where)
            lengths.add(len(levels))
        if len(lengths) > 1:
            raise ValueError(f"{where}: factors.coupled.{group}: its lists have different "
                             f"lengths ({', '.join(f'{k}: {len(v)}' for k, v in keys.items())})")
        coupled[group] = keys
    seen: dict[str, str] = {}
    for key in grid:
        seen[key] = "factors"
    for group, keys in coupled.items():
        for key in keys:
            if key in seen:
                raise ValueError(f"{where}: {key} is varied twice (factors.coupled.{group} "
                                 f"and {seen[key]})")
            seen[key] = f"factors.coupled.{group}"
    repl = data.get("replications", {"count": 1, "root_seed": 0})
    if not isinstance(repl, dict):
        raise ValueError(f"{where}: replications must be a table ([replications])")
    _only(repl, "replications", _REPL_KEYS, where)
    root_seed: int | None = None
    if "seeds" in repl:
        if "count" in repl or "root_seed" in repl:
            raise ValueError(f"{where}: replications: give seeds, or count and root_seed, "
                             "not both")
        seeds = repl["seeds"]
        if (not isinstance(seeds, list) or not seeds
                or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                           for s in seeds)):
            raise ValueError(f"{where}: replications.seeds {seeds!r} must be a non-empty list "
                             "of integers >= 0")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{where}: replications.seeds {seeds!r} repeats a seed")
        seed_list = tuple(int(s) for s in seeds)
    else:
        count = repl.get("count", 1)
        root = repl.get("root_seed", 0)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError(f"{where}: replications.count {count!r} must be an integer >= 1")
        if not isinstance(root, int) or isinstance(root, bool) or root < 0:
            raise ValueError(f"{where}: replications.root_seed {root!r} must be an integer "
                             ">= 0")
        root_seed = root
        seed_list = _spawn_seeds(root, count)
    for key in ("run.seed",):
        if key in seen or key in _flatten(base):
            raise ValueError(f"{where}: {key} is set by [replications], not by base or factors")
    return Spec(name=name, workload=workload, base=_flatten(base), grid=grid, coupled=coupled,
                seeds=seed_list, root_seed=root_seed, description=str(head.get("description", "")),
                text=text, source=source)


def load_spec(spec: str | Path | Spec) -> Spec:
    """A `Spec` from a path (a workload path in it is relative to the spec's folder), or as is.
    A `Spec`'s workload is read now, so its runs do not depend on the current directory."""
    if isinstance(spec, Spec):
        return spec
    path = Path(spec)
    text = path.read_text(encoding="utf-8")
    parsed = parse_spec(text, str(path))
    workload = parsed.workload
    if workload not in BUILTIN_WORKLOADS:
        wpath = Path(workload)
        if not wpath.is_absolute():
            wpath = path.parent / wpath
        if not wpath.exists():
            raise ValueError(f"{path}: sweep.workload {workload!r}: no such workload file "
                             f"({wpath}); built-in workloads are {', '.join(BUILTIN_WORKLOADS)}")
        return replace(parsed, workload=str(wpath),
                       workload_text=wpath.read_text(encoding="utf-8"))
    return parsed


def _levels(spec: Spec) -> list[tuple[str, list[dict[str, Any]]]]:
    """(factor name, [key -> raw value per level]) in spec order: grid keys, then groups."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for key, levels in spec.grid.items():
        out.append((key, [{key: v} for v in levels]))
    for group, keys in spec.coupled.items():
        n = len(next(iter(keys.values())))
        out.append((group, [{k: v[i] for k, v in keys.items()} for i in range(n)]))
    return out


def _base_workload(spec: Spec) -> Workload:
    if spec.workload_text is not None:
        return load_workload(spec.workload, text=spec.workload_text)
    return load_workload(spec.workload)


def expand(spec: Spec) -> list[PlannedRun]:
    """Every run of the spec: the factor grid (in spec order, the last factor varying fastest)
    times the seeds (fastest). Pure: no file is written and nothing runs."""
    base = _base_workload(spec)
    sections = schema(base.scenario)
    where = spec.source
    typed_base = {k: typed_value(k, v, sections, f"{where}: [base]")
                  for k, v in spec.base.items()}
    factors = _levels(spec)
    typed_levels: list[list[dict[str, Any]]] = []
    for name, levels in factors:
        table = "factors" if name in spec.grid else f"factors.coupled.{name}"
        typed_levels.append([{k: typed_value(k, v, sections, f"{where}: [{table}]")
                              for k, v in level.items()} for level in levels])
    runs: list[PlannedRun] = []
    ids: dict[str, int] = {}
    for combo in itertools.product(*typed_levels) if typed_levels else [()]:
        values: dict[str, Any] = dict(typed_base)
        factor_values: dict[str, Any] = {}
        for level in combo:
            values.update(level)
            factor_values.update(level)
        for rep, seed in enumerate(spec.seeds):
            v = dict(values)
            v["run.seed"] = seed
            try:
                workload = load_workload(spec.workload, v, text=spec.workload_text)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            rid = workload.config_id()
            if rid in ids:
                raise ValueError(f"{where}: two runs have the same config ({factor_values}, "
                                 f"seed {seed}): a factor repeats a level")
            ids[rid] = len(runs)
            runs.append(PlannedRun(rid, seed, rep, factor_values, workload, spec.name))
    return runs


def spec_hash(spec: Spec, runs: list[PlannedRun]) -> str:
    """What makes two specs the same sweep: the name and the set of run ids (so comments and
    layout of the TOML do not matter, a changed value or seed does)."""
    text = json.dumps({"name": spec.name, "runs": sorted(r.run_id for r in runs)})
    return hashlib.sha1(text.encode()).hexdigest()[:16]


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
        "factors": [name for name, _ in _levels(spec)],
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

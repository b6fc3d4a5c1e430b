"""Sweep specs: factors and replications in TOML, expanded into checked runs (no I/O, no runs).

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
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from fragsim.sim.config import (
    BUILTIN_WORKLOADS,
    Workload,
    load_workload,
    schema,
    typed_value,
)

__all__ = [
    "NAME_RE",
    "PlannedRun",
    "Spec",
    "expand",
    "factor_levels",
    "load_spec",
    "parse_spec",
    "spec_hash",
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


def factor_levels(spec: Spec) -> list[tuple[str, list[dict[str, Any]]]]:
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
    factors = factor_levels(spec)
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

"""The run life cycle: set up, run, probe, collect; the three tables of a run; Parquet out.

`run_workload(workload)` builds the environment and the scenario's agents, runs simulated time
(with samples every `run.sample_interval_h`, the pageblock census every
`run.census_interval_h`, the memory map every `run.map_interval_h` and at the end, and for
the desktop a `hugepages_get` probe on a copy of the machine every `run.probe_interval_h` and
at the end), and returns a `RunResult` of three tidy tables
that share the keys `run_id`, `workload`, `kernel`, `seed`:

- `runs`: one row: the config's headline values, `status` (ok, failed, interrupted), `error`,
  `wall_s`, `sim_s`, and the outcome (`hugepages_pct` for the desktop, `pass1_pct`..`pass3_pct`
  for stress-highalloc, and counters);
- `samples`: long form (`fragsim.sim.recorder`), plus `uptime_days`;
- `events`: extfrag, allocation failures, probes, phases.

A failure inside the run does not raise: the tables so far come back with the error in the
`runs` row, so one bad run never loses a sweep's others. Ctrl-C (KeyboardInterrupt) is the
exception to that: the tables come back marked interrupted and the caller re-raises.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fragsim.models.mm import probes
from fragsim.models.mm.census import (
    allocated_columns,
    page_kinds,
    pageblock_census,
    pageblock_zones,
)
from fragsim.models.mm.constants import (
    MIGRATE_RECLAIMABLE,
    MIGRATE_TYPES_2_6_24,
    MIGRATE_UNMOVABLE,
)
from fragsim.sim.config import Workload

__all__ = ["SAMPLED_VMSTAT", "SAMPLED_VMSTAT_THP", "RunResult", "run_workload",
           "write_tables"]

#: vmstat counters sampled every sample interval (cumulative values).
SAMPLED_VMSTAT = (
    "pgalloc", "pgfree", "alloc_fail", "extfrag_fallback", "extfrag_fragmenting",
    "extfrag_change_ownership", "pageblock_claimed", "pgscan_kswapd", "pgscan_direct",
    "pgsteal", "allocstall", "pswpout", "slabs_scanned", "lumpy_isolated",
    "compact_stall", "compact_success", "pgmigrate_success",
)
#: vmstat counters sampled as well when transparent huge pages are on (`kernel.thp_enabled`).
SAMPLED_VMSTAT_THP = ("thp_fault_alloc", "thp_fault_fallback")

Progress = Callable[[float, float], None]


@dataclass
class RunResult:
    """The tables of one run."""

    runs: pd.DataFrame
    samples: pd.DataFrame
    events: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.runs["status"].iloc[0] == "ok")


def _thp_on(m: Any) -> bool:
    """Whether the run's anonymous faults may try transparent huge pages."""
    return bool(m.config.thp_enabled != "never")


def _kinds(m: Any) -> dict[str, int]:
    """Allocated pages by what they hold (`census.page_kinds`)."""
    return page_kinds(m)


class _Sampler:
    """Samples, census and probes of one run, as a SimPy process."""

    def __init__(self, env: Any, workload: Workload, probe: bool) -> None:
        self.env = env
        self.rec = env.recorder
        self.m = env.machine
        r = workload.run
        self.sample_s = r.sample_interval_h * 3600.0
        self.census_s = r.census_interval_h * 3600.0
        self.probe_s = r.probe_interval_h * 3600.0 if probe else 0.0
        self.map_s = r.map_interval_h * 3600.0
        self.last_map = -1.0
        self.probes: list[float] = []
        self.last_sample = -1.0
        self.last_census = -1.0
        self.vmstat_names = SAMPLED_VMSTAT + (SAMPLED_VMSTAT_THP if _thp_on(self.m) else ())

    def final(self) -> None:
        """The samples and census at the end of the run, unless just taken."""
        t = float(self.env.now)
        if self.last_sample < t:
            self.sample()
        if self.last_census < t:
            self.census()
        if self.last_map < t:
            self.memory_map()

    def sample(self) -> None:
        t = float(self.env.now)
        self.last_sample = t
        m = self.m
        rec = self.rec
        self.env.kernel.sync()
        for z in m.populated_zones():
            rec.sample(t, "nr_free_pages", float(m.zones[z]["free_pages"]), zone=z)
            nr_free = m.zones[z]["nr_free"][: m.max_order].astype(np.float64)
            rec.samples(t, "buddyinfo", nr_free, zone=z, order=np.arange(m.max_order))
        zones = pageblock_zones(m)
        types = m.pageblock_type.astype(np.int64)
        for z in m.populated_zones():
            counts = np.bincount(types[zones == z], minlength=MIGRATE_TYPES_2_6_24)
            rec.samples(t, "pageblocks", counts[:MIGRATE_TYPES_2_6_24], zone=z,
                        migratetype=np.arange(MIGRATE_TYPES_2_6_24))
        for name, value in _kinds(m).items():
            rec.sample(t, name, float(value))
        total, free = (int(v) for v in (m.node[0]["total_swap_pages"],
                                        m.node[0]["nr_swap_pages"]))
        rec.sample(t, "swap_used_pages", float(total - free))
        for name in self.vmstat_names:
            rec.sample(t, name, float(m.stat(name)))

    def memory_map(self, c: dict[str, np.ndarray] | None = None) -> None:
        """One `pageblock` event per pageblock: type, allocated and foreign pages (the memory
        map of `fragsim.analysis.figures.memory_map`; fields in `fragsim.sim.recorder`)."""
        t = float(self.env.now)
        self.last_map = t
        if c is None:
            self.env.kernel.sync()
            c = pageblock_census(self.m)
        by_type = np.stack([c[name] for name in allocated_columns(self.m.policy)], axis=1)
        own = np.clip(c["migratetype"].astype(np.int64), 0, MIGRATE_TYPES_2_6_24 - 1)
        foreign = by_type.copy()
        foreign[np.arange(foreign.shape[0]), own] = 0
        dominant = np.where(foreign.max(axis=1) > 0, foreign.argmax(axis=1), -1)
        inside = c["zone"] >= 0
        self.rec.events_bulk(
            t, "pageblock", "census", c["foreign_pages"][inside].astype(np.float64),
            pfn=c["start_pfn"][inside], order=np.full(int(inside.sum()), self.m.pageblock_order),
            migratetype=c["migratetype"][inside].astype(np.int64),
            fallback_migratetype=dominant[inside], nr_pages=c["allocated"][inside])

    def census(self) -> None:
        """Pageblocks holding unmovable / reclaimable allocations: the mechanism in numbers."""
        t = float(self.env.now)
        self.last_census = t
        c = pageblock_census(self.m)
        rec = self.rec
        alloc_u = c["allocated_unmovable"] > 0
        alloc_r = c["allocated_reclaimable"] > 0
        for z in self.m.populated_zones():
            sel = c["zone"] == z
            rec.sample(t, "pageblocks_total", float(sel.sum()), zone=z)
            rec.sample(t, "pageblocks_with_unmovable", float((alloc_u & sel).sum()), zone=z)
            rec.sample(t, "pageblocks_with_reclaimable", float((alloc_r & sel).sum()), zone=z)
            rec.sample(t, "pageblocks_pinned", float(((alloc_u | alloc_r) & sel).sum()),
                       zone=z)
            rec.sample(t, "pageblocks_mixed", float((c["mixed"] & sel).sum()), zone=z)
            rec.sample(t, "pageblocks_free", float(((c["allocated"] == 0) & sel).sum()),
                       zone=z)
            rec.sample(t, "foreign_pages", float(c["foreign_pages"][sel].sum()), zone=z)
            for mt in (MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE):
                col = ("allocated_unmovable" if mt == MIGRATE_UNMOVABLE
                       else "allocated_reclaimable")
                rec.sample(t, "pages_allocated", float(c[col][sel].sum()), zone=z,
                           migratetype=mt)

    def probe(self) -> float:
        """`hugepages_get` on a copy of the machine (Mel Gorman's desktop probe)."""
        t = float(self.env.now)
        self.env.kernel.sync()
        result = probes.hugepages_get(self.m)
        pct = 100.0 * result.share
        self.rec.sample(t, "hugepages_pct", pct, order=result.order)
        for reason, blocks in result.reasons.items():
            self.rec.sample(t, f"hugepages_blocked_{reason}", float(blocks), order=result.order)
        self.rec.event(t, "hugepages_get", "probe", order=result.order, value=pct,
                       detail=f"{result.successes} huge pages in {result.attempts} attempts")
        self.probes.append(pct)
        return pct

    def run(self, until: float) -> Any:
        """Samples, census and probes at their intervals up to `until`."""
        env = self.env
        next_s = 0.0
        next_c = 0.0
        next_p = self.probe_s if self.probe_s > 0 else float("inf")
        next_m = self.map_s if self.map_s > 0 else float("inf")
        while True:
            t = float(env.now)
            if self.sample_s > 0 and t >= next_s:
                self.sample()
                next_s += self.sample_s
            if self.census_s > 0 and t >= next_c:
                self.census()
                next_c += self.census_s
            if t >= next_p and t < until:
                self.probe()
                next_p += self.probe_s
            if t >= next_m and t < until:
                self.memory_map()
                next_m += self.map_s
            nxt = min(next_s if self.sample_s > 0 else float("inf"),
                      next_c if self.census_s > 0 else float("inf"), next_p, next_m)
            if nxt == float("inf"):
                return
            yield env.timeout(max(nxt - t, 0.0))


def _base_row(workload: Workload, run_id: str) -> dict[str, Any]:
    w = workload
    return {
        "run_id": run_id,
        "workload": w.name,
        "scenario": w.scenario,
        "kernel": w.kernel.version,
        "memory_bytes": int(w.machine.memory),
        "profile": w.machine.profile,
        "seed": int(w.run.seed),
        "days": float(w.run.days),
        "min_free_kbytes": int(w.kernel.min_free_kbytes),
        "config_id": w.config_id(),
    }


def run_workload(workload: Workload, *, progress: Progress | None = None,
                 run_id: str | None = None) -> RunResult:
    """Run one workload through the life cycle (module docstring)."""
    from fragsim.sim.engine import Environment

    rid = run_id or workload.config_id()
    row = _base_row(workload, rid)
    t0 = time.perf_counter()
    env: Any = None
    sampler: _Sampler | None = None
    scenario: Any = None
    status, error = "ok", ""
    interrupted = False
    try:
        env = Environment(workload)
        scenario = env.scenario
        row["min_free_kbytes"] = int(env.machine.min_free_kbytes)
        sampler = _Sampler(env, workload, scenario.periodic_probes)
        scenario.start()
        end = scenario.duration_s
        if end == float("inf"):
            env.process(sampler.run(float("inf")))
            done = scenario.done
            step = 60.0
            while not done.triggered:
                env.run(until=float(env.now) + step)
                if progress is not None:
                    progress(float(env.now), float("nan"))
        else:
            env.process(sampler.run(end))
            step = 3600.0
            while float(env.now) < end:
                env.run(until=min(end, float(env.now) + step))
                if progress is not None:
                    progress(float(env.now), end)
        sampler.final()
        if scenario.periodic_probes:
            sampler.probe()
    except KeyboardInterrupt:
        status, error = "interrupted", "KeyboardInterrupt"
        interrupted = True
    except Exception as exc:  # a failed run still returns its tables
        status = "failed"
        error = f"{type(exc).__name__}: {exc}"
        row["traceback"] = traceback.format_exc(limit=8)
    row["status"] = status
    row["error"] = error
    row["wall_s"] = time.perf_counter() - t0
    row["sim_s"] = float(env.now) if env is not None else 0.0
    if env is not None:
        row["hugepages_pct"] = sampler.probes[-1] if sampler and sampler.probes else float("nan")
        row["probes"] = len(sampler.probes) if sampler else 0
        if scenario is not None:
            try:
                row.update(scenario.outcome())
            except Exception as exc:  # an outcome that cannot be computed is not fatal
                row["error"] = row["error"] or f"outcome: {exc}"
        m = env.machine
        for name in ("alloc_fail", "extfrag_fallback", "extfrag_fragmenting",
                     "pageblock_claimed", "allocstall", "pgscan_kswapd", "pgscan_direct",
                     "pgsteal", "pswpout", "compact_stall"):
            row[name] = int(m.stat(name))
        if _thp_on(m):
            for name in SAMPLED_VMSTAT_THP:
                row[name] = int(m.stat(name))
        row["stall_s"] = float(env.kernel.stall_s)
        row["extfrag_lost"] = int(env.kernel.extfrag_lost)
        samples = env.recorder.samples_frame()
        events = env.recorder.events_frame()
    else:
        samples = pd.DataFrame()
        events = pd.DataFrame()
    result = _tables(row, samples, events)
    if interrupted:
        raise _Interrupted(result)
    return result


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run: carries the tables collected so far."""

    def __init__(self, result: RunResult) -> None:
        super().__init__()
        self.result = result


def _tables(row: dict[str, Any], samples: pd.DataFrame, events: pd.DataFrame) -> RunResult:
    runs = pd.DataFrame([row])
    for name in ("workload", "scenario", "kernel", "status", "profile"):
        runs[name] = runs[name].astype("category")
    keys = {"run_id": row["run_id"], "workload": row["workload"], "kernel": row["kernel"],
            "seed": row["seed"]}
    for frame in (samples, events):
        if frame.shape[0] or len(frame.columns):
            for i, (k, v) in enumerate(keys.items()):
                frame.insert(i, k, v)
            for k in ("run_id", "workload", "kernel"):
                frame[k] = frame[k].astype("category")
            if "t_s" in frame:
                frame.insert(len(keys) + 1, "uptime_days", frame["t_s"] / 86400.0)
    return RunResult(runs=runs, samples=samples, events=events, summary=row)


def write_tables(result: RunResult, out: Path) -> list[Path]:
    """Write `runs`, `samples`, `events` as Parquet into `out` (each written to a temporary
    file, then renamed, so a reader never sees a partial file)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("runs", "samples", "events"):
        frame: pd.DataFrame = getattr(result, name)
        path = out / f"{name}.parquet"
        tmp = out / f".{name}.parquet.tmp-{os.getpid()}"
        frame.to_parquet(tmp, engine="pyarrow", index=False)
        os.replace(tmp, path)
        paths.append(path)
    (out / "config.json").write_text(json.dumps(result.summary, default=str, indent=1) + "\n")
    return paths

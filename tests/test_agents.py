"""Agents: their statistics match their distributions (tolerances from n), and what they
allocate they give back."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import simpy

from fragsim.models.agents.files import FileSystem, FileSystemParams
from fragsim.models.agents.kernelmem import pareto_lifetimes
from fragsim.models.agents.processes import Processes, TaskParams
from fragsim.models.agents.rhythm import Rhythm, RhythmParams
from fragsim.models.agents.user import Commands, CommandsParams, Popularity, lognormal_pages
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.profiles import machine_config
from fragsim.sim.kernel import Kernel
from fragsim.sim.recorder import Recorder
from fragsim.sim.streams import Streams


def _binomial_ok(hits: int, n: int, p: float, z: float = 4.5) -> bool:
    return abs(hits - n * p) <= z * math.sqrt(n * p * (1 - p)) + 1


@pytest.mark.parametrize(("minimum", "alpha"), [(0.05, 1.0), (1.0, 0.7), (120.0, 1.5)])
def test_pareto_survival(minimum: float, alpha: float) -> None:
    n = 200_000
    life = pareto_lifetimes(np.random.default_rng(1), n, minimum, alpha)
    assert life.min() >= minimum
    for k in (2.0, 10.0, 100.0):
        p = k ** -alpha
        assert _binomial_ok(int((life > minimum * k).sum()), n, p)


def test_pareto_mean_lifetime() -> None:
    """alpha > 2: mean minimum * alpha / (alpha - 1), variance finite; tolerance 5 sigma / n."""
    n, minimum, alpha = 400_000, 2.0, 3.0
    life = pareto_lifetimes(np.random.default_rng(7), n, minimum, alpha)
    mean = minimum * alpha / (alpha - 1)
    var = minimum**2 * alpha / ((alpha - 1) ** 2 * (alpha - 2))
    assert abs(life.mean() - mean) <= 5 * math.sqrt(var / n)


def test_lognormal_median() -> None:
    n = 100_001
    pages = lognormal_pages(np.random.default_rng(2), n, 4.0, 1.0)
    below = int((pages < 4 * 256).sum())
    assert _binomial_ok(below, n, 0.5)


def test_zipf_popularity() -> None:
    rng = np.random.default_rng(3)
    fids = np.arange(1000, 2000)
    pop = Popularity(fids, 1.0, rng)
    n = 200_000
    draws = pop.draw(rng, n)
    assert set(np.unique(draws)) <= set(fids.tolist())
    harmonic = float((1.0 / np.arange(1, 1001)).sum())
    top = pop.fids[0]
    assert _binomial_ok(int((draws == top).sum()), n, 1.0 / harmonic)
    tenth = pop.fids[9]
    assert _binomial_ok(int((draws == tenth).sum()), n, 0.1 / harmonic)


def _kernel(memory: int = 64 << 20, kernel: str = "2.6.24", **kw: Any) -> Kernel:
    env = simpy.Environment()
    m = Machine(machine_config(kernel, memory=memory, layout="zones", swap=16 << 20, **kw))
    return Kernel(env, m, Recorder(), Streams(0))


def test_rhythm() -> None:
    r = Rhythm(RhythmParams(boot_hour=8, active_start_hour=8, active_end_hour=23,
                            idle_activity=0.1))
    assert r.activity(0.0) == 1.0 and r.activity(15.5 * 3600) == 0.1
    assert r.hour_of_day(24 * 3600) == pytest.approx(8.0)
    assert r.next_time_of_day(0.0, 6.5) == pytest.approx((24 - 8 + 6.5) * 3600)
    with pytest.raises(ValueError, match="idle_activity"):
        Rhythm(RhythmParams(idle_activity=2.0))


def test_command_arrivals_follow_their_rate() -> None:
    k = _kernel()
    fs = FileSystem(k, FileSystemParams())
    procs = Processes(k, fs, TaskParams())
    rhythm = Rhythm(RhythmParams(active_start_hour=0, active_end_hour=24))
    params = CommandsParams(per_min=6.0, life_min_s=0.01, rss_median_mib=0.1, exe_files=0,
                            files_read=0)
    cmds = Commands(k, rhythm, procs, None, params)
    k.env.process(cmds.run())
    hours = 4.0
    k.env.run(until=hours * 3600)
    expected = params.per_min * 60 * hours
    assert abs(cmds.started - expected) <= 4.5 * math.sqrt(expected)
    assert procs.exited >= cmds.started - procs.nr_alive


def test_processes_give_back_everything() -> None:
    k = _kernel()
    m = k.machine
    fs = FileSystem(k, FileSystemParams())
    procs = Processes(k, fs, TaskParams())
    start = m.free_pages()
    slots: list[int] = []

    def life() -> Any:
        for threads in (1, 3, 8):
            slot = yield from procs.spawn(threads, None, "t")
            yield from procs.grow(slot, 3000, "t")
            slots.append(slot)
        yield from procs.churn(slots[0], 0.5, np.random.default_rng(0), "t")
        assert procs.shrink(slots[1], 100, np.random.default_rng(1)) == 100

    k.env.process(life())
    k.env.run()
    held = start - m.free_pages()
    anon = int(procs.anon[slots].sum())
    kernel_pages = held - anon
    p = TaskParams()
    # stacks (order 1 each thread) + page tables + task slab pages
    assert kernel_pages >= 12 * 2 + 3 * p.pt_pages_base
    for slot in slots:
        procs.exit(slot)
    assert m.free_pages() == start - sum(c.nr_pages for c in (procs.task_cache, procs.mm_cache,
                                                              procs.vma_cache,
                                                              procs.files_cache))
    assert all(c.objects() == (0, 0) for c in (procs.task_cache, procs.mm_cache,
                                              procs.vma_cache, procs.files_cache))
    assert m.free_pages() == start  # empty slab pages went back to the buddy allocator


def test_files_read_cache_and_delete() -> None:
    k = _kernel()
    m = k.machine
    fs = FileSystem(k, FileSystemParams())
    fids = fs.create(np.array([10, 1, 300]))
    start = m.free_pages()

    def work() -> Any:
        got = yield from fs.read(fids, "t")
        assert got == 311
        again = yield from fs.read(fids, "t")
        assert again == 0  # all cached: only mark_page_accessed

    k.env.process(work())
    k.env.run()
    assert fs.cached_pages(fids) == 311
    assert fs.dcache.objects() == (0, 3) and fs.icache.objects() == (0, 3)  # unused, cached
    assert fs.delete(fids) == 311
    assert fs.cached_pages() == 0 and fs.dcache.objects() == (0, 0)
    assert m.free_pages() == start

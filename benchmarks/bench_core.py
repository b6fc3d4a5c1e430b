"""Allocator core throughput and memory: prints one `key: value` line per figure.

Workload (issue 3): a 4 GiB machine (1,048,576 pages) under each kernel preset's allocator
(`models.mm.profiles`; issue 10: the figures are printed per preset); random alloc/free
at 55/45 from 40% allocated, so memory stays about half full (about 57% at the end
of the default 1M operations); orders 85% 0, 10% 1,
4% 2, 1% 3; migratetypes 70% movable, 20% unmovable, 10% reclaimable. One operation is one
allocation or one free call (of a block of any order). Timed: only the model's calls.

    python benchmarks/bench_core.py [--ops N] [--seed S] [--preset P ...]

Each figure is printed as `PRESET KEY: VALUE`, one preset after another, every preset running
the same request stream (same seed).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fragsim.models.mm.constants import (
    ALLOC_WMARK_LOW,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
)
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.profiles import KERNEL_PROFILES, machine_config

ORDERS = np.array([0, 1, 2, 3])
ORDER_P = np.array([0.85, 0.10, 0.04, 0.01])
MTS = np.array([MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE])
MT_P = np.array([0.7, 0.2, 0.1])


def make_machine(preset: str) -> Machine:
    """The preset's allocator on 4 GiB; the slow-path options do not matter here."""
    return Machine(machine_config(preset, memory=4 << 30))


def requests(m: Machine, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    orders = rng.choice(ORDERS, n, p=ORDER_P).astype(np.int64)
    mts = rng.choice(MTS, n, p=MT_P).astype(np.int64)
    lut = np.zeros(int(MTS.max()) + 1, np.int64)
    for t in MTS:
        lut[t] = m.resolve(None, int(t))[0]
    high = lut[mts]
    return orders, high, mts


def prefill(m: Machine, rng: np.random.Generator, target: float) -> np.ndarray:
    """Allocate until `target` of memory is in use; returns the live pfns."""
    live: list[np.ndarray] = []
    used = 0
    while used < target * m.nr_pages:
        orders, high, mts = requests(m, rng, 65536)
        flags = np.full(orders.shape[0], ALLOC_WMARK_LOW, np.int64)
        zeros = np.zeros(orders.shape[0], np.int64)
        pfns = m.alloc_batch(orders, high, mts, flags, zeros, zeros)
        live.append(pfns[pfns >= 0])
        used += int((1 << orders[pfns >= 0]).sum())
    return np.concatenate(live)


def bench_batch(preset: str, ops: int, seed: int,
                chunk: int = 8192) -> tuple[float, float, float]:
    m = make_machine(preset)
    rng = np.random.default_rng(seed)
    live = prefill(m, rng, 0.40)
    start_used = 1.0 - m.free_pages() / m.nr_pages
    done = 0
    spent = 0.0
    while done < ops:
        n_alloc = int(rng.binomial(chunk, 0.55))
        n_free = min(chunk - n_alloc, live.shape[0])
        orders, high, mts = requests(m, rng, n_alloc)
        flags = np.full(n_alloc, ALLOC_WMARK_LOW, np.int64)
        zeros = np.zeros(n_alloc, np.int64)
        pick = rng.choice(live.shape[0], n_free, replace=False)
        victims = live[pick]
        keep = np.ones(live.shape[0], bool)
        keep[pick] = False
        t0 = time.perf_counter()
        pfns = m.alloc_batch(orders, high, mts, flags, zeros, zeros)
        m.free_batch(victims)
        spent += time.perf_counter() - t0
        live = np.concatenate([live[keep], pfns[pfns >= 0]])
        done += n_alloc + n_free
    return done / spent, start_used, 1.0 - m.free_pages() / m.nr_pages


def bench_single(preset: str, ops: int, seed: int) -> float:
    m = make_machine(preset)
    rng = np.random.default_rng(seed)
    live = list(prefill(m, rng, 0.40).tolist())
    is_alloc = rng.random(ops) < 0.55
    orders, _, mts = requests(m, rng, ops)
    victim = rng.random(ops)
    orders_l, mts_l, is_alloc_l, victim_l = (orders.tolist(), mts.tolist(), is_alloc.tolist(),
                                             victim.tolist())
    alloc, free = m.alloc, m.free
    t0 = time.perf_counter()
    for i in range(ops):
        if is_alloc_l[i] or not live:
            pfn = alloc(orders_l[i], migratetype=mts_l[i])
            if pfn >= 0:
                live.append(pfn)
        else:
            j = int(victim_l[i] * len(live))
            live[j], live[-1] = live[-1], live[j]
            free(live.pop())
    return ops / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1_000_000, help="operations per measurement")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--preset", nargs="+", choices=list(KERNEL_PROFILES),
                        default=list(KERNEL_PROFILES), help="kernel presets (default: all)")
    args = parser.parse_args()
    for preset in args.preset:
        # Compile every entry point this preset's policy uses before timing.
        warm = Machine(machine_config(preset, memory=64 << 20))
        warm.free(warm.alloc(0))
        warm.free_batch(warm.alloc_many(0, 4))
        m = make_machine(preset)
        print(f"{preset} policy: {m.policy.name}")
        print(f"{preset} pages: {m.nr_pages}")
        print(f"{preset} state_bytes_per_page: {m.state_bytes() / m.nr_pages:.3f}")
        batch_rate, start_used, used = bench_batch(preset, args.ops, args.seed)
        print(f"{preset} batch_page_ops_per_s: {batch_rate:.0f}")
        print(f"{preset} batch_used_share_start: {start_used:.3f}")
        print(f"{preset} batch_used_share_end: {used:.3f}")
        single_rate = bench_single(preset, args.ops, args.seed)
        print(f"{preset} single_page_ops_per_s: {single_rate:.0f}", flush=True)


if __name__ == "__main__":
    main()

"""Huge page probe wall time at 4 GiB, per kernel profile: prints `key: value` lines.

Each kernel gets the same aged machine: a fixed-seed churn of page cache (clean file pages on
the LRU) and unmovable kernel pages. Every round reads a memory's worth of page cache in 64
chunks; below the LOW watermark kswapd reclaims the oldest page cache (LRU order). Between chunks
GFP_KERNEL pages worth `--kernel-share` of memory per round are allocated through the slow path,
so they land wherever reclaim made room. At the end of the round a third of all kernel pages
and a fifth of the cached pages are freed at random (objects and files deleted). Then
`hugepages_get` and one stress-highalloc pass run on copies of that machine; their wall times
are printed.

    python benchmarks/bench_probes.py [--memory 4GiB] [--rounds 6] [--seed 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fragsim.models.mm import probes, reclaim, slowpath
from fragsim.models.mm.constants import KIND_FILE, KIND_KERNEL, PG_LRU, ZONE_NORMAL
from fragsim.models.mm.geometry import parse_size
from fragsim.models.mm.gfp import GFP_KERNEL
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.profiles import machine_config


def alloc_cache(m: Machine, n: int) -> np.ndarray:
    """`n` page cache pages; below the LOW watermark kswapd reclaims (LRU order) and we retry."""
    pfns = reclaim.alloc_lru_pages(m, n, KIND_FILE, owner=1)
    missing = int((pfns < 0).sum())
    if missing:
        slowpath.wakeup_kswapd(m, 0, ZONE_NORMAL)
        slowpath.run_kswapd(m)
        more = reclaim.alloc_lru_pages(m, missing, KIND_FILE, owner=1)
        pfns = np.concatenate([pfns[pfns >= 0], more])
    return pfns[pfns >= 0]


def age(m: Machine, rng: np.random.Generator, rounds: int, kernel_share: float) -> None:
    """The churn described in the module docstring (identical for every policy)."""
    chunks = 64
    kernel: list[np.ndarray] = []
    cache: list[np.ndarray] = []
    per_chunk = max(1, int(kernel_share * m.nr_pages) // chunks)
    for _ in range(rounds):
        for _ in range(chunks):
            cache.append(alloc_cache(m, m.nr_pages // chunks))
            for _ in range(per_chunk):
                k = slowpath.alloc_pages(m, 0, GFP_KERNEL, owner=2, kind=KIND_KERNEL)
                if k.success:
                    kernel.append(np.array([k.pfn], dtype=np.int64))
        all_kernel = np.concatenate(kernel)
        drop = rng.random(all_kernel.shape[0]) < 1 / 3
        m.free_batch(all_kernel[drop])
        kernel = [all_kernel[~drop]]
        # Files deleted: a fifth of what is still cached goes, whatever its age.
        all_cache = np.concatenate(cache)
        alive = (m.pages["flags"][all_cache] & PG_LRU) != 0
        all_cache = all_cache[alive & (m.pages["owner"][all_cache] == 1)]
        drop = rng.random(all_cache.shape[0]) < 0.2
        reclaim.free_lru_pages(m, all_cache[drop])
        cache = [all_cache[~drop]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", default="4GiB")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--kernel-share", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kernels", default="2.6.20,2.6.24,2.6.35")
    args = parser.parse_args()
    memory = parse_size(args.memory)
    # Compile every path once on a small machine so the timings below are the model's.
    warm = Machine(machine_config("2.6.35", memory=64 << 20))
    age(warm, np.random.default_rng(0), 1, args.kernel_share)
    probes.hugepages_get(warm, patience=2)
    probes.stress_highalloc(warm, percent=10)
    print(f"memory_bytes: {memory}")
    print(f"aging_rounds: {args.rounds}")
    print(f"kernel_share_per_round: {args.kernel_share}")
    for kernel in args.kernels.split(","):
        m = Machine(machine_config(kernel, memory=memory))
        t0 = time.perf_counter()
        age(m, np.random.default_rng(args.seed), args.rounds, args.kernel_share)
        print(f"{kernel}_aging_wall_s: {time.perf_counter() - t0:.3f}")
        r = probes.hugepages_get(m)
        print(f"{kernel}_hugepages_get_wall_s: {r.wall_s:.3f}")
        print(f"{kernel}_hugepages_get_share: {r.share:.4f}")
        print(f"{kernel}_hugepages_get_attempts: {r.attempts}")
        print(f"{kernel}_hugepages_get_reasons: {r.reasons}")
        s = probes.stress_highalloc(m)
        print(f"{kernel}_stress_highalloc_wall_s: {s.wall_s:.3f}")
        print(f"{kernel}_stress_highalloc_success_pct: {s.success_pct:.2f}")
        print(f"{kernel}_stress_highalloc_mean_latency_ms: "
              f"{1000 * float(s.latency_wall_s.mean()) if s.attempts else 0.0:.3f}")


if __name__ == "__main__":
    main()

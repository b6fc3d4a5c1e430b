"""Compaction throughput: prints one `key: value` line per figure.

Workload: a 4 GiB flat zone (1,048,576 pages) under `mobility`, every page allocated at order 0
in random order (ALLOC_NO_WATERMARKS, so the MIGRATE_RESERVE blocks fill too), 90% anonymous
pages on the LRU (MOVABLE) and 10% kernel pages (UNMOVABLE); then a random half of the
anonymous pages is freed. Timed: `compact_node` (/proc/sys/vm/compact_memory, 2.6.35
`compact_zone` with order -1) on fresh copies of the fragmented machine (`wall_s` is the best
of `--repeat`), after a warm-up on a small machine so that compile time is excluded; and one
direct order-9 `compact_zone`, which stops once the order-9 watermark and a free huge page
are met.

    python benchmarks/bench_compaction.py [--seed S] [--memory-gib G] [--repeat R]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fragsim.models.mm.compaction import compact_node, compact_zone
from fragsim.models.mm.constants import (
    ALLOC_NO_WATERMARKS,
    KIND_ANON,
    KIND_KERNEL,
    MIGRATE_MOVABLE,
    MIGRATE_UNMOVABLE,
    ZONE_NORMAL,
)
from fragsim.models.mm.lru import lru_add_batch
from fragsim.models.mm.machine import Machine, MachineConfig

HUGE_ORDER = 9


def fragmented(memory: int, seed: int) -> Machine:
    """The workload above, built with one seeded generator."""
    rng = np.random.default_rng(seed)
    m = Machine(MachineConfig(memory=memory, policy="mobility"))
    n = m.nr_pages
    movable = rng.random(n) < 0.9
    mts = np.where(movable, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE).astype(np.int64)
    kinds = np.where(movable, KIND_ANON, KIND_KERNEL).astype(np.int64)
    high = np.array([m.resolve(None, int(t))[0] for t in mts], dtype=np.int64)
    pfns = m.alloc_batch(np.zeros(n, np.int64), high, mts, np.full(n, ALLOC_NO_WATERMARKS),
                         np.arange(n, dtype=np.int64), kinds)
    ok = pfns >= 0
    anon = pfns[ok & movable]
    lru_add_batch(m.pages, m.zones, anon, np.zeros(anon.shape[0], np.int64))
    m.free_batch(anon[rng.random(anon.shape[0]) < 0.5])
    return m


def huge_blocks(m: Machine, z: int = ZONE_NORMAL) -> int:
    """Free blocks usable as order-9 pages (an order-10 block counts twice)."""
    nr_free = m.zones[z]["nr_free"]
    return int(sum(int(nr_free[o]) << (o - HUGE_ORDER) for o in range(HUGE_ORDER, m.max_order)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--memory-gib", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=5, help="timed compact_node runs")
    args = parser.parse_args()

    warm = fragmented(64 << 20, args.seed)
    compact_zone(warm.copy(), ZONE_NORMAL, HUGE_ORDER)
    compact_node(warm)

    t0 = time.perf_counter()
    m = fragmented(int(args.memory_gib * (1 << 30)), args.seed)
    setup_s = time.perf_counter() - t0
    print(f"memory_pages: {m.nr_pages}")
    print(f"seed: {args.seed}")
    print(f"setup_s: {setup_s:.3f}")
    print(f"free_pages: {m.free_pages()}")
    print(f"lru_pages: {int(m.zones['nr_lru'].sum())}")
    print(f"huge_blocks_before: {huge_blocks(m)}")

    direct = m.copy()
    t0 = time.perf_counter()
    status = compact_zone(direct, ZONE_NORMAL, HUGE_ORDER)
    direct_s = time.perf_counter() - t0
    print(f"direct_order9_status: {status}")
    print(f"direct_order9_wall_s: {direct_s:.4f}")
    print(f"direct_order9_pages_migrated: {direct.stat('pgmigrate_success')}")
    print(f"direct_order9_huge_blocks_after: {huge_blocks(direct)}")

    walls = []
    for _ in range(args.repeat):  # each on a fresh copy; the last copy's figures are printed
        run = m.copy()
        t0 = time.perf_counter()
        compact_node(run)
        walls.append(time.perf_counter() - t0)
    m = run
    wall_s = min(walls)
    migrated = m.stat("pgmigrate_success")
    print(f"pages_migrated: {migrated}")
    print(f"pgmigrate_fail: {m.stat('pgmigrate_fail')}")
    print(f"compact_migrate_scanned: {m.stat('compact_migrate_scanned')}")
    print(f"compact_free_scanned: {m.stat('compact_free_scanned')}")
    print(f"wall_s: {wall_s:.4f}")
    print(f"wall_s_median: {float(np.median(walls)):.4f}")
    print(f"pages_migrated_per_s: {migrated / wall_s:.0f}")
    print(f"huge_blocks_after: {huge_blocks(m)}")
    print(f"huge_blocks_possible: {m.free_pages() >> HUGE_ORDER}")


if __name__ == "__main__":
    main()

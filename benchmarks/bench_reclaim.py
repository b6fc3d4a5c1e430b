"""Whitcroft's observation: plain LRU reclaim must free most of memory before a huge page comes
free; lumpy reclaim frees one. Prints one `key: value` line per figure.

Andy Whitcroft, Lumpy Reclaim V4 (2.6.23, commit 5ad333eb): "To get pages of higher order we
must shoot down a very high proportion of memory; >95% in a lot of cases."

Workload, the same for both reclaim modes (one fixed-seed `numpy.random.Generator` per machine,
so both modes see identical allocations): a flat machine (default 1 GiB, x86_64, pageblock_order
9) is filled completely (ALLOC_NO_WATERMARKS, so no free order-9 block is left) with order-0
requests, each an unmovable kernel page with probability `--kernel-share` (default 3%) and a
clean page-cache page otherwise, in one interleaved sequence. Then `--churn` rounds free a random
half of the page cache and refill it, so that LRU age no longer follows physical position, as
after long uptime. Then an order-9 direct reclaimer calls `try_to_free_pages(order=9)` (each
call reclaims about SWAP_CLUSTER_MAX pages) until a free block of order >= 9 appears; the figure
is the share of memory reclaimed by then. Under `vanilla` the kernel pages scatter over every
block, so no order-9 block may ever come free (printed as `none`, with the share reclaimed when
reclaim stopped making progress).

    python benchmarks/bench_reclaim.py [--memory-mib N] [--seed S] [--kernel-share F] [--churn R]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fragsim.models.mm import reclaim
from fragsim.models.mm.constants import (
    ALLOC_NO_WATERMARKS,
    KIND_FILE,
    KIND_KERNEL,
    MIGRATE_MOVABLE,
    MIGRATE_UNMOVABLE,
    PG_HEAD,
)
from fragsim.models.mm.gfp import GFP_HIGHUSER_MOVABLE
from fragsim.models.mm.lru import lru_add_batch
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.state import KIND_SHIFT

HUGE_ORDER = 9
FILE_OWNER = 1
KERNEL_OWNER = 2


def _alloc_mixed(m: Machine, kinds: np.ndarray) -> np.ndarray:
    """One order-0 request per entry of `kinds` (KIND_FILE or KIND_KERNEL), in order, in one
    compiled call; page-cache pages go on the inactive LRU in allocation order."""
    n = kinds.shape[0]
    movable_zone = m.resolve(None, MIGRATE_MOVABLE)[0]
    kernel_zone = m.resolve(None, MIGRATE_UNMOVABLE)[0]
    is_file = kinds == KIND_FILE
    pfns = m.alloc_batch(np.zeros(n, np.int64),
                         np.where(is_file, movable_zone, kernel_zone).astype(np.int64),
                         np.where(is_file, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE).astype(np.int64),
                         np.full(n, ALLOC_NO_WATERMARKS, np.int64),
                         np.where(is_file, FILE_OWNER, KERNEL_OWNER).astype(np.int64),
                         kinds.astype(np.int64))
    files = np.ascontiguousarray(pfns[is_file & (pfns >= 0)])
    lru_add_batch(m.pages, m.zones, files, np.zeros(files.shape[0], np.int64))
    return pfns


def build(policy: str, lumpy: bool, memory: int, seed: int, kernel_share: float,
          churn: int) -> Machine:
    """The workload of the module docstring on a fresh machine."""
    m = Machine(MachineConfig(memory=memory, policy=policy, pageblock_order=HUGE_ORDER,
                              lumpy_reclaim=lumpy))
    rng = np.random.default_rng(seed)
    kinds = np.where(rng.random(m.nr_pages) < kernel_share, KIND_KERNEL, KIND_FILE)
    _alloc_mixed(m, kinds)
    for _ in range(churn):
        heads = (m.pages["flags"] & PG_HEAD) != 0
        cache = np.flatnonzero(heads & ((m.pages["mt"] >> KIND_SHIFT) == KIND_FILE))
        gone = rng.choice(cache, cache.shape[0] // 2, replace=False)
        m.free_batch(gone)
        _alloc_mixed(m, np.full(gone.shape[0], KIND_FILE, np.int64))
    return m


def reclaim_until_huge_page(m: Machine) -> dict[str, float | int | str]:
    """Direct reclaim rounds for an order-9 request until a free order >= 9 block exists."""
    z = m.populated_zones()[-1]
    gfp = int(GFP_HIGHUSER_MOVABLE)
    heads = (m.pages["flags"] & PG_HEAD) != 0
    nr_cache = int(np.count_nonzero(heads & ((m.pages["mt"] >> KIND_SHIFT) == KIND_FILE)))
    reclaimed = 0
    rounds = 0
    found = int(m.zones[z]["nr_free"][HUGE_ORDER:].sum()) > 0
    t0 = time.perf_counter()
    while not found:
        got = reclaim.try_to_free_pages(m, HUGE_ORDER, gfp, z)
        rounds += 1
        reclaimed += got
        found = int(m.zones[z]["nr_free"][HUGE_ORDER:].sum()) > 0
        if got == 0:
            break
    share = reclaimed / m.nr_pages
    return {
        "share_at_first_order9": f"{share:.4f}" if found else "none",
        "reclaimed_share": round(share, 4),
        "pagecache_reclaimed_share": round(reclaimed / max(1, nr_cache), 4),
        "rounds": rounds,
        "lumpy_isolated": m.stat("lumpy_isolated"),
        "lumpy_block_failed": m.stat("lumpy_block_failed"),
        "free_pages": m.free_pages(),
        "wall_s": round(time.perf_counter() - t0, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--memory-mib", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kernel-share", type=float, default=0.03)
    ap.add_argument("--churn", type=int, default=4)
    args = ap.parse_args()
    memory = args.memory_mib << 20
    print(f"memory_mib: {args.memory_mib}")
    print(f"huge_page_order: {HUGE_ORDER}")
    print(f"pageblock_order: {HUGE_ORDER}")
    print(f"kernel_page_share: {args.kernel_share}")
    print(f"churn_rounds: {args.churn}")
    print(f"seed: {args.seed}")
    for policy in ("mobility", "vanilla"):
        for lumpy in (False, True):
            t0 = time.perf_counter()
            m = build(policy, lumpy, memory, args.seed, args.kernel_share, args.churn)
            build_s = time.perf_counter() - t0
            mode = "lumpy" if lumpy else "plain_lru"
            if lumpy is False:
                print(f"{policy}_nr_pages: {m.nr_pages}")
                print(f"{policy}_min_free_kbytes: {m.min_free_kbytes}")
            res = reclaim_until_huge_page(m)
            prefix = f"{mode}" if policy == "mobility" else f"{policy}_{mode}"
            print(f"{prefix}_reclaimed_share_at_first_order9: {res['share_at_first_order9']}")
            for key in ("reclaimed_share", "pagecache_reclaimed_share", "rounds",
                        "lumpy_isolated", "lumpy_block_failed", "free_pages", "wall_s"):
                print(f"{policy}_{mode}_{key}: {res[key]}")
            print(f"{policy}_{mode}_build_s: {build_s:.3f}")


if __name__ == "__main__":
    main()

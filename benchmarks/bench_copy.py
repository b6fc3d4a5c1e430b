"""Probe copies at 16 GiB: `Machine.copy()`, failure reasons and `hugepages_get` on 2.6.24.

The machine is a 2.6.24 x86_64 flat node of `--memory` bytes (16 GiB: 4M pages, 60 MiB of page
records) aged by pinning: half of memory allocated as GFP_KERNEL pages, then all freed but
one page in every fourth pageblock, so a quarter of the huge-page-sized blocks hold an
unmovable page and the rest can be had. Prints the best of `--repeat` runs of

- `copy_s`: `Machine.copy()`;
- `uint8_copy_s`: the same bytes (pages, zones, node, pageblock types) copied as `uint8`
  arrays, the floor a copy can reach (both allocate fresh memory, so both pay its page faults);
- `failure_reasons_s`: `probes.failure_reasons(m, 9)` on the aged machine;
- `hugepages_get_s`: `probes.hugepages_get(m)` (on a copy, as by default), and its result.

To measure another checkout (the figures before a change), put it first on the path:
`PYTHONPATH=/path/to/checkout python benchmarks/bench_copy.py`.

    python benchmarks/bench_copy.py [--memory 16GiB] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import fragsim
from fragsim.models.mm import probes
from fragsim.models.mm.constants import KIND_KERNEL
from fragsim.models.mm.geometry import parse_size
from fragsim.models.mm.gfp import GFP_KERNEL
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.profiles import machine_config


def aged(memory: int) -> Machine:
    m = Machine(machine_config("2.6.24", memory=memory))
    pfns = m.alloc_many(0, m.nr_pages // 2, GFP_KERNEL, kind=KIND_KERNEL)
    pfns = pfns[pfns >= 0]
    block = 1 << m.pageblock_order
    keep = pfns[(pfns % (4 * block)) == 0]
    m.free_batch(np.setdiff1d(pfns, keep))
    return m


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def uint8_copy(m: Machine) -> list[np.ndarray]:
    return [a.view(np.uint8).copy() for a in (m.pages, m.zones, m.node, m.pageblock_type)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", default="16GiB")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warm = aged(64 << 20)  # compile or load every path first
    probes.hugepages_get(warm)
    m = aged(parse_size(args.memory))
    print(f"fragsim: {fragsim.__file__}")
    print(f"memory_bytes: {parse_size(args.memory)}")
    print(f"pages: {m.nr_pages}")
    print(f"state_bytes: {m.state_bytes()}")
    copy_s = best(m.copy, args.repeat)
    raw_s = best(lambda: uint8_copy(m), args.repeat)
    print(f"copy_s: {copy_s:.4f}")
    print(f"uint8_copy_s: {raw_s:.4f}")
    print(f"copy_over_uint8_copy: {copy_s / raw_s:.2f}")
    print(f"failure_reasons_s: {best(lambda: probes.failure_reasons(m, 9), args.repeat):.4f}")
    print(f"failure_reasons: {probes.failure_reasons(m, 9)}")
    results: list[probes.ProbeResult] = []
    print(f"hugepages_get_s: {best(lambda: results.append(probes.hugepages_get(m)), 3):.4f}")
    r = results[-1]
    print(f"hugepages_get_attempts: {r.attempts}")
    print(f"hugepages_get_share: {r.share:.4f}")
    print(f"hugepages_get_reasons: {r.reasons}")


if __name__ == "__main__":
    main()

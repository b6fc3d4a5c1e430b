"""Sweep throughput on 1 and 2 local workers, and the per-run overhead of the Dask path.

Prints `key: value` lines:

- `local_1_runs_per_min`, `local_2_runs_per_min`, `speedup_2_workers`: one sweep of
  `--runs` desktop runs (256 MiB, `--days` simulated days, both kernels) into a fresh directory,
  on a pool of 1 and then 2 worker processes, worker start-up and result writing included
  (numba's cache is warmed first, as after any first command).
- `dask_overhead_per_run_s`: (wall on a 2-worker Dask `LocalCluster` - wall on a 2-process
  local pool) / runs, over `--tiny` runs of a few simulated minutes, so that the difference is
  the scheduling and transfer cost, cluster start-up included (`dask_cluster_start_s`, measured
  alone, against the pool's own start-up).

    python benchmarks/bench_sweep.py [--runs 12] [--days 0.5] [--tiny 40]

Target (the sweeps issue): a speed-up of at least 1.8 with 2 workers on a 2-core machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fragsim.sim import sweep as sw

SMALL = {
    "machine.memory": "256MiB", "machine.swap": "256MiB", "run.probe_interval_h": 6.0,
}
TINY = {
    "machine.memory": "64MiB", "machine.swap": "64MiB", "run.days": 0.01,
    "files.system_files": 3000, "files.home_files": 1000, "session.programs": 8,
    "session.big_rss_mib": 8, "session.big_limit_mib": 20, "kmalloc.boot_objects": 2000,
}


def spec(base: dict[str, object], runs: int) -> sw.Spec:
    seeds = max(1, runs // 2)
    text = ('[sweep]\nname = "bench-sweep-throughput"\nworkload = "desktop"\n'
            '[factors]\n"kernel.version" = ["2.6.20", "2.6.24"]\n'
            f"[replications]\ncount = {seeds}\nroot_seed = 1\n")
    return sw.parse_spec(text, "bench").with_base(dict(base))


def timed(s: sw.Spec, **kw: object) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        outcome = sw.SweepOutcome()
        sw.sweep(s, Path(tmp) / "out", outcome=outcome, **kw)  # type: ignore[arg-type]
        wall = time.perf_counter() - t0
        if outcome.failed:
            raise SystemExit(f"{outcome.failed} runs failed: {outcome.failures[:1]}")
    return wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=12)
    p.add_argument("--days", type=float, default=0.5)
    p.add_argument("--tiny", type=int, default=40)
    args = p.parse_args()
    timed(spec(TINY, 2), workers=1)  # numba's cache, filled or loaded
    work = spec({**SMALL, "run.days": args.days}, args.runs)
    n = len(sw.expand(work))
    print(f"runs: {n} (256 MiB desktop, {args.days:g} simulated days each)")
    w1 = timed(work, workers=1)
    print(f"local_1_wall_s: {w1:.1f}")
    print(f"local_1_runs_per_min: {60.0 * n / w1:.2f}")
    w2 = timed(work, workers=2)
    print(f"local_2_wall_s: {w2:.1f}")
    print(f"local_2_runs_per_min: {60.0 * n / w2:.2f}")
    print(f"speedup_2_workers: {w1 / w2:.2f}")
    tiny = spec(TINY, args.tiny)
    nt = len(sw.expand(tiny))
    local = timed(tiny, workers=2)
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                           dashboard_address=None)
    Client(cluster).close()
    start = time.perf_counter() - t0
    cluster.close()
    dask = timed(tiny, scheduler="local:2")
    print(f"tiny_runs: {nt}")
    print(f"tiny_local_2_wall_s: {local:.2f}")
    print(f"tiny_dask_local_2_wall_s: {dask:.2f}")
    print(f"dask_cluster_start_s: {start:.2f}")
    print(f"dask_overhead_per_run_s: {(dask - local) / nt:.3f}")


if __name__ == "__main__":
    main()

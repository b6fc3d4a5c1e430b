"""Days of uptime per wall-clock minute: prints `key: value` lines.

For the desktop workload at 1 GiB and 4 GiB (same workload file, `--days` simulated days, each
kernel of `--kernels`): simulated days per wall minute, and page operations (pgalloc + pgfree)
per wall second inside the run, probes and samples included. Then the wall time of one
stress-highalloc run at 3 GiB. The numba kernels are compiled (or loaded) by a tiny run first,
so the figures are the simulation's.

    python benchmarks/bench_uptime.py [--days 2] [--kernels 2.6.20,2.6.24] [--seed 0]

Targets (the days-of-uptime issue): at least 7 simulated days per minute at 4 GiB; a
stress-highalloc run at 3 GiB within 2 minutes.
"""

from __future__ import annotations

import argparse
import time

from fragsim.sim.config import load_workload
from fragsim.sim.run import run_workload


def warm() -> None:
    tiny = ["machine.memory=128MiB", "run.days=0.02", "files.system_files=2000",
            "files.home_files=500", "session.programs=4", "kmalloc.boot_objects=500"]
    for kernel in ("2.6.20", "2.6.24"):
        run_workload(load_workload("desktop", {"kernel.version": kernel}, tiny))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--kernels", default="2.6.20,2.6.24")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-stress", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    warm()
    print(f"warm_up_wall_s: {time.perf_counter() - t0:.1f}")
    for memory in ("1GiB", "4GiB"):
        for kernel in args.kernels.split(","):
            w = load_workload("desktop", {"kernel.version": kernel, "run.days": args.days,
                                          "run.seed": args.seed}, [f"machine.memory={memory}"])
            r = run_workload(w)
            row = r.runs.iloc[0]
            if row["status"] != "ok":
                print(f"desktop_{memory}_{kernel}_error: {row['error']}")
                continue
            wall = float(row["wall_s"])
            ops = int(r.samples.loc[r.samples["metric"].isin(["pgalloc", "pgfree"]) &
                                    (r.samples["t_s"] == r.samples["t_s"].max()),
                                    "value"].sum())
            print(f"desktop_{memory}_{kernel}_wall_s: {wall:.1f}")
            print(f"desktop_{memory}_{kernel}_sim_days_per_wall_min: "
                  f"{args.days / (wall / 60.0):.2f}")
            print(f"desktop_{memory}_{kernel}_page_ops_per_wall_s: {ops / wall:,.0f}")
            print(f"desktop_{memory}_{kernel}_hugepages_pct: {row['hugepages_pct']:.1f}")
    if not args.no_stress:
        for kernel in args.kernels.split(","):
            w = load_workload("stress-highalloc", {"kernel.version": kernel,
                                                   "run.seed": args.seed},
                              ["machine.memory=3GiB"])
            r = run_workload(w)
            row = r.runs.iloc[0]
            print(f"stress_highalloc_3GiB_{kernel}_wall_s: {float(row['wall_s']):.1f}")
            print(f"stress_highalloc_3GiB_{kernel}_passes_pct: "
                  f"{row['pass1_pct']:.1f} / {row['pass2_pct']:.1f} / {row['pass3_pct']:.1f}")
            print(f"stress_highalloc_3GiB_{kernel}_builds: {int(row['builds'])}")


if __name__ == "__main__":
    main()

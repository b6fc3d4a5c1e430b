"""The kernel comparison over memory sizes: huge pages after days of uptime, 2.6.20 vs 2.6.24.

Runs `experiments/sweeps/kernels-memory.toml` (the same desktop workload and seeds on both
kernels at 512 MiB, 1 GiB and 2 GiB), then prints the mean and 95% bootstrap interval of huge page
availability per kernel and size, the paired difference 2.6.24 - 2.6.20 on common seeds, and
draws the uptime curves and the memory map. Local by default; `--scheduler` moves it to Dask.

    python experiments/kernel_memory.py [--out DIR] [--workers N | --scheduler ADDR]
                                        [--days D] [--seeds N]
"""

from __future__ import annotations

from pathlib import Path

import fragsim
from fragsim.analysis import figures, stats
from fragsim.experiments._script import sweep_args

SPEC = Path(__file__).parent / "sweeps" / "kernels-memory.toml"


def main() -> None:
    args, spec = sweep_args(__doc__ or "", SPEC, "results-kernels-memory")
    runs, samples, events = fragsim.sweep(spec, args.out, workers=args.workers,
                                          scheduler=args.scheduler, progress=True)
    size = ["kernel", "memory_bytes"]
    summary = stats.summarize(runs, "hugepages_pct", by=size)
    summary["memory"] = [f"{int(b) >> 20} MiB" for b in summary["memory_bytes"]]
    print("Huge pages allocatable at the end (% of memory), mean [95% bootstrap CI]:")
    print(summary[["kernel", "memory", "n", "mean", "ci_low", "ci_high"]].to_string(index=False))
    diff = stats.paired(runs, "hugepages_pct", baseline="2.6.20", against="2.6.24",
                        by=("memory_bytes",))
    print("\n2.6.24 - 2.6.20 on common seeds:")
    print(diff.to_string(index=False))
    figures.save(figures.uptime(runs, samples), args.out / "uptime")
    first = runs[runs["replicate"] == 0].sort_values(["memory_bytes", "kernel"])
    largest = first[first["memory_bytes"] == first["memory_bytes"].max()]
    figures.save(figures.memory_map(runs, events, list(largest["run_id"].astype(str))),
                 args.out / "memory-map")
    print(f"\nfigures: {args.out}/uptime.png, {args.out}/memory-map.png")


if __name__ == "__main__":
    main()

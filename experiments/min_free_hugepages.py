"""min_free_kbytes against huge page availability, on the standard kernel and with grouping.

Runs `experiments/sweeps/min-free.toml` (1 GiB desktop, min_free_kbytes from the kernel's
default to 10% of memory, the same seeds on 2.6.20 and 2.6.24) and prints huge page
availability per setting with 95% bootstrap intervals, then plots it against the setting.

    python experiments/min_free_hugepages.py [--out DIR] [--workers N | --scheduler ADDR]
                                             [--days D] [--seeds N]
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

import fragsim
from fragsim.analysis import figures, stats
from fragsim.experiments._script import sweep_args

SPEC = Path(__file__).parent / "sweeps" / "min-free.toml"


def main() -> None:
    args, spec = sweep_args(__doc__ or "", SPEC, "results-min-free")
    runs, _, _ = fragsim.sweep(spec, args.out, workers=args.workers, scheduler=args.scheduler,
                               progress=True)
    # `min_free_kbytes` in `runs` is the value the kernel used (the default resolved).
    summary = stats.summarize(runs, "hugepages_pct", by=("kernel", "min_free_kbytes"))
    print("Huge pages allocatable at the end (% of memory), mean [95% bootstrap CI]:")
    print(summary.to_string(index=False))
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    for kernel, part in summary.groupby("kernel", observed=True):
        part = part.sort_values("min_free_kbytes")
        x = part["min_free_kbytes"].astype(float)
        ax.errorbar(x, part["mean"].astype(float),
                    yerr=[part["mean"] - part["ci_low"], part["ci_high"] - part["mean"]],
                    marker="o", capsize=3, label=str(kernel))
    ax.set_xscale("log")
    ax.set_xlabel("min_free_kbytes (kB)")
    ax.set_ylabel("huge pages allocatable (% of memory)")
    ax.legend(title="kernel")
    ax.grid(alpha=0.3)
    figures.save(fig, args.out / "min-free")
    print(f"\nfigure: {args.out}/min-free.png")


if __name__ == "__main__":
    main()

"""The real Linux 6.1 under UML against fragsim on the same load, stage by stage: one command.

    python experiments/uml/compare.py                     # fragsim 6.1 and 2.6.24, seeds 0-4
    python experiments/uml/compare.py --no-run            # only re-tabulate committed tables

It runs `run_fragsim.py`'s load for each `--kernels` preset and `--seeds` (each seed replays
the boot of one real run: `run_fragsim.boot_for_seed`), then reads the real guest's
`stages.csv` (`run_uml.py`'s, committed in `--real`) and each fragsim `stages.csv`, and writes
into `--out`:

- `comparison.csv`: per stage, metric and side (`linux` or `fragsim-KERNEL`): the number of
  runs, mean, min and max. Metrics: `high_order_free_share` (share of free memory in free
  blocks of order >= pageblock_order, `models.mm.metrics.high_order_free_share`),
  `free_pages`, and `pageblocks_<type>` for Unmovable, Movable, Reclaimable, HighAtomic and
  Isolate (the guest's kernel has no CONFIG_MEMORY_ISOLATION and prints no Isolate column:
  its Isolate count is 0), and Reserve (2.6.24's MIGRATE_RESERVE, for the 2.6.24 contrast;
  0 on 6.1);
- `comparison.md`: the same as Markdown tables, mean [min, max].
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
for _path in (HERE.parents[1], HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import run_fragsim  # noqa: E402
from run_uml import STAGES, Load  # noqa: E402

TYPES = ("unmovable", "movable", "reclaimable", "highatomic", "isolate", "reserve")
METRICS = ("high_order_free_share", "free_pages", *(f"pageblocks_{t}" for t in TYPES))
REAL = "linux"
NAMES = {"unmovable": "Unmovable", "movable": "Movable", "reclaimable": "Reclaimable",
         "highatomic": "HighAtomic", "isolate": "Isolate", "reserve": "Reserve"}


def side_stats(stages: pd.DataFrame, side: str) -> pd.DataFrame:
    """Per stage and metric: runs, mean, min, max of one side's stages table (a type the
    table has no column for counts 0 pageblocks)."""
    frame = stages.copy()
    for metric in METRICS:
        if metric not in frame:
            frame[metric] = 0
    long = frame.melt(["run", "stage"], list(METRICS), "metric", "value")
    stats = long.groupby(["stage", "metric"], sort=False)["value"].agg(
        ["count", "mean", "min", "max"]).reset_index()
    stats.insert(0, "side", side)
    return stats.rename(columns={"count": "runs"})


def comparison(real: pd.DataFrame, fragsim: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The long table of every side (module docstring), stages and metrics in order."""
    frames = [side_stats(real, REAL), *(side_stats(t, f"fragsim-{k}") for k, t in
                                        fragsim.items())]
    out = pd.concat(frames, ignore_index=True)
    out["stage"] = pd.Categorical(out["stage"], list(STAGES), ordered=True)
    out["metric"] = pd.Categorical(out["metric"], list(METRICS), ordered=True)
    sides = list(dict.fromkeys(out["side"]))
    out["side"] = pd.Categorical(out["side"], sides, ordered=True)
    out = out.sort_values(["stage", "metric", "side"]).reset_index(drop=True)
    for col in ("stage", "metric", "side"):
        out[col] = out[col].astype(str)
    return out


def _cell(row: pd.Series, pct: bool) -> str:
    k = 100.0 if pct else 1.0
    mean = k * float(row["mean"])
    lo, hi = k * float(row["min"]), k * float(row["max"])
    if pct:
        return f"{mean:.1f} [{lo:.1f}, {hi:.1f}]"
    text = f"{mean:.1f}" if mean != round(mean) else f"{mean:.0f}"
    return f"{text} [{lo:g}, {hi:g}]"


def markdown(table: pd.DataFrame) -> str:
    """Two tables: the free share and free MiB by stage and side; the pageblock census."""
    sides = list(dict.fromkeys(table["side"]))
    runs = {s: int(table[table["side"] == s]["runs"].max()) for s in sides}
    head = ", ".join(f"{s}: {runs[s]} run(s)" for s in sides)
    by = table.set_index(["stage", "side", "metric"])
    out = [f"Mean [min, max] over runs ({head}).", "",
           "Free share (% of free memory in free blocks of order >= pageblock order 10):", "",
           "| stage | " + " | ".join(sides) + " |", "|---" * (len(sides) + 1) + "|"]
    for stage in STAGES:
        out.append(f"| {stage} | " + " | ".join(
            _cell(by.loc[(stage, s, "high_order_free_share")], True) for s in sides) + " |")
    out += ["", "Pageblocks by migrate type (of 64):", "",
            "| stage | side | " + " | ".join(NAMES[t] for t in TYPES) + " |",
            "|---" * (len(TYPES) + 2) + "|"]
    for stage in STAGES:
        for s in sides:
            out.append(f"| {stage} | {s} | " + " | ".join(
                _cell(by.loc[(stage, s, f"pageblocks_{t}")], False) for t in TYPES) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--real", type=Path, default=HERE / "results",
                   help="the guest's tables and raw snapshots (default experiments/uml/results)")
    p.add_argument("--kernels", nargs="+", default=["6.1", "2.6.24"],
                   help="fragsim presets (default 6.1 2.6.24)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                   help="fragsim seeds, each replaying one real boot (default 0 1 2 3 4)")
    p.add_argument("--boots", type=Path, default=run_fragsim.RAW,
                   help="real boots the fragsim seeds replay (run-N/boot/pagetypeinfo; "
                   "default experiments/uml/results/boots)")
    p.add_argument("--out", type=Path, default=None, help="default: --real")
    p.add_argument("--no-run", action="store_true",
                   help="use the fragsim tables already in OUT/fragsim-KERNEL")
    args = p.parse_args(argv)
    out = args.out or args.real
    real_path = args.real / "stages.csv"
    if not real_path.exists():
        print(f"compare: error: no {real_path} (run run_uml.py first)", file=sys.stderr)
        return 2
    real = pd.read_csv(real_path)
    fragsim: dict[str, pd.DataFrame] = {}
    for kernel in args.kernels:
        folder = out / f"fragsim-{kernel}"
        if not args.no_run:
            try:
                run_fragsim.workload_for(kernel, args.seeds[0], Load())
            except ValueError as exc:
                print(f"compare: error: {exc}", file=sys.stderr)
                return 2
            run_fragsim.run_all(kernel, args.seeds, Load(), folder, raw=args.boots)
        fragsim[kernel] = pd.read_csv(folder / "stages.csv")
    table = comparison(real, fragsim)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "comparison.csv", index=False)
    text = markdown(table)
    (out / "comparison.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

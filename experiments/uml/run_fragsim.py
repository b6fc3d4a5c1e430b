"""Run load.sh's stages in fragsim and tabulate them exactly as run_uml.py tabulates the guest.

The workload is `fragsim-load.toml` (scenario `uml-load`, `fragsim.models.agents.umlload`):
the same stages and sizes as `load.sh` with `run_uml.Load`'s defaults, the page-cache stage
reading a tree of the very file sizes `run_uml.make_tree` writes into the guest's ext2 image.
After each stage the scenario renders the model's /proc/buddyinfo, /proc/pagetypeinfo and
/proc/vmstat (`fragsim.models.mm.procfs`); this driver writes them as `OUT/raw/seed-N/STAGE/`
files with a `stages` file, as `load.sh` does, and parses them with `run_uml.stage_rows` (the
code behind the guest's tables). Into OUT it writes `stages.csv`, `vmstat.csv`, `summary.csv`
and `summary.md` in run_uml.py's schema; the `run` column holds the seed.

    python experiments/uml/run_fragsim.py --kernel 6.1 --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
# run_uml.py beside this file, and this checkout's `fragsim` package before an installed one.
for _path in (HERE.parents[1], HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from run_uml import VMSTAT, Load, markdown, stage_rows, summarize, tree_sizes  # noqa: E402

from fragsim.models.agents.umlload import STAGES, BootSnapshot  # noqa: E402
from fragsim.models.mm.geometry import MiB  # noqa: E402
from fragsim.models.mm.procparse import Pagetypeinfo, parse_proc  # noqa: E402
from fragsim.sim.config import load_workload  # noqa: E402

WORKLOAD = HERE / "fragsim-load.toml"
#: Boots of the real guest (run_uml.py's `raw/run-N/boot/`, of 5 runs of the load kept for
#: their boot snapshots): the boots the fragsim runs replay.
RAW = HERE / "results" / "boots"
#: The model's counters beside the guest's (`page_kinds` and vmstat names), for vmstat.csv.
MODEL_VMSTAT = (*VMSTAT, "nr_kernel_pages", "pgsteal", "allocstall", "extfrag_fallback",
                "pageblock_claimed", "alloc_fail")


def workload_for(kernel: str, seed: int, load: Load) -> Any:
    """`fragsim-load.toml` with the kernel, the seed and the load's sizes."""
    return load_workload(str(WORKLOAD), overrides={
        "kernel.version": kernel, "run.seed": seed,
        "machine.memory": load.mem_mib * MiB, "boot.present_pages": load.mem_mib * MiB >> 12,
        "load.anon_mib": load.anon_mib, "load.forks": load.forks,
        "load.fork_mib": load.fork_mib, "load.write_mib": load.write_mib})


def boot_snapshot(path: Path) -> BootSnapshot:
    """The one zone of a real boot's /proc/pagetypeinfo (parsed by `procparse`)."""
    pti = parse_proc(path.read_text(), str(path))
    if not isinstance(pti, Pagetypeinfo) or len(pti.zones) != 1:
        raise ValueError(f"{path}: not a pagetypeinfo of one zone")
    zone = pti.zones[0]
    return BootSnapshot(free=dict(zone.free), pageblocks=dict(zone.pageblocks))


def boot_for_seed(seed: int, raw: Path = RAW) -> Path:
    """The real boot a seed replays: of the runs in `raw` with a boot pagetypeinfo, in run
    order, number `seed` modulo their count (so seeds 0, 1, ... pair with runs 1, 2, ...)."""
    boots = sorted((int(d.name.split("-")[1]), d / "boot" / "pagetypeinfo")
                   for d in raw.glob("run-*") if (d / "boot" / "pagetypeinfo").exists())
    if not boots:
        raise ValueError(f"no real boot snapshot (run-N/boot/pagetypeinfo) in {raw}")
    return boots[seed % len(boots)][1]


def run_seed(kernel: str, seed: int, load: Load, snaps: Path, boot: Path) -> None:
    """One fragsim run of the load from the real `boot` snapshot; its snapshots into `snaps`
    (load.sh's layout; `boot_from` names the replayed snapshot)."""
    from fragsim.sim.engine import Environment

    env = Environment(workload_for(kernel, seed, load))
    scenario = env.scenario
    scenario.boot_snapshot = boot_snapshot(boot)
    scenario.tree = np.array(tree_sizes(load.cache_mib, load.seed), np.int64)
    scenario.start()
    env.run(until=scenario.done)
    shutil.rmtree(snaps, ignore_errors=True)
    snaps.mkdir(parents=True)
    lines = []
    for stage, t, views in scenario.snapshots:
        (snaps / stage).mkdir()
        for name, text in views.items():
            (snaps / stage / name).write_text(text)
        lines.append(f"{stage} {t:.2f}\n")
    (snaps / "stages").write_text("".join(lines))
    (snaps / "kernel").write_text(f"fragsim {kernel}\n")
    (snaps / "boot_from").write_text(f"{boot.parent.parent.name}\n")


def run_all(kernel: str, seeds: list[int], load: Load, out: Path,
            raw: Path = RAW) -> pd.DataFrame:
    """Every seed, each from its real boot in `raw` (`boot_for_seed`); the tables into `out`
    (run_uml.py's); returns the stages table."""
    zone_rows: list[dict[str, object]] = []
    vm_rows: list[dict[str, object]] = []
    for seed in seeds:
        snaps = out / "raw" / f"seed-{seed}"
        boot = boot_for_seed(seed, raw)
        print(f"fragsim {kernel}, seed {seed}, boot of {boot.parent.parent.name}",
              file=sys.stderr)
        run_seed(kernel, seed, load, snaps, boot)
        zones, counters = stage_rows(seed, snaps, MODEL_VMSTAT)
        zone_rows += zones
        vm_rows += counters
    stages, vmstat = pd.DataFrame(zone_rows), pd.DataFrame(vm_rows)
    if tuple(stages["stage"].unique()) != STAGES:
        raise RuntimeError(f"stages {tuple(stages['stage'].unique())} are not {STAGES}")
    summary = summarize(stages, vmstat)
    out.mkdir(parents=True, exist_ok=True)
    stages.to_csv(out / "stages.csv", index=False)
    vmstat.to_csv(out / "vmstat.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    header = f"fragsim {kernel} (experiments/uml/fragsim-load.toml), load {asdict(load)}\n\n"
    (out / "summary.md").write_text(header + markdown(summary, len(seeds)))
    return stages


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    d = Load()
    p.add_argument("--kernel", default="6.1", help="kernel preset (default 6.1)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                   help="run.seed values, each replaying one real boot (default 0 1 2 3 4)")
    p.add_argument("--raw", type=Path, default=RAW,
                   help="real runs (run-N/boot/) whose boots the seeds replay (default "
                   "experiments/uml/results/boots)")
    p.add_argument("--out", type=Path, default=None,
                   help="tables and raw snapshots (default experiments/uml/results/"
                   "fragsim-KERNEL)")
    for name, value in asdict(d).items():
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=value,
                       help=f"load: {name} (default {value}; seed draws the file tree)")
    args = p.parse_args(argv)
    load = Load(**{name: getattr(args, name) for name in asdict(d)})
    out = args.out or HERE / "results" / f"fragsim-{args.kernel}"
    try:
        workload_for(args.kernel, args.seeds[0], load)
    except ValueError as exc:
        print(f"run_fragsim: error: {exc}", file=sys.stderr)
        return 2
    if min(args.seeds) < 0:
        print("run_fragsim: error: --seeds must be >= 0", file=sys.stderr)
        return 2
    try:
        boot_for_seed(0, args.raw)
    except ValueError as exc:
        print(f"run_fragsim: error: {exc}", file=sys.stderr)
        return 2
    run_all(args.kernel, args.seeds, load, out, args.raw)
    print((out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

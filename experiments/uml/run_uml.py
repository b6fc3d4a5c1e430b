"""Boot the real Linux 6.1 allocator under user-mode-linux with a scripted load and tabulate it.

Each run boots Debian's `linux.uml` with the host file system as root (hostfs) and `load.sh`
as init. The load reads a tree of files from an ext2 image (`ubd0`), holds anonymous memory,
forks, writes more than memory to the ext2 file system, frees it all, drops caches and
compacts; after every stage `load.sh` copies /proc/buddyinfo, /proc/pagetypeinfo and
/proc/vmstat into `OUT/raw/run-N/STAGE/`. The driver parses them with
`fragsim.models.mm.procparse` and writes, into OUT:

- `stages.csv`: one row per run, stage and zone: `high_order_free_share` (free memory in
  blocks of order >= pageblock_order, `models.mm.metrics`), `free_pages`, and
  `pageblocks_<type>` (pagetypeinfo's "Number of blocks type" table);
- `vmstat.csv`: the reclaim, compaction and memory counters of `VMSTAT` per run and stage;
- `summary.csv` and `summary.md`: per stage and zone, mean, min and max over the runs.

    python experiments/uml/run_uml.py --runs 3 --out experiments/uml/results
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fragsim.models.mm.metrics import high_order_free_share
from fragsim.models.mm.procparse import Buddyinfo, Pagetypeinfo, parse_proc

HERE = Path(__file__).resolve().parent
STAGES = ("boot", "page_cache", "anon", "forks", "ext2_write", "freed", "drop_caches",
          "compact")
VMSTAT = ("nr_free_pages", "nr_file_pages", "nr_anon_pages", "nr_slab_reclaimable",
          "nr_slab_unreclaimable", "nr_page_table_pages", "nr_kernel_stack", "pgscan_kswapd",
          "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct", "compact_stall",
          "compact_success", "compact_fail", "compact_migrate_scanned", "compact_free_scanned",
          "pgmigrate_success", "pgmigrate_fail")


class UmlError(RuntimeError):
    """A boot that timed out, failed, or left stages without snapshots."""


@dataclass(frozen=True)
class Load:
    """The load's sizes (MiB unless named otherwise); `seed` draws the file tree."""

    mem_mib: int = 256
    cache_mib: int = 96
    anon_mib: int = 48
    forks: int = 32
    fork_mib: int = 1
    write_mib: int = 384
    seed: int = 0


def _tree_files(total_mib: int, seed: int) -> Iterator[tuple[int, bytes]]:
    """The tree's files in order: (index, contents). Lognormal sizes (median 16 KiB, at most
    4 MiB) summing to `total_mib`; seeded, so every run and machine gets the same tree."""
    rng = np.random.default_rng(seed)
    left, n = total_mib << 20, 0
    while left > 0:
        size = min(left, int(min(rng.lognormal(np.log(16384), 1.5), 4 << 20)) + 1)
        yield n, rng.bytes(size)
        left -= size
        n += 1


def make_tree(root: Path, total_mib: int, seed: int) -> int:
    """The files of `_tree_files`, 100 to a directory; returns how many."""
    count = 0
    for n, data in _tree_files(total_mib, seed):
        folder = root / f"d{n // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{n:05d}").write_bytes(data)
        count = n + 1
    return count


def tree_sizes(total_mib: int, seed: int) -> list[int]:
    """The sizes in bytes of the files `make_tree` writes, in order (the fragsim side reads a
    tree of the same sizes: `run_fragsim.py`)."""
    return [len(data) for _, data in _tree_files(total_mib, seed)]


def make_image(image: Path, tree: Path, load: Load) -> None:
    """A sparse ext2 image holding `tree` as /tree, with room for the dd of `write_mib`."""
    size_mib = load.cache_mib * 5 // 4 + load.write_mib + 32
    with image.open("wb") as f:
        f.truncate(size_mib << 20)
    subprocess.run(["mkfs.ext2", "-q", "-F", "-d", str(tree.parent), str(image)],
                   check=True, capture_output=True)


def compile_hog(dest: Path) -> Path:
    """hog.c compiled for the host, which is the guest's user space through hostfs."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise UmlError("no C compiler (cc or gcc) to build hog.c")
    subprocess.run([cc, "-O2", "-o", str(dest), str(HERE / "hog.c")], check=True)
    return dest


def boot(uml: str, load: Load, image: Path, hog: Path, snaps: Path, timeout: float,
         aslr: bool = False) -> None:
    """One boot of `load.sh`; its console goes to `snaps/console.log`. The guest runs in a
    session of its own so that a timeout kills it and its process stubs, and nothing else.

    Without `aslr` it runs under `setarch -R`: with address randomisation UML adds the host's
    "exec-shield gap" (40-900 MB, different every boot) to its physical memory as reserved
    pages, which changes the zone's span and pageblock count from run to run.
    """
    snaps.mkdir(parents=True, exist_ok=True)
    env = {"UML_OUT": snaps.resolve(), "UML_HOG": hog, "UML_ANON_MIB": load.anon_mib,
           "UML_FORKS": load.forks, "UML_FORK_MIB": load.fork_mib,
           "UML_WRITE_MIB": load.write_mib}
    setarch = shutil.which("setarch")
    prefix = [] if aslr or setarch is None else [setarch, os.uname().machine, "-R"]
    cmd = [*prefix, uml, f"mem={load.mem_mib}M", "root=/dev/root", "rootfstype=hostfs",
           "rootflags=/", "rw", f"ubd0={image}", f"init={HERE / 'load.sh'}",
           *(f"{k}={v}" for k, v in env.items())]
    with (snaps / "console.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise UmlError(f"the guest did not power off in {timeout:.0f} s; see "
                           f"{snaps / 'console.log'}") from None
    if not (snaps / "done").exists():
        tail = (snaps / "console.log").read_text(errors="replace").splitlines()[-5:]
        raise UmlError(f"load.sh did not finish (exit {proc.returncode}): " + " | ".join(tail))


def read_stages(snaps: Path) -> list[tuple[str, float]]:
    """The (stage, uptime in s) pairs `load.sh` logged, in order."""
    pairs = [line.split() for line in (snaps / "stages").read_text().splitlines()]
    return [(name, float(uptime)) for name, uptime in pairs]


def stage_rows(run: int, snaps: Path, counters_kept: tuple[str, ...] = VMSTAT,
               ) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Zone rows and vmstat rows (the counters of `counters_kept`) of every stage of one
    run's snapshots (run_fragsim.py parses the model's with the same code)."""
    zones: list[dict[str, object]] = []
    counters: list[dict[str, object]] = []
    for stage, uptime in read_stages(snaps):
        folder = snaps / stage
        buddy = parse_proc((folder / "buddyinfo").read_text(), str(folder / "buddyinfo"))
        pti = parse_proc((folder / "pagetypeinfo").read_text(), str(folder / "pagetypeinfo"))
        if not isinstance(buddy, Buddyinfo) or not isinstance(pti, Pagetypeinfo):
            raise UmlError(f"{folder}: buddyinfo or pagetypeinfo is not what it should be")
        if pti.pageblock_order is None:
            raise UmlError(f"{folder}/pagetypeinfo has no 'Page block order' header")
        blocks = {(z.node, z.zone): z.pageblocks for z in pti.zones}
        for z in buddy.zones:
            zones.append({
                "run": run, "stage": stage, "uptime_s": uptime, "node": z.node,
                "zone": z.zone, "pageblock_order": pti.pageblock_order,
                "free_pages": sum(c << o for o, c in enumerate(z.nr_free)),
                "high_order_free_share": high_order_free_share(z.nr_free, pti.pageblock_order),
                **{f"pageblocks_{t.lower()}": blocks.get((z.node, z.zone), {}).get(t, 0)
                   for t in pti.block_types},
            })
        vmstat = dict(line.split() for line in (folder / "vmstat").read_text().splitlines())
        counters += [{"run": run, "stage": stage, "counter": name, "value": int(vmstat[name])}
                     for name in counters_kept if name in vmstat]
    return zones, counters


def summarize(stages: pd.DataFrame, vmstat: pd.DataFrame) -> pd.DataFrame:
    """Per stage and zone: mean, min and max over runs of each measured column (long form)."""
    measured = ["high_order_free_share", "free_pages",
                *(c for c in stages.columns if c.startswith("pageblocks_"))]
    long = stages.melt(["run", "stage", "node", "zone"], measured, "metric", "value")
    counters = vmstat.rename(columns={"counter": "metric"}).assign(node=-1, zone="")
    both = pd.concat([long, counters[long.columns]], ignore_index=True)
    both["stage"] = pd.Categorical(both["stage"], [s for s in STAGES
                                                   if s in set(both["stage"])], ordered=True)
    # Metrics in table order, so the pageblock types keep the kernel's order.
    both["metric"] = pd.Categorical(both["metric"], list(dict.fromkeys(both["metric"])),
                                    ordered=True)
    stats = both.groupby(["stage", "node", "zone", "metric"], observed=True, sort=True)["value"]
    return stats.agg(["mean", "min", "max", "count"]).reset_index()


def markdown(summary: pd.DataFrame, runs: int) -> str:
    """A Markdown table per zone: stage rows; free share and pageblocks, mean [min, max]."""
    cols = ["high_order_free_share", "free_pages",
            *dict.fromkeys(m for m in summary["metric"] if m.startswith("pageblocks_")),
            "pgscan_kswapd", "pgscan_direct", "compact_stall", "pgmigrate_success"]

    def cell(row: pd.Series, pct: bool) -> str:
        k = 100.0 if pct else 1.0
        fmt = "{:.1f}" if pct or row["mean"] != round(row["mean"]) else "{:.0f}"
        return (fmt.format(k * row["mean"]) + " [" + "{:g}".format(round(k * row["min"], 1))
                + ", " + "{:g}".format(round(k * row["max"], 1)) + "]")

    out = []
    zones = summary[summary["node"] >= 0][["node", "zone"]].drop_duplicates()
    for node, zone in zones.itertuples(index=False):
        sel = summary[((summary["node"] == node) & (summary["zone"] == zone))
                      | (summary["node"] < 0)]
        out += [f"Node {node}, zone {zone}: mean [min, max] over {runs} run(s); free share "
                "in % of free pages; vmstat counters are cumulative since boot.", "",
                "| stage | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for stage, rows in sel.groupby("stage", observed=True, sort=True):
            by = rows.set_index("metric")
            out.append(f"| {stage} | " + " | ".join(
                cell(by.loc[c], c == "high_order_free_share") if c in by.index else "-"
                for c in cols) + " |")
        out.append("")
    return "\n".join(out)


def run_all(uml: str, load: Load, runs: int, out: Path, timeout: float,
            aslr: bool = False) -> pd.DataFrame:
    """`runs` boots of `load`; writes the tables into `out` and returns the summary."""
    zone_rows: list[dict[str, object]] = []
    vm_rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="fragsim-uml-") as tmp:
        work = Path(tmp)
        files = make_tree(work / "src" / "tree", load.cache_mib, load.seed)
        hog = compile_hog(work / "hog")
        for run in range(1, runs + 1):
            snaps = out / "raw" / f"run-{run}"
            shutil.rmtree(snaps, ignore_errors=True)
            make_image(work / "ext2.img", work / "src" / "tree", load)
            print(f"run {run}/{runs}: booting {uml} (mem={load.mem_mib}M, {files} files)",
                  file=sys.stderr)
            boot(uml, load, work / "ext2.img", hog, snaps, timeout, aslr)
            (work / "ext2.img").unlink()
            zones, counters = stage_rows(run, snaps)
            zone_rows += zones
            vm_rows += counters
    stages, vmstat = pd.DataFrame(zone_rows), pd.DataFrame(vm_rows)
    summary = summarize(stages, vmstat)
    stages.to_csv(out / "stages.csv", index=False)
    vmstat.to_csv(out / "vmstat.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    kernel = (out / "raw" / "run-1" / "kernel").read_text().strip()
    header = f"Linux {kernel} (user-mode-linux), load {asdict(load)}\n\n"
    (out / "summary.md").write_text(header + markdown(summary, runs))
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    d = Load()
    p.add_argument("--runs", type=int, default=3, help="boots (default 3)")
    p.add_argument("--out", type=Path, default=Path("uml-results"),
                   help="tables and raw snapshots (default uml-results)")
    p.add_argument("--uml", default="linux.uml", help="the UML kernel (default linux.uml)")
    p.add_argument("--aslr", action="store_true",
                   help="leave address randomisation on (UML's memory map then varies by boot)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds a boot may take")
    for name, value in asdict(d).items():
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=value,
                       help=f"load: {name} (default {value})")
    args = p.parse_args(argv)
    uml = shutil.which(args.uml)
    if uml is None:
        print(f"run_uml: error: no UML kernel {args.uml!r} (apt-get install user-mode-linux)",
              file=sys.stderr)
        return 2
    if args.runs < 1:
        print("run_uml: error: --runs must be at least 1", file=sys.stderr)
        return 2
    load = Load(**{name: getattr(args, name) for name in asdict(d)})
    args.out = args.out.resolve()  # the guest's cwd is /: hand it an absolute path
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        run_all(uml, load, args.runs, args.out, args.timeout, args.aslr)
    except (UmlError, subprocess.CalledProcessError) as exc:
        print(f"run_uml: error: {exc}", file=sys.stderr)
        return 1
    print((args.out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

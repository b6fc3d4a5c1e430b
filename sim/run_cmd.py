"""`fragsim run WORKLOAD`: one simulated machine over days of uptime, tables to Parquet.

WORKLOAD is a built-in workload (`desktop`, `stress-highalloc`), a `.toml` file, or `-` for a
workload on standard input. Options override its keys: `--kernel`, `--memory`, `--days`,
`--seed`, `--min-free-kbytes`, and `--set section.key=value` for any other. The run prints a
short summary on standard output and, with `--out DIR`, writes `runs`, `samples` and `events`
as Parquet (plus `config.json`). A run that fails still writes its tables (the error is in its
`runs` row) and exits 1; Ctrl-C writes what was collected and exits 130.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fragsim.models.mm.geometry import parse_size
from fragsim.models.mm.profiles import KERNEL_PROFILES
from fragsim.sim.config import Workload, load_workload
from fragsim.sim.errors import UsageError
from fragsim.sim.progress import run_progress, want_progress
from fragsim.sim.run import RunResult, _Interrupted, run_workload, write_tables

__all__ = ["add_common_options", "add_parser", "overrides", "run", "summary_text"]


def add_common_options(p: argparse.ArgumentParser) -> None:
    """The options `run` and `reproduce` share."""
    p.add_argument("--memory", metavar="SIZE", help="machine.memory (e.g. 1GiB)")
    p.add_argument("--days", metavar="N", help="run.days: simulated uptime (desktop)")
    p.add_argument("--min-free-kbytes", metavar="N",
                   help="kernel.min_free_kbytes (default: the kernel's formula)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any workload key, e.g. files.reads_per_min=30 (repeatable)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "run", help="simulate one machine over days of uptime",
        description="Run a workload (desktop, stress-highalloc, or a TOML file) on one kernel "
                    "and write its runs, samples and events tables.")
    p.add_argument("workload", metavar="WORKLOAD",
                   help="desktop, stress-highalloc, a .toml file, or - for stdin")
    p.add_argument("--kernel", metavar="VERSION",
                   help=f"kernel.version: {', '.join(KERNEL_PROFILES)}")
    p.add_argument("--seed", metavar="N", help="run.seed")
    add_common_options(p)
    p.add_argument("--out", metavar="DIR", help="write Parquet tables into DIR")
    p.set_defaults(run=run)
    return p


def _int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{name} {text!r} is not an integer") from None


def _float(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{name} {text!r} is not a number") from None


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Typed workload values from the command-line options."""
    out: dict[str, Any] = {}
    if getattr(args, "kernel", None):
        out["kernel.version"] = args.kernel
    if args.memory:
        out["machine.memory"] = parse_size(args.memory)
    if args.days:
        out["run.days"] = _float("--days", args.days)
    if getattr(args, "seed", None):
        out["run.seed"] = _int("--seed", args.seed)
    if args.min_free_kbytes:
        out["kernel.min_free_kbytes"] = _int("--min-free-kbytes", args.min_free_kbytes)
    return out


def load(args: argparse.Namespace) -> Workload:
    text = None
    spec = args.workload
    if spec == "-":
        text = sys.stdin.read()
        spec = "<stdin>"
    return load_workload(spec, overrides(args), args.set, text=text)


def _simulated(seconds: float) -> str:
    if seconds >= 86400.0:
        return f"{seconds / 86400.0:.2f} simulated days"
    return f"{seconds / 60.0:.1f} simulated minutes"


def summary_text(result: RunResult) -> str:
    """A few lines about one run."""
    row = result.summary
    lines = [f"run {row['run_id']}: {row['workload']} on {row['kernel']}, "
             f"{row['memory_bytes'] >> 20} MiB, seed {row['seed']}, "
             f"min_free_kbytes {row['min_free_kbytes']}: {row['status']} "
             f"in {row['wall_s']:.1f} s wall, " + _simulated(float(row['sim_s']))]
    if row.get("error"):
        lines.append(f"  error: {row['error']}")
    if row.get("probes"):
        lines.append(f"  huge pages (hugepages_get at the end): {row['hugepages_pct']:.1f}% "
                     f"of memory ({row['probes']} probes)")
    for i in (1, 2, 3):
        key = f"pass{i}_pct"
        if key in row:
            label = "at rest" if i == 3 else "under load"
            lines.append(f"  stress-highalloc pass {i} ({label}): {row[key]:.1f}% of attempts")
    lines.append(f"  extfrag fallbacks {row.get('extfrag_fallback', 0)}, allocation failures "
                 f"{row.get('alloc_fail', 0)}, direct reclaim stalls {row.get('allocstall', 0)}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    workload = load(args)
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out!r} exists and is not a directory")
    bar = None
    update = None
    if want_progress(args.progress):
        total = workload.run.days * 86400.0 if workload.scenario == "desktop" else None
        bar, update = run_progress(f"{workload.name} {workload.kernel.version}", total)
    try:
        result = run_workload(workload, progress=update)
    except _Interrupted as exc:
        if bar is not None:
            bar.close()
        if out is not None:
            write_tables(exc.result, out)
            print(f"fragsim: interrupted; tables so far written to {out}", file=sys.stderr)
        else:
            print("fragsim: interrupted", file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
    if out is not None:
        write_tables(result, out)
        (out / "workload.json").write_text(json.dumps(workload.flat(), default=str, indent=1)
                                           + "\n")
    sys.stdout.write(summary_text(result))
    if out is not None:
        print(f"  tables: {out}/runs.parquet, samples.parquet, events.parquet")
    if not result.ok:
        print(f"fragsim: error: run {result.summary['status']}: {result.summary['error']}",
              file=sys.stderr)
        return 1
    return 0

"""`fragsim sweep SPEC.toml --out DIR`: every run of a sweep spec, resumable, locally or on Dask.

Runs go to a local process pool (`--workers N`, default: the cpus), or to a Dask cluster with
`--scheduler tcp://HOST:PORT` (`local:N` starts a `LocalCluster` of N workers on loopback). Each
finished run is one Parquet file per table in `DIR` (`fragsim.sim.store`); running the same
command again skips finished runs and redoes damaged ones, so an interrupted sweep loses at most
the runs in flight. `--dry-run` prints the plan (one line per run) and runs nothing. The spec is
checked whole before anything runs; a failed run is reported and the sweep goes on (exit 1 at
the end); Ctrl-C keeps every finished run (exit 130).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fragsim.sim.errors import UsageError, positive_int
from fragsim.sim.progress import want_progress

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sweep", help="run a sweep spec (factors x seeds) into a resumable Parquet dataset",
        description="Expand a sweep spec into runs and run them on a local process pool or a "
                    "Dask cluster; results land in --out, one Parquet file per run and table.")
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep spec")
    p.add_argument("--out", metavar="DIR", help="results directory (default: the spec's name)")
    p.add_argument("--workers", metavar="N", help="local worker processes (default: cpus)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler: tcp://HOST:PORT, or local:N for a LocalCluster")
    p.add_argument("--connect-timeout", type=float, default=20.0, metavar="S",
                   help="seconds to wait for a tcp:// scheduler (default 20)")
    p.add_argument("--retry-failed", action="store_true",
                   help="run again the runs that failed in an earlier invocation")
    p.add_argument("--dry-run", action="store_true", help="print the runs and exit")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    from fragsim.sim import sweep as sw

    workers = positive_int("--workers", args.workers)
    if args.scheduler and args.workers:
        raise UsageError("--workers is for the local pool: with --scheduler, size the cluster")
    if args.scheduler:
        text = args.scheduler
        if not (text.startswith(("tcp://", "tls://", "inproc://", "ws://", "wss://"))
                or (text.startswith("local:") and text[6:].isdigit() and int(text[6:]) >= 1)):
            raise UsageError(f"--scheduler {text!r}: use tcp://HOST:PORT or local:N (N >= 1)")
    if not args.connect_timeout > 0:
        raise UsageError(f"--connect-timeout {args.connect_timeout} must be positive")
    spec_path = Path(args.spec)
    if not spec_path.is_file():
        raise UsageError(f"no such sweep spec: {args.spec}")
    spec = sw.load_spec(spec_path)
    plan = sw.expand(spec)
    if args.dry_run:
        for r in plan:
            values = " ".join(f"{k}={v}" for k, v in r.values.items())
            print(f"{r.run_id} seed={r.seed} {values}".rstrip())
        print(f"{len(plan)} runs of {spec.name}", file=sys.stderr)
        return 0
    out = Path(args.out) if args.out else Path(spec.name)
    from fragsim.sim.store import ResultStore

    ResultStore(out).check(sw.manifest(spec, plan))  # refuse before the banner
    where = args.scheduler or f"{workers or sw.default_workers()} local worker(s)"
    print(f"fragsim sweep {spec.name}: {len(plan)} runs ({len(spec.seeds)} seeds) on {where} "
          f"into {out}/", file=sys.stderr)
    outcome = sw.SweepOutcome()
    try:
        sw.sweep(spec, out, workers=workers, scheduler=args.scheduler,
                 progress=want_progress(args.progress), retry_failed=args.retry_failed,
                 report=lambda text: print(f"fragsim: {text}", file=sys.stderr),
                 outcome=outcome, connect_timeout_s=args.connect_timeout)
    except KeyboardInterrupt:
        print(f"fragsim: interrupted: {outcome.ran} run(s) of this invocation are in {out}/; "
              "run the same command again to finish the sweep", file=sys.stderr)
        return 130
    print(f"{outcome.planned} runs: {outcome.skipped} already finished, {outcome.ran} run now "
          f"({outcome.failed} failed, {outcome.redone} redone) in {outcome.wall_s:.1f} s; "
          f"results in {out}/")
    return 1 if outcome.failed else 0

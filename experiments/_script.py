"""What the example scripts share: their options, and the spec they run with them applied."""

from __future__ import annotations

import argparse
from pathlib import Path

from fragsim.sim.sweep import Spec, load_spec


def sweep_args(doc: str, spec_path: Path, out: str) -> tuple[argparse.Namespace, Spec]:
    """Parse `--out --workers --scheduler --days --seeds`; the spec with `--days` and
    `--seeds` applied (another sweep, with other run ids, when either is given)."""
    spec = load_spec(spec_path)
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(out), help=f"results (default {out})")
    p.add_argument("--workers", type=int, help="local worker processes (default: cpus)")
    p.add_argument("--scheduler", help="Dask: tcp://HOST:PORT or local:N")
    p.add_argument("--days", type=float,
                   help=f"simulated days per run (the spec: {spec.base.get('run.days')})")
    p.add_argument("--seeds", type=int, help=f"seeds (the spec: {len(spec.seeds)})")
    args = p.parse_args()
    if args.days is not None or args.seeds is not None:
        spec = spec.with_base({"run.days": args.days} if args.days else {}, seeds=args.seeds)
    return args, spec

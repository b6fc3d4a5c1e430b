"""`fragsim replay` throughput and peak memory on large traces: prints `key: value` lines.

Writes traces of about 1M and 4M event lines with `experiments/traces/make_sample_trace.py`
(`--trace-dir` keeps them between runs), warms the numba cache with one small replay, then runs
`fragsim replay TRACE` (default 1 GiB, summary view) in a new process for each trace, `--repeat`
times. Per trace it prints the best wall time of the whole process (interpreter start, imports,
machine boot and exit included: `end_to_end`), the time inside `main()` from the child's
own clock (`in_process`), events read per second of each, and the child's peak RSS (the most
over the repeats). An empty trace gives the fixed cost every run pays. `--rev` measures another
commit (cloned into a temporary directory and run from there), for the figures before a change.

    python benchmarks/bench_replay.py [--events 1000000,4000000] [--trace-dir DIR] [--rev REV]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import contextlib, io, sys, time
t0 = time.perf_counter()
from fragsim.sim.cli import main
t1 = time.perf_counter()
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    code = main(["replay", sys.argv[1], "--memory", sys.argv[2]])
t2 = time.perf_counter()
events = [l.split(": ")[1] for l in out.getvalue().splitlines() if l.startswith("events_read")]
print(code, events[0], f"{t1 - t0:.3f}", f"{t2 - t1:.3f}")
"""


def run_child(checkout: Path, cache: Path, trace: Path, memory: str) -> tuple[float, int, float,
                                                                              int]:
    """(wall s, events read, in-process main() s, peak RSS KiB) of one replay process."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT", "PYTHONPATH")}
    env["XDG_CACHE_HOME"] = str(cache)
    env["PYTHONPATH"] = str(checkout)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(trace), memory], cwd=checkout,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"replay of {trace} failed:\n{err}")
    code, events, _, main_s = out.split()
    assert code == "0"
    return wall, int(events), float(main_s), int(usage.ru_maxrss)


def make_trace(checkout: Path, events: int, path: Path) -> None:
    if path.exists():
        return
    subprocess.run([sys.executable, str(ROOT / "experiments" / "traces" / "make_sample_trace.py"),
                    "--events", str(events), "-o", str(path)], check=True, cwd=checkout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="1000000,4000000", help="trace sizes (event lines)")
    parser.add_argument("--trace-dir", default=None, help="where traces are kept (default: tmp)")
    parser.add_argument("--memory", default="1GiB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rev", default=None, help="measure this commit instead of the tree")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fragsim-replay-") as tmp:
        work = Path(tmp)
        checkout = ROOT
        if args.rev:
            checkout = work / "checkout"
            subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(checkout)],
                           check=True)
            subprocess.run(["git", "-C", str(checkout), "checkout", "-q", args.rev], check=True)
        traces_dir = Path(args.trace_dir) if args.trace_dir else work
        traces_dir.mkdir(parents=True, exist_ok=True)
        cache = work / "cache"
        run_child(checkout, cache, ROOT / "experiments" / "traces" / "sample-kmem.trace",
                  args.memory)  # compile (or load) everything the replay uses
        empty = work / "empty.trace"
        empty.write_text("")
        print(f"memory: {args.memory}")
        wall = min(run_child(checkout, cache, empty, args.memory)[0]
                   for _ in range(args.repeat))
        print(f"empty_trace_end_to_end_s: {wall:.3f}")
        for n in (int(x) for x in args.events.split(",")):
            trace = traces_dir / f"kmem-{n}.trace"
            make_trace(checkout, n, trace)
            runs = [run_child(checkout, cache, trace, args.memory) for _ in range(args.repeat)]
            events = runs[0][1]
            best_wall = min(r[0] for r in runs)
            best_main = min(r[2] for r in runs)
            rss = max(r[3] for r in runs)
            label = f"{n // 1_000_000}M" if n % 1_000_000 == 0 else str(n)
            print(f"trace_{label}_bytes: {trace.stat().st_size}")
            print(f"trace_{label}_events: {events}")
            print(f"trace_{label}_end_to_end_s: {best_wall:.3f}")
            print(f"trace_{label}_end_to_end_events_per_s: {events / best_wall:.0f}")
            print(f"trace_{label}_in_process_s: {best_main:.3f}")
            print(f"trace_{label}_in_process_events_per_s: {events / best_main:.0f}")
            print(f"trace_{label}_peak_rss_mib: {rss / 1024:.1f}")


if __name__ == "__main__":
    main()

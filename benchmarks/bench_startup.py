"""Start-up cost from an empty numba cache, on fresh clones: prints one `key: value` line each.

Clones this repository (at `--rev`, default HEAD) twice into a temporary directory and runs
each step in a new Python process that imports `fragsim` from the clone (PYTHONPATH) with
XDG_CACHE_HOME pointing at an empty temporary directory (NUMBA_CACHE_DIR unset):

1. `first_alloc`: import, boot a 64 MiB machine, allocate one page (cold cache, clone A), then
   `alloc_many` + `free_batch` (what the batch entry points add to the single-page ones);
2. `first_replay`: `fragsim replay experiments/traces/sample-kmem.trace --memory 64MiB` with
   another empty cache (clone A);
3. both again on clone A (warm), then on clone B, a second clone of the same commit at another
   path, sharing clone A's caches: it should compile nothing.

Each line gives the wall time of the whole process (interpreter start included) and how many
functions numba compiled in it. `--tests` also makes clone A a venv of its own (`pip install
-e '.[test]'`, not timed) and times the default test run (`python -m pytest -q`) there with an
empty cache. The venv running this script supplies numba and numpy;
the clone supplies every fragsim source. For the figures before a change, run this script
with `--rev` at the older commit.

    python benchmarks/bench_startup.py [--rev HEAD] [--tests]
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

#: Runs in the child: counts numba compilations of fragsim functions, then does the step.
PRELUDE = """
import sys, time
t0 = time.perf_counter()
from numba.core import event
compiled = []
class Count(event.Listener):
    def on_start(self, ev):
        pass
    def on_end(self, ev):
        fn = ev.data["dispatcher"].py_func
        if fn.__module__.startswith("fragsim."):
            compiled.append(fn.__qualname__)
event.register("numba:compile", Count())
"""

FIRST_ALLOC = PRELUDE + """
from fragsim.models.mm.machine import Machine, MachineConfig
t1 = time.perf_counter()
m = Machine(MachineConfig(memory=64 << 20))
t2 = time.perf_counter()
pfn = m.alloc(0)
t3 = time.perf_counter()
assert pfn >= 0
n = len(compiled)
m.free_batch(m.alloc_many(0, 4))
t4 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f} {n} {t4 - t3:.3f} {len(compiled) - n}")
"""

FIRST_REPLAY = PRELUDE + """
import contextlib, io
from fragsim.sim.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    code = main(["replay", "experiments/traces/sample-kmem.trace", "--memory", "64MiB"])
assert code == 0 and "events_read: " in out.getvalue()
print(f"{time.perf_counter() - t0:.3f} 0 0 {len(compiled)} 0 0")
"""


def clone(rev: str, into: Path) -> Path:
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(into)], check=True)
    subprocess.run(["git", "-C", str(into), "checkout", "-q", rev], check=True)
    return into


def run_step(code: str, checkout: Path, cache: Path) -> tuple[float, list[str]]:
    """(wall seconds of the whole child process, the numbers it printed)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT", "PYTHONPATH")}
    env["XDG_CACHE_HOME"] = str(cache)
    env["PYTHONPATH"] = str(checkout)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=checkout, env=env,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"step failed in {checkout}:\n{proc.stderr}")
    return wall, proc.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="HEAD", help="commit to clone (default HEAD)")
    parser.add_argument("--tests", action="store_true", help="also time the cold test run")
    args = parser.parse_args()
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", args.rev], check=True,
                         capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="fragsim-startup-") as tmp:
        work = Path(tmp)
        a, b = clone(rev, work / "clone-a"), clone(rev, work / "clone-b")
        alloc_cache, replay_cache = work / "cache-alloc", work / "cache-replay"
        print(f"rev: {rev[:12]}")
        for label, checkout in (("cold", a), ("warm", a), ("second_clone", b)):
            wall, (imp, boot, first, n, batch, more) = run_step(FIRST_ALLOC, checkout,
                                                               alloc_cache)
            print(f"{label}_first_alloc_wall_s: {wall:.2f}")
            print(f"{label}_first_alloc_parts_s: import {imp} boot {boot} alloc {first}")
            print(f"{label}_first_alloc_functions_compiled: {n}")
            print(f"{label}_then_alloc_many_free_batch_s: {batch} ({more} more compiled)")
            wall, (_, _, _, n, _, _) = run_step(FIRST_REPLAY, checkout, replay_cache)
            print(f"{label}_first_replay_wall_s: {wall:.2f}")
            print(f"{label}_first_replay_functions_compiled: {n}")
        if args.tests:
            # As CI does: a venv of the clone's own, then the default test run, cold.
            subprocess.run([sys.executable, "-m", "venv", str(a / ".venv")], check=True)
            python = str(a / ".venv" / "bin" / "python")
            subprocess.run([python, "-m", "pip", "install", "-q", "-e", ".[test]"], cwd=a,
                           check=True)
            env = {k: v for k, v in os.environ.items()
                   if k not in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT", "PYTHONPATH")}
            env["XDG_CACHE_HOME"] = str(work / "cache-tests")
            t0 = time.perf_counter()
            proc = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                                  cwd=a, env=env, capture_output=True, text=True, check=False)
            tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "?"
            print(f"cold_test_run_wall_s: {time.perf_counter() - t0:.1f}")
            print(f"cold_test_run_result: {tail}")

if __name__ == "__main__":
    main()

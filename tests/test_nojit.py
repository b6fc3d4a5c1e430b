"""The compiled core and its pure-Python form (NUMBA_DISABLE_JIT=1) reach identical states.

A short seeded scenario runs here (compiled) and in a subprocess with the JIT disabled; every
state array and every returned pfn must match, so stepping through the Python source in a
debugger shows exactly what the compiled code does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fragsim.models.mm.constants import (
    ALLOC_HARDER,
    ALLOC_HIGH,
    ALLOC_NO_WATERMARKS,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MIN,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.machine import Machine, MachineConfig

ROOT = Path(__file__).resolve().parents[1]
FLAGS = np.array([ALLOC_WMARK_LOW, ALLOC_WMARK_MIN, ALLOC_NO_WATERMARKS,
                  ALLOC_WMARK_MIN | ALLOC_HIGH | ALLOC_HARDER])


def scenario(policy: str, out: str) -> None:
    """Run the seeded scenario and save every state array and result to `out` (.npz)."""
    m = Machine(MachineConfig(memory=16 * MiB, policy=policy))
    rng = np.random.default_rng(2024)
    results: list[int] = []
    live: list[int] = []
    for step in range(240):
        if step == 120:
            m.set_min_free_kbytes(2048)
        if live and rng.random() < 0.4:
            pfn = live.pop(int(rng.integers(len(live))))
            results.append(m.free(pfn))
            continue
        order = int(rng.choice([0, 0, 0, 1, 2, 3, 5, 9]))
        mt = int(rng.integers(0, 3))
        pfn = m.alloc(order, migratetype=mt, alloc_flags=int(rng.choice(FLAGS)))
        results.append(pfn)
        if pfn >= 0:
            live.append(pfn)
    n = 64
    orders = rng.integers(0, 3, n)
    mts = rng.integers(0, 3, n)
    zones = np.array([m.resolve(migratetype=int(t))[0] for t in mts])
    got = m.alloc_batch(orders, zones, mts, np.full(n, ALLOC_WMARK_LOW), np.arange(n),
                        np.zeros(n, np.int64))
    live.extend(int(p) for p in got if p >= 0)
    freed = m.free_batch(np.array(live[::2]))
    check_invariants(m)
    np.savez(out, pages=m.pages, zones=m.zones, node=m.node, pageblock_type=m.pageblock_type,
             results=np.array(results), batch=got, freed=freed)


def assert_pure_python_matches(call: str, compiled: Path, pure: Path, label: str,
                               timeout: int = 300) -> Any:
    """Run `call` (a `module.func(..., out)` expression whose last argument is `pure`) in a
    subprocess with the JIT disabled and check every array it saved equals `compiled`'s
    (already saved by the caller). Returns the compiled arrays."""
    module, func = call.split("(")[0].rsplit(".", 1)
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    code = f"from {module} import {func}; {func}({call.split('(', 1)[1]}"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr
    a, b = np.load(compiled), np.load(pure)
    assert sorted(a.files) == sorted(b.files)
    for name in a.files:
        assert np.array_equal(a[name], b[name]), f"{label}: {name} differs without the JIT"
    return a


@pytest.mark.parametrize("policy", ["mobility", "vanilla"])
def test_pure_python_matches_compiled(policy: str, tmp_path: Path) -> None:
    compiled, pure = tmp_path / "compiled.npz", tmp_path / "pure.npz"
    scenario(policy, str(compiled))
    a = assert_pure_python_matches(f"tests.test_nojit.scenario({policy!r}, {str(pure)!r})",
                                   compiled, pure, policy)
    assert (a["results"] >= 0).sum() > 50  # the scenario really allocated

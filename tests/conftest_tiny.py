"""Tiny versions of the built-in workloads, for smoke and determinism tests (seconds each)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from fragsim.sim.config import Workload, load_workload

TINY_DESKTOP = [
    "machine.memory=128MiB", "machine.swap=64MiB", "run.days=0.08", "run.probe_interval_h=1",
    "run.sample_interval_h=0.5", "run.census_interval_h=1", "files.system_files=3000",
    "files.home_files=1000", "session.programs=8", "session.big_rss_mib=8",
    "session.big_limit_mib=20", "kmalloc.boot_objects=2000", "rhythm.boot_hour=6",
    "updatedb.hour=7", "updatedb.files_per_s=20000",
]
TINY_STRESS = [
    "machine.memory=128MiB", "machine.swap=64MiB", "session.programs=5",
    "kmalloc.boot_objects=1000", "build.tree_files=1500", "build.tree_mib=12",
    "build.headers=300", "build.compile_units=120", "build.headers_per_unit=20",
    "build.cc1_rss_mib=6", "stress.settle_s=5", "stress.build_s=20", "stress.wait_s=5",
    "stress.rest_s=2", "stress.pass_percent=40",
]


def tiny(name: str, overrides: dict[str, Any] | None = None,
         sets: list[str] | None = None) -> Workload:
    base = TINY_DESKTOP if name == "desktop" else TINY_STRESS
    return load_workload(name, overrides, base + (sets or []))


def drive(kernel: Any, gen: Generator[Any, Any, Any], horizon_s: float = 1000.0) -> Any:
    """Run generator `gen` (a kernel call that may yield SimPy events) as a process of the
    kernel's environment for up to `horizon_s` simulated seconds; its return value."""
    out: dict[str, Any] = {}

    def wrap() -> Any:
        out["value"] = yield from gen

    kernel.env.process(wrap())
    kernel.env.run(until=kernel.env.now + horizon_s)
    return out["value"]

"""Owners and the allocator agree at the end of tiny runs on every preset: no file or process
holds a pfn that is free or inside another block (a missed or misapplied reclaim/migration
notification; `OwnerPages.relink` once kept a page migrated twice in one compaction)."""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.agents.owned import OwnerPages
from fragsim.models.mm.constants import PG_BUDDY, PG_HEAD
from fragsim.models.mm.invariants import check_invariants
from fragsim.sim.engine import Environment
from tests.conftest_tiny import tiny

_CASES = [("2.6.20", "never"), ("2.6.24", "never"), ("2.6.35", "never"), ("6.1", "always"),
          ("6.15", "always")]


@pytest.mark.parametrize(("kernel", "thp"), _CASES)
def test_no_stale_owner_links_after_a_tiny_desktop(kernel: str, thp: str) -> None:
    over: dict[str, object] = {"kernel.version": kernel, "run.seed": 3}
    if thp != "never":
        over["kernel.thp_enabled"] = thp
    env = Environment(tiny("desktop", over))
    env.scenario.start()
    env.run(until=env.scenario.duration_s)
    m = env.machine
    check_invariants(m)
    sc = env.scenario
    assert int(sc.procs.op.count.sum()) > 0 and int(sc.fs.pc.count.sum()) > 0
    for op in (sc.procs.op, sc.fs.pc):
        assert op.stale(m.pages["flags"]).tolist() == []


def test_stale_finds_a_freed_page() -> None:
    flags = np.array([PG_HEAD, PG_BUDDY, 0, PG_HEAD], np.uint8)
    op = OwnerPages(4, nr_slots=1)
    op.link(np.array([0, 1, 2, 3]), 0)
    assert op.stale(flags).tolist() == [1, 2]

"""Huge page probes: hugepages_get, a stress-highalloc pass, and failure reasons."""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.mm import probes, reclaim
from fragsim.models.mm.constants import (
    KIND_FILE,
    KIND_KERNEL,
    KIND_SLAB,
    MIGRATE_RECLAIMABLE,
    PG_WRITEBACK,
)
from fragsim.models.mm.gfp import GFP_KERNEL
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.profiles import machine_config

MiB = 1 << 20


def test_hugepages_get_on_a_fresh_machine_leaves_it_untouched() -> None:
    m = Machine(machine_config("2.6.24", memory=64 * MiB))
    free = m.free_pages()
    r = probes.hugepages_get(m, step=10, patience=3)
    assert m.free_pages() == free and m.now == 0.0
    # 32 pageblocks; the watermark keeps the last one: MIN at order 9 needs free > 512 + min.
    assert r.successes == 31
    assert r.share == pytest.approx(31 * 512 / m.nr_pages)
    # 4 steps of 10 pages (the 4th stops at its first failure), then 3 stale steps, each
    # followed by 3 simulated seconds.
    assert r.sim_seconds == pytest.approx(3.0 * (4 + 3))
    assert int((~r.success_mask).sum()) == 4
    assert r.reasons["unmovable"] == 0


def test_hugepages_get_counts_unmovable_blockers() -> None:
    m = Machine(machine_config("2.6.20", memory=64 * MiB))
    # One kernel page in each of 8 pageblocks: allocate, keep every 64th page of 512 blocks.
    pfns = m.alloc_many(0, m.nr_pages // 2, GFP_KERNEL, kind=KIND_KERNEL)
    pfns = pfns[pfns >= 0]
    keep = pfns[(pfns % 512) == 0][:8]
    m.free_batch(np.setdiff1d(pfns, keep))
    r = probes.hugepages_get(m, patience=2)
    assert r.reasons["unmovable"] == 8
    # The 8 polluted blocks' 511 free pages each keep the zone above MIN: every clean block goes.
    assert r.successes == 32 - 8


def test_failure_reasons_rank_worst_page() -> None:
    m = Machine(machine_config("2.6.24", memory=16 * MiB))
    slab = m.alloc_many(0, 1, migratetype=MIGRATE_RECLAIMABLE, kind=KIND_SLAB)
    cache = reclaim.alloc_lru_pages(m, 1, KIND_FILE, owner=1)
    wb = reclaim.alloc_lru_pages(m, 1, KIND_FILE, owner=1)
    m.pages["flags"][wb] |= PG_WRITEBACK
    out = probes.failure_reasons(m, 9)
    blocks = {int(p) >> 9 for p in (slab[0], cache[0], wb[0])}
    assert sum(out.values()) == len(blocks)
    assert out["slab_in_use"] + out["writeback"] + out["movable_left"] == len(blocks)


def test_stress_highalloc_pass_shape() -> None:
    m = Machine(machine_config("2.6.24", memory=64 * MiB))
    r = probes.stress_highalloc(m, percent=50)
    assert r.attempts == int(m.nr_pages * 0.5) >> 9 == 16
    # One attempt every 2 MiB / 16 MB/s = 0.125 s.
    assert r.sim_seconds == pytest.approx(16 * 0.125)
    assert r.success_pct == 100.0
    assert r.latency_wall_s.shape == (16,) and (r.latency_wall_s > 0).all()
    assert m.free_pages() == m.nr_pages  # the pass ran on a copy


def test_stress_highalloc_in_place_frees_its_pins() -> None:
    m = Machine(machine_config("2.6.24", memory=64 * MiB))
    free = m.free_pages()
    r = probes.stress_highalloc(m, percent=25, on_copy=False)
    assert r.successes == 8
    assert m.free_pages() == free and m.now == pytest.approx(8 * 0.125)


@pytest.mark.parametrize("percent", [0, -5, 101])
def test_stress_highalloc_rejects_bad_percent(percent: float) -> None:
    m = Machine(machine_config("2.6.24", memory=16 * MiB))
    with pytest.raises(ValueError, match=f"percent {percent} is out of range"):
        probes.stress_highalloc(m, percent=percent)


def test_stress_highalloc_takes_a_named_gfp() -> None:
    m = Machine(machine_config("2.6.24", memory=64 * MiB))
    # GFP_KERNEL may not use highmem or ZONE_MOVABLE; on a flat machine it still succeeds.
    r = probes.stress_highalloc(m, percent=25, gfp="GFP_KERNEL|__GFP_REPEAT")
    assert r.successes == 8
    with pytest.raises(ValueError, match="name no known flag"):
        probes.stress_highalloc(m, percent=25, gfp="GFP_BOGUS")

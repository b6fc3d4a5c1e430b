"""Probe copies and failure reasons: `Machine.copy()` as byte copies, and the compiled
`failure_reasons` pass against the numpy implementation it replaced."""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.models.mm import probes, reclaim, writeback
from fragsim.models.mm.constants import (
    KIND_ANON,
    KIND_FILE,
    KIND_FILE_MAPPED,
    KIND_HUGETLB,
    KIND_KERNEL,
    KIND_NONE,
    KIND_SLAB,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    PG_HEAD,
    PG_PCP,
    PG_WRITEBACK,
)
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.profiles import machine_config
from fragsim.models.mm.state import KIND_SHIFT, MT_MASK, PAGE_DTYPE

MiB = 1 << 20


def numpy_failure_reasons(pages: np.ndarray, order: int) -> dict[str, int]:
    """The numpy implementation `probes.failure_reasons` had before it was compiled (with the
    pages of a high-order per-cpu block counted as on a per-cpu list, as 6.1 needs)."""
    n = pages.shape[0]
    size = 1 << order
    flags = pages["flags"]
    heads = np.flatnonzero((flags & PG_HEAD) != 0)
    lengths = np.left_shift(1, pages["order"][heads].astype(np.int64))
    owner_head = np.repeat(heads, lengths)
    offsets = np.arange(owner_head.shape[0]) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    allocated = np.zeros(n, dtype=bool)
    allocated[owner_head + offsets] = True
    # A block on a per-cpu list (6.1 queues orders > 0) is headed by a PG_PCP page.
    pcp_heads = np.flatnonzero(((flags & PG_PCP) != 0) & ((flags & PG_HEAD) == 0))
    pcp_lengths = np.left_shift(1, pages["order"][pcp_heads].astype(np.int64))
    pcp_offsets = (np.arange(int(pcp_lengths.sum()))
                   - np.repeat(np.cumsum(pcp_lengths) - pcp_lengths, pcp_lengths))
    queued = np.repeat(pcp_heads, pcp_lengths) + pcp_offsets
    on_pcp = np.zeros(n, dtype=bool)
    on_pcp[queued[queued < n]] = True
    mtk = pages["mt"].astype(np.int64)
    kind = mtk >> KIND_SHIFT
    mt = mtk & MT_MASK
    cat = np.zeros(n, dtype=np.int8)
    movable = allocated & ((kind == KIND_ANON) | (kind == KIND_FILE) | (kind == KIND_FILE_MAPPED)
                           | ((kind == KIND_NONE) & (mt == MIGRATE_MOVABLE)))
    cat[movable] = 1
    cat[(flags & PG_PCP) != 0] = 2
    cat[on_pcp & ~allocated] = 2
    cat[allocated & ((flags & PG_WRITEBACK) != 0)] = 3
    cat[allocated & ((kind == KIND_SLAB) | ((kind == KIND_NONE) & (mt == MIGRATE_RECLAIMABLE)))] = 4
    unmovable = allocated & ((kind == KIND_KERNEL) | ((kind == KIND_NONE) & (mt != MIGRATE_MOVABLE)
                                                     & (mt != MIGRATE_RECLAIMABLE)))
    cat[unmovable] = 5
    cat[allocated & (kind == KIND_HUGETLB)] = 0
    usable = n - n % size
    worst = cat[:usable].reshape(-1, size).max(axis=1)
    names = ("movable_left", "pcp_race", "writeback", "slab_in_use", "unmovable")
    out = {name: 0 for name in probes.FAILURE_REASONS}
    for code, name in enumerate(names, start=1):
        out[name] = int((worst == code).sum())
    return out


def varied_machine(seed: int) -> Machine:
    """64 MiB on 2.6.24 with per-cpu lists: kernel, slab, anonymous, page cache (some under
    writeback), bare-migratetype and hugetlb pages, pages on per-cpu lists, then random frees."""
    config = machine_config("2.6.24", memory=64 * MiB)
    m = Machine(config.__class__(**{**config.__dict__, "pcp": True, "nr_cpus": 2}))
    rng = np.random.default_rng(seed)
    live: list[int] = []
    for kind, mt, n in ((KIND_KERNEL, MIGRATE_UNMOVABLE, 900),
                        (KIND_SLAB, MIGRATE_RECLAIMABLE, 700),
                        (KIND_NONE, MIGRATE_UNMOVABLE, 300), (KIND_NONE, MIGRATE_MOVABLE, 300),
                        (KIND_NONE, MIGRATE_RECLAIMABLE, 300)):
        orders = rng.choice([0, 0, 0, 1, 2, 3], n)
        for order in np.unique(orders):
            k = int((orders == order).sum())
            got = m.alloc_many(int(order), k, migratetype=mt, kind=kind,
                               cpu=int(rng.integers(2)))
            live.extend(int(p) for p in got if p >= 0)
    anon = reclaim.alloc_lru_pages(m, 2500, KIND_ANON, owner=3)
    files = reclaim.alloc_lru_pages(m, 3000, KIND_FILE, owner=4, dirty=True)
    writeback.start_writeback(m, files[files >= 0][::3])
    huge = m.alloc_many(9, 6, migratetype=MIGRATE_MOVABLE, kind=KIND_HUGETLB)
    assert (huge >= 0).sum() >= 3 and (anon >= 0).all()
    pick = rng.permutation(np.array(live))[: len(live) // 3]
    m.free_batch(pick, cpu=np.asarray(rng.integers(0, 2, pick.shape[0])),
                 cold=rng.random(pick.shape[0]) < 0.5)
    reclaim.free_lru_pages(m, anon[rng.random(anon.shape[0]) < 0.3])
    assert m.zones["pcp_count"].sum() > 0
    check_invariants(m)
    return m


@pytest.mark.parametrize("seed", [1, 2])
def test_compiled_failure_reasons_match_numpy_on_a_varied_machine(seed: int) -> None:
    m = varied_machine(seed)
    seen = set()
    for order in range(16):
        got = probes.failure_reasons(m, order)
        assert got == numpy_failure_reasons(m.pages, order), order
        seen |= {k for k, v in got.items() if v}
    assert seen == set(probes.FAILURE_REASONS)  # the machine has every kind of blocker


@pytest.mark.parametrize("seed", range(4))
def test_compiled_failure_reasons_match_numpy_on_random_records(seed: int) -> None:
    """Any flags and any `mt` byte (negative ones too); heads of random orders."""
    rng = np.random.default_rng(seed)
    n = 4096
    pages = np.zeros(n, dtype=PAGE_DTYPE)
    pages["flags"] = rng.integers(0, 256, n)
    pages["mt"] = rng.integers(-128, 128, n)
    pages["order"] = rng.integers(0, 4, n)
    pages["flags"][-8:] &= 0xFF ^ PG_HEAD  # no block runs past the end
    m = Machine(machine_config("2.6.24", memory=16 * MiB))
    m.pages = pages
    for order in range(14):
        assert probes.failure_reasons(m, order) == numpy_failure_reasons(pages, order), order


def test_copy_is_equal_and_independent() -> None:
    m = varied_machine(3)
    c = m.copy()
    for name in ("pages", "zones", "node", "pageblock_type"):
        a, b = getattr(m, name), getattr(c, name)
        assert a.dtype == b.dtype and a.shape == b.shape and b.flags.c_contiguous
        assert a.tobytes() == b.tobytes() and not np.shares_memory(a, b)
    c.free_batch(np.flatnonzero(c.pages["flags"] & PG_HEAD))
    check_invariants(c)
    check_invariants(m)
    assert c.free_pages() > m.free_pages()
    # The copy runs the compiled fast paths as the original does.
    assert c.alloc(0) >= 0 and c.free(c.alloc(3)) == 0

"""2.6.35 compaction can move a page twice in one run, and owners still end at the last copy.

`isolate_freepages` restarts the free scanner at the highest pageblock that gave targets
(`cc->free_pfn = high_pfn`), so when one call takes targets from two pageblocks the migrate
scanner may later reach the lower one and move a target again (A -> X, then X -> B). The rows
of `m.migrated` are in order; applied in order (`OwnerPages.relink`), the owner holds B."""

from __future__ import annotations

import numpy as np

from fragsim.models.agents.owned import OwnerPages
from fragsim.models.mm.compaction import compact_zone
from fragsim.models.mm.constants import ALLOC_WMARK_LOW, KIND_ANON, MIGRATE_MOVABLE, ZONE_NORMAL
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.lru import lru_add_batch
from tests.conftest import MakeMachine


def test_a_page_moved_twice_in_one_compaction_ends_with_its_owner(
        make_machine: MakeMachine) -> None:
    m = make_machine(memory=32 * MiB, min_free_kbytes=0, policy="mobility-2.6.35")
    n = m.nr_pages
    high, mt = m.resolve(None, MIGRATE_MOVABLE)
    full = np.full
    owners = 1000 + np.arange(n)
    pfns = m.alloc_batch(full(n, 0), full(n, high), full(n, mt), full(n, ALLOC_WMARK_LOW),
                         owners, full(n, KIND_ANON))
    assert (pfns >= 0).all()
    lru_add_batch(m.pages, m.zones, np.arange(n), np.zeros(n, np.int64))
    # The low half nearly free (few movable pages: the migrate scanner crosses its pageblocks
    # quickly), the high half nearly full (a free-scanner call of 32 targets spans pageblocks).
    rng = np.random.default_rng(1)
    pb = 1 << m.pageblock_order
    nb = n // pb
    counts = np.concatenate([rng.integers(470, 512, nb // 2), rng.integers(0, 40, nb - nb // 2)])
    drop = np.sort(np.concatenate([b * pb + rng.choice(pb, c, replace=False)
                                   for b, c in enumerate(counts)]))
    assert (m.free_batch(drop) == 0).all()
    keep = np.setdiff1d(np.arange(n), drop)
    op = OwnerPages(n, nr_slots=1)
    op.link(keep, 0)
    compact_zone(m, ZONE_NORMAL, -1)
    mig, _ = m.take_notifications()
    old, new = mig[:, 0], mig[:, 1]
    assert np.intersect1d(old, new).shape[0] > 0  # some target was moved again
    op.relink(old, new)
    check_invariants(m)
    assert op.stale(m.pages["flags"]).tolist() == []
    assert int(op.count[0]) == keep.shape[0]

"""OwnerPages: per-owner pfn lists against a dictionary-of-sets reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fragsim.models.agents.owned import OwnerPages

N = 64


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["link", "unlink", "relink", "take"]),
                          st.lists(st.integers(0, N - 1), min_size=1, max_size=6),
                          st.integers(0, 9)), max_size=40))
def test_matches_reference(ops: list[tuple[str, list[int], int]]) -> None:
    op = OwnerPages(N, nr_slots=2)
    ref: dict[int, set[int]] = {}
    where: dict[int, int] = {}
    for kind, pfns, slot in ops:
        arr = np.array(pfns, np.int64)
        if kind == "link":
            op.link(arr, slot)
            for p in pfns:
                if p not in where:
                    where[p] = slot
                    ref.setdefault(slot, set()).add(p)
        elif kind == "unlink":
            got = op.unlink(np.unique(arr))
            for p, s in zip(np.unique(arr).tolist(), got.tolist(), strict=True):
                assert s == where.get(p, -1)
                if p in where:
                    ref[where.pop(p)].discard(p)
        elif kind == "relink":
            old = pfns[0]
            new = (old + 1 + slot) % N
            if old in where and new not in where:
                op.relink(np.array([old]), np.array([new]))
                s = where.pop(old)
                ref[s].discard(old)
                ref[s].add(new)
                where[new] = s
        else:
            taken = op.take(np.array([slot]))
            assert set(taken.tolist()) == ref.get(slot, set())
            for p in taken.tolist():
                del where[p]
            ref[slot] = set()
        for s in range(10):
            assert set(op.pages(s).tolist()) == ref.get(s, set())
            assert op.counts(np.array([s]))[0] == len(ref.get(s, set()))


def test_newest_first_and_slots_grow() -> None:
    op = OwnerPages(16, nr_slots=1)
    op.link(np.array([3, 5, -1, 9]), 40)
    assert op.nr_slots >= 41
    assert op.pages(40).tolist() == [9, 5, 3]
    assert op.pages_of(np.array([40, 41, 1000])).tolist() == [9, 5, 3]


def test_relink_applies_rows_in_order() -> None:
    """A batch of migration rows where a page moves twice (A -> X, then X -> B, as 2.6.35's
    compaction can do when its free scanner restarts above targets it isolated lower down)
    leaves the owner holding B only; the batch-at-once relink it replaces kept X, a page by
    then freed, which later corrupted the free lists."""
    op = OwnerPages(16, nr_slots=2)
    op.link(np.array([1, 2]), 0)
    op.link(np.array([7]), 1)
    assert op.relink(np.array([1, 5, 7]), np.array([5, 9, 8])) == 3
    assert sorted(op.pages(0).tolist()) == [2, 9]
    assert op.pages(1).tolist() == [8]
    assert op.slot_of[5] == -1 and op.slot_of[1] == -1


def test_relink_order_matches_batch_order_without_chains() -> None:
    """Without chains, rows applied one by one give the list order a batch unlink + link
    gives (new pages at the head, last row first): runs without double moves are unchanged."""
    op = OwnerPages(32, nr_slots=1)
    op.link(np.array([1, 2, 3, 4]), 0)
    op.relink(np.array([2, 4]), np.array([20, 21]))
    assert op.pages(0).tolist() == [21, 20, 3, 1]

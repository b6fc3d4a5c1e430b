"""Which pages each owner holds: intrusive doubly linked lists over pfns, compiled.

The kernel finds a file's pages through its `address_space` radix tree and a process's through
its page tables; reclaim and migration go the other way, from a page to its owner, through
`page->mapping`. The model needs both directions too: an owner (a file, a process) frees its pages
when it is deleted or exits, and the kernel tells it when reclaim took a page or migration moved
one (`Machine.take_notifications`). `OwnerPages` keeps, per pfn, the links of the list it is on and
the slot (owner) it belongs to, and per slot the list head and page count, in int32 arrays:
12 bytes a page. Every operation is O(1) per page except walking one owner's list.

Only allocated block heads are linked, one list per slot; a pfn is on at most one list.
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.constants import PG_BUDDY, PG_HEAD
from fragsim.models.mm.jit import compiled

__all__ = ["OwnerPages"]


@compiled("int32[], int32[], int32[], int32[], int32[], const int[], const int[]")
def _link(nxt: np.ndarray, prv: np.ndarray, slot_of: np.ndarray, head: np.ndarray,
          count: np.ndarray, pfns: np.ndarray, slots: np.ndarray) -> int:
    """Put each `pfns[i] >= 0` at the head of slot `slots[i]`'s list; skips pfns already on a
    list. Returns how many were linked."""
    done = 0
    for i in range(pfns.shape[0]):
        pfn = pfns[i]
        if pfn < 0 or slot_of[pfn] >= 0:
            continue
        s = slots[i]
        h = head[s]
        nxt[pfn] = h
        prv[pfn] = -1
        if h >= 0:
            prv[h] = pfn
        head[s] = pfn
        slot_of[pfn] = s
        count[s] += 1
        done += 1
    return done


@compiled("int32[], int32[], int32[], int32[], int32[], const int[], int[]")
def _unlink(nxt: np.ndarray, prv: np.ndarray, slot_of: np.ndarray, head: np.ndarray,
            count: np.ndarray, pfns: np.ndarray, out_slots: np.ndarray) -> int:
    """Take each pfn off its list; `out_slots[i]` gets its former slot (-1: it was on none).
    Returns how many were unlinked."""
    done = 0
    for i in range(pfns.shape[0]):
        pfn = pfns[i]
        if pfn < 0 or pfn >= slot_of.shape[0] or slot_of[pfn] < 0:
            out_slots[i] = -1
            continue
        s = slot_of[pfn]
        n = nxt[pfn]
        p = prv[pfn]
        if p >= 0:
            nxt[p] = n
        else:
            head[s] = n
        if n >= 0:
            prv[n] = p
        nxt[pfn] = -1
        prv[pfn] = -1
        slot_of[pfn] = -1
        count[s] -= 1
        out_slots[i] = s
        done += 1
    return done


@compiled("int32[], int32[], int32[], int32[], int32[], const int[], const int[]", nrt=True)
def _relink(nxt: np.ndarray, prv: np.ndarray, slot_of: np.ndarray, head: np.ndarray,
            count: np.ndarray, old: np.ndarray, new: np.ndarray) -> int:
    """Row by row, in order: `new[i]` takes `old[i]`'s slot, at its list's head (`old[i]` on
    no list: the row is skipped). In order, so a page migrated twice in one batch (A to X,
    then X to B: 2.6.35's free scanner restarts at the highest pageblock that gave targets, so
    its migrate scanner can reach targets isolated lower down) ends at B. Returns rows
    applied."""
    done = 0
    out = np.empty(1, np.int64)
    for i in range(old.shape[0]):
        _unlink(nxt, prv, slot_of, head, count, old[i:i + 1], out)
        if out[0] < 0:
            continue
        done += _link(nxt, prv, slot_of, head, count, new[i:i + 1], out)
    return done


@compiled("int32[], int32[], int32[], int", nrt=True)
def _walk(nxt: np.ndarray, head: np.ndarray, count: np.ndarray, slot: int) -> np.ndarray:
    out = np.empty(count[slot], np.int64)
    pfn = head[slot]
    i = 0
    while pfn >= 0 and i < out.shape[0]:
        out[i] = pfn
        i += 1
        pfn = nxt[pfn]
    return out[:i]


@compiled("int32[], int32[], int32[], const int[]", nrt=True)
def _walk_many(nxt: np.ndarray, head: np.ndarray, count: np.ndarray,
               slots: np.ndarray) -> np.ndarray:
    total = 0
    for i in range(slots.shape[0]):
        total += count[slots[i]]
    out = np.empty(total, np.int64)
    k = 0
    for i in range(slots.shape[0]):
        pfn = head[slots[i]]
        while pfn >= 0 and k < total:
            out[k] = pfn
            k += 1
            pfn = nxt[pfn]
    return out[:k]


class OwnerPages:
    """Per-slot lists of pfns (module docstring). Slots grow on demand."""

    def __init__(self, nr_pages: int, nr_slots: int = 1024) -> None:
        self.nxt = np.full(nr_pages, -1, np.int32)
        self.prv = np.full(nr_pages, -1, np.int32)
        self.slot_of = np.full(nr_pages, -1, np.int32)
        self.head = np.full(max(nr_slots, 1), -1, np.int32)
        self.count = np.zeros(max(nr_slots, 1), np.int32)

    def copy(self) -> OwnerPages:
        """A deep copy (for a probe copy of the machine)."""
        new = object.__new__(OwnerPages)
        for name in ("nxt", "prv", "slot_of", "head", "count"):
            setattr(new, name, getattr(self, name).copy())
        return new

    @property
    def nr_slots(self) -> int:
        return int(self.head.shape[0])

    def reserve(self, nr_slots: int) -> None:
        """Make room for slots 0..nr_slots-1."""
        if nr_slots <= self.head.shape[0]:
            return
        size = max(nr_slots, 2 * self.head.shape[0])
        head = np.full(size, -1, np.int32)
        count = np.zeros(size, np.int32)
        head[:self.head.shape[0]] = self.head
        count[:self.count.shape[0]] = self.count
        self.head, self.count = head, count

    def link(self, pfns: np.ndarray, slots: np.ndarray | int) -> int:
        """Link allocated heads `pfns` (-1 entries skipped) to `slots` (one, or one each)."""
        pfns = np.ascontiguousarray(pfns, dtype=np.int64)
        if isinstance(slots, np.ndarray):
            s = np.ascontiguousarray(slots, dtype=np.int64)
            top = int(s.max()) + 1 if s.size else 0
        else:
            s = np.full(pfns.shape[0], slots, np.int64)
            top = int(slots) + 1
        if s.size:
            self.reserve(top)
        return int(_link(self.nxt, self.prv, self.slot_of, self.head, self.count, pfns, s))

    def unlink(self, pfns: np.ndarray) -> np.ndarray:
        """Take `pfns` off their lists; returns each one's former slot (-1: on none)."""
        pfns = np.ascontiguousarray(pfns, dtype=np.int64)
        out = np.empty(pfns.shape[0], np.int64)
        _unlink(self.nxt, self.prv, self.slot_of, self.head, self.count, pfns, out)
        return out

    def relink(self, old: np.ndarray, new: np.ndarray) -> int:
        """Migration: each `new[i]` joins the list `old[i]` was on, in its place's slot, row by
        row in order (`_relink`: chains A to X to B in one batch end at B)."""
        old = np.ascontiguousarray(old, dtype=np.int64)
        new = np.ascontiguousarray(new, dtype=np.int64)
        return int(_relink(self.nxt, self.prv, self.slot_of, self.head, self.count, old, new))

    def stale(self, flags: np.ndarray) -> np.ndarray:
        """Linked pfns that are not allocated block heads by the machine's page `flags` (free,
        or inside another block): a missed reclaim or migration notification. Empty when the
        owners and the allocator agree (a check for tests and debugging)."""
        linked = np.flatnonzero(self.slot_of >= 0)
        f = flags[linked]
        bad: np.ndarray = linked[((f & PG_BUDDY) != 0) | ((f & PG_HEAD) == 0)]
        return bad

    def pages(self, slot: int) -> np.ndarray:
        """The pfns on slot `slot`'s list, newest first."""
        if slot >= self.head.shape[0]:
            return np.empty(0, np.int64)
        return _walk(self.nxt, self.head, self.count, int(slot))

    def pages_of(self, slots: np.ndarray) -> np.ndarray:
        """The pfns of every slot in `slots`, concatenated (each slot's newest first)."""
        slots = np.ascontiguousarray(slots, dtype=np.int64)
        slots = slots[slots < self.head.shape[0]]
        return _walk_many(self.nxt, self.head, self.count, slots)

    def take(self, slots: np.ndarray) -> np.ndarray:
        """Unlink and return every pfn of `slots` (an owner exits or a file is deleted)."""
        pfns = self.pages_of(np.asarray(slots, np.int64))
        self.unlink(pfns)
        return pfns

    def counts(self, slots: np.ndarray) -> np.ndarray:
        """Pages on each slot's list."""
        slots = np.asarray(slots, np.int64)
        out = np.zeros(slots.shape[0], np.int64)
        inside = slots < self.head.shape[0]
        out[inside] = self.count[slots[inside]]
        return out

"""Consistency checks over a machine's allocator state: what `CONFIG_DEBUG_VM` would catch.

`check_invariants(m)` raises `InvariantError` (an AssertionError) naming the zone, pfn and order
of the first violation of the buddy allocator's invariants (2.6.24 `mm/page_alloc.c`, and 2.6.20
for vanilla):

- every free block head (PG_BUDDY) and allocated block head (PG_HEAD) is aligned to its order
  and lies wholly inside its zone; together they tile each zone: every page of the span is in
  exactly one block, and free + allocated = present pages;
- full coalescing: no free block of order < MAX_ORDER-1 has a free buddy of the same order in
  its zone (`__free_one_page` would have merged them);
- each `free_area[order].free_list[mt]` walks from head to tail by `next`, with `prev` links
  back, every element a PG_BUDDY head of that order whose `mt` is the list's type, and its
  length equals `nr_free_mt[order][mt]`; every free head is on exactly one list; `nr_free[order]`
  is the sum over types (lists of orders >= MAX_ORDER hold nothing, since no head has such an
  order);
- the zone's NR_FREE_PAGES equals the pages in its free blocks;
- with `node['typed_freelists']` (6.10+), every free block is on the list of its first page's
  pageblock type (the kernel's VM_WARN in `__add_to_free_list` and `move_to_free_list`);
- every pageblock of a zone has a 2.6.24 type (0..4); with grouping off every pageblock reads
  UNMOVABLE and every free block is on list 0 (2.6.20 has one list per order);
- vmstat `pgalloc - pgfree` equals the pages in allocated blocks;
- per-cpu lists (2.6.24 `struct per_cpu_pageset`, `models.mm.pcp`): each walks from head to tail
  with `prev` links back, every element an order-0 PG_PCP page of the list's zone (neither free
  nor allocated head), its length equal to `pcp_count`; every PG_PCP page is on exactly one
  list; with the lists off they are empty. 2.6.24 (hot/cold) uses lists 0 and 1 only; on
  2.6.35's per-migratetype lists (`node['pcp_sublists']`) a page's saved type (`mt`,
  `page_private`) is its list's, or MIGRATE_RESERVE on the MOVABLE list
  (`free_hot_cold_page` remaps RESERVE). Their pages count as allocated for
  free + allocated = present (they are not in NR_FREE_PAGES) but not for vmstat, which counted
  them freed (`free_hot_cold_page` counts PGFREE). On 6.1's per-order lists
  (`node['pcp_per_order']`, `models.mm.pcp_6_1`) each list holds blocks of its
  `pindex_to_order`, a block's saved type fits its `order_to_pindex` list, and `pcp->count`
  (`pcp_nr_pages`) is the pages of the cpu's lists.

Nothing in the core calls this: tests run it after every operation on small machines. It is
vectorised with numpy; the list walks are one compiled loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.mm.buddy import FREE_6_1
from fragsim.models.mm.constants import (
    MIGRATE_HIGHATOMIC,
    MIGRATE_MOVABLE,
    MIGRATE_PCPTYPES,
    MIGRATE_RESERVE,
    MIGRATE_TYPES_2_6_24,
    MIGRATE_UNMOVABLE,
    PG_BUDDY,
    PG_HEAD,
    PG_PCP,
    ZONE_NAMES,
)
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.pcp_6_1 import NR_LOWORDER_PCP_LISTS, PCP_BATCH_SCALE_MAX, pcp_list_orders
from fragsim.models.mm.state import MT_MASK, NR_PCP_LISTS, STAT

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = ["InvariantError", "check_invariants"]

#: Pageblock and free-list types a 2.6.24 machine may hold (UNMOVABLE..ISOLATE).
VALID_MIGRATETYPES = MIGRATE_TYPES_2_6_24


class InvariantError(AssertionError):
    """The allocator state breaks an invariant; the message names zone, pfn and order."""


# List-walk error codes returned by `_walk_free_lists`.
_OK = 0
_OUT_OF_ZONE = 2
_NOT_BUDDY = 3
_WRONG_ORDER = 4
_WRONG_MT = 5
_BAD_PREV = 6
_BAD_TAIL = 7
_TOO_LONG = 8
_BAD_COUNT = 9
_TWICE = 10
_TAIL_NOT_EMPTY = 11
_NOT_PCP = 12

_WALK_MESSAGES = {
    _OUT_OF_ZONE: "list element pfn {pfn} lies outside the zone",
    _NOT_BUDDY: "list element pfn {pfn} is not a free block head (PG_BUDDY clear)",
    _WRONG_ORDER: "list element pfn {pfn} has order {extra}",
    _WRONG_MT: "list element pfn {pfn} has mt {extra}",
    _BAD_PREV: "list element pfn {pfn} has prev {extra}, not the element before it "
               "(-1 at the head)",
    _BAD_TAIL: "walk ends at pfn {pfn} but tail is {extra}",
    _TOO_LONG: "walk does not end: pfn {pfn} comes round again",
    _BAD_COUNT: "list holds {pfn} blocks but nr_free_mt is {extra}",
    _TWICE: "pfn {pfn} is on this list and on another",
    _TAIL_NOT_EMPTY: "list is empty but tail is {extra}",
}


_PCP_MESSAGES = {
    **_WALK_MESSAGES,
    _NOT_PCP: "list element pfn {pfn} is not a per-cpu page (PG_PCP clear)",
    _WRONG_ORDER: "list element pfn {pfn} has order {extra}, not the list's",
    _BAD_COUNT: "list holds {pfn} blocks but pcp_count is {extra}",
}


@compiled("pages, int, int, int, int, int, int32[], int, int, int, int, int, int[]")
def _walk_list(pages: np.ndarray, head: int, tail: int, count: int, start: int, end: int,
               visited: np.ndarray, list_id: int, flag: int, not_flag: int, order: int, mt: int,
               err: np.ndarray) -> bool:
    """Walk one list from `head`, marking `visited[pfn] = list_id`. Every element must lie in
    [start, end), be on no other list, carry `flag` (else error `not_flag`), have `order` and
    (when `mt >= 0`) `mt`, and link back to the one before; the walk must end at `tail` after
    `count` elements. On the first fault sets err[0] (code), err[4] (pfn), err[5] (the value
    found) and returns False."""
    cur = head
    prev = -1
    length = 0
    while cur >= 0:
        err[4] = cur
        if cur < start or cur >= end:
            err[0] = _OUT_OF_ZONE
            return False
        if visited[cur] == list_id:
            err[0] = _TOO_LONG
            return False
        if visited[cur]:
            err[0] = _TWICE
            return False
        page = pages[cur]
        if not (page["flags"] & flag):
            err[0] = not_flag
            return False
        if page["order"] != order:
            err[0] = _WRONG_ORDER
            err[5] = page["order"]
            return False
        if mt >= 0 and page["mt"] != mt:
            err[0] = _WRONG_MT
            err[5] = page["mt"]
            return False
        if page["prev"] != prev:
            err[0] = _BAD_PREV
            err[5] = page["prev"]
            return False
        visited[cur] = list_id
        length += 1
        prev = cur
        cur = page["next"]
    if tail != prev:
        err[0] = _BAD_TAIL if prev >= 0 else _TAIL_NOT_EMPTY
        err[4] = prev
        err[5] = tail
        return False
    if length != count:
        err[0] = _BAD_COUNT
        err[4] = length
        err[5] = count
        return False
    return True


@compiled("pages, zones, int32[], const int[]", nrt=True)
def _walk_pcp_lists(pages: np.ndarray, zones: np.ndarray, visited: np.ndarray,
                    orders: np.ndarray) -> np.ndarray:
    """Walk every per-cpu list of every zone, marking `visited[pfn]` with the list's id (from 1);
    every element of list `i` must have order `orders[i]`.

    Returns the first error as (code, zone, cpu, cold, pfn, extra); code 0: all sound.
    """
    err = np.zeros(6, dtype=np.int64)
    for z in range(zones.shape[0]):
        zone = zones[z]
        heads = zone["pcp_head"]
        for cpu in range(heads.shape[0]):
            for cold in range(heads.shape[1]):
                err[1] = z
                err[2] = cpu
                err[3] = cold
                list_id = 1 + (z * heads.shape[0] + cpu) * heads.shape[1] + cold
                if not _walk_list(pages, heads[cpu, cold], zone["pcp_tail"][cpu, cold],
                                  zone["pcp_count"][cpu, cold], zone["start_pfn"],
                                  zone["end_pfn"], visited, list_id, PG_PCP, _NOT_PCP,
                                  orders[cold], -1, err):
                    return err
    return err


@compiled("pages, zones, int, int32[]", nrt=True)
def _walk_free_lists(pages: np.ndarray, zones: np.ndarray, nr_orders: int,
                     visited: np.ndarray) -> np.ndarray:
    """Walk every free list of every zone, marking `visited[pfn]` with the list's id (from 1).

    Returns the first error as (code, zone, order, mt, pfn, extra); code 0: every list is sound.
    """
    err = np.zeros(6, dtype=np.int64)
    for z in range(zones.shape[0]):
        zone = zones[z]
        heads = zone["head"]
        for o in range(nr_orders):
            for mt in range(heads.shape[1]):
                err[1] = z
                err[2] = o
                err[3] = mt
                list_id = 1 + (z * nr_orders + o) * heads.shape[1] + mt
                if not _walk_list(pages, heads[o, mt], zone["tail"][o, mt],
                                  zone["nr_free_mt"][o, mt], zone["start_pfn"], zone["end_pfn"],
                                  visited, list_id, PG_BUDDY, _NOT_BUDDY, o, mt, err):
                    return err
    return err


def _where(m: Machine, z: int) -> str:
    return f"zone {ZONE_NAMES[int(m.zones[z]['zone_type'])]} (index {z})"


def _fail(msg: str) -> None:
    raise InvariantError(msg)


def _check_pcp_lists(m: Machine) -> None:
    """Fail on a broken per-cpu list, a PG_PCP page on none, or lists of cpus the node does not
    have (all of them when the lists are off)."""
    pages, zones = m.pages, m.zones
    per_order = bool(m.node[0]["pcp_per_order"])
    nr_lists = zones["pcp_head"].shape[2]
    orders = pcp_list_orders(m) if per_order else np.zeros(nr_lists, dtype=np.int64)
    visited = np.zeros(pages.shape[0], dtype=np.int32)
    err = _walk_pcp_lists(pages, zones, visited, orders)
    if err[0] != _OK:
        code, z, cpu, cold, pfn, extra = (int(v) for v in err)
        _fail(f"{_where(m, z)}: per-cpu list cpu {cpu} pcp[{cold}]: "
              + _PCP_MESSAGES[code].format(pfn=pfn, extra=extra))
    stray = np.flatnonzero(((pages["flags"] & PG_PCP) != 0) & (visited == 0))
    if stray.size:
        _fail(f"per-cpu page pfn {stray[0]} (PG_PCP) is on no per-cpu list")
    nr_cpus = int(m.node[0]["pcp"])
    used = np.flatnonzero(zones["pcp_count"][:, nr_cpus:].sum(axis=(1, 2)))
    if used.size:
        z = int(used[0])
        _fail(f"{_where(m, z)}: per-cpu lists of cpus >= {nr_cpus} hold pages "
              f"(node pcp is {nr_cpus})")
    if per_order:
        _check_pcp_6_1(m, visited, orders)
        return
    if not m.node[0]["pcp_sublists"]:
        used = np.flatnonzero(zones["pcp_count"][:, :, 2:].sum(axis=(1, 2)))
        if used.size:
            _fail(f"{_where(m, int(used[0]))}: 2.6.24 per-cpu lists (hot, cold) but list 2 "
                  "holds pages")
        return
    used = np.flatnonzero(zones["pcp_count"][:, :, NR_PCP_LISTS:].sum(axis=(1, 2)))
    if used.size:
        _fail(f"{_where(m, int(used[0]))}: 2.6.35 per-cpu lists (one per MIGRATE_PCPTYPES) but "
              f"list {NR_PCP_LISTS} or above holds pages")
    # 2.6.35: list_id = 1 + (z * cpus + cpu) * lists + migratetype.
    on_pcp = np.flatnonzero(visited != 0)
    lst = (visited[on_pcp].astype(np.int64) - 1) % nr_lists
    mt = pages["mt"][on_pcp].astype(np.int64) & MT_MASK
    bad = np.flatnonzero((mt != lst) & ~((lst == MIGRATE_MOVABLE) & (mt == MIGRATE_RESERVE)))
    if bad.size:
        pfn = int(on_pcp[bad[0]])
        _fail(f"per-cpu page pfn {pfn} is queued as migratetype {int(mt[bad[0]])} on "
              f"pcp->lists[{int(lst[bad[0]])}]")


def _check_pcp_6_1(m: Machine, visited: np.ndarray, orders: np.ndarray) -> None:
    """6.1's per-order lists (`models.mm.pcp_6_1`): `pcp->count` is the pages of its lists,
    `free_factor` is within 0..CONFIG_PCP_BATCH_SCALE_MAX, and a block's saved type fits its
    list (`order_to_pindex`: low-order list `3 * order + mt`, THP list 12 for UNMOVABLE and
    RECLAIMABLE, 13 for MOVABLE; HIGHATOMIC saved on a MOVABLE list, `free_unref_page`)."""
    pages, zones = m.pages, m.zones
    counted = (zones["pcp_count"] << orders[None, None, :]).sum(axis=2)
    bad = np.argwhere(counted != zones["pcp_nr_pages"])
    if bad.size:
        z, cpu = (int(v) for v in bad[0])
        _fail(f"{_where(m, z)}: per-cpu lists of cpu {cpu} hold {int(counted[z, cpu])} pages "
              f"but pcp->count is {int(zones['pcp_nr_pages'][z, cpu])}")
    bad = np.argwhere((zones["pcp_free_factor"] < 0)
                      | (zones["pcp_free_factor"] > PCP_BATCH_SCALE_MAX))
    if bad.size:
        z, cpu = (int(v) for v in bad[0])
        _fail(f"{_where(m, z)}: cpu {cpu} free_factor is "
              f"{int(zones['pcp_free_factor'][z, cpu])}, outside 0..{PCP_BATCH_SCALE_MAX}")
    on_pcp = np.flatnonzero(visited != 0)
    pindex = (visited[on_pcp].astype(np.int64) - 1) % zones["pcp_head"].shape[2]
    mt = pages["mt"][on_pcp].astype(np.int64) & MT_MASK
    list_mt = np.where(pindex < NR_LOWORDER_PCP_LISTS, pindex % MIGRATE_PCPTYPES,
                       np.where(pindex == NR_LOWORDER_PCP_LISTS, -1, MIGRATE_MOVABLE))
    movable = list_mt == MIGRATE_MOVABLE
    ok = ((mt == list_mt) | (movable & (mt == MIGRATE_HIGHATOMIC))
          | ((list_mt == -1) & (mt < MIGRATE_MOVABLE)))
    wrong = np.flatnonzero(~ok)
    if wrong.size:
        pfn = int(on_pcp[wrong[0]])
        _fail(f"per-cpu page pfn {pfn} is queued as migratetype {int(mt[wrong[0]])} on "
              f"pcp->lists[{int(pindex[wrong[0]])}]")


def check_invariants(m: Machine) -> None:
    """Raise InvariantError at the first broken allocator invariant of `m` (see module doc)."""
    pages, zones, nd = m.pages, m.zones, m.node[0]
    n = pages.shape[0]
    max_order = int(nd["max_order"])
    pbo = int(nd["pageblock_order"])
    grouping = bool(nd["grouping"])
    flags = pages["flags"]
    orders = pages["order"].astype(np.int64)

    # Zone of every pfn (-1: in no zone); zone spans may not overlap.
    zid = np.full(n, -1, dtype=np.int64)
    for z in range(zones.shape[0]):
        start, end = int(zones[z]["start_pfn"]), int(zones[z]["end_pfn"])
        if not 0 <= start <= end <= n:
            _fail(f"{_where(m, z)}: span [{start}, {end}) is outside the {n} pages")
        if end > start and (zid[start:end] >= 0).any():
            _fail(f"{_where(m, z)}: span [{start}, {end}) overlaps another zone")
        zid[start:end] = z

    is_free = (flags & PG_BUDDY) != 0
    is_alloc = (flags & PG_HEAD) != 0
    is_pcp = (flags & PG_PCP) != 0
    both = np.flatnonzero(is_free & is_alloc)
    if both.size:
        _fail(f"pfn {both[0]} is both a free (PG_BUDDY) and an allocated (PG_HEAD) head")
    both = np.flatnonzero(is_pcp & (is_free | is_alloc))
    if both.size:
        _fail(f"pfn {both[0]} is on a per-cpu list (PG_PCP) and also a free or allocated head")
    # A per-cpu page is a block (order 0 before 6.1), allocated as far as the buddy allocator
    # knows.
    heads = np.flatnonzero(is_free | is_alloc | is_pcp)
    head_free = is_free[heads]
    head_pcp = is_pcp[heads]
    head_order = orders[heads]

    def what(i: int) -> str:
        return "free" if head_free[i] else ("per-cpu" if head_pcp[i] else "allocated")

    # Orders, zones, alignment, containment.
    bad = np.flatnonzero((head_order < 0) | (head_order >= max_order))
    if bad.size:
        i = bad[0]
        _fail(f"{what(i)} block at pfn {heads[i]} has order {head_order[i]}, "
              f"outside 0..{max_order - 1}")
    head_zone = zid[heads]
    bad = np.flatnonzero(head_zone < 0)
    if bad.size:
        i = bad[0]
        _fail(f"{what(i)} block at pfn {heads[i]} order {head_order[i]} is in no zone")
    size = np.left_shift(1, head_order)
    bad = np.flatnonzero(heads & (size - 1))
    if bad.size:
        i = bad[0]
        _fail(f"{_where(m, head_zone[i])}: {what(i)} block at pfn {heads[i]} is not aligned "
              f"to its order {head_order[i]}")
    ends = heads + size
    bad = np.flatnonzero(ends > zones["end_pfn"][head_zone])
    if bad.size:
        i = bad[0]
        _fail(f"{_where(m, head_zone[i])}: {what(i)} block at pfn {heads[i]} order "
              f"{head_order[i]} runs past the zone end {zones['end_pfn'][head_zone[i]]}")

    # Tiling: every page of every zone in exactly one block.
    cover = np.cumsum(np.bincount(heads, minlength=n + 1)[: n + 1]
                      - np.bincount(ends, minlength=n + 1)[: n + 1])[:n]
    bad = np.flatnonzero((cover != 1) & (zid >= 0))
    if bad.size:
        pfn = int(bad[0])
        if cover[pfn] == 0:
            _fail(f"{_where(m, zid[pfn])}: pfn {pfn} is in no free or allocated block")
        owners = [f"{what(i)} pfn {heads[i]} order {head_order[i]}"
                  for i in np.flatnonzero((heads <= pfn) & (ends > pfn)).tolist()]
        _fail(f"{_where(m, zid[pfn])}: pfn {pfn} is in {int(cover[pfn])} blocks: "
              + ", ".join(owners))

    # Full coalescing: no free head has a free buddy of its order in its zone.
    fheads = heads[head_free]
    forder = head_order[head_free]
    fzone = head_zone[head_free]
    cand = np.flatnonzero(forder < max_order - 1)
    buddy = fheads[cand] ^ np.left_shift(1, forder[cand])
    inside = buddy < n
    cand, buddy = cand[inside], buddy[inside]
    merge = (zid[buddy] == fzone[cand]) & is_free[buddy] & (orders[buddy] == forder[cand])
    if int(m.node[0]["free_tail"]) >= FREE_6_1 and m.grouping:
        # 6.1 __free_one_page: at order >= pageblock_order, pageblocks of different types merge
        # only when both are mergeable (not HIGHATOMIC or ISOLATE).
        pbo = m.pageblock_order
        mt_a = m.pageblock_type[fheads[cand] >> pbo]
        mt_b = m.pageblock_type[buddy >> pbo]
        merge &= ~((forder[cand] >= pbo) & (mt_a != mt_b)
                   & ((mt_a >= MIGRATE_PCPTYPES) | (mt_b >= MIGRATE_PCPTYPES)))
    bad = np.flatnonzero(merge)
    if bad.size:
        i = cand[bad[0]]
        _fail(f"{_where(m, fzone[i])}: free blocks at pfn {fheads[i]} and its buddy "
              f"{buddy[bad[0]]} (order {forder[i]}) were not merged")

    # Free lists.
    visited = np.zeros(n, dtype=np.int32)
    nr_orders = zones["head"].shape[1]
    err = _walk_free_lists(pages, zones, nr_orders, visited)
    if err[0] != _OK:
        code, z, o, mt, pfn, extra = (int(v) for v in err)
        _fail(f"{_where(m, z)}: free_area[{o}].free_list[{mt}]: "
              + _WALK_MESSAGES[code].format(pfn=pfn, extra=extra))
    bad = np.flatnonzero(visited[fheads] == 0)
    if bad.size:
        i = bad[0]
        _fail(f"{_where(m, fzone[i])}: free block at pfn {fheads[i]} order {forder[i]} "
              f"(mt {pages['mt'][fheads[i]]}) is on no free list")
    _check_pcp_lists(m)

    alloc_pages = 0
    for z in range(zones.shape[0]):
        zone = zones[z]
        nr_free = zone["nr_free"]
        per_type = zone["nr_free_mt"].sum(axis=1)
        wrong = np.flatnonzero(nr_free != per_type)
        if wrong.size:
            o = int(wrong[0])
            _fail(f"{_where(m, z)}: nr_free[{o}] is {nr_free[o]} but its lists hold "
                  f"{per_type[o]} blocks")
        in_zone = fzone == z
        free_in_blocks = int(np.left_shift(1, forder[in_zone]).sum())
        if int(zone["free_pages"]) != free_in_blocks:
            _fail(f"{_where(m, z)}: free_pages is {zone['free_pages']} but free blocks hold "
                  f"{free_in_blocks} pages")
        alloc_in_zone = int(size[(~head_free) & (head_zone == z)].sum())
        alloc_pages += alloc_in_zone - int(size[head_pcp & (head_zone == z)].sum())
        if free_in_blocks + alloc_in_zone != int(zone["present_pages"]):
            _fail(f"{_where(m, z)}: free {free_in_blocks} + allocated {alloc_in_zone} pages "
                  f"!= present_pages {zone['present_pages']}")
        start, end = int(zone["start_pfn"]), int(zone["end_pfn"])
        if end <= start:
            continue
        blocks = m.pageblock_type[start >> pbo:((end - 1) >> pbo) + 1]
        wrong = np.flatnonzero((blocks < 0) | (blocks >= VALID_MIGRATETYPES))
        if wrong.size:
            b = (start >> pbo) + int(wrong[0])
            _fail(f"{_where(m, z)}: pageblock {b} (pfn {b << pbo}) has type "
                  f"{m.pageblock_type[b]}, outside 0..{VALID_MIGRATETYPES - 1}")
        if not grouping:
            wrong = np.flatnonzero(blocks != MIGRATE_UNMOVABLE)
            if wrong.size:
                b = (start >> pbo) + int(wrong[0])
                _fail(f"{_where(m, z)}: grouping is off but pageblock {b} (pfn {b << pbo}) "
                      f"has type {m.pageblock_type[b]}, not UNMOVABLE")
            off_list = np.flatnonzero(zone["nr_free_mt"][:, 1:].sum(axis=0))
            if off_list.size:
                mt = int(off_list[0]) + 1
                o = int(np.flatnonzero(zone["nr_free_mt"][:, mt])[0])
                _fail(f"{_where(m, z)}: grouping is off but free_area[{o}].free_list[{mt}] "
                      f"holds blocks (pfn {zone['head'][o, mt]})")
        else:
            off_list = np.flatnonzero(zone["nr_free_mt"][:, VALID_MIGRATETYPES:].sum(axis=0))
            if off_list.size:
                mt = int(off_list[0]) + VALID_MIGRATETYPES
                o = int(np.flatnonzero(zone["nr_free_mt"][:, mt])[0])
                _fail(f"{_where(m, z)}: free_area[{o}].free_list[{mt}] holds blocks of a "
                      f"type outside 0..{VALID_MIGRATETYPES - 1}")

    if int(nd["typed_freelists"]) != 0:
        # 6.10+ (`__add_to_free_list`, `move_to_free_list`, `__del_page_from_free_list`
        # VM_WARN_ONCE "page type is %lu, passed migratetype is %d"): a free block is on the
        # list of its first page's pageblock type.
        list_mt = pages["mt"][fheads].astype(np.int64)
        block_mt = m.pageblock_type[fheads >> pbo].astype(np.int64)
        bad = np.flatnonzero(list_mt != block_mt)
        if bad.size:
            i = bad[0]
            _fail(f"{_where(m, fzone[i])}: free block at pfn {fheads[i]} order {forder[i]} is "
                  f"on free_list[{list_mt[i]}] but its pageblock has type {block_mt[i]}")
    net = int(nd["stat"][STAT["pgalloc"]]) - int(nd["stat"][STAT["pgfree"]])
    if net != alloc_pages:
        _fail(f"vmstat pgalloc - pgfree is {net} but allocated blocks hold {alloc_pages} pages")

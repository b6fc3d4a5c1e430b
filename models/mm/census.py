"""Pageblock census: what each pageblock holds, from the page array, vectorised.

The kernel shows pageblocks per type (`pagetypeinfo_showblockcount_print`) and, with
CONFIG_PAGE_OWNER (4.x+), "Number of mixed blocks" (`pagetypeinfo_showmixedcount_print`: a block
is mixed when an allocated page's type differs from the block's). The model knows every
allocation's requested migratetype, so the census goes further: per pageblock, its zone, its type,
its free pages, and its allocated pages by the migratetype each allocation asked for.

Columns (`pageblock_census`), one row per pageblock:

- `pageblock`, `start_pfn`, `zone` (index into `ZONE_NAMES`), `migratetype` (pageblock type);
- `free`: pages in free blocks (PG_BUDDY heads); a free block larger than a pageblock counts in
  every pageblock it covers;
- `allocated_<type>` for the five internal types (lower-case names of the machine's policy,
  `Policy.migratetype_labels`: slot 3 is `allocated_reserve` up to 4.3 and
  `allocated_highatomic` on 6.1), and `allocated` in all: pages of allocated blocks (PG_HEAD
  heads) by their requested migratetype;
- `mixed`: allocated pages of at least two distinct requested types;
- `foreign_pages`: allocated pages whose requested type is not the pageblock's type. No
  exception is made for RESERVE or ISOLATE pageblocks: no request asks for those types, so every
  allocated page in them counts as foreign. On a vanilla machine every pageblock is UNMOVABLE,
  so its movable and reclaimable pages are foreign; `mixed` compares across policies.

Pages on neither kind of block (per-cpu lists, when modelled) count in no column.
"""

from __future__ import annotations

import numpy as np

from fragsim.models.mm.constants import (
    KIND_ANON,
    KIND_FILE,
    KIND_FILE_MAPPED,
    KIND_KERNEL,
    KIND_SLAB,
    MIGRATE_TYPES_2_6_24,
    MIGRATETYPE_NAMES_2_6_24,
    PG_BUDDY,
    PG_DIRTY,
    PG_HEAD,
    PG_WRITEBACK,
)
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.policy import Policy
from fragsim.models.mm.state import KIND_SHIFT, MT_MASK

__all__ = [
    "ALLOCATED_COLUMNS",
    "CENSUS_COLUMNS",
    "FREE_BLOCK_COLUMNS",
    "allocated_columns",
    "census_columns",
    "free_blocks",
    "page_kinds",
    "pageblock_census",
    "pageblock_zones",
]

#: `allocated_<type>` column names, in 2.6.24 migratetype order (`allocated_columns` gives a
#: policy's own).
ALLOCATED_COLUMNS: tuple[str, ...] = tuple(
    f"allocated_{name.lower()}" for name in MIGRATETYPE_NAMES_2_6_24
)
CENSUS_COLUMNS: tuple[str, ...] = (
    "pageblock", "start_pfn", "zone", "migratetype", "free", *ALLOCATED_COLUMNS, "allocated",
    "mixed", "foreign_pages",
)


def allocated_columns(policy: Policy) -> tuple[str, ...]:
    """`allocated_<type>` names of the internal slots 0..4 as `policy` names them."""
    return tuple(f"allocated_{name.lower()}" for name in policy.migratetype_labels)


def census_columns(policy: Policy) -> tuple[str, ...]:
    """`pageblock_census`'s columns, in order, on a machine of `policy`."""
    return (*CENSUS_COLUMNS[:5], *allocated_columns(policy), *CENSUS_COLUMNS[10:])
FREE_BLOCK_COLUMNS: tuple[str, ...] = ("zone", "order", "migratetype", "nr_free")


def pageblock_zones(m: Machine) -> np.ndarray:
    """Zone index of each pageblock (the zone holding its first pfn; -1 in a hole)."""
    nr_blocks = m.pageblock_type.shape[0]
    start_pfn = np.arange(nr_blocks, dtype=np.int64) << m.pageblock_order
    out = np.full(nr_blocks, -1, dtype=np.int8)
    for z in m.populated_zones():
        inside = (start_pfn >= m.zones[z]["start_pfn"]) & (start_pfn < m.zones[z]["end_pfn"])
        out[inside] = z
    return out


def _pages_per_pageblock(heads: np.ndarray, orders: np.ndarray, pbo: int) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """Split blocks into their pageblock pieces: (head index, pageblock, pages) per piece.

    A block of order < pageblock_order is one piece; a larger block is 2^(order-pbo) pieces of
    one whole pageblock each. The piece count is at most len(heads) + the number of pageblocks.
    """
    orders = orders.astype(np.int64)
    nr_pieces = np.where(orders > pbo, np.int64(1) << np.maximum(orders - pbo, 0), 1)
    which = np.repeat(np.arange(heads.shape[0], dtype=np.int64), nr_pieces)
    first = np.cumsum(nr_pieces) - nr_pieces
    offset = np.arange(which.shape[0], dtype=np.int64) - first[which]
    pageblock = (heads[which] >> pbo) + offset
    pages = np.int64(1) << np.minimum(orders, pbo)[which]
    return which, pageblock, pages


def pageblock_census(m: Machine) -> dict[str, np.ndarray]:
    """One row per pageblock: zone, type, free pages, allocated pages by requested type, mixing.

    See the module docstring for each column. Every column has length `len(m.pageblock_type)`.
    """
    pbo = m.pageblock_order
    nr_blocks = m.pageblock_type.shape[0]
    flags = m.pages["flags"]
    order = m.pages["order"]

    free_heads = np.flatnonzero(flags & PG_BUDDY).astype(np.int64)
    _, free_pb, free_pages = _pages_per_pageblock(free_heads, order[free_heads], pbo)
    free = np.bincount(free_pb, weights=free_pages, minlength=nr_blocks).astype(np.int64)

    alloc_heads = np.flatnonzero(((flags & PG_HEAD) != 0) & ((flags & PG_BUDDY) == 0))
    alloc_heads = alloc_heads.astype(np.int64)
    which, alloc_pb, alloc_pages = _pages_per_pageblock(alloc_heads, order[alloc_heads], pbo)
    # The requested migratetype is the low bits of `mt`; the page kind sits above them.
    alloc_mt = (m.pages["mt"][alloc_heads] & MT_MASK).astype(np.int64)[which]
    if alloc_mt.size and (alloc_mt.min() < 0 or alloc_mt.max() >= MIGRATE_TYPES_2_6_24):
        raise ValueError("an allocated block has a migratetype outside 0..4")
    by_type = np.bincount(alloc_pb * MIGRATE_TYPES_2_6_24 + alloc_mt, weights=alloc_pages,
                          minlength=nr_blocks * MIGRATE_TYPES_2_6_24)
    by_type = by_type.astype(np.int64).reshape(nr_blocks, MIGRATE_TYPES_2_6_24)

    block_type = m.pageblock_type.astype(np.int64)
    allocated = by_type.sum(axis=1)
    own = by_type[np.arange(nr_blocks), np.clip(block_type, 0, MIGRATE_TYPES_2_6_24 - 1)]
    own = np.where(block_type < MIGRATE_TYPES_2_6_24, own, 0)

    out: dict[str, np.ndarray] = {
        "pageblock": np.arange(nr_blocks, dtype=np.int64),
        "start_pfn": np.arange(nr_blocks, dtype=np.int64) << pbo,
        "zone": pageblock_zones(m),
        "migratetype": m.pageblock_type.copy(),
        "free": free,
    }
    for mt, name in enumerate(allocated_columns(m.policy)):
        out[name] = np.ascontiguousarray(by_type[:, mt])
    out["allocated"] = allocated
    out["mixed"] = (by_type > 0).sum(axis=1) >= 2
    out["foreign_pages"] = allocated - own
    return out


def free_blocks(m: Machine) -> dict[str, np.ndarray]:
    """`nr_free_mt` in long form: one row per populated zone, order and 2.6.24 migratetype."""
    zones = np.asarray(m.populated_zones(), dtype=np.int64)
    counts = m.zones["nr_free_mt"][zones][:, : m.max_order, :MIGRATE_TYPES_2_6_24]
    z, o, mt = np.meshgrid(zones, np.arange(m.max_order), np.arange(MIGRATE_TYPES_2_6_24),
                           indexing="ij")
    return {
        "zone": z.ravel().astype(np.int8),
        "order": o.ravel().astype(np.int8),
        "migratetype": mt.ravel().astype(np.int8),
        "nr_free": counts.reshape(-1).astype(np.int64),
    }


def page_kinds(m: Machine) -> dict[str, int]:
    """Allocated pages by what they hold, as /proc/vmstat names (one pass over the page
    array): `nr_anon_pages`, `nr_file_pages`, `nr_mapped`, `nr_slab_reclaimable`,
    `nr_kernel_pages` (unmovable kernel pages, unreclaimable slab included), `nr_dirty`,
    `nr_writeback`."""
    flags = m.pages["flags"]
    heads = np.flatnonzero((flags & PG_HEAD) != 0)
    pages = np.left_shift(1, m.pages["order"][heads].astype(np.int64))
    kinds = (m.pages["mt"][heads] >> KIND_SHIFT).astype(np.int64)
    by = np.bincount(kinds, weights=pages, minlength=8).astype(np.int64)
    return {
        "nr_anon_pages": int(by[KIND_ANON]),
        "nr_file_pages": int(by[KIND_FILE] + by[KIND_FILE_MAPPED]),
        "nr_mapped": int(by[KIND_FILE_MAPPED]),
        "nr_slab_reclaimable": int(by[KIND_SLAB]),
        "nr_kernel_pages": int(by[KIND_KERNEL]),
        "nr_dirty": int(np.count_nonzero(flags & PG_DIRTY)),
        "nr_writeback": int(np.count_nonzero(flags & PG_WRITEBACK)),
    }

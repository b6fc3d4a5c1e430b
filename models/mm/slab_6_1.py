"""Linux 6.1's slab shrinking: `do_shrink_slab`, `shrink_slab`, `drop_slab` and the superblock
shrinker, over the slab caches of `models.mm.slab`.

6.1 (`mm/vmscan.c` of unifreq/linux-6.1.y) no longer sizes the slab scan by the LRU scan, as
2.6.24 did (`models.mm.slab.shrink_slab`): `do_shrink_slab(shrinkctl, shrinker, priority)` asks
for `freeable = count_objects()` and scans

    delta = (freeable >> priority) * 4 / seeks        (seeks 0: freeable / 2)
    total_scan = min((nr_deferred >> priority) + delta, 2 * freeable)

in `batch` chunks (`shrinker->batch`, 0 meaning SHRINK_BATCH 128) while `total_scan >= batch
|| total_scan >= freeable`, each `min(batch, total_scan)`, counting SLABS_SCANNED, and puts back
`min(max(nr + delta - scanned, 0), 2 * freeable)` as the shrinker's `nr_deferred`. At
DEF_PRIORITY 12 a shrinker with fewer than 4096 objects gets delta 0, so kswapd's first passes
leave small caches alone and only deepening priority reaches them. A scan that returns
SHRINK_STOP (no __GFP_FS) ends the loop; the whole delta is then deferred.

The dentry and inode caches are not shrinkers of their own in 6.1: each superblock has one,
`sb->s_shrink` (fs/super.c `alloc_super`: DEFAULT_SEEKS, batch 1024), whose
`super_cache_count` reports `vfs_pressure_ratio(dentries + inodes)` (the two LRU lengths;
`mult_frac(total, vfs_cache_pressure, 100)`; SHRINK_EMPTY when both are empty) and whose
`super_cache_scan` returns SHRINK_STOP without __GFP_FS, else splits `nr_to_scan` as
`mult_frac(nr_to_scan, dentries, dentries + inodes + 1)` and the same for inodes, and walks the
dentry LRU for that many + 1 (`prune_dcache_sb`), then the inode LRU for its share + 1
(`prune_icache_sb`); it returns the entries the walks isolated. `register_super(m, dcache,
icache)` makes one (`models.agents.files.FileSystem` does, for its `dentry` and
`ext3_inode_cache`); the 2.6.24 `shrink_slab` does not see it and goes on shrinking the two
caches as shrinkers of their own.

`shrink_slab_6_1` is the root-cgroup path of 6.1 `shrink_slab()`: every shrinker of
`shrinker_list` in registration order, SHRINK_EMPTY counted as 0. The list is the model's
reclaimable caches that no superblock covers (each registered by `kmem_cache_create`) and the
superblocks, each after the caches created before it. A cache without a superblock is shrunk
as a `list_lru` shrinker of its own with the rules of its 2.6.24 shrinker in 6.1's calls (the
model's own rule, 6.1 has no such shrinker): count `vfs_pressure_ratio(unused)` (SHRINK_EMPTY
when none), seeks the cache's, batch SHRINK_BATCH, SHRINK_STOP without __GFP_FS, a scan walks
`nr_to_scan` LRU entries. Caches whose objects are never unused (`buffer_head`,
`radix_tree_node`) report SHRINK_EMPTY and are skipped (6.1 has no shrinker for buffer heads,
and its radix-tree shrinker is the shadow-node one, not modelled). `drop_slab_6_1` is
`drop_slab()` -> `drop_slab_node()`: `shrink_slab(GFP_KERNEL, nid, memcg, 0)` until
`(freed >> shift++) <= 1`.

Simplifications (README, Model limits, "6.1 slab shrinking"): no memcg (one `nr_deferred` per
shrinker, the LRUs not split per cgroup, no `shrink_slab_memcg`), one node (no
SHRINKER_NUMA_AWARE per-node counts), no SHRINKER_NONSLAB, no other kernel shrinkers (the
workingset shadow-node shrinker, the huge zero page, deferred THP split, ...), no
`shrinker_rwsem` contention, `trylock_super` always succeeds and every superblock is SB_BORN,
no `nr_cached_objects` (fs_objects 0, as ext2/3/4). The LRUs are the model's: an object leaves
its LRU when it is looked up again (2.6.24 `dget`), whereas 6.1 leaves a referenced dentry or
inode on its LRU until a walk meets it and counts its removal as isolated (`dentry_lru_isolate`
and `inode_lru_isolate` return LRU_REMOVED for it), and rotates once an entry whose
DCACHE_REFERENCED/I_REFERENCED was set by a later put (`retain_dentry`, `iput_final`); the
model has no referenced bit, so its walks meet only unused entries and free each. Dentries do
not pin their inodes (6.1 puts an inode on its LRU only when its last dentry goes, and
`shrink_dentry_list` also kills a parent left unused), and pruning an inode does not drop its
page cache (`inode_lru_isolate`'s `invalidate_mapping_pages`, counted in `reclaimed_slab`).
Objects freed by a walk are freed at once, in the order 6.1's RCU callbacks would free them
(dentries oldest first, inodes newest first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from fragsim.models.mm.gfp import GFP, GFP_KERNEL
from fragsim.models.mm.reclaim_state import Shrinker, reclaim_state
from fragsim.models.mm.slab import DEFAULT_SEEKS, SHRINK_BATCH, SlabCache
from fragsim.models.mm.state import STAT

if TYPE_CHECKING:
    from fragsim.models.mm.machine import Machine

__all__ = [
    "SHRINK_EMPTY",
    "SHRINK_STOP",
    "SUPER_BATCH",
    "Shrinker61",
    "SuperBlock",
    "do_shrink_slab",
    "drop_slab_6_1",
    "mult_frac",
    "register_super",
    "shrink_slab_6_1",
    "shrinker_list_6_1",
]

#: 6.1 `SHRINK_STOP` (`~0UL`), as a negative sentinel.
SHRINK_STOP = -1
#: 6.1 `SHRINK_EMPTY` (`~0UL - 1`), as a negative sentinel.
SHRINK_EMPTY = -2
#: 6.1 `alloc_super`: `s->s_shrink.batch = 1024`.
SUPER_BATCH = 1024


def mult_frac(x: int, numer: int, denom: int) -> int:
    """6.1 `mult_frac(x, numer, denom)` (include/linux/math.h) on non-negative integers."""
    quot, rem = divmod(x, denom)
    return quot * numer + (rem * numer) // denom


class Shrinker61(Protocol):
    """6.1 `struct shrinker`: `count_objects`, `scan_objects`, `seeks`, `batch`,
    `nr_deferred`."""

    seeks: int
    batch: int
    nr_deferred: int

    def count_objects(self, vfs_cache_pressure: int) -> int:
        """Objects freeable, 0, or SHRINK_EMPTY."""
        ...

    def scan_objects(self, m: Machine, nr_to_scan: int, gfp_mask: int) -> tuple[int, int]:
        """(objects freed or SHRINK_STOP, slab pages freed)."""
        ...


@dataclass(eq=False)
class SuperBlock:
    """6.1 `sb->s_shrink` of one superblock over its dentry and inode LRUs (module docstring)."""

    dcache: SlabCache
    icache: SlabCache
    #: Per-cache shrinkers registered before this one (its place in `shrinker_list`).
    registered_after: int
    seeks: int = DEFAULT_SEEKS
    batch: int = SUPER_BATCH
    #: `shrinker->nr_deferred[0]`.
    nr_deferred: int = 0

    @property
    def name(self) -> str:
        return f"super({self.dcache.name},{self.icache.name})"

    def count_objects(self, vfs_cache_pressure: int) -> int:
        """6.1 `super_cache_count` (fs/super.c)."""
        total = self.dcache.nr_unused + self.icache.nr_unused
        if not total:
            return SHRINK_EMPTY
        return mult_frac(total, vfs_cache_pressure, 100)

    def scan_objects(self, m: Machine, nr_to_scan: int, gfp_mask: int) -> tuple[int, int]:
        """6.1 `super_cache_scan` (fs/super.c): dentries first, then inodes, each its share of
        `nr_to_scan` + 1."""
        if not gfp_mask & GFP.FS:
            return SHRINK_STOP, 0
        dentries = self.dcache.nr_unused
        inodes = self.icache.nr_unused
        total_objects = dentries + inodes + 1
        dentries = mult_frac(nr_to_scan, dentries, total_objects)
        inodes = mult_frac(nr_to_scan, inodes, total_objects)
        freed, pages = self.dcache.prune(m, dentries + 1)  # prune_dcache_sb
        n, p = self.icache.prune(m, inodes + 1, newest_first=True)  # prune_icache_sb
        return freed + n, pages + p

    def clone(self, caches: dict[int, Shrinker]) -> SuperBlock:
        dcache, icache = caches[id(self.dcache)], caches[id(self.icache)]
        assert isinstance(dcache, SlabCache) and isinstance(icache, SlabCache)
        return SuperBlock(dcache, icache, self.registered_after, self.seeks, self.batch,
                          self.nr_deferred)


class _CacheShrinker:
    """A cache no superblock covers, as a 6.1 shrinker of its own (module docstring); its
    `nr_deferred` lives on the cache."""

    batch = 0

    def __init__(self, cache: SlabCache) -> None:
        self.cache = cache
        self.seeks = cache.seeks

    @property
    def nr_deferred(self) -> int:
        return self.cache.nr_deferred

    @nr_deferred.setter
    def nr_deferred(self, value: int) -> None:
        self.cache.nr_deferred = value

    def count_objects(self, vfs_cache_pressure: int) -> int:
        if not self.cache.nr_unused:
            return SHRINK_EMPTY
        return mult_frac(self.cache.nr_unused, vfs_cache_pressure, 100)

    def scan_objects(self, m: Machine, nr_to_scan: int, gfp_mask: int) -> tuple[int, int]:
        if not gfp_mask & GFP.FS:
            return SHRINK_STOP, 0
        return self.cache.prune(m, nr_to_scan)


def register_super(m: Machine, dcache: SlabCache, icache: SlabCache) -> SuperBlock:
    """6.1 `alloc_super` + `register_shrinker_prepared` (fs/super.c `sget_fc`): one shrinker
    for a superblock's dentry and inode caches, used by `shrink_slab_6_1` in place of the two
    caches' own (the 2.6.24 `shrink_slab` keeps those)."""
    st = reclaim_state(m)
    if dcache is icache:
        raise ValueError(f"cache {dcache.name} cannot be both the dentry and the inode cache")
    for cache in (dcache, icache):
        if not any(s is cache for s in st.shrinkers):
            raise ValueError(f"cache {cache.name} is not a registered reclaimable cache")
        if any(sb.dcache is cache or sb.icache is cache for sb in _supers(m)):
            raise ValueError(f"cache {cache.name} already belongs to a superblock")
    sb = SuperBlock(dcache, icache, registered_after=len(st.shrinkers))
    st.supers.append(sb)
    return sb


def _supers(m: Machine) -> list[SuperBlock]:
    out: list[SuperBlock] = []
    for sb in reclaim_state(m).supers:
        assert isinstance(sb, SuperBlock)
        out.append(sb)
    return out


def shrinker_list_6_1(m: Machine) -> list[Shrinker61]:
    """6.1 `shrinker_list` of the model: caches no superblock covers and superblocks, in
    registration order (`list_add_tail`)."""
    st = reclaim_state(m)
    supers = _supers(m)
    covered = {id(c) for sb in supers for c in (sb.dcache, sb.icache)}
    out: list[Shrinker61] = []
    k = 0
    for i, s in enumerate(st.shrinkers):
        while k < len(supers) and supers[k].registered_after <= i:
            out.append(supers[k])
            k += 1
        if id(s) not in covered:
            assert isinstance(s, SlabCache)
            out.append(_CacheShrinker(s))
    out.extend(supers[k:])
    return out


def do_shrink_slab(m: Machine, shrinker: Shrinker61, gfp_mask: int,
                   priority: int) -> tuple[int, int]:
    """6.1 `do_shrink_slab()` (mm/vmscan.c): returns (objects freed, or 0 / SHRINK_EMPTY as
    `count_objects` reported; slab pages freed)."""
    vfs_cache_pressure = reclaim_state(m).vfs_cache_pressure
    batch_size = shrinker.batch if shrinker.batch else SHRINK_BATCH
    freeable = shrinker.count_objects(vfs_cache_pressure)
    if freeable == 0 or freeable == SHRINK_EMPTY:
        return freeable, 0
    nr = shrinker.nr_deferred  # xchg_nr_deferred
    shrinker.nr_deferred = 0
    if shrinker.seeks:
        delta = (freeable >> priority) * 4 // shrinker.seeks
    else:
        delta = freeable // 2
    total_scan = (nr >> priority) + delta
    total_scan = min(total_scan, 2 * freeable)
    freed = 0
    pages = 0
    scanned = 0
    stat = m.node[0]["stat"]
    while total_scan >= batch_size or total_scan >= freeable:
        nr_to_scan = min(batch_size, total_scan)
        ret, p = shrinker.scan_objects(m, nr_to_scan, gfp_mask)
        if ret == SHRINK_STOP:
            break
        freed += ret
        pages += p
        stat[STAT["slabs_scanned"]] += nr_to_scan  # shrinkctl->nr_scanned
        total_scan -= nr_to_scan
        scanned += nr_to_scan
    next_deferred = max(nr + delta - scanned, 0)
    next_deferred = min(next_deferred, 2 * freeable)
    shrinker.nr_deferred += next_deferred  # add_nr_deferred
    return freed, pages


def shrink_slab_6_1(m: Machine, gfp_mask: int, priority: int) -> tuple[int, int]:
    """6.1 `shrink_slab(gfp_mask, nid, memcg, priority)` (mm/vmscan.c), the root-cgroup path:
    `do_shrink_slab` for every shrinker of `shrinker_list_6_1`, SHRINK_EMPTY as 0. Returns
    (objects freed, the kernel's return value; slab pages freed,
    `reclaim_state->reclaimed_slab`)."""
    freed = 0
    pages = 0
    for shrinker in shrinker_list_6_1(m):
        ret, p = do_shrink_slab(m, shrinker, gfp_mask, priority)
        if ret == SHRINK_EMPTY:
            ret = 0
        freed += ret
        pages += p
    return freed, pages


def drop_slab_6_1(m: Machine) -> int:
    """6.1 `drop_slab()` -> `drop_slab_node()` (mm/vmscan.c) for the one node:
    `shrink_slab(GFP_KERNEL, nid, NULL, 0)` while `(freed >> shift++) > 1`. Returns slab pages
    freed."""
    pages = 0
    shift = 0
    while True:
        freed, p = shrink_slab_6_1(m, int(GFP_KERNEL), 0)
        pages += p
        again = (freed >> shift) > 1
        shift += 1
        if not again:
            return pages

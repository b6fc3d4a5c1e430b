"""Linux 6.1 reclaim (`models.mm.reclaim_6_1`, `models.mm.vmscan_6_1`) against 2.6.24's.

Each golden case is worked from 6.1.y `mm/vmscan.c` (unifreq/linux-6.1.y 07badeaa) in its
comments; the contrast with 2.6.24 (`models.mm.reclaim`) is asserted where the two differ.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fragsim.models.mm import reclaim, reclaim_6_1, vmscan_6_1, writeback
from fragsim.models.mm.constants import (
    KIND_ANON,
    KIND_FILE,
    KIND_FILE_MAPPED,
    PG_ACTIVE,
    PG_DIRTY,
    PG_HEAD,
    PG_LRU,
    PG_WRITEBACK,
)
from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.gfp import GFP_KERNEL
from fragsim.models.mm.invariants import check_invariants
from fragsim.models.mm.lru import lru_index, mark_accessed_batch
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.reclaim_state import DEF_PRIORITY, reclaim_state
from fragsim.models.mm.state import (
    LRU_ACTIVE_ANON,
    LRU_ACTIVE_FILE,
    LRU_INACTIVE_ANON,
    LRU_INACTIVE_FILE,
    NR_LRU_LISTS,
)
from tests.test_nojit import assert_pure_python_matches

OWNER = 7
GFP = int(GFP_KERNEL)


def _machine(policy: str = "mobility-6.1", memory: int = 16 * MiB, swap: int = 0) -> Machine:
    return Machine(MachineConfig(memory=memory, policy=policy, swap=swap))


def _zone(m: Machine) -> int:
    return m.populated_zones()[0]


def check_lrus(m: Machine) -> None:
    """Every list is a well-linked chain of `nr_lru` LRU pages of its type and activity, and
    every page with PG_LRU is on one."""
    seen = 0
    for z in m.populated_zones():
        zone = m.zones[z]
        for lru in range(NR_LRU_LISTS):
            n, prev, pfn = 0, -1, int(zone["lru_head"][lru])
            while pfn >= 0:
                assert m.pages[pfn]["prev"] == prev
                assert m.pages[pfn]["flags"] & PG_LRU
                assert lru_index(m.pages, zone, pfn) == lru
                n, prev, pfn = n + 1, pfn, int(m.pages[pfn]["next"])
            assert prev == zone["lru_tail"][lru] and n == zone["nr_lru"][lru]
            seen += n
    assert seen == int(np.count_nonzero(m.pages["flags"] & PG_LRU))


# --- the split LRU ----------------------------------------------------------------------------

@pytest.mark.parametrize(("policy", "anon", "file", "file_active"), [
    ("mobility", 1, 0, 1),  # 2.6.24: lru_cache_add_active for anon; one mixed pair of lists
    ("mobility-6.1", LRU_INACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE),
])
def test_lists_by_generation(policy: str, anon: int, file: int, file_active: int) -> None:
    # 6.1 folio_lru_list(): LRU_FILE * folio_is_file_lru + LRU_ACTIVE * active; a new anon
    # page goes on the inactive anon list (5.9 lru_cache_add_inactive_or_unevictable).
    m = _machine(policy)
    z = _zone(m)
    a = reclaim.alloc_lru_pages(m, 5, KIND_ANON, OWNER)
    f = reclaim.alloc_lru_pages(m, 3, KIND_FILE, OWNER)
    expect = np.zeros(NR_LRU_LISTS, np.int64)
    expect[anon] += 5
    expect[file] += 3
    assert m.zones[z]["nr_lru"].tolist() == expect.tolist()
    assert mark_accessed_batch(m.pages, m.zones, f[:1]) == 0  # referenced
    assert mark_accessed_batch(m.pages, m.zones, f[:1]) == 1  # activated (PGACTIVATE)
    expect[file] -= 1
    expect[file_active] += 1
    assert m.zones[z]["nr_lru"].tolist() == expect.tolist()
    check_lrus(m)
    reclaim.free_lru_pages(m, np.concatenate([a, f]))
    assert m.zones[z]["nr_lru"].sum() == 0
    check_invariants(m)


def test_inactive_is_low_ratio() -> None:
    # inactive_is_low(): gb = (inactive + active) >> 18 (4 KiB pages); ratio int_sqrt(10 * gb)
    # or 1 under 1 GiB; low when inactive * ratio < active.
    m = _machine()
    nr = m.zones[_zone(m)]["nr_lru"]
    nr[LRU_INACTIVE_FILE], nr[LRU_ACTIVE_FILE] = 1000, 1000
    assert not reclaim_6_1.inactive_is_low(m, LRU_INACTIVE_FILE)
    nr[LRU_ACTIVE_FILE] = 1001
    assert reclaim_6_1.inactive_is_low(m, LRU_INACTIVE_FILE)
    # 400000 pages = 1 GiB and a half: gb 1, int_sqrt(10) = 3 (the table's "1GB 3").
    nr[LRU_INACTIVE_FILE], nr[LRU_ACTIVE_FILE] = 100000, 300000
    assert not reclaim_6_1.inactive_is_low(m, LRU_INACTIVE_FILE)
    nr[LRU_ACTIVE_FILE] = 300001
    assert reclaim_6_1.inactive_is_low(m, LRU_INACTIVE_FILE)
    assert not reclaim_6_1.inactive_is_low(m, LRU_INACTIVE_ANON)  # 0 < 0 is false
    nr[:] = 0


# --- get_scan_count ---------------------------------------------------------------------------

def _counts(m: Machine, counts: tuple[int, int, int, int]) -> reclaim_6_1.ScanControl61:
    m.zones[_zone(m)]["nr_lru"][:] = counts
    return reclaim_6_1.scan_control(m, 0, GFP, kswapd=True)


def test_get_scan_count_balances() -> None:
    m = _machine(swap=16 * MiB)
    sc = _counts(m, (1000, 0, 3000, 400))
    sc.priority = 2
    # SCAN_FRACT with anon_cost 10, file_cost 30, swappiness 60: total_cost 40; anon_cost
    # 40 + 10 = 50, file_cost 40 + 30 = 70, total_cost 120; ap = 60 * 121 / 51 = 142,
    # fp = 140 * 121 / 71 = 238; scan = (size >> 2) * fraction / 380.
    st = reclaim_state(m)
    st.anon_cost, st.file_cost = 10, 30
    assert reclaim_6_1.get_scan_count(m, sc).tolist() == [
        250 * 142 // 380, 0, 750 * 238 // 380, 100 * 238 // 380]
    # cache_trim_mode: SCAN_FILE.
    sc.cache_trim_mode = True
    assert reclaim_6_1.get_scan_count(m, sc).tolist() == [0, 0, 750, 100]
    # file_is_tiny comes first: SCAN_ANON.
    sc.file_is_tiny = True
    assert reclaim_6_1.get_scan_count(m, sc).tolist() == [250, 0, 0, 0]
    # Priority 0 with swappiness: SCAN_EQUAL, before file_is_tiny.
    sc.priority = 0
    assert reclaim_6_1.get_scan_count(m, sc).tolist() == [1000, 0, 3000, 400]
    # No may_swap (boosted kswapd), or no free swap slot: SCAN_FILE.
    sc.may_swap = False
    assert reclaim_6_1.get_scan_count(m, sc).tolist() == [0, 0, 3000, 400]
    m.zones[_zone(m)]["nr_lru"][:] = 0


def test_prepare_scan_count_flags() -> None:
    m = _machine()
    sc = _counts(m, (0, 0, 5000, 100))
    reclaim_6_1.prepare_scan_count(m, sc)
    # Inactive file not low: no file deactivation; 5000 >> 12 = 1: cache_trim_mode.
    assert sc.may_deactivate == 0 and sc.cache_trim_mode and not sc.file_is_tiny
    m.zones[_zone(m)]["nr_lru"][:] = (0, 0, 100, 5000)
    reclaim_6_1.prepare_scan_count(m, sc)
    assert sc.may_deactivate == vmscan_6_1.DEACTIVATE_FILE and not sc.cache_trim_mode
    sc.force_deactivate = True
    reclaim_6_1.prepare_scan_count(m, sc)
    assert sc.may_deactivate == vmscan_6_1.DEACTIVATE_ANON | vmscan_6_1.DEACTIVATE_FILE
    m.zones[_zone(m)]["nr_lru"][:] = 0


def test_lru_note_cost_decays() -> None:
    # lru_note_cost(): add, then halve both once they pass a quarter of the LRU.
    m = _machine()
    m.zones[_zone(m)]["nr_lru"][:] = (100, 100, 100, 100)
    st = reclaim_state(m)
    reclaim_6_1.lru_note_cost(m, False, 90)
    assert (st.anon_cost, st.file_cost) == (90, 0)
    reclaim_6_1.lru_note_cost(m, True, 20)  # 110 > 400 / 4
    assert (st.anon_cost, st.file_cost) == (45, 10)
    m.zones[_zone(m)]["nr_lru"][:] = 0


# --- shrink_lruvec ----------------------------------------------------------------------------

def test_shrink_lruvec_proportional_stop() -> None:
    # kswapd, targets [64, 0, 128, 0], nr_to_reclaim 32, with swap. First pass: 32 anon
    # (dirty, not in swap: add_to_swap, then pageout: kept under writeback, pswpout 32) and
    # 32 file (clean: reclaimed). 32 >= 32: nr_file 96 > nr_anon 32, so anon stops;
    # percentage = 32 * 100 / (64 + 0 + 1) = 49; file target 128 * 51 / 100 = 65, less the 32
    # scanned = 33 left. Second pass: 32 file reclaimed (64 >= 32), nr_file 1, nr_anon 0:
    # "vindictive", stop. 96 scanned, 64 reclaimed, one file page left to scan.
    m = _machine(swap=16 * MiB)
    z = _zone(m)
    reclaim.alloc_lru_pages(m, 64, KIND_ANON, OWNER)
    reclaim.alloc_lru_pages(m, 128, KIND_FILE, OWNER)
    nr = np.array([64, 0, 128, 0], np.int64)
    rec = np.empty((256, 3), np.int64)
    wb = np.empty(256, np.int64)
    res = np.zeros(vmscan_6_1.RES_SIZE_6_1, np.int64)
    buf = np.empty(32, np.int64)
    got = vmscan_6_1.shrink_lruvec_lists(m.pages, m.zones, m.pageblock_type, m.node, z, nr, 32,
                                         False, 0, True, True, True, buf, rec, wb, res)
    assert got == 64 and nr.tolist() == [0, 0, 1, 0]
    assert m.stat("pgscan_kswapd") == 96 and m.stat("pswpout") == 32
    assert (m.stat("pgscan_anon"), m.stat("pgscan_file")) == (32, 64)
    assert (m.stat("pgsteal_anon"), m.stat("pgsteal_file")) == (0, 64)
    assert {"pgrefill", "pgscan_file"} <= set(m.vmstat())  # 6.1's names, on 6.1 only
    assert "pgscan_file" not in _machine("mobility").vmstat()
    assert res[vmscan_6_1.RES_NR_PAGEOUT] == 32
    # Direct reclaim at DEF_PRIORITY is "proportional_reclaim": it scans all its targets.
    n = _machine(swap=16 * MiB)
    reclaim.alloc_lru_pages(n, 64, KIND_ANON, OWNER)
    reclaim.alloc_lru_pages(n, 128, KIND_FILE, OWNER)
    nr = np.array([64, 0, 128, 0], np.int64)
    res[:] = 0
    got = vmscan_6_1.shrink_lruvec_lists(n.pages, n.zones, n.pageblock_type, n.node, z, nr, 32,
                                         True, 0, False, True, True, buf, rec, wb, res)
    assert got == 128 and n.stat("pgscan_direct") == 192


def test_active_file_survives_streaming_on_6_1_only() -> None:
    # 200 page-cache pages read twice (active), then 3 x memory of use-once page cache
    # through direct reclaim. 6.1 never deactivates: inactive file stays far above active,
    # so inactive_is_low is false and shrink_list skips the active list (no refaults in the
    # model). 2.6.24's shrink_zone scans the active list at every priority and reclaims them.
    got = {}
    for policy in ("mobility", "mobility-6.1"):
        m = _machine(policy)
        z = _zone(m)
        hot = reclaim.alloc_lru_pages(m, 200, KIND_FILE, 5)
        mark_accessed_batch(m.pages, m.zones, hot)
        mark_accessed_batch(m.pages, m.zones, hot)
        streamed = 0
        while streamed < 3 * m.nr_pages:
            pfns = reclaim.alloc_lru_pages(m, 32, KIND_FILE, 6)
            ok = int(np.count_nonzero(pfns >= 0))
            streamed += ok
            if ok < 32:
                assert reclaim.try_to_free_pages(m, 0, GFP, z) > 0
        alive = (m.pages["owner"][hot] == 5) & ((m.pages["flags"][hot] & PG_HEAD) != 0)
        got[policy] = (int(np.count_nonzero(alive)), m.stat("pgdeactivate"))
        check_lrus(m)
        check_invariants(m)
    assert got["mobility-6.1"] == (200, 0)
    assert got["mobility"] == (0, 200)


def test_dirty_page_cache_flagged_then_rotated_when_written() -> None:
    # 8 dirty page-cache pages at the inactive file tail, 40 clean ones above them. 6.1
    # shrink_folio_list (kswapd, no PGDAT_DIRTY): the dirty ones get PG_reclaim and are
    # activated, the next 24 clean ones reclaimed. The flusher writes them (PG_reclaim stays);
    # folio_end_writeback -> folio_rotate_reclaimable puts them, deactivated, at the inactive
    # tail, where the next scan frees them. 2.6.24's shrink_page_list writes them itself.
    m = _machine()
    z = _zone(m)
    dirty = reclaim.alloc_lru_pages(m, 8, KIND_FILE, OWNER, dirty=True)
    reclaim.alloc_lru_pages(m, 40, KIND_FILE, OWNER)
    sc = reclaim_6_1.scan_control(m, 0, GFP, kswapd=True)
    assert reclaim_6_1.shrink_inactive_list(m, z, LRU_INACTIVE_FILE, 32, sc) == 24
    assert m.stat("pgactivate") == 8
    assert (m.pages["flags"][dirty] & (PG_ACTIVE | PG_DIRTY) == PG_ACTIVE | PG_DIRTY).all()
    assert sorted(reclaim_state(m).reclaim_dirty) == sorted(dirty.tolist())
    assert int(m.zones[z]["nr_lru"][LRU_ACTIVE_FILE]) == 8
    assert writeback.start_writeback(m, dirty) == 8  # the flusher
    assert not reclaim_state(m).reclaim_dirty
    m.now += m.config.writeback_delay
    assert writeback.complete_writeback(m) == 8 and m.stat("pgrotated") == 8
    assert int(m.zones[z]["nr_lru"][LRU_ACTIVE_FILE]) == 0
    assert reclaim_6_1.shrink_inactive_list(m, z, LRU_INACTIVE_FILE, 8, sc) == 8
    assert (m.pages["flags"][dirty] & PG_HEAD == 0).all()  # freed
    check_lrus(m)
    # 2.6.24: pageout() from reclaim.
    n = _machine("mobility")
    dirty = reclaim.alloc_lru_pages(n, 8, KIND_FILE, OWNER, dirty=True)
    reclaim.alloc_lru_pages(n, 40, KIND_FILE, OWNER)
    sc24 = reclaim.scan_control(n, 0, GFP, kswapd=True)
    reclaim.shrink_inactive_list(n, _zone(n), 32, sc24)
    assert (n.pages["flags"][dirty] & PG_WRITEBACK != 0).all()


def test_mapped_page_referenced_is_activated_and_aged() -> None:
    # A referenced mapped page at the inactive tail is activated (folio_check_references,
    # FOLIOREF_ACTIVATE; the model's one referenced bit stands for the young ptes, which
    # folio_referenced clears). shrink_active_list then deactivates it (not VM_EXEC) and the
    # next inactive scan reclaims it, unreferenced.
    m = _machine()
    z = _zone(m)
    (pfn,) = reclaim.alloc_lru_pages(m, 1, KIND_FILE, OWNER)
    m.pages["mt"][pfn] = (m.pages["mt"][pfn] & 0x07) | (KIND_FILE_MAPPED << 3)
    mark_accessed_batch(m.pages, m.zones, np.array([pfn]))
    sc = reclaim_6_1.scan_control(m, 0, GFP, kswapd=True)
    assert reclaim_6_1.shrink_inactive_list(m, z, LRU_INACTIVE_FILE, 32, sc) == 0
    assert int(m.zones[z]["nr_lru"][LRU_ACTIVE_FILE]) == 1
    buf = np.empty(32, np.int64)
    assert vmscan_6_1.shrink_active_list(m.pages, m.zones, m.node, z, LRU_ACTIVE_FILE, 32,
                                         buf) == 1
    assert m.stat("pgdeactivate") == 1 and m.stat("pgrefill") == 1
    assert reclaim_6_1.shrink_inactive_list(m, z, LRU_INACTIVE_FILE, 32, sc) == 1


def test_no_swap_leaves_anon_alone() -> None:
    # No swap: get_scan_count is SCAN_FILE and can_age_anon_pages is false, so direct reclaim
    # scans only page cache, and the anonymous pages stay where they are.
    m = _machine()
    z = _zone(m)
    anon = reclaim.alloc_lru_pages(m, 500, KIND_ANON, OWNER)
    reclaim.alloc_lru_pages(m, 500, KIND_FILE, OWNER)
    before = m.zones[z]["nr_lru"].copy()
    sc = reclaim_6_1.scan_control(m, 0, GFP, kswapd=False)
    sc.priority = 0
    sc.nr_to_reclaim = 1 << 20  # scan the whole targets (size >> 0)
    reclaim_6_1.shrink_node(m, sc)
    assert sc.nr_reclaimed == 500 and m.zones[z]["nr_lru"][LRU_INACTIVE_FILE] == 0
    assert m.zones[z]["nr_lru"][LRU_INACTIVE_ANON] == before[LRU_INACTIVE_ANON] == 500
    assert (m.pages["owner"][anon] == OWNER).all()
    assert m.zones[z]["nr_lru"][LRU_ACTIVE_ANON] == 0


def test_try_to_free_pages_priorities() -> None:
    # 1000 clean inactive file pages and nothing else on the LRU. do_try_to_free_pages at
    # priority p scans 1000 >> p (less what went before): 12 -> 0, 11 -> 0, 10 -> 0
    # (1000 >> 10 = 0), 9 -> 1, 8 -> 3 (999 >> 8), 7 -> 7 (996 >> 7), 6 -> 15 (989 >> 6),
    # then 26 < 32 so priority 5: 974 >> 5 = 30; 56 >= SWAP_CLUSTER_MAX: stop. One allocstall.
    m = _machine()
    z = _zone(m)
    reclaim.alloc_lru_pages(m, 1000, KIND_FILE, OWNER)
    assert reclaim.try_to_free_pages(m, 0, GFP, z) == 1 + 3 + 7 + 15 + 30
    assert m.stat("allocstall") == 1 and m.stat("pgscan_direct") == 56
    # Nothing on the LRU: 0, with a second pass (force_deactivate) only if an active list was
    # skipped, which an empty one is not.
    n = _machine()
    assert reclaim.try_to_free_pages(n, 0, GFP, _zone(n)) == 0 and n.stat("allocstall") == 1


# --- the compiled loops against plain Python ---------------------------------------------------

def scenario(out: str) -> None:
    """A random mix of anonymous and page-cache use with 6.1 direct reclaim and kswapd on a
    machine with swap; saves the page and zone arrays to `out`."""
    rng = np.random.default_rng(3)
    m = _machine(swap=4 * MiB)
    z = _zone(m)
    live: list[np.ndarray] = []
    for step in range(400):
        kind = KIND_ANON if rng.random() < 0.3 else KIND_FILE
        pfns = reclaim.alloc_lru_pages(m, int(rng.integers(1, 64)), kind, OWNER,
                                       dirty=bool(rng.random() < 0.2))
        ok = pfns[pfns >= 0]
        if ok.shape[0] < pfns.shape[0]:
            reclaim.try_to_free_pages(m, 0, GFP, z)
        if rng.random() < 0.3 and ok.shape[0]:
            mark_accessed_batch(m.pages, m.zones, ok[: ok.shape[0] // 2])
        live.append(ok)
        if step % 50 == 49:
            reclaim.balance_pgdat(m, 0)
            m.now += m.config.writeback_delay
            writeback.complete_writeback(m)
        if rng.random() < 0.1 and live:
            gone = live.pop(int(rng.integers(0, len(live))))
            gone = gone[(m.pages["owner"][gone] == OWNER) & (m.pages["flags"][gone] & PG_HEAD != 0)]
            reclaim.free_lru_pages(m, gone)
    check_lrus(m)
    check_invariants(m)
    np.savez(out, pages=m.pages, zones=m.zones, node=m.node, stat=m.node[0]["stat"])


def test_pure_python_matches_compiled(tmp_path: Path) -> None:
    compiled, pure = tmp_path / "compiled.npz", tmp_path / "pure.npz"
    scenario(str(compiled))
    a = assert_pure_python_matches(f"tests.test_reclaim_6_1.scenario({str(pure)!r})",
                                   compiled, pure, "6.1 reclaim")
    assert a["zones"]["nr_lru"].sum() > 0


def test_default_priority_constant() -> None:
    assert reclaim_6_1.ScanControl61(GFP, 0, 2, 32, True).priority == DEF_PRIORITY == 12

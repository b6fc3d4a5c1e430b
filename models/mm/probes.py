"""Huge page probes, as the anti-fragmentation work was measured (kernel-reference section 11).

- `hugepages_get`: Mel Gorman's desktop probe. Raise `nr_hugepages` by 100 every 3 simulated
  seconds until 20 attempts in a row make no progress; each pool page is a hugetlb-order
  allocation through the full slow path (`set_max_huge_pages` -> `alloc_fresh_huge_page`, which
  stops at the first failure). Result: pool pages x huge page size / memory.
- `stress_highalloc`: one mmtests stress-highalloc pass. Attempt `percent` of memory as huge
  pages, one attempt every huge page size / rate simulated seconds, with a named GFP mask;
  successes stay pinned until the pass ends. Reports % success and each attempt's latency.

Both run on `m.copy()` by default, so an experiment can probe at many uptimes without disturbing
the run. Between attempts simulated time passes: writeback completes, kswapd runs and, on a
kernel with kcompactd, kcompactd does the work kswapd's sleep asked for (`advance`).
At the end each huge-page-sized block that is neither free nor in the pool is put down to the
worst page in it (`failure_reasons`): why that memory was not available.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

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
    PAGE_SIZE,
    PG_HEAD,
    PG_PCP,
    PG_WRITEBACK,
)
from fragsim.models.mm.gfp import GFP, GFP_HIGHUSER, GFP_HIGHUSER_MOVABLE, parse_gfp
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.slowpath import AllocAttempt, alloc_pages, run_kswapd
from fragsim.models.mm.state import KIND_SHIFT, MT_MASK

__all__ = [
    "FAILURE_REASONS",
    "HUGETLB_OWNER",
    "ProbeResult",
    "advance",
    "failure_reasons",
    "hugepages_get",
    "hugetlb_gfp",
    "stress_highalloc",
]

#: Owner id of hugetlb pool pages taken by a probe.
HUGETLB_OWNER = -2
#: Why a huge-page-sized block could not be had, worst first.
FAILURE_REASONS = ("unmovable", "slab_in_use", "writeback", "pcp_race", "movable_left")


@dataclass
class ProbeResult:
    """One probe's outcome."""

    probe: str
    order: int
    attempts: int
    successes: int
    #: Huge pages obtained x huge page size / memory.
    share: float
    sim_seconds: float
    wall_s: float
    latency_wall_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    latency_stall_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    success_mask: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def success_pct(self) -> float:
        return 100.0 * self.successes / self.attempts if self.attempts else 0.0


def hugetlb_gfp(treat_as_movable: bool = False) -> int:
    """2.6.24 `htlb_alloc_mask|__GFP_COMP|__GFP_NOWARN`: GFP_HIGHUSER (UNMOVABLE), or
    GFP_HIGHUSER_MOVABLE with `hugepages_treat_as_movable`."""
    base = GFP_HIGHUSER_MOVABLE if treat_as_movable else GFP_HIGHUSER
    return int(base | GFP.COMP | GFP.NOWARN)


def advance(m: Machine, seconds: float) -> None:
    """Let simulated time pass: writeback completes, a woken kswapd balances the zones (and,
    with 6.1's kswapd, goes to sleep: `slowpath.run_kswapd`), and on a kernel with kcompactd
    the daemon's loop runs over the interval (`_kcompactd`)."""
    m.now += seconds
    from fragsim.models.mm import reclaim

    reclaim.complete_writeback(m, m.now)
    run_kswapd(m)
    if m.config.kcompactd:
        _kcompactd(m, seconds)


def _kcompactd(m: Machine, seconds: float) -> None:
    """6.1 `kcompactd()` over `seconds` on a probe's machine, which has no daemon process: the
    work kswapd's sleep asked for at once (`kcompactd_do_work`, if `kcompactd_node_suitable`,
    as `wakeup_kcompactd` would wake it), then each HPAGE_FRAG_CHECK_INTERVAL_MSEC timeout
    in the interval: asked work, or the proactive step, whose answer is the next timeout
    (`models.agents.kcompactd`). The timer starts afresh each interval."""
    from fragsim.models.mm import kcompactd

    if kcompactd.kcompactd_work_requested(m) and kcompactd.kcompactd_node_suitable(m):
        kcompactd.kcompactd_do_work(m)
    if not m.config.compaction_proactiveness:
        return
    t = kcompactd.HPAGE_FRAG_CHECK_INTERVAL_S
    while t <= seconds:
        if kcompactd.kcompactd_work_requested(m):
            kcompactd.kcompactd_do_work(m)
            timeout = kcompactd.HPAGE_FRAG_CHECK_INTERVAL_S
        else:
            timeout, _ = kcompactd.kcompactd_proactive(m)
        t += timeout


def _record(attempts: list[AllocAttempt]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    wall = np.array([a.wall_s for a in attempts], dtype=np.float64)
    stall = np.array([a.stall_s for a in attempts], dtype=np.float64)
    ok = np.array([a.success for a in attempts], dtype=bool)
    return wall, stall, ok


def hugepages_get(m: Machine, *, step: int = 100, interval: float = 3.0, patience: int = 20,
                  order: int | None = None, treat_as_movable: bool = False,
                  on_copy: bool = True, max_steps: int = 100_000) -> ProbeResult:
    """Grow a hugetlb pool by `step` pages every `interval` s until `patience` steps in a row
    add nothing; the pool stays allocated on the probed machine (use `on_copy`)."""
    t0 = time.perf_counter()
    mm = m.copy() if on_copy else m
    order = mm.pageblock_order if order is None else order
    gfp = hugetlb_gfp(treat_as_movable)
    pool: list[int] = []
    attempts: list[AllocAttempt] = []
    start = mm.now
    stale = 0
    for _ in range(max_steps):
        if stale >= patience:
            break
        before = len(pool)
        target = before + step
        while len(pool) < target:
            a = alloc_pages(mm, order, gfp, owner=HUGETLB_OWNER, kind=KIND_HUGETLB)
            attempts.append(a)
            if not a.success:
                break  # set_max_huge_pages() stops at the first failure
            pool.append(a.pfn)
        stale = stale + 1 if len(pool) == before else 0
        advance(mm, interval)
    wall, stall, ok = _record(attempts)
    return ProbeResult(
        probe="hugepages_get", order=order, attempts=len(attempts), successes=len(pool),
        share=len(pool) * (1 << order) / mm.nr_pages, sim_seconds=mm.now - start,
        wall_s=time.perf_counter() - t0, latency_wall_s=wall, latency_stall_s=stall,
        success_mask=ok, reasons=failure_reasons(mm, order),
    )


def stress_highalloc(m: Machine, *, percent: float = 95.0, rate_mb_s: float = 16.0,
                     gfp: int | str = GFP_HIGHUSER_MOVABLE, order: int | None = None,
                     on_copy: bool = True) -> ProbeResult:
    """One mmtests stress-highalloc pass: `percent` of memory in huge page attempts, one every
    huge page size / `rate_mb_s`; successes pinned until the pass ends, then freed. `gfp` is a
    mask or a name such as "GFP_HIGHUSER_MOVABLE" or "GFP_HIGHUSER|__GFP_REPEAT"."""
    if isinstance(gfp, str):
        gfp = int(parse_gfp(gfp))
    if not 0 < percent <= 100:
        raise ValueError(f"percent {percent} is out of range: allowed (0, 100]")
    if rate_mb_s <= 0:
        raise ValueError(f"rate {rate_mb_s} MB/s must be positive")
    t0 = time.perf_counter()
    mm = m.copy() if on_copy else m
    order = mm.pageblock_order if order is None else order
    n = int(mm.nr_pages * percent / 100) >> order
    interval = (PAGE_SIZE << order) / (rate_mb_s * (1 << 20))
    start = mm.now
    attempts: list[AllocAttempt] = []
    for _ in range(n):
        attempts.append(alloc_pages(mm, order, gfp, owner=HUGETLB_OWNER, kind=KIND_HUGETLB))
        advance(mm, interval)
    wall, stall, ok = _record(attempts)
    reasons = failure_reasons(mm, order)
    pinned = np.array([a.pfn for a in attempts if a.success], dtype=np.int64)
    mm.free_batch(pinned)
    return ProbeResult(
        probe="stress_highalloc", order=order, attempts=n, successes=int(ok.sum()),
        share=int(ok.sum()) * (1 << order) / mm.nr_pages, sim_seconds=mm.now - start,
        wall_s=time.perf_counter() - t0, latency_wall_s=wall, latency_stall_s=stall,
        success_mask=ok, reasons=reasons,
    )


#: `failure_reasons` categories, from 1 (least bad) up; 0 is a free or hugetlb page.
_REASON_CODES = ("movable_left", "pcp_race", "writeback", "slab_in_use", "unmovable")


@compiled("pages, int, int[]")
def _worst_pages(pages: np.ndarray, order: int, counts: np.ndarray) -> None:
    """`counts[c]`: how many order-aligned blocks (from pfn 0; a partial last block is
    ignored) have `c` as their worst page's category (see `failure_reasons`), in one pass.

    A page is allocated when it lies in a block headed by a PG_HEAD page; per page, the first
    that applies of: allocated hugetlb 0, allocated unmovable (kernel, or no kind and neither
    MOVABLE nor RECLAIMABLE) 5, allocated reclaimable slab (or no kind and RECLAIMABLE) 4,
    allocated under writeback 3, in a block on a per-cpu list (headed by a PG_PCP page) 2,
    allocated anon, file or (no kind) MOVABLE 1, else 0.
    """
    n = pages.shape[0]
    size = 1 << order
    usable = n - n % size
    alloc_end = 0
    pcp_end = 0
    worst = 0
    for p in range(usable):
        flags = pages[p]["flags"]
        if flags & PG_HEAD:
            o = int(pages[p]["order"])
            if 0 <= o < 63:
                alloc_end = max(alloc_end, p + (1 << o))
        elif flags & PG_PCP:
            o = int(pages[p]["order"])  # 6.1 queues blocks of order > 0
            if 0 <= o < 63:
                pcp_end = max(pcp_end, p + (1 << o))
        allocated = p < alloc_end
        mtk = int(pages[p]["mt"])
        kind = mtk >> KIND_SHIFT
        mt = mtk & MT_MASK
        cat = 0
        if allocated:
            if kind == KIND_HUGETLB:
                cat = 0
            elif kind == KIND_KERNEL or (kind == KIND_NONE and mt != MIGRATE_MOVABLE
                                         and mt != MIGRATE_RECLAIMABLE):
                cat = 5
            elif kind == KIND_SLAB or (kind == KIND_NONE and mt == MIGRATE_RECLAIMABLE):
                cat = 4
            elif flags & PG_WRITEBACK:
                cat = 3
            elif flags & PG_PCP:
                cat = 2
            elif (kind in (KIND_ANON, KIND_FILE, KIND_FILE_MAPPED)
                  or (kind == KIND_NONE and mt == MIGRATE_MOVABLE)):
                cat = 1
        elif p < pcp_end:
            cat = 2
        if cat > worst:
            worst = cat
        if (p & (size - 1)) == size - 1:
            counts[worst] += 1
            worst = 0


def failure_reasons(m: Machine, order: int) -> dict[str, int]:
    """For every order-aligned block that is neither wholly free nor a hugetlb page, the worst
    page it holds: unmovable kernel memory, a reclaimable slab page still in use, a page under
    writeback, a page on a per-cpu list (a free-list race), or only movable pages left. One
    compiled pass over the pages (`_worst_pages`)."""
    counts = np.zeros(len(_REASON_CODES) + 1, dtype=np.int64)
    _worst_pages(m.pages, order, counts)
    out = {name: 0 for name in FAILURE_REASONS}
    for code, name in enumerate(_REASON_CODES, start=1):
        out[name] = int(counts[code])
    return out

"""The kernel facade: batched fast path, kswapd as a SimPy process, the slow path, owners told
of reclaim, failures recorded."""

from __future__ import annotations

import numpy as np
import simpy

from fragsim.models.mm.constants import KIND_FILE, KIND_KERNEL, WMARK_LOW, WMARK_MIN
from fragsim.models.mm.gfp import GFP_ATOMIC, GFP_HIGHUSER_MOVABLE, GFP_KERNEL
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.profiles import machine_config
from fragsim.sim.kernel import Kernel
from fragsim.sim.recorder import Recorder
from fragsim.sim.streams import Streams
from tests.conftest_tiny import drive

OWNER = 1 << 20


def _kernel(memory: int = 32 << 20) -> Kernel:
    env = simpy.Environment()
    m = Machine(machine_config("2.6.24", memory=memory, layout="flat"))
    return Kernel(env, m, Recorder(), Streams(0))




def test_kswapd_runs_and_owners_hear_of_reclaim() -> None:
    k = _kernel()
    m = k.machine
    told: list[np.ndarray] = []
    k.register_owner(OWNER, OWNER + 100, told.append, None)
    n = m.nr_pages  # more page cache than memory: reclaim must recycle the oldest pages
    pfns = drive(k, k.alloc(n, 0, int(GFP_HIGHUSER_MOVABLE), OWNER + 1, KIND_FILE, lru=0))
    assert (pfns >= 0).sum() == n
    assert k.kswapd.runs > 0 and k.kswapd.reclaimed > 0
    rows = np.concatenate(told)
    assert (rows[:, 1] == OWNER + 1).all() and (rows[:, 2] == KIND_FILE).all()
    assert m.stat("pgsteal") >= rows.shape[0]
    assert m.free_pages() >= int(m.zones[0]["watermark"][WMARK_MIN])


def test_on_alloc_sees_every_page_before_reclaim() -> None:
    k = _kernel()
    seen: list[np.ndarray] = []
    n = k.machine.nr_pages
    drive(k, k.alloc(n, 0, int(GFP_HIGHUSER_MOVABLE), OWNER, KIND_FILE, lru=0,
                    on_alloc=lambda pfns, idx: seen.append(idx)))
    idx = np.concatenate(seen)
    assert np.array_equal(idx, np.arange(n))


def test_atomic_failure_is_an_event_and_counted() -> None:
    k = _kernel()
    m = k.machine
    low = int(m.zones[0]["watermark"][WMARK_LOW])
    drive(k, k.alloc(m.free_pages() - low + 1, 0, int(GFP_KERNEL), 7, KIND_KERNEL))
    fails = m.stat("alloc_fail")
    # Unreclaimable kernel memory fills the zone: an atomic request of 1000 pages fails.
    out = drive(k, k.alloc(m.free_pages(), 0, int(GFP_ATOMIC), 7, KIND_KERNEL, source="net"))
    failed = int((out < 0).sum())
    assert failed > 0 and m.stat("alloc_fail") == fails + failed
    ev = k.recorder.events_frame()
    row = ev[ev["event"] == "page_allocation_failure"].iloc[-1]
    assert row["source"] == "net" and row["value"] == failed and row["detail"] == "mode:0x20"


def test_slab_alloc_grows_through_reclaim() -> None:
    k = _kernel()
    m = k.machine
    drive(k, k.alloc(m.nr_pages, 0, int(GFP_HIGHUSER_MOVABLE), OWNER, KIND_FILE, lru=0))
    cache = k.slab_cache("dentry", 20, True)
    handles = drive(k, k.slab_alloc(cache, 20 * 500))
    assert (handles >= 0).all() and cache.nr_pages == 500


def test_owner_ranges_may_not_overlap() -> None:
    k = _kernel()
    k.register_owner(10, 20, None, None)
    try:
        k.register_owner(15, 30, None, None)
    except ValueError as exc:
        assert "overlaps" in str(exc)
    else:
        raise AssertionError("overlap accepted")
    assert isinstance(k.env, simpy.Environment)

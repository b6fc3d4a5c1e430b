"""kcompactd0 as a SimPy process: Linux 6.1 `kcompactd()` (mm/compaction.c) for node 0.

The loop of 6.1 `kcompactd()`, with its `wait_event_freezable_timeout(pgdat->kcompactd_wait,
kcompactd_work_requested(pgdat), timeout)`:

1. the timeout is HPAGE_FRAG_CHECK_INTERVAL_MSEC (500 ms of simulated time), or for ever when
   `compaction_proactiveness` is 0;
2. if work is asked (`kcompactd_work_requested`: an order > 0 recorded by `wakeup_kcompactd`)
   before the wait, when woken, or when the timeout expires, run `kcompactd_do_work` and go
   round with the default timeout (a proactive deferral is forgotten, as 6.1 says);
3. otherwise (timed out with nothing asked) run the proactive step (`kcompactd_proactive`:
   `should_proactive_compact_node`, `proactive_compact_node`), whose answer is the next
   timeout: 500 ms, or 32 s (`<< COMPACT_MAX_DEFER_SHIFT`) when the score did not go down.

While it waits, `machine.kcompactd_sleeper` is its wake-up call (6.1 `wq_has_sleeper`), which
`wakeup_kcompactd` calls once `kcompactd_node_suitable` agrees. Compaction takes no simulated
time; the owners of migrated pages are told at once (`KernelAPI.drain`).

Cost: the 500 ms timer is one SimPy timeout a wait (172,800 a simulated day), each followed
by one compiled pass over the zones' free counts (`fragmentation_score_node`); a wake-up
(rare: kswapd going to sleep) interrupts the wait (`Process.interrupt`), so a wait that times
out costs no other event.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING

import simpy

from fragsim.models.agents.base import Proc
from fragsim.models.mm.kcompactd import (
    HPAGE_FRAG_CHECK_INTERVAL_S,
    kcompactd_do_work,
    kcompactd_proactive,
    kcompactd_work_requested,
)

if TYPE_CHECKING:
    from fragsim.models.agents.base import KernelAPI

__all__ = ["Kcompactd"]


class Kcompactd:
    """kcompactd0 of node 0 (module docstring)."""

    name = "kcompactd0"

    def __init__(self, env: simpy.Environment, kernel: KernelAPI) -> None:
        self.env = env
        self.kernel = kernel
        self._process: simpy.Process | None = None
        self._waiting = False
        #: What a wait with no timeout (proactiveness 0) waits on: only a wake-up ends it.
        self._never = env.event()
        #: kcompactd_do_work calls, proactive checks (timeouts with nothing asked) and
        #: proactive compactions run.
        self.runs = 0
        self.checks = 0
        self.proactive_runs = 0

    def kick(self) -> None:
        """`wake_up_interruptible(&pgdat->kcompactd_wait)`: end the current wait (once)."""
        if self._waiting and self._process is not None:
            self._waiting = False
            self._process.interrupt()

    def run(self) -> Proc:
        env = self.env
        m = self.kernel.machine
        # 6.1 kcompactd(): the node's request starts empty.
        m.kcompactd_order = 0
        m.kcompactd_highest_zoneidx = m.nr_zones - 1
        self._process = env.active_process
        timeout = HPAGE_FRAG_CHECK_INTERVAL_S
        while True:
            if not m.config.compaction_proactiveness:
                timeout = float("inf")
            if not kcompactd_work_requested(m):
                self._waiting = True
                m.kcompactd_sleeper = self.kick
                with suppress(simpy.Interrupt):  # woken by wakeup_kcompactd
                    yield self._never if timeout == float("inf") else env.timeout(timeout)
                self._waiting = False
                m.kcompactd_sleeper = None
            m.now = float(env.now)
            if kcompactd_work_requested(m):
                kcompactd_do_work(m)
                self.kernel.drain()
                self.runs += 1
                timeout = HPAGE_FRAG_CHECK_INTERVAL_S
                continue
            self.checks += 1
            timeout, ran = kcompactd_proactive(m)
            if ran:
                self.proactive_runs += 1
                self.kernel.drain()

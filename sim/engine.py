"""The simulation environment: one `simpy.Environment` that owns a run's config, clock, random
streams, recorder, machine and kernel.

Simulated time is in seconds from boot (`env.now`); `uptime_days` is the same in days. Nothing
else in a run keeps global state: two environments built from the same workload and seed run
identically, in one process or on many.
"""

from __future__ import annotations

import simpy

from fragsim.models.mm.machine import Machine
from fragsim.models.mm.profiles import machine_config
from fragsim.sim.config import SCENARIOS, Workload
from fragsim.sim.kernel import Kernel
from fragsim.sim.recorder import Recorder
from fragsim.sim.streams import Streams

__all__ = ["Environment"]


class Environment(simpy.Environment):
    """A run's world (module docstring)."""

    def __init__(self, workload: Workload) -> None:
        super().__init__()
        self.workload = workload
        self.seed = workload.run.seed
        self.streams = Streams(self.seed)
        self.recorder = Recorder()
        mp = workload.machine
        kp = workload.kernel
        # Kernel sysctls at -1 keep the preset's value (and a preset without one its absence).
        sysctls = ({} if kp.watermark_scale_factor < 0
                   else {"watermark_scale_factor": kp.watermark_scale_factor})
        if kp.compaction_proactiveness >= 0:
            sysctls["compaction_proactiveness"] = kp.compaction_proactiveness
        if kp.watermark_boost_factor >= 0:
            sysctls["watermark_boost_factor"] = kp.watermark_boost_factor
        self.machine = Machine(machine_config(
            kp.version,
            **sysctls,
            memory=mp.memory,
            profile=mp.profile,
            layout=mp.layout,
            swap=mp.swap,
            writeback_delay=mp.writeback_delay_s,
            min_free_kbytes=None if kp.min_free_kbytes < 0 else kp.min_free_kbytes,
            thp_enabled=kp.thp_enabled,
            thp_defrag=kp.thp_defrag,
            defrag_mode=bool(kp.defrag_mode),
        ))
        self.kernel = Kernel(self, self.machine, self.recorder, self.streams)
        cls = SCENARIOS[workload.scenario]
        self.scenario = cls(self.kernel, workload.sections, workload.run.days)

    @property
    def uptime_days(self) -> float:
        return float(self.now) / 86400.0

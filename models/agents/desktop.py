"""The desktop scenario: a 2007-era desktop used every day, left running for days.

It puts together every agent of a desktop: the file system and the user's file activity,
long-lived session programs, applications and short commands, kernel objects (kmalloc),
network bursts, modules, a sound card's DMA buffers, the nightly updatedb, pdflush, and (in the
kernel facade) kswapd, under one daily rhythm. Every parameter comes from the workload file
(`experiments/workloads/desktop.toml`), the same for every kernel compared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from fragsim.models.agents.cron import Updatedb, UpdatedbParams
from fragsim.models.agents.daemons import Flusher, FlusherParams
from fragsim.models.agents.files import FileSystem, FileSystemParams
from fragsim.models.agents.kernelmem import (
    DMADriver,
    DMAParams,
    Kmalloc,
    KmallocParams,
    Modules,
    ModulesParams,
    NetBuffers,
    NetParams,
)
from fragsim.models.agents.processes import Processes, TaskParams
from fragsim.models.agents.rhythm import Rhythm, RhythmParams
from fragsim.models.agents.user import (
    Apps,
    AppsParams,
    Commands,
    CommandsParams,
    Session,
    SessionParams,
    UserFiles,
    UserFilesParams,
)

if TYPE_CHECKING:
    from fragsim.models.agents.base import KernelAPI

__all__ = ["DesktopScenario"]


class DesktopScenario:
    """The desktop's agents (module docstring). Runs for `run.days`; probed periodically."""

    name = "desktop"
    SECTIONS: ClassVar[dict[str, type]] = {
        "rhythm": RhythmParams,
        "fs": FileSystemParams,
        "tasks": TaskParams,
        "files": UserFilesParams,
        "session": SessionParams,
        "apps": AppsParams,
        "commands": CommandsParams,
        "kmalloc": KmallocParams,
        "net": NetParams,
        "modules": ModulesParams,
        "dma": DMAParams,
        "updatedb": UpdatedbParams,
        "flusher": FlusherParams,
    }
    #: The run life cycle probes the machine with hugepages_get every probe interval.
    periodic_probes = True

    def __init__(self, kernel: KernelAPI, params: dict[str, Any], days: float) -> None:
        self.kernel = kernel
        self.duration_s = days * 86400.0
        self.rhythm = Rhythm(params["rhythm"])
        self.flusher = Flusher(kernel, params["flusher"])
        self.fs = FileSystem(kernel, params["fs"], self.flusher, capacity=1 << 18)
        self.procs = Processes(kernel, self.fs, params["tasks"])
        self.files = UserFiles(kernel, self.rhythm, self.fs, params["files"])
        pop = self.files.system_popularity
        self.agents: list[Any] = [
            Modules(kernel, params["modules"]),
            Kmalloc(kernel, self.rhythm, params["kmalloc"]),
            Session(kernel, self.rhythm, self.procs, pop, params["session"]),
            self.files,
            Apps(kernel, self.rhythm, self.procs, pop, params["apps"]),
            Commands(kernel, self.rhythm, self.procs, pop, params["commands"]),
            NetBuffers(kernel, self.rhythm, params["net"]),
            DMADriver(kernel, self.rhythm, params["dma"]),
            Updatedb(kernel, self.rhythm, self.fs, self.procs, self.files.fids,
                     params["updatedb"]),
            self.flusher,
        ]
        self.dma = self.agents[7]

    def start(self) -> None:
        for agent in self.agents:
            self.kernel.env.process(agent.run())

    def outcome(self) -> dict[str, float]:
        """Figures of the scenario itself for the `runs` row."""
        return {
            "dma_attempts": float(self.dma.attempts),
            "dma_failures": float(self.dma.failures),
            "processes_spawned": float(self.procs.spawned),
            "file_pages_read": float(self.fs.read_pages),
            "file_pages_written": float(self.fs.written_pages),
        }

"""cron.daily's `updatedb`: every night a walk of the whole file system.

`/etc/crontab` of Debian and Ubuntu (2007) runs `/etc/cron.daily` at 06:25; its `find` or
`mlocate` job reads every directory and looks up every name in it. For memory that means, per
file, a dentry and an inode (found in the caches or allocated: RECLAIMABLE slab), and per
directory its blocks and per `inodes_per_block` files an inode-table block, read into the block
device's page cache (GFP_USER | __GFP_MOVABLE, 2.6.24 `grow_dev_page`) with a buffer head each.
The walk leaves the dentry and inode caches holding the whole tree until
memory pressure shrinks them again, which is why updatedb is the classic way to fill a
desktop's slab overnight. The walk runs in batches of files at `files_per_s`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.agents.base import Proc, param
from fragsim.models.mm.gfp import GFP_USER_PAGECACHE

if TYPE_CHECKING:
    from fragsim.models.agents.base import KernelAPI
    from fragsim.models.agents.files import FileSystem
    from fragsim.models.agents.processes import Processes
    from fragsim.models.agents.rhythm import Rhythm

__all__ = ["Updatedb", "UpdatedbParams"]


@dataclass(frozen=True)
class UpdatedbParams:
    """The nightly walk."""

    enabled: bool = param(True, "run cron.daily's updatedb")
    hour: float = param(6.42, "hour of day it starts (06:25)")
    files_per_s: float = param(700.0, "files looked up per second (seek-bound on a cold "
                               "cache)")
    files_per_dir: int = param(12, "files per directory (one block each)")
    inodes_per_block: int = param(32, "ext3 inodes per 4 KiB inode-table block (128-byte "
                                  "inodes)")
    batch: int = param(2000, "files per simulation step")
    rss_mib: float = param(2.0, "resident set of the updatedb process")


class Updatedb:
    """The walk (module docstring)."""

    name = "updatedb"

    def __init__(self, kernel: KernelAPI, rhythm: Rhythm, fs: FileSystem, procs: Processes,
                 files: np.ndarray, params: UpdatedbParams) -> None:
        self.kernel = kernel
        self.rhythm = rhythm
        self.fs = fs
        self.procs = procs
        self.params = params
        self.files = np.asarray(files, np.int64)
        n = self.files.shape[0]
        nr_dirs = max(1, -(-n // max(params.files_per_dir, 1)))
        self.dirs = fs.create(np.ones(nr_dirs, np.int64))
        self.itable = fs.create(np.ones(max(1, -(-n // max(params.inodes_per_block, 1))),
                                        np.int64))
        fs.buffers[self.dirs] = True
        fs.buffers[self.itable] = True
        self.runs = 0

    def run(self) -> Proc:
        p = self.params
        env = self.kernel.env
        if not p.enabled:
            return
        while True:
            yield env.timeout(self.rhythm.next_time_of_day(float(env.now), p.hour)
                              - float(env.now))
            yield from self.walk()

    def walk(self) -> Proc:
        """One updatedb run over every file, directory by directory."""
        p = self.params
        env = self.kernel.env
        self.runs += 1
        slot = yield from self.procs.spawn(1, None, self.name)
        yield from self.procs.grow(slot, int(p.rss_mib * 256), self.name)
        files = self.files[self.fs.alive[self.files]]
        step = max(1, p.batch)
        per_dir = max(p.files_per_dir, 1)
        per_block = max(p.inodes_per_block, 1)
        for start in range(0, files.shape[0], step):
            chunk = files[start:start + step]
            idx = start + np.arange(chunk.shape[0])
            blocks = np.concatenate([
                self.dirs[np.unique(np.minimum(idx // per_dir, self.dirs.shape[0] - 1))],
                self.itable[np.unique(np.minimum(idx // per_block, self.itable.shape[0] - 1))],
            ])
            yield from self.fs.read(blocks, self.name, gfp=int(GFP_USER_PAGECACHE))
            yield from self.fs.lookup(chunk, self.name)
            yield env.timeout(chunk.shape[0] / p.files_per_s)
        self.procs.exit(slot)

"""The mmtests stress-highalloc test: kernel builds under huge page allocation passes.

The method (kernel-reference section 11, mmtests `stress-highalloc`): NUM_KERNELS =
MemTotal_MB / 400 copies of a kernel source tree plus one primary tree are unpacked, and each is
built with `make -j1`; after `build_s` (5 minutes) pass 1 tries to allocate `pass_percent`
(95%) of memory as huge pages, one attempt every huge page size / `rate_mb_s` (16 MB/s: 125 ms
at order 9), each a plain `alloc_pages(GFP_HIGHUSER_MOVABLE, order)`, successes pinned until the
pass ends; pass 2 follows at once; after `wait_s` (180 s) the builds are killed, the trees
deleted, a file the size of memory written and read back with dd, caches dropped,
min_free_kbytes set to 1024, and pass 3 runs "at rest". The result of each pass is the share of
attempts that succeeded.

A build (`KernelBuild`) is a `make` process that runs compile jobs one after another. A job is a
`cc1` process (its binary read through the page cache) that reads its source file and
`headers_per_unit` headers of its tree (popular headers, Zipf, mostly cached), faults in its
resident set in two halves over its lifetime, writes its object file (dirty page cache), and
exits, with `helpers` tiny processes (the gcc driver, as) forked and exiting around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from fragsim.models.agents.base import Proc, param
from fragsim.models.agents.cron import Updatedb, UpdatedbParams
from fragsim.models.agents.daemons import Flusher, FlusherParams
from fragsim.models.agents.files import FileSystem, FileSystemParams
from fragsim.models.agents.kernelmem import Kmalloc, KmallocParams, Modules, ModulesParams
from fragsim.models.agents.processes import Processes, TaskParams
from fragsim.models.agents.rhythm import Rhythm, RhythmParams
from fragsim.models.agents.user import MIB, Popularity, Session, SessionParams, lognormal_pages
from fragsim.models.mm.constants import KIND_HUGETLB, PAGE_SIZE
from fragsim.models.mm.gfp import parse_gfp
from fragsim.models.mm.probes import HUGETLB_OWNER
from fragsim.models.mm.reclaim_state import reclaim_state

if TYPE_CHECKING:
    from fragsim.models.agents.base import KernelAPI

__all__ = ["BuildParams", "KernelBuild", "StressParams", "StressScenario"]


@dataclass(frozen=True)
class BuildParams:
    """A Linux 2.6.2x source tree and its build with make -j1."""

    tree_files: int = param(23_000, "files in the tree")
    tree_mib: float = param(260.0, "unpacked size of the tree")
    size_sigma: float = param(1.3, "lognormal shape of its file sizes")
    headers: int = param(5_000, "header files among them")
    compile_units: int = param(1_600, ".c files one build compiles")
    headers_per_unit: int = param(150, "headers a compile job reads")
    header_zipf: float = param(1.0, "Zipf exponent of header popularity")
    compile_median_s: float = param(0.5, "median duration of a compile job (lognormal)")
    compile_sigma: float = param(0.7, "lognormal shape of compile durations")
    cc1_rss_mib: float = param(25.0, "median resident set of cc1 (lognormal)")
    cc1_rss_sigma: float = param(0.4, "lognormal shape of cc1 resident sets")
    object_ratio: float = param(1.0, "object file size / source file size")
    helpers: int = param(2, "tiny processes forked per job (gcc driver, as)")
    make_rss_mib: float = param(8.0, "resident set of make")
    toolchain_files: int = param(30, "files of the compiler (cc1, as, libraries)")
    toolchain_mib: float = param(20.0, "their total size")
    extract_mb_s: float = param(25.0, "unpacking speed of a tree (tar, disk-bound)")
    mb_per_kernel: int = param(400, "NUM_KERNELS = MemTotal_MB / this (mmtests)")
    builds: int = param(0, "builds at once; 0: NUM_KERNELS + 1 (the primary tree)")
    start_as_unpacked: bool = param(False, "start each build as soon as its tree is there "
                                    "(vmregress), instead of all after the last (mmtests)")
    updatedb: bool = param(False, "run updatedb over every file alongside the builds "
                           "(vmregress)")
    system_files: int = param(60000, "files of the installed system besides the trees")
    system_size_median_kib: float = param(2.5, "their median size (lognormal)")
    system_size_sigma: float = param(2.8, "lognormal shape of their sizes")


@dataclass(frozen=True)
class StressParams:
    """The phases of stress-highalloc (mmtests)."""

    settle_s: float = param(60.0, "idle time after boot before the trees are unpacked")
    build_s: float = param(300.0, "builds run this long before pass 1")
    pass_percent: float = param(95.0, "memory asked for in each pass, percent")
    rate_mb_s: float = param(16.0, "one attempt every huge page size / this")
    gfp: str = param("GFP_HIGHUSER_MOVABLE", "GFP mask of the attempts")
    wait_s: float = param(180.0, "wait after pass 2 before the builds are killed")
    dd_mb_s: float = param(60.0, "dd write and read speed")
    dd_chunk_mib: int = param(64, "the dd file is simulated in chunks of this size")
    drop_caches: int = param(3, "value written to /proc/sys/vm/drop_caches before pass 3 "
                             "(0: none)")
    rest_min_free_kbytes: int = param(1024, "min_free_kbytes set before pass 3 (0: left as "
                                      "it was)")
    rest_s: float = param(10.0, "idle time before pass 3")
    swappiness: int = param(60, "/proc/sys/vm/swappiness during the test")


class KernelBuild:
    """One `make -j1` of one tree (module docstring)."""

    def __init__(self, kernel: KernelAPI, fs: FileSystem, procs: Processes, tree: np.ndarray,
                 toolchain: Popularity, params: BuildParams, index: int) -> None:
        self.kernel = kernel
        self.fs = fs
        self.procs = procs
        self.params = params
        self.name = f"build{index}"
        self.rng = kernel.stream(self.name)
        p = params
        self.tree = tree
        self.headers = Popularity(tree[:p.headers], p.header_zipf, self.rng)
        self.sources = tree[p.headers:p.headers + p.compile_units]
        self.toolchain = toolchain
        self.killed = False
        self.jobs = 0
        self.objects: list[np.ndarray] = []
        self._live: set[int] = set()

    def kill(self) -> None:
        """kill the make and its children."""
        self.killed = True
        for slot in list(self._live):
            self.procs.exit(slot)
        self._live.clear()

    def run(self) -> Proc:
        p = self.params
        make = yield from self.procs.spawn(1, self.toolchain.draw(self.rng, 3), self.name)
        self._live.add(make)
        yield from self.procs.grow(make, int(p.make_rss_mib * MIB), self.name)
        while not self.killed:
            for src in self.sources.tolist():
                if self.killed:
                    return
                yield from self._job(int(src))
            # The tree is built: make clean and build again.
            for objs in self.objects:
                self.fs.delete(objs)
            self.objects.clear()

    def _job(self, src: int) -> Proc:
        p = self.params
        rng = self.rng
        k = self.kernel
        self.jobs += 1
        helpers = []
        for _ in range(p.helpers):
            h = yield from self.procs.spawn(1, self.toolchain.draw(rng, 2), self.name)
            helpers.append(h)
            self._live.add(h)
        cc1 = yield from self.procs.spawn(1, self.toolchain.draw(rng, 4), self.name)
        self._live.add(cc1)
        if self.killed:
            return
        rss = int(lognormal_pages(rng, 1, p.cc1_rss_mib, p.cc1_rss_sigma)[0])
        life = p.compile_median_s * float(np.exp(p.compile_sigma * rng.standard_normal()))
        yield from self.procs.grow(cc1, rss // 2, self.name)
        files = np.concatenate([[src], self.headers.draw(rng, p.headers_per_unit)])
        yield from self.fs.read(files, self.name)
        yield k.env.timeout(life / 2)
        if self.killed:
            return
        yield from self.procs.grow(cc1, rss - rss // 2, self.name)
        yield k.env.timeout(life / 2)
        if self.killed:
            return
        obj = self.fs.create(np.zeros(1, np.int64))
        size = max(1, int(round(self.fs.size[src] * p.object_ratio)))
        yield from self.fs.write(obj, size, self.name)
        self.objects.append(obj)
        for slot in [cc1, *helpers]:
            self._live.discard(slot)
            self.procs.exit(slot)


class StressScenario:
    """stress-highalloc (module docstring). Ends when pass 3 is done."""

    name = "stress-highalloc"
    SECTIONS: ClassVar[dict[str, type]] = {
        "fs": FileSystemParams,
        "tasks": TaskParams,
        "session": SessionParams,
        "kmalloc": KmallocParams,
        "modules": ModulesParams,
        "flusher": FlusherParams,
        "build": BuildParams,
        "stress": StressParams,
        "updatedb": UpdatedbParams,
    }
    periodic_probes = False

    def __init__(self, kernel: KernelAPI, params: dict[str, Any], days: float) -> None:
        self.kernel = kernel
        self.params = params
        self.build_params: BuildParams = params["build"]
        self.stress: StressParams = params["stress"]
        self.gfp = int(parse_gfp(self.stress.gfp))
        if not 0 < self.stress.pass_percent <= 100:
            raise ValueError(f"stress.pass_percent {self.stress.pass_percent} is out of range: "
                             "allowed (0, 100]")
        # A benchmark box is busy all the time: no day and night.
        self.rhythm = Rhythm(RhythmParams(active_start_hour=0.0, active_end_hour=24.0))
        self.flusher = Flusher(kernel, params["flusher"])
        self.fs = FileSystem(kernel, params["fs"], self.flusher, capacity=1 << 17)
        self.procs = Processes(kernel, self.fs, params["tasks"])
        self.rng = kernel.stream(self.name)
        b = self.build_params
        tool_sizes = np.full(b.toolchain_files, max(1, int(b.toolchain_mib * MIB
                                                           / max(b.toolchain_files, 1))))
        self.toolchain = Popularity(self.fs.create(tool_sizes), 1.0, self.rng)
        sizes = np.ceil(b.system_size_median_kib / 4.0
                        * np.exp(b.system_size_sigma * self.rng.standard_normal(b.system_files)))
        self.system = self.fs.create(np.clip(sizes, 1, 64 * MIB).astype(np.int64))
        self.updatedb_params: UpdatedbParams = params["updatedb"]
        if not 0 <= self.stress.swappiness <= 100:
            raise ValueError(f"stress.swappiness {self.stress.swappiness} is out of range: "
                             "allowed 0..100")
        reclaim_state(kernel.machine).swappiness = self.stress.swappiness
        self.agents: list[Any] = [
            Modules(kernel, params["modules"]),
            Kmalloc(kernel, self.rhythm, params["kmalloc"]),
            Session(kernel, self.rhythm, self.procs, self.toolchain, params["session"]),
            self.flusher,
        ]
        self.builds: list[KernelBuild] = []
        self.results: dict[str, float] = {}
        self.done = kernel.env.event()
        #: Huge page size x pass_percent / 100 of memory: attempts per pass.
        m = kernel.machine
        self.order = m.pageblock_order
        self.attempts = int(m.nr_pages * self.stress.pass_percent / 100) >> self.order
        self.duration_s = float("inf")

    def start(self) -> None:
        env = self.kernel.env
        for agent in self.agents:
            env.process(agent.run())
        env.process(self.run())

    # --- the phases ---------------------------------------------------------------------------
    def _phase(self, name: str) -> None:
        self.kernel.event("stress_phase", self.name, detail=name)

    def _tree(self, index: int) -> Proc:
        """Unpack one tree at extract speed; returns its file ids."""
        b = self.build_params
        rng = self.rng
        sizes = np.exp(b.size_sigma * rng.standard_normal(b.tree_files))
        sizes = np.maximum(1, np.round(sizes / sizes.sum() * b.tree_mib * MIB)).astype(np.int64)
        fids = self.fs.create(np.zeros(b.tree_files, np.int64))
        step = 2000
        for start in range(0, fids.shape[0], step):
            part, each = fids[start:start + step], sizes[start:start + step]
            yield from self.fs.write(part, each, f"tar{index}")
            yield self.kernel.env.timeout(int(each.sum()) * PAGE_SIZE / (b.extract_mb_s * 1e6))
        return fids

    def _pass(self, label: str) -> Proc:
        """One pass: `attempts` huge page attempts at the mmtests rate, pinned until the end."""
        s = self.stress
        k = self.kernel
        interval = (PAGE_SIZE << self.order) / (s.rate_mb_s * (1 << 20))
        pinned = []
        for _ in range(self.attempts):
            pfn = yield from k.alloc_pages(self.order, self.gfp, HUGETLB_OWNER, KIND_HUGETLB,
                                           label)
            if pfn >= 0:
                pinned.append(pfn)
            yield k.env.timeout(interval)
        pct = 100.0 * len(pinned) / self.attempts if self.attempts else 0.0
        k.event("stress_highalloc_pass", label, order=self.order, value=pct,
                detail=f"{len(pinned)}/{self.attempts}")
        k.free(np.array(pinned, np.int64))
        return pct

    def run(self) -> Proc:
        s = self.stress
        b = self.build_params
        k = self.kernel
        env = k.env
        m = k.machine
        yield env.timeout(s.settle_s)
        memtotal_mb = (m.nr_pages * PAGE_SIZE) >> 20
        nr_trees = b.builds if b.builds > 0 else memtotal_mb // max(b.mb_per_kernel, 1) + 1
        self._phase(f"unpack {nr_trees} trees")
        trees = []

        def start(t: int, tree: np.ndarray) -> None:
            build = KernelBuild(k, self.fs, self.procs, tree, self.toolchain, b, t)
            self.builds.append(build)
            env.process(build.run())

        for t in range(nr_trees):
            tree = yield from self._tree(t)
            trees.append(tree)
            if b.start_as_unpacked:
                start(t, tree)
        self._phase("build")
        if not b.start_as_unpacked:
            for t, tree in enumerate(trees):
                start(t, tree)
        if b.updatedb:
            files = np.concatenate([self.system, *trees])
            walker = Updatedb(k, self.rhythm, self.fs, self.procs, files,
                              self.updatedb_params)
            env.process(walker.walk())
        yield env.timeout(s.build_s)
        self._phase("pass1")
        self.results["pass1_pct"] = yield from self._pass("pass1")
        self._phase("pass2")
        self.results["pass2_pct"] = yield from self._pass("pass2")
        yield env.timeout(s.wait_s)
        self._phase("kill builds, delete trees")
        for build in self.builds:
            build.kill()
        for tree in trees:
            self.fs.delete(tree)
        for build in self.builds:
            for objs in build.objects:
                self.fs.delete(objs)
        yield env.timeout(1.0)
        self._phase("dd")
        yield from self._dd(memtotal_mb)
        if s.drop_caches:
            self._phase("drop caches")
            k.drop_caches(s.drop_caches)
        if s.rest_min_free_kbytes:
            m.set_min_free_kbytes(s.rest_min_free_kbytes)
        yield env.timeout(s.rest_s)
        self._phase("pass3")
        self.results["pass3_pct"] = yield from self._pass("pass3")
        self.duration_s = float(env.now)
        self.done.succeed()

    def _dd(self, memtotal_mb: int) -> Proc:
        """dd a file the size of memory to disk and read it back, then remove it."""
        s = self.stress
        env = self.kernel.env
        chunk = s.dd_chunk_mib * MIB
        nr = max(1, -(-memtotal_mb // max(s.dd_chunk_mib, 1)))
        parts = self.fs.create(np.zeros(nr, np.int64))
        dt = chunk * PAGE_SIZE / (s.dd_mb_s * 1e6)
        for fid in parts.tolist():
            yield from self.fs.write(np.array([fid]), chunk, "dd")
            yield env.timeout(dt)
        for fid in parts.tolist():
            yield from self.fs.read(np.array([fid]), "dd")
            yield env.timeout(dt)
        self.fs.delete(parts)

    def outcome(self) -> dict[str, float]:
        out = {f"pass{i}_pct": self.results.get(f"pass{i}_pct", float("nan")) for i in (1, 2, 3)}
        out["compile_jobs"] = float(sum(b.jobs for b in self.builds))
        out["builds"] = float(len(self.builds))
        out["processes_spawned"] = float(self.procs.spawned)
        return out

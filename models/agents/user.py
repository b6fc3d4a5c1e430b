"""The desktop's user: long-lived programs, applications, short commands, and file activity.

- `Session`: programs started at boot and login (daemons, X, the desktop environment, a
  browser, a mail client) that live for the whole uptime. Each has a resident set drawn from a
  lognormal, grows slowly while the user is active, and every `interval_s` frees and refaults a
  share of its heap (`churn`) and references a share of its pages (`touch`). A browser-like
  program (`big_*`) grows faster and is restarted when it passes a limit.
- `Apps`: applications the user opens during the day (an office suite, an image viewer):
  Poisson arrivals while active, Pareto lifetimes.
- `Commands`: short-lived processes (shell commands, scripts, cron jobs): Poisson arrivals,
  Pareto lifetimes (Harchol-Balter and Downey 1997: P(life > t) ~ 1/t), small resident sets.
- `UserFiles`: file reads with Zipf popularity over the desktop's files (hot files are read
  again and again, mostly from the page cache), new files written (mail, browser cache,
  downloads) that are deleted after a while, and now and then a large file streamed (media).

Every process reads its program's files (`exe_files`, drawn with the same popularity from the
system files) through the page cache when it starts.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.agents.base import Proc, param
from fragsim.models.agents.kernelmem import pareto_lifetimes

if TYPE_CHECKING:
    from fragsim.models.agents.base import KernelAPI
    from fragsim.models.agents.files import FileSystem
    from fragsim.models.agents.processes import Processes
    from fragsim.models.agents.rhythm import Rhythm

__all__ = [
    "Apps",
    "AppsParams",
    "Commands",
    "CommandsParams",
    "Popularity",
    "Session",
    "SessionParams",
    "UserFiles",
    "UserFilesParams",
]

MIB = 256  # pages


def lognormal_pages(rng: np.random.Generator, n: int, median_mib: float,
                    sigma: float) -> np.ndarray:
    """Resident sets in pages, lognormal with the given median (MiB) and shape."""
    return np.maximum(1, (median_mib * MIB * np.exp(sigma * rng.standard_normal(n)))
                      .astype(np.int64))


class Popularity:
    """Zipf popularity over a set of files: rank r is chosen with probability ~ 1 / r^s, and
    ranks map to files through a random permutation fixed at the start of the run."""

    def __init__(self, fids: np.ndarray, s: float, rng: np.random.Generator) -> None:
        if fids.shape[0] == 0:
            raise ValueError("a popularity needs at least one file")
        self.fids = rng.permutation(np.asarray(fids, np.int64))
        w = 1.0 / np.arange(1, self.fids.shape[0] + 1, dtype=np.float64) ** s
        self.cdf = np.cumsum(w) / w.sum()

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        idx = np.searchsorted(self.cdf, rng.random(n), side="right")
        out: np.ndarray = self.fids[np.minimum(idx, self.fids.shape[0] - 1)]
        return out


@dataclass(frozen=True)
class SessionParams:
    """Programs that live for the whole uptime."""

    programs: int = param(45, "long-lived processes (daemons, X, desktop, applets)")
    rss_median_mib: float = param(4.0, "median resident set of one (lognormal)")
    rss_sigma: float = param(1.0, "lognormal shape of resident sets")
    threads_mean: float = param(2.0, "mean threads per program (geometric)")
    exe_files: int = param(25, "files a program reads when it starts (binary, libraries)")
    pt_pages: int = param(60, "page-table pages of one at start (40-80 libraries, 1-2 PTE "
                          "pages each on x86_64)")
    vmas: int = param(100, "its vm_area_structs at start")
    open_files: int = param(10, "files a program keeps open (dentries and inodes in use)")
    growth_per_day: float = param(0.1, "resident set growth per active day, as a share")
    interval_s: float = param(600.0, "how often a program churns, touches and grows")
    churn_share: float = param(0.05, "share of the heap freed and refaulted per interval")
    touch_share: float = param(0.3, "share of the resident set referenced per interval")
    reopen_share: float = param(0.1, "share of its open files a program closes and replaces "
                                "with others per interval")
    big_rss_mib: float = param(80.0, "a browser: resident set at start")
    big_growth_mib_per_h: float = param(15.0, "its growth per active hour")
    big_limit_mib: float = param(350.0, "it is restarted when it reaches this")
    big_threads: int = param(12, "its threads")
    big_pt_pages: int = param(200, "its page-table pages at start")
    big_vmas: int = param(400, "its vm_area_structs at start")


@dataclass(frozen=True)
class AppsParams:
    """Applications opened during the day."""

    per_hour: float = param(3.0, "applications opened per active hour")
    rss_median_mib: float = param(25.0, "median resident set (lognormal)")
    rss_sigma: float = param(0.8, "lognormal shape")
    life_min_s: float = param(120.0, "shortest lifetime (Pareto minimum)")
    life_alpha: float = param(1.0, "Pareto shape of lifetimes")
    life_max_h: float = param(12.0, "closed at the latest after this long")
    threads: int = param(4, "threads each")
    exe_files: int = param(40, "files read at start")
    pt_pages: int = param(100, "page-table pages at start (60-100 libraries)")
    vmas: int = param(150, "vm_area_structs at start")


@dataclass(frozen=True)
class CommandsParams:
    """Short-lived processes."""

    per_min: float = param(1.5, "commands started per active minute")
    rss_median_mib: float = param(1.5, "median resident set (lognormal)")
    rss_sigma: float = param(0.7, "lognormal shape")
    life_min_s: float = param(0.05, "shortest lifetime (Pareto minimum)")
    life_alpha: float = param(1.0, "Pareto shape: P(life > t) = t_min / t")
    life_max_s: float = param(3600.0, "killed at the latest after this long")
    exe_files: int = param(6, "files read at start")
    files_read: int = param(3, "data files it reads")


@dataclass(frozen=True)
class UserFilesParams:
    """The desktop's files and what the user does with them."""

    system_files: int = param(120_000, "files under /usr, /lib, /etc (programs and data)")
    home_files: int = param(30_000, "the user's files")
    size_median_kib: float = param(4.0, "median file size (lognormal by count)")
    size_sigma: float = param(1.9, "lognormal shape of file sizes")
    size_max_mib: float = param(64.0, "sizes are capped here")
    zipf_s: float = param(1.0, "Zipf exponent of file popularity")
    reads_per_min: float = param(20.0, "files read per active minute")
    new_per_min: float = param(3.0, "files written per active minute (mail, web cache)")
    new_median_kib: float = param(12.0, "median size of a new file (lognormal)")
    new_sigma: float = param(1.5, "lognormal shape of new files")
    new_life_h: float = param(24.0, "mean lifetime of a new file (exponential)")
    streams_per_day: float = param(2.0, "large files read per day (media, archives)")
    stream_mib: float = param(300.0, "mean size of such a file (exponential)")
    tick_s: float = param(10.0, "reads and writes are batched per tick")


class Session:
    """Long-lived programs (module docstring)."""

    name = "session"

    def __init__(self, kernel: KernelAPI, rhythm: Rhythm, procs: Processes,
                 popularity: Popularity | None, params: SessionParams) -> None:
        self.kernel = kernel
        self.rhythm = rhythm
        self.procs = procs
        self.popularity = popularity
        self.params = params
        self.rng = kernel.stream(self.name)
        self.slots: list[int] = []
        self.target: list[float] = []
        self.open: list[np.ndarray] = []
        self.big = -1
        self.big_files: np.ndarray | None = None
        self.big_restarts = 0

    def _files(self, n: int) -> np.ndarray | None:
        if self.popularity is None or n <= 0:
            return None
        return self.popularity.draw(self.rng, n)

    def _start(self, rss: float, threads: int, big: bool = False) -> Proc:
        p = self.params
        slot = yield from self.procs.spawn(threads, self._files(p.exe_files), self.name,
                                           p.big_pt_pages if big else p.pt_pages,
                                           p.big_vmas if big else p.vmas)
        yield from self.procs.grow(slot, int(rss), self.name)
        files = self._files(p.open_files)
        if files is not None:
            yield from self.procs.fs.pin(files)
        return slot, files

    def run(self) -> Proc:
        p = self.params
        env = self.kernel.env
        rng = self.rng
        rss = lognormal_pages(rng, p.programs, p.rss_median_mib, p.rss_sigma)
        threads = rng.geometric(1.0 / max(p.threads_mean, 1.0), p.programs)
        for i in range(p.programs):
            slot, files = yield from self._start(float(rss[i]), int(threads[i]))
            self.slots.append(slot)
            self.target.append(float(rss[i]))
            self.open.append(files if files is not None else np.empty(0, np.int64))
        if p.big_rss_mib > 0:
            self.big, self.big_files = yield from self._start(p.big_rss_mib * MIB,
                                                              p.big_threads, True)
        while True:
            yield env.timeout(p.interval_s)
            a = self.rhythm.activity(float(env.now))
            grow = p.growth_per_day * p.interval_s / 86400.0 * a
            for i, slot in enumerate(self.slots):
                self.target[i] *= 1.0 + grow
                yield from self._step(slot, self.target[i], a)
                yield from self._reopen(i, a)
            if self.big >= 0:
                yield from self._big_step(a)

    def _reopen(self, i: int, activity: float) -> Proc:
        """The program closes some of its files and opens others."""
        files = self.open[i]
        n = int(self.rng.binomial(files.shape[0], min(1.0, self.params.reopen_share * activity)))
        if n == 0 or self.popularity is None:
            return
        close = self.rng.choice(files.shape[0], size=n, replace=False)
        self.procs.fs.unpin(files[close])
        new = self.popularity.draw(self.rng, n)
        yield from self.procs.fs.pin(new)
        keep = np.ones(files.shape[0], bool)
        keep[close] = False
        self.open[i] = np.concatenate([files[keep], new])

    def _step(self, slot: int, target: float, activity: float) -> Proc:
        p = self.params
        procs = self.procs
        procs.touch(slot, p.touch_share * activity, self.rng)
        yield from procs.churn(slot, p.churn_share * activity, self.rng, self.name)
        short = int(target) - int(procs.anon[slot] + procs.swapped[slot])
        if short > 0:
            yield from procs.grow(slot, short, self.name)

    def _big_step(self, activity: float) -> Proc:
        p = self.params
        procs = self.procs
        slot = self.big
        total = (procs.anon[slot] + procs.swapped[slot]) / MIB
        if total >= p.big_limit_mib:
            procs.exit(slot)
            if self.big_files is not None:
                procs.fs.unpin(self.big_files)
            self.big_restarts += 1
            self.big, self.big_files = yield from self._start(p.big_rss_mib * MIB,
                                                              p.big_threads, True)
            return
        procs.touch(slot, p.touch_share * activity, self.rng)
        yield from procs.churn(slot, p.churn_share * activity, self.rng, self.name)
        grow = p.big_growth_mib_per_h * MIB * p.interval_s / 3600.0 * activity
        yield from procs.grow(slot, int(grow), self.name)


class Apps:
    """Applications opened and closed during the day (module docstring)."""

    name = "apps"

    def __init__(self, kernel: KernelAPI, rhythm: Rhythm, procs: Processes,
                 popularity: Popularity | None, params: AppsParams) -> None:
        self.kernel = kernel
        self.rhythm = rhythm
        self.procs = procs
        self.popularity = popularity
        self.params = params
        self.rng = kernel.stream(self.name)
        self.started = 0

    def run(self) -> Proc:
        p = self.params
        env = self.kernel.env
        if p.per_hour <= 0:
            return
        while True:
            yield env.timeout(float(self.rng.exponential(3600.0 / p.per_hour)))
            if self.rng.random() < self.rhythm.activity(float(env.now)):
                env.process(self._app())

    def _app(self) -> Proc:
        p = self.params
        rng = self.rng
        self.started += 1
        exe = None if self.popularity is None else self.popularity.draw(rng, p.exe_files)
        slot = yield from self.procs.spawn(p.threads, exe, self.name, p.pt_pages, p.vmas)
        rss = int(lognormal_pages(rng, 1, p.rss_median_mib, p.rss_sigma)[0])
        life = min(float(pareto_lifetimes(rng, 1, p.life_min_s, p.life_alpha)[0]),
                   p.life_max_h * 3600.0)
        # Half the resident set at start, the rest over the first half of its life.
        yield from self.procs.grow(slot, rss // 2, self.name)
        yield self.kernel.env.timeout(life / 2)
        yield from self.procs.grow(slot, rss - rss // 2, self.name)
        yield self.kernel.env.timeout(life / 2)
        self.procs.exit(slot)


class Commands:
    """Short-lived processes (module docstring)."""

    name = "commands"

    def __init__(self, kernel: KernelAPI, rhythm: Rhythm, procs: Processes,
                 popularity: Popularity | None, params: CommandsParams) -> None:
        self.kernel = kernel
        self.rhythm = rhythm
        self.procs = procs
        self.popularity = popularity
        self.params = params
        self.rng = kernel.stream(self.name)
        self.started = 0

    def run(self) -> Proc:
        p = self.params
        env = self.kernel.env
        if p.per_min <= 0:
            return
        tick = 10.0
        while True:
            yield env.timeout(tick)
            a = self.rhythm.activity(float(env.now))
            for _ in range(int(self.rng.poisson(p.per_min * tick / 60.0 * a))):
                env.process(self._command(float(self.rng.uniform(0, tick))))

    def _command(self, delay: float) -> Proc:
        p = self.params
        rng = self.rng
        k = self.kernel
        yield k.env.timeout(delay)
        self.started += 1
        exe = None if self.popularity is None else self.popularity.draw(rng, p.exe_files)
        slot = yield from self.procs.spawn(1, exe, self.name)
        rss = int(lognormal_pages(rng, 1, p.rss_median_mib, p.rss_sigma)[0])
        yield from self.procs.grow(slot, rss, self.name)
        if self.popularity is not None and p.files_read > 0:
            yield from self.procs.fs.read(self.popularity.draw(rng, p.files_read), self.name)
        life = min(float(pareto_lifetimes(rng, 1, p.life_min_s, p.life_alpha)[0]),
                   p.life_max_s)
        yield k.env.timeout(life)
        self.procs.exit(slot)


class UserFiles:
    """The user's file activity (module docstring)."""

    name = "files"

    def __init__(self, kernel: KernelAPI, rhythm: Rhythm, fs: FileSystem,
                 params: UserFilesParams) -> None:
        self.kernel = kernel
        self.rhythm = rhythm
        self.fs = fs
        self.params = params
        self.rng = kernel.stream(self.name)
        p = params
        n = p.system_files + p.home_files
        self.fids = fs.create(self._sizes(n, p.size_median_kib, p.size_sigma))
        self.system = self.fids[:p.system_files]
        self.popularity = Popularity(self.fids, p.zipf_s, self.rng)
        self.system_popularity = Popularity(self.system, p.zipf_s, self.rng)
        self._deaths: list[tuple[float, int]] = []  # heap of (time, fid) of new files
        self.streams = 0

    def _sizes(self, n: int, median_kib: float, sigma: float) -> np.ndarray:
        """File sizes in pages: lognormal by count, at least one page, capped."""
        cap = int(self.params.size_max_mib * MIB)
        pages = np.ceil(median_kib / 4.0 * np.exp(sigma * self.rng.standard_normal(n)))
        return np.clip(pages, 1, cap).astype(np.int64)

    def run(self) -> Proc:
        p = self.params
        env = self.kernel.env
        rng = self.rng
        next_stream = float(rng.exponential(86400.0 / p.streams_per_day)) \
            if p.streams_per_day > 0 else float("inf")
        while True:
            yield env.timeout(p.tick_s)
            now = float(env.now)
            a = self.rhythm.activity(now)
            n = int(rng.poisson(p.reads_per_min * p.tick_s / 60.0 * a))
            if n:
                yield from self.fs.read(self.popularity.draw(rng, n), self.name)
            k = int(rng.poisson(p.new_per_min * p.tick_s / 60.0 * a))
            if k:
                fids = self.fs.create(np.zeros(k, np.int64))
                yield from self.fs.write(fids, self._sizes(k, p.new_median_kib, p.new_sigma),
                                         self.name)
                dies = now + rng.exponential(p.new_life_h * 3600.0, k)
                for t, fid in zip(dies.tolist(), fids.tolist(), strict=True):
                    heapq.heappush(self._deaths, (t, fid))
            self._expire(now)
            if now >= next_stream:
                next_stream = now + float(rng.exponential(86400.0 / p.streams_per_day))
                if rng.random() < a:
                    env.process(self._stream())

    def _expire(self, now: float) -> None:
        """Delete the new files whose time has come."""
        due = []
        while self._deaths and self._deaths[0][0] <= now:
            due.append(heapq.heappop(self._deaths)[1])
        if due:
            self.fs.delete(np.array(due, np.int64))

    def _stream(self) -> Proc:
        """Read a large file sequentially, 8 MiB at a time at disk speed (about 50 MB/s); its
        pages are read once and age out of the inactive list."""
        p = self.params
        self.streams += 1
        size = max(1, int(self.rng.exponential(p.stream_mib) * MIB))
        chunk = 8 * MIB
        parts = self.fs.create(np.full(-(-size // chunk), chunk, np.int64))
        for fid in parts.tolist():
            yield from self.fs.read(np.array([fid], np.int64), self.name)
            yield self.kernel.env.timeout(chunk * 4096 / 50e6)

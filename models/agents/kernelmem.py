"""Kernel subsystems that allocate memory on their own: kmalloc users, the network stack,
loaded modules, and DMA drivers.

- `Kmalloc`: the many small kernel objects of a running system (sysfs and proc entries, timers,
  IPC, security labels, ...) in an UNMOVABLE kmalloc cache (`kmalloc(GFP_KERNEL)`): allocated
  at a rate that follows the user's activity, each with a heavy-tailed lifetime (Pareto: most
  live seconds, a few for the rest of the uptime), plus a permanent set allocated at boot.
- `NetBuffers`: receive and transmit bursts. Each packet's data is a `kmalloc` of about 2 KiB
  (`size-2048`, two per page, allocated GFP_ATOMIC in the receive path `__netdev_alloc_skb`);
  a burst lives milliseconds. A share of bursts come from a device using order > 0 receive
  buffers (jumbo frames), GFP_ATOMIC.
- `Modules`: `module_alloc` is `vmalloc`, order-0 UNMOVABLE pages, at boot (udev loading the
  drivers) and now and then later (a USB device plugged in).
- `DMADriver`: a driver asking for a physically contiguous buffer (`snd_dma_alloc_pages`,
  `dma_alloc_coherent` -> `__get_free_pages(GFP_KERNEL | GFP_DMA32, order)`), held while the
  device is in use, freed when it is closed. Its failures are what a user sees of
  fragmentation ("page allocation failure. order:N"); they land in `events`.

All four draw from their own random stream and scale their rates by the daily rhythm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fragsim.models.agents.base import OWNER_DMA, OWNER_MODULES, OWNER_NETBUF, Proc, param
from fragsim.models.mm.constants import KIND_KERNEL
from fragsim.models.mm.gfp import GFP, GFP_ATOMIC, GFP_KERNEL

if TYPE_CHECKING:
    from fragsim.models.agents.base import KernelAPI
    from fragsim.models.agents.rhythm import Rhythm

__all__ = [
    "DMADriver",
    "DMAParams",
    "Kmalloc",
    "KmallocParams",
    "Modules",
    "ModulesParams",
    "NetBuffers",
    "NetParams",
]


def pareto_lifetimes(rng: np.random.Generator, n: int, minimum: float,
                     alpha: float) -> np.ndarray:
    """Pareto lifetimes: P(life > t) = (minimum / t)^alpha for t >= minimum."""
    return minimum * (1.0 - rng.random(n)) ** (-1.0 / alpha)


@dataclass(frozen=True)
class KmallocParams:
    """Small kernel objects."""

    objs_per_page: int = param(16, "objects per slab page (a 256-byte kmalloc cache)")
    boot_objects: int = param(40_000, "objects allocated at boot and never freed")
    rate_per_s: float = param(20.0, "objects allocated per second while the user is active")
    life_min_s: float = param(1.0, "shortest lifetime (Pareto minimum)")
    life_alpha: float = param(1.0, "Pareto shape of lifetimes (1: P(life > t) = t_min / t)")
    tick_s: float = param(10.0, "allocations and frees are batched per tick")


class Kmalloc:
    """Heavy-tailed small kernel objects (module docstring)."""

    name = "kmalloc"

    def __init__(self, kernel: KernelAPI, rhythm: Rhythm, params: KmallocParams) -> None:
        self.kernel = kernel
        self.rhythm = rhythm
        self.params = params
        self.rng = kernel.stream(self.name)
        self.cache = kernel.slab_cache("size-256", params.objs_per_page, False)
        #: Handles to free, by the tick they fall due in.
        self._due: dict[int, list[np.ndarray]] = {}
        self.live = 0

    def run(self) -> Proc:
        p = self.params
        env = self.kernel.env
        h = yield from self.kernel.slab_alloc(self.cache, p.boot_objects, self.name)
        self.live += int(np.count_nonzero(h >= 0))
        tick = 0
        while True:
            yield env.timeout(p.tick_s)
            tick += 1
            now = float(env.now)
            due = self._due.pop(tick, None)
            if due:
                handles = np.concatenate(due)
                self.cache.free(self.kernel.machine, handles)
                self.live -= handles.shape[0]
            n = int(self.rng.poisson(p.rate_per_s * p.tick_s * self.rhythm.activity(now)))
            if n == 0:
                continue
            handles = yield from self.kernel.slab_alloc(self.cache, n, self.name)
            handles = handles[handles >= 0]
            self.live += handles.shape[0]
            life = pareto_lifetimes(self.rng, handles.shape[0], p.life_min_s, p.life_alpha)
            ticks = tick + np.ceil(life / p.tick_s).astype(np.int64)
            order = np.argsort(ticks, kind="stable")
            ticks, handles = ticks[order], handles[order]
            cuts = np.flatnonzero(np.diff(ticks)) + 1
            for start, stop in zip(np.concatenate([[0], cuts]),
                                   np.concatenate([cuts, [ticks.shape[0]]]), strict=True):
                self._due.setdefault(int(ticks[start]), []).append(handles[start:stop])


@dataclass(frozen=True)
class NetParams:
    """Network buffers."""

    objs_per_page: int = param(2, "packet data buffers per page (size-2048 kmalloc cache)")
    bursts_per_min: float = param(6.0, "traffic bursts (a page load, a mail fetch) per "
                                  "active minute")
    burst_packets_mean: float = param(40.0, "mean packets in flight in a burst (geometric)")
    burst_life_s: float = param(0.01, "how long a burst's buffers live")
    high_order: int = param(0, "order of jumbo-frame receive buffers (0: the device uses "
                            "order-0 buffers only)")
    high_order_share: float = param(0.0, "share of bursts that use order > 0 buffers")
    tick_s: float = param(10.0, "bursts are drawn per tick")


class NetBuffers:
    """Receive/transmit bursts (module docstring)."""

    name = "net"

    def __init__(self, kernel: KernelAPI, rhythm: Rhythm, params: NetParams) -> None:
        self.kernel = kernel
        self.rhythm = rhythm
        self.params = params
        self.rng = kernel.stream(self.name)
        self.cache = kernel.slab_cache("size-2048", params.objs_per_page, False)
        self.bursts = 0

    def run(self) -> Proc:
        p = self.params
        env = self.kernel.env
        k = self.kernel
        rng = self.rng
        while True:
            yield env.timeout(p.tick_s)
            a = self.rhythm.activity(float(env.now))
            n = int(rng.poisson(p.bursts_per_min * p.tick_s / 60.0 * a))
            if n == 0:
                continue
            # The tick's bursts, allocated together and freed after their short life.
            self.bursts += n
            packets = rng.geometric(1.0 / max(p.burst_packets_mean, 1.0), n)
            high = (rng.random(n) < p.high_order_share) if p.high_order > 0 else np.zeros(n, bool)
            yield env.timeout(float(rng.uniform(0, p.tick_s - p.burst_life_s)))
            pfns = np.empty(0, np.int64)
            nr_high = int(packets[high].sum())
            if nr_high:
                pfns = yield from k.alloc(nr_high, p.high_order, int(GFP_ATOMIC), OWNER_NETBUF,
                                          KIND_KERNEL, source=self.name)
            # The receive path allocates GFP_ATOMIC; the cache grows without sleeping.
            handles = yield from k.slab_alloc(self.cache, int(packets[~high].sum()), self.name,
                                              int(GFP_ATOMIC))
            yield env.timeout(p.burst_life_s)
            self.cache.free(k.machine, handles[handles >= 0])
            k.free(pfns[pfns >= 0])


@dataclass(frozen=True)
class ModulesParams:
    """Loadable modules."""

    boot_bytes: int = param(3 << 20, "module memory loaded at boot (lsmod)", unit="bytes")
    loads_per_day: float = param(2.0, "modules loaded later (a device plugged in)")
    module_bytes: int = param(64 << 10, "size of such a module", unit="bytes")
    module_life_h: float = param(2.0, "mean hours until it is unloaded (exponential)")


class Modules:
    """vmalloc'd module memory (module docstring)."""

    name = "modules"

    def __init__(self, kernel: KernelAPI, params: ModulesParams) -> None:
        self.kernel = kernel
        self.params = params
        self.rng = kernel.stream(self.name)

    def run(self) -> Proc:
        p = self.params
        k = self.kernel
        yield from k.alloc(p.boot_bytes >> 12, 0, int(GFP_KERNEL), OWNER_MODULES, KIND_KERNEL,
                           source=self.name)
        if p.loads_per_day <= 0:
            return
        while True:
            yield k.env.timeout(float(self.rng.exponential(86400.0 / p.loads_per_day)))
            k.env.process(self._module())

    def _module(self) -> Proc:
        p = self.params
        k = self.kernel
        pfns = yield from k.alloc(max(1, p.module_bytes >> 12), 0, int(GFP_KERNEL),
                                  OWNER_MODULES, KIND_KERNEL, source=self.name)
        yield k.env.timeout(float(self.rng.exponential(p.module_life_h * 3600.0)))
        k.free(pfns[pfns >= 0])


@dataclass(frozen=True)
class DMAParams:
    """A driver's contiguous DMA buffers."""

    order: int = param(4, "order of the buffer (4: 64 KiB)")
    zone: str = param("dma32", "dma (GFP_DMA, below 16 MiB) or dma32 (GFP_DMA32, below 4 GiB)")
    opens_per_day: float = param(6.0, "times a day the device is opened (audio played)")
    hold_h: float = param(0.5, "mean hours the device stays open (exponential)")
    buffers: int = param(1, "buffers allocated at each open")


class DMADriver:
    """A device's DMA buffers (module docstring)."""

    name = "dma"

    def __init__(self, kernel: KernelAPI, rhythm: Rhythm, params: DMAParams) -> None:
        if params.zone not in ("dma", "dma32"):
            raise ValueError(f"dma.zone {params.zone!r} is not allowed: use dma or dma32")
        self.kernel = kernel
        self.rhythm = rhythm
        self.params = params
        self.rng = kernel.stream(self.name)
        self.gfp = int(GFP_KERNEL | (GFP.DMA if params.zone == "dma" else GFP.DMA32))
        self.attempts = 0
        self.failures = 0

    def run(self) -> Proc:
        p = self.params
        env = self.kernel.env
        if p.opens_per_day <= 0:
            return
        mean_gap = 86400.0 / p.opens_per_day
        while True:
            # Opens happen while the user is there (thinning by activity).
            yield env.timeout(float(self.rng.exponential(mean_gap)))
            if self.rng.random() < self.rhythm.activity(float(env.now)):
                env.process(self._open())

    def _open(self) -> Proc:
        p = self.params
        k = self.kernel
        pfns = yield from k.alloc(p.buffers, p.order, self.gfp, OWNER_DMA, KIND_KERNEL,
                                  source=self.name)
        self.attempts += p.buffers
        ok = pfns[pfns >= 0]
        self.failures += p.buffers - ok.shape[0]
        yield k.env.timeout(float(self.rng.exponential(p.hold_h * 3600.0)))
        k.free(ok)

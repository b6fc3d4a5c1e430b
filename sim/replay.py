"""`fragsim replay TRACE`: drive the allocator model with a kernel's `kmem` ftrace events.

The events are those of `include/trace/events/kmem.h` (`mm_page_alloc`, `mm_page_free`,
`mm_page_free_batched` and their pre-3.3 names), read by `sim.trace`. Each traced allocation is
served by the model with the event's order and migratetype, and the trace pfn is mapped to the
model's pfn; a traced free frees what its trace pfn maps to. Replay asks the buddy core directly,
as an allocation with ALLOC_NO_WATERMARKS does (`get_page_from_freelist()` then `__rmqueue()`),
with no reclaim, no compaction and, unless `--pcp`, no per-cpu lists, so the result can be
checked by hand against 2.6.24's `__rmqueue_smallest()` and `__rmqueue_fallback()` (or 2.6.20's
single lists with `--policy vanilla`). With `--pcp`, order-0 pages go through the per-cpu lists
of the event's trace cpu (mod `--nr-cpus`), hot or cold as the trace says; on the 6.1 and 6.15
policies every order up to 3 does, through 6.1's per-order lists (`models.mm.pcp_6_1`; replay's
machine has no THP, so `pcp_allowed_order` leaves pageblock_order to the buddy).

Nothing stops a replay. It counts what the model or the trace could not match:
- a model allocation that fails (per order; orders >= MAX_ORDER fail as `__alloc_pages()` refuses
  them), and a traced allocation that failed on the traced machine (`page=(null)`);
- an allocation at a trace pfn that is still mapped (the trace lost a free: the old block leaks);
- a free of an unmapped trace pfn, a free whose order differs from the allocation's (the model
  frees the block it allocated), a free of a pfn whose allocation failed in the model;
- the second of the `mm_page_free` + `mm_page_free_batched` pair every batched free produces
  since 2.6.33 (an *echo*, freed once);
- malformed lines (skipped with a warning; an error with `--strict`).

`--gfp-flags 6.1` also reads each allocation's `gfp_flags=` as 6.1 prints them and checks it
(`sim.trace_gfp`: an unknown flag is an error; migratetype mismatches are counted); the trace
then goes through the plain-Python reader.

Memory (`--memory`, default 1 GiB) is node 0 with one zone, Normal, from pfn 0
(`MachineConfig(layout="flat")`); trace pfns from any machine map onto it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, BinaryIO, Final, TextIO

import numpy as np

from fragsim.models.mm.alloc import alloc_one, alloc_one_pcp, free_one, free_one_pcp
from fragsim.models.mm.constants import (
    ALLOC_NO_WATERMARKS,
    FREE_OK,
    KIND_NONE,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    NR_MIGRATETYPES,
)
from fragsim.models.mm.geometry import parse_size
from fragsim.models.mm.jit import compiled
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.pcp import pcp_pages
from fragsim.sim.trace import (
    ALLOC,
    ALLOC_FAILED,
    FREE,
    FREE_BATCHED,
    MAX_TRACE_ORDER,
    NUMBERINGS,
    EventBatch,
    iter_batches,
    parse_lines,
)
from fragsim.sim.trace_gfp import GFP_FLAG_FORMATS, GfpCheck

__all__ = ["DEFAULT_MEMORY", "SHOW_VIEWS", "Replayer", "add_parser", "replay_stream", "run",
           "show", "summary"]

DEFAULT_MEMORY: Final = "1GiB"
SHOW_VIEWS: Final = ("buddyinfo", "pagetypeinfo", "extfrag", "unusable", "vmstat", "summary")
#: Warnings printed for malformed lines before they are only counted.
MAX_WARNINGS: Final = 5
#: A trace file at least this large gets a progress bar (when stderr is a terminal).
PROGRESS_BYTES: Final = 32 << 20
#: Lines per batch of the plain-Python reader (`--gfp-flags`).
GFP_BATCH_LINES: Final = 1 << 16

# --- per trace pfn state (what the trace pfn currently maps to) --------------------------------
_UNMAPPED: Final = 0
_MAPPED: Final = 1  # allocated: model_pfn and model_order are valid
_FREED: Final = 2  # just freed by mm_page_free: an mm_page_free_batched of it is an echo
_FREED_BATCHED: Final = 3  # just freed by mm_page_free_batched: an mm_page_free is an echo
_FAILED: Final = 4  # its allocation failed in the model: its free has nothing to free

# --- counters (indices into Replayer.counters) ------------------------------------------------
C_ALLOCS: Final = 0  # alloc events handed to the model
C_ALLOC_FAILED: Final = 1  # ... that the model could not serve
C_TOO_LARGE: Final = 2  # ... of an order >= MAX_ORDER (failed without asking the model)
C_REMAPPED: Final = 3  # allocs at a trace pfn still mapped
C_TRACED_FAILED: Final = 4  # mm_page_alloc with page=(null)
C_FREES: Final = 5  # frees that freed a model block
C_UNMATCHED: Final = 6  # frees of an unmapped trace pfn
C_ORDER_MISMATCH: Final = 7  # frees whose order differs from the allocation's
C_ECHOES: Final = 8  # second event of an mm_page_free + mm_page_free_batched pair
C_FREE_OF_FAILED: Final = 9  # frees of a trace pfn whose allocation failed in the model
C_MODEL_FREE_ERRORS: Final = 10  # the model refused a free of a mapped block (never expected)
_NR_COUNTERS: Final = 11


@compiled("int, int, int, int8[], int[]", inline=True)
def _alloc_event(t: int, order: int, max_order: int, state: np.ndarray,
                 counters: np.ndarray) -> bool:
    """Count an allocation event of trace pfn id `t`; whether the model is to serve it (orders
    >= MAX_ORDER fail without asking, as `__alloc_pages()` refuses them)."""
    counters[C_ALLOCS] += 1
    if state[t] == _MAPPED:
        counters[C_REMAPPED] += 1
    if order < max_order:
        return True
    counters[C_TOO_LARGE] += 1
    return False


@compiled("int, int, int, int[], int[], int8[], int[], int[]", inline=True)
def _alloc_result(t: int, order: int, pfn: int, model_pfn: np.ndarray, model_order: np.ndarray,
                  state: np.ndarray, counters: np.ndarray, fail_order: np.ndarray) -> None:
    """Map trace pfn id `t` to the model's block `pfn`, or count the failure (-1)."""
    if pfn < 0:
        counters[C_ALLOC_FAILED] += 1
        fail_order[order] += 1
        state[t] = _FAILED
    else:
        model_pfn[t] = pfn
        model_order[t] = order
        state[t] = _MAPPED


@compiled("int, int, int8[], int[]", inline=True)
def _free_event(t: int, kind: int, state: np.ndarray, counters: np.ndarray) -> bool:
    """A free event of trace pfn id `t`: whether it frees a mapped model block; the other
    cases (an echo, the free of a failed allocation, an unmatched free) are counted here."""
    st = state[t]
    if st == _MAPPED:
        return True
    if (st == _FREED and kind == FREE_BATCHED) or (st == _FREED_BATCHED and kind == FREE):
        counters[C_ECHOES] += 1
        state[t] = _UNMAPPED
    elif st == _FAILED:
        counters[C_FREE_OF_FAILED] += 1
        state[t] = _FREED if kind == FREE else _FREED_BATCHED
    else:
        counters[C_UNMATCHED] += 1
    return False


@compiled("int, int, int, int, int[], int8[], int[]", inline=True)
def _free_result(t: int, kind: int, order: int, status: int, model_order: np.ndarray,
                 state: np.ndarray, counters: np.ndarray) -> None:
    """Count the model's free of trace pfn id `t`'s block (`status` FREE_*)."""
    if status != FREE_OK:
        counters[C_MODEL_FREE_ERRORS] += 1
    counters[C_FREES] += 1
    if model_order[t] != order:
        counters[C_ORDER_MISMATCH] += 1
    state[t] = _FREED if kind == FREE else _FREED_BATCHED


_EVENTS_SIGNATURE = ("pages, zones, pageblock_type, node, const int[], const int[], const int[], "
                     "const int[], const int[], const int[], const int[], int, int[], int[], "
                     "int8[], int[], int[]")


@compiled(_EVENTS_SIGNATURE, nogil=True)
def _replay_events(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                   node: np.ndarray, kinds: np.ndarray, ids: np.ndarray, orders: np.ndarray,
                   mts: np.ndarray, cpus: np.ndarray, colds: np.ndarray,
                   high_zone_of: np.ndarray, max_order: int,
                   model_pfn: np.ndarray, model_order: np.ndarray, state: np.ndarray,
                   counters: np.ndarray, fail_order: np.ndarray) -> None:
    """Replay events in order on a machine without per-cpu lists; `ids[i]` is the dense index
    of event i's trace pfn (`cpus` and `colds` are not used).

    Each event is one `alloc_one` or `free_one` call, as `Machine.alloc` and `Machine.free`
    make them; those are compiled once and inlined here by LLVM.
    """
    for i in range(kinds.shape[0]):
        kind = kinds[i]
        t = ids[i]
        order = orders[i]
        if kind == ALLOC:
            pfn = -1
            if _alloc_event(t, order, max_order, state, counters):
                pfn = alloc_one(pages, zones, pageblock_type, node, order, high_zone_of[mts[i]],
                                mts[i], ALLOC_NO_WATERMARKS, 0, KIND_NONE)
            _alloc_result(t, order, pfn, model_pfn, model_order, state, counters, fail_order)
        elif kind == ALLOC_FAILED:
            counters[C_TRACED_FAILED] += 1
        elif _free_event(t, kind, state, counters):
            status = free_one(pages, zones, pageblock_type, node, model_pfn[t])
            _free_result(t, kind, order, status, model_order, state, counters)


@compiled(_EVENTS_SIGNATURE, nogil=True)
def _replay_events_pcp(pages: np.ndarray, zones: np.ndarray, pageblock_type: np.ndarray,
                       node: np.ndarray, kinds: np.ndarray, ids: np.ndarray,
                       orders: np.ndarray, mts: np.ndarray, cpus: np.ndarray,
                       colds: np.ndarray, high_zone_of: np.ndarray, max_order: int,
                       model_pfn: np.ndarray, model_order: np.ndarray, state: np.ndarray,
                       counters: np.ndarray, fail_order: np.ndarray) -> None:
    """`_replay_events` with per-cpu lists: event i is an `alloc_one_pcp` or `free_one_pcp`
    call on cpu `cpus[i]`, cold if `colds[i]`."""
    for i in range(kinds.shape[0]):
        kind = kinds[i]
        t = ids[i]
        order = orders[i]
        if kind == ALLOC:
            pfn = -1
            if _alloc_event(t, order, max_order, state, counters):
                pfn = alloc_one_pcp(pages, zones, pageblock_type, node, order,
                                    high_zone_of[mts[i]], mts[i], ALLOC_NO_WATERMARKS, 0,
                                    KIND_NONE, cpus[i], colds[i])
            _alloc_result(t, order, pfn, model_pfn, model_order, state, counters, fail_order)
        elif kind == ALLOC_FAILED:
            counters[C_TRACED_FAILED] += 1
        elif _free_event(t, kind, state, counters):
            status = free_one_pcp(pages, zones, pageblock_type, node, model_pfn[t], cpus[i],
                                  colds[i])
            _free_result(t, kind, order, status, model_order, state, counters)


#: An empty slot of the trace pfn hash table (trace pfns are >= -1).
_EMPTY: Final = -(1 << 63)
#: Fibonacci hashing multiplier (2^64 / golden ratio, as a signed 64-bit integer).
_HASH_MUL: Final = -7046029254386353131


@compiled("const int[], int[], int[], int[], int[]", nogil=True)
def _dense_ids(pfns: np.ndarray, keys: np.ndarray, vals: np.ndarray, count: np.ndarray,
               out: np.ndarray) -> None:
    """`out[i]`: the dense id of trace pfn `pfns[i]`, numbered in order of first sight from
    `count[0]` on (which it advances). `keys`/`vals` are an open-addressing hash table with a
    power-of-two size, `_EMPTY` keys free; the caller keeps it at most half full."""
    mask = keys.shape[0] - 1
    bits = 1
    while (1 << bits) < keys.shape[0]:
        bits += 1
    shift = 64 - bits
    n = count[0]
    for i in range(pfns.shape[0]):
        p = pfns[i]
        h = ((p * _HASH_MUL) >> shift) & mask
        while True:
            k = keys[h]
            if k == p:
                out[i] = vals[h]
                break
            if k == _EMPTY:
                keys[h] = p
                vals[h] = n
                out[i] = n
                n += 1
                break
            h = (h + 1) & mask
    count[0] = n


class Replayer:
    """Replays event batches on one machine, keeping the trace pfn -> model pfn map.

    Trace pfns are numbered densely in order of first sight (a compiled hash table), so the
    compiled loop works on plain arrays whatever the traced machine's pfn range. The traced
    kernel's `mm_page_alloc_extfrag` events are counted (`extfrag`, ...), for comparison with
    the model's fallbacks.
    """

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.events = 0
        self.lines = 0
        self.malformed = 0
        self.extfrag = 0
        self.extfrag_fragmenting = 0
        self.extfrag_change_ownership = 0
        #: The `--gfp-flags` check of the allocations' gfp text (None: not asked for).
        self.gfp: GfpCheck | None = None
        self.counters = np.zeros(_NR_COUNTERS, dtype=np.int64)
        self.fail_order = np.zeros(MAX_TRACE_ORDER + 1, dtype=np.int64)
        self._keys = np.full(1 << 12, _EMPTY, dtype=np.int64)
        self._vals = np.zeros(1 << 12, dtype=np.int64)
        self._nr_ids = np.zeros(1, dtype=np.int64)
        self._model_pfn = np.full(1024, -1, dtype=np.int64)
        self._model_order = np.zeros(1024, dtype=np.int64)
        self._state = np.zeros(1024, dtype=np.int8)
        self._high_zone_of = np.zeros(NR_MIGRATETYPES, dtype=np.int64)
        for mt in (MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE):
            self._high_zone_of[mt] = machine.resolve(migratetype=mt)[0]

    def _dense_ids(self, pfns: np.ndarray) -> np.ndarray:
        most = int(self._nr_ids[0]) + pfns.shape[0]
        if 2 * most > self._keys.shape[0]:  # keep the table at most half full
            size = self._keys.shape[0]
            while 2 * most > size:
                size *= 2
            old = self._keys[self._keys != _EMPTY]
            old_ids = self._vals[self._keys != _EMPTY]
            order = np.argsort(old_ids)
            self._keys = np.full(size, _EMPTY, dtype=np.int64)
            self._vals = np.zeros(size, dtype=np.int64)
            again = np.empty(old.shape[0], dtype=np.int64)
            self._nr_ids[0] = 0
            _dense_ids(old[order], self._keys, self._vals, self._nr_ids, again)
        out = np.empty(pfns.shape[0], dtype=np.int64)
        _dense_ids(pfns, self._keys, self._vals, self._nr_ids, out)
        nr_ids = int(self._nr_ids[0])
        if nr_ids > self._state.shape[0]:
            grow = max(nr_ids, 2 * self._state.shape[0]) - self._state.shape[0]
            self._model_pfn = np.concatenate([self._model_pfn, np.full(grow, -1, np.int64)])
            self._model_order = np.concatenate([self._model_order, np.zeros(grow, np.int64)])
            self._state = np.concatenate([self._state, np.zeros(grow, np.int8)])
        return out

    def feed(self, batch: EventBatch) -> None:
        """Replay one batch of events (its malformed lines are counted, not looked at)."""
        self.lines += batch.lines
        self.malformed += len(batch.malformed)
        self.events += len(batch)
        self.extfrag += batch.extfrag
        self.extfrag_fragmenting += batch.extfrag_fragmenting
        self.extfrag_change_ownership += batch.extfrag_change_ownership
        if not len(batch):
            return
        m = self.machine
        # The traced machine's cpus fold onto the model's (cpu mod nr_cpus).
        cpus = batch.cpus % m.config.nr_cpus
        replay = _replay_events_pcp if m.node[0]["pcp"] else _replay_events
        replay(m.pages, m.zones, m.pageblock_type, m.node, batch.kinds,
               self._dense_ids(batch.pfns), batch.orders, batch.migratetypes, cpus, batch.colds,
               self._high_zone_of, m.max_order, self._model_pfn, self._model_order,
               self._state, self.counters, self.fail_order)

    def count(self, index: int) -> int:
        return int(self.counters[index])


def _checked_batches(stream: TextIO | BinaryIO, numbering: str, source: str, with_cpu: bool,
                     gfp: GfpCheck) -> Iterator[EventBatch]:
    """The plain-Python reader (`sim.trace.parse_lines`), each line's gfp text checked first."""
    chunk: list[str] = []
    first = 1
    chars = 0
    for n, raw in enumerate(stream, 1):
        line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        gfp.line(line, n, source)
        chunk.append(line)
        chars += len(raw)
        if len(chunk) == GFP_BATCH_LINES:
            batch = parse_lines(chunk, numbering, first, source, with_cpu)
            batch.chars, chars = chars, 0
            yield batch
            first += len(chunk)
            chunk = []
    batch = parse_lines(chunk, numbering, first, source, with_cpu)
    batch.chars = chars
    yield batch


def replay_stream(stream: TextIO | BinaryIO, replayer: Replayer, numbering: str = "modern",
                  strict: bool = False, source: str = "", progress: Any = None,
                  warn: TextIO | None = None) -> None:
    """Parse and replay a whole stream (text, or bytes as the command reads files: see
    `sim.trace.iter_batches`). With `strict` the first malformed line raises its
    TraceFormatError; otherwise the first MAX_WARNINGS are written to `warn`. With
    `replayer.gfp` set, every allocation's gfp text is checked (`sim.trace_gfp`), and a flag
    the tracing kernel never prints raises its TraceFormatError."""
    warned = 0
    with_cpu = replayer.machine.config.pcp
    batches: Iterator[EventBatch]
    if replayer.gfp is not None:
        batches = _checked_batches(stream, numbering, source, with_cpu, replayer.gfp)
    else:
        batches = iter_batches(stream, numbering, source=source, with_cpu=with_cpu, ahead=True)
    for batch in batches:
        if batch.malformed:
            if strict:
                raise batch.malformed[0]
            if warn is not None:
                for exc in batch.malformed[: max(0, MAX_WARNINGS - warned)]:
                    _warn(f"fragsim: warning: {exc}; skipped", warn, progress)
                warned += len(batch.malformed)
        replayer.feed(batch)
        if progress is not None:
            progress.update(batch.chars)
    if warn is not None and warned > MAX_WARNINGS:
        _warn(f"fragsim: warning: {warned - MAX_WARNINGS} more malformed lines skipped", warn,
              progress)


def _warn(message: str, warn: TextIO, progress: Any) -> None:
    if progress is None:
        print(message, file=warn)
    else:  # above the progress bar, which is redrawn below
        progress.write(message, file=warn)


def summary(replayer: Replayer, source: str = "") -> str:
    """`key: value` lines: what was replayed, what did not match, fallbacks, free memory."""
    from fragsim.models.mm.metrics import high_order_free_share

    m = replayer.machine
    c = replayer.count
    vm = m.vmstat()
    nr_free = m.zones["nr_free"][:, : m.max_order].sum(axis=0)
    rows: list[tuple[str, object]] = [
        ("trace", source),
        ("policy", m.config.policy),
        ("memory_pages", m.nr_pages),
        ("pageblock_order", m.pageblock_order),
        ("max_order", m.max_order),
        ("pcp_cpus", int(m.node[0]["pcp"])),
        ("lines_read", replayer.lines),
        ("malformed_lines_skipped", replayer.malformed),
        ("events_read", replayer.events),
        ("allocs_replayed", c(C_ALLOCS)),
        ("allocs_failed", c(C_ALLOC_FAILED)),
        ("allocs_failed_by_order", " ".join(str(int(n)) for n in
                                            replayer.fail_order[: m.max_order])),
        ("allocs_order_too_large", c(C_TOO_LARGE)),
        ("allocs_remapped", c(C_REMAPPED)),
        ("traced_allocs_failed", c(C_TRACED_FAILED)),
        ("frees_replayed", c(C_FREES)),
        ("frees_unmatched", c(C_UNMATCHED)),
        ("frees_of_failed_allocs", c(C_FREE_OF_FAILED)),
        ("free_order_mismatches", c(C_ORDER_MISMATCH)),
        ("batched_free_echoes", c(C_ECHOES)),
        ("extfrag_fallback", vm["extfrag_fallback"]),
        ("extfrag_fragmenting", vm["extfrag_fragmenting"]),
        ("traced_extfrag_events", replayer.extfrag),
        ("traced_extfrag_fragmenting", replayer.extfrag_fragmenting),
        ("traced_extfrag_change_ownership", replayer.extfrag_change_ownership),
        ("pageblock_claimed", vm["pageblock_claimed"]),
        ("free_pages", vm["nr_free_pages"]),
        ("pcp_pages", pcp_pages(m)),
        ("free_share_ge_pageblock_order",
         f"{high_order_free_share(nr_free, m.pageblock_order):.4f}"),
    ]
    if replayer.gfp is not None:
        rows.extend(replayer.gfp.rows())
    if c(C_MODEL_FREE_ERRORS):
        rows.append(("model_free_errors", c(C_MODEL_FREE_ERRORS)))
    return "".join(f"{key}: {value}\n" for key, value in rows)


def show(view: str, replayer: Replayer, source: str = "") -> str:
    """The text of one `--show` view of the replayed machine."""
    if view == "summary":
        return summary(replayer, source)
    from fragsim.models.mm import procfs

    views = {"buddyinfo": procfs.buddyinfo, "pagetypeinfo": procfs.pagetypeinfo,
             "extfrag": procfs.extfrag_index, "unusable": procfs.unusable_index,
             "vmstat": procfs.vmstat}
    return views[view](replayer.machine)


# --- command line -------------------------------------------------------------------------------
def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `fragsim replay`. Values are checked in `run`, so each mistake is one line."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "replay", help="replay kernel kmem ftrace events on the allocator model",
        description="Replay the page allocator events of a kernel's ftrace text (mm_page_alloc, "
                    "mm_page_free, mm_page_free_batched) on the model and show the result.")
    p.add_argument("trace", metavar="TRACE", help="ftrace text file, or - for stdin")
    p.add_argument("--memory", default=DEFAULT_MEMORY, metavar="SIZE",
                   help="memory size (64MiB, 4GiB), a multiple of the max-order block "
                   f"(default {DEFAULT_MEMORY})")
    from fragsim.models.mm.profiles import KERNEL_PROFILES

    p.add_argument("--kernel", default=None, metavar="VERSION",
                   help=f"a kernel preset ({', '.join(KERNEL_PROFILES)}): its policy; replay "
                        "itself never reclaims or compacts (overrides --policy)")
    p.add_argument("--policy", default="mobility", metavar="NAME",
                   help="vanilla (2.6.20) or mobility (2.6.24, default)")
    p.add_argument("--pageblock-order", default=None, metavar="N",
                   help="default 9 (at most max-order - 1)")
    p.add_argument("--max-order", default=None, metavar="N", help="MAX_ORDER (default 11)")
    p.add_argument("--min-free-kbytes", default=None, metavar="N",
                   help="default: the kernel's formula, int_sqrt(lowmem_kbytes * 16)")
    p.add_argument("--migratetype-numbering", default="modern", metavar="NAME",
                   help="modern (4.4+, default) or 2.6.24 (older kernels' traces)")
    p.add_argument("--gfp-flags", default="ignore", metavar="KERNEL",
                   help="ignore (default) or 6.1: read each allocation's gfp_flags as 6.1 "
                        "prints them; an unknown flag is an error (modern numbering only)")
    p.add_argument("--show", default="summary", metavar="VIEW",
                   help=f"one of {', '.join(SHOW_VIEWS)} (default summary)")
    p.add_argument("--pcp", action="store_true",
                   help="use per-cpu lists for order-0 pages, on 6.1 and 6.15 for orders up "
                        "to 3 (each event on its trace cpu)")
    p.add_argument("--nr-cpus", default=None, metavar="N",
                   help="cpus with per-cpu lists, 1..8 (default 1; trace cpu c uses c mod N)")
    p.add_argument("--strict", action="store_true", help="a malformed line is an error")
    p.set_defaults(run=run)
    return p


def _int_option(name: str, text: str | None) -> int | None:
    """An integer option's value (None when not given); ValueError naming it otherwise."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not an integer") from None


def _check_choice(name: str, value: str, allowed: tuple[str, ...] | list[str]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}: allowed are {', '.join(allowed)}")


def _config(args: argparse.Namespace) -> MachineConfig:
    nr_cpus = _int_option("nr-cpus", args.nr_cpus)
    policy = args.policy
    if args.kernel is not None:
        from fragsim.models.mm.profiles import kernel_profile

        policy = kernel_profile(args.kernel)["policy"]
    config = MachineConfig(
        memory=parse_size(args.memory),
        policy=policy,
        layout="flat",
        pcp=args.pcp,
        nr_cpus=1 if nr_cpus is None else nr_cpus,
        max_order=_int_option("max-order", args.max_order),
        pageblock_order=_int_option("pageblock-order", args.pageblock_order),
        min_free_kbytes=_int_option("min-free-kbytes", args.min_free_kbytes),
    )
    config.resolved()  # every value checked before the trace is opened
    return config


def run(args: argparse.Namespace) -> int:
    _check_choice("--show view", args.show, SHOW_VIEWS)
    _check_choice("migratetype numbering", args.migratetype_numbering, list(NUMBERINGS))
    _check_choice("--gfp-flags format", args.gfp_flags, GFP_FLAG_FORMATS)
    if args.gfp_flags != "ignore" and args.migratetype_numbering != "modern":
        raise ValueError(f"--gfp-flags {args.gfp_flags} reads a 4.4+ trace: it needs "
                         "--migratetype-numbering modern")
    config = _config(args)
    stdin = args.trace == "-"
    source = "<stdin>" if stdin else args.trace
    with ExitStack() as stack:
        # Read as bytes (the reader decodes UTF-8, undecodable bytes becoming U+FFFD: such
        # lines are malformed, not a crash); a text-only stdin is read as text.
        stream: TextIO | BinaryIO
        if stdin:
            stream = getattr(sys.stdin, "buffer", None) or sys.stdin
            size = 0
        else:
            try:
                stream = stack.enter_context(open(args.trace, "rb"))
            except (FileNotFoundError, IsADirectoryError):
                raise
            except OSError as exc:
                raise ValueError(f"cannot read trace {args.trace!r}: {exc.strerror}") from None
            size = os.fstat(stream.fileno()).st_size
        replayer = Replayer(Machine(config))
        if args.gfp_flags != "ignore":
            replayer.gfp = GfpCheck()
        progress = None
        if size >= PROGRESS_BYTES and sys.stderr.isatty():
            from tqdm import tqdm

            progress = stack.enter_context(tqdm(total=size, unit="B", unit_scale=True,
                                                desc="replay", file=sys.stderr, leave=False))
        replay_stream(stream, replayer, args.migratetype_numbering, args.strict, source,
                      progress, sys.stderr)
    if replayer.events == 0:
        raise ValueError(f"{source} holds no kmem event (mm_page_alloc, mm_page_free, "
                         f"mm_page_free_batched) in {replayer.lines} lines: nothing to replay")
    sys.stdout.write(show(args.show, replayer, source))
    return 0

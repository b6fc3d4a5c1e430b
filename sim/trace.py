"""Reading the page allocator's `kmem` ftrace events as text: a pure parser, no simulation.

The events are those of `include/trace/events/kmem.h`:

- `mm_page_alloc: page=%p pfn=0x%lx order=%d migratetype=%d gfp_flags=%s` (4.x+; 2.6.32-3.x
  print `pfn=%lu` in decimal). A failed allocation prints `page=(null)` (and pfn 0, or a
  meaningless number in kernels that computed `page_to_pfn(NULL)`).
- `mm_page_free: page=%p pfn=0x%lx order=%d` (named `mm_page_free_direct` before 3.3).
- `mm_page_free_batched: page=%p pfn=0x%lx order=0` (3.3 to 4.x add `cold=%d`; named
  `mm_pagevec_free` before 3.3). Since 2.6.33 every freed page also gets an `mm_page_free`
  (`mm_page_free_direct`) event: the batched event is emitted *in addition*, just before it
  (3.3-4.x) or just after it (5.x+). The replay driver pairs the two; the parser only reports.
- `mm_page_alloc_extfrag: page=%p pfn=... alloc_order=%d fallback_order=%d pageblock_order=%d
  alloc_migratetype=%d fallback_migratetype=%d fragmenting=%d change_ownership=%d` (2.6.32+):
  the traced kernel's `__rmqueue_fallback()`. Batches count these (and how many were
  fragmenting or changed ownership); one without the two flags is malformed. `parse_line`
  returns allocator events only.

6.1 prints exactly these formats (hex pfns, `page=` a hashed pointer, the NULL page of a failed
allocation as `0000000000000000` with `pfn=0x0`); its `mm_page_alloc_zone_locked` and
`mm_page_pcpu_drain` are not requests and are irrelevant lines here. The gfp text is read by
`sim.trace_gfp` when asked for.

A line may carry the ftrace prefix `task-pid [cpu] flags timestamp: ` (or perf's `kmem:` event
prefix) or none. Lines naming other events, comments (`#`) and blank lines are irrelevant. A
line naming one of the events above whose fields cannot be read (no `pfn=`, as very old kernels
print, a truncated line, a migratetype no request can have) is *malformed*: it is reported with
its line number and a reason, never guessed at.

On request (for per-cpu lists) the parser also reads each event's cpu from the `[cpu]` of the
prefix and its cold flag (`GFP_COLD` in an allocation's gfp_flags, `cold=1` on a free).

Migratetypes are returned in the model's internal (2.6.24) numbering. Traces number them as the
tracing kernel's enum does: `modern` (4.4+: 0 Unmovable, 1 Movable, 2 Reclaimable) or `2.6.24`
(before 4.4: 0 Unmovable, 1 Reclaimable, 2 Movable).

Two readers give the same results: `parse_line`/`parse_lines`, plain Python a line at a time
(the reference), and `iter_batches`, which reads a stream in byte chunks with one compiled pass
per line (`_scan`) and hands only the lines it cannot be sure of to the Python reader.
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from queue import Empty, Full, Queue
from typing import Any, BinaryIO, Final, NamedTuple, TextIO

import numpy as np

from fragsim.models.mm.constants import (
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    MIGRATETYPE_NAMES_2_6_24,
    MODERN_TRACE_MIGRATETYPE,
    OLD_TRACE_MIGRATETYPE,
)
from fragsim.models.mm.jit import DISABLE_JIT, compiled

__all__ = [
    "ALLOC",
    "ALLOC_FAILED",
    "EVENT_KINDS",
    "FREE",
    "FREE_BATCHED",
    "MAX_TRACE_ORDER",
    "NUMBERINGS",
    "EventBatch",
    "TraceEvent",
    "TraceFormatError",
    "iter_batches",
    "parse_line",
    "parse_lines",
]

# --- event kinds ----------------------------------------------------------------------------
ALLOC: Final = 0  # mm_page_alloc that returned a page
FREE: Final = 1  # mm_page_free, mm_page_free_direct
FREE_BATCHED: Final = 2  # mm_page_free_batched, mm_pagevec_free
ALLOC_FAILED: Final = 3  # mm_page_alloc with page=(null): the traced kernel failed it

#: Tracepoint name -> event kind, old names included.
EVENT_KINDS: Final = {
    "mm_page_alloc": ALLOC,
    "mm_page_free": FREE,
    "mm_page_free_direct": FREE,
    "mm_page_free_batched": FREE_BATCHED,
    "mm_pagevec_free": FREE_BATCHED,
}

#: Largest order the parser accepts (a sanity bound; the model refuses orders >= MAX_ORDER).
MAX_TRACE_ORDER: Final = 63

_REQUEST_TYPES: Final = (MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE)


def _request_numbering(table: dict[int, int]) -> dict[int, int]:
    """Trace value -> internal migratetype, for the types an allocation request can have."""
    return {k: v for k, v in table.items() if v in _REQUEST_TYPES}


#: `--migratetype-numbering` name -> (trace value -> internal migratetype).
NUMBERINGS: Final = {
    "modern": _request_numbering(MODERN_TRACE_MIGRATETYPE),
    "2.6.24": _request_numbering(OLD_TRACE_MIGRATETYPE),
}

# The fast path: the event name is a literal prefix (so `re` scans for it quickly) and the fields
# come in the order every kernel prints them. Lines it does not fit go to `_diagnose`.
_FAST_RE: Final = re.compile(
    r"(mm_page(?:vec_free|_alloc|_free_batched|_free_direct|_free)):\s+"
    r"page=(\S+)\s+pfn=(0x[0-9a-fA-F]+|\d+)\s+order=(\d+)(?:\s+migratetype=(-?\d+))?(?=\s|$)",
    re.ASCII,
)
_EVENT_RE: Final = re.compile(r"(mm_page(?:vec_free|_alloc|_free_batched|_free_direct|_free)):")
_FIELD_RE: Final = re.compile(r"(?:^|\s)(page|pfn|order|migratetype)=(\S*)", re.ASCII)
#: What each numeric field may hold, as the kernel prints it.
_VALUE_RE: Final = {
    "pfn": (re.compile(r"0x[0-9a-fA-F]+|[0-9]+"), "a decimal or 0x hex number"),
    "order": (re.compile(r"[0-9]+"), "a decimal number"),
    "migratetype": (re.compile(r"-?[0-9]+"), "a decimal number"),
}
#: The cpu in the ftrace prefix (`task-pid [cpu] flags timestamp:`; perf: `task pid [cpu]`).
_CPU_RE: Final = re.compile(r"\[([0-9]+)\]")
#: What may precede an event name: the start of the line, ftrace's `timestamp: `, perf's `kmem:`.
_BEFORE_EVENT: Final = " \t:"
_NULL_PAGES: Final = frozenset({"(null)", "0x0", "0", "0000000000000000", "00000000"})
_PFN_LIMIT: Final = 1 << 63
_SHOWN_CHARS: Final = 200


class TraceEvent(NamedTuple):
    """One allocator event. `pfn` is -1 and `migratetype` the request's for ALLOC_FAILED;
    `migratetype` is -1 for frees."""

    kind: int
    pfn: int
    order: int
    migratetype: int


class TraceFormatError(ValueError):
    """A malformed event line: its line number (0 if unknown), its text and what is wrong."""

    def __init__(self, reason: str, line: str, lineno: int = 0, source: str = "") -> None:
        self.reason = reason
        self.line = line.rstrip("\r\n")
        self.lineno = lineno
        self.source = source
        shown = self.line if len(self.line) <= _SHOWN_CHARS else self.line[:_SHOWN_CHARS] + "..."
        where = f"{source}:{lineno}: " if source else (f"line {lineno}: " if lineno else "")
        super().__init__(f"{where}malformed trace line ({reason}): {shown!r}")

    def at(self, lineno: int, source: str = "") -> TraceFormatError:
        """The same error, placed at a line of a named source."""
        return TraceFormatError(self.reason, self.line, lineno, source)


def _check_numbering(numbering: str) -> dict[int, int]:
    try:
        return NUMBERINGS[numbering]
    except KeyError:
        raise ValueError(f"unknown migratetype numbering {numbering!r}: allowed are "
                         f"{', '.join(NUMBERINGS)}") from None


def _allowed_types(table: dict[int, int]) -> str:
    return ", ".join(f"{k} ({MIGRATETYPE_NAMES_2_6_24[v]})" for k, v in sorted(table.items()))


def _event(kind: int, page: str, pfn_text: str, order_text: str, mt_text: str | None,
           table: dict[int, int], numbering: str, line: str) -> TraceEvent:
    """Checked values of one event's fields (all present and numeric-looking)."""
    order = int(order_text)
    if order > MAX_TRACE_ORDER:
        raise TraceFormatError(f"order={order_text} is out of range 0..{MAX_TRACE_ORDER}", line)
    mt = -1
    if kind == ALLOC:
        assert mt_text is not None, "callers read mm_page_alloc lines with migratetype="
        got = table.get(int(mt_text))
        if got is None:
            raise TraceFormatError(
                f"migratetype={mt_text} is not a request type in {numbering} numbering: "
                f"allowed {_allowed_types(table)}", line)
        mt = got
        if page in _NULL_PAGES:
            return TraceEvent(ALLOC_FAILED, -1, order, mt)
    pfn = int(pfn_text, 16) if pfn_text.startswith("0x") else int(pfn_text)
    if pfn >= _PFN_LIMIT:
        raise TraceFormatError(f"pfn={pfn_text} is out of range", line)
    return TraceEvent(kind, pfn, order, mt)


def _diagnose(line: str, table: dict[int, int], numbering: str) -> TraceEvent | None:
    """The slow path: the event of a line the fast pattern did not fit, or why it is malformed."""
    m = _EVENT_RE.search(line)
    if m is None or (m.start() and line[m.start() - 1] not in _BEFORE_EVENT):
        return None
    name = m.group(1)
    kind = EVENT_KINDS[name]
    fields: dict[str, str] = {}
    for key, value in _FIELD_RE.findall(line[m.end():]):
        fields.setdefault(key, value)
    wanted = ("page", "pfn", "order", "migratetype") if kind == ALLOC else ("page", "pfn", "order")
    for key in wanted:
        value = fields.get(key)
        if value is None:
            hint = " (the traced kernel did not print it; replay needs it)" if key == "pfn" else ""
            raise TraceFormatError(f"{name} without {key}={hint}", line)
        if key == "page":
            if not value:
                raise TraceFormatError(f"{name} with an empty page=", line)
        else:
            pattern, what = _VALUE_RE[key]
            if pattern.fullmatch(value) is None:
                raise TraceFormatError(f"{key}={value} is not {what}", line)
    return _event(kind, fields["page"], fields["pfn"], fields["order"],
                  fields.get("migratetype"), table, numbering, line)


def parse_line(line: str, numbering: str = "modern") -> TraceEvent | None:
    """The allocator event on one line, or None for an irrelevant line.

    Raises TraceFormatError (line number 0) for a malformed event line.
    """
    table = _check_numbering(numbering)
    if line.startswith("#"):
        return None
    m = _FAST_RE.search(line)
    if m is not None and (m.start() == 0 or line[m.start() - 1] in _BEFORE_EVENT):
        name, page, pfn_text, order_text, mt_text = m.groups()
        kind = EVENT_KINDS[name]
        if kind != ALLOC or mt_text is not None:
            return _event(kind, page, pfn_text, order_text, mt_text, table, numbering, line)
    return _diagnose(line, table, numbering)


@dataclass
class EventBatch:
    """Events of consecutive lines as parallel arrays (int64), plus the malformed lines.

    `pfns` is -1 for ALLOC_FAILED; `migratetypes` is -1 for frees. `cpus` (the `[cpu]` of the
    ftrace prefix, 0 without one) and `colds` (1 for an allocation with __GFP_COLD or a free
    with `cold=1`, kernels before 4.15) are read only when asked for, else 0. `lines` counts
    every line read, relevant or not, and `chars` what they took in the stream (characters of a
    text stream, bytes of a binary one; set by `iter_batches`, for progress); `malformed` holds
    one TraceFormatError per malformed line, in order. `extfrag` counts the well-formed
    `mm_page_alloc_extfrag` lines (the traced kernel's fallbacks), `extfrag_fragmenting` and
    `extfrag_change_ownership` those with `fragmenting=1` and `change_ownership=1`.
    """

    kinds: np.ndarray
    pfns: np.ndarray
    orders: np.ndarray
    migratetypes: np.ndarray
    cpus: np.ndarray
    colds: np.ndarray
    lines: int = 0
    chars: int = 0
    malformed: list[TraceFormatError] = field(default_factory=list)
    extfrag: int = 0
    extfrag_fragmenting: int = 0
    extfrag_change_ownership: int = 0

    def __len__(self) -> int:
        return int(self.kinds.shape[0])


# --- mm_page_alloc_extfrag --------------------------------------------------------------------
_EXTFRAG_NAME: Final = "mm_page_alloc_extfrag:"
_EXTFRAG_FIELD_RE: Final = re.compile(r"(?:^|\s)(fragmenting|change_ownership)=(\S*)", re.ASCII)
_DECIMAL_RE: Final = re.compile(r"[0-9]+")


def _extfrag(line: str) -> tuple[int, int] | None:
    """(fragmenting, change_ownership) of an `mm_page_alloc_extfrag` line, or None when the line
    names no such event; TraceFormatError when the two fields cannot be read."""
    at = line.find(_EXTFRAG_NAME)
    if at < 0 or (at and line[at - 1] not in _BEFORE_EVENT):
        return None
    fields: dict[str, str] = {}
    for key, value in _EXTFRAG_FIELD_RE.findall(line[at + len(_EXTFRAG_NAME):]):
        fields.setdefault(key, value)
    values = []
    for key in ("fragmenting", "change_ownership"):
        value = fields.get(key)
        if value is None:
            raise TraceFormatError(f"mm_page_alloc_extfrag without {key}=", line)
        if _DECIMAL_RE.fullmatch(value) is None:
            raise TraceFormatError(f"{key}={value} is not a decimal number", line)
        values.append(1 if int(value) else 0)
    return values[0], values[1]


# --- one line, in Python (the reference the compiled reader follows) --------------------------
#: What `_parse_one` found: nothing, an allocator event, or an extfrag event.
_NONE: Final = 0
_EVENT: Final = 1
_EXTFRAG: Final = 2


def _parse_one(line: str, table: dict[int, int], numbering: str,
               with_cpu: bool) -> tuple[int, int, int, int, int, int, int]:
    """(what, kind, pfn, order, migratetype, cpu, cold) of one line; for `_EXTFRAG`, `kind` and
    `pfn` hold fragmenting and change_ownership. Raises TraceFormatError (no line number)."""
    if "mm_page" not in line or line.startswith("#"):
        return _NONE, 0, 0, 0, 0, 0, 0
    m = _FAST_RE.search(line)
    event: tuple[int, int, int, int] | None = None
    if m is not None and (m.start() == 0 or line[m.start() - 1] in _BEFORE_EVENT):
        name, page, pfn_text, order_text, mt_text = m.groups()
        kind = EVENT_KINDS[name]
        # mt: -1 for a free, else the request's type; -2 when migratetype= is not right after
        # order= (the careful path looks for it), -3 when it is no request type.
        if kind != ALLOC:
            mt = -1
        elif mt_text is None:
            mt = -2
        else:
            mt = table.get(int(mt_text), -3)
        order = int(order_text)
        if (mt >= -1 and order <= MAX_TRACE_ORDER and len(pfn_text) <= 17
                and page not in _NULL_PAGES):
            # The common case, inlined: nothing left to check (17 digits < 2^63).
            pfn = int(pfn_text, 16) if pfn_text[1:2] == "x" else int(pfn_text)
            event = (kind, pfn, order, mt)
        elif mt != -2:
            event = _event(kind, page, pfn_text, order_text, mt_text, table, numbering, line)
    if event is None:
        event = _diagnose(line, table, numbering)
        if event is None:
            extfrag = _extfrag(line)
            if extfrag is None:
                return _NONE, 0, 0, 0, 0, 0, 0
            return _EXTFRAG, extfrag[0], extfrag[1], 0, 0, 0, 0
    cpu = cold = 0
    if with_cpu:
        found = _CPU_RE.search(line, 0, line.find("mm_page"))
        cpu = int(found.group(1)) if found else 0
        cold = 1 if ("GFP_COLD" if event[0] == ALLOC else "cold=1") in line else 0
    return _EVENT, event[0], event[1], event[2], event[3], cpu, cold


def parse_lines(lines: Iterable[str], numbering: str = "modern", first_lineno: int = 1,
                source: str = "", with_cpu: bool = False) -> EventBatch:
    """Parse lines numbered from `first_lineno`; malformed lines are collected, not raised.
    `with_cpu` also reads each event's cpu and cold flag (for per-cpu lists).

    This is the plain-Python reader, one line at a time; `iter_batches` reads streams with the
    compiled one, which gives the same batches.
    """
    table = _check_numbering(numbering)
    rows: list[tuple[int, int, int, int, int, int]] = []
    malformed: list[TraceFormatError] = []
    extfrag = [0, 0, 0]
    n = 0
    for n, line in enumerate(lines, 1):
        try:
            what, kind, pfn, order, mt, cpu, cold = _parse_one(line, table, numbering, with_cpu)
        except TraceFormatError as exc:
            malformed.append(exc.at(first_lineno + n - 1, source))
            continue
        if what == _EVENT:
            rows.append((kind, pfn, order, mt, cpu, cold))
        elif what == _EXTFRAG:
            extfrag[0] += 1
            extfrag[1] += kind
            extfrag[2] += pfn
    cols = np.array(rows, dtype=np.int64).reshape(-1, 6).T
    return EventBatch(cols[0].copy(), cols[1].copy(), cols[2].copy(), cols[3].copy(),
                      cols[4].copy(), cols[5].copy(), lines=n, malformed=malformed,
                      extfrag=extfrag[0], extfrag_fragmenting=extfrag[1],
                      extfrag_change_ownership=extfrag[2])


# --- the compiled reader ----------------------------------------------------------------------
def _lit(text: str) -> np.ndarray:
    out = np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(np.int64)
    out.flags.writeable = False
    return out


_MM_PAGE: Final = _lit("mm_page")
_VEC_FREE: Final = _lit("vec_free:")
_ALLOC_: Final = _lit("_alloc:")
_FREE_BATCHED_: Final = _lit("_free_batched:")
_FREE_DIRECT_: Final = _lit("_free_direct:")
_FREE_: Final = _lit("_free:")
_ALLOC_EXTFRAG_: Final = _lit("_alloc_extfrag:")
_PAGE_EQ: Final = _lit("page=")
_PFN_EQ: Final = _lit("pfn=")
_ORDER_EQ: Final = _lit("order=")
_MIGRATETYPE_EQ: Final = _lit("migratetype=")
_FRAGMENTING_EQ: Final = _lit("fragmenting=")
_CHANGE_OWNERSHIP_EQ: Final = _lit("change_ownership=")
_GFP_COLD: Final = _lit("GFP_COLD")
_COLD_1: Final = _lit("cold=1")
_NULL: Final = _lit("(null)")
_NULL_0X0: Final = _lit("0x0")
_NULL_16: Final = _lit("0000000000000000")
_NULL_8: Final = _lit("00000000")

#: Per-line outcomes of `_scan_line`.
_SCAN_NONE: Final = 0  # irrelevant
_SCAN_EVENT: Final = 1  # an allocator event
_SCAN_EXTFRAG: Final = 2  # a well-formed extfrag line
_SCAN_SLOW: Final = 3  # the compiled reader is not sure: `_parse_one` reads the line
#: `info` slots of `_scan`.
_I_POS, _I_LINES, _I_EVENTS, _I_SLOW, _I_EXTFRAG, _I_FRAG, _I_CHANGE = range(7)
_INFO_SIZE: Final = 7


@compiled("uint8[], int, int, const int[]", inline=True)
def _matches(buf: np.ndarray, pos: int, end: int, lit: np.ndarray) -> bool:
    """Whether the bytes at `pos` (before `end`) are `lit`."""
    n = lit.shape[0]
    if pos < 0 or pos + n > end:
        return False
    for k in range(n):  # noqa: SIM110 (a loop numba compiles to a plain compare chain)
        if buf[pos + k] != lit[k]:
            return False
    return True


@compiled("int", inline=True)
def _space(c: int) -> bool:
    """Python's ASCII `\\s`: space, tab, newline, vertical tab, form feed, carriage return."""
    return c == 32 or 9 <= c <= 13


@compiled("uint8[], int, int, const int[]", inline=True)
def _find(buf: np.ndarray, pos: int, end: int, lit: np.ndarray) -> int:
    """The first index >= `pos` at which `lit` lies wholly before `end`, or -1."""
    first = lit[0]
    last = end - lit.shape[0]
    while pos <= last:
        if buf[pos] == first and _matches(buf, pos, end, lit):
            return pos
        pos += 1
    return -1


def _libc_memchr() -> bool:
    """Whether this process has C's `memchr` for compiled code to call (POSIX: yes)."""
    try:
        import ctypes

        return hasattr(ctypes.CDLL(None), "memchr")
    except (OSError, TypeError):
        return False


if DISABLE_JIT:

    def _memchr(buf: np.ndarray, pos: int, end: int, c: int) -> int:
        """The first index in [pos, end) holding byte `c`, else `end`."""
        found = bytes(buf[pos:end]).find(int(c)) if pos < end else -1  # int: not a buffer
        return end if found < 0 else pos + found

elif _libc_memchr():
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def _memchr(typingctx: Any, arr: Any, pos: Any, end: Any, c: Any) -> Any:
        """The first index in [pos, end) holding byte `c`, else `end`: C's `memchr` (the JIT
        links it from the process, as it links `memcpy`)."""
        sig = types.int64(arr, pos, end, c)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            base = cgutils.get_item_pointer(  # type: ignore[no-untyped-call]
                context, builder, aryty, ary, [args[1]], wraparound=False)
            i8p, i64 = ir.IntType(8).as_pointer(), ir.IntType(64)
            fnty = ir.FunctionType(i8p, [i8p, ir.IntType(32), i64])
            fn = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
                builder.module, fnty, "memchr")
            start = builder.bitcast(base, i8p)
            n = builder.sub(args[2], args[1])
            empty = builder.icmp_signed("<=", n, ir.Constant(i64, 0))
            hit = builder.call(fn, [start, builder.trunc(args[3], ir.IntType(32)),
                                    builder.select(empty, ir.Constant(i64, 0), n)])
            missing = builder.icmp_unsigned("==", hit, ir.Constant(i8p, None))
            found = builder.add(args[1], builder.sub(builder.ptrtoint(hit, i64),
                                                     builder.ptrtoint(start, i64)))
            return builder.select(missing, args[2], found)

        return sig, codegen

else:  # no memchr to call: eight bytes at a time
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def _load_u64(typingctx: Any, arr: Any, idx: Any) -> Any:
        """The 8 bytes at `&arr[idx]` as one little-endian uint64 (an unaligned load)."""
        sig = types.uint64(arr, idx)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(  # type: ignore[no-untyped-call]
                context, builder, aryty, ary, [args[1]], wraparound=False)
            return builder.load(builder.bitcast(ptr, ir.IntType(64).as_pointer()), align=1)

        return sig, codegen

    _LO: Final = np.uint64(0x0101010101010101)
    _HI: Final = np.uint64(0x8080808080808080)
    _ZERO: Final = np.uint64(0)

    @compiled("uint8[], int, int, int", inline=True)
    def _memchr(buf: np.ndarray, pos: int, end: int, c: int) -> int:
        """The first index in [pos, end) holding byte `c`, else `end`. Eight bytes at a time:
        a zero byte of `t = x ^ c*0x01..01` makes `(t - 0x01..01) & ~t & 0x80..80` non-zero."""
        want = np.uint64(c & 0xFF) * _LO
        while pos + 8 <= end:
            t = _load_u64(buf, pos) ^ want  # type: ignore[call-arg]
            if (t - _LO) & ~t & _HI != _ZERO:
                break
            pos += 8
        while pos < end:
            if buf[pos] == c:
                return pos
            pos += 1
        return end


@compiled("uint8[], int, int, bool", inline=True)
def _line_end(buf: np.ndarray, pos: int, end: int, universal: bool) -> int:
    """The index of the first line end at or after `pos` (`\\n`, and `\\r` with `universal`),
    else `end`."""
    j = _memchr(buf, pos, end, 10)
    if universal:
        j = _memchr(buf, pos, j, 13)
    return j


@compiled("uint8[], int, int, const int[]", inline=True)
def _find_in_line(buf: np.ndarray, pos: int, end: int, lit: np.ndarray) -> int:
    """`_find`, by `memchr` for the first byte."""
    first = lit[0]
    while True:
        pos = _memchr(buf, pos, end, first)
        if pos >= end:
            return -1
        if _matches(buf, pos, end, lit):
            return pos
        pos += 1


@compiled("uint8[], int, int", inline=True)
def _skip_spaces(buf: np.ndarray, pos: int, end: int) -> int:
    while pos < end and _space(buf[pos]):
        pos += 1
    return pos


@compiled("uint8[], int, int", inline=True)
def _skip_digits(buf: np.ndarray, pos: int, end: int) -> int:
    while pos < end and 48 <= buf[pos] <= 57:
        pos += 1
    return pos


@compiled("uint8[], int, int", inline=True)
def _decimal(buf: np.ndarray, pos: int, end: int) -> int:
    """The value of the decimal digits [pos, end) (at most 18 of them)."""
    v = 0
    for k in range(pos, end):
        v = v * 10 + (int(buf[k]) - 48)  # int: uint8 arithmetic would wrap
    return v


@compiled("uint8[], int, int", inline=True)
def _event_name(buf: np.ndarray, at: int, end: int) -> tuple[int, int]:
    """(kind, index after the colon) of the event named at `at`, which holds `mm_page`; kind -1
    if it is no allocator event. The alternatives are `_FAST_RE`'s, in its order."""
    p = at + 7
    if _matches(buf, p, end, _VEC_FREE):
        return FREE_BATCHED, p + 9
    if _matches(buf, p, end, _ALLOC_):
        return ALLOC, p + 7
    if _matches(buf, p, end, _FREE_BATCHED_):
        return FREE_BATCHED, p + 14
    if _matches(buf, p, end, _FREE_DIRECT_):
        return FREE, p + 13
    if _matches(buf, p, end, _FREE_):
        return FREE, p + 6
    return -1, p


@compiled("uint8[], int, int", inline=True)
def _before_event(buf: np.ndarray, start: int, at: int) -> bool:
    """`_BEFORE_EVENT`: an event name starts the line or follows a space, a tab or a colon."""
    if at == start:
        return True
    c = int(buf[at - 1])
    return c == 32 or c == 9 or c == 58


@compiled("uint8[], int, int, const int[]", inline=True)
def _field(buf: np.ndarray, start: int, end: int, key: np.ndarray) -> int:
    """Where the value of the first `key` at `start` or after a space begins
    (`_EXTFRAG_FIELD_RE`), or -1."""
    pos = start
    while True:
        at = _find(buf, pos, end, key)
        if at < 0:
            return -1
        if at == start or _space(buf[at - 1]):
            return at + int(key.shape[0])
        pos = at + 1


@compiled("uint8[], int, int", inline=True)
def _flag_value(buf: np.ndarray, v: int, end: int) -> int:
    """0 or 1 for the decimal value at `v` (a whole `\\S+` run), -1 if it is no such value."""
    if v < 0:
        return -1
    e = _skip_digits(buf, v, end)
    if e == v or e - v > 9 or (e < end and not _space(buf[e])):
        return -1
    return 1 if _decimal(buf, v, e) else 0


@compiled("uint8[], int, int, int, const int[], int[]", inline=True)
def _fields(buf: np.ndarray, a: int, first: int, end: int, mt_table: np.ndarray,
            out: np.ndarray) -> int:
    """The allocator event at `first`, the first `mm_page` of the line [a, end):
    `_SCAN_EVENT` with (kind, pfn, order, mt) in `out`, `_SCAN_SLOW`, or `_SCAN_NONE` when it
    names no allocator event."""
    kind, p = _event_name(buf, first, end)
    if kind < 0:
        return _SCAN_NONE
    if not _before_event(buf, a, first):
        return _SCAN_SLOW
    # _FAST_RE: \s+page=(\S+)\s+pfn=(0x[0-9a-fA-F]+|\d+)\s+order=(\d+)(\s+migratetype=(-?\d+))?
    q = _skip_spaces(buf, p, end)
    if q == p or not _matches(buf, q, end, _PAGE_EQ):
        return _SCAN_SLOW
    page = q + 5
    p = page
    while p < end and not _space(buf[p]):
        if buf[p] >= 128:
            return _SCAN_SLOW
        p += 1
    page_end = p
    q = _skip_spaces(buf, page_end, end)
    if page_end == page or q == page_end or not _matches(buf, q, end, _PFN_EQ):
        return _SCAN_SLOW
    pfn_start = q + 4
    p = pfn_start
    pfn = 0
    if p + 1 < end and buf[p] == 48 and buf[p + 1] == 120:  # 0x
        p += 2
        while p < end and p - pfn_start <= 17:
            c = int(buf[p])
            if 48 <= c <= 57:
                d = c - 48
            elif 97 <= c <= 102:
                d = c - 87
            elif 65 <= c <= 70:
                d = c - 55
            else:
                break
            pfn = pfn * 16 + d
            p += 1
        if p == pfn_start + 2:
            return _SCAN_SLOW
    else:
        p = _skip_digits(buf, p, end)
        if p == pfn_start or p - pfn_start > 17:
            return _SCAN_SLOW
        pfn = _decimal(buf, pfn_start, p)
    if p - pfn_start > 17:  # the Python reader checks the range of longer ones
        return _SCAN_SLOW
    pfn_end = p
    q = _skip_spaces(buf, pfn_end, end)
    if q == pfn_end or not _matches(buf, q, end, _ORDER_EQ):
        return _SCAN_SLOW
    order_start = q + 6
    order_end = _skip_digits(buf, order_start, end)
    if order_end == order_start or order_end - order_start > 4:
        return _SCAN_SLOW
    order = _decimal(buf, order_start, order_end)
    if order > MAX_TRACE_ORDER or (order_end < end and not _space(buf[order_end])):
        return _SCAN_SLOW
    mt = -1
    p = order_end
    if kind == ALLOC:
        q = _skip_spaces(buf, order_end, end)
        if q == order_end or not _matches(buf, q, end, _MIGRATETYPE_EQ):
            return _SCAN_SLOW
        p = q + 12
        negative = p < end and buf[p] == 45  # '-'
        if negative:
            p += 1
        mt_start = p
        p = _skip_digits(buf, p, end)
        if p == mt_start or p - mt_start > 4 or (p < end and not _space(buf[p])):
            return _SCAN_SLOW
        value = _decimal(buf, mt_start, p)
        if (negative and value != 0) or value >= mt_table.shape[0] or mt_table[value] < 0:
            return _SCAN_SLOW
        mt = mt_table[value]
        n = page_end - page
        if ((n == 6 and _matches(buf, page, end, _NULL))
                or (n == 3 and _matches(buf, page, end, _NULL_0X0))
                or (n == 1 and buf[page] == 48)
                or (n == 16 and _matches(buf, page, end, _NULL_16))
                or (n == 8 and _matches(buf, page, end, _NULL_8))):
            return _SCAN_SLOW  # page=(null): the traced allocation failed
    out[0] = kind
    out[1] = pfn
    out[2] = order
    out[3] = mt
    return _SCAN_EVENT


@compiled("uint8[], int, int, int[]", inline=True)
def _other_mentions(buf: np.ndarray, a: int, b: int, out: np.ndarray) -> int:
    """The line [a, b) whose first `mm_page` names no allocator event: `_SCAN_SLOW` if a later
    one does, else `_SCAN_EXTFRAG` (values in `out`) for a well-formed extfrag line, `_SCAN_SLOW`
    for a malformed one, `_SCAN_NONE` otherwise."""
    extfrag = -1
    at = _find(buf, a, b, _MM_PAGE)
    while at >= 0:
        if _event_name(buf, at, b)[0] >= 0:
            return _SCAN_SLOW
        if extfrag < 0 and _matches(buf, at + 7, b, _ALLOC_EXTFRAG_):
            extfrag = at
        at = _find(buf, at + 1, b, _MM_PAGE)
    if extfrag < 0 or not _before_event(buf, a, extfrag):
        return _SCAN_NONE
    q = extfrag + 7 + _ALLOC_EXTFRAG_.shape[0]
    fragmenting = _flag_value(buf, _field(buf, q, b, _FRAGMENTING_EQ), b)
    change = _flag_value(buf, _field(buf, q, b, _CHANGE_OWNERSHIP_EQ), b)
    if fragmenting < 0 or change < 0:
        return _SCAN_SLOW
    out[0] = fragmenting
    out[1] = change
    return _SCAN_EXTFRAG


@compiled("uint8[], int, int, bool, bool, const int[], int[]", inline=True)
def _scan_line(buf: np.ndarray, a: int, end: int, universal: bool, with_cpu: bool,
               mt_table: np.ndarray, out: np.ndarray) -> tuple[int, int]:
    """Read the line starting at `a` as `_parse_one` does, where it can be sure of the outcome.

    Returns (outcome, index of the line's end): `_SCAN_NONE`, `_SCAN_EVENT` with (kind, pfn,
    order, mt, cpu, cold) in `out`, `_SCAN_EXTFRAG` with (fragmenting, change_ownership) in
    `out`, or `_SCAN_SLOW` for a line only the Python reader may judge: malformed, a failed
    allocation, fields out of order, non-ASCII in the fields, or anything else unusual.
    """
    b = _line_end(buf, a, end, universal)
    if a < b and buf[a] == 35:  # '#'
        return _SCAN_NONE, b
    first = _find_in_line(buf, a, b, _MM_PAGE)
    if first < 0:
        return _SCAN_NONE, b
    what = _fields(buf, a, first, b, mt_table, out)
    if what == _SCAN_NONE:
        return _other_mentions(buf, a, b, out), b
    if what != _SCAN_EVENT:
        return what, b
    out[4] = 0
    out[5] = 0
    if with_cpu:
        # _CPU_RE (\[([0-9]+)\]) before the first mm_page, then the cold flag anywhere.
        k = _memchr(buf, a, first, 91)  # '['
        while k < first:
            e = _skip_digits(buf, k + 1, first)
            if k + 1 < e < first and buf[e] == 93:  # ']'
                if e - k - 1 > 9:
                    return _SCAN_SLOW, b
                out[4] = _decimal(buf, k + 1, e)
                break
            k = _memchr(buf, k + 1, first, 91)
        if _find_in_line(buf, a, b, _GFP_COLD if out[0] == ALLOC else _COLD_1) >= 0:
            out[5] = 1
    return _SCAN_EVENT, b


@compiled("uint8[], int, int, bool", nogil=True)
def _last_line_end(buf: np.ndarray, start: int, end: int, universal: bool) -> int:
    """Where the last whole line of `buf[start:end]` ends (after its terminator), or `start`.
    A `\\r` as the very last byte does not count with `universal`: a `\\n` may follow it."""
    k = end - 1
    if universal and k >= start and buf[k] == 13:
        k -= 1
    while k >= start:
        c = buf[k]
        if c == 10 or (universal and c == 13):
            return k + 1
        k -= 1
    return start


@compiled("uint8[], int, int, int, bool, bool, const int[], int[], int[], int[], int[], int[], "
          "int[], int[], int[], int[], int[], int[]", nogil=True)
def _scan(buf: np.ndarray, pos: int, end: int, max_lines: int, universal: bool,
          with_cpu: bool, mt_table: np.ndarray, kinds: np.ndarray, pfns: np.ndarray,
          orders: np.ndarray, mts: np.ndarray, cpus: np.ndarray, colds: np.ndarray,
          slow_line: np.ndarray, slow_start: np.ndarray, slow_end: np.ndarray,
          slow_event: np.ndarray, info: np.ndarray) -> None:
    """Read up to `max_lines` lines of `buf[pos:end]` into the event arrays.

    `end` is a line boundary (`_last_line_end`) or the end of the stream, where the last line
    needs no terminator. Lines end at `\\n`, or with `universal` (a binary
    stream read as Python's universal newlines do) also at `\\r\\n` and a lone `\\r`. A line
    `_scan_line` leaves to the Python reader gets an event slot (kind -1) and a row in the
    `slow_*` arrays: its number within this call, its bytes and its slot. `info` gets where
    reading stopped and the counts (`_I_*`).
    """
    out = info[_INFO_SIZE:]  # one line's values
    lines = 0
    events = 0
    slow = 0
    extfrag = 0
    fragmenting = 0
    change = 0
    while lines < max_lines and pos < end:
        what, j = _scan_line(buf, pos, end, universal, with_cpu, mt_table, out)
        nxt = j + 1
        if j < end and universal and buf[j] == 13 and j + 1 < end and buf[j + 1] == 10:
            nxt = j + 2
        if what == _SCAN_EVENT:
            kinds[events] = out[0]
            pfns[events] = out[1]
            orders[events] = out[2]
            mts[events] = out[3]
            cpus[events] = out[4]
            colds[events] = out[5]
            events += 1
        elif what == _SCAN_EXTFRAG:
            extfrag += 1
            fragmenting += out[0]
            change += out[1]
        elif what == _SCAN_SLOW:
            slow_line[slow] = lines
            slow_start[slow] = pos
            slow_end[slow] = j
            slow_event[slow] = events
            kinds[events] = -1
            events += 1
            slow += 1
        lines += 1
        pos = min(nxt, end)
    info[_I_POS] = pos
    info[_I_LINES] = lines
    info[_I_EVENTS] = events
    info[_I_SLOW] = slow
    info[_I_EXTFRAG] = extfrag
    info[_I_FRAG] = fragmenting
    info[_I_CHANGE] = change


#: Bytes read from a stream at a time (the buffer grows for a longer line).
CHUNK_BYTES: Final = 1 << 22


class _Reader:
    """Batches of a binary or text stream through `_scan`, in chunks of `chunk` bytes."""

    def __init__(self, stream: BinaryIO | TextIO, numbering: str, batch_lines: int,
                 source: str, with_cpu: bool, chunk: int) -> None:
        self.table = _check_numbering(numbering)
        self.numbering = numbering
        self.mt_table = np.full(max(self.table) + 1, -1, dtype=np.int64)
        for value, mt in self.table.items():
            self.mt_table[value] = mt
        self.stream = stream
        self.text = isinstance(stream, io.TextIOBase) or not hasattr(stream, "readinto")
        self.batch_lines = max(1, int(batch_lines))
        self.source = source
        self.with_cpu = with_cpu
        self.chunk = max(64, int(chunk))
        self.buf = np.empty(self.chunk, dtype=np.uint8)
        self.pos = 0  # first unread byte of buf
        self.end = 0  # end of the bytes in buf
        self.eof = False
        self.lineno = 1

    def _fill(self) -> None:
        """Move the unread tail to the front and read more (growing for a long line)."""
        tail = self.end - self.pos
        if self.pos:
            self.buf[:tail] = self.buf[self.pos:self.end]
        self.pos, self.end = 0, tail
        if self.end + self.chunk // 2 > self.buf.shape[0]:
            grown = np.empty(max(2 * self.buf.shape[0], self.end + self.chunk), np.uint8)
            grown[: self.end] = self.buf[: self.end]
            self.buf = grown
        room = self.buf.shape[0] - self.end
        if self.text:
            text = self.stream.read(room // 4)
            data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
            n = len(data)
            self.buf[self.end:self.end + n] = np.frombuffer(data, dtype=np.uint8)
        else:
            view = memoryview(self.buf)[self.end:]  # type: ignore[arg-type]
            n = self.stream.readinto(view) or 0  # type: ignore[union-attr]
        self.end += n
        if n == 0:
            self.eof = True

    def batches(self) -> Iterator[EventBatch]:
        cap = self.batch_lines
        info = np.zeros(_INFO_SIZE + 6, dtype=np.int64)
        universal = not self.text
        while True:
            if not self.eof and self.end - self.pos < self.chunk // 2:
                self._fill()
            if self.pos >= self.end and self.eof:
                return
            stop = self.end if self.eof else _last_line_end(self.buf, self.pos, self.end,
                                                            universal)
            if stop == self.pos:  # no whole line yet: read on (the buffer grows)
                self._fill()
                continue
            arrays = [np.empty(cap, dtype=np.int64) for _ in range(10)]
            kinds, pfns, orders, mts, cpus, colds, line, first, last, slot = arrays
            _scan(self.buf, self.pos, stop, cap, universal, self.with_cpu, self.mt_table, kinds,
                  pfns, orders, mts, cpus, colds, line, first, last, slot, info)
            start = self.pos
            self.pos = int(info[_I_POS])
            yield self._batch(start, self.pos, int(info[_I_LINES]), info, arrays)

    def _batch(self, start: int, stop: int, lines: int, info: np.ndarray,
               arrays: list[np.ndarray]) -> EventBatch:
        events, nslow = int(info[_I_EVENTS]), int(info[_I_SLOW])
        kinds, pfns, orders, mts, cpus, colds = (a[:events] for a in arrays[:6])
        batch = EventBatch(kinds, pfns, orders, mts, cpus, colds, lines=lines,
                           extfrag=int(info[_I_EXTFRAG]),
                           extfrag_fragmenting=int(info[_I_FRAG]),
                           extfrag_change_ownership=int(info[_I_CHANGE]))
        if nslow:
            self._slow_lines(batch, arrays, nslow)
        if self.text:
            chunk = self.buf[start:stop]
            batch.chars = int(np.count_nonzero((chunk & 0xC0) != 0x80))
        else:
            batch.chars = stop - start
        self.lineno += lines
        return batch

    def _slow_lines(self, batch: EventBatch, arrays: list[np.ndarray], nslow: int) -> None:
        """`_parse_one` for the lines `_scan` left to Python; drop the slots that got nothing."""
        errors = "surrogatepass" if self.text else "replace"
        keep = np.ones(batch.kinds.shape[0], dtype=bool)
        cols = (batch.kinds, batch.pfns, batch.orders, batch.migratetypes, batch.cpus,
                batch.colds)
        slow_line, slow_start, slow_end, slow_event = arrays[6:]
        for i in range(nslow):
            slot = int(slow_event[i])
            keep[slot] = False
            line = bytes(self.buf[int(slow_start[i]):int(slow_end[i])]).decode("utf-8", errors)
            try:
                what, *values = _parse_one(line, self.table, self.numbering, self.with_cpu)
            except TraceFormatError as exc:
                batch.malformed.append(exc.at(self.lineno + int(slow_line[i]), self.source))
                continue
            if what == _EVENT:
                for col, value in zip(cols, values, strict=True):
                    col[slot] = value
                keep[slot] = True
            elif what == _EXTFRAG:
                batch.extfrag += 1
                batch.extfrag_fragmenting += values[0]
                batch.extfrag_change_ownership += values[1]
        if not keep.all():
            batch.kinds, batch.pfns, batch.orders, batch.migratetypes, batch.cpus, \
                batch.colds = (c[keep] for c in cols)


def iter_batches(stream: TextIO | BinaryIO, numbering: str = "modern",
                 batch_lines: int = 1 << 16, source: str = "", with_cpu: bool = False,
                 chunk_bytes: int = CHUNK_BYTES, ahead: bool = False) -> Iterator[EventBatch]:
    """Parse a stream `batch_lines` lines at a time, in memory bounded by `chunk_bytes` and
    the longest line, whatever the trace's size.

    A binary stream is read as the replay command opens files: UTF-8 with undecodable bytes
    replaced, universal newlines. A text stream is read as it gives its text (lines end at
    `\n`). The compiled reader (`_scan`) reads the lines it can be sure of; the others (a
    malformed line, a failed allocation, fields out of order, ...) go through the Python
    reader (`parse_lines`), so both give the same events, errors and line numbers. With
    `ahead`, a thread reads and parses up to two batches ahead of the caller (the compiled
    reader runs without the GIL), so parsing overlaps whatever the caller does with a batch.
    """
    _check_numbering(numbering)
    reader = _Reader(stream, numbering, batch_lines, source, with_cpu, chunk_bytes)
    if not ahead:
        yield from reader.batches()
        return
    yield from _read_ahead(reader.batches())


def _read_ahead(batches: Iterator[EventBatch]) -> Iterator[EventBatch]:
    """The batches of `batches`, produced by a worker thread into a queue of two."""
    done = object()
    queue: Queue[object] = Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        queue.put(batch, timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put(exc)

    worker = threading.Thread(target=produce, name="trace-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = queue.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, EventBatch)
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(Empty):
                queue.get(timeout=0.1)
        worker.join()

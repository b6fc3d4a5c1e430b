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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Final, NamedTuple, TextIO

import numpy as np

from fragsim.models.mm.constants import (
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    MIGRATETYPE_NAMES_2_6_24,
    MODERN_TRACE_MIGRATETYPE,
    OLD_TRACE_MIGRATETYPE,
)

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
    every line read, relevant or not, and `chars` their characters (set by `iter_batches`, for
    progress); `malformed` holds one TraceFormatError per malformed line, in order.
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

    def __len__(self) -> int:
        return int(self.kinds.shape[0])


def parse_lines(lines: Iterable[str], numbering: str = "modern", first_lineno: int = 1,
                source: str = "", with_cpu: bool = False) -> EventBatch:
    """Parse lines numbered from `first_lineno`; malformed lines are collected, not raised.
    `with_cpu` also reads each event's cpu and cold flag (for per-cpu lists)."""
    table = _check_numbering(numbering)
    kinds: list[int] = []
    pfns: list[int] = []
    orders: list[int] = []
    mts: list[int] = []
    cpus: list[int] = []
    colds: list[int] = []
    malformed: list[TraceFormatError] = []
    search = _FAST_RE.search
    kinds_of = EVENT_KINDS
    n = 0
    for n, line in enumerate(lines, 1):
        if "mm_page" not in line or line.startswith("#"):
            continue
        m = search(line)
        try:
            event: tuple[int, int, int, int] | None = None
            if m is not None and (m.start() == 0 or line[m.start() - 1] in _BEFORE_EVENT):
                name, page, pfn_text, order_text, mt_text = m.groups()
                kind = kinds_of[name]
                # mt: -1 for a free, else the request's type; -2 when migratetype= is not right
                # after order= (the careful path looks for it), -3 when it is no request type.
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
                    event = _event(kind, page, pfn_text, order_text, mt_text, table, numbering,
                                   line)
            if event is None:
                event = _diagnose(line, table, numbering)
                if event is None:
                    continue
        except TraceFormatError as exc:
            malformed.append(exc.at(first_lineno + n - 1, source))
            continue
        kinds.append(event[0])
        pfns.append(event[1])
        orders.append(event[2])
        mts.append(event[3])
        if with_cpu:
            cpu = _CPU_RE.search(line, 0, line.find("mm_page"))
            cpus.append(int(cpu.group(1)) if cpu else 0)
            colds.append(1 if ("GFP_COLD" if event[0] == ALLOC else "cold=1") in line else 0)
    if not with_cpu:
        cpus = colds = [0] * len(kinds)
    return EventBatch(np.array(kinds, dtype=np.int64), np.array(pfns, dtype=np.int64),
                      np.array(orders, dtype=np.int64), np.array(mts, dtype=np.int64),
                      np.array(cpus, dtype=np.int64), np.array(colds, dtype=np.int64),
                      lines=n, malformed=malformed)


def iter_batches(stream: TextIO, numbering: str = "modern", batch_lines: int = 1 << 16,
                 source: str = "", with_cpu: bool = False) -> Iterator[EventBatch]:
    """Parse a text stream `batch_lines` lines at a time (constant memory for any trace size)."""
    _check_numbering(numbering)
    lineno = 1
    while True:
        chunk = list(islice(stream, batch_lines))
        if not chunk:
            return
        batch = parse_lines(chunk, numbering, lineno, source, with_cpu)
        batch.chars = sum(map(len, chunk))
        lineno += batch.lines
        yield batch

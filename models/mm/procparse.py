"""Readers for a real machine's /proc/buddyinfo and /proc/pagetypeinfo (`mm/vmstat.c` formats).

Accepted, so that a file from any kernel since 2.6.24 reads:

- /proc/buddyinfo (`frag_show_print`): `Node %d, zone %8s ` then one count per order, any number
  of orders (MAX_ORDER 11 on x86, 13 or 14 on some ppc64 and arm64 configurations), any node
  and zone name (DMA, DMA32, Normal, HighMem, Movable, Device, ...).
- /proc/pagetypeinfo, old (2.6.24-4.3: Unmovable Reclaimable Movable Reserve Isolate) and modern
  (4.4+: Unmovable Movable Reclaimable HighAtomic [CMA] Isolate): the `Page block order` and
  `Pages per block` header, the free-list counts per type, `Number of blocks type`, and (4.x+
  with CONFIG_PAGE_OWNER) `Number of mixed blocks`; headers repeat per node. Since 5.5 the
  kernel stops counting a free list at 100000 and prints `>100000`; such a count reads as
  100000 and the result says `capped`.

Errors are `ProcParseError` (a ValueError) with a one-line message naming the file and line.
This module is pure: text in, frozen records out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "Buddyinfo",
    "PagetypeZone",
    "Pagetypeinfo",
    "ProcParseError",
    "ZoneFree",
    "detect_format",
    "parse_buddyinfo",
    "parse_pagetypeinfo",
    "parse_proc",
]

ProcFormat = Literal["buddyinfo", "pagetypeinfo"]

_ZONE_RE = re.compile(r"^Node\s+(\S+),\s*zone\s+(\S+)(?:\s+(.*))?$")
_TYPE_RE = re.compile(r"^Node\s+(\S+),\s*zone\s+(\S+),\s*type\s+(\S+)(?:\s+(.*))?$")
_PAGEBLOCK_ORDER = "Page block order:"
_PAGES_PER_BLOCK = "Pages per block:"
_FREE_HEADER = "Free pages count per migrate type at order"
_BLOCKS_HEADER = "Number of blocks type"
_MIXED_HEADER = "Number of mixed blocks"
_EXPECTED = ("expected /proc/buddyinfo ('Node 0, zone   Normal' then a count per order) "
             "or /proc/pagetypeinfo ('Page block order:' header)")


class ProcParseError(ValueError):
    """A file that is not the /proc text it should be; the message is one line."""


@dataclass(frozen=True)
class ZoneFree:
    """One /proc/buddyinfo line: `nr_free` per order of one zone."""

    node: int
    zone: str
    nr_free: tuple[int, ...]


@dataclass(frozen=True)
class Buddyinfo:
    zones: tuple[ZoneFree, ...]


@dataclass(frozen=True)
class PagetypeZone:
    """One zone of /proc/pagetypeinfo: free blocks per type and order, pageblocks per type."""

    node: int
    zone: str
    #: type name -> free blocks per order, in file order of types.
    free: dict[str, tuple[int, ...]]
    #: type name -> pageblocks of that type (empty if the file has no block counts).
    pageblocks: dict[str, int] = field(default_factory=dict)
    #: type name -> mixed pageblocks (CONFIG_PAGE_OWNER kernels only).
    mixed_pageblocks: dict[str, int] = field(default_factory=dict)

    @property
    def nr_free(self) -> tuple[int, ...]:
        """Free blocks per order over all types (what /proc/buddyinfo would show)."""
        rows = list(self.free.values())
        return tuple(sum(col) for col in zip(*rows, strict=True)) if rows else ()


@dataclass(frozen=True)
class Pagetypeinfo:
    pageblock_order: int | None
    pages_per_block: int | None
    #: Free-list type names in the order the file lists them.
    types: tuple[str, ...]
    #: Type names of the `Number of blocks type` header.
    block_types: tuple[str, ...]
    zones: tuple[PagetypeZone, ...]
    #: Some free-list count was printed as `>100000` (5.5+): counts are lower bounds.
    capped: bool = False


def _int(token: str, what: str, where: str) -> int:
    if not re.fullmatch(r"\d+", token):
        raise ProcParseError(f"{where}: {what} {token!r} is not a number")
    return int(token)


def _counts(text: str | None, where: str, allow_capped: bool = False) -> tuple[list[int], bool]:
    """Whitespace-separated non-negative counts; `>N` (a capped count) if allowed."""
    counts: list[int] = []
    capped = False
    for token in (text or "").split():
        if allow_capped and token.startswith(">"):
            token = token[1:]
            capped = True
        counts.append(_int(token, "count", where))
    if not counts:
        raise ProcParseError(f"{where}: no counts after the zone name")
    return counts, capped


def _where(source: str, lineno: int) -> str:
    return f"{source} line {lineno}"


def detect_format(text: str, source: str = "<text>") -> ProcFormat:
    """Which /proc file `text` is; ProcParseError naming `source` if it is neither."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ProcParseError(f"{source} is empty: {_EXPECTED}")
    for line in lines:
        if line.startswith((_PAGEBLOCK_ORDER, _FREE_HEADER, _BLOCKS_HEADER)):
            return "pagetypeinfo"
    if _ZONE_RE.match(lines[0]) and not _TYPE_RE.match(lines[0]):
        return "buddyinfo"
    first = lines[0] if len(lines[0]) <= 40 else lines[0][:40] + "..."
    raise ProcParseError(f"{source} is neither /proc/buddyinfo nor /proc/pagetypeinfo "
                         f"(first line {first!r}): {_EXPECTED}")


def parse_buddyinfo(text: str, source: str = "<text>") -> Buddyinfo:
    """Parse /proc/buddyinfo text: one `ZoneFree` per line, in file order."""
    zones: list[ZoneFree] = []
    seen: set[tuple[int, str]] = set()
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        where = _where(source, lineno)
        m = _ZONE_RE.match(line)
        if m is None or _TYPE_RE.match(line):
            raise ProcParseError(f"{where}: expected 'Node <n>, zone <name> <counts>', "
                                 f"found {line[:40]!r}")
        node = _int(m.group(1), "node number", where)
        key = (node, m.group(2))
        if key in seen:
            raise ProcParseError(f"{where}: zone {m.group(2)} of node {node} appears twice")
        seen.add(key)
        counts, _ = _counts(m.group(3), where)
        zones.append(ZoneFree(node, m.group(2), tuple(counts)))
    if not zones:
        raise ProcParseError(f"{source} is empty: {_EXPECTED}")
    return Buddyinfo(tuple(zones))


class _PagetypeReader:
    """Line-by-line state of `parse_pagetypeinfo` (sections repeat once per node)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.pageblock_order: int | None = None
        self.pages_per_block: int | None = None
        self.orders: int | None = None
        self.types: list[str] = []
        self.block_types: list[str] = []
        self.mixed_types: list[str] = []
        self.section = ""
        self.capped = False
        self.free: dict[tuple[int, str], dict[str, tuple[int, ...]]] = {}
        self.blocks: dict[tuple[int, str], dict[str, int]] = {}
        self.mixed: dict[tuple[int, str], dict[str, int]] = {}

    def header_value(self, line: str, prefix: str, where: str, old: int | None) -> int:
        value = _int(line[len(prefix):].strip(), prefix.rstrip(":").lower(), where)
        if old is not None and old != value:
            raise ProcParseError(f"{where}: {prefix} {value} differs from {old} earlier")
        return value

    def line(self, line: str, where: str) -> None:
        if line.startswith(_PAGEBLOCK_ORDER):
            self.pageblock_order = self.header_value(line, _PAGEBLOCK_ORDER, where,
                                                     self.pageblock_order)
        elif line.startswith(_PAGES_PER_BLOCK):
            self.pages_per_block = self.header_value(line, _PAGES_PER_BLOCK, where,
                                                     self.pages_per_block)
        elif line.startswith(_FREE_HEADER):
            orders = [_int(t, "order", where) for t in line[len(_FREE_HEADER):].split()]
            if not orders or orders != list(range(len(orders))):
                raise ProcParseError(f"{where}: orders {orders} are not 0, 1, 2, ...")
            self.orders = len(orders)
            self.section = "free"
        elif line.startswith(_BLOCKS_HEADER):
            self.block_types = line[len(_BLOCKS_HEADER):].split()
            self.section = "blocks"
        elif line.startswith(_MIXED_HEADER):
            self.mixed_types = line[len(_MIXED_HEADER):].split()
            self.section = "mixed"
        elif self.section == "free":
            self.free_line(line, where)
        elif self.section in ("blocks", "mixed"):
            self.block_line(line, where)
        else:
            raise ProcParseError(f"{where}: unexpected line {line[:40]!r} before the "
                                 f"'{_FREE_HEADER}' header")

    def free_line(self, line: str, where: str) -> None:
        m = _TYPE_RE.match(line)
        if m is None:
            raise ProcParseError(f"{where}: expected 'Node <n>, zone <name>, type <type> "
                                 f"<counts>', found {line[:40]!r}")
        node = _int(m.group(1), "node number", where)
        counts, capped = _counts(m.group(4), where, allow_capped=True)
        if len(counts) != self.orders:
            raise ProcParseError(f"{where}: {len(counts)} counts, but the header lists "
                                 f"{self.orders} orders")
        self.capped |= capped
        mtype = m.group(3)
        if mtype not in self.types:
            self.types.append(mtype)
        per_type = self.free.setdefault((node, m.group(2)), {})
        if mtype in per_type:
            raise ProcParseError(f"{where}: type {mtype} of zone {m.group(2)} appears twice")
        per_type[mtype] = tuple(counts)

    def block_line(self, line: str, where: str) -> None:
        m = _ZONE_RE.match(line)
        if m is None or _TYPE_RE.match(line):
            raise ProcParseError(f"{where}: expected 'Node <n>, zone <name> <counts>', "
                                 f"found {line[:40]!r}")
        node = _int(m.group(1), "node number", where)
        counts, _ = _counts(m.group(3), where)
        names = self.block_types if self.section == "blocks" else self.mixed_types
        if len(counts) != len(names):
            raise ProcParseError(f"{where}: {len(counts)} counts, but the header names "
                                 f"{len(names)} types")
        table = self.blocks if self.section == "blocks" else self.mixed
        table[(node, m.group(2))] = dict(zip(names, counts, strict=True))

    def result(self) -> Pagetypeinfo:
        if not self.free:
            raise ProcParseError(f"{self.source}: no free-list lines after "
                                 f"'{_FREE_HEADER}': {_EXPECTED}")
        if (self.pageblock_order is not None and self.pages_per_block is not None
                and self.pages_per_block != 1 << self.pageblock_order):
            raise ProcParseError(f"{self.source}: pages per block {self.pages_per_block} is "
                                 f"not 2^{self.pageblock_order}")
        zones = tuple(
            PagetypeZone(node, zone, free, self.blocks.get((node, zone), {}),
                         self.mixed.get((node, zone), {}))
            for (node, zone), free in self.free.items()
        )
        return Pagetypeinfo(self.pageblock_order, self.pages_per_block, tuple(self.types),
                            tuple(self.block_types), zones, self.capped)


def parse_pagetypeinfo(text: str, source: str = "<text>") -> Pagetypeinfo:
    """Parse /proc/pagetypeinfo text of any kernel since 2.6.24 (see the module docstring)."""
    reader = _PagetypeReader(source)
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line:
            reader.line(line, _where(source, lineno))
    return reader.result()


def parse_proc(text: str, source: str = "<text>") -> Buddyinfo | Pagetypeinfo:
    """Detect the format of `text` and parse it."""
    if detect_format(text, source) == "pagetypeinfo":
        return parse_pagetypeinfo(text, source)
    return parse_buddyinfo(text, source)

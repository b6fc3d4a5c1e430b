"""`fragsim inspect FILE`: fragmentation metrics of a real machine from its /proc text.

Reads /proc/buddyinfo or /proc/pagetypeinfo (detected; `models.mm.procparse`), and prints per
zone the unusable free space index and the fragmentation index in the debugfs
`extfrag/unusable_index` and `extfrag/extfrag_index` format (`models.mm.metrics`, as 2.6.35
`mm/vmstat.c` computes them), the share of free memory in blocks of at least pageblock order,
and, for pagetypeinfo, pageblocks per type and free blocks and pages per type.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fragsim.models.mm.metrics import (
    format_index,
    fragmentation_index,
    high_order_free_share,
    unusable_index,
)
from fragsim.models.mm.procparse import Buddyinfo, Pagetypeinfo, ProcParseError, parse_proc
from fragsim.sim.errors import UsageError

__all__ = ["DEFAULT_PAGEBLOCK_ORDER", "add_parser", "render", "run"]

#: x86_64 pageblock_order (2 MiB huge pages), for buddyinfo, which does not print it.
DEFAULT_PAGEBLOCK_ORDER = 9
SHOW_CHOICES = ("summary", "unusable", "extfrag")


def add_parser(subparsers: Any) -> None:
    """Register `inspect` on the `fragsim` subcommand parser."""
    p = subparsers.add_parser(
        "inspect",
        help="fragmentation metrics from a real /proc/buddyinfo or /proc/pagetypeinfo",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("file", metavar="FILE",
                   help="a copy of /proc/buddyinfo or /proc/pagetypeinfo (or the file itself)")
    p.add_argument("--show", choices=SHOW_CHOICES, default="summary",
                   help="unusable or extfrag: only those lines, in the debugfs format; "
                        "summary (default): every view")
    p.add_argument("--pageblock-order", type=int, default=None, metavar="N",
                   help="pageblock order for the high-order share (default: the pagetypeinfo "
                        f"header, or {DEFAULT_PAGEBLOCK_ORDER} for buddyinfo)")
    p.set_defaults(run=run)


def _usage_error(message: str) -> Exception:
    return UsageError(message)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _usage_error(f"no such file: {path}") from None
    except IsADirectoryError:
        raise _usage_error(f"is a directory, not a file: {path}") from None
    except UnicodeDecodeError:
        raise _usage_error(f"{path} is not a text file: expected /proc/buddyinfo or "
                           "/proc/pagetypeinfo") from None
    except OSError as exc:
        raise _usage_error(f"cannot read {path}: {exc.strerror or exc}") from None


def _label(node: int, zone: str) -> str:
    return f"Node {node:d}, zone {zone:>8} "  # "Node %d, zone %8s "


def _index_lines(zones: list[tuple[str, tuple[int, ...]]], which: str) -> list[str]:
    index = unusable_index if which == "unusable" else fragmentation_index
    return [label + "".join(format_index(index(nr_free, o)) + " " for o in range(len(nr_free)))
            for label, nr_free in zones]


def _table(title: str, names: tuple[str, ...], rows: list[tuple[str, list[int]]]) -> list[str]:
    width = max([12, *(len(n) for n in names)])
    pad = max(len(label) for label, _ in rows)
    out = [title, " " * pad + " ".join(f"{n:>{width}}" for n in names)]
    out += [f"{label:<{pad}}" + " ".join(f"{v:>{width}d}" for v in values)
            for label, values in rows]
    return out


def render(parsed: Buddyinfo | Pagetypeinfo, source: str, show: str = "summary",
           pageblock_order: int | None = None) -> str:
    """The report for one parsed file (what `fragsim inspect` prints)."""
    zones = [(_label(z.node, z.zone), z.nr_free) for z in parsed.zones]
    pbo = pageblock_order
    if pbo is None and isinstance(parsed, Pagetypeinfo):
        pbo = parsed.pageblock_order
    if pbo is None:
        pbo = DEFAULT_PAGEBLOCK_ORDER
    if show != "summary":
        return "".join(line + "\n" for line in _index_lines(zones, show))
    nr_orders = max(len(nr_free) for _, nr_free in zones)
    if not 0 <= pbo < nr_orders:
        raise ValueError(f"pageblock order {pbo} is outside the orders in {source} "
                         f"(0..{nr_orders - 1}): use --pageblock-order")
    kind = "pagetypeinfo" if isinstance(parsed, Pagetypeinfo) else "buddyinfo"
    out = [f"{source}: {kind}, {len(zones)} zone(s), orders 0..{nr_orders - 1}, "
           f"pageblock order {pbo}", "",
           "Unusable free space index (debugfs extfrag/unusable_index):",
           *_index_lines(zones, "unusable"), "",
           "Fragmentation index (debugfs extfrag/extfrag_index):",
           *_index_lines(zones, "extfrag"), "",
           f"Free memory in blocks of order >= {pbo} (pageblock order):"]
    for label, nr_free in zones:
        free_pages = sum(c << o for o, c in enumerate(nr_free))
        share = high_order_free_share(nr_free, pbo)
        out.append(f"{label}{100 * share:6.1f}% of {free_pages:d} free pages")
    if isinstance(parsed, Pagetypeinfo):
        out += _pagetype_tables(parsed)
    return "\n".join(out) + "\n"


def _pagetype_tables(parsed: Pagetypeinfo) -> list[str]:
    out: list[str] = []
    labelled = [(_label(z.node, z.zone), z) for z in parsed.zones]
    if parsed.block_types:
        out += ["", *_table("Pageblocks per type:", parsed.block_types,
                            [(lb, [z.pageblocks.get(t, 0) for t in parsed.block_types])
                             for lb, z in labelled])]
    if any(z.mixed_pageblocks for z in parsed.zones):
        out += ["", *_table("Mixed pageblocks per type (CONFIG_PAGE_OWNER):", parsed.block_types,
                            [(lb, [z.mixed_pageblocks.get(t, 0) for t in parsed.block_types])
                             for lb, z in labelled])]
    out += ["", *_table("Free blocks per type (all orders):", parsed.types,
                        [(lb, [sum(z.free.get(t, ())) for t in parsed.types])
                         for lb, z in labelled])]
    out += ["", *_table("Free pages per type:", parsed.types,
                        [(lb, [sum(c << o for o, c in enumerate(z.free.get(t, ())))
                               for t in parsed.types]) for lb, z in labelled])]
    if parsed.capped:
        out += ["", "note: the kernel printed some counts as >100000; they are read as 100000, "
                    "so free totals are lower bounds"]
    return out


def run(args: argparse.Namespace) -> int:
    """`fragsim inspect`: read, parse and report; user mistakes become UsageError."""
    path = Path(args.file)
    if args.pageblock_order is not None and args.pageblock_order < 0:
        raise _usage_error(f"--pageblock-order {args.pageblock_order} must be >= 0")
    if args.file == "-":
        text = sys.stdin.read()
        source = "<stdin>"
    else:
        text = _read(path)
        source = str(path)
    if not text.strip():
        raise _usage_error(f"{source} is empty: expected /proc/buddyinfo or /proc/pagetypeinfo")
    try:
        parsed = parse_proc(text, source)
        report = render(parsed, source, args.show, args.pageblock_order)
    except (ProcParseError, ValueError) as exc:
        raise _usage_error(str(exc)) from None
    print(report, end="")
    return 0

"""The kernel's text views of a machine, character for character: `mm/vmstat.c`.

- `buddyinfo`: /proc/buddyinfo (`frag_show_print`, unchanged from 2.6.20 to today).
- `pagetypeinfo`: /proc/pagetypeinfo as 2.6.24 prints it (`pagetypeinfo_show`,
  `pagetypeinfo_showfree_print`, `pagetypeinfo_showblockcount_print`), with the type names
  and order of the machine's kernel (`Policy.migratetype_names`: 4.4+ prints Unmovable,
  Movable, Reclaimable, HighAtomic, Isolate; the model has no CMA).
- `extfrag_index`, `unusable_index`: debugfs `extfrag/extfrag_index` and `extfrag/unusable_index`
  as 2.6.35 added them (`extfrag_show_print`, `unusable_show_print`; both `"%d.%03d "`).
- `vmstat`: /proc/vmstat lines (`vmstat_show`) for the model's counters, named and ordered as
  the machine's kernel has them (`Policy.vmstat_view`, a key of `VMSTAT_VIEWS`): "2.6" prints
  `Machine.vmstat()` in its order, "6.1" 6.1's `vmstat_text[]` (`models.mm.vmstat_6_1`).

Zones are walked as `walk_zones_in_node()` does: node 0, every populated zone, low to high.
The 2.6.24 source names only four types in `migratetype_names[]` although MIGRATE_TYPES is 5
(its ISOLATE row would print vsprintf's "<NULL>"); like 2.6.25-3.x we print "Isolate".
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fragsim.models.mm.constants import MIGRATE_TYPES_2_6_24
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.metrics import format_index, fragmentation_index
from fragsim.models.mm.metrics import unusable_index as _unusable_index
from fragsim.models.mm.vmstat_6_1 import vmstat_6_1

__all__ = [
    "buddyinfo",
    "extfrag_index",
    "pageblock_counts",
    "pagetypeinfo",
    "unusable_index",
    "vmstat",
    "VMSTAT_VIEWS",
]

#: `pgdat->node_id`: the model has one node.
NODE_ID = 0


def _zone_prefix(m: Machine, z: int) -> str:
    return f"Node {NODE_ID:d}, zone {m.zone_name(z):>8} "  # "Node %d, zone %8s "


def buddyinfo(m: Machine) -> str:
    """/proc/buddyinfo: per populated zone, `nr_free` of each order 0..MAX_ORDER-1."""
    lines = []
    for z in m.populated_zones():
        nr_free = m.zones[z]["nr_free"]
        counts = "".join(f"{int(nr_free[o]):6d} " for o in range(m.max_order))  # "%6lu "
        lines.append(_zone_prefix(m, z) + counts + "\n")
    return "".join(lines)


def pageblock_counts(m: Machine, z: int) -> np.ndarray:
    """Pageblocks of each internal migratetype (0..4) in zone `z`
    (`pagetypeinfo_showblockcount_print`).

    Like the kernel, steps from `zone_start_pfn` by `pageblock_nr_pages` and reads the type of
    the pageblock holding each pfn.
    """
    start, end = int(m.zones[z]["start_pfn"]), int(m.zones[z]["end_pfn"])
    pfns = np.arange(start, end, 1 << m.pageblock_order, dtype=np.int64)
    types = m.pageblock_type[pfns >> m.pageblock_order]
    return np.bincount(types, minlength=MIGRATE_TYPES_2_6_24)[:MIGRATE_TYPES_2_6_24]


def pagetypeinfo(m: Machine) -> str:
    """/proc/pagetypeinfo in the 2.6.24 format, the types named and ordered as the machine's
    kernel has them (2.6.24: Unmovable, Reclaimable, Movable, Reserve, Isolate).

    Free counts per type come from `nr_free_mt` (the kernel counts list entries). A vanilla
    machine (or one with grouping disabled for lack of memory) prints as a 2.6.24 kernel with
    `page_group_by_mobility_disabled` does: every free block on the Unmovable lists and every
    pageblock Unmovable, since `set_pageblock_migratetype()` then stores MIGRATE_UNMOVABLE.
    """
    out = [
        f"Page block order: {m.pageblock_order:d}\n",
        f"Pages per block:  {1 << m.pageblock_order:d}\n",
        "\n",
        f"{'Free pages count per migrate type at order':<43} ",  # "%-43s "
        "".join(f"{o:6d} " for o in range(m.max_order)),  # "%6d "
        "\n",
    ]
    types = m.policy.migratetype_names
    zones = m.populated_zones()
    for z in zones:
        nr_free_mt = m.zones[z]["nr_free_mt"]
        for mt, name in types:
            # "Node %4d, zone %8s, type %12s " then "%6lu " per order
            out.append(f"Node {NODE_ID:4d}, zone {m.zone_name(z):>8}, type {name:>12} ")
            out.append("".join(f"{int(nr_free_mt[o, mt]):6d} " for o in range(m.max_order)))
            out.append("\n")
    out.append(f"\n{'Number of blocks type ':<23}")  # "\n%-23s"
    out.append("".join(f"{name:>12} " for _, name in types))  # "%12s "
    out.append("\n")
    for z in zones:
        counts = pageblock_counts(m, z)
        out.append(_zone_prefix(m, z)
                   + "".join(f"{int(counts[mt]):12d} " for mt, _ in types) + "\n")
    return "".join(out)


def _index_view(m: Machine, index: Callable[[np.ndarray, int], int]) -> str:
    lines = []
    for z in m.populated_zones():
        nr_free = m.zones[z]["nr_free"][: m.max_order]
        values = "".join(format_index(index(nr_free, o)) + " " for o in range(m.max_order))
        lines.append(_zone_prefix(m, z) + values + "\n")
    return "".join(lines)


def extfrag_index(m: Machine) -> str:
    """debugfs `extfrag/extfrag_index`: `__fragmentation_index` per zone and order."""
    return _index_view(m, fragmentation_index)


def unusable_index(m: Machine) -> str:
    """debugfs `extfrag/unusable_index`: `unusable_free_index` per zone and order."""
    return _index_view(m, _unusable_index)


def _vmstat_2_6(m: Machine) -> dict[str, int]:
    return m.vmstat()


#: `Policy.vmstat_view` -> the counters (name -> value, in print order) of that view.
VMSTAT_VIEWS: dict[str, Callable[[Machine], dict[str, int]]] = {
    "2.6": _vmstat_2_6,
    "6.1": vmstat_6_1,
}


def vmstat(m: Machine) -> str:
    """/proc/vmstat-style `"%s %lu\\n"` lines (`vmstat_show`) of the machine's kernel's view:
    `Machine.vmstat()` in its order ("2.6"), or 6.1's names in 6.1's order ("6.1")."""
    counters = VMSTAT_VIEWS[m.policy.vmstat_view](m)
    return "".join(f"{name} {value:d}\n" for name, value in counters.items())

"""Tidy DataFrames of a machine's kernel views, with categorical keys.

Each frame is the long form of one kernel view (`models.mm.procfs`, `models.mm.census`), built
once from numpy columns: zone names and migratetype names are categoricals whose categories
keep the kernel's order (`zone_names[]`, and the internal migratetype slots 0..4 named by the
machine's policy, `Policy.migratetype_labels`: slot 3 is `Reserve` up to 4.3 and `HighAtomic` on
6.1), so sorting and grouping line up with /proc/buddyinfo and /proc/pagetypeinfo.

- `free_blocks_frame`: zone, order, migratetype, nr_free (pagetypeinfo's free lists);
- `buddyinfo_frame`: zone, order, nr_free, free_pages (/proc/buddyinfo);
- `pageblock_census_frame`: one row per pageblock (`models.mm.census.pageblock_census`);
- `vmstat_frame`: name, value (/proc/vmstat).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fragsim.models.mm.census import free_blocks, pageblock_census
from fragsim.models.mm.constants import MIGRATETYPE_NAMES_2_6_24, ZONE_NAMES
from fragsim.models.mm.machine import Machine
from fragsim.models.mm.policy import Policy

__all__ = [
    "MIGRATETYPE_DTYPE",
    "ZONE_DTYPE",
    "buddyinfo_frame",
    "free_blocks_frame",
    "migratetype_dtype",
    "pageblock_census_frame",
    "vmstat_frame",
]

ZONE_DTYPE = pd.CategoricalDtype(list(ZONE_NAMES), ordered=True)
#: The migratetype categorical of 2.6.24-4.3 (slot 3 `Reserve`); `migratetype_dtype` gives a
#: policy's own.
MIGRATETYPE_DTYPE = pd.CategoricalDtype(list(MIGRATETYPE_NAMES_2_6_24), ordered=True)


def migratetype_dtype(policy: Policy | None = None) -> pd.CategoricalDtype:
    """The ordered migratetype categorical whose codes are the internal slots 0..4, named by
    `policy.migratetype_labels` (None: the 2.6.24 names)."""
    if policy is None or policy.migratetype_labels == MIGRATETYPE_NAMES_2_6_24:
        return MIGRATETYPE_DTYPE
    return pd.CategoricalDtype(list(policy.migratetype_labels), ordered=True)


def _zone_column(codes: np.ndarray) -> pd.Categorical:
    """Zone indices (-1: none) as the ordered zone-name categorical."""
    return pd.Categorical.from_codes(codes.astype(np.int64), dtype=ZONE_DTYPE)


def _migratetype_column(codes: np.ndarray, policy: Policy) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int64), dtype=migratetype_dtype(policy))


def free_blocks_frame(m: Machine) -> pd.DataFrame:
    """One row per populated zone, order and migratetype: free blocks on that list."""
    cols = free_blocks(m)
    return pd.DataFrame({
        "zone": _zone_column(cols["zone"]),
        "order": cols["order"],
        "migratetype": _migratetype_column(cols["migratetype"], m.policy),
        "nr_free": cols["nr_free"],
    })


def buddyinfo_frame(m: Machine) -> pd.DataFrame:
    """One row per populated zone and order: `nr_free` and the pages those blocks hold."""
    zones = np.asarray(m.populated_zones(), dtype=np.int64)
    nr_free = m.zones["nr_free"][zones][:, : m.max_order].astype(np.int64)
    orders = np.arange(m.max_order, dtype=np.int64)
    return pd.DataFrame({
        "zone": _zone_column(np.repeat(zones, m.max_order)),
        "order": np.tile(orders, zones.shape[0]).astype(np.int8),
        "nr_free": nr_free.ravel(),
        "free_pages": (nr_free << orders).ravel(),
    })


def pageblock_census_frame(m: Machine) -> pd.DataFrame:
    """One row per pageblock; `zone` and `migratetype` as categoricals, other columns numeric."""
    cols = pageblock_census(m)
    frame = pd.DataFrame(cols)
    frame["zone"] = _zone_column(cols["zone"])
    frame["migratetype"] = _migratetype_column(cols["migratetype"], m.policy)
    return frame


def vmstat_frame(m: Machine) -> pd.DataFrame:
    """`Machine.vmstat()` as rows of (name, value); `name` is categorical in vmstat order."""
    stats = m.vmstat()
    names = list(stats)
    return pd.DataFrame({
        "name": pd.Categorical(names, categories=names, ordered=True),
        "value": np.fromiter(stats.values(), dtype=np.int64, count=len(names)),
    })

"""Figures of results: huge page availability over uptime, buddyinfo, the memory map, extfrag.

Each function takes the `runs`, `samples` and `events` tables (`fragsim.analysis.load`) and
returns a `matplotlib.figure.Figure`, built without pyplot, so nothing is left in pyplot's
global state and no backend is selected (`Figure.savefig` renders with Agg); `save` writes a
figure as PNG and SVG.

- `uptime`: `hugepages_pct` probes (Mel Gorman's `hugepages_get`) against uptime, mean over runs
  with a 95% Student-t band (the runs of a group share their sample times);
- `buddyinfo_heatmap`: one run's /proc/buddyinfo over uptime: where free memory lies, by order;
- `memory_map`: the pageblocks of physical memory at one snapshot, by type and content: the
  picture of external fragmentation that grouping pages by mobility (2.6.24) is about;
- `extfrag`: `mm_page_alloc_extfrag` tracepoint events per hour, fragmenting or not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from scipy import stats

from fragsim.models.mm.constants import ZONE_NAMES
from fragsim.models.mm.profiles import migratetype_labels

__all__ = ["MIGRATETYPE_COLORS", "buddyinfo_heatmap", "extfrag", "memory_map", "save",
           "uptime"]

#: One colour per 2.6.24 migratetype (Okabe-Ito, legible with colour-vision deficiencies).
MIGRATETYPE_COLORS: tuple[str, ...] = ("#D55E00", "#009E73", "#0072B2", "#CC79A7", "#999999")
_FREE = "#f7f7f7"
_FREE_RGB = np.array(to_rgb(_FREE))
_GAP_RGB = np.ones(3)


def save(fig: Figure, stem: str | Path, dpi: int = 150) -> list[Path]:
    """Write `stem.png` and `stem.svg` (folders created); returns the two paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(f"{stem.name}.{ext}") for ext in ("png", "svg")]
    for path in paths:
        fig.savefig(path, dpi=dpi)
    return paths


# --- helpers ------------------------------------------------------------------------------------

def _is(column: pd.Series, value: str) -> np.ndarray:
    """`column == value` as a plain bool array (categorical, arrow or object columns)."""
    return np.asarray(column.astype(str).to_numpy() == value, dtype=bool)


def _ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[_is(runs["status"], "ok")] if "status" in runs.columns else runs


def _labels(frame: pd.DataFrame, runs: pd.DataFrame, by: str | Sequence[str]) -> pd.Series:
    """The group label of each row of `frame`: its `by` columns, taken from `runs` by `run_id`
    when `frame` lacks them, joined by ", "."""
    cols = [by] if isinstance(by, str) else list(by)
    parts = []
    for col in cols:
        if col in frame.columns:
            parts.append(frame[col].astype(str).to_numpy())
        else:
            lookup = dict(zip(runs["run_id"].astype(str), runs[col].astype(str), strict=True))
            parts.append(frame["run_id"].astype(str).map(lookup).to_numpy())
    label = pd.Series(parts[0], index=frame.index, dtype=object)
    for p in parts[1:]:
        label = label + ", " + pd.Series(p, index=frame.index, dtype=object)
    return label


_SIZE_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def _natural_key(label: str) -> tuple[tuple[int, float, str], ...]:
    """Sort key of a group label: each ", "-separated part by its number (a size such as
    "512 MiB" in bytes, a kernel version as a tuple, a plain number), text otherwise; so
    512 MiB comes before 1 GiB and 2.6.24 before 6.1."""
    key: list[tuple[int, float, str]] = []
    for part in str(label).split(", "):
        words = part.split()
        if len(words) == 2 and words[1] in _SIZE_UNITS:
            try:
                key.append((0, float(words[0]) * _SIZE_UNITS[words[1]], ""))
                continue
            except ValueError:
                pass
        pieces = part.split(".")
        if len(pieces) >= 2 and all(p.isdigit() for p in pieces):
            key.extend((0, float(p), "") for p in pieces)
            continue
        try:
            key.append((0, float(part), ""))
        except ValueError:
            key.append((1, 0.0, part))
    return tuple(key)


def _floats(column: pd.Series) -> np.ndarray:
    return np.asarray(column.to_numpy(dtype=np.float64, na_value=np.nan))


def _ints(column: pd.Series) -> np.ndarray:
    return np.asarray(column.to_numpy(dtype=np.int64, na_value=-1))


# --- uptime -------------------------------------------------------------------------------------

def uptime(runs: pd.DataFrame, samples: pd.DataFrame, metric: str = "hugepages_pct",
           by: str | Sequence[str] = "kernel", level: float = 0.95) -> Figure:
    """`metric` samples (default the `hugepages_get` probes) against uptime, one line per group
    of `by` (columns of `samples` or of `runs`): the mean over the group's ok runs and a
    Student-t band of that mean at `level` where a time has two or more runs."""
    ok_ids = set(_ok_runs(runs)["run_id"].astype(str))
    sel = samples[_is(samples["metric"], metric)]
    sel = sel[sel["run_id"].astype(str).isin(ok_ids).to_numpy()]
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    if not sel.empty:
        frame = pd.DataFrame({"group": _labels(sel, runs, by).to_numpy(),
                              "days": np.round(_floats(sel["uptime_days"]), 4),
                              "value": _floats(sel["value"]),
                              "run_id": sel["run_id"].astype(str).to_numpy()})
        grouped = dict(list(frame.groupby("group", sort=False)))
        for group in sorted(grouped, key=_natural_key):
            g = grouped[group]
            agg = g.groupby("days")["value"].agg(["mean", "std", "count"])
            half = (stats.t.ppf(0.5 + level / 2, np.maximum(agg["count"] - 1, 1))
                    * agg["std"] / np.sqrt(agg["count"]))
            days = agg.index.to_numpy()
            line, = ax.plot(days, agg["mean"], marker="o", ms=3,
                            label=f"{group} (n={g['run_id'].nunique()})")
            ok = np.isfinite(half.to_numpy())
            if ok.any():
                ax.fill_between(days[ok], (agg["mean"] - half)[ok], (agg["mean"] + half)[ok],
                                color=line.get_color(), alpha=0.2, linewidth=0)
        ax.legend(fontsize=8)
    if metric == "hugepages_pct":
        ax.set_ylabel("memory allocatable as huge pages (%)")
        ax.set_ylim(0, 100)
    else:
        ax.set_ylabel(metric)
    ax.set_xlabel("uptime (days)")
    ax.set_title(f"{metric} over uptime: mean and {level:.0%} CI over runs")
    ax.grid(alpha=0.3)
    return fig


# --- buddyinfo ------------------------------------------------------------------------------

def _zone_index(zone: int | str) -> int:
    if isinstance(zone, str):
        if zone not in ZONE_NAMES:
            raise ValueError(f"unknown zone {zone!r}; zones are {', '.join(ZONE_NAMES)}")
        return ZONE_NAMES.index(zone)
    return int(zone)


def _largest_zone(samples: pd.DataFrame, buddy: pd.DataFrame) -> int:
    """The zone with most pageblocks (`pageblocks` samples), else with most free pages."""
    pb = samples[_is(samples["metric"], "pageblocks")]
    if not pb.empty:
        last = pb[_floats(pb["t_s"]) == _floats(pb["t_s"]).max()]
        sizes = pd.Series(_floats(last["value"])).groupby(_ints(last["zone"])).sum()
    else:
        pages = _floats(buddy["value"]) * np.exp2(_floats(buddy["order"]))
        sizes = pd.Series(pages).groupby(_ints(buddy["zone"])).max()
    return int(sizes.idxmax())


def buddyinfo_heatmap(samples: pd.DataFrame, run_id: str,
                      zone: int | str | None = None) -> Figure:
    """/proc/buddyinfo of run `run_id` over uptime as a heat map: x uptime, y order, colour the
    share of the zone's free pages that lie in free blocks of that order (nr_free * 2**order
    over the free pages). `zone` is an index or a name (`ZONE_NAMES`); default the largest."""
    mine = samples[_is(samples["run_id"], str(run_id))]
    buddy = mine[_is(mine["metric"], "buddyinfo")]
    if buddy.empty:
        raise ValueError(f"run {run_id}: no buddyinfo samples")
    z = _largest_zone(mine, buddy) if zone is None else _zone_index(zone)
    buddy = buddy[_ints(buddy["zone"]) == z]
    if buddy.empty:
        raise ValueError(f"run {run_id}: no buddyinfo samples for zone {zone!r}")
    grid = pd.DataFrame({"days": _floats(buddy["uptime_days"]), "order": _ints(buddy["order"]),
                         "pages": _floats(buddy["value"]) * np.exp2(_ints(buddy["order"]))})
    table = grid.pivot_table(index="order", columns="days", values="pages", aggfunc="sum")
    free = table.sum(axis=0).to_numpy()
    share = table.to_numpy() / np.where(free > 0, free, np.nan)
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(table.columns.to_numpy(), table.index.to_numpy(), share,
                         shading="nearest", cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(mesh, ax=ax, label="share of free pages in blocks of this order")
    ax.set_xlabel("uptime (days)")
    ax.set_ylabel("order")
    ax.set_yticks(table.index.to_numpy())
    kernel = str(mine["kernel"].iloc[0]) if "kernel" in mine.columns else ""
    name = ZONE_NAMES[z] if 0 <= z < len(ZONE_NAMES) else str(z)
    ax.set_title(f"buddyinfo: {kernel} run {run_id}, zone {name} "
                 f"(free pages {int(free[-1])} at the end)")
    return fig


# --- the memory map -----------------------------------------------------------------------------

def _snapshot(events: pd.DataFrame, run_id: str, uptime_days: float | None) -> pd.DataFrame:
    """The `pageblock` rows of one run at the snapshot nearest `uptime_days` (default last)."""
    mine = events[_is(events["run_id"], run_id)]
    pb = mine[_is(mine["event"], "pageblock")]
    if pb.empty:
        raise ValueError(f"run {run_id}: no pageblock events (the memory map)")
    t = _floats(pb["t_s"])
    times = np.unique(t)
    if uptime_days is None:
        at = times[-1]
    else:
        at = times[np.argmin(np.abs(times - uptime_days * 86400.0))]
    return pb[t == at]


def _hugepages_at(runs: pd.DataFrame, events: pd.DataFrame, run_id: str,
                  t_s: float) -> float:
    """The `hugepages_get` probe at `t_s` (within a minute), else the run's final figure when
    the snapshot is its last; NaN when neither is known."""
    mine = events[_is(events["run_id"], run_id)]
    probes = mine[_is(mine["event"], "hugepages_get")]
    near = probes[np.abs(_floats(probes["t_s"]) - t_s) < 60.0]
    if not near.empty:
        return float(_floats(near["value"])[-1])
    row = runs[_is(runs["run_id"], run_id)]
    if row.empty or "hugepages_pct" not in row.columns or "sim_s" not in row.columns:
        return math.nan
    if abs(float(_floats(row["sim_s"])[0]) - t_s) < 60.0:
        return float(_floats(row["hugepages_pct"])[0])
    return math.nan


def _cell_rows(share: np.ndarray, height: int) -> np.ndarray:
    """Pixel rows for each share of a cell's `height`: rounded, at least one when nonzero."""
    rows = np.rint(share * height).astype(np.int64)
    return np.where(share > 0, np.maximum(rows, 1), 0)


def _map_image(snap: pd.DataFrame, columns: int, cell: int) -> tuple[np.ndarray, dict[str, int]]:
    """The RGB image of one snapshot (`memory_map`) and its counts."""
    pfn = _ints(snap["pfn"])
    order = int(_ints(snap["order"]).max())
    block = (pfn - pfn.min()) >> order
    mt = np.clip(_ints(snap["migratetype"]), 0, len(MIGRATETYPE_COLORS) - 1)
    fb = _ints(snap["fallback_migratetype"])
    used = _ints(snap["nr_pages"])
    foreign = np.rint(_floats(snap["value"])).astype(np.int64)
    size = 1 << order
    rows_total = int(block.max()) // columns + 1
    img = np.tile(_GAP_RGB, (rows_total * cell, columns * cell, 1))
    colors = np.array([to_rgb(c) for c in MIGRATETYPE_COLORS])
    # A cell: its frame, a white line, then the interior; a 1 px gap right and below.
    frame = max(cell // 7, 1)
    lo, inner = frame + 1, cell - 1 - 2 * (frame + 1)
    own_rows = _cell_rows((used - foreign) / size, inner)
    foreign_rows = np.minimum(_cell_rows(foreign / size, inner), inner - own_rows)
    for i in range(block.shape[0]):
        y0, x0 = (int(block[i]) // columns) * cell, (int(block[i]) % columns) * cell
        own = colors[mt[i]]
        edge = 0.35 * own + 0.65 if used[i] == 0 else own  # a free block: a light frame
        img[y0:y0 + cell - 1, x0:x0 + cell - 1] = edge
        img[y0 + frame:y0 + cell - 1 - frame, x0 + frame:x0 + cell - 1 - frame] = _GAP_RGB
        body = img[y0 + lo:y0 + lo + inner, x0 + lo:x0 + lo + inner]
        body[:] = _FREE_RGB
        bottom = inner
        if own_rows[i]:
            body[bottom - own_rows[i]:bottom] = own
            bottom -= own_rows[i]
        if foreign_rows[i]:
            body[bottom - foreign_rows[i]:bottom] = colors[fb[i]] if fb[i] >= 0 else 0.5
    counts = {"blocks": int(block.shape[0]), "free": int((used == 0).sum()),
              "with_foreign": int((foreign > 0).sum()),
              "foreign_pct": round(100.0 * foreign.sum() / max(int(used.sum()), 1))}
    return img, counts


def memory_map(runs: pd.DataFrame, events: pd.DataFrame, run_ids: str | Sequence[str],
               uptime_days: float | None = None, columns: int | None = None) -> Figure:
    """The memory map: every pageblock of physical memory (`pageblock` events), one panel per
    run side by side, at the snapshot nearest `uptime_days` (default: each run's last).

    Blocks are laid out by pfn, row-major, `columns` to a row (default a power of two near the
    square root of the number of blocks). A cell's frame is the pageblock's migratetype; its
    interior fills from the bottom with the pages allocated by the block's own mobility (frame
    colour), then its foreign pages (allocated by another mobility than the block's type) in
    the colour of the mobility most of them requested (`fallback_migratetype`); what is left
    is free. A nonzero share gets at least one pixel row, so a block pinned by a few pages
    shows it. A block with nothing allocated has a light frame and an empty interior.

    On 2.6.20, which has no migrate types, every block is typed Unmovable, so the frames are
    all one colour and the fill carries the message: movable pages in almost every block,
    beside the unmovable ones that keep it from becoming a huge page.
    """
    ids = [run_ids] if isinstance(run_ids, str) else [str(r) for r in run_ids]
    snaps = [_snapshot(events, rid, uptime_days) for rid in ids]
    n_blocks = max(s.shape[0] for s in snaps)
    if columns is None:
        columns = 1 << max(int(math.floor(math.log2(math.sqrt(n_blocks)))), 2)
    cell = 20
    rows = max(math.ceil(s.shape[0] / columns) for s in snaps)
    width = min(max(0.3 * columns, 4.5), 8.0)  # inches of one panel's image
    fig = Figure(figsize=((width + 0.9) * len(ids), width * rows / columns + 2.1),
                 layout="constrained")
    axes = fig.subplots(1, len(ids), squeeze=False)[0]
    present: set[int] = set()
    labels: dict[int, list[str]] = {}
    for ax, rid, snap in zip(axes, ids, snaps, strict=True):
        img, counts = _map_image(snap, columns, cell)
        ax.imshow(img, interpolation="nearest", aspect="equal")
        t_s = float(_floats(snap["t_s"])[0])
        kernel = str(snap["kernel"].iloc[0]) if "kernel" in snap.columns else rid
        pct = _hugepages_at(runs, events, rid, t_s)
        head = f"{kernel}, uptime {t_s / 86400.0:.2f} d"
        if math.isfinite(pct):
            head += f", huge pages {pct:.1f}%"
        ax.set_title(head, fontsize=11)
        order = int(_ints(snap["order"]).max())
        ax.set_xlabel(f"{counts['blocks']} pageblocks of {(1 << order) * 4 // 1024} MiB: "
                      f"{counts['free']} free,\n{counts['with_foreign']} hold foreign pages "
                      f"({counts['foreign_pct']}% of the allocated pages)",
                      fontsize=8)
        ticks = np.arange(0, img.shape[0] // cell, max(1, (img.shape[0] // cell) // 8))
        ax.set_yticks(ticks * cell + cell / 2, [f"{int(r * columns) << order:#x}" for r in ticks],
                      fontsize=7)
        ax.set_ylabel("first pfn of the row", fontsize=8)
        ax.set_xticks([])
        present |= set(np.unique(_ints(snap["migratetype"])).tolist())
        present |= set(np.unique(_ints(snap["fallback_migratetype"])).tolist())
        # Slot names follow each run's kernel: slot 3 is Reserve up to 4.3, HighAtomic on 6.1.
        for i, name in enumerate(migratetype_labels(kernel)):
            if name not in labels.setdefault(i, []):
                labels[i].append(name)
    handles = [Patch(facecolor=MIGRATETYPE_COLORS[i], label="/".join(labels[i]))
               for i in sorted(present) if 0 <= i < len(MIGRATETYPE_COLORS)]
    handles.append(Patch(facecolor=_FREE, edgecolor="0.6", label="free pages"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8,
               title="frame: pageblock type; fill from the bottom: pages of the block's own "
                     "type,\nthen foreign pages (colour: the type most of them requested), "
                     "then free pages",
               title_fontsize=8)
    fig.suptitle("Memory map: physical memory by pageblock", fontsize=12)
    return fig


# --- extfrag ------------------------------------------------------------------------------------

def extfrag(events: pd.DataFrame, runs: pd.DataFrame, by: str | Sequence[str] = "kernel",
            bin_h: float = 1.0) -> Figure:
    """`mm_page_alloc_extfrag` events per hour of uptime, in `bin_h` hour bins, mean per ok run
    of each group of `by`: fragmenting fallbacks (a block of another type split below
    pageblock_order) above, the others below. A group whose runs have no such event (2.6.20,
    which has no fallbacks) is a line at zero. Events dropped by the simulator's trace ring
    (`runs.extfrag_lost`) are not counted."""
    ok = _ok_runs(runs)
    groups = _labels(ok, ok, by)
    n_runs = groups.value_counts()
    ev = events[_is(events["event"], "mm_page_alloc_extfrag")]
    ev = ev[ev["run_id"].astype(str).isin(set(ok["run_id"].astype(str))).to_numpy()]
    t_h = _floats(ev["t_s"]) / 3600.0
    end_h = max(float(np.nanmax(_floats(ok["sim_s"]))) / 3600.0 if "sim_s" in ok and len(ok)
                else 0.0, float(t_h.max()) if t_h.size else 0.0, bin_h)
    edges = np.arange(0.0, end_h + bin_h, bin_h)
    label = _labels(ev, runs, by).to_numpy()
    frag = _ints(ev["fragmenting"]) == 1
    fig = Figure(figsize=(8, 5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    for group in sorted(n_runs.index, key=_natural_key):
        mine = label == group
        none = "" if mine.any() else ", no events"
        for ax, sel in ((top, mine & frag), (bottom, mine & ~frag)):
            counts, _ = np.histogram(t_h[sel], bins=edges)
            rate = counts / bin_h / n_runs[group]
            ax.stairs(rate, edges / 24.0, label=f"{group} (n={n_runs[group]}{none})",
                      linewidth=1.5)
    top.set_title("mm_page_alloc_extfrag: fragmenting fallbacks (mean per run)", fontsize=10)
    bottom.set_title("non-fragmenting fallbacks (a whole pageblock or more)", fontsize=10)
    for ax in (top, bottom):
        ax.set_ylabel("events per hour")
        ax.grid(alpha=0.3)
    bottom.set_xlabel("uptime (days)")
    top.legend(fontsize=8)
    return fig

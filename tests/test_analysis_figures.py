"""`fragsim.analysis.figures` from tiny simulations (written and loaded back, as a user would)
and from synthetic frames: the axes and artists each figure has, what the memory map's cells
show, and `save`'s files. No figure is left in pyplot's global state."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection, QuadMesh
from matplotlib.colors import to_rgb
from matplotlib.patches import StepPatch

from fragsim.analysis import figures
from fragsim.analysis.results import load
from fragsim.models.mm.constants import (
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    ZONE_NAMES,
)
from fragsim.sim.run import run_workload, write_tables
from tests.conftest_tiny import tiny

KERNELS = ("2.6.20", "2.6.24")
Tables = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Tables:
    """Two kernels x two seeds of the tiny desktop with a memory map every hour, written as
    a reproduction directory (the flat tables of many runs) and loaded back."""
    out = tmp_path_factory.mktemp("runs")
    parts: dict[str, list[pd.DataFrame]] = {"runs": [], "samples": [], "events": []}
    for kernel in KERNELS:
        for seed in (0, 1):
            r = run_workload(tiny("desktop", {"kernel.version": kernel, "run.seed": seed},
                                  sets=["run.map_interval_h=1"]))
            assert r.ok
            write_tables(r, out / f"{kernel}-{seed}")
            for name, frames in parts.items():
                frames.append(getattr(r, name).astype({"kernel": str, "run_id": str}))
    for name, frames in parts.items():
        pd.concat(frames, ignore_index=True).to_parquet(out / f"{name}.parquet", index=False)
    return load(out)


@pytest.fixture(autouse=True)
def no_pyplot_figures() -> object:
    before = plt.get_fignums()
    yield None
    assert plt.get_fignums() == before


def _first(runs: pd.DataFrame, kernel: str) -> str:
    return str(runs.loc[runs["kernel"].astype(str) == kernel, "run_id"].iloc[0])


def test_uptime(tables: Tables) -> None:
    runs, samples, _ = tables
    fig = figures.uptime(runs, samples)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == ["2.6.20 (n=2)", "2.6.24 (n=2)"]
    probes = samples[samples["metric"].astype(str) == "hugepages_pct"]
    assert len(ax.lines[0].get_xdata()) == probes["t_s"].nunique()
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2  # two seeds a kernel: a band each
    assert ax.get_ylim() == (0, 100)
    # `by` from a runs column that samples lack.
    fig = figures.uptime(runs.assign(group=np.where(runs["seed"] == 0, "first", "second")),
                         samples, by="group")
    assert [line.get_label() for line in fig.axes[0].lines] == ["first (n=2)", "second (n=2)"]
    # Sizes and versions sort by value, not as text (1 GiB after 512 MiB, 6.1 before 6.15).
    size = np.where(runs["seed"] == 0, "1 GiB", "512 MiB")
    fig = figures.uptime(runs.assign(size=size), samples, by=["kernel", "size"])
    assert [line.get_label() for line in fig.axes[0].lines] == [
        "2.6.20, 512 MiB (n=1)", "2.6.20, 1 GiB (n=1)", "2.6.24, 512 MiB (n=1)",
        "2.6.24, 1 GiB (n=1)"]


def test_natural_order_of_group_labels() -> None:
    labels = ["6.15", "6.1", "2.6.35", "2.6.9", "10", "9", "b", "a"]
    assert sorted(labels, key=figures._natural_key) == [
        "2.6.9", "2.6.35", "6.1", "6.15", "9", "10", "a", "b"]


def test_buddyinfo_heatmap(tables: Tables) -> None:
    runs, samples, _ = tables
    rid = _first(runs, "2.6.24")
    fig = figures.buddyinfo_heatmap(samples, rid)
    assert len(fig.axes) == 2  # the map and its colour bar
    ax = fig.axes[0]
    assert "zone DMA32" in ax.get_title()  # the largest zone of the tiny machine
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    share = np.asarray(mesh.get_array()).reshape(-1, samples["t_s"].nunique())
    assert np.nansum(share, axis=0) == pytest.approx(1.0)  # shares of free memory per time
    assert "zone DMA (" in figures.buddyinfo_heatmap(samples, rid, zone="DMA").axes[0].get_title()
    assert ZONE_NAMES[0] == "DMA"
    with pytest.raises(ValueError, match="no buddyinfo"):
        figures.buddyinfo_heatmap(samples, "nosuchrun")


def test_memory_map_panels(tables: Tables) -> None:
    runs, _, events = tables
    ids = [_first(runs, k) for k in KERNELS]
    fig = figures.memory_map(runs, events, ids)
    assert len(fig.axes) == 2 and all(len(ax.images) == 1 for ax in fig.axes)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("2.6.20, uptime 0.08 d, huge pages ")
    assert titles[1].startswith("2.6.24, uptime 0.08 d")
    n_blocks = (events["event"].astype(str) == "pageblock").sum() // len(runs) // 2
    assert f"{n_blocks} pageblocks of 2 MiB" in fig.axes[0].get_xlabel()
    assert len(fig.legends) == 1
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "Unmovable" in labels and "Movable" in labels and labels[-1] == "free pages"
    # The snapshot nearest the uptime asked for; one run alone.
    early = figures.memory_map(runs, events, ids[1], uptime_days=0.03)
    assert len(early.axes) == 1 and "uptime 0.04 d" in early.axes[0].get_title()
    with pytest.raises(ValueError, match="no pageblock events"):
        figures.memory_map(runs, events.iloc[:0], ids)


def _map_events(blocks: list[tuple[int, int, int, int]]) -> pd.DataFrame:
    """pageblock events of one snapshot: (migratetype, fallback_migratetype, nr_pages,
    foreign pages) per block of 512 pages."""
    n = len(blocks)
    mt, fb, used, foreign = (list(c) for c in zip(*blocks, strict=True))
    return pd.DataFrame({"run_id": ["r"] * n, "kernel": ["k"] * n, "t_s": [3600.0] * n,
                         "uptime_days": [1 / 24] * n, "event": ["pageblock"] * n,
                         "pfn": np.arange(n) * 512, "order": [9] * n, "migratetype": mt,
                         "fallback_migratetype": fb, "nr_pages": used,
                         "value": np.array(foreign, dtype=np.float64)})


def test_memory_map_cells_show_type_content_and_free() -> None:
    events = _map_events([
        (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, 512, 384),  # 2.6.20: movable pages in it
        (MIGRATE_MOVABLE, -1, 512, 0),  # a pure movable block
        (MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, 256, 1),  # one unmovable page pins it
        (MIGRATE_RECLAIMABLE, -1, 0, 0),  # free
    ])
    runs = pd.DataFrame({"run_id": ["r"], "sim_s": [3600.0], "hugepages_pct": [25.0]})
    fig = figures.memory_map(runs, events, "r", columns=4)
    assert fig.axes[0].get_title() == "k, uptime 0.04 d, huge pages 25.0%"
    img = np.asarray(fig.axes[0].images[0].get_array())
    assert img.shape == (20, 80, 3)  # one row of four 20-pixel cells
    colour = {mt: np.array(to_rgb(c)) for mt, c in enumerate(figures.MIGRATETYPE_COLORS)}

    def at(cell: int, y: int, x: int = 9) -> np.ndarray:
        return img[y, cell * 20 + x]

    frame_y, bottom, top = 1, 15, 4  # a frame row; the interior's lowest and highest rows
    # The frame is the block's type; the interior fills from the bottom: own pages, foreign.
    assert at(0, frame_y) == pytest.approx(colour[MIGRATE_UNMOVABLE])
    assert at(0, bottom) == pytest.approx(colour[MIGRATE_UNMOVABLE])
    assert at(0, top) == pytest.approx(colour[MIGRATE_MOVABLE])
    assert at(1, bottom) == pytest.approx(colour[MIGRATE_MOVABLE])
    assert at(1, top) == pytest.approx(colour[MIGRATE_MOVABLE])
    # Half allocated: the top is free; the single foreign page still shows, in its colour.
    assert at(2, top) == pytest.approx(figures._FREE_RGB)
    column = img[4:16, 2 * 20 + 9]
    assert sum(np.allclose(px, colour[MIGRATE_UNMOVABLE]) for px in column) == 1
    # A free block: a light frame and an empty interior.
    assert at(3, frame_y) == pytest.approx(0.35 * colour[MIGRATE_RECLAIMABLE] + 0.65)
    assert at(3, bottom) == pytest.approx(figures._FREE_RGB)
    assert "1 free" in fig.axes[0].get_xlabel() and "2 hold foreign" in fig.axes[0].get_xlabel()


def test_extfrag(tables: Tables) -> None:
    runs, _, events = tables
    fig = figures.extfrag(events, runs, bin_h=0.5)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        steps = [p for p in ax.patches if isinstance(p, StepPatch)]
        assert len(steps) == len(KERNELS)
        assert len(steps[0].get_data().values) == 4  # 0.08 days in half-hour bins
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["2.6.20 (n=2, no events)", "2.6.24 (n=2)"]  # no fallbacks on 2.6.20
    frag = fig.axes[0].patches[1].get_data().values
    extfrag = events[(events["event"].astype(str) == "mm_page_alloc_extfrag")
                     & (events["fragmenting"] == 1)]
    assert frag.sum() * 0.5 * 2 == pytest.approx(extfrag.shape[0])  # rates back to counts


def test_save_writes_png_and_svg(tmp_path: Path, tables: Tables) -> None:
    runs, samples, _ = tables
    paths = figures.save(figures.uptime(runs, samples), tmp_path / "out" / "uptime")
    assert paths == [tmp_path / "out" / "uptime.png", tmp_path / "out" / "uptime.svg"]
    assert paths[0].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert b"<svg" in paths[1].read_bytes()[:1000]

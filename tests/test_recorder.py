"""The recorder: long-form samples and events with categorical keys."""

from __future__ import annotations

import numpy as np
import pytest

from fragsim.sim.recorder import EVENT_INT_FIELDS, Recorder


def test_samples_long_form() -> None:
    r = Recorder()
    r.sample(0.0, "nr_free_pages", 10.0, zone=1)
    r.samples(3600.0, "buddyinfo", np.array([4.0, 2.0, 1.0]), zone=1, order=np.arange(3))
    f = r.samples_frame()
    assert list(f.columns) == ["t_s", "metric", "zone", "order", "migratetype", "value"]
    assert f.shape[0] == 4
    assert list(f["metric"].cat.categories) == ["nr_free_pages", "buddyinfo"]
    assert f["order"].tolist() == [-1, 0, 1, 2]
    assert f.loc[f["metric"] == "buddyinfo", "value"].tolist() == [4.0, 2.0, 1.0]


def test_events_and_extfrag_sorted_by_time() -> None:
    r = Recorder()
    r.event(5.0, "page_allocation_failure", "dma", order=4, value=1.0, detail="mode:0x14")
    rows = np.array([[100, 0, 9, 0, 2, 0, 1]], np.int64)
    r.extfrag(2.0, rows, "kmalloc")
    f = r.events_frame()
    assert f["event"].tolist() == ["mm_page_alloc_extfrag", "page_allocation_failure"]
    assert f.iloc[0][list(EVENT_INT_FIELDS)].tolist() == [100, 0, 9, 0, 2, 0, 1, -1]
    assert f.iloc[1]["order"] == 4 and f.iloc[1]["pfn"] == -1
    assert f.iloc[1]["detail"] == "mode:0x14" and f.iloc[1]["source"] == "dma"
    assert r.nr_events == 2


def test_unknown_event_field() -> None:
    with pytest.raises(ValueError, match="unknown event field"):
        Recorder().event(0.0, "x", bogus=1)


def test_bulk_events_keep_their_name_and_values() -> None:
    r = Recorder()
    r.event(1.0, "phase", "stress")
    r.events_bulk(0.5, "pageblock", "census", np.array([3.0, 0.0]), pfn=np.array([0, 512]),
                  migratetype=np.array([0, 2]), nr_pages=np.array([10, 0]))
    f = r.events_frame()
    assert f["event"].tolist() == ["pageblock", "pageblock", "phase"]
    assert f["pfn"].tolist()[:2] == [0, 512] and f["nr_pages"].tolist() == [10, 0, -1]
    assert f["value"].tolist()[:2] == [3.0, 0.0] and f["order"].tolist() == [-1, -1, -1]
    with pytest.raises(ValueError, match="unknown event field"):
        r.events_bulk(0.0, "pageblock", "census", np.zeros(1), zone=np.zeros(1))
